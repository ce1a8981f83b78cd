"""Turn copies a user already has (or the Hub sent) into the documented on-disk layouts.

Inputs: a parquet file or folder of shards in the dataset's parquet schema (its ``DatasetDef.parquet``),
a zip/tar archive, or a folder in the official, DomainBed or Dassl layout (a folder whose sub-folders are
the dataset's domains, with class folders inside, possibly under ``train``/``val``). Everything is written
into a hidden staging folder first and then moved into ``<root>/<folder>``, so importing twice gives the
same tree and an interrupted import leaves nothing where ``data check`` looks.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylecls.data.download import install_tree, safe_extract, staging, writable_root, writing
from stylecls.data.registry import IMPORTABLE, DatasetDef
from stylecls.data.scan import is_image
from stylecls.data.sources import ParquetSchema
from stylecls.errors import StyleclsError

PROVENANCE = "stylecls-source.json"
_ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


@dataclass
class Imported:
    """What an import wrote: images per domain, and where the split files came from."""

    dataset: str
    folder: Path
    images: int = 0
    by_domain: Counter = field(default_factory=Counter)
    split_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


def _canonical(names: tuple[str, ...] | list[str]) -> dict[str, str]:
    return {_norm(n): n for n in names}


def _importable(dataset: str) -> tuple[DatasetDef, ParquetSchema, tuple[str, ...], tuple[str, ...]]:
    """The definition, parquet schema, classes and domains of an importable dataset (else a clear error)."""
    d = IMPORTABLE.get_def(dataset, "dataset to import")
    assert d.parquet is not None and d.classes is not None and d.domains is not None  # DatasetDef.validate
    return d, d.parquet, d.classes, d.domains


def _progress(enabled: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    disable=not enabled)


# --- parquet --------------------------------------------------------------------------------------------


def class_names_from_metadata(schema: Any, column: str) -> list[str] | None:
    """The ClassLabel names that ``datasets`` stores in a parquet file's ``huggingface`` metadata, if any."""
    raw = (schema.metadata or {}).get(b"huggingface")
    if not raw:
        return None
    try:
        feature = json.loads(raw)["info"]["features"][column]
    except (KeyError, TypeError, ValueError):
        return None
    names = feature.get("names") if isinstance(feature, dict) else None
    return list(names) if names else None


def _image_name(cell: dict[str, Any], index: int) -> str:
    """The file name an image is written under: its own base name if the parquet kept one, else the row index."""
    raw = cell.get("path") or ""
    base = os.path.basename(raw.replace("\\", "/"))
    if base and not base.startswith(".") and re.fullmatch(r"[\w.\- ()',&+]+", base):
        return base
    from PIL import Image

    try:
        fmt = (Image.open(io.BytesIO(cell["bytes"])).format or "jpeg").lower()
    except Exception:  # noqa: BLE001 - unreadable bytes are written as they are and reported by data check --deep
        fmt = "jpeg"
    return f"{index:06d}.{'jpg' if fmt == 'jpeg' else fmt}"


def convert_parquet(dataset: str, files: list[Path], staged: Path, result: Imported, progress: bool) -> None:
    """Write every row of ``files`` as ``staged/<domain>/<class>/<name>`` (wikiart: ``staged/<style>/<name>``)."""
    import pyarrow.parquet as pq

    _, schema, class_names, domain_names = _importable(dataset)
    domains = _canonical(domain_names)
    canonical = _canonical(class_names)
    opened = []
    for path in files:
        try:
            pf = pq.ParquetFile(path)
        except Exception as e:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise StyleclsError(f"{path} is not a readable parquet file ({e})") from None
        present = pf.schema_arrow.names
        needed = [c for c in (schema.image, schema.label, schema.domain) if c]
        missing = [c for c in needed if c not in present]
        if missing:
            raise StyleclsError(
                f"{path.name} has no column {', '.join(map(repr, missing))} (it has {', '.join(present)}); a "
                f"{dataset} copy needs {', '.join(needed)} (column names: the parquet schema in the {dataset} "
                "module of stylecls.data.datasets)")
        raw_names = class_names_from_metadata(pf.schema_arrow, schema.label) or list(class_names)
        names = [canonical.get(_norm(n), "") for n in raw_names]  # "Action_Painting" -> "Action_painting"
        unknown = [n for n, c in zip(raw_names, names, strict=True) if not c]
        if unknown:
            raise StyleclsError(f"{path.name}: label names {unknown[:5]} are not {dataset} classes")
        opened.append((path, pf, names, needed))
    total = sum(pf.metadata.num_rows for _, pf, _, _ in opened)
    index = 0
    with _progress(progress) as bar:
        task = bar.add_task(f"{dataset}: writing images", total=total)
        for path, pf, names, needed in opened:
            for batch in pf.iter_batches(batch_size=256, columns=needed):
                cols = batch.to_pydict()
                for i, cell in enumerate(cols[schema.image]):
                    label = cols[schema.label][i]
                    if not isinstance(label, int) or not 0 <= label < len(names):
                        raise StyleclsError(f"{path.name} row {index}: label {label!r} outside 0..{len(names) - 1}")
                    cls = names[label]
                    if schema.domain:
                        raw = str(cols[schema.domain][i])
                        domain = domains.get(_norm(raw))
                        if domain is None:
                            raise StyleclsError(f"{path.name} row {index}: unknown {dataset} domain {raw!r}; "
                                                f"expected one of {', '.join(domain_names)}")
                        folder = staged / domain / cls
                    else:
                        domain, folder = dataset, staged / cls
                    if not isinstance(cell, dict) or not cell.get("bytes"):
                        raise StyleclsError(f"{path.name} row {index}: column {schema.image!r} holds no image bytes")
                    target = folder / _image_name(cell, index)
                    if target.exists():  # two rows with one name: keep both
                        target = folder / f"{target.stem}_{index:06d}{target.suffix}"
                    folder.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(cell["bytes"])
                    result.by_domain[domain] += 1
                    index += 1
                bar.advance(task, batch.num_rows)
    result.images = index


# --- folders and archives --------------------------------------------------------------------------------


def _find_domain_root(src: Path, wanted: dict[str, str], depth: int = 4) -> Path | None:
    """The folder under ``src`` with the most sub-folders named like ``wanted`` (shallowest on ties)."""
    best: tuple[int, int, Path] | None = None
    frontier = [(src, 0)]
    while frontier:
        folder, level = frontier.pop(0)
        kids = [p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")]
        hits = sum(1 for k in kids if _norm(k.name) in wanted)
        if hits and (best is None or hits > best[0]):
            best = (hits, level, folder)
        if level < depth:
            frontier.extend((k, level + 1) for k in kids)
    return best[2] if best else None


def copy_folder_layout(dataset: str, src: Path, staged: Path, result: Imported, progress: bool) -> None:
    """Copy a ``<domain>/<class>/*`` tree (official, DomainBed, Dassl with ``train``/``val``) into ``staged``."""
    _, schema, class_names, domain_names = _importable(dataset)
    classes = _canonical(class_names)
    single = schema.domain is None
    wanted = classes if single else _canonical(domain_names)
    top = _find_domain_root(src, wanted)
    if top is None:
        what = "style" if single else "domain"
        raise StyleclsError(f"no {dataset} {what} folders ({', '.join(list(wanted.values())[:6])} ...) under {src}")
    jobs: list[tuple[Path, Path, str]] = []
    for level1 in sorted(p for p in top.iterdir() if p.is_dir() and _norm(p.name) in wanted):
        name = wanted[_norm(level1.name)]
        if single:
            groups = [(level1, staged / name, dataset)]
        else:
            parts = [level1 / s for s in ("train", "val", "test", "crossval") if (level1 / s).is_dir()] or [level1]
            groups = [(c, staged / name / classes[_norm(c.name)], name) for part in parts
                      for c in sorted(part.iterdir()) if c.is_dir() and _norm(c.name) in classes]
        for folder, out, domain in groups:
            jobs.extend((f, out / f.name, domain) for f in sorted(folder.iterdir()) if f.is_file() and is_image(f.name))
    if not jobs:
        raise StyleclsError(f"found {dataset} folders under {top} but no images in class folders")
    with _progress(progress) as bar:
        task = bar.add_task(f"{dataset}: copying images", total=len(jobs))
        for f, out, domain in jobs:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, out)
            result.by_domain[domain] += 1
            bar.advance(task)
    result.images = len(jobs)
    _copy_split_files(dataset, src, staged, result)


def _copy_split_files(dataset: str, src: Path, staged: Path, result: Imported) -> None:
    """Bring the official split lists along when the input has them (files named like the dataset's lists)."""
    lists = _importable(dataset)[0].split_files
    if lists is None:
        return
    places = {Path(local).name: local for _, local in lists.files}
    for f in sorted(p for p in src.rglob("*") if p.name in places and p.is_file()):
        target = staged / places[f.name]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
        result.split_files.append(places[f.name])


# --- entry point -----------------------------------------------------------------------------------------


def _parquet_files(path: Path) -> list[Path]:
    return [path] if path.suffix == ".parquet" else sorted(path.rglob("*.parquet"))


def convert_into(dataset: str, src: Path, staged: Path, result: Imported, progress: bool) -> None:
    """Dispatch on what ``src`` is: parquet (file or folder of shards), archive, or folder layout."""
    if src.is_file() and src.name.endswith(_ARCHIVES):
        unpacked = staged.parent / f"{staged.name}-unpacked"
        try:
            safe_extract(src, unpacked)
            convert_into(dataset, unpacked, staged, result, progress)
        finally:
            shutil.rmtree(unpacked, ignore_errors=True)
        return
    files = _parquet_files(src) if (src.is_dir() or src.suffix == ".parquet") else []
    if files:
        convert_parquet(dataset, files, staged, result, progress)
    elif src.is_dir():
        copy_folder_layout(dataset, src, staged, result, progress)
    else:
        raise StyleclsError(f"{src}: expected a parquet file, a folder of parquet shards or images, "
                            "or a zip/tar archive")


def import_copy(dataset: str, src: str | Path, root: Path, *, progress: bool = True,
                provenance: dict[str, Any] | None = None) -> Imported:
    """Convert ``src`` into ``root/<folder>``; see the module docstring for what ``src`` may be."""
    d = _importable(dataset)[0]
    src = Path(src).expanduser()
    if not src.exists():
        raise StyleclsError(f"{src} does not exist")
    final = root / str(d.folder)
    if src.resolve() == final.resolve() or final.resolve() in src.resolve().parents:
        raise StyleclsError(f"--from {src} is the {dataset} folder it would be imported into ({final}); "
                            "import from the copy you downloaded, or run `stylecls data check` on this one")
    writable_root(root)
    result = Imported(dataset, final)
    with writing(f"importing {dataset} into {final}"), staging(root, dataset) as tmp:
        staged = tmp / "tree"
        staged.mkdir()
        convert_into(dataset, src.resolve(), staged, result, progress)
        record = {"dataset": dataset, "imported_from": str(src), "images": result.images,
                  "by_domain": dict(result.by_domain), "split_files": result.split_files, **(provenance or {})}
        (staged / PROVENANCE).write_text(json.dumps(record, indent=2) + "\n")
        install_tree(staged, final)
    return result
