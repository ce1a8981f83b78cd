"""PACS: ``pacs/<domain>/<class>/*``, four domains, seven classes, optional official k-fold lists.

The official lists (``<domain>_{train,crossval,test}_kfold.txt``, lines ``art_painting/dog/pic_001.jpg 1``
with 1-based labels) are looked for in ``splits_dir``, ``pacs/splits`` and a ``pacs_splits`` folder next
to ``pacs``. ``train`` -> train, ``crossval`` -> val; the ``test`` list is the whole domain (used only
for coverage). Widely shared copies store the sketch domain as PNG while some list files say ``.jpg``:
an entry with no exact match is matched by its path without extension, and the count is reported.
"""

from __future__ import annotations

import os
from pathlib import Path

from stylecls.data.catalog import Counts, Listing
from stylecls.data.registry import DatasetDef, register
from stylecls.data.scan import read_domains
from stylecls.data.sources import HubParquet, ParquetSchema, SplitFiles
from stylecls.data.splits import domain_split, relative_key
from stylecls.errors import StyleclsError
from stylecls.recipes import Recipe

DOMAINS = ("art_painting", "cartoon", "photo", "sketch")
CLASSES = ("dog", "elephant", "giraffe", "guitar", "horse", "house", "person")
EXPECTED = Counts(
    images=9991, classes=7, domains={"art_painting": 2048, "cartoon": 2344, "photo": 1670, "sketch": 3929}
)
LISTS = {"train": "train", "crossval": "val", "test": None}


def find_splits(root: Path, splits_dir: str | Path | None) -> Path | None:
    """The folder holding the k-fold lists, or None."""
    if splits_dir is not None:
        path = Path(splits_dir).expanduser()
        if not path.is_dir():
            raise StyleclsError(f"PACS split folder {path} does not exist")
        return path
    for candidate in (root / "splits", root.parent / "pacs_splits"):
        if any(candidate.glob("*_kfold.txt")):
            return candidate
    return None


def _entries(path: Path) -> list[tuple[str, int]]:
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            out.append((parts[0], int(parts[1])))
        except (IndexError, ValueError):
            raise StyleclsError(f"{path}:{n}: expected '<domain>/<class>/<file> <label>', got {line!r}") from None
    return out


def read(root: Path, splits_dir: str | Path | None = None, seed: int = 0) -> Listing:
    found = read_domains(root, DOMAINS, CLASSES, DATASET)
    lists_dir = find_splits(root, splits_dir)
    keys = [relative_key(p, root) for p, _, _ in found.rows]
    splits: list[str | None] = [None] * len(keys)
    missing_listed = by_stem = wrong_label = 0
    official: list[str] = []
    if lists_dir is not None:
        exact = {k: i for i, k in enumerate(keys)}
        stems = {os.path.splitext(k)[0]: i for i, k in enumerate(keys)}
        for domain in DOMAINS:
            files = {name: lists_dir / f"{domain}_{name}_kfold.txt" for name in LISTS}
            if not all(f.is_file() for f in files.values()):
                continue
            official.append(domain)
            seen: set[str] = set()
            for name, part in LISTS.items():
                for rel, label in _entries(files[name]):
                    i = exact.get(rel)
                    if i is None and (i := stems.get(os.path.splitext(rel)[0])) is not None:
                        by_stem += 1
                    if i is None:
                        if rel not in seen:
                            missing_listed += 1
                            seen.add(rel)
                        continue
                    if not 1 <= label <= len(CLASSES) or CLASSES[label - 1] != found.rows[i][1]:
                        wrong_label += 1
                    if part is not None:
                        splits[i] = part
        if by_stem:
            found.warnings.append(
                f"{by_stem} split-list entries matched a file with another extension (e.g. list .jpg, file .png)"
            )
        if wrong_label:
            found.warnings.append(f"{wrong_label} split-list labels disagree with the class folder; the folder wins")
        missing_lists = [d for d in DOMAINS if d not in official]
        if missing_lists:
            found.warnings.append(
                f"no k-fold lists for {', '.join(missing_lists)} in {lists_dir}: seeded 80/20 split there"
            )
    else:
        found.warnings.append(f"no official k-fold lists found: seeded stratified 80/20 split per domain (seed={seed})")
    seeded = domain_split(found, root, seed)
    unlisted = 0
    for i, (_, _, domain) in enumerate(found.rows):
        if splits[i] is None:
            if domain in official:
                unlisted += 1
            else:
                splits[i] = seeded[i]
    keep = [i for i, s in enumerate(splits) if s is not None]
    if unlisted:
        found.warnings.append(f"{unlisted} images are in no official train/crossval list and are not used")
    rows = [found.rows[i] for i in keep]
    source = "official" if len(official) == len(DOMAINS) else "seeded"
    details = {"splits_dir": str(lists_dir) if lists_dir else None, "unlisted": unlisted, "matched_by_stem": by_stem}
    return Listing(rows, [str(splits[i]) for i in keep], CLASSES, DOMAINS, EXPECTED, source,  # keep holds no None
                   found.warnings, missing_listed, details)


def listed_images(lists: Path) -> set[str]:
    """The image paths the k-fold lists under ``lists`` name."""
    return {line.split()[0] for f in lists.rglob("*_kfold.txt") for line in f.read_text().splitlines() if line.strip()}


DATASET = register(DatasetDef(
    name="pacs",
    title="PACS",
    help="7 classes in 4 domains (art_painting, cartoon, photo, sketch), 9,991 images",
    read=read,
    folder="pacs",
    layout="pacs/<art_painting|cartoon|photo|sketch>/<class>/* (7 classes), optional official lists "
    "pacs/splits/<domain>_{train,crossval,test}_kfold.txt",
    source="https://domaingeneralization.github.io/ (images and k-fold lists; also DomainBed's download script)",
    options=("splits_dir", "seed"),
    domains=DOMAINS,
    classes=CLASSES,
    # small per-domain sets; ResNet-18 keeps a from-scratch run tractable
    recipe=Recipe(arch="resnet18", img_size=224, epochs=60, batch_size=64, lr=0.025, weight_decay=5e-4,
                  warmup_epochs=3, label_smoothing=0.1),
    # flwrlabs/pacs: one file data/train-00000-of-00001.parquet (191,395,900 bytes, 9,991 rows), columns image,
    # domain (string: art_painting, cartoon, photo, sketch), label (class label 0 dog ... 6 person)
    downloads=(HubParquet("hub", "flwrlabs/pacs", size=191_395_900,
                          about="Flower's parquet copy of PACS (9,991 images) + the official k-fold lists"),),
    split_files=SplitFiles(
        "https://raw.githubusercontent.com/DeLightCMU/RSC/master/Domain_Generalization/data/correct_txt_lists",
        tuple((f"{d}_{part}_kfold.txt", f"splits/{d}_{part}_kfold.txt")
              for d in DOMAINS for part in ("train", "crossval", "test")),
        "official PACS k-fold lists (as published with the dataset; copy in DeLightCMU/RSC)",
        listed=listed_images, by_stem=True,
    ),
    parquet=ParquetSchema(image="image", label="label", domain="domain"),
))  # fmt: skip
