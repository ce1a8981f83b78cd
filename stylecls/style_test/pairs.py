"""Seeded pairs of a run's images and a DataLoader that streams them through the run's evaluation pixels.

Each test image A (in the run's row order, so strength 0 sees exactly what ``stylecls evaluate`` sees) gets
B, an image of the same part with another class (the cue-conflict partner), and C, an image of another
domain (any part) or, in a single-domain run, another image of the part (the colour reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from stylecls.data.cache import CacheSource
from stylecls.data.pixels import Pixels
from stylecls.errors import StyleclsError
from stylecls.evaluate.predict import PredictDataset

__all__ = ["PairBatch", "PairDataset", "draw_pairs", "pair_loader"]


def draw_pairs(rows: pd.DataFrame, part_rows: pd.DataFrame, pairs: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Row numbers (into ``rows``) ``a``, ``b``, ``c`` per pair; ``part_rows`` is the tested part (a slice of rows).

    ``pairs`` caps the number of A images (a seeded sample, kept in row order); None takes them all.
    """
    rng = np.random.default_rng(seed)
    a = part_rows.index.to_numpy()
    if pairs is not None and pairs < len(a):
        if pairs < 1:
            raise StyleclsError(f"--pairs must be at least 1, not {pairs}")
        a = np.sort(rng.choice(a, size=pairs, replace=False))
    labels = rows["label"].to_numpy()
    domains = rows["domain"].to_numpy()
    part_index = part_rows.index.to_numpy()
    if len(set(labels[part_index])) < 2:
        raise StyleclsError("the style tests need at least two classes in the tested part (a cue conflict pairs "
                            "an image with one of another class)")
    by_label = {lab: part_index[labels[part_index] != lab] for lab in set(labels[part_index])}
    multi_domain = len(set(domains)) > 1
    everything = rows.index.to_numpy()
    b, c = np.empty(len(a), dtype=np.int64), np.empty(len(a), dtype=np.int64)
    for i, row in enumerate(a):
        others = by_label[labels[row]]
        b[i] = others[rng.integers(len(others))]
        pool = everything[domains != domains[row]] if multi_domain else part_index[part_index != row]
        c[i] = pool[rng.integers(len(pool))] if len(pool) else row
    return pd.DataFrame({"a": a, "b": b, "c": c})


class PairBatch(NamedTuple):
    a: torch.Tensor  # uint8 (N, 3, S, S): the content images
    b: torch.Tensor  # uint8 (N, 3, S, S) or empty: their other-class partners
    c: torch.Tensor  # uint8 (N, 3, S, S) or empty: their colour references
    positions: torch.Tensor  # int64 (N,): the pairs' positions
    failed: list[tuple[int, str]]  # (position, why) of pairs with an unreadable image


Sample = tuple[Any, int, str]
_NONE = torch.empty(0, dtype=torch.uint8)


class PairDataset(Dataset):
    """Pair i -> ((A, B, C) uint8 images, i, "") or (None, i, why); B and C only when ``need`` names them."""

    def __init__(
        self,
        paths: Sequence[str],
        pairs: pd.DataFrame,
        pixels: Pixels,
        need: Sequence[str] = ("b", "c"),
        cache_source: CacheSource | None = None,
    ) -> None:
        self.pairs = pairs
        self.need = tuple(need)
        self.columns = ("a", *[k for k in ("b", "c") if k in self.need])
        items = [paths[r] for col in self.columns for r in pairs[col]]
        self.images = PredictDataset(items, pixels, cache_source)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> Sample:
        out: dict[str, torch.Tensor] = {}
        for k, col in enumerate(self.columns):
            image, _, why = self.images[k * len(self.pairs) + i]
            if image is None:
                return None, i, f"{col}: {why}"
            out[col] = image
        return (out["a"], out.get("b", _NONE), out.get("c", _NONE)), i, ""


def collate(samples: list[Sample]) -> PairBatch:
    kept = [(images, i) for images, i, _ in samples if images is not None]
    failed = [(i, why) for images, i, why in samples if images is None]

    def stack(k: int) -> torch.Tensor:
        if not kept or kept[0][0][k].numel() == 0:
            return _NONE
        return torch.stack([images[k] for images, _ in kept])

    positions = torch.tensor([i for _, i in kept], dtype=torch.int64)
    return PairBatch(stack(0), stack(1), stack(2), positions, failed)


def pair_loader(dataset: PairDataset, batch_size: int = 64, workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """Pairs in order, ``batch_size`` at a time (the images are decoded per batch, never all at once)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate,
                      pin_memory=pin_memory)
