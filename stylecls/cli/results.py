"""`stylecls evaluate`, `compare` and `inspect`: what a run or a group of runs shows."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from stylecls.cli.app import (
    BatchOpt,
    CheckpointOpt,
    DeviceOpt,
    EvalDataRootOpt,
    WorkersOpt,
    app,
    console,
    err_console,
    flag,
    pct,
)  # fmt: skip
from stylecls.errors import StyleclsError

if TYPE_CHECKING:
    from stylecls.report.runs import LeftOut


def _renamed(old: str, new: str, value: Optional[str], current: Optional[str]) -> Optional[str]:
    """A deprecated option's value, with a warning on stderr (kept one release after the rename)."""
    if value is None:
        return current
    err_console.print(f"warning: evaluate {old} is deprecated and will be removed; use {new}", highlight=False)
    if current is not None and current != value:
        raise StyleclsError(f"{old} {value} and {new} {current} disagree; pass {new} only")
    return value


@app.command("evaluate")
def evaluate_cmd(
    run: Path = typer.Argument(..., help="Run folder (made by `stylecls train`)."),
    checkpoint: str = CheckpointOpt,
    part: Optional[str] = typer.Option(None, "--part", help="Part to report: test (default when present) or val."),
    domain: Optional[str] = typer.Option(None, "--domain", help="Report on this domain of the part only."),
    data_root: Optional[Path] = EvalDataRootOpt,
    device: str = DeviceOpt,
    batch_size: int = BatchOpt,
    workers: int = WorkersOpt,
    split: Optional[str] = typer.Option(None, "--split", hidden=True, help="Deprecated: --part."),
    test_domain: Optional[str] = typer.Option(None, "--test-domain", hidden=True, help="Deprecated: --domain."),
) -> None:
    """Per-class accuracy, confusion matrix, domain gap and mistakes of a run, written to RUN/eval/.

    Another part, checkpoint or one domain is stored beside it (RUN/eval/<part>-<checkpoint>[-<domain>]/) and
    never replaces it: compare, report and sweep read only the default evaluation of the finished run.
    """
    from rich.progress import Progress
    from rich.table import Table

    from stylecls.evaluate import evaluate

    part = _renamed("--split", "--part", split, part)
    domain = _renamed("--test-domain", "--domain", test_domain, domain)
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("evaluating", total=None)
        result = evaluate(
            run, checkpoint, part=part, domain=domain, data_root=data_root, device=device, batch_size=batch_size,
            workers=workers, progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    m = result.metrics
    where = m["part"] + (f", domain {m['domain']}" if m["domain"] else "")
    table = Table(title=f"{run} ({checkpoint} checkpoint, epoch {m['epoch']}, {where})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("top1", "top5", "balanced_accuracy", "macro_f1"):
        if key in m:
            table.add_row(key, pct(m[key]))
    table.add_row("loss", f"{m['loss']:.4f}")
    table.add_row("images", f"{m['count']:,}")
    for name, acc in m.get("per_domain", {}).items():
        table.add_row(f"accuracy {name}", pct(acc))
    if "domain_gap" in m:
        table.add_row("in-domain val accuracy", pct(m["in_domain_val_acc"]))
        table.add_row(f"held-out accuracy ({', '.join(m['held_out_domains'])})", pct(m["held_out_acc"]))
        table.add_row("domain gap", pct(m["domain_gap"]))
    console.print(table)
    console.print(f"wrote {result.out_dir}/")
    if m["run_state"] != "done":
        err_console.print(f"warning: the run is {m['run_state']} (epoch {m['epoch']}): compare, report and sweep "
                          f"will not use this evaluation; evaluate again when training is done", highlight=False)
    elif m["checkpoint"] != "best" or m["domain"] or result.out_dir.name != "eval":
        err_console.print("note: compare, report and sweep use only the evaluation of best.pt on the run's reported "
                          "part, all domains (`stylecls evaluate RUN`); this one is kept beside it", highlight=False)


SkipUnevaluatedOpt = flag(
    "--skip-unevaluated", help="Leave out (and list) runs without a usable evaluation of their selected "
    "checkpoint (unfinished, not evaluated, or evaluated stale) instead of refusing.",
)


def print_left_out(left_out: Sequence[LeftOut]) -> None:
    """Every run folder left out, with why and the fix (stderr)."""
    for r in left_out:
        err_console.print(f"[yellow]left out[/] {r.line()}", highlight=False, markup=True)


@app.command("compare")
def compare_cmd(
    paths: list[Path] = typer.Argument(..., help="Run folders, or folders holding runs."),
    by: str = typer.Option(
        "method", "--by", help="What the rows of each table compare: method (block, feature augmentation and "
        "IBN-Net-a, each on the same backbone), block, or arch."
    ),
    fmt: str = typer.Option("md", "--format", help="What to print: md (tables) or csv."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Where comparison.md/.csv go (default: the first folder of runs, else the current folder)."
    ),
    skip_unevaluated: bool = SkipUnevaluatedOpt,
) -> None:
    """SRM vs SE vs none: mean ± std over seeds, DTD splits and held-out domains (needs `evaluate` first)."""
    from stylecls.compare import comparison, write_comparison
    from stylecls.runfolder import is_run_folder

    if fmt not in ("md", "csv"):
        raise StyleclsError(f"unknown --format {fmt!r}; choose one of: csv, md")
    if out is None:
        first = paths[0]
        out = first if first.is_dir() and not is_run_folder(first) else Path(".")
    result = comparison(paths, by, skip_unevaluated)
    out_dir = write_comparison(result, out)
    if fmt == "csv":
        sys.stdout.write(result.summary.to_csv(index=False))
    else:
        from rich.markdown import Markdown

        console.print(Markdown(result.markdown))
    print_left_out(result.left_out)
    err_console.print(f"wrote {out_dir / 'comparison.md'} and {out_dir / 'comparison.csv'}")


@app.command("inspect")
def inspect_cmd(
    run: Path = typer.Argument(..., help="Run folder with an SRM, SE, GE or ECA model."),
    checkpoint: str = CheckpointOpt,
    data_root: Optional[Path] = EvalDataRootOpt,
    device: str = DeviceOpt,
    batch_size: int = BatchOpt,
    workers: int = WorkersOpt,
) -> None:
    """What the blocks learned: SRM's mean-vs-std style weights, gate statistics by class and domain."""
    from rich.table import Table

    from stylecls.inspect_model import DISTANCE_NOTE, inspect_run

    result = inspect_run(run, checkpoint, data_root, device, batch_size, workers)
    gates = result.gates
    table = Table(title=f"{run}: per layer", caption=DISTANCE_NOTE, caption_justify="left")
    table.add_column("layer")
    if result.style_weights is not None:
        table.add_column("mean |w_μ|", justify="right")
        table.add_column("mean |w_σ|", justify="right")
        weights = result.style_weights.assign(
            mean=result.style_weights["mean"].abs(), std=result.style_weights["std"].abs()
        ).groupby("layer", sort=False)[["mean", "std"]].mean()
    table.add_column("mean gate", justify="right")
    table.add_column("largest domain distance", justify="right")
    for layer, g in gates.groupby("layer", sort=False):
        doms = g[g["by"] == "domain"]
        overall = (doms["mean"] * doms["count"]).sum() / max(doms["count"].sum(), 1)
        far = doms.loc[doms["distance"].idxmax()] if not doms.empty else None
        row = [layer]
        if result.style_weights is not None:
            row += [f"{weights.loc[layer, 'mean']:.3f}", f"{weights.loc[layer, 'std']:.3f}"]
        row += [f"{overall:.3f}", "" if far is None else f"{far['distance']:.4f} ({far['group']})"]
        table.add_row(*row)
    console.print(table)
    console.print(f"wrote {', '.join(p.name for p in result.files)} to {result.out_dir}/")
