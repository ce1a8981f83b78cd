"""Figures drawn off-screen: the Agg canvas directly, never pyplot's global state.

Commands write PNGs from any thread or process without a display, and a notebook that imports
them keeps its own (inline) backend.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def figure(width: float, height: float, dpi: int = 100) -> Figure:
    """A new figure of ``width`` x ``height`` inches (constrained layout) attached to an Agg canvas."""
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_confusion(confusion: pd.DataFrame, path: Path, title: str = "") -> Path:
    """:func:`confusion_figure` written to ``path`` (PNG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    confusion_figure(confusion, title).savefig(path)
    return path


def confusion_figure(confusion: pd.DataFrame, title: str = "") -> Figure:
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
        for i, j in zip(*np.nonzero(counts), strict=False):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=font - 1,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label="fraction of the true class")
    if title:
        ax.set_title(title, fontsize=max(font + 1, 9))
    return fig


def plot_mistakes(predictions: pd.DataFrame, pixels: Any, path: Path, count: int = 16) -> Path | None:
    """A grid of the ``count`` most confident mistakes (true label, predicted label, confidence)."""
    from stylecls.data import ImageDataset

    wrong = predictions[~predictions["correct"]].sort_values("confidence", ascending=False).head(count)
    if wrong.empty:
        return None
    images = ImageDataset(wrong.reset_index(drop=True), pixels.img_size, train=False, pixels=pixels)
    cols = min(4, len(wrong))
    nrows = math.ceil(len(wrong) / cols)
    fig = figure(2.6 * cols, 2.9 * nrows)
    axes = fig.subplots(nrows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i, row in zip(axes.flat, range(len(wrong)), wrong.itertuples(), strict=False):
        sample = images[i]
        if sample is None:  # unreadable now (the file changed since it was predicted)
            continue
        ax.imshow(sample[0].permute(1, 2, 0).numpy())
        where = f" [{row.domain}]" if row.domain else ""
        ax.set_title(f"true: {row.true_class}{where}\npred: {row.pred_class} ({row.confidence:.0%})",
                     fontsize=8, color="firebrick")
    fig.suptitle("most confident mistakes", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
