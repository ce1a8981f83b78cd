"""WikiArt: ``wikiart/<Style>/<artist_title>.jpg`` with the optional ArtGAN split files beside them.

ArtGAN files: ``style_{train,val}.csv`` + ``style_class.txt``, ``genre_{train,val}.csv`` + ``genre_class``,
``artist_train``, ``artist_val`` + ``artist_class``. Lines are ``<Style>/<file>.jpg,<label>``; the artist
files start with a header line and separate with ``,,``. Genre and artist lines point into the style
folders. ArtGAN's val set is our test set; 10% of its train set (stratified, seeded) is held out as val.
"""

from __future__ import annotations

from pathlib import Path

from stylecls.data.catalog import Counts, Listing
from stylecls.data.registry import DatasetDef, register
from stylecls.data.scan import Found, scan_classes
from stylecls.data.sources import HubParquet, ParquetSchema, SplitFiles
from stylecls.data.splits import relative_key, seeded_split
from stylecls.errors import StyleclsError, unknown_name
from stylecls.recipes import Recipe

STYLES = tuple((
    "Abstract_Expressionism Action_painting Analytical_Cubism Art_Nouveau Baroque Color_Field_Painting "
    "Contemporary_Realism Cubism Early_Renaissance Expressionism Fauvism High_Renaissance Impressionism "
    "Mannerism_Late_Renaissance Minimalism Naive_Art_Primitivism New_Realism Northern_Renaissance Pointillism "
    "Pop_Art Post_Impressionism Realism Rococo Romanticism Symbolism Synthetic_Cubism Ukiyo_e"
).split())
FILES = {
    "style": ("style_train.csv", "style_val.csv", "style_class.txt"),
    "genre": ("genre_train.csv", "genre_val.csv", "genre_class"),
    "artist": ("artist_train", "artist_val", "artist_class"),
}
# (train lines, val lines, classes) of the ArtGAN files: what a complete copy is compared with.
ARTGAN = {"style": (57025, 24421, 27), "genre": (45503, 19492, 10), "artist": (13346, 5706, 23)}
SEEDED_FRACTIONS = {"val": 0.07, "test": 0.3}  # ~ArtGAN's 70/30, with a val slice
VAL_FROM_TRAIN = {"val": 0.1}

def read_classes(path: Path) -> list[str]:
    """``<index> <name>`` lines -> names in index order."""
    pairs = []
    for line in path.read_text().splitlines():
        if line.strip():
            idx, name = line.split(maxsplit=1)
            pairs.append((int(idx), name.strip()))
    return [name for _, name in sorted(pairs)]


def read_split_file(path: Path) -> list[tuple[str, int]]:
    """ArtGAN split lines -> (relative path, label); tolerates the artist files' header and ``,,``."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        rel, _, label = line.rpartition(",")
        try:
            out.append((rel.rstrip(","), int(label)))
        except ValueError:
            if n == 1:  # the artist files' "(Path to image),, (Groundtruth class)" header
                continue
            raise StyleclsError(f"{path}:{n}: expected '<Style>/<file>.jpg,<label>', got {line!r}") from None
    return out


def read(root: Path, task: str = "style", seed: int = 0) -> Listing:
    if task not in FILES:
        raise unknown_name("WikiArt task", task, FILES)
    found = Found()
    scan_classes(root, "wikiart", found, STYLES)
    if not found.rows:
        raise DATASET.missing(root, "no style folders with images")
    if found.ignored:
        found.warnings.append(f"{found.ignored} files without an image extension were ignored")
    keys = [relative_key(p, root) for p, _, _ in found.rows]
    train_file, val_file, class_file = (root / name for name in FILES[task])
    n_train, n_val, n_classes = ARTGAN[task]
    missing_listed = 0
    if all(p.is_file() for p in (train_file, val_file, class_file)):
        classes = read_classes(class_file)
        index = {k: i for i, k in enumerate(keys)}
        rows, splits = [], []
        listed = 0
        for file, part in ((train_file, "train"), (val_file, "test")):
            for rel, label in read_split_file(file):
                listed += 1
                i = index.get(rel)
                if i is None:
                    missing_listed += 1
                    continue
                if not 0 <= label < len(classes):
                    raise StyleclsError(f"{file}: label {label} outside 0..{len(classes) - 1} for {rel}")
                path, _, domain = found.rows[i]
                rows.append((path, classes[label], domain))
                splits.append(part)
        train = [j for j, s in enumerate(splits) if s == "train"]
        keys_train = [relative_key(rows[j][0], root) for j in train]
        held = seeded_split(keys_train, [rows[j][1] for j in train], VAL_FROM_TRAIN, seed)
        for j, s in zip(train, held, strict=False):
            splits[j] = s
        unlisted = len(set(keys) - {relative_key(p, root) for p, _, _ in rows})
        if unlisted and task == "style":
            found.warnings.append(f"{unlisted} images are in no ArtGAN style list and are not used")
        source = "official"
    elif task != "style":
        raise StyleclsError(
            f"WikiArt task {task!r} needs the ArtGAN files {', '.join(FILES[task])} in {root} "
            f"(from {DATASET.source}); only the style task can be derived from the folders"
        )
    else:
        classes = list(STYLES)
        rows = found.rows
        splits = list(seeded_split(keys, [c for _, c, _ in rows], SEEDED_FRACTIONS, seed))
        found.warnings.append(f"no ArtGAN style split files in {root}: seeded stratified split (seed={seed})")
        source = "seeded"
        unlisted = 0
    expected = Counts(images=n_train + n_val, classes=n_classes, domains={"wikiart": n_train + n_val})
    return Listing(rows, splits, classes, ["wikiart"], expected, source, found.warnings, missing_listed,
                   {"task": task, "unlisted": unlisted})


def listed_images(lists: Path) -> set[str]:
    """The image paths the ArtGAN style lists under ``lists`` name."""
    return {rel for name in FILES["style"][:2] if (lists / name).is_file() for rel, _ in read_split_file(lists / name)}


DATASET = register(DatasetDef(
    name="wikiart",
    title="WikiArt",
    help="27 styles (also 10 genres, 23 artists), ~81k paintings",
    read=read,
    folder="wikiart",
    layout="wikiart/<Style>/<artist_title>.jpg (27 styles), optional ArtGAN split files beside them "
    "(style_train.csv, style_val.csv, style_class.txt, genre_*, artist_*)",
    source="https://github.com/cs-chan/ArtGAN (WikiArt dataset and its split files)",
    options=("task", "seed"),
    domains=("wikiart",),
    classes=STYLES,
    # ~57k training images per task; fewer epochs go further
    recipe=Recipe(arch="resnet50", img_size=224, epochs=30, batch_size=64, lr=0.025, weight_decay=1e-4,
                  warmup_epochs=2, label_smoothing=0.1),
    # huggan/wikiart: parquet shards under data/, columns image, artist, genre, style (class labels; 27 styles).
    # The style label order is read from the file's own metadata (the ``huggingface`` key that ``datasets``
    # writes); only where a file lacks it is the ArtGAN order (STYLES) assumed.
    downloads=(HubParquet("hub", "huggan/wikiart",
                          about="the Hub's parquet copy of WikiArt (81,444 images) + ArtGAN split files"),),
    split_files=SplitFiles(
        "https://raw.githubusercontent.com/cs-chan/ArtGAN/master/WikiArt%20Dataset",
        tuple((f"{folder}/{name}", name) for folder, task in (("Style", "style"), ("Genre", "genre"),
                                                              ("Artist", "artist")) for name in FILES[task]),
        "ArtGAN split files (cs-chan/ArtGAN, 'WikiArt Dataset')",
        listed=listed_images,
    ),
    parquet=ParquetSchema(image="image", label="style", domain=None),
))  # fmt: skip
