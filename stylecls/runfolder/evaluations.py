"""A run's evaluations: each stored with what it is of, and the one rule for which a results reader may use.

Rule: compare, report, sweep status (every reader of results) use only :meth:`Evaluations.selected` — the
finished run's selected checkpoint (best.pt) on its reported part (test; val where it has none), unfiltered,
made after training ended. Anything else is :class:`UnusableEvaluation` with the reason and the fix. An
evaluation of another part, checkpoint or domain is stored beside it and never replaces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stylecls.atomic import atomic_write_bytes, write_json
from stylecls.errors import StyleclsError
from stylecls.record import DONE, RUNNING, EvaluationRecord, RunStatus
from stylecls.runfolder.files import (
    CONFUSION,
    EVAL_RECORD,
    PER_CLASS,
    PER_CLASS_DOMAIN,
    PER_DOMAIN,
    PREDICTIONS,
)
from stylecls.runfolder.folder import RunFolder, read_json

#: the parts of a run's split that can be evaluated
EVALUATED_PARTS = ("test", "val")


class UnusableEvaluation(StyleclsError):
    """The run has no evaluation a results reader may use; ``reason`` says why and how to fix it."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


class MissingEvaluation(UnusableEvaluation):
    """The asked-for evaluation was never made."""


@dataclass
class EvaluationTables:
    """The tables behind an evaluation's headline numbers (``per_domain`` ones only for multi-domain runs)."""

    predictions: pd.DataFrame
    per_class: pd.DataFrame
    confusion: pd.DataFrame
    per_domain: pd.DataFrame | None = None
    per_class_domain: pd.DataFrame | None = None


class Evaluations:
    """The evaluations stored in one run folder (``run.evaluations``)."""

    def __init__(self, run: RunFolder) -> None:
        self.run = run

    def reported_part(self) -> str:
        """The part results are reported on: test, or val where the run has no test part."""
        counts = self.run.record().data.counts
        if not counts and self.run.split_path.is_file():
            counts = self.run.rows(check_images=False)["part"].value_counts().to_dict()
        return "val" if counts and not counts.get("test") else "test"

    def dir_for(self, part: str, checkpoint: str = "best", domain: str | None = None) -> Path:
        """Where the evaluation of (part, checkpoint, domain) lives; only the selected one is ``eval/``."""
        if part not in EVALUATED_PARTS:
            raise StyleclsError(f"unknown part {part!r}; choose one of: {', '.join(EVALUATED_PARTS)}")
        self.run.checkpoint_path(checkpoint)  # checks the name
        if part == self.reported_part() and checkpoint == "best" and domain is None:
            return self.run.eval_dir
        return self.run.eval_dir / "-".join(x for x in (part, checkpoint, domain) if x)

    def write(self, evaluation: EvaluationRecord, tables: EvaluationTables) -> Path:
        """Write an evaluation's tables, then its record last (no record = no evaluation); returns the folder."""
        out = self.dir_for(evaluation.part, evaluation.checkpoint, evaluation.domain)
        out.mkdir(parents=True, exist_ok=True)
        (out / EVAL_RECORD).unlink(missing_ok=True)  # new tables must never pair with an old record
        files: list[tuple[str, pd.DataFrame | None, bool]] = [
            (PREDICTIONS, tables.predictions, False), (PER_CLASS, tables.per_class, True),
            (CONFUSION, tables.confusion, True), (PER_DOMAIN, tables.per_domain, False),
            (PER_CLASS_DOMAIN, tables.per_class_domain, True),
        ]  # fmt: skip
        for name, table, index in files:
            if table is None:
                (out / name).unlink(missing_ok=True)
            else:
                _write_bytes(out / name, table.to_csv(index=index).encode())
        write_json(out / EVAL_RECORD, evaluation.to_dict())
        return out

    def get(self, part: str | None = None, checkpoint: str = "best", domain: str | None = None) -> EvaluationRecord:
        """The stored evaluation of (part, checkpoint, domain); ``part=None``: the reported part."""
        part = part or self.reported_part()
        path = self.dir_for(part, checkpoint, domain) / EVAL_RECORD
        if not path.is_file():
            what = f"{part} part, {checkpoint}.pt" + (f", domain {domain}" if domain else "")
            raise MissingEvaluation(self.run.path, f"not evaluated ({what}): run `stylecls evaluate {self.run.path}`")
        fix = f"re-run `stylecls evaluate {self.run.path}`"
        try:
            values = read_json(path)
        except StyleclsError as e:
            raise StyleclsError(f"{e}; {fix}") from None
        try:
            return EvaluationRecord.from_dict(values)
        except StyleclsError as e:
            raise StyleclsError(f"{path} is damaged: {e}; {fix}") from None

    def selected(self) -> EvaluationRecord:
        """The one evaluation results readers use: the finished run's selected checkpoint (best.pt) on its
        reported part, made after training ended; anything else is :class:`UnusableEvaluation` saying why."""
        status = self.run.status()
        if not status.finished:
            at = f" at epoch {status.epoch}" if status.epoch is not None else ""
            how = "wait for it" if status.state == RUNNING else f"finish it: `stylecls train --resume {self.run.path}`"
            raise UnusableEvaluation(self.run.path, f"the run is {status.state}{at}, not done: {how}")
        evaluation = self.get()  # eval/ holds only the reported part's best.pt, unfiltered (dir_for)
        self._check_made_after_training(evaluation, status, f"re-run `stylecls evaluate {self.run.path}`", "evaluation")
        return evaluation

    def check_selected(self, evaluation: EvaluationRecord, fix: str, what: str = "evaluation") -> None:
        """Raise :class:`UnusableEvaluation` unless ``evaluation`` (any result's provenance: part, checkpoint, epoch,
        run state) is of the finished run's selected checkpoint on its reported part, made after training ended.
        ``what`` names the result in the reason, ``fix`` ends it. The rule of :meth:`selected`, for every reader."""
        status = self.run.status()
        if not status.finished:
            raise UnusableEvaluation(self.run.path, f"the run is {status.state}, not done: {fix}")
        part = self.reported_part()
        if evaluation.checkpoint != "best" or evaluation.domain is not None or evaluation.part != part:
            raise UnusableEvaluation(
                self.run.path, f"its {what} is of the {evaluation.describe()}, not of best.pt on the {part} part: {fix}"
            )
        self._check_made_after_training(evaluation, status, fix, what)

    def _check_made_after_training(self, evaluation: EvaluationRecord, status: RunStatus, fix: str, what: str) -> None:
        if evaluation.run_state != DONE:
            was = evaluation.run_state or "unrecorded (an older stylecls)"
            raise UnusableEvaluation(
                self.run.path, f"its {what} (epoch {evaluation.epoch}) was made while the run was {was}: {fix}"
            )
        if status.best_epoch is not None and evaluation.epoch != status.best_epoch:
            raise UnusableEvaluation(
                self.run.path,
                f"its {what} is of epoch {evaluation.epoch} but best.pt is epoch {status.best_epoch}: {fix}",
            )

    def _table(self, evaluation: EvaluationRecord, name: str, index: bool) -> pd.DataFrame:
        path = self.dir_for(evaluation.part, evaluation.checkpoint, evaluation.domain) / name
        if not path.is_file():
            raise StyleclsError(f"{path} is missing; re-run `stylecls evaluate {self.run.path}`")
        try:
            return pd.read_csv(path, index_col=0 if index else None)
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
            raise StyleclsError(f"{path} is damaged ({e}); re-run `stylecls evaluate {self.run.path}`") from None

    def predictions(self, evaluation: EvaluationRecord) -> pd.DataFrame:
        """One row per evaluated image: path, label, pred, part, domain, per-class probabilities."""
        return self._table(evaluation, PREDICTIONS, index=False)

    def per_class(self, evaluation: EvaluationRecord) -> pd.DataFrame:
        """Accuracy (recall), precision, F1 and support per class, indexed by class name."""
        return self._table(evaluation, PER_CLASS, index=True)

    def confusion(self, evaluation: EvaluationRecord) -> pd.DataFrame:
        """Raw counts, true classes as rows."""
        return self._table(evaluation, CONFUSION, index=True)

    def per_domain(self, evaluation: EvaluationRecord) -> pd.DataFrame:
        """Accuracy per (part, domain); empty for a single-domain run."""
        path = self.dir_for(evaluation.part, evaluation.checkpoint, evaluation.domain) / PER_DOMAIN
        return self._table(evaluation, PER_DOMAIN, index=False) if path.is_file() else pd.DataFrame()


def _write_bytes(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, lambda f: f.write(data))
