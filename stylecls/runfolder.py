"""A run folder is the one interface between training and everything that reads results.

Layout (``runs/<name>/``)::

    config.json    every setting, versions, seed, data summary, class names  (written by train)
    split.csv      the exact catalogue rows used: path (relative to the data root), label,
                   class_name, domain, part (train/val/test)                   (written by train)
    metrics.csv    one row per epoch                                           (written by train)
    last.pt        latest checkpoint (model, optimizer, scheduler, scaler, epoch, RNG states)
    best.pt        checkpoint with the best validation accuracy
    eval/          written by ``stylecls evaluate``
    inspect/       written by ``stylecls inspect``

Checkpoints are plain dicts of tensors and Python scalars so they load with
``torch.load(..., weights_only=True)``; they are written to a temporary file and renamed, so a
crash mid-write keeps the previous checkpoint.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from stylecls.errors import StyleclsError

CONFIG = "config.json"
SPLIT = "split.csv"
METRICS = "metrics.csv"
CHECKPOINTS = ("best", "last")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Call ``write(fileobj)`` on a temporary file next to ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; a run folder is meant to be shared
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write a checkpoint atomically (temporary file + rename)."""
    atomic_write_bytes(Path(path), lambda f: torch.save(state, f))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely; an unreadable or foreign file is a :class:`StyleclsError`."""
    path = Path(path)
    if not path.is_file():
        raise StyleclsError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to unpickle means "unusable checkpoint"
        raise StyleclsError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from None
    if not isinstance(state, dict):
        raise StyleclsError(f"{path} is not a stylecls checkpoint (expected a dict, got {type(state).__name__})")
    return state


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically, keys in insertion order, readable by people."""
    text = json.dumps(obj, indent=2, default=str) + "\n"
    atomic_write_bytes(Path(path), lambda f: f.write(text.encode()))


class RunFolder:
    """Paths and readers for one run folder; raises :class:`StyleclsError` if it is not a run."""

    def __init__(self, path: str | Path, must_exist: bool = True) -> None:
        self.path = Path(path)
        if must_exist:
            if self.path.is_file():
                raise StyleclsError(f"{self.path} is a file; pass the run folder that holds it ({self.path.parent})")
            if not self.path.is_dir():
                raise StyleclsError(f"{self.path} is not a run folder: it does not exist")
            if not (self.path / CONFIG).is_file():
                raise StyleclsError(
                    f"{self.path} is not a run folder: it has no {CONFIG} (made by `stylecls train`)"
                )

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def split_path(self) -> Path:
        return self.path / SPLIT

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def eval_dir(self) -> Path:
        return self.path / "eval"

    @property
    def inspect_dir(self) -> Path:
        return self.path / "inspect"

    def checkpoint_path(self, which: str = "best") -> Path:
        if which not in CHECKPOINTS:
            raise StyleclsError(f"unknown checkpoint {which!r}; choose one of: {', '.join(CHECKPOINTS)}")
        return self.path / f"{which}.pt"

    def config(self) -> dict[str, Any]:
        try:
            return json.loads(self.config_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise StyleclsError(f"cannot read {self.config_path}: {e}") from None

    def load_checkpoint(self, which: str = "best", map_location: str | torch.device = "cpu") -> dict[str, Any]:
        return load_checkpoint(self.checkpoint_path(which), map_location)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"
