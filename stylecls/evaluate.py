"""Predictions -> metrics, per-class tables, confusion matrices and domain gaps (``stylecls evaluate``).

Everything is computed from a run folder alone: ``config.json`` says how to rebuild the model and
where the data lives, ``split.csv`` lists the exact rows of every part, the checkpoint holds the
weights. The numbers come from :mod:`sklearn.metrics`; this module only decides *which* rows are
compared and writes the results into ``RUN/eval/``::

    predictions.csv    one row per evaluated image (all parts that were predicted, with `part`)
    metrics.json       headline numbers of the evaluated part (+ domain gap for held-out domains)
    per_class.csv      accuracy (= recall), precision, F1, support per class
    confusion.csv      raw counts, true classes as rows; confusion.png is row-normalised
    per_domain.csv     accuracy per (part, domain); per_class_domain.csv: class x domain accuracy
    mistakes.png       the most confident mistakes with true and predicted labels

The *domain gap* follows the leave-one-domain-out protocol: accuracy on the run's validation part
(held-out images of the training domains) minus accuracy on the test-part images of domains the
model never saw in training.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)
from torch import nn

from stylecls.errors import StyleclsError, unknown_name
from stylecls.models import build_model
from stylecls.plotting import figure
from stylecls.runfolder import RunFolder, write_json

__all__ = [
    "PARTS",
    "EvalResult",
    "classification_metrics",
    "confusion_table",
    "domain_gap",
    "evaluate",
    "load_model",
    "per_class_domain_table",
    "per_class_table",
    "per_domain_table",
    "plot_confusion",
    "plot_mistakes",
    "predict",
    "predictions_frame",
    "resolve_device",
    "run_rows",
    "select_rows",
]

PARTS = ("test", "val")


@dataclass
class EvalResult:
    """What :func:`evaluate` wrote: the headline metrics and the tables behind them."""

    metrics: dict[str, Any]
    predictions: pd.DataFrame
    per_class: pd.DataFrame
    confusion: pd.DataFrame
    per_domain: pd.DataFrame | None
    out_dir: Path


# --- the run's model and rows ----------------------------------------------------------------


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; anything else must be a device torch knows."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise StyleclsError(f"unknown device {device!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise StyleclsError(f"device {device!r} requested but CUDA is not available here")
    return dev


def load_model(run: RunFolder, checkpoint: str = "best", device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the run's model from ``config.json`` and load ``checkpoint`` into it (eval mode)."""
    cfg = run.config()
    state = run.load_checkpoint(checkpoint, map_location="cpu")
    m = cfg["model"]
    model = build_model(m["arch"], m.get("block", "none"), m["num_classes"], **(m.get("block_options") or {}))
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as e:
        raise StyleclsError(
            f"{run.checkpoint_path(checkpoint)} does not match the model in {run.config_path}: {e}"
        ) from None
    return model.to(device).eval(), state


def run_rows(run: RunFolder, data_root: str | Path | None = None) -> pd.DataFrame:
    """``split.csv`` with absolute image paths, resolved against ``data_root`` or the run's data root.

    Every listed image must exist: a run evaluated on a different machine needs ``--data-root``.
    """
    if not run.split_path.is_file():
        raise StyleclsError(f"{run.path} has no {run.split_path.name}: cannot tell which images it was trained on")
    cfg = run.config()
    frame = pd.read_csv(run.split_path)
    frame.attrs["info"] = cfg["data"].get("info") or {}  # lets ImageDataset read a prepared cache
    needed = {"path", "label", "class_name", "domain", "part"}
    if missing := needed - set(frame.columns):
        raise StyleclsError(f"{run.split_path} lacks the columns {sorted(missing)}")
    root = Path(data_root if data_root is not None else cfg["data"]["root"]).expanduser()
    frame["path"] = [p if Path(p).is_absolute() else str(root / p) for p in frame["path"]]
    frame["domain"] = frame["domain"].fillna("").astype(str)
    exists = np.array([Path(p).is_file() for p in frame["path"]])
    if not exists.all():
        example = frame["path"][~exists].iloc[0]
        hint = "" if data_root is not None else "; pass --data-root to point at your copy of the data"
        raise StyleclsError(
            f"{(~exists).sum():,} of {len(frame):,} images listed in {run.split_path} are missing "
            f"(e.g. {example}){hint}"
        )
    return frame


def select_rows(rows: pd.DataFrame, part: str | None = None, test_domain: str | None = None) -> tuple[pd.DataFrame, str]:
    """The rows to report on and the part they come from.

    ``part=None`` means the test part, or the validation part where a run has no test part.
    ``test_domain`` keeps one domain of that part.
    """
    parts = set(rows["part"])
    if part is None:
        part = "test" if "test" in parts else "val"
    elif part not in PARTS:
        raise unknown_name("split", part, PARTS)
    chosen = rows[rows["part"] == part]
    if chosen.empty:
        raise StyleclsError(f"this run has no {part!r} part; parts present: {', '.join(sorted(parts))}")
    if test_domain is not None:
        present = sorted(set(chosen["domain"]))
        if test_domain not in present:
            raise StyleclsError(
                f"domain {test_domain!r} has no images in the {part!r} part of this run; "
                f"domains there: {', '.join(present)}"
            )
        chosen = chosen[chosen["domain"] == test_domain]
    return chosen, part


def _held_out(rows: pd.DataFrame, test_domain: str | None = None) -> pd.DataFrame:
    """Test-part rows of domains the model never trained on (optionally one of them)."""
    train_domains = set(rows.loc[rows["part"] == "train", "domain"])
    held = rows[(rows["part"] == "test") & ~rows["domain"].isin(train_domains)]
    if test_domain is not None:
        held = held[held["domain"] == test_domain]
    return held


# --- predicting ----------------------------------------------------------------------------------


@torch.no_grad()
def predict(
    model: nn.Module,
    frame: pd.DataFrame,
    img_size: int,
    device: torch.device | str = "cpu",
    batch_size: int = 128,
    workers: int = 0,
    on_batch: Callable[[torch.Tensor], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Softmax probabilities (N, K) for the images of ``frame``, in its row order.

    Images go through the evaluation transform of :class:`stylecls.data.ImageDataset`; ``on_batch``
    sees each batch's row positions (inspect's forward hooks use it to attribute gates to rows).
    """
    from stylecls.data import ImageDataset, make_loader, normalize

    device = torch.device(device)
    frame = frame.reset_index(drop=True)
    dataset = ImageDataset(frame, img_size, train=False)
    loader = make_loader(dataset, batch_size, shuffle=False, workers=workers, pin_memory=device.type == "cuda")
    probs = np.full((len(frame), 0), np.nan, dtype=np.float32)
    model.eval()
    for batch in loader:
        if batch.skipped:
            raise StyleclsError(f"{batch.skipped} images could not be read during evaluation")
        if on_batch is not None:
            on_batch(batch.indices)
        images = normalize(batch.images.to(device, non_blocking=True))
        p = torch.softmax(model(images).float(), dim=1).cpu().numpy()
        if probs.shape[1] == 0:
            probs = np.full((len(frame), p.shape[1]), np.nan, dtype=np.float32)
        probs[batch.indices.numpy()] = p
        if progress is not None:
            progress(len(p))
    if np.isnan(probs).any() or len(probs) != len(frame):
        raise StyleclsError("the loader did not return every image of the evaluation set")
    return probs


def predictions_frame(rows: pd.DataFrame, probs: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """One row per image: where it came from, its true and predicted class, the top probability."""
    pred = probs.argmax(axis=1)
    labels = rows["label"].to_numpy()
    return pd.DataFrame(
        {
            "path": rows["path"].to_numpy(),
            "domain": rows["domain"].to_numpy(),
            "part": rows["part"].to_numpy(),
            "label": labels,
            "true_class": [classes[i] for i in labels],
            "pred": pred,
            "pred_class": [classes[i] for i in pred],
            "confidence": probs.max(axis=1),
            "prob_true": probs[np.arange(len(labels)), labels],
            "correct": pred == labels,
        }
    )


# --- metrics (scikit-learn does the arithmetic) ----------------------------------------------


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true" is expected here
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


# --- figures -------------------------------------------------------------------------------------


def plot_confusion(confusion: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Row-normalised confusion heatmap with class names on both axes.

    Figure and fonts scale with the class count so 47 (DTD) and 65 (Office-Home) classes stay legible.
    """
    k = len(confusion)
    counts = confusion.to_numpy(dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    side = min(max(4.0, 0.24 * k + 2.5), 20.0)
    font = float(np.clip(200 / max(k, 1), 5, 10))
    fig = figure(side + 1.2, side, dpi=110 if k <= 30 else 90)
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(k), confusion.columns, rotation=90, fontsize=font)
    ax.set_yticks(range(k), confusion.index, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 20:  # write the values where they fit
        for i, j in zip(*np.nonzero(counts)):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=font - 1,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label="fraction of the true class")
    if title:
        ax.set_title(title, fontsize=max(font + 1, 9))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def plot_mistakes(predictions: pd.DataFrame, img_size: int, path: Path, count: int = 16) -> Path | None:
    """A grid of the ``count`` most confident mistakes (true label, predicted label, confidence)."""
    from stylecls.data import ImageDataset

    wrong = predictions[~predictions["correct"]].sort_values("confidence", ascending=False).head(count)
    if wrong.empty:
        return None
    images = ImageDataset(wrong.reset_index(drop=True), img_size, train=False)
    cols = min(4, len(wrong))
    nrows = math.ceil(len(wrong) / cols)
    fig = figure(2.6 * cols, 2.9 * nrows)
    axes = fig.subplots(nrows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i, row in zip(axes.flat, range(len(wrong)), wrong.itertuples()):
        ax.imshow(images[i][0].permute(1, 2, 0).numpy())
        where = f" [{row.domain}]" if row.domain else ""
        ax.set_title(f"true: {row.true_class}{where}\npred: {row.pred_class} ({row.confidence:.0%})",
                     fontsize=8, color="firebrick")
    fig.suptitle("most confident mistakes", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


# --- the command ---------------------------------------------------------------------------------


def evaluate(
    run: str | Path | RunFolder,
    checkpoint: str = "best",
    split: str | None = None,
    test_domain: str | None = None,
    data_root: str | Path | None = None,
    device: str = "auto",
    batch_size: int = 128,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Evaluate a run folder and write ``RUN/eval/`` (see the module docstring).

    The model runs once over the union of the rows needed: the reported part, plus the validation
    part when the run has a held-out domain (for the domain gap). ``progress(done, total)`` is
    called after each batch.
    """
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    cfg = run.config()
    classes = list(cfg["data"]["classes"])
    rows = run_rows(run, data_root)
    chosen, part = select_rows(rows, split, test_domain)
    train_domains = set(rows.loc[rows["part"] == "train", "domain"])
    held = _held_out(rows, test_domain)
    needed = rows["part"] == part
    if test_domain is not None:
        needed &= rows["domain"] == test_domain
    if not held.empty:
        needed |= rows["part"] == "val"
        needed |= rows.index.isin(held.index)
    union = rows[needed].reset_index(drop=True)

    dev = resolve_device(device)
    model, state = load_model(run, checkpoint, dev)
    total, done = len(union), 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    probs = predict(model, union, int(cfg["data"]["img_size"]), dev, batch_size, workers, progress=advance)
    preds = predictions_frame(union, probs, classes)
    mask = (preds["part"] == part).to_numpy()
    if test_domain is not None:
        mask &= (preds["domain"] == test_domain).to_numpy()
    ev, ev_probs = preds[mask], probs[mask]

    metrics: dict[str, Any] = {
        "run": cfg.get("name", run.path.name),
        "checkpoint": checkpoint,
        "epoch": state.get("epoch"),
        "part": part,
        "test_domain": cfg["data"].get("test_domain"),  # the run's held-out domain (leave-one-domain-out)
        "domain_filter": test_domain,  # evaluate --test-domain: the one domain of the part reported here
        **classification_metrics(ev["label"].to_numpy(), ev_probs),
    }
    per_class = per_class_table(ev["label"].to_numpy(), ev["pred"].to_numpy(), classes)
    confusion = confusion_table(ev["label"].to_numpy(), ev["pred"].to_numpy(), classes)

    out = run.eval_dir
    out.mkdir(parents=True, exist_ok=True)
    per_domain = None
    if len(set(rows["domain"])) > 1:
        per_domain = per_domain_table(preds, train_domains)
        per_domain.to_csv(out / "per_domain.csv", index=False)
        per_class_domain_table(preds, classes).to_csv(out / "per_class_domain.csv")
        metrics["per_domain"] = {
            f"{r.domain} ({r.part})": float(r.accuracy) for r in per_domain.itertuples()
        }
        metrics.update(domain_gap(preds, train_domains, test_domain))
    preds.to_csv(out / "predictions.csv", index=False)
    per_class.to_csv(out / "per_class.csv")
    confusion.to_csv(out / "confusion.csv")
    name = f"{cfg['model']['arch']} + {cfg['model'].get('block', 'none')} on {cfg['data']['dataset']}"
    where = f"{part}" + (f", {test_domain}" if test_domain else "")
    plot_confusion(confusion, out / "confusion.png", f"{name} ({where}): top-1 {metrics['top1']:.1%}")
    mistakes = plot_mistakes(ev, int(cfg["data"]["img_size"]), out / "mistakes.png")
    if mistakes is None:
        (out / "mistakes.png").unlink(missing_ok=True)
    write_json(out / "metrics.json", metrics)
    return EvalResult(metrics, preds, per_class, confusion, per_domain, out)
