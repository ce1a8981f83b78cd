"""Evaluation: predictions of a run's model -> metrics, per-class tables, confusion matrices, domain gaps.

``predict`` is the one prediction path (dataset, transform, collate, loader, softmax) shared with
``stylecls predict`` and the style tests, ``metrics`` holds the pure functions from labels and
predictions to numbers (scikit-learn does the arithmetic), ``evaluation`` is ``stylecls evaluate``'s
orchestration over a run folder; the figures live in :mod:`stylecls.plotting`.
"""

from stylecls.device import select_device
from stylecls.evaluate.evaluation import (
    EVALUATED_PARTS,
    EvalResult,
    evaluate,
    held_out_rows,
    select_rows,
)  # fmt: skip
from stylecls.evaluate.metrics import (
    classification_metrics,
    confusion_table,
    domain_gap,
    per_class_domain_table,
    per_class_table,
    per_domain_table,
)  # fmt: skip
from stylecls.evaluate.predict import (
    NonFiniteOutputs,
    PredictDataset,
    image_transform,
    predict,
    predict_loader,
    predictions_frame,
    probabilities,
)  # fmt: skip
from stylecls.plotting import plot_confusion, plot_mistakes

__all__ = [
    "EVALUATED_PARTS",
    "EvalResult",
    "NonFiniteOutputs",
    "PredictDataset",
    "classification_metrics",
    "confusion_table",
    "domain_gap",
    "evaluate",
    "held_out_rows",
    "image_transform",
    "per_class_domain_table",
    "per_class_table",
    "per_domain_table",
    "plot_confusion",
    "plot_mistakes",
    "predict",
    "predict_loader",
    "predictions_frame",
    "probabilities",
    "select_device",
    "select_rows",
]
