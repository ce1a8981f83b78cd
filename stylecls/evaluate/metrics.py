"""Pure functions from labels and predictions to numbers and tables; scikit-learn does the arithmetic.

The *domain gap* follows the leave-one-domain-out protocol: accuracy on the run's validation part
(held-out images of the training domains) minus accuracy on the test-part images of domains the
model never saw in training.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)


def classification_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, Any]:
    """Top-1, top-5 (with > 5 classes), balanced accuracy, macro-F1 and cross-entropy of ``probs``.

    Balanced accuracy and macro-F1 average over the classes that occur in ``labels``: an incomplete
    copy of a dataset may lack some classes, and a class with no images has no recall.
    """
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    probs = probs / probs.sum(axis=1, keepdims=True)
    k = probs.shape[1]
    pred = probs.argmax(axis=1)
    present = np.unique(labels)
    with warnings.catch_warnings():  # expected when a prediction names a class absent from the labels
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        out: dict[str, Any] = {"top1": float(accuracy_score(labels, pred))}
        if k > 5:
            out["top5"] = float(top_k_accuracy_score(labels, probs, k=5, labels=np.arange(k)))
        out["balanced_accuracy"] = float(balanced_accuracy_score(labels, pred))
        out["macro_f1"] = float(f1_score(labels, pred, labels=present, average="macro", zero_division=0))
    out["loss"] = float(log_loss(labels, probs, labels=np.arange(k)))
    out["count"] = int(len(labels))
    return out


def per_class_table(labels: np.ndarray, pred: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Accuracy (recall), precision, F1 and support per class; empty where a class has no images."""
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, pred, labels=np.arange(len(classes)), zero_division=np.nan
    )
    table = pd.DataFrame(
        {"class_name": classes, "accuracy": recall, "precision": precision, "f1": f1, "support": support}
    )
    return table.set_index("class_name")


def confusion_table(labels: np.ndarray, pred: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Raw confusion counts: rows are true classes, columns predicted classes."""
    cm = confusion_matrix(labels, pred, labels=np.arange(len(classes)))
    return pd.DataFrame(cm, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted"))


def per_domain_table(predictions: pd.DataFrame, train_domains: set[str]) -> pd.DataFrame:
    """Accuracy per (part, domain) of the predicted rows; ``held_out`` marks domains unseen in training."""
    rows = []
    for (part, domain), g in predictions.groupby(["part", "domain"], sort=True):
        rows.append(
            {
                "part": part,
                "domain": domain,
                "held_out": domain not in train_domains,
                "count": len(g),
                "accuracy": accuracy_score(g["label"], g["pred"]),
            }
        )
    return pd.DataFrame(rows, columns=["part", "domain", "held_out", "count", "accuracy"])


def per_class_domain_table(predictions: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Per-class accuracy (recall) in each domain: classes as rows, domains as columns."""
    columns = {}
    for domain, g in predictions.groupby("domain", sort=True):
        _, recall, _, _ = precision_recall_fscore_support(
            g["label"], g["pred"], labels=np.arange(len(classes)), zero_division=np.nan
        )
        columns[domain] = recall
    return pd.DataFrame(columns, index=pd.Index(classes, name="class_name"))


def domain_gap(predictions: pd.DataFrame, train_domains: set[str], test_domain: str | None = None) -> dict[str, Any]:
    """In-domain validation accuracy minus held-out-domain accuracy; ``{}`` without a held-out domain."""
    val = predictions[predictions["part"] == "val"]
    held = predictions[(predictions["part"] == "test") & ~predictions["domain"].isin(train_domains)]
    if test_domain is not None:
        held = held[held["domain"] == test_domain]
    if val.empty or held.empty:
        return {}
    in_domain = float(accuracy_score(val["label"], val["pred"]))
    held_out = float(accuracy_score(held["label"], held["pred"]))
    return {
        "in_domain_val_acc": in_domain,
        "held_out_acc": held_out,
        "domain_gap": in_domain - held_out,
        "held_out_domains": sorted(set(held["domain"])),
    }
