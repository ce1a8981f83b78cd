"""The prepared cache: a memo of :func:`~stylecls.data.decode.decode_pixels` for every file of a dataset.

Layout: ``<cache>/prepared/<dataset>-<root digest>-<pixels key>/`` (the folder name is the *cache
key* a run records) with ``pixels.u8`` (each image's pre-resized HWC uint8 bytes, one after the
other), ``index.csv`` (path, bytes, mtime_ns, offset, height, width; offset -1 for a file that did
not decode) and ``meta.json``. A file is served from the cache only while its size and mtime match
the index and the cache was written by the same pipeline and decoder versions; anything else is
decoded on the fly by the same function, so the cache can only make loading faster, never
different.

Writers claim a cache with an exclusive lock file (a second ``prepare`` of the same cache is refused),
write into a temporary folder and rename it into place; SIGTERM removes the temporary folder, and
temporary folders left by a killed writer are removed by the next ``prepare``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import PIL
import torch
import torchvision
from torch.utils.data import DataLoader, Dataset

from stylecls.data.catalog import Catalog, catalog, dataset_dir
from stylecls.data.decode import DECODE_ERRORS, decode_pixels, reason
from stylecls.data.paths import cache_root
from stylecls.data.pixels import DEFAULT_PRE_RESIZE, Pixels
from stylecls.data.registry import DATASETS
from stylecls.errors import StyleclsError

VERSION = 3
PIXELS_FILE = "pixels.u8"
_TEMP = re.compile(r"^\.(?P<name>.+)\.tmp-\d+$")
_LEGACY_TEMP = re.compile(r"^\..+-[A-Za-z0-9_]{8}$")  # tempfile.mkdtemp folders of cache version 2


def decoders() -> dict[str, str]:
    """Library versions whose decoders make the pixels (a cache from other versions is not used)."""
    return {"torchvision": torchvision.__version__, "pillow": PIL.__version__}


def _copy_prefix(dataset: str, root: str | Path) -> str:
    """The start of every cache folder name of one copy of a dataset."""
    return f"{dataset}-{hashlib.sha1(os.path.abspath(root).encode()).hexdigest()[:10]}-"


def prepared_dir(dataset: str, root: str | Path, pixels: Pixels) -> Path:
    """The cache folder of (dataset copy, pre-resized pixels); its name is the cache key."""
    return cache_root() / "prepared" / f"{_copy_prefix(dataset, root)}{pixels.key()}"


def stat_sources(paths: list[str]) -> pd.DataFrame:
    """(path, bytes, mtime_ns) of each file; -1 where it cannot be read."""
    sizes, mtimes = [], []
    for p in paths:
        try:
            st = os.stat(p)
            sizes.append(st.st_size)
            mtimes.append(st.st_mtime_ns)
        except OSError:
            sizes.append(-1)
            mtimes.append(-1)
    return pd.DataFrame({"path": paths, "bytes": sizes, "mtime_ns": mtimes})


def fingerprint(stats: pd.DataFrame) -> str:
    h = hashlib.sha1()
    for row in stats.itertuples(index=False):
        h.update(f"{row.path}\0{row.bytes}\0{row.mtime_ns}\n".encode())
    return h.hexdigest()


def _read_meta(folder: Path) -> dict[str, Any]:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _usable(meta: dict[str, Any], pixels: Pixels) -> bool:
    return meta.get("version") == VERSION and meta.get("key") == pixels.key() and meta.get("decoders") == decoders()


@dataclass
class CacheLookup:
    """Where each row's pixels come from: ``offsets[i] >= 0`` -> the cache ``key``, else decoded on the fly."""

    key: str | None = None
    file: Path | None = None
    offsets: np.ndarray | None = None  # int64 (N,) byte offset in the cache file, -1: not cached
    shapes: np.ndarray | None = None  # int64 (N, 2) height, width
    note: str | None = None  # why a prepared cache is not (fully) used, for the caller to print once

    @property
    def hits(self) -> int:
        return 0 if self.offsets is None else int((self.offsets >= 0).sum())


def _other_caches(folder: Path, prefix: str) -> list[dict[str, Any]]:
    """The meta of the other prepared caches of the same copy (other pixels)."""
    if not folder.parent.is_dir():
        return []
    others = sorted(p for p in folder.parent.glob(f"{prefix}*") if p != folder and p.is_dir())
    return [m for m in map(_read_meta, others) if m]


@dataclass(frozen=True)
class CacheSource:
    """Which copy of which dataset a prepared cache memoises: the dataset and its folder (not the data root)."""

    dataset: str
    folder: str

    @classmethod
    def of(cls, dataset: str, data_root: str | Path | None) -> CacheSource | None:
        """The source of ``dataset`` under ``data_root`` as a run recorded it (None: not a registered dataset)."""
        if dataset not in DATASETS:
            return None
        return cls(dataset, str(dataset_dir(dataset, data_root)))

    @classmethod
    def of_catalog(cls, data: Catalog) -> CacheSource:
        """The source of a catalog's rows (and of any subset of them)."""
        return cls(data.info.dataset, str(data.info.folder))


def lookup(source: CacheSource | None, pixels: Pixels, paths: list[str]) -> CacheLookup:
    """Which of ``paths`` an up-to-date prepared cache of exactly this pipeline holds."""
    if source is None:
        return CacheLookup()
    folder = prepared_dir(source.dataset, source.folder, pixels)
    prepare_cmd = (f"`stylecls data prepare --dataset {source.dataset} --size {pixels.img_size} "
                   f"--pre-resize {pixels.pre_resize}` prepares it")
    meta = _read_meta(folder)
    if not meta:
        others = _other_caches(folder, _copy_prefix(source.dataset, source.folder))
        if not others:
            return CacheLookup()
        held = "; ".join(str(m.get("stored", "?")) for m in others)
        return CacheLookup(note=f"the prepared cache of {source.dataset} holds other pixels ({held}), not "
                                f"{pixels.stored()}: decoding on the fly; {prepare_cmd}")
    if not _usable(meta, pixels):
        return CacheLookup(note=f"the prepared cache {folder.name} was written by another version of stylecls or "
                                f"its decoders: decoding on the fly; {prepare_cmd} again")
    try:
        index = pd.read_csv(folder / "index.csv")
    except (OSError, ValueError):
        return CacheLookup()
    known = {p: (b, m, o, h, w) for p, b, m, o, h, w in
             index[["path", "bytes", "mtime_ns", "offset", "height", "width"]].itertuples(index=False)}
    offsets = np.full(len(paths), -1, dtype=np.int64)
    shapes = np.zeros((len(paths), 2), dtype=np.int64)
    for i, (p, b, m) in enumerate(stat_sources(paths).itertuples(index=False)):
        hit = known.get(p)
        if hit is not None and hit[0] == b and hit[1] == m and hit[2] >= 0:
            offsets[i], shapes[i] = hit[2], hit[3:]
    found = CacheLookup(folder.name, folder / PIXELS_FILE, offsets, shapes)
    missing = len(paths) - found.hits
    if found.hits == 0:
        return CacheLookup(note=f"the prepared cache {folder.name} holds none of these {len(paths):,} images as they "
                                f"are now: decoding on the fly; {prepare_cmd} again")
    if missing:
        found.note = (f"{missing:,} of {len(paths):,} images are not in the prepared cache {folder.name} as they are "
                      "now (changed or undecodable): those are decoded on the fly")
    return found


@dataclass
class Prepared:
    """What ``prepare`` did: the cache folder and key, how many images, which files could not be decoded."""

    folder: Path
    pixels: Pixels
    images: int
    up_to_date: bool
    seconds: float
    bad: list[str] = field(default_factory=list)
    cleaned: int = 0  # stale temporary folders of killed writers removed

    @property
    def key(self) -> str:
        return self.folder.name


class _Decoded(Dataset):
    def __init__(self, paths: list[str], pixels: Pixels) -> None:
        self.paths, self.pixels = paths, pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str]:
        try:
            return i, decode_pixels(self.paths[i], self.pixels), ""
        except DECODE_ERRORS as e:
            return i, None, reason(e)


class PrepareInterrupted(SystemExit):
    """SIGTERM during ``prepare``: the temporary folder is removed, the process exits 143."""


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into :class:`PrepareInterrupted` (so cleanup runs); the old handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise PrepareInterrupted(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _clean_stale(parent: Path, mine: str) -> int:
    """Remove temporary folders whose writer is gone (its lock is free, or the folder is ours)."""
    removed = 0
    for entry in parent.iterdir():
        if not entry.is_dir() or not entry.name.startswith("."):
            continue
        match = _TEMP.match(entry.name)
        if match:
            if match["name"] != mine:
                with open(parent / f".{match['name']}.lock", "a") as other:
                    try:
                        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # another prepare is writing it right now
        elif not _LEGACY_TEMP.match(entry.name):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed += 1
    return removed


@contextmanager
def _claim(folder: Path) -> Iterator[int]:
    """Hold the cache's lock for the whole write (a concurrent prepare is refused); clean stale temp folders."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StyleclsError(f"cannot create the cache folder {folder.parent}: {e.strerror}") from None
    with open(folder.parent / f".{folder.name}.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StyleclsError(
                f"another `stylecls data prepare` is writing {folder} right now: wait for it to finish "
                "(its cache serves this pipeline as well)"
            ) from None
        yield _clean_stale(folder.parent, folder.name)


def _write_pixels(
    paths: list[str], pixels: Pixels, out: Path, workers: int, progress: bool, label: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode every file in order into ``out``; (offsets, shapes, bad lines)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    offsets = np.full(len(paths), -1, dtype=np.int64)
    shapes = np.zeros((len(paths), 2), dtype=np.int64)
    bad: list[str] = []
    loader = DataLoader(_Decoded(paths, pixels), batch_size=32, num_workers=workers, collate_fn=list)
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with open(out, "wb") as f, Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("prepare", total=len(paths))
        for batch in loader:
            for i, image, error in batch:
                if image is None:
                    bad.append(f"{paths[i]}: {error}")
                    continue
                offsets[i], shapes[i] = f.tell(), image.shape[1:]
                f.write(image.permute(1, 2, 0).numpy().tobytes())  # the contiguous HWC array behind the view
            bar.advance(task, len(batch))
    return offsets, shapes, bad


def write_cache(
    data: Catalog, pixels: Pixels, *, workers: int = 2, progress: bool = True, force: bool = False
) -> Prepared:
    """Memoise :func:`decode_pixels` for every image of a catalog (skipped when up to date)."""
    if workers < 0:
        raise StyleclsError(f"--workers must be 0 (decode in this process) or more, not {workers}")
    dataset, source = data.info.dataset, str(data.info.folder)
    start = time.perf_counter()
    cache_root(create=True)  # a clear error for an unusable $STYLECLS_CACHE before any work
    folder = prepared_dir(dataset, source, pixels)
    paths = sorted(set(data.frame["path"].astype(str)))
    stats = stat_sources(paths)
    digest = fingerprint(stats)
    with _claim(folder) as cleaned:
        meta = _read_meta(folder)
        if not force and meta.get("fingerprint") == digest and _usable(meta, pixels):
            return Prepared(folder, pixels, meta["images"], True, time.perf_counter() - start, meta["bad"], cleaned)
        tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
        try:
            tmp.mkdir()
            with _sigterm_raises():
                label = f"preparing {dataset} at {pixels.stored()}"
                offsets, shapes, bad = _write_pixels(paths, pixels, tmp / PIXELS_FILE, workers, progress, label)
                stats["offset"], stats["height"], stats["width"] = offsets, shapes[:, 0], shapes[:, 1]
                stats.to_csv(tmp / "index.csv", index=False)
                meta = {
                    "version": VERSION,
                    "key": pixels.key(),
                    "stored": pixels.stored(),
                    "pixels": pixels.to_dict(),
                    "decoders": decoders(),
                    "dataset": dataset,
                    "root": source,
                    "images": int((offsets >= 0).sum()),
                    "fingerprint": digest,
                    "bad": bad,
                }
                (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
                if folder.exists():
                    shutil.rmtree(folder)
                os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return Prepared(folder, pixels, meta["images"], False, time.perf_counter() - start, bad, cleaned)


def prepare(
    name: str,
    root: str | Path | None = None,
    size: int = 128,
    *,
    pre_resize: str = DEFAULT_PRE_RESIZE,
    workers: int = 2,
    progress: bool = True,
    force: bool = False,
    **options: Any,
) -> Prepared:
    """Prepare the cache that runs of dataset ``name`` at ``--img-size size --pre-resize pre_resize`` read."""
    pixels = Pixels(size, pre_resize)
    return write_cache(catalog(name, root, **options), pixels, workers=workers, progress=progress, force=force)
