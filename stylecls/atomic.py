"""Files that are either whole or absent: atomic writes, checkpoints, and the trainer's lock.

A crash, a full disk or a signal mid-write keeps the previous file; checkpoints hold only tensors and plain
values and are read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import torch

from stylecls.errors import StyleclsError

__all__ = [
    "atomic_write_bytes", "hold_lock", "load_checkpoint", "load_model_state", "lock_held", "now", "save_checkpoint",
    "write_json",
]  # fmt: skip

LOCK = ".lock"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _disk_full(error: BaseException) -> bool:
    """True for ENOSPC/EDQUOT, also where torch's writer wraps it in a RuntimeError ("unexpected pos ...")."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(error, RuntimeError) and ("unexpected pos" in str(error) or "No space left" in str(error))


def atomic_write_bytes(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(fileobj)`` on a temporary file next to ``path``, then rename it into place.

    A full disk is one :class:`StyleclsError` naming the file; the previous version of ``path`` is kept and
    no temporary file is left behind.
    """
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
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if _disk_full(e):
            raise StyleclsError(f"no space left on the device to write {path}; the previous version is kept") from None
        raise


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically, keys in insertion order, readable by people."""
    text = json.dumps(obj, indent=2, default=str) + "\n"
    atomic_write_bytes(Path(path), lambda f: f.write(text.encode()))


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write a checkpoint atomically (temporary file + rename)."""
    atomic_write_bytes(Path(path), lambda f: torch.save(state, f))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely; an unreadable or foreign file is one line of :class:`StyleclsError`."""
    path = Path(path)
    if not path.is_file():
        raise StyleclsError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):  # torch.save has written zip archives since torch 1.6
        raise StyleclsError(f"cannot read checkpoint {path}: it is not a PyTorch checkpoint "
                            "(damaged, truncated, or another kind of file)")
    try:
        with warnings.catch_warnings():  # torch warns about odd pickle protocols, asking to file an issue
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to unpickle means "unusable checkpoint"
        # torch's message advises weights_only=False (running arbitrary code): never pass that advice on
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Unpickler" in str(e) or "unpickl" in str(e).lower():
            why = "it holds objects other than tensors and plain values (not a stylecls checkpoint)"
        raise StyleclsError(f"cannot read checkpoint {path}: {why[:200]}") from None
    if not isinstance(state, dict):
        raise StyleclsError(f"{path} is not a stylecls checkpoint (expected a dict, got {type(state).__name__})")
    return state


def load_model_state(model: torch.nn.Module, weights: Any, path: Path, expected: str = "") -> None:
    """``model.load_state_dict(weights)``, or one line saying how the checkpoint at ``path`` differs.

    torch's own message lists every key (a hundred lines for another architecture); this one counts them.
    """
    if not isinstance(weights, dict):
        raise StyleclsError(f"{path} is not a stylecls checkpoint (no model weights in it)")
    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    shapes = [k for k in own if k in weights and getattr(weights[k], "shape", None) != own[k].shape]
    if not (missing or unexpected or shapes):
        try:
            model.load_state_dict(weights)
            return
        except (RuntimeError, TypeError) as e:
            raise StyleclsError(f"{path} does not fit {expected or 'the model'}: "
                                f"{str(e).strip().splitlines()[-1][:160]}") from None
    parts = [f"{len(keys)} {what} (e.g. {keys[0]})" for keys, what in
             ((missing, "missing weights"), (unexpected, "unexpected weights"), (shapes, "weights of another shape"))
             if keys]
    raise StyleclsError(f"{path} does not fit {expected or 'the model'}: {'; '.join(parts)}")


def now() -> str:
    """The local time with its offset, to the second (what run files record)."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


@contextmanager
def hold_lock(folder: Path) -> Iterator[None]:
    """An exclusive, non-blocking flock on ``folder/.lock`` for the holder's life (the OS drops it when the
    holder dies); a second holder gets a clear error naming the first one's pid."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise StyleclsError(f"{folder} is being trained by another process (pid {holder})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def lock_held(folder: Path) -> bool:
    """True while some process holds ``folder``'s lock."""
    if not (folder / LOCK).is_file():
        return False
    fd = os.open(folder / LOCK, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
