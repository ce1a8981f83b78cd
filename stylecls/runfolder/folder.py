"""The run folder: its record, status, split rows, per-epoch metrics and checkpoints (typed reads and writes)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from stylecls.atomic import hold_lock, load_checkpoint, load_model_state, lock_held, now, write_json
from stylecls.errors import StyleclsError
from stylecls.record import DONE, INTERRUPTED, NOT_STARTED, RUNNING, RunRecord, RunStatus
from stylecls.runfolder.files import CHECKPOINTS, CONFIG, EPOCHS, EVAL, INSPECT, SPLIT, STATUS, STYLE_TEST, TENSORBOARD
from stylecls.runfolder.tables import append_epoch, read_epochs, read_split, trim_epochs, write_split
from stylecls.spec import RunSpec

if TYPE_CHECKING:
    from stylecls.data.pixels import Pixels
    from stylecls.runfolder.evaluations import Evaluations

class RunFolder:
    """Typed reads and writes of one run folder; raises :class:`StyleclsError` if it is not a run."""

    def __init__(self, path: str | Path, must_exist: bool = True) -> None:
        self.path = Path(path)
        self._record: RunRecord | None = None
        if must_exist:
            if self.path.is_file():
                raise StyleclsError(f"{self.path} is a file; pass the run folder that holds it ({self.path.parent})")
            if not self.path.is_dir():
                raise StyleclsError(f"{self.path} is not a run folder: it does not exist")
            if not self.config_path.is_file():
                raise StyleclsError(f"{self.path} is not a run folder: it has no {CONFIG} (made by `stylecls train`)")

    # -- where things are ----------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def status_path(self) -> Path:
        return self.path / STATUS

    @property
    def split_path(self) -> Path:
        return self.path / SPLIT

    @property
    def metrics_path(self) -> Path:
        return self.path / EPOCHS

    @property
    def eval_dir(self) -> Path:
        """The selected evaluation's folder (test part, best.pt)."""
        return self.path / EVAL

    @cached_property
    def evaluations(self) -> Evaluations:
        """What ``stylecls evaluate`` made, and which of it results readers may use."""
        from stylecls.runfolder.evaluations import Evaluations

        return Evaluations(self)

    @property
    def inspect_dir(self) -> Path:
        return self.path / INSPECT

    @property
    def style_test_dir(self) -> Path:
        return self.path / STYLE_TEST

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD

    def checkpoint_path(self, which: str = "best") -> Path:
        if which not in CHECKPOINTS:
            raise StyleclsError(f"unknown checkpoint {which!r}; choose one of: {', '.join(CHECKPOINTS)}")
        return self.path / f"{which}.pt"

    def owns(self, path: str | Path) -> bool:
        """True when ``path`` is this folder or inside it (nothing else may write there)."""
        p, mine = Path(path).resolve(), self.path.resolve()
        return p == mine or mine in p.parents

    # -- the record ----------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The run record as written (prefer :meth:`record` / :meth:`spec`)."""
        return read_json(self.config_path)

    def record(self) -> RunRecord:
        if self._record is None:
            try:
                self._record = RunRecord.from_dict(self.config())
            except StyleclsError as e:
                raise StyleclsError(f"{self.config_path} is not a stylecls run record: {e}") from None
            except (KeyError, TypeError, ValueError, AttributeError) as e:
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

    def pixels(self) -> Pixels:
        """The pixel pipeline the run was trained with (schema-1 runs: today's default at their size)."""
        from stylecls.data.pixels import Pixels

        record = self.record()
        if record.data.pixels.get("version") is not None:
            return Pixels.from_dict(record.data.pixels)
        return Pixels(int(record.spec.img_size or 0))

    # -- status --------------------------------------------------------------------------------

    def status(self) -> RunStatus:
        """Where the run stands, from the folder alone (see :class:`~stylecls.record.RunStatus`)."""
        if self.status_path.is_file():
            try:
                status = RunStatus.from_dict(read_json(self.status_path))
            except StyleclsError as e:
                raise StyleclsError(f"{self.status_path} is damaged: {e}") from None
        elif self.config_path.is_file() and self.record().schema_version == 1:
            old = self.config()
            status = RunStatus(state=DONE if old.get("status") == "finished" else INTERRUPTED)
        else:
            return RunStatus(NOT_STARTED) if not self.config_path.is_file() else RunStatus(INTERRUPTED)
        if status.state == RUNNING and not self.is_locked():
            return RunStatus(INTERRUPTED, status.epoch, status.best_epoch, status.best_val_acc,
                             "the trainer stopped without a word (killed?)", status.updated, status.details)
        return status

    def set_status(self, state: str, **details: Any) -> None:
        """Rewrite the status file atomically, keeping earlier details; ``done`` is the last thing a run writes."""
        previous = read_json(self.status_path) if self.status_path.is_file() else {}
        values = {**previous, "state": state, "updated": now(), **details}
        RunStatus.from_dict(values)  # refuse a state outside the vocabulary before writing it
        write_json(self.status_path, values)

    def discard(self) -> None:
        """Remove what a run that died before its first checkpoint wrote (nothing in it is worth keeping)."""
        for name in (CONFIG, STATUS, SPLIT, EPOCHS):
            (self.path / name).unlink(missing_ok=True)
        self._record = None

    def lock(self) -> AbstractContextManager[None]:
        """Hold the run for this process's life: a second trainer of the same folder (two commands, two
        sweep launchers) gets a clear error instead of interleaving its metrics with the first's."""
        return hold_lock(self.path)

    def is_locked(self) -> bool:
        """True while some process trains this run."""
        return lock_held(self.path)

    # -- rows, metrics, model ------------------------------------------------------------------

    def write_rows(self, frame: pd.DataFrame, root: Path) -> None:
        """split.csv, paths relative to the data root ``root``."""
        write_split(self.split_path, frame, root)

    def rows(self, data_root: str | Path | None = None, check_images: bool = True) -> pd.DataFrame:
        """split.csv with absolute image paths under ``data_root`` (default: the run's data root).

        With ``check_images`` every listed image must exist, unless the run skips bad images (then missing
        ones are skipped and counted by its readers); a run read on another machine needs ``--data-root``.
        """
        root = Path(data_root if data_root is not None else self.record().data.root).expanduser()
        check = check_images and not self.spec().skip_bad
        hint = "" if data_root is not None else "; pass --data-root to point at your copy of the data"
        return read_split(self.split_path, root, check, hint)

    def append_metrics(self, row: Mapping[str, Any]) -> None:
        """One epoch's row of metrics.csv (columns :data:`EPOCH_COLUMNS`)."""
        append_epoch(self.metrics_path, row)

    def metrics(self) -> pd.DataFrame:
        """metrics.csv, one row per epoch (empty before the first epoch); a damaged file is an error."""
        return read_epochs(self.metrics_path)

    def trim_metrics(self, epochs: int) -> None:
        """Drop metrics rows after ``epochs`` (written before a crash that beat the checkpoint)."""
        trim_epochs(self.metrics_path, epochs)

    def load_checkpoint(self, which: str = "best", map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """The checkpoint's state; a missing one is one line saying why, and what to do."""
        path = self.checkpoint_path(which)
        if not path.is_file() and self.config_path.is_file():
            raise StyleclsError(_missing_checkpoint(self, path))
        return load_checkpoint(path, map_location)

    def build_model(self, checkpoint: str = "best", device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
        """The run's model with ``checkpoint`` loaded, in eval mode, and the checkpoint's state."""
        from stylecls.models import build_model_for_spec

        spec = self.spec()
        state = self.load_checkpoint(checkpoint, map_location="cpu")
        model = build_model_for_spec(spec, len(self.classes))
        load_model_state(model, state.get("model"), self.checkpoint_path(checkpoint),
                         f"the model in {self.config_path} ({spec.arch} + {spec.block})")
        return model.to(device).eval(), state

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"


def _missing_checkpoint(run: RunFolder, path: Path) -> str:
    """Why ``path`` is not there yet, from the run's state, with the command that brings it."""
    try:
        status = run.status()
    except StyleclsError:
        return f"checkpoint not found: {path}"
    if status.state == RUNNING:
        return (f"{path} does not exist yet: the run is still training (epoch {status.epoch or 0} done); "
                f"wait until `stylecls status {run.path}` says done")
    if status.state == DONE:
        return f"checkpoint not found: {path} (the run is done, but its checkpoint was removed)"
    if run.checkpoint_path("last").is_file():
        return (f"{path} does not exist: the run is {status.state} before its first checkpoint; "
                f"resume it with `stylecls train --resume {run.path}`")
    return (f"{path} does not exist: the run is {status.state} before it saved any epoch; "
            f"delete {run.path} and train it again")


def is_run_folder(path: str | Path) -> bool:
    """True for a folder holding a run record (finished or not, readable or not)."""
    return (Path(path) / CONFIG).is_file()


def find_run_folders(path: str | Path) -> list[Path]:
    """Run folders at or below ``path`` (a run folder itself, or a folder holding runs), sorted."""
    path = Path(path)
    if (path / CONFIG).is_file():
        return [path]
    return sorted(c.parent for c in path.rglob(CONFIG)) if path.is_dir() else []


def read_json(path: Path) -> Any:
    """A JSON file; unreadable or invalid is one :class:`StyleclsError` naming it."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StyleclsError(f"cannot read {path}: {e}") from None
