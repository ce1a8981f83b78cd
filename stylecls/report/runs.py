"""What a report reads from one run folder, in one place (all through :class:`~stylecls.runfolder.RunFolder`).

The typed run record; the per-epoch metrics (``test_loss``/``test_acc`` on the epochs ``--eval-test-every``
evaluated); and the per-class, per-domain and confusion tables of the run's selected evaluation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stylecls.record import RunRecord
from stylecls.runfolder import RunFolder

__all__ = [
    "ORACLE_COLUMN", "confusion", "domain_accuracy", "epoch_metrics", "oracle_accuracy", "per_class_accuracy",
    "run_record", "run_versions",
]  # fmt: skip

#: The per-epoch held-out accuracy column of metrics.csv (written by ``stylecls train --eval-test-every N``).
ORACLE_COLUMN = "test_acc"


def run_record(run: str | Path | RunFolder) -> RunRecord:
    """The run's typed record (spec, data summary, versions): the one place this package reads it."""
    folder = run if isinstance(run, RunFolder) else RunFolder(run)
    return folder.record()


def run_versions(run: str | Path | RunFolder) -> dict[str, str]:
    """Library versions the run was trained with (``stylecls``, ``torch``, ...)."""
    return {k: str(v) for k, v in run_record(run).versions.items()}


def epoch_metrics(run: str | Path) -> pd.DataFrame:
    """The per-epoch metrics (one row per epoch); an empty frame when the run has none."""
    return RunFolder(run).metrics()


def oracle_accuracy(run: str | Path) -> float:
    """The best held-out accuracy over the epochs that evaluated it (``test_acc`` in metrics.csv).

    NaN when the run recorded no per-epoch held-out accuracy. Reported beside the selected accuracy, never
    used to select anything.
    """
    m = epoch_metrics(run)
    if ORACLE_COLUMN not in m:
        return float("nan")
    values = pd.to_numeric(m[ORACLE_COLUMN], errors="coerce").dropna()
    return float(values.max()) if len(values) else float("nan")


def domain_accuracy(run: str | Path) -> pd.Series:
    """Accuracy per domain of the selected evaluation's part; empty for single-domain runs."""
    folder = RunFolder(run)
    evaluation = folder.evaluations.selected()
    table = folder.evaluations.per_domain(evaluation)
    if table.empty:
        return pd.Series(dtype=float)
    table = table[table["part"] == evaluation.part]
    return table.set_index("domain")["accuracy"].astype(float)


def per_class_accuracy(run: str | Path) -> pd.Series:
    """Accuracy (recall) per class of the selected evaluation, indexed by class name."""
    folder = RunFolder(run)
    return folder.evaluations.per_class(folder.evaluations.selected())["accuracy"].astype(float)


def confusion(run: str | Path, normalize: bool = True) -> pd.DataFrame:
    """The confusion matrix of the evaluated part (rows true, columns predicted); row-normalised by default
    (rows of classes without images are NaN)."""
    folder = RunFolder(run)
    counts = folder.evaluations.confusion(folder.evaluations.selected()).astype(float)
    if not normalize:
        return counts
    totals = counts.sum(axis=1).replace(0, np.nan)
    return counts.div(totals, axis=0)
