"""The ``stylecls`` command line: train, evaluate, compare, inspect, data, models.

Heavy modules are imported inside the commands so that ``stylecls --help`` stays instant.
A :class:`~stylecls.errors.StyleclsError` becomes one red line on stderr and exit code 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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

def _console(stderr: bool = False) -> Console:
    """Rich console; when piped or logged (no terminal, no $COLUMNS) 160 columns rather than rich's 80,
    so paths and run names in tables are not cut."""
    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=160 if wide else None)


console = _console()
err_console = _console(stderr=True)


# --- models ---------------------------------------------------------------------------------


def _say_timing(what: str) -> None:
    err_console.print(f"timing {what} (plain and block side by side) ...", highlight=False)


@app.command("models")
def models_command(
    arch: list[str] = typer.Option(["resnet50"], "--arch", "-a", help="Backbone(s); repeat the option for several."),
    block: Optional[list[str]] = typer.Option(None, "--block", "-b", help="Block(s); default: all of them."),
    img_size: int = typer.Option(224, help="Input size for GFLOPs (and timing)."),
    num_classes: int = typer.Option(1000, help="Classifier size (1000 = ImageNet, the paper's counts)."),
    time: bool = typer.Option(False, "--time", help="Also time train/inference steps against the plain backbone."),
    batch_size: int = typer.Option(16, help="Batch size for --time."),
    repeats: int = typer.Option(10, help="Timed repeats per block for --time (the median ratio is shown)."),
) -> None:
    """Parameters, GFLOPs and (with --time) measured overhead of each block, per backbone."""
    from rich.table import Table

    from stylecls.blocks import BLOCKS
    from stylecls.models.overhead import measure_overhead

    blocks = block or list(BLOCKS)
    table = Table(title=f"recalibration overhead ({img_size} px, {num_classes} classes)")
    for col in ("arch", "block", "params", "Δparams", "GFLOPs"):
        table.add_column(col, justify="left" if col in ("arch", "block") else "right")
    if time:
        for col in ("train ms", "train ×", "infer ms", "infer ×"):
            table.add_column(col, justify="right")
    for a in arch:
        rows = measure_overhead(
            a, ["none", *[b for b in blocks if b != "none"]], img_size, batch_size, num_classes,
            time_steps=time, repeats=repeats, progress=_say_timing if time else None,
        )
        plain = rows[0].params
        for r in rows:
            if r.block not in blocks:
                continue
            cells = [a, r.block, f"{r.params:,}", f"{r.params - plain:+,}", f"{r.gflops:.3f}"]
            if time:
                cells += [f"{r.train_ms:.1f}", f"{r.train_ratio:.3f}", f"{r.infer_ms:.1f}", f"{r.infer_ratio:.3f}"]
            table.add_row(*cells)
    console.print(table)
    if time:
        console.print(
            f"batch {batch_size}, median of {repeats} side-by-side repeats; × = time / plain backbone's time"
            + (" (the 'none' row is plain against itself: the noise floor)." if "none" in blocks else ".")
        )

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


@contextmanager
def _interrupt_exits_130() -> Iterator[None]:
    """Ctrl-C during training: the loop has saved and printed the resume command; exit 128 + SIGINT."""
    try:
        yield
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _block_options(pairs: list[str]) -> dict:
    """``--block-option pooling=mean --block-option reduction=8`` -> {"pooling": "mean", "reduction": 8}."""
    import json

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise StyleclsError(f"--block-option takes KEY=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


# with --resume, the run's own settings apply; only where it runs may change
_RESUME_OPTIONS = {"resume", "device", "workers", "progress"}


@app.command("train")
def train_cmd(
    ctx: typer.Context,
    dataset: str = typer.Option("demo", "--dataset", "-d", help="demo, dtd, pacs, office_home, wikiart or folder."),
    block: str = typer.Option("none", "--block", "-b", help="Recalibration block: none, se, srm, ge, eca."),
    arch: Optional[str] = typer.Option(None, "--arch", "-a", help="Backbone (default: the dataset's recipe)."),
    block_option: list[str] = typer.Option([], "--block-option", help="Block option KEY=VALUE (repeatable), e.g. pooling=mean."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Data root (default: $STYLECLS_DATA or ./datasets)."),
    protocol: str = typer.Option("auto", "--protocol", help="auto, single, lodo or multi-domain."),
    test_domain: Optional[str] = typer.Option(None, "--test-domain", help="Held-out domain (leave-one-domain-out)."),
    split: Optional[int] = typer.Option(None, "--split", help="DTD official split 1..10."),
    task: Optional[str] = typer.Option(None, "--task", help="WikiArt task: style, genre or artist."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Epochs (default: recipe)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Images per step and process (default: recipe)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (default: recipe)."),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay", help="Weight decay (default: recipe; never on SRM)."),
    norm_bias_decay: bool = typer.Option(True, "--norm-bias-decay/--no-norm-bias-decay", help="Weight decay on BatchNorm and bias parameters."),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="sgd (momentum 0.9) or adamw."),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="cosine, step or constant (after the warmup)."),
    warmup_epochs: Optional[int] = typer.Option(None, "--warmup-epochs", min=0, help="Linear warmup epochs (default: recipe)."),
    label_smoothing: Optional[float] = typer.Option(None, "--label-smoothing", help="Label smoothing (default: recipe)."),
    img_size: Optional[int] = typer.Option(None, "--img-size", min=8, help="Training image size (default: recipe)."),
    min_crop: Optional[float] = typer.Option(None, "--min-crop", help="Smallest random crop, as an area fraction (default: recipe)."),
    pretrained: Optional[str] = typer.Option(None, "--pretrained", help="imagenet or a path to a state dict."),
    seed: int = typer.Option(0, "--seed", help="Seed of the weights, the order and the augmentation."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda, cuda:1 ..."),
    amp: Optional[bool] = typer.Option(None, "--amp/--no-amp", help="Mixed precision (default: on for CUDA)."),
    channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last", help="Default: on for CUDA."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the model."),
    sync_bn: bool = typer.Option(False, "--sync-bn", help="SyncBatchNorm across torchrun processes (CUDA)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="Data-loading processes (default: by device)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Drop undecodable images (counted) instead of stopping."),
    limit_train: Optional[int] = typer.Option(None, "--limit-train", min=1, help="Train on a seeded subset of N images."),
    limit_val: Optional[int] = typer.Option(None, "--limit-val", min=1, help="Validate on a seeded subset of N images."),
    out: Path = typer.Option(Path("runs"), "--out", "-o", help="Folder of run folders."),
    name: Optional[str] = typer.Option(None, "--name", help="Run folder name (default: dataset-arch-block-time)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder from its last.pt."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: on a terminal)."),
) -> None:
    """Train a backbone with a block; leaves runs/<name>/ and prints its path last."""
    from stylecls.train import TrainConfig, is_main_process, train_all
    from stylecls.train import resume as resume_run

    if resume is not None:
        given = sorted(
            p for p in ctx.params
            if p not in _RESUME_OPTIONS and getattr(ctx.get_parameter_source(p), "name", "") == "COMMANDLINE"
        )  # fmt: skip
        if given:
            raise StyleclsError(
                f"--resume continues a run with its own settings; drop {', '.join('--' + g.replace('_', '-') for g in given)}"
                " (only --device, --workers and --progress may change)"
            )
        with _interrupt_exits_130():
            path = resume_run(resume, device=None if device == "auto" else device, workers=workers, progress=progress)
        if is_main_process():
            console.print(str(path), highlight=False, soft_wrap=True)
        return
    config = TrainConfig(
        dataset=dataset, block=block, arch=arch, block_options=_block_options(block_option),
        pretrained=pretrained, data_root=str(data_root) if data_root else None,
        data_options={"task": task} if task else {}, protocol=protocol, test_domain=test_domain, split=split,
        img_size=img_size, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        optimizer=optimizer, schedule=schedule, warmup_epochs=warmup_epochs, label_smoothing=label_smoothing,
        min_crop=min_crop, norm_bias_decay=norm_bias_decay, seed=seed, device=device, amp=amp, compile=compile,
        channels_last=channels_last, sync_bn=sync_bn, workers=workers, skip_bad=skip_bad,
        limit_train=limit_train, limit_val=limit_val, out=str(out), name=name, progress=progress,
    )  # fmt: skip
    with _interrupt_exits_130():
        paths = train_all(config)
    if not is_main_process():  # under torchrun, rank 0 reports
        return
    if len(paths) > 1:
        console.print("runs (one per held-out domain):", highlight=False)
    for path in paths:
        console.print(str(path), highlight=False, soft_wrap=True)


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
    where = m["part"] + (f", domain {m['domain_filter']}" if m["domain_filter"] else "")
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
    """Entry point: run the app, turning user errors into one message and exit code 2.

    Click's standalone mode already handles usage errors (exit 2), ``typer.Exit`` and Ctrl-C;
    our own :class:`StyleclsError` passes through it and is reported here.
    """
    try:
        app()
    except StyleclsError as e:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except SystemExit as e:
        if e.code not in (0, None):
            raise  # success returns normally, so main() can be called from Python too
