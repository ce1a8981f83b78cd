"""A run folder is the one interface between training and everything that reads results.

Layout (``runs/<name>/``)::

    config.json    schema_version, the resolved RunSpec, runtime, versions, data summary  (written once)
    status.json    running / interrupted / failed / done, epoch, best (rewritten atomically; ``done`` last)
    split.csv      the exact catalogue rows: path (relative to the data root), label, class_name, domain,
                   split, part (train/val/test)
    metrics.csv    one row per epoch
    last.pt        latest checkpoint (model, optimizer, scheduler, scaler, epoch, RNG states)
    best.pt        checkpoint with the best validation accuracy
    eval/          written by ``stylecls evaluate``;  inspect/  by ``stylecls inspect``

Everything that reads a run goes through :class:`RunFolder`'s typed methods. Checkpoints are plain
dicts of tensors and Python scalars, written to a temporary file and renamed (a crash mid-write keeps
the previous one) and read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from stylecls.errors import StyleclsError
from stylecls.record import RunRecord
from stylecls.spec import RunSpec

CONFIG = "config.json"
STATUS = "status.json"
SPLIT = "split.csv"
METRICS = "metrics.csv"
LOCK = ".lock"
CHECKPOINTS = ("best", "last")
#: a run's status, from its folder alone
DONE, INCOMPLETE, NOT_STARTED = "done", "incomplete", "not started"
METRIC_COLUMNS = (
    "epoch", "train_loss", "train_acc", "train_objective", "val_loss", "val_acc", "test_loss", "test_acc",
    "lr", "img_per_s", "seconds", "skipped",
)  # fmt: skip


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


def now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


class RunPaths:
    """Where each file of a run folder lives."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

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


class RunFolder(RunPaths):
    """Typed reads and writes of one run folder; raises :class:`StyleclsError` if it is not a run."""

    def __init__(self, path: str | Path, must_exist: bool = True) -> None:
        super().__init__(path)
        self._record: RunRecord | None = None
        if must_exist:
            if self.path.is_file():
                raise StyleclsError(f"{self.path} is a file; pass the run folder that holds it ({self.path.parent})")
            if not self.path.is_dir():
                raise StyleclsError(f"{self.path} is not a run folder: it does not exist")
            if not (self.path / CONFIG).is_file():
                raise StyleclsError(
                    f"{self.path} is not a run folder: it has no {CONFIG} (made by `stylecls train`)"
                )

    # -- the record ----------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """config.json as written (prefer :meth:`record` / :meth:`spec`)."""
        try:
            return json.loads(self.config_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise StyleclsError(f"cannot read {self.config_path}: {e}") from None

    def record(self) -> RunRecord:
        if self._record is None:
            try:
                self._record = RunRecord.from_dict(self.config())
            except (KeyError, TypeError, ValueError) as e:
                why = f"{type(e).__name__}: {e}"
                raise StyleclsError(f"{self.config_path} is not a stylecls run record ({why})") from None
        return self._record

    def write_record(self, record: RunRecord) -> None:
        write_json(self.config_path, record.to_dict())
        self._record = record

    def spec(self) -> RunSpec:
        return self.record().spec

    @property
    def classes(self) -> list[str]:
        return list(self.record().data.classes)

    # -- status --------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """status.json: ``state`` (running / interrupted / failed / done), epoch, best, ...; {} if absent."""
        path = self.path / STATUS
        if path.is_file():
            try:
                return json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                return {}
        if self.config_path.is_file() and self.config().get("schema_version", 1) == 1:
            old = self.config()
            return {"state": "done" if old.get("status") == "finished" else old.get("status", ""), **old}
        return {}

    def set_state(self, state: str, **details: Any) -> None:
        """Rewrite status.json atomically; ``done`` is the last thing a finished run writes."""
        write_json(self.path / STATUS, {**self.state(), "state": state, "updated": now(), **details})

    def status(self) -> str:
        """``done``, ``incomplete`` or ``not started``, from the folder alone."""
        if not self.config_path.is_file():
            return NOT_STARTED
        return DONE if self.state().get("state") == DONE else INCOMPLETE

    def lock(self) -> Any:
        """Hold the run for this process's life: a second trainer of the same folder (two commands, two
        sweep launchers) gets a clear error instead of interleaving its metrics with the first's."""
        return hold_lock(self.path)

    def is_locked(self) -> bool:
        """True while some process trains this run."""
        return lock_held(self.path)

    # -- rows, metrics, model ------------------------------------------------------------------

    def write_rows(self, frame: pd.DataFrame, root: Path) -> None:
        """split.csv: paths relative to the data root exactly as the catalogue found them (a symlinked
        image stays under the root, so a moved root with ``--data-root`` still finds it)."""
        rows = frame[["path", "label", "class_name", "domain", "split", "part"]].copy()
        base = os.path.abspath(root)

        def relative(p: str) -> str:
            q = os.path.abspath(p)
            return Path(os.path.relpath(q, base)).as_posix() if q.startswith(base + os.sep) else q

        rows["path"] = rows["path"].map(relative)
        atomic_write_bytes(self.split_path, lambda f: f.write(rows.to_csv(index=False).encode()))

    def rows(self, data_root: str | Path | None = None) -> pd.DataFrame:
        """split.csv with absolute image paths under ``data_root`` (default: the run's data root)."""
        if not self.split_path.is_file():
            raise StyleclsError(f"{self.path} has no {SPLIT}: cannot tell which images it was trained on")
        frame = pd.read_csv(self.split_path, dtype={"path": str, "class_name": str, "domain": str})
        needed = {"path", "label", "class_name", "domain", "part"}
        if missing := needed - set(frame.columns):
            raise StyleclsError(f"{self.split_path} lacks the columns {sorted(missing)}")
        root = Path(data_root if data_root is not None else self.record().data.root).expanduser()
        frame["path"] = [p if Path(p).is_absolute() else str(root / p) for p in frame["path"]]
        frame["domain"] = frame["domain"].fillna("").astype(str)
        return frame

    def append_metrics(self, row: dict[str, Any]) -> None:
        """One epoch's row; the columns are :data:`METRIC_COLUMNS` (absent values left empty)."""
        new = not self.metrics_path.exists()
        with open(self.metrics_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})

    def metrics(self) -> pd.DataFrame:
        """metrics.csv (empty frame before the first epoch)."""
        if not self.metrics_path.is_file():
            return pd.DataFrame(columns=list(METRIC_COLUMNS))
        return pd.read_csv(self.metrics_path)

    def trim_metrics(self, epochs: int) -> None:
        """Drop rows after ``epochs`` (written before a crash that beat the checkpoint)."""
        frame = self.metrics()
        kept = frame[frame["epoch"] <= epochs]
        if len(kept) != len(frame):
            atomic_write_bytes(self.metrics_path, lambda f: f.write(kept.to_csv(index=False).encode()))

    def load_checkpoint(self, which: str = "best", map_location: str | torch.device = "cpu") -> dict[str, Any]:
        return load_checkpoint(self.checkpoint_path(which), map_location)

    def build_model(self, checkpoint: str = "best", device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
        """The run's model with ``checkpoint`` loaded, in eval mode, and the checkpoint's state."""
        from stylecls.models import build_model_for_spec

        spec = self.spec()
        state = self.load_checkpoint(checkpoint, map_location="cpu")
        model = build_model_for_spec(spec, len(self.classes))
        try:
            model.load_state_dict(state["model"])
        except (KeyError, RuntimeError) as e:
            raise StyleclsError(
                f"{self.checkpoint_path(checkpoint)} does not match the model in {self.config_path}: {e}"
            ) from None
        return model.to(device).eval(), state

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"
