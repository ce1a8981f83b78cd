"""Evaluation: predictions of a run's model -> metrics, per-class tables, confusion matrices, domain gaps.

``predict`` runs a model over rows of images, ``metrics`` holds the pure functions from labels and
predictions to numbers (scikit-learn does the arithmetic), ``run`` is ``stylecls evaluate``'s
orchestration over a run folder; the figures live in :mod:`stylecls.plotting`.
"""

from stylecls.device import select_device
from stylecls.evaluate.metrics import (
    classification_metrics,
    confusion_table,
    domain_gap,
    per_class_domain_table,
    per_class_table,
    per_domain_table,
)  # fmt: skip
from stylecls.evaluate.predict import load_model, predict, predictions_frame
from stylecls.evaluate.run import PARTS, EvalResult, evaluate, held_out_rows, select_rows
from stylecls.plotting import plot_confusion, plot_mistakes

__all__ = [
    "PARTS",
    "EvalResult",
    "classification_metrics",
    "confusion_table",
    "domain_gap",
    "evaluate",
    "held_out_rows",
    "load_model",
    "per_class_domain_table",
    "per_class_table",
    "per_domain_table",
    "plot_confusion",
    "plot_mistakes",
    "predict",
    "predictions_frame",
    "select_device",
    "select_rows",
]
