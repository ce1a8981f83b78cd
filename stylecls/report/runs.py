"""What results read from run folders, in one place: which folders are runs, and one row per usable run.

Every number comes from :class:`~stylecls.runfolder.RunFolder`. A run's result is its *selected evaluation* (the
finished run's best.pt on its test part); a run without a usable one (unfinished, not evaluated, evaluated while
running or at another epoch, of another part or checkpoint) is *left out* with the reason and the fix, and the
commands refuse unless told to skip such runs. A folder whose record cannot be read is *unreadable*: it is listed
and left out, and the others are still compared.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from stylecls.errors import StyleclsError
from stylecls.models.ibn import split_ibn
from stylecls.presentation import method_of
from stylecls.record import EvaluationRecord, RunRecord
from stylecls.runfolder import RunFolder, UnusableEvaluation, find_run_folders, is_run_folder

__all__ = [
    "METRICS", "ORACLE_COLUMN", "TRIAL", "VAL_DOMAIN", "Collection", "LeftOut", "collect", "confusion",
    "domain_accuracy", "epoch_metrics", "find_runs", "per_class_accuracy", "read_run",
]  # fmt: skip

METRICS = ("top1", "top5", "balanced_accuracy", "macro_f1")
#: The per-epoch held-out accuracy column of metrics.csv (written by ``stylecls train --eval-test-every N``).
ORACLE_COLUMN = "test_acc"
#: RunSpec fields of hyper-parameter search (the sweep lane): the trial a run belongs to, and the training domain
#: a leave-one-domain-out selection run holds out as its validation domain.
TRIAL, VAL_DOMAIN = "trial", "val_domain"
#: Spec values that change what a run records, not what it learns.
RECORDING = {"spec.eval_test_every"}
#: What may differ between runs that are averaged or paired together (a trial's values differ between trials).
VARYING = ("spec.seed", "spec.split", "spec.test_domain", f"spec.{TRIAL}", f"spec.{VAL_DOMAIN}")


@dataclass(frozen=True)
class LeftOut:
    run: str
    kind: Literal["unreadable", "unusable"]
    reason: str
    fix: str

    def why(self) -> str:
        """The reason and, where it is not already in it, the fix."""
        return self.reason + (f" ({self.fix})" if self.fix else "")

    def line(self) -> str:
        return f"{self.run}: {self.why()}"


@dataclass
class Collection:
    """The usable runs (``runs``: one row each, see :func:`read_run`), the leave-one-training-domain-out selection
    runs apart (``selection_runs``), and every folder left out with why."""

    runs: pd.DataFrame
    selection_runs: pd.DataFrame
    left_out: list[LeftOut] = field(default_factory=list)

    def unreadable(self) -> list[LeftOut]:
        return [r for r in self.left_out if r.kind == "unreadable"]

    def unusable(self) -> list[LeftOut]:
        return [r for r in self.left_out if r.kind == "unusable"]


def find_runs(paths: Iterable[str | Path]) -> list[RunFolder]:
    """Each path is a run folder or a folder holding runs (searched recursively)."""
    runs: list[RunFolder] = []
    for p in map(Path, paths):
        if is_run_folder(p):
            runs.append(RunFolder(p))
        elif p.is_dir():
            found = find_run_folders(p)
            if not found:
                raise StyleclsError(f"{p} holds no run folders (no run record below it)")
            runs.extend(map(RunFolder, found))
        elif p.exists():
            raise StyleclsError(f"{p} is neither a run folder nor a folder of runs")
        else:
            raise StyleclsError(f"{p} does not exist")
    if not runs:
        raise StyleclsError("no runs to compare")
    return runs


def selected_evaluation(run: str | Path | RunFolder) -> EvaluationRecord:
    """The run's selected evaluation (:meth:`~stylecls.runfolder.Evaluations.selected`): the only evaluation results
    read. Raises :class:`~stylecls.runfolder.UnusableEvaluation` (the reason says the fix) when there is none, and a
    :class:`StyleclsError` naming the file when it is damaged."""
    folder = run if isinstance(run, RunFolder) else RunFolder(run)
    return folder.evaluations.selected()


def _number(metrics: dict[str, Any], key: str) -> float:
    value = metrics.get(key)
    return math.nan if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) else float(value)


def _settings(record: RunRecord) -> dict[str, str]:
    """What determines the run's result, flat: every spec value (``spec.<name>``) and the pixel pipeline its images
    went through (``data.pixels``), as JSON text; without what may vary (:data:`VARYING`)."""
    flat = {f"spec.{k}": json.dumps(v, sort_keys=True) for k, v in record.spec.to_dict().items()}
    flat["data.pixels"] = json.dumps(record.data.pixels, sort_keys=True)
    return {k: v for k, v in flat.items() if k not in RECORDING | set(VARYING)}


def _at_epoch(epochs: pd.DataFrame, column: str, epoch: int | None) -> float:
    """``column`` of metrics.csv at ``epoch`` (NaN where not recorded)."""
    if column not in epochs or "epoch" not in epochs or epoch is None:
        return math.nan
    values = pd.to_numeric(epochs.loc[epochs["epoch"] == epoch, column], errors="coerce").dropna()
    return float(values.iloc[-1]) if len(values) else math.nan


def read_run(folder: RunFolder) -> dict[str, Any]:
    """One row: what the run is (its ``method``, :func:`~stylecls.presentation.method_of`, on its ``backbone``, the
    arch without IBN-Net-a), its selected evaluation, the validation accuracy its checkpoint was chosen by
    (``val_score``), its held-out accuracy at the last epoch (``last_test``, ``--eval-test-every``), its settings.

    Raises :class:`~stylecls.runfolder.UnusableEvaluation` for a run without a usable result, :class:`StyleclsError`
    for a damaged record, evaluation or metrics file (naming it).
    """
    record = folder.record()
    evaluation = selected_evaluation(folder)
    metrics = evaluation.metrics
    epochs = folder.metrics()
    last = int(epochs["epoch"].max()) if len(epochs) else None
    spec = record.spec
    return {
        "run": str(folder.path), "dataset": spec.dataset, "protocol": record.data.protocol or spec.protocol,
        "arch": spec.arch, "backbone": spec.arch and split_ibn(spec.arch)[0], "block": spec.block,
        "method": method_of(spec).key, "seed": spec.seed, "split": spec.split,
        "test_domain": spec.test_domain, TRIAL: spec.trial, VAL_DOMAIN: spec.val_domain,
        **{m: _number(metrics, m) for m in METRICS}, "domain_gap": _number(metrics, "domain_gap"),
        "val_score": _at_epoch(epochs, "val_acc", evaluation.epoch),
        "last_test": _at_epoch(epochs, ORACLE_COLUMN, last),
        "settings": _settings(record), "versions": {k: str(v) for k, v in record.versions.items() if v},
    }  # fmt: skip


def collect(paths: Iterable[str | Path], skip_unevaluated: bool = False) -> Collection:
    """Read every run under ``paths``; refuse (listing every such run, its reason and the fix) when a run has no
    usable result, unless ``skip_unevaluated``: then they are left out and listed in :attr:`Collection.left_out`."""
    rows, left_out = [], []
    for folder in find_runs(paths):
        try:
            folder.record()
        except StyleclsError as e:  # one bad folder does not stop the others
            left_out.append(LeftOut(str(folder.path), "unreadable", str(e), "repair or remove the folder"))
            continue
        try:
            rows.append(read_run(folder))
        except UnusableEvaluation as e:
            left_out.append(LeftOut(str(folder.path), "unusable", e.reason, ""))
        except StyleclsError as e:  # a damaged evaluation or metrics file: the message names it and the fix
            left_out.append(LeftOut(str(folder.path), "unusable", str(e), ""))
    unusable = [r for r in left_out if r.kind == "unusable"]
    if unusable and not skip_unevaluated:
        listed = "\n".join(f"  {r.line()}" for r in unusable)
        raise StyleclsError(
            f"{len(unusable)} run(s) have no usable evaluation of their selected checkpoint:\n{listed}\n"
            "Fix them, or pass --skip-unevaluated to leave them out"
        )
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    selection = frame[VAL_DOMAIN].notna()
    return Collection(frame[~selection].reset_index(drop=True), frame[selection].reset_index(drop=True), left_out)


_COLUMNS = ["run", "dataset", "protocol", "arch", "backbone", "block", "method", "seed", "split", "test_domain", TRIAL,
            VAL_DOMAIN, *METRICS, "domain_gap", "val_score", "last_test", "settings", "versions"]  # fmt: skip


def epoch_metrics(run: str | Path) -> pd.DataFrame:
    """The per-epoch metrics (one row per epoch); an empty frame when the run has none."""
    return RunFolder(run).metrics()


def domain_accuracy(run: str | Path) -> pd.Series:
    """Accuracy per domain of the selected evaluation's part; empty for single-domain runs."""
    folder = RunFolder(run)
    evaluation = selected_evaluation(folder)
    table = folder.evaluations.per_domain(evaluation)
    if table.empty:
        return pd.Series(dtype=float)
    table = table[table["part"] == evaluation.part]
    return table.set_index("domain")["accuracy"].astype(float)


def per_class_accuracy(run: str | Path) -> pd.Series:
    """Accuracy (recall) per class of the selected evaluation, indexed by class name."""
    folder = RunFolder(run)
    return folder.evaluations.per_class(selected_evaluation(folder))["accuracy"].astype(float)


def confusion(run: str | Path, normalize: bool = True) -> pd.DataFrame:
    """The confusion matrix of the selected evaluation (rows true, columns predicted); row-normalised by default
    (rows of classes without images are NaN)."""
    folder = RunFolder(run)
    counts = folder.evaluations.confusion(selected_evaluation(folder)).astype(float)
    if not normalize:
        return counts
    totals = counts.sum(axis=1).replace(0, np.nan)
    return counts.div(totals, axis=0)


def left_out_table(left_out: Sequence[LeftOut]) -> pd.DataFrame:
    """The runs left out, for the report."""
    rows = [{"run": r.run, "why": r.why()} for r in left_out]
    return pd.DataFrame(rows, columns=["run", "why"])
