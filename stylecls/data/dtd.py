"""Describable Textures Dataset: ``dtd/images/<class>/*.jpg`` with optional ``dtd/labels``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stylecls.data.records import Card, Found, build_frame, relative_key, scan_classes, seeded_split, summarise
from stylecls.errors import StyleclsError

CLASSES = (
    "banded blotchy braided bubbly bumpy chequered cobwebbed cracked crosshatched crystalline dotted fibrous "
    "flecked freckled frilly gauzy grid grooved honeycombed interlaced knitted lacelike lined marbled matted "
    "meshed paisley perforated pitted pleated polka-dotted porous potholed scaly smeared spiralled sprinkled "
    "stained stratified striped studded swirly veined waffled woven wrinkled zigzagged"
).split()
EXPECTED = {"images": 5640, "classes": 47, "domains": {"dtd": 5640}}
# Without the official lists the images are split in thirds, as the official splits are.
FRACTIONS = {"val": 1 / 3, "test": 1 / 3}

CARD = Card(
    name="dtd",
    title="DTD (Describable Textures Dataset)",
    folder="dtd",
    layout="dtd/images/<class>/<class>_NNNN.jpg (47 classes) and optionally dtd/labels/{train,val,test}{1..10}.txt",
    source="https://www.robots.ox.ac.uk/~vgg/data/dtd/ (dtd-r1.0.1.tar.gz)",
    options=("split", "seed"),
)


def _read_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def load(root: Path, split: int = 1, seed: int = 0) -> pd.DataFrame:
    if not isinstance(split, int) or isinstance(split, bool) or not 1 <= split <= 10:
        raise StyleclsError(f"DTD has official splits 1..10, not {split!r}")
    images = root / "images"
    if not images.is_dir():
        raise CARD.missing(images, "no images/ folder")
    found = Found()
    scan_classes(images, "dtd", found, CLASSES)
    if not found.rows:
        raise CARD.missing(images, "no class folders with images")
    keys = [relative_key(p, images) for p, _, _ in found.rows]
    labels = root / "labels"
    lists = {part: labels / f"{part}{split}.txt" for part in ("train", "val", "test")}
    missing_listed = 0
    if all(p.is_file() for p in lists.values()):
        split_of: dict[str, str] = {}
        for part, path in lists.items():
            for key in _read_list(path):
                split_of[key] = part
        on_disk = set(keys)
        missing_listed = sum(1 for key in split_of if key not in on_disk)
        keep = [i for i, k in enumerate(keys) if k in split_of]
        if len(keep) < len(keys):
            found.warnings.append(
                f"{len(keys) - len(keep)} images are in no list of official split {split} and are not used"
            )
        rows = [found.rows[i] for i in keep]
        splits = [split_of[keys[i]] for i in keep]
        source = "official"
    else:
        found.warnings.append(
            f"no official split lists in {labels} (labels/train{split}.txt ...): using a seeded stratified "
            f"split in thirds (seed={seed})"
        )
        rows = found.rows
        splits = list(seeded_split(keys, [c for _, c, _ in rows], FRACTIONS, seed))
        source = "seeded"
    info = summarise(
        rows,
        dataset="dtd",
        root=root,
        classes=CLASSES,
        domains=["dtd"],
        expected=EXPECTED,
        split_source=source,
        missing_listed=missing_listed,
        warnings=found.warnings,
        extra={"split": split, "seed": seed},
    )
    return build_frame(rows, splits, CLASSES, info)
