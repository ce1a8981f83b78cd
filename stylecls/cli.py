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
