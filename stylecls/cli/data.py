"""`stylecls data ...`: list, check and prepare datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from stylecls.cli.app import DataRootOpt, console, data_app, data_options, err_console, flag, registry_option
from stylecls.errors import StyleclsError

#: ``--dataset`` of the data commands: a name from the dataset registry (``stylecls data list`` shows them all).
DatasetOpt = registry_option(..., "--dataset", "-d", registry="stylecls.data:DATASETS",
                             help="Dataset (`stylecls data list` shows each).")


@data_app.command("list")
def data_list(data_root: Optional[Path] = DataRootOpt) -> None:
    """Show every dataset, where it is looked for, whether it is there and its counts."""
    from rich.table import Table

    from stylecls.data import list_datasets

    table = Table(title="stylecls datasets", title_justify="left")
    for col in ("dataset", "where", "status", "images", "expected", "classes", "domains", "about"):
        table.add_column(col, justify="right" if col in ("images", "expected", "domains") else "left")
    rows = list_datasets(data_root)
    colour = {"complete": "green", "incomplete": "yellow", "missing": "red"}
    for r in rows:
        status = f"[{colour[r['status']]}]{r['status']}[/]" if r["status"] in colour else r["status"]
        counts = (f"{r[k]:,}" if isinstance(r[k], int) else str(r[k]) for k in ("images", "expected", "classes",
                                                                                   "domains"))
        table.add_row(r["dataset"], r["where"], status, *counts, r["help"])
    console.print(table)
    for r in rows:
        if r["status"] == "missing":
            console.print(f"{r['dataset']}: get it from {r['source']} (see datasets/README.md)", highlight=False)


@data_app.command("check")
def data_check(
    dataset: str = DatasetOpt,
    data_root: Optional[Path] = DataRootOpt,
    deep: bool = flag("--deep", help="Decode every image and list the ones that fail."),
    split: Optional[int] = typer.Option(None, "--split", help="DTD official split 1..10."),
    task: Optional[str] = typer.Option(None, "--task", help="WikiArt task: style, genre or artist."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of seeded splits."),
    splits_dir: Optional[Path] = typer.Option(None, "--splits-dir", help="PACS k-fold lists folder."),
    workers: int = typer.Option(2, "--workers", min=0, help="Decoding processes for --deep (0: in this process)."),
) -> None:
    """Compare a copy with a complete one; exit 0 only if it is complete (and, with --deep, readable)."""
    from stylecls.data import check

    report = check(dataset, data_root, deep=deep, workers=workers, **data_options(split, task, seed, splits_dir))
    report.render(console)
    raise typer.Exit(0 if report.ok else 1)


@data_app.command("prepare")
def data_prepare(
    dataset: str = DatasetOpt,
    size: int = typer.Option(..., "--size", "-s", help="The --img-size of the runs this cache serves."),
    pre_resize: Optional[str] = typer.Option(
        None, "--pre-resize",
        help="The --pre-resize of those runs: shorter side = factor x size, or original (default: the recipe's).",
    ),
    data_root: Optional[Path] = DataRootOpt,
    split: Optional[int] = typer.Option(None, "--split", help="DTD official split 1..10."),
    task: Optional[str] = typer.Option(None, "--task", help="WikiArt task: style, genre or artist."),
    splits_dir: Optional[Path] = typer.Option(None, "--splits-dir", help="PACS k-fold lists folder."),
    workers: int = typer.Option(2, "--workers", min=0, help="Decoding processes (0: in this process)."),
    force: bool = flag("--force", help="Rewrite the cache even if it is up to date."),
) -> None:
    """Decode and pre-resize a dataset once into the cache: a pure speed-up for runs with the same pixels.

    Runs with --img-size SIZE and --pre-resize RULE then read it instead of decoding each file; the
    pixels are identical either way, so preparing never changes a result.
    """
    from stylecls.data import prepare
    from stylecls.data.cache import PrepareInterrupted
    from stylecls.recipes import recipe_for

    if size < 8:
        raise StyleclsError(f"--size must be at least 8 px, not {size}")
    pre_resize = pre_resize or recipe_for(dataset).pre_resize
    try:
        done = prepare(dataset, data_root, size, pre_resize=pre_resize, workers=workers, force=force,
                       **data_options(split, task, None, splits_dir))
    except PrepareInterrupted:
        err_console.print("interrupted (SIGTERM): the partial cache was removed", highlight=False)
        raise
    if done.cleaned:
        console.print(f"removed {done.cleaned} temporary folder(s) left by an interrupted prepare", highlight=False)
    state = "already up to date" if done.up_to_date else f"written in {done.seconds:.1f} s"
    console.print(f"{dataset}: {done.images:,} images at {done.pixels.stored()} in {done.folder} ({state}); "
                  f"runs with --img-size {size} --pre-resize {pre_resize} read it", highlight=False, soft_wrap=True)
    if done.bad:
        console.print(f"[yellow]{len(done.bad)} files could not be decoded and are not cached:[/]")
        for line in done.bad:
            console.print(f"  {line}", highlight=False)
