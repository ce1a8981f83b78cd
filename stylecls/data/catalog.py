"""One entry point for every dataset: ``catalog(name, data_root, **options)`` -> a :class:`Catalog`.

A catalog is a value: the frame (one row per image: path, label, class_name, domain, split) and a
typed :class:`CatalogInfo` saying what was found against what a complete copy has. Two places are
named apart: the *data root* (``--data-root``, ``$STYLECLS_DATA``, ``./datasets``) holds datasets; a
dataset's *folder* is where its reader looked (``<data root>/pacs``; the data root itself for ``folder``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stylecls.data.paths import default_root
from stylecls.data.registry import DatasetDef, dataset
from stylecls.errors import StyleclsError

COLUMNS = ("path", "label", "class_name", "domain", "split")


@dataclass(frozen=True)
class Counts:
    """Images, classes, and images per domain (of a copy, or of a complete one)."""

    images: int
    classes: int
    domains: dict[str, int]


@dataclass
class Listing:
    """What a dataset's reader found: images with their split, and what a complete copy holds.

    ``details`` are the reader's own facts for the record (DTD's split, WikiArt's task, PACS's lists folder,
    images left out of the official lists ...).
    """

    rows: Sequence[tuple[str, str, str]]  # (path, class_name, domain)
    splits: Sequence[str]
    classes: Sequence[str]
    domains: Sequence[str]
    expected: Counts | None  # None: a plain folder has no reference counts
    split_source: str  # official or seeded
    warnings: list[str] = field(default_factory=list)
    missing_listed: int = 0  # split-list lines naming files absent from this copy
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CatalogInfo:
    """What a catalog holds against a complete copy, where it was read, and what was noticed."""

    dataset: str
    folder: Path  # the dataset's own folder, what the reader read (the prepared cache is keyed on it)
    data_root: Path  # the data root the runs record (the folder itself for ``folder``, the cache for ``demo``)
    seed: int  # of the seeded splits
    classes: tuple[str, ...]
    domains: tuple[str, ...]
    found: Counts
    expected: Counts | None
    complete: bool
    split_source: str
    missing_listed: int
    missing_classes: tuple[str, ...]
    missing_domains: tuple[str, ...]
    warnings: tuple[str, ...]
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for a run's record."""
        out = asdict(self)
        out.update(folder=str(self.folder), data_root=str(self.data_root), classes=list(self.classes),
                   domains=list(self.domains), missing_classes=list(self.missing_classes),
                   missing_domains=list(self.missing_domains), warnings=list(self.warnings))
        details = out.pop("details")
        return {**details, **out}


@dataclass(frozen=True)
class Catalog:
    """A dataset's images (:attr:`frame`, columns :data:`COLUMNS`) and what they are (:attr:`info`)."""

    frame: pd.DataFrame
    info: CatalogInfo

    def __len__(self) -> int:
        return len(self.frame)


def _short(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def build_info(listing: Listing, dataset: str, folder: Path, data_root: Path, seed: int) -> CatalogInfo:
    """Count what ``listing`` found against what it expects: completeness and warnings."""
    warnings = list(listing.warnings)
    by_domain: dict[str, int] = {d: 0 for d in listing.domains}
    present: set[str] = set()
    for _, cls, dom in listing.rows:
        by_domain[dom] = by_domain.get(dom, 0) + 1
        present.add(cls)
    found = Counts(len(listing.rows), len(present), by_domain)
    missing_classes = tuple(c for c in listing.classes if c not in present)
    missing_domains = tuple(d for d in listing.domains if by_domain.get(d, 0) == 0)
    expected, complete = listing.expected, True
    if expected is not None:
        complete = (
            found.images == expected.images
            and found.classes == expected.classes
            and all(by_domain.get(d, 0) == n for d, n in expected.domains.items())
            and listing.missing_listed == 0
        )
        if not complete:
            warnings.insert(
                0,
                f"incomplete copy of {dataset}: found {found.images:,} of {expected.images:,} images, "
                f"{found.classes} of {expected.classes} classes"
                + (f"; missing domains: {', '.join(missing_domains)}" if missing_domains else "")
                + (f"; missing classes: {_short(missing_classes)}" if missing_classes else ""),
            )
    if listing.missing_listed:
        warnings.append(f"{listing.missing_listed:,} split-list lines name files that are not in this copy")
    return CatalogInfo(
        dataset=dataset, folder=folder, data_root=data_root, seed=seed, classes=tuple(listing.classes),
        domains=tuple(listing.domains), found=found, expected=expected, complete=bool(complete),
        split_source=listing.split_source, missing_listed=int(listing.missing_listed),
        missing_classes=missing_classes, missing_domains=missing_domains, warnings=tuple(warnings),
        details=dict(listing.details),
    )  # fmt: skip


def build_frame(listing: Listing) -> pd.DataFrame:
    """One row per image, labels = positions in the listing's classes, sorted by (domain, class, path)."""
    index = {c: i for i, c in enumerate(listing.classes)}
    rows = listing.rows
    frame = pd.DataFrame(
        {
            "path": [r[0] for r in rows],
            "label": np.array([index[r[1]] for r in rows], dtype=np.int64),
            "class_name": [r[1] for r in rows],
            "domain": [r[2] for r in rows],
            "split": list(listing.splits),
        },
        columns=list(COLUMNS),
    )
    return frame.sort_values(["domain", "class_name", "path"], kind="stable").reset_index(drop=True)


def _absolute(path: str | Path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser()))


def dataset_dir(name: str, data_root: str | Path | None = None) -> Path:
    """Where ``name`` is looked for: ``<data root>/<folder>``; the root itself for ``folder``; its home (the
    demo: the cache) for a dataset that lives outside the data root."""
    d = dataset(name)
    if d.home is not None:
        return d.home()
    base = _absolute(data_root) if data_root is not None else default_root()
    return base / d.folder if d.folder else base


def _data_root(d: DatasetDef, folder: Path) -> Path:
    return folder.parent if d.folder is not None and d.home is None else folder


def catalog(name: str, data_root: str | Path | None = None, **options: Any) -> Catalog:
    """The catalog of dataset ``name`` under ``data_root`` (``$STYLECLS_DATA`` or ``./datasets``).

    For ``folder`` the data root is the folder itself; ``demo`` ignores it (the demo lives in the
    cache). Options: ``seed`` (seeded splits) for all, and each dataset's own (``DatasetDef.options``:
    ``split`` 1..10 for dtd, ``task`` for wikiart, ``splits_dir`` for pacs).
    """
    d = dataset(name)
    unknown = sorted(set(options) - set(d.options))
    if unknown:
        raise StyleclsError(
            f"dataset {name!r} has no option {', '.join(map(repr, unknown))}; its options: {', '.join(d.options)}"
        )
    options = {k: v for k, v in options.items() if v is not None}
    seed = int(options.setdefault("seed", 0))
    folder = dataset_dir(name, data_root)
    if d.generated is None:
        for place in (folder.parent, folder) if d.folder else (folder,):
            if place.exists() and not place.is_dir():
                raise StyleclsError(f"{place} is a file, not a folder: point --data-root / $STYLECLS_DATA at the "
                                    "folder that holds the datasets (see datasets/README.md)")
        if not folder.is_dir():
            raise d.missing(folder)
    listing = d.read(folder, **options)
    classes = list(listing.classes)
    if len(classes) < 2:
        raise StyleclsError(
            f"{folder} has {len(classes)} class{'' if len(classes) == 1 else 'es'} ({', '.join(classes) or 'none'}): "
            "classification needs at least 2 class folders"
        )
    return from_listing(listing, name, folder, _data_root(d, folder), seed)


def from_listing(listing: Listing, dataset: str, folder: Path, data_root: Path | None = None,
                 seed: int = 0) -> Catalog:
    """The catalog of what a reader listed under ``folder`` (``data_root``: the folder itself by default)."""
    info = build_info(listing, dataset, folder, folder if data_root is None else data_root, seed)
    return Catalog(build_frame(listing), info)


def domains_of(name: str, data_root: str | Path | None = None) -> list[str]:
    """The domains of a dataset (for looping ``--protocol lodo`` over every held-out domain)."""
    d = dataset(name)
    if d.domains is not None:
        return list(d.domains)
    return list(catalog(name, data_root).info.domains)
