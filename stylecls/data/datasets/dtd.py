"""Describable Textures Dataset: ``dtd/images/<class>/*.jpg`` with optional ``dtd/labels``."""

from __future__ import annotations

from pathlib import Path

from stylecls.data.catalog import Counts, Listing
from stylecls.data.registry import DatasetDef, register
from stylecls.data.scan import Found, scan_classes
from stylecls.data.sources import HttpArchive
from stylecls.data.splits import relative_key, seeded_split
from stylecls.errors import StyleclsError
from stylecls.recipes import IMAGENET_SIZED

CLASSES = (
    "banded blotchy braided bubbly bumpy chequered cobwebbed cracked crosshatched crystalline dotted fibrous "
    "flecked freckled frilly gauzy grid grooved honeycombed interlaced knitted lacelike lined marbled matted "
    "meshed paisley perforated pitted pleated polka-dotted porous potholed scaly smeared spiralled sprinkled "
    "stained stratified striped studded swirly veined waffled woven wrinkled zigzagged"
).split()
EXPECTED = Counts(images=5640, classes=47, domains={"dtd": 5640})
# Without the official lists the images are split in thirds, as the official splits are.
FRACTIONS = {"val": 1 / 3, "test": 1 / 3}


def _read_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read(root: Path, split: int = 1, seed: int = 0) -> Listing:
    if not isinstance(split, int) or isinstance(split, bool) or not 1 <= split <= 10:
        raise StyleclsError(f"DTD has official splits 1..10, not {split!r}")
    images = root / "images"
    if not images.is_dir():
        raise DATASET.missing(images, "no images/ folder")
    found = Found()
    scan_classes(images, "dtd", found, CLASSES)
    if not found.rows:
        raise DATASET.missing(images, "no class folders with images")
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
    return Listing(rows, splits, CLASSES, ["dtd"], EXPECTED, source, found.warnings, missing_listed, {"split": split})


DATASET = register(DatasetDef(
    name="dtd",
    title="DTD (Describable Textures Dataset)",
    help="47 textures, 5,640 images, 10 official splits",
    read=read,
    folder="dtd",
    layout="dtd/images/<class>/<class>_NNNN.jpg (47 classes) and optionally dtd/labels/{train,val,test}{1..10}.txt",
    source="https://www.robots.ox.ac.uk/~vgg/data/dtd/ (dtd-r1.0.1.tar.gz)",
    options=("split", "seed"),
    domains=("dtd",),
    classes=tuple(CLASSES),
    recipe=IMAGENET_SIZED,  # 1,880 training images per split; textures need the full resolution
    downloads=(
        HttpArchive("official", "https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz",
                    md5="fff73e5086ae6bdbea199a49dfb8a4c1",
                    about="the authors' archive (images and the 10 official splits); MD5 as torchvision checks it"),
    ),
))  # fmt: skip
