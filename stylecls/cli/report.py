"""`stylecls report`: paired statistics, figures and a verdict for runs that differ by block."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from stylecls.cli.app import app, console
from stylecls.errors import StyleclsError


@app.command("report")
def report_cmd(
    paths: list[Path] = typer.Argument(..., help="Run folders, or folders holding runs (evaluated)."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="The HTML file (default: report.html in the first folder of runs, else here); "
        "report.md and <name>_figures/ go beside it."
    ),
    by: str = typer.Option("block", "--by", help="The compared axis: block or arch."),
    ci: str = typer.Option(
        "auto", "--ci", help="Interval the verdict uses: auto (t below 6 pairs, else bootstrap), bootstrap or t; "
        "both are tabled."
    ),
) -> None:
    """SRM vs SE vs none as a reviewer wants it: paired differences with 95 % intervals, tests, figures."""
    from stylecls.report import write_report
    from stylecls.runfolder import is_run_folder

    if ci not in ("auto", "bootstrap", "t"):
        raise StyleclsError(f"unknown --ci {ci!r}; choose one of: auto, bootstrap, t")
    if out is None:
        first = paths[0]
        out = (first if first.is_dir() and not is_run_folder(first) else Path(".")) / "report.html"
    files = write_report(paths, out, by, ci)  # type: ignore[arg-type]
    for g in files.report.groups:
        console.print(f"[bold]{g.title}[/]", highlight=False)
        for sentence in g.verdicts:
            console.print(f"  {sentence}", highlight=False)
        if "unmatched" in g.tables:
            lonely = g.tables["unmatched"][1]
            console.print(f"  [yellow]{lonely['run'].nunique()} run(s) without a partner in some comparison, left "
                          "out of it (listed in the report)[/]", highlight=False)
        for note in g.notes:
            console.print(f"  [dim]{note}[/]", highlight=False)
    console.print(f"wrote {files.html}, {files.markdown} and {files.figures}/", highlight=False)
