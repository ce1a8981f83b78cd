"""What a report reads from one run folder, in one place.

:func:`run_record` is the only read of a run's ``config.json`` in this package (the typed
run record); the other readers take the files ``stylecls train`` and ``stylecls evaluate`` leave behind:
``metrics.csv`` (per epoch; ``test_loss``/``test_acc`` on the epochs ``--eval-test-every`` evaluated),
``eval/per_class.csv`` and ``eval/confusion.csv``.
"""

from __future__ import annotations

import json
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
    """The run's typed record (spec, data summary, versions): the one place this package reads config.json."""
    folder = run if isinstance(run, RunFolder) else RunFolder(run)
    return folder.record()


def run_versions(run: str | Path | RunFolder) -> dict[str, str]:
    """Library versions the run was trained with (``stylecls``, ``torch``, ...)."""
    return {k: str(v) for k, v in run_record(run).versions.items()}


def epoch_metrics(run: str | Path) -> pd.DataFrame:
    """``metrics.csv`` (one row per epoch); an empty frame when the run has none."""
    path = RunFolder(run).metrics_path
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


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
    """Accuracy per domain of the evaluated part (``eval/per_domain.csv``); empty for single-domain runs."""
    folder = RunFolder(run)
    path = folder.eval_dir / "per_domain.csv"
    if not path.is_file():
        return pd.Series(dtype=float)
    part = json.loads((folder.eval_dir / "metrics.json").read_text()).get("part")
    table = pd.read_csv(path)
    table = table[table["part"] == part] if part in set(table["part"]) else table.iloc[0:0]
    return table.set_index("domain")["accuracy"].astype(float)


def per_class_accuracy(run: str | Path) -> pd.Series:
    """Accuracy (recall) per class of the evaluated part, indexed by class name (``eval/per_class.csv``)."""
    table = pd.read_csv(RunFolder(run).eval_dir / "per_class.csv", index_col="class_name")
    return table["accuracy"].astype(float)


def confusion(run: str | Path, normalize: bool = True) -> pd.DataFrame:
    """The confusion matrix of the evaluated part (rows true, columns predicted); row-normalised by default
    (rows of classes without images are NaN)."""
    counts = pd.read_csv(RunFolder(run).eval_dir / "confusion.csv", index_col=0).astype(float)
    if not normalize:
        return counts
    totals = counts.sum(axis=1).replace(0, np.nan)
    return counts.div(totals, axis=0)
