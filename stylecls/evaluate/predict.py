"""A run's model over rows of images: softmax probabilities in row order, unreadable rows marked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from stylecls.errors import StyleclsError
from stylecls.runfolder import RunFolder


def load_model(run: RunFolder | str | Path, checkpoint: str = "best",
               device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the run's model from its spec and load ``checkpoint`` into it (eval mode)."""
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    return run.build_model(checkpoint, device)


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
    skip_bad: bool = False,
    pixels: Any = None,
    cache_source: dict[str, Any] | None = None,
) -> np.ndarray:
    """Softmax probabilities (N, K) for the images of ``frame``, in its row order.

    Images go through the evaluation transform of :class:`stylecls.data.ImageDataset` with the run's
    pixel pipeline ``pixels`` (a prepared cache of ``cache_source`` serves the same pixels). With
    ``skip_bad`` an unreadable or missing image leaves its row NaN (the caller counts and drops it);
    without, it stops with the file's path. ``on_batch`` sees each batch's row positions (inspect's
    forward hooks use it to attribute gates to rows).
    """
    from stylecls.data import ImageDataset, make_loader, normalize

    device = torch.device(device)
    frame = frame.reset_index(drop=True)
    dataset = ImageDataset(frame, img_size, train=False, skip_bad=skip_bad, pixels=pixels, cache_source=cache_source)
    loader = make_loader(dataset, batch_size, shuffle=False, workers=workers, pin_memory=device.type == "cuda")
    probs: np.ndarray | None = None
    model.eval()
    for batch in loader:
        if progress is not None:
            progress(len(batch.labels) + batch.skipped)
        if len(batch.labels) == 0:
            continue
        if on_batch is not None:
            on_batch(batch.indices)
        images = normalize(batch.images.to(device, non_blocking=True))
        p = torch.softmax(model(images).float(), dim=1).cpu().numpy()
        if probs is None:
            probs = np.full((len(frame), p.shape[1]), np.nan, dtype=np.float32)
        probs[batch.indices.numpy()] = p
    if probs is None:
        raise StyleclsError(f"none of the {len(frame):,} images could be read")
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
