"""Any folder of images: ``<root>/<class>/*`` or ``<root>/<domain>/<class>/*`` (detected)."""

from __future__ import annotations

from pathlib import Path

from stylecls.data.catalog import Listing
from stylecls.data.registry import DatasetDef, register
from stylecls.data.scan import Found, has_images, scan_classes, subdirs
from stylecls.data.splits import domain_split, relative_key, seeded_split
from stylecls.errors import StyleclsError
from stylecls.recipes import Recipe

#: A single-domain folder is split 70/10/20; each domain of a multi-domain one 80/20 (DomainBed).
SINGLE_FRACTIONS = {"val": 0.1, "test": 0.2}


def read(root: Path, seed: int = 0) -> Listing:
    top = subdirs(root)
    if not top:
        raise DATASET.missing(root, "it has no sub-folders")
    flat = [name for name in top if has_images(root / name)]
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
            raise DATASET.missing(root, "no images in its sub-folders")
        splits = domain_split(found, root, seed)
        per_domain = {d: {c for _, c, dd in found.rows if dd == d} for d in domains}
        union = set().union(*per_domain.values())
        for d, cls in per_domain.items():
            if cls != union:
                found.warnings.append(f"domain {d!r} lacks classes: {', '.join(sorted(union - cls))}")
    if found.ignored:
        found.warnings.append(f"{found.ignored} files without an image extension were ignored")
    classes = sorted({c for _, c, _ in found.rows})
    return Listing(found.rows, splits, classes, domains, None, "seeded", found.warnings)


DATASET = register(DatasetDef(
    name="folder",
    title="image folder",
    help="your own images: pass the folder as --data-root",
    read=read,
    folder=None,
    layout="<root>/<class>/<image> or <root>/<domain>/<class>/<image>, any image type PIL reads",
    source="your own images (pass the folder as --data-root)",
    recipe=Recipe(arch="resnet18", img_size=224, epochs=30, batch_size=64, lr=0.025, weight_decay=1e-4,
                  warmup_epochs=2, label_smoothing=0.1),
))  # fmt: skip
