"""The prepared cache: decoded, resized images in one memory-mapped uint8 array per dataset and size.

Layout: ``<cache>/prepared/<dataset>-<root digest>-<img_size>/`` with ``images.npy`` (N, R, R, 3)
where R = ``stored_size(img_size)`` (the centre square of the eval resize, see transforms.py; HWC so
that images come out channels-last, torch's fast layout for resizing uint8),
``index.csv`` (path, bytes, mtime_ns, row) and ``meta.json``. A file is served from the cache only
while its size and mtime match the index, so an edited or replaced image is decoded afresh and a
re-run of ``prepare`` rewrites the cache when the fingerprint of the sources changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from stylecls.data.paths import cache_root
from stylecls.data.transforms import cache_transform, stored_size

VERSION = 2


def prepared_dir(dataset: str, root: str | Path, img_size: int) -> Path:
    digest = hashlib.sha1(os.path.abspath(root).encode()).hexdigest()[:10]
    return cache_root() / "prepared" / f"{dataset}-{digest}-{img_size}"


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


def lookup(info: dict[str, Any] | None, img_size: int, paths: list[str]) -> tuple[Path, np.ndarray] | None:
    """(images.npy, row per path or -1) for the up-to-date cached files, or None without a cache."""
    if not info or "dataset" not in info or "root" not in info:
        return None
    folder = prepared_dir(info["dataset"], info["root"], img_size)
    try:
        meta = json.loads((folder / "meta.json").read_text())
        index = pd.read_csv(folder / "index.csv")
    except (OSError, ValueError):
        return None
    if meta.get("version") != VERSION or meta.get("stored_size") != stored_size(img_size):
        return None
    known = {p: (b, m, r) for p, b, m, r in index[["path", "bytes", "mtime_ns", "row"]].itertuples(index=False)}
    now = stat_sources(paths)
    rows = np.full(len(paths), -1, dtype=np.int64)
    for i, (p, b, m) in enumerate(now.itertuples(index=False)):
        hit = known.get(p)
        if hit is not None and hit[0] == b and hit[1] == m:
            rows[i] = hit[2]
    if not (rows >= 0).any():
        return None
    return folder / "images.npy", rows


@dataclass
class Prepared:
    """What ``prepare`` did: where the cache is, how many images, which files could not be decoded."""

    folder: Path
    images: int
    stored_size: int
    up_to_date: bool
    seconds: float
    bad: list[str] = field(default_factory=list)


class _Resized(Dataset):
    def __init__(self, paths: list[str], img_size: int) -> None:
        self.paths, self.transform = paths, cache_transform(img_size)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str]:
        from stylecls.data.loading import decode  # loading imports this module

        try:
            return i, self.transform(decode(self.paths[i])), ""
        except (RuntimeError, OSError, ValueError) as e:
            return i, None, f"{type(e).__name__}: {e}"


def write_cache(
    frame: pd.DataFrame, img_size: int, *, workers: int = 2, progress: bool = True, force: bool = False
) -> Prepared:
    """Decode and resize every image of a catalogue into the cache (skipped when up to date)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    info = frame.attrs["info"]
    start = time.perf_counter()
    folder = prepared_dir(info["dataset"], info["root"], img_size)
    paths = sorted(set(frame["path"].astype(str)))
    stats = stat_sources(paths)
    digest = fingerprint(stats)
    side = stored_size(img_size)
    meta_file = folder / "meta.json"
    if not force and meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text())
        except ValueError:
            meta = {}
        if meta.get("fingerprint") == digest and meta.get("version") == VERSION:
            return Prepared(folder, meta["images"], side, True, time.perf_counter() - start, meta.get("bad", []))
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        shape = (len(paths), side, side, 3)
        images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8, shape=shape)
        rows = np.arange(len(paths))
        bad: list[str] = []
        loader = DataLoader(_Resized(paths, img_size), batch_size=64, num_workers=workers, collate_fn=list)
        with Progress(
            TextColumn(f"preparing {info['dataset']} at {img_size} px"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            disable=not progress,
        ) as bar:
            task = bar.add_task("prepare", total=len(paths))
            for batch in loader:
                for i, image, error in batch:
                    if image is None:
                        rows[i] = -1
                        bad.append(f"{paths[i]}: {error}")
                    else:
                        images[i] = image.permute(1, 2, 0).numpy()
                bar.advance(task, len(batch))
        images.flush()
        del images
        stats["row"] = rows
        stats.to_csv(tmp / "index.csv", index=False)
        meta = {
            "version": VERSION,
            "dataset": info["dataset"],
            "root": info["root"],
            "img_size": img_size,
            "stored_size": side,
            "images": int((rows >= 0).sum()),
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
    return Prepared(folder, meta["images"], side, False, time.perf_counter() - start, bad)


def prepare(
    name: str,
    root: str | Path | None = None,
    size: int = 128,
    *,
    workers: int = 2,
    progress: bool = True,
    force: bool = False,
    **options: Any,
) -> Prepared:
    """Write the decoded, resized cache of dataset ``name`` for training at ``size`` px."""
    from stylecls.data.catalog import catalog

    return write_cache(catalog(name, root, **options), size, workers=workers, progress=progress, force=force)
