"""`stylecls data download` and `stylecls data import`: get a dataset into the documented layout, then check it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from stylecls.cli.app import DataRootOpt, console, data_app, flag, registry_option


def _verdict(dataset: str, data_root: Optional[Path]) -> None:
    """Run the same check as `stylecls data check` and exit with its code (0 complete, 1 not)."""
    from stylecls.data import check

    report = check(dataset, data_root)
    report.render(console)
    raise typer.Exit(0 if report.ok else 1)


def _is_complete(check: Any, dataset: str, root: Path) -> bool:
    from stylecls.errors import StyleclsError

    try:
        return bool(check(dataset, root).ok)
    except StyleclsError:  # not there (or unreadable): download it
        return False


def _root(data_root: Optional[Path]) -> Path:
    from stylecls.data import default_root

    return Path(data_root).expanduser().absolute() if data_root is not None else default_root()


@data_app.command("download")
def data_download(
    dataset: str = registry_option(..., "--dataset", "-d", registry="stylecls.data:DOWNLOADABLE",
                                   help="A dataset with download sources (`stylecls data list` says which)."),
    data_root: Optional[Path] = DataRootOpt,
    source: Optional[str] = typer.Option(None, "--source", help="Use only this source (see --dry-run for the list)."),
    mirror: Optional[str] = typer.Option(
        None, "--mirror", help="Base URL that replaces the source's (an archive mirror, or a Hub endpoint)."),
    dry_run: bool = flag("--dry-run", help="Say what would be fetched, from where and how big."),
    force: bool = flag("--force", help="Download even if a complete copy is already there."),
) -> None:
    """Fetch a dataset from its verified sources, convert it to the documented layout, then check it."""
    from stylecls.data import check
    from stylecls.data.obtain import download, plan

    root = _root(data_root)
    if dry_run:
        for p in plan(dataset, source, mirror):
            size = f"{p.size / 1e6:,.1f} MB" if p.size else "size unknown"
            console.print(f"{dataset} <- [bold]{p.source}[/]: {p.where} ({size}) — {p.about}", highlight=False,
                          soft_wrap=True)
        console.print(f"into {root / dataset}", highlight=False)
        return
    if not force and _is_complete(check, dataset, root):
        console.print(f"{dataset} at {root / dataset} is already complete: nothing to download (--force to fetch "
                      "it again)", highlight=False)
        raise typer.Exit(0)
    done = download(dataset, root, source=source, mirror=mirror)
    console.print(f"{dataset}: {done.files:,} files from {done.source} into {done.folder}", highlight=False)
    for note in done.notes:
        console.print(f"  {note}", highlight=False)
    _verdict(dataset, root)


@data_app.command("import")
def data_import(
    dataset: str = registry_option(..., "--dataset", "-d", registry="stylecls.data:IMPORTABLE",
                                   help="A dataset with a parquet import format."),
    source: Path = typer.Option(
        ..., "--from", help="A parquet file or folder of shards, a zip/tar archive, or a folder "
        "(official, DomainBed or Dassl layout)."),
    data_root: Optional[Path] = DataRootOpt,
) -> None:
    """Convert a copy you already have into the documented layout, then check it."""
    from stylecls.data.importers import import_copy

    root = _root(data_root)
    done = import_copy(dataset, source, root)
    per_domain = ", ".join(f"{d} {n:,}" for d, n in sorted(done.by_domain.items()))
    console.print(f"{dataset}: {done.images:,} images into {done.folder} ({per_domain})", highlight=False)
    if done.split_files:
        console.print(f"  split files: {', '.join(done.split_files)}", highlight=False)
    _verdict(dataset, root)
