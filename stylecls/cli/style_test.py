"""`stylecls style-test`: does a run's model decide by content or by style (in its own labels)?"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from stylecls.cli.app import BatchOpt, DeviceOpt, EvalDataRootOpt, WorkersOpt, app, console, err_console, pct


def _pct(x: float) -> str:
    return "" if x != x else pct(x)  # NaN: the number does not apply


@app.command("style-test")
def style_test_cmd(
    run: Path = typer.Argument(..., help="Run folder (made by `stylecls train`); its best.pt is tested."),
    kind: Optional[list[str]] = typer.Option(
        None, "--kind", help="amplitude-phase, feature-stats or style-shift; repeat for several (default: all)."
    ),
    part: Optional[str] = typer.Option(None, "--part", help="Part to test: test (default when present) or val."),
    strength: Optional[list[float]] = typer.Option(
        None, "--strength", help="Strength(s) from 0 (clean) to 1, repeatable; replaces each kind's defaults "
        "(amplitude-phase: FDA's β, 1 = whole amplitude). 0 is always included.",
    ),  # fmt: skip
    pairs: Optional[int] = typer.Option(
        None, "--pairs", min=1, help="Test this many content images (a seeded sample; default: the whole part)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the pairs (same seed, same files)."),
    data_root: Optional[Path] = EvalDataRootOpt,
    device: str = DeviceOpt,
    batch_size: int = BatchOpt,
    workers: int = WorkersOpt,
) -> None:
    """Style reliance: cue conflicts (A's Fourier phase with B's amplitude), AdaIN of feature statistics per
    stage, and content-keeping style shifts (greyscale, colour histograms, domains), written to RUN/style_test/."""
    from rich.progress import Progress
    from rich.table import Table

    from stylecls.style_test import style_test

    started = time.perf_counter()
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("style tests", total=None)
        result = style_test(
            run, kind, part, strength, pairs, seed, data_root, device, batch_size, workers,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    for note in result.notes:
        err_console.print(f"note: {note}", highlight=False)
    table = Table(title=f"{run}: style tests (best.pt, {result.pairs:,} pairs, seed {seed})")
    for name, justify in (("kind", "left"), ("test", "left"), ("strength", "right"), ("accuracy", "right"),
                          ("content share", "right"), ("follows style", "right"), ("agreement", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for kind_name, t in result.tables.items():
        for r in t.to_dict("records"):
            test = r.get("stage") or r.get("shift") or "amplitude"
            if test == "domain":
                test = f"domain {r['domain']} ({r['part']})"
            content = r.get("phase_fraction", r.get("content_fraction", float("nan")))
            style = r.get("follows_amplitude", r.get("switches_to_style", float("nan")))
            table.add_row(kind_name, test, f"{r['strength']:g}", pct(r["accuracy"]), _pct(content), _pct(style),
                          _pct(r.get("agreement", float("nan"))))  # fmt: skip
    console.print(table)
    console.print("content share: of the decisions that follow A's or B's label, the share that follow A's (the "
                  "content; the CSVs' phase_fraction / content_fraction); follows style: how often the decision is "
                  "B's label (follows_amplitude / switches_to_style)", highlight=False)
    if result.skipped:
        err_console.print(f"skipped {result.skipped:,} pairs with an unreadable image", highlight=False)
    console.print(f"wrote {', '.join(p.name for p in result.files)} to {result.out_dir}/")
    console.print(f"style-test took {time.perf_counter() - started:.1f} s", highlight=False)
