"""The run's two CSV files: the split rows (which image went to which part) and the per-epoch metrics.

Their formats live here; :class:`~stylecls.runfolder.RunFolder` says where they are and what they mean for a run
(its data root, whether it skips bad images).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from stylecls.atomic import atomic_write_bytes
from stylecls.errors import StyleclsError

__all__ = ["EPOCH_COLUMNS", "SPLIT_COLUMNS", "append_epoch", "read_epochs", "read_split", "trim_epochs", "write_split"]

SPLIT_COLUMNS = ("path", "label", "class_name", "domain", "split", "part")
#: the columns of the per-epoch metrics file
EPOCH_COLUMNS = (
    "epoch", "train_loss", "train_acc", "train_objective", "val_loss", "val_acc", "test_loss", "test_acc",
    "lr", "img_per_s", "seconds", "skipped",
)  # fmt: skip


def write_split(path: Path, frame: pd.DataFrame, root: Path) -> None:
    """The split rows, image paths relative to the data root exactly as the catalog found them (a symlinked
    image stays under the root, so a moved root with ``--data-root`` still finds it)."""
    rows = frame[list(SPLIT_COLUMNS)].copy()
    base = os.path.abspath(root)

    def relative(p: str) -> str:
        q = os.path.abspath(p)
        return Path(os.path.relpath(q, base)).as_posix() if q.startswith(base + os.sep) else q

    rows["path"] = rows["path"].map(relative)
    atomic_write_bytes(path, lambda f: f.write(rows.to_csv(index=False).encode()))


def read_split(path: Path, root: Path, check_images: bool, hint: str = "") -> pd.DataFrame:
    """The split rows with absolute image paths under ``root``; with ``check_images`` every image must exist
    (``hint``: what to do if not, appended to the message)."""
    if not path.is_file():
        raise StyleclsError(f"{path.parent} has no {path.name}: cannot tell which images it was trained on")
    try:
        frame = pd.read_csv(path, dtype={"path": str, "class_name": str, "domain": str})
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise StyleclsError(f"{path} is damaged: {e}") from None
    if missing := {"path", "label", "class_name", "domain", "part"} - set(frame.columns):
        raise StyleclsError(f"{path} lacks the columns {sorted(missing)}")
    frame["path"] = [p if Path(p).is_absolute() else str(root / p) for p in frame["path"]]
    frame["domain"] = frame["domain"].fillna("").astype(str)
    if check_images:
        exists = frame["path"].map(os.path.isfile).to_numpy(dtype=bool)
        if not exists.all():
            example = frame["path"][~exists].iloc[0]
            raise StyleclsError(f"{(~exists).sum():,} of {len(frame):,} images listed in {path} are missing "
                                f"(e.g. {example}){hint}")
    return frame


def append_epoch(path: Path, row: Mapping[str, Any]) -> None:
    """One epoch's row; the columns are :data:`EPOCH_COLUMNS` (absent values left empty)."""
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=EPOCH_COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def read_epochs(path: Path) -> pd.DataFrame:
    """One row per epoch (empty before the first epoch); a damaged file is an error."""
    if not path.is_file():
        return pd.DataFrame(columns=list(EPOCH_COLUMNS))
    try:
        frame = pd.read_csv(path)
        if "epoch" not in frame:
            raise ValueError("no epoch column")
        frame["epoch"] = pd.to_numeric(frame["epoch"], errors="raise").astype(int)
    except (ValueError, TypeError, UnicodeDecodeError, pd.errors.ParserError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise StyleclsError(f"{path} is damaged ({why[:120]}); fix or remove the bad lines") from None
    return frame


def trim_epochs(path: Path, epochs: int) -> None:
    """Drop rows after ``epochs`` (written before a crash that beat the checkpoint)."""
    frame = read_epochs(path)
    kept = frame[frame["epoch"] <= epochs]
    if len(kept) != len(frame):
        atomic_write_bytes(path, lambda f: f.write(kept.to_csv(index=False).encode()))
