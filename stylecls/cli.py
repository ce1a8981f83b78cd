"""The ``stylecls`` command line: train, evaluate, compare, inspect, data, models.

Heavy modules are imported inside the commands so that ``stylecls --help`` stays instant.
A :class:`~stylecls.errors.StyleclsError` becomes one red line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from stylecls.errors import StyleclsError

app = typer.Typer(
    name="stylecls",
    help="Classify images where style matters; compare SRM, SE and plain backbones.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="List, check and prepare datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)


# --- models ---------------------------------------------------------------------------------

# --- data -----------------------------------------------------------------------------------

DataRootOpt = typer.Option(None, "--data-root", help="Data root (default: $STYLECLS_DATA or ./datasets).")


def _data_options(split: Optional[int], task: Optional[str], seed: Optional[int], splits_dir: Optional[Path]) -> dict:
    """Only the options the user set, so each dataset can refuse the ones it does not have."""
    given = {"split": split, "task": task, "seed": seed, "splits_dir": splits_dir}
    return {k: v for k, v in given.items() if v is not None}


@data_app.command("list")
def data_list(data_root: Optional[Path] = DataRootOpt) -> None:
    """Show every dataset, where it is looked for, whether it is there and its counts."""
    from rich.table import Table

    from stylecls.data import list_datasets

    table = Table(title="stylecls datasets", title_justify="left")
    for col in ("dataset", "where", "status", "images", "expected", "classes", "domains"):
        table.add_column(col, justify="right" if col in ("images", "expected", "domains") else "left")
    rows = list_datasets(data_root)
    colour = {"complete": "green", "incomplete": "yellow", "missing": "red"}
    for r in rows:
        status = f"[{colour[r['status']]}]{r['status']}[/]" if r["status"] in colour else r["status"]
        table.add_row(r["dataset"], r["where"], status,
                      *(f"{r[k]:,}" if isinstance(r[k], int) else str(r[k]) for k in ("images", "expected", "classes", "domains")))
    console.print(table)
    for r in rows:
        if r["status"] == "missing":
            console.print(f"{r['dataset']}: get it from {r['source']} (see datasets/README.md)", highlight=False)


@data_app.command("check")
def data_check(
    dataset: str = typer.Option(..., "--dataset", "-d", help="demo, dtd, pacs, office_home, wikiart or folder."),
    data_root: Optional[Path] = DataRootOpt,
    deep: bool = typer.Option(False, "--deep", help="Decode every image and list the ones that fail."),
    split: Optional[int] = typer.Option(None, "--split", help="DTD official split 1..10."),
    task: Optional[str] = typer.Option(None, "--task", help="WikiArt task: style, genre or artist."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of seeded splits."),
    splits_dir: Optional[Path] = typer.Option(None, "--splits-dir", help="PACS k-fold lists folder."),
    workers: int = typer.Option(2, "--workers", help="Decoding processes for --deep."),
) -> None:
    """Compare a copy with a complete one; exit 0 only if it is complete (and, with --deep, readable)."""
    from stylecls.data import check

    report = check(dataset, data_root, deep=deep, workers=workers, **_data_options(split, task, seed, splits_dir))
    report.render(console)
    raise typer.Exit(0 if report.ok else 1)


@data_app.command("prepare")
def data_prepare(
    dataset: str = typer.Option(..., "--dataset", "-d", help="demo, dtd, pacs, office_home, wikiart or folder."),
    size: int = typer.Option(..., "--size", "-s", help="Training image size (the cache stores size/0.875 px)."),
    data_root: Optional[Path] = DataRootOpt,
    split: Optional[int] = typer.Option(None, "--split", help="DTD official split 1..10."),
    task: Optional[str] = typer.Option(None, "--task", help="WikiArt task: style, genre or artist."),
    splits_dir: Optional[Path] = typer.Option(None, "--splits-dir", help="PACS k-fold lists folder."),
    workers: int = typer.Option(2, "--workers", help="Decoding processes."),
    force: bool = typer.Option(False, "--force", help="Rewrite the cache even if it is up to date."),
) -> None:
    """Decode and resize a dataset once into the cache; training then reads it automatically."""
    from stylecls.data import prepare

    if size < 8:
        raise StyleclsError(f"--size must be at least 8 px, not {size}")
    done = prepare(dataset, data_root, size, workers=workers, force=force,
                   **_data_options(split, task, None, splits_dir))
    state = "already up to date" if done.up_to_date else f"written in {done.seconds:.1f} s"
    console.print(f"{dataset}: {done.images:,} images at {done.stored_size} px in {done.folder} ({state})",
                  highlight=False)
    if done.bad:
        console.print(f"[yellow]{len(done.bad)} files could not be decoded and are not cached:[/]")
        for line in done.bad:
            console.print(f"  {line}", highlight=False)


# --- train ----------------------------------------------------------------------------------

# --- evaluate / compare / inspect -----------------------------------------------------------

CheckpointOpt = typer.Option("best", "--checkpoint", help="Which checkpoint: best or last.")
EvalDataRootOpt = typer.Option(None, "--data-root", help="Where the run's images are now (default: its config's data root).")
DeviceOpt = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
BatchOpt = typer.Option(128, "--batch-size", min=1, help="Images per forward pass.")
WorkersOpt = typer.Option(2, "--workers", min=0, help="Data-loading worker processes.")


def _pct(x: object) -> str:
    return "" if x is None else f"{100 * float(x):.2f}%"


@app.command("evaluate")
def evaluate_cmd(
    run: Path = typer.Argument(..., help="Run folder (made by `stylecls train`)."),
    checkpoint: str = CheckpointOpt,
    split: Optional[str] = typer.Option(None, "--split", help="Part to report: test (default when present) or val."),
    test_domain: Optional[str] = typer.Option(None, "--test-domain", help="Report on this domain of the part only."),
    data_root: Optional[Path] = EvalDataRootOpt,
    device: str = DeviceOpt,
    batch_size: int = BatchOpt,
    workers: int = WorkersOpt,
) -> None:
    """Per-class accuracy, confusion matrix, domain gap and mistakes of a run, written to RUN/eval/."""
    from rich.progress import Progress
    from rich.table import Table

    from stylecls.evaluate import evaluate

    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("evaluating", total=None)
        result = evaluate(
            run, checkpoint, split, test_domain, data_root, device, batch_size, workers,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    m = result.metrics
    where = m["part"] + (f", domain {m['test_domain']}" if m["test_domain"] else "")
    table = Table(title=f"{run} ({checkpoint} checkpoint, epoch {m['epoch']}, {where})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("top1", "top5", "balanced_accuracy", "macro_f1"):
        if key in m:
            table.add_row(key, _pct(m[key]))
    table.add_row("loss", f"{m['loss']:.4f}")
    table.add_row("images", f"{m['count']:,}")
    for name, acc in m.get("per_domain", {}).items():
        table.add_row(f"accuracy {name}", _pct(acc))
    if "domain_gap" in m:
        table.add_row("in-domain val accuracy", _pct(m["in_domain_val_acc"]))
        table.add_row(f"held-out accuracy ({', '.join(m['held_out_domains'])})", _pct(m["held_out_acc"]))
        table.add_row("domain gap", _pct(m["domain_gap"]))
    console.print(table)
    console.print(f"wrote {result.out_dir}/")


@app.command("compare")
def compare_cmd(
    paths: list[Path] = typer.Argument(..., help="Run folders, or folders holding runs."),
    by: str = typer.Option("block", "--by", help="What the rows of each table compare: block or arch."),
    fmt: str = typer.Option("md", "--format", help="What to print: md (tables) or csv."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Where comparison.md/.csv go (default: the first folder of runs, else the current folder)."
    ),
) -> None:
    """SRM vs SE vs none: mean ± std over seeds, DTD splits and held-out domains (needs `evaluate` first)."""
    from stylecls.compare import compare
    from stylecls.runfolder import CONFIG

    if fmt not in ("md", "csv"):
        raise StyleclsError(f"unknown --format {fmt!r}; choose one of: csv, md")
    if out is None:
        first = paths[0]
        out = first if first.is_dir() and not (first / CONFIG).is_file() else Path(".")
    summary, markdown, out_dir = compare(paths, by, out)
    if fmt == "csv":
        sys.stdout.write(summary.to_csv(index=False))
    else:
        from rich.markdown import Markdown

        console.print(Markdown(markdown))
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

    from stylecls.inspect_model import inspect_run

    result = inspect_run(run, checkpoint, data_root, device, batch_size, workers)
    gates = result.gates
    table = Table(title=f"{run}: per layer")
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



def main() -> None:
    """Entry point: run the app, turning user errors into one message and exit code 2."""
    try:
        code = app(standalone_mode=False)  # without standalone mode, typer.Exit(n) comes back as n
    except StyleclsError as e:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
    except Exception as e:  # usage errors (bad options) keep click's exit code 2; typer vendors click
        if callable(getattr(e, "show", None)) and isinstance(getattr(e, "exit_code", None), int):
            e.show()
            sys.exit(e.exit_code)
        if type(e).__name__ == "Abort":
            err_console.print("[yellow]aborted[/]")
            sys.exit(1)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)
