"""Seeded, stratified splits that are identical on every machine, keyed by paths relative to the dataset."""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stylecls.data.scan import Found

#: The values of a catalog's ``split`` column.
SPLITS = ("train", "val", "test")
#: Each domain of a multi-domain dataset is split 80/20 (DomainBed).
DOMAIN_FRACTIONS = {"val": 0.2}


def stable_seed(*parts: object) -> int:
    """A seed that depends only on ``parts`` (not on Python's per-process hash salt)."""
    return zlib.crc32("\x1f".join(map(str, parts)).encode())


def relative_key(path: str, root: str | Path) -> str:
    """A path relative to the dataset folder with forward slashes: the split key on every OS."""
    return Path(os.path.relpath(path, root)).as_posix()


def seeded_split(
    keys: Sequence[str], strata: Sequence[str], fractions: Mapping[str, float], seed: int
) -> np.ndarray:
    """Stratified split, identical on every machine.

    Each stratum is ordered by ``keys`` (paths relative to the dataset root) and shuffled with a
    generator seeded by (seed, stratum), so adding or removing one class never moves the images
    of another. Written out rather than via ``train_test_split`` because that refuses strata with
    a single image, which partial copies have.
    """
    out = np.empty(len(keys), dtype=object)
    order = pd.DataFrame({"key": list(keys), "stratum": list(strata)}).reset_index()
    for stratum, group in order.groupby("stratum", sort=True):
        idx = group.sort_values("key")["index"].to_numpy()
        idx = idx[np.random.default_rng([seed, stable_seed(stratum)]).permutation(len(idx))]
        n = len(idx)
        counts = {s: int(round(n * fractions.get(s, 0.0))) for s in ("val", "test")}
        for s in ("val", "test"):  # a tiny stratum still gives each requested part one image
            if fractions.get(s, 0.0) > 0 and counts[s] == 0 and n - counts["val"] - counts["test"] > 1:
                counts[s] = 1
        if n - counts["val"] - counts["test"] < 1:  # always keep at least one training image
            counts = {"val": min(counts["val"], max(n - 1, 0)), "test": 0}
        out[idx[: counts["val"]]] = "val"
        out[idx[counts["val"] : counts["val"] + counts["test"]]] = "test"
        out[idx[counts["val"] + counts["test"] :]] = "train"
    return out


def domain_split(found: Found, root: Path, seed: int, fractions: Mapping[str, float] = DOMAIN_FRACTIONS) -> list[str]:
    """Seeded stratified split per (domain, class)."""
    keys = [relative_key(p, root) for p, _, _ in found.rows]
    strata = [f"{d}/{c}" for _, c, d in found.rows]
    return list(seeded_split(keys, strata, fractions, seed))
