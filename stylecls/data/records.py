"""The shared record machinery: scanning class folders, seeded splits and the catalogue frame.

Every dataset family turns its on-disk layout into the same table (one row per image) so that
protocols, loaders, checks and the cache never need to know which dataset they are looking at.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from stylecls.errors import StyleclsError

COLUMNS = ("path", "label", "class_name", "domain", "split")
SPLITS = ("train", "val", "test")
#: Datasets ``stylecls data download`` can fetch (stylecls.data.sources has their sources).
DOWNLOADABLE = frozenset({"dtd", "pacs", "office_home", "wikiart"})

Image.init()
#: Every extension PIL can open (the folder reader accepts any of them).
IMAGE_EXTENSIONS = frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


@dataclass(frozen=True)
class Card:
    """What a user needs to know about a dataset when it is missing or incomplete."""

    name: str
    title: str
    folder: str | None  # sub-folder of the data root; None: the root is the dataset
    layout: str
    source: str
    options: tuple[str, ...] = ("seed",)

    def missing(self, where: Path, what: str = "") -> StyleclsError:
        detail = f" ({what})" if what else ""
        get = "Get it "
        if self.name in DOWNLOADABLE:
            get = f"Get it with `stylecls data download --dataset {self.name}`, or "
        return StyleclsError(
            f"{self.title} not found at {where}{detail}. Expected layout: {self.layout}. "
            f"{get}from {self.source} and unpack it under the data root (see datasets/README.md), "
            "or point --data-root / $STYLECLS_DATA at the folder that holds it."
        )


@dataclass
class Found:
    """Records gathered by a dataset reader, plus what it noticed on the way."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (path, class_name, domain)
    warnings: list[str] = field(default_factory=list)
    ignored: int = 0  # files with no image extension


def is_image(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def subdirs(folder: Path) -> list[str]:
    """Sorted names of the visible sub-folders of ``folder``."""
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))


def scan_classes(folder: Path, domain: str, found: Found, classes: Iterable[str] | None = None) -> list[str]:
    """Add ``folder/<class>/<image>`` rows to ``found``; return the class folders seen.

    With ``classes`` given, folders outside that list are reported and skipped, so a stray
    folder never shifts the label numbering.
    """
    allowed = set(classes) if classes is not None else None
    seen = []
    for name in subdirs(folder):
        if allowed is not None and name not in allowed:
            found.warnings.append(f"{folder / name}: not a class of this dataset, ignored")
            continue
        seen.append(name)
        with os.scandir(folder / name) as it:
            for entry in sorted(it, key=lambda e: e.name):
                if not entry.is_file():
                    continue
                if is_image(entry.name):
                    found.rows.append((os.path.abspath(entry.path), name, domain))
                elif not entry.name.startswith("."):
                    found.ignored += 1
    return seen


def stable_seed(*parts: object) -> int:
    """A seed that depends only on ``parts`` (not on Python's per-process hash salt)."""
    return zlib.crc32("\x1f".join(map(str, parts)).encode())


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


def build_frame(
    rows: Sequence[tuple[str, str, str]],
    splits: Sequence[str],
    classes: Sequence[str],
    info: dict[str, Any],
) -> pd.DataFrame:
    """The catalogue: one row per image, labels = positions in ``classes``, ``info`` in attrs."""
    index = {c: i for i, c in enumerate(classes)}
    frame = pd.DataFrame(
        {
            "path": [r[0] for r in rows],
            "label": np.array([index[r[1]] for r in rows], dtype=np.int64),
            "class_name": [r[1] for r in rows],
            "domain": [r[2] for r in rows],
            "split": list(splits),
        },
        columns=list(COLUMNS),
    )
    frame = frame.sort_values(["domain", "class_name", "path"], kind="stable").reset_index(drop=True)
    frame.attrs["info"] = info
    return frame


def summarise(
    frame_rows: Sequence[tuple[str, str, str]],
    *,
    dataset: str,
    root: Path,
    classes: Sequence[str],
    domains: Sequence[str],
    expected: dict[str, Any] | None,
    split_source: str,
    missing_listed: int = 0,
    warnings: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON-able ``info`` dict: found vs expected counts, completeness and warnings."""
    warnings = list(warnings or [])
    by_domain: dict[str, int] = {d: 0 for d in domains}
    present_classes: set[str] = set()
    for _, cls, dom in frame_rows:
        by_domain[dom] = by_domain.get(dom, 0) + 1
        present_classes.add(cls)
    found = {"images": len(frame_rows), "classes": len(present_classes), "domains": by_domain}
    missing_classes = [c for c in classes if c not in present_classes]
    missing_domains = [d for d in domains if by_domain.get(d, 0) == 0]
    complete = True
    if expected is not None:
        complete = (
            found["images"] == expected["images"]
            and found["classes"] == expected["classes"]
            and all(by_domain.get(d, 0) == n for d, n in expected["domains"].items())
            and missing_listed == 0
        )
        if not complete:
            warnings.insert(
                0,
                f"incomplete copy of {dataset}: found {found['images']:,} of {expected['images']:,} images, "
                f"{found['classes']} of {expected['classes']} classes"
                + (f"; missing domains: {', '.join(missing_domains)}" if missing_domains else "")
                + (f"; missing classes: {_short(missing_classes)}" if missing_classes else ""),
            )
    if missing_listed:
        warnings.append(f"{missing_listed:,} split-list lines name files that are not in this copy")
    info: dict[str, Any] = {
        "dataset": dataset,
        "root": str(root),
        "classes": list(classes),
        "domains": list(domains),
        "complete": bool(complete),
        "found": found,
        "expected": expected,
        "split_source": split_source,
        "missing_listed": int(missing_listed),
        "missing_classes": missing_classes,
        "missing_domains": missing_domains,
        "warnings": warnings,
    }
    info.update(extra or {})
    return info


def _short(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def relative_key(path: str, root: Path) -> str:
    """A path relative to the dataset root with forward slashes: the split key on every OS."""
    return Path(os.path.relpath(path, root)).as_posix()
