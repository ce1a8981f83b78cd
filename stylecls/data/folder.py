"""Any folder of images: ``<root>/<class>/*`` or ``<root>/<domain>/<class>/*`` (detected).

The other multi-domain readers (PACS, Office-Home, the demo) reuse :func:`read_domains` and
:func:`domain_split`, as DomainBed's datasets share one folder reader.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from stylecls.data.records import (
    Card,
    Found,
    build_frame,
    is_image,
    relative_key,
    scan_classes,
    seeded_split,
    subdirs,
    summarise,
)
from stylecls.errors import StyleclsError

CARD = Card(
    name="folder",
    title="image folder",
    folder=None,
    layout="<root>/<class>/<image> or <root>/<domain>/<class>/<image>, any image type PIL reads",
    source="your own images (pass the folder as --data-root)",
)

#: A single-domain folder is split 70/10/20; each domain of a multi-domain one 80/20 (DomainBed).
SINGLE_FRACTIONS = {"val": 0.1, "test": 0.2}
DOMAIN_FRACTIONS = {"val": 0.2}


def read_domains(
    folder: Path,
    domains: Sequence[str],
    classes: Sequence[str] | None,
    card: Card,
    aliases: dict[str, str] | None = None,
) -> Found:
    """Rows of ``folder/<domain>/<class>/*`` for the listed domains; absent domains are warned about.

    ``aliases`` maps a domain to another folder name some copies use (``Real World`` -> ``Real_World``).
    """
    found = Found()
    for domain in domains:
        path = folder / domain
        alias = (aliases or {}).get(domain)
        if not path.is_dir() and alias and (folder / alias).is_dir():
            path = folder / alias
        if not path.is_dir():
            found.warnings.append(f"domain folder {folder / domain} is missing")
            continue
        scan_classes(path, domain, found, classes)
    if not found.rows:
        raise card.missing(folder, "no images in any domain folder")
    return found


def domain_split(found: Found, root: Path, seed: int, fractions: dict[str, float] = DOMAIN_FRACTIONS) -> list[str]:
    """Seeded stratified split per (domain, class)."""
    keys = [relative_key(p, root) for p, _, _ in found.rows]
    strata = [f"{d}/{c}" for _, c, d in found.rows]
    return list(seeded_split(keys, strata, fractions, seed))


def _has_images(folder: Path) -> bool:
    with os.scandir(folder) as it:
        return any(e.is_file() and is_image(e.name) for e in it)


def load(root: Path, seed: int = 0) -> pd.DataFrame:
    top = subdirs(root)
    if not top:
        raise CARD.missing(root, "it has no sub-folders")
    flat = [name for name in top if _has_images(root / name)]
    found = Found()
    if flat:
        if len(flat) != len(top):
            nested = sorted(set(top) - set(flat))
            raise StyleclsError(
                f"{root} mixes class folders with images ({', '.join(flat[:5])}) and folders without "
                f"images ({', '.join(nested[:5])}); use either <root>/<class>/* or <root>/<domain>/<class>/*"
            )
        scan_classes(root, "folder", found)
        domains = ["folder"]
        keys = [relative_key(p, root) for p, _, _ in found.rows]
        splits = list(seeded_split(keys, [c for _, c, _ in found.rows], SINGLE_FRACTIONS, seed))
    else:
        domains = top
        for domain in domains:
            scan_classes(root / domain, domain, found)
        if not found.rows:
            raise CARD.missing(root, "no images in its sub-folders")
        splits = domain_split(found, root, seed)
        per_domain = {d: {c for _, c, dd in found.rows if dd == d} for d in domains}
        union = set().union(*per_domain.values())
        for d, cls in per_domain.items():
            if cls != union:
                found.warnings.append(f"domain {d!r} lacks classes: {', '.join(sorted(union - cls))}")
    if found.ignored:
        found.warnings.append(f"{found.ignored} files without an image extension were ignored")
    classes = sorted({c for _, c, _ in found.rows})
    info = summarise(
        found.rows,
        dataset="folder",
        root=root,
        classes=classes,
        domains=domains,
        expected=None,
        split_source="seeded",
        warnings=found.warnings,
        extra={"seed": seed},
    )
    return build_frame(found.rows, splits, classes, info)
