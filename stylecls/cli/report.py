"""`stylecls report`: paired statistics, model selection, figures and a verdict for runs that differ by method."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from stylecls.cli.app import app, console
from stylecls.cli.results import SkipUnevaluatedOpt, print_left_out
from stylecls.errors import StyleclsError

SELECTIONS = ("training-domain", "lodo", "oracle")


@app.command("report")
def report_cmd(
    paths: list[Path] = typer.Argument(..., help="Run folders, or folders holding runs (evaluated)."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="The HTML file (default: report.html in the first folder of runs, else here); "
        "report.md and <name>_figures/ go beside it."
    ),
    by: str = typer.Option(
        "method", "--by", help="The compared axis: method (block, feature augmentation and IBN-Net-a, each on the "
        "same backbone; combinations are methods of their own), block, or arch."
    ),
    ci: str = typer.Option(
        "auto", "--ci", help="Interval the verdict uses: auto (t below 6 pairs, else bootstrap), bootstrap or t; "
        "both are tabled."
    ),
    selection: str = typer.Option(
        "training-domain", "--selection", help="Model selection over the trials of a hyper-parameter search: "
        "training-domain (validation on the training domains, best.pt), lodo (leave-one-training-domain-out "
        "cross-validation), oracle (test-domain accuracy at the last epoch; an upper bound) or all (one table each)."
    ),
    latex: Optional[Path] = typer.Option(None, "--latex", help="Also write the tables as LaTeX (booktabs) here."),
    skip_unevaluated: bool = SkipUnevaluatedOpt,
) -> None:
    """SRM vs SE vs none as a reviewer wants it: paired differences with 95 % intervals, tests, figures."""
    from stylecls.report import write_report
    from stylecls.runfolder import is_run_folder

    if ci not in ("auto", "bootstrap", "t"):
        raise StyleclsError(f"unknown --ci {ci!r}; choose one of: auto, bootstrap, t")
    if selection not in (*SELECTIONS, "all"):
        raise StyleclsError(f"unknown --selection {selection!r}; choose one of: {', '.join(SELECTIONS)}, all")
    if out is None:
        first = paths[0]
        out = (first if first.is_dir() and not is_run_folder(first) else Path(".")) / "report.html"
    selections = SELECTIONS if selection == "all" else (selection,)
    files = write_report(paths, out, by, ci, selections, latex, skip_unevaluated)  # type: ignore[arg-type]
    for g in files.report.groups:
        console.print(f"[bold]{g.title}[/]", highlight=False)
        for section in g.sections:
            if len(g.sections) > 1:
                console.print(f"  [dim]{section.title}[/]", highlight=False)
            for sentence in section.verdicts:
                console.print(f"  {sentence}", highlight=False)
            if "unmatched" in section.tables:
                lonely = section.tables["unmatched"][1]
                console.print(f"  [yellow]{lonely['run'].nunique()} run(s) without a partner in some comparison, "
                              "left out of it (listed in the report)[/]", highlight=False)
        for note in g.notes:
            console.print(f"  [dim]{note}[/]", highlight=False)
    print_left_out(files.report.left_out)
    written = f"{files.html}, {files.markdown}" + (f", {files.latex}" if files.latex else "")
    console.print(f"wrote {written} and {files.figures}/", highlight=False)
