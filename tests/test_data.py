"""Catalogs, protocols, loader and cache on tiny generated trees of every layout."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import torch

from stylecls.data import (
    DATASETS,
    Batch,
    ImageDataset,
    catalog,
    check,
    collate,
    domains_of,
    make_loader,
    normalize,
    protocol_parts,
)
from stylecls.data.datasets import demo, dtd, pacs, wikiart
from stylecls.errors import StyleclsError

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning")


# --- trees ----------------------------------------------------------------------------------


@pytest.fixture
def dtd_root(tmp_path, make_images):
    classes = ["banded", "blotchy", "zigzagged"]
    rels = [f"{c}/{c}_{i:04d}.jpg" for c in classes for i in range(6)]
    make_images(tmp_path / "dtd" / "images", rels)
    labels = tmp_path / "dtd" / "labels"
    labels.mkdir()
    for part, take in (("train", (0, 1)), ("val", (2, 3)), ("test", (4, 5))):
        lines = [f"{c}/{c}_{i:04d}.jpg" for c in classes for i in take]
        if part == "test":
            lines.append("banded/banded_0099.jpg")  # named by the list, absent from the copy
        (labels / f"{part}1.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


@pytest.fixture
def pacs_root(tmp_path, make_images):
    rels = []
    for domain in pacs.DOMAINS:
        ext = "png" if domain == "sketch" else "jpg"
        rels += [f"{domain}/{c}/img_{i}.{ext}" for c in ("dog", "horse") for i in range(5)]
    make_images(tmp_path / "pacs", rels)
    splits = tmp_path / "pacs" / "splits"
    splits.mkdir()
    for domain in pacs.DOMAINS:
        entries = {
            "train": [(c, i) for c in ("dog", "horse") for i in range(4)],
            "crossval": [(c, 4) for c in ("dog", "horse")],
        }
        entries["test"] = entries["train"] + entries["crossval"]
        for name, items in entries.items():
            # the lists say .jpg for every domain, as some shared copies do for the PNG sketches
            lines = [f"{domain}/{c}/img_{i}.jpg {pacs.CLASSES.index(c) + 1}" for c, i in items]
            if name == "train" and domain == "photo":
                lines.append("photo/dog/not_here.jpg 1")
            (splits / f"{domain}_{name}_kfold.txt").write_text("\n".join(lines) + "\n")
    extra = tmp_path / "pacs" / "cartoon" / "dog" / "extra.jpg"
    extra.write_bytes((tmp_path / "pacs/cartoon/dog/img_0.jpg").read_bytes())
    return tmp_path


@pytest.fixture
def office_root(tmp_path, make_images):
    domains = ("Art", "Clipart", "Product", "Real World")
    rels = [f"{d}/{c}/{i:05d}.jpg" for d in domains for c in ("Bed", "Fan") for i in range(5)]
    make_images(tmp_path / "office_home", rels)
    return tmp_path


@pytest.fixture
def wikiart_root(tmp_path, make_images):
    root = tmp_path / "wikiart"
    rels = [f"{s}/artist-{s.lower()}_{i}.jpg" for s in ("Cubism", "Impressionism", "Rococo") for i in range(10)]
    make_images(root, rels)
    styles = wikiart.STYLES
    (root / "style_class.txt").write_text("".join(f"{i} {s}\n" for i, s in enumerate(styles)))
    train = [r for r in rels if int(r.split("_")[-1][:-4]) < 7]
    val = [r for r in rels if r not in train]
    (root / "style_train.csv").write_text("".join(f"{r},{styles.index(r.split('/')[0])}\n" for r in train)
                                          + "Baroque/missing_painting.jpg,4\n")
    (root / "style_val.csv").write_text("".join(f"{r},{styles.index(r.split('/')[0])}\n" for r in val))
    (root / "genre_class").write_text("0 landscape\n1 portrait\n")
    (root / "genre_train.csv").write_text("".join(f"{r},{i % 2}\n" for i, r in enumerate(train)))
    (root / "genre_val.csv").write_text("".join(f"{r},{i % 2}\n" for i, r in enumerate(val)))
    (root / "artist_class").write_text("0 Claude_Monet\n1 Rembrandt\n")
    header = "(Path to image),, (Groundtruth class) \n\n"
    (root / "artist_train").write_text(header + "".join(f"{r},,{i % 2}\n" for i, r in enumerate(train[:12])))
    (root / "artist_val").write_text(header + "".join(f"{r},,{i % 2}\n" for i, r in enumerate(val[:4])))
    return tmp_path


# --- catalogs -----------------------------------------------------------------------------


def test_catalog_columns_and_info_are_json_ready(dtd_root):
    import json

    data = catalog("dtd", dtd_root)
    frame = data.frame
    assert list(frame.columns) == ["path", "label", "class_name", "domain", "split"]
    assert all(Path(p).is_absolute() for p in frame["path"])
    assert data.info.folder == dtd_root / "dtd" and data.info.data_root == dtd_root  # one meaning of "root"
    json.dumps(data.info.to_dict())
    assert set(DATASETS) == {"demo", "dtd", "pacs", "office_home", "wikiart", "folder"}


def test_dtd_official_lists(dtd_root):
    data = catalog("dtd", dtd_root, split=1)
    frame, info = data.frame, data.info
    assert info.split_source == "official"
    assert frame["split"].value_counts().to_dict() == {"train": 6, "val": 6, "test": 6}
    assert list(info.classes) == list(dtd.CLASSES) and len(info.classes) == 47
    assert frame.loc[frame["class_name"] == "zigzagged", "label"].unique().tolist() == [46]
    assert info.missing_listed == 1 and not info.complete
    assert "zigzagged" not in info.missing_classes and "dotted" in info.missing_classes
    assert any("incomplete copy of dtd" in w for w in info.warnings)


def test_dtd_without_lists_is_seeded_and_says_so(dtd_root):
    data = catalog("dtd", dtd_root, split=3)
    frame, info = data.frame, data.info
    assert info.split_source == "seeded"
    assert any("no official split lists" in w for w in info.warnings)
    assert frame["split"].value_counts().to_dict() == {"train": 6, "val": 6, "test": 6}
    again = catalog("dtd", dtd_root, split=3).frame
    assert again["split"].tolist() == frame["split"].tolist()
    other = catalog("dtd", dtd_root, split=3, seed=1).frame
    assert other["split"].tolist() != frame["split"].tolist()
    with pytest.raises(StyleclsError, match="1..10"):
        catalog("dtd", dtd_root, split=11)


def test_pacs_official_lists_png_sketches_and_reports(pacs_root):
    data = catalog("pacs", pacs_root)
    frame, info = data.frame, data.info
    assert info.split_source == "official"
    assert info.details["matched_by_stem"] == 8 + 2 + 10  # the sketch entries of the train, crossval and test lists
    assert info.missing_listed == 1
    assert info.details["unlisted"] == 1  # cartoon/dog/extra.jpg is in no list
    assert "extra.jpg" not in " ".join(frame["path"])
    assert len(frame) == 40
    assert (frame.groupby("domain")["split"].value_counts().unstack()[["train", "val"]].values == [[8, 2]] * 4).all()
    assert frame.loc[frame["class_name"] == "horse", "label"].unique().tolist() == [4]
    sketches = frame[frame["domain"] == "sketch"]["path"]
    assert sketches.str.endswith(".png").all()


def test_pacs_lists_from_splits_dir_or_seeded(pacs_root, tmp_path):
    moved = tmp_path / "elsewhere"
    (pacs_root / "pacs" / "splits").rename(moved)
    seeded = catalog("pacs", pacs_root)
    assert seeded.info.split_source == "seeded"
    assert seeded.frame["split"].value_counts().to_dict() == {"train": 33, "val": 8}
    official = catalog("pacs", pacs_root, splits_dir=moved)
    assert official.info.split_source == "official"
    with pytest.raises(StyleclsError, match="does not exist"):
        catalog("pacs", pacs_root, splits_dir=tmp_path / "nope")


def test_office_home_real_world_and_missing_domain(office_root):
    data = catalog("office_home", office_root)
    frame = data.frame
    assert "Real World" in set(frame["domain"])
    assert data.info.split_source == "seeded"
    counts = frame.groupby(["domain", "class_name"])["split"].value_counts().unstack()
    assert (counts["train"] == 4).all() and (counts["val"] == 1).all()
    os.rename(office_root / "office_home" / "Real World", office_root / "office_home" / "Real_World")
    assert catalog("office_home", office_root).frame["domain"].value_counts()["Real World"] == 10
    os.rename(office_root / "office_home" / "Clipart", office_root / "Clipart_moved")
    info = catalog("office_home", office_root).info
    assert info.missing_domains == ("Clipart",) and not info.complete


def test_wikiart_artgan_files(wikiart_root):
    data = catalog("wikiart", wikiart_root)
    style, info = data.frame, data.info
    assert info.split_source == "official" and info.missing_listed == 1
    assert (style["split"] == "test").sum() == 9  # ArtGAN val = our test
    assert set(style["split"]) == {"train", "val", "test"}
    assert info.classes == wikiart.STYLES
    assert style.loc[style["class_name"] == "Rococo", "label"].unique().tolist() == [wikiart.STYLES.index("Rococo")]
    genre = catalog("wikiart", wikiart_root, task="genre")
    assert genre.info.classes == ("landscape", "portrait") and len(genre) == 30
    artist = catalog("wikiart", wikiart_root, task="artist")
    assert len(artist) == 16 and artist.info.classes == ("Claude_Monet", "Rembrandt")
    with pytest.raises(StyleclsError, match="unknown WikiArt task"):
        catalog("wikiart", wikiart_root, task="colour")


def test_wikiart_without_split_files(wikiart_root):
    for f in (wikiart_root / "wikiart").glob("*_*"):
        if f.is_file():
            f.unlink()
    data = catalog("wikiart", wikiart_root)
    assert data.info.split_source == "seeded"
    assert len(data) == 30
    with pytest.raises(StyleclsError, match="needs the ArtGAN files"):
        catalog("wikiart", wikiart_root, task="genre")


def test_folder_flat_domains_and_pil_only_formats(tmp_path, make_images):
    make_images(tmp_path / "flat", [f"{c}/{i}.{'bmp' if c == 'b' else 'jpg'}" for c in "ab" for i in range(10)])
    (tmp_path / "flat" / "a" / "notes.txt").write_text("not an image")
    data = catalog("folder", tmp_path / "flat")
    flat = data.frame
    assert data.info.domains == ("folder",) and data.info.expected is None
    assert flat["split"].value_counts().to_dict() == {"train": 14, "test": 4, "val": 2}
    assert any("ignored" in w for w in data.info.warnings)
    bmp = ImageDataset(flat[flat["path"].str.endswith(".bmp")], 16, train=False)
    assert bmp[0][0].shape == (3, 16, 16)
    make_images(tmp_path / "dom", [f"{d}/{c}/{i}.png" for d in ("x", "y") for c in "ab" for i in range(5)])
    dom = catalog("folder", tmp_path / "dom")
    assert dom.info.domains == ("x", "y") and set(dom.frame["split"]) == {"train", "val"}
    make_images(tmp_path / "mixed", ["a/1.jpg", "d/b/1.jpg"])
    with pytest.raises(StyleclsError, match="mixes"):
        catalog("folder", tmp_path / "mixed")


def test_missing_dataset_unknown_name_and_options(tmp_path):
    with pytest.raises(StyleclsError) as e:
        catalog("pacs", tmp_path)
    message = str(e.value)
    assert str(tmp_path / "pacs") in message and "art_painting" in message and "http" in message
    with pytest.raises(StyleclsError, match="unknown dataset"):
        catalog("imagenet", tmp_path)
    with pytest.raises(StyleclsError, match="no option 'task'"):
        catalog("pacs", tmp_path, task="style")


def test_default_root_from_environment(monkeypatch, pacs_root):
    monkeypatch.setenv("STYLECLS_DATA", str(pacs_root))
    assert len(catalog("pacs")) == 40
    assert domains_of("pacs") == list(pacs.DOMAINS)


def test_missing_class_folder_is_reported_and_check_fails(pacs_root):
    shutil.rmtree(pacs_root / "pacs" / "photo" / "horse")
    data = catalog("pacs", pacs_root)
    frame = data.frame
    assert not data.info.complete and len(frame[frame["domain"] == "photo"]) == 5
    report = check("pacs", pacs_root, progress=False)
    assert not report.ok
    assert any("split-list lines" in line for line in report.lines)


# --- demo -----------------------------------------------------------------------------------


def test_demo_is_complete_and_deterministic(demo_env, tmp_path):
    data = catalog("demo")
    frame, info = data.frame, data.info
    assert info.complete and len(frame) == 2400 and info.domains == demo.DOMAINS
    assert frame["split"].value_counts().to_dict() == {"train": 1920, "val": 480}
    demo.generate(tmp_path / "again")

    def digest(root: Path) -> str:
        h = hashlib.sha1()
        for p in sorted(root.rglob("*.png")):
            h.update(p.read_bytes())
        return h.hexdigest()

    assert digest(tmp_path / "again") == digest(demo_env / "demo")


# --- protocols ------------------------------------------------------------------------------


def test_protocols(pacs_root):
    data = catalog("pacs", pacs_root)
    frame = data.frame
    parts = protocol_parts(data, test_domain="sketch")
    lodo = parts.frame
    assert parts.protocol == "lodo" and parts.to_dict()["protocol"] == "lodo"
    assert set(lodo.loc[lodo["part"] == "test", "domain"]) == {"sketch"}
    assert (lodo["part"] == "test").sum() == (frame["domain"] == "sketch").sum() == parts.counts["test"]
    assert "sketch" not in set(lodo.loc[lodo["part"] != "test", "domain"])
    multi = protocol_parts(data)
    assert multi.protocol == "multi-domain"
    assert multi.frame["path"].is_unique
    assert (multi.frame["part"] == "test").sum() == (frame["split"] == "val").sum()
    assert set(multi.frame["part"]) == {"train", "val", "test"}
    with pytest.raises(StyleclsError, match="art_painting, cartoon, photo, sketch"):
        protocol_parts(data, test_domain="painting")
    with pytest.raises(StyleclsError, match="multi-domain"):
        protocol_parts(data, "single")
    assert "part" not in data.frame.columns  # the input is untouched


def test_single_protocol_and_lodo_on_single_domain(dtd_root):
    data = catalog("dtd", dtd_root)
    single = protocol_parts(data)
    assert single.protocol == "single" and (single.frame["part"] == single.frame["split"]).all()
    with pytest.raises(StyleclsError, match="one domain"):
        protocol_parts(data, test_domain="dtd")


# --- loader ---------------------------------------------------------------------------------


def test_dataset_items_and_normalize(demo_env):
    frame = catalog("demo").frame
    train = ImageDataset(frame.iloc[:8], 48, train=True)
    image, label, index = train[3]
    assert image.dtype == torch.uint8 and image.shape == (3, 48, 48) and index == 3
    assert label == frame["label"].iloc[3]
    batch = collate([train[i] for i in range(4)])
    x = normalize(batch.images)
    assert x.dtype == torch.float32 and x.shape == (4, 3, 48, 48)
    assert torch.allclose(normalize(torch.full((1, 3, 1, 1), 255, dtype=torch.uint8)).flatten(),
                          torch.tensor([(1 - m) / s for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
                                                                    strict=True)]))


def test_loader_is_deterministic_per_seed_and_epoch(demo_env):
    frame = catalog("demo").frame.iloc[::40]
    ds = ImageDataset(frame, 32, train=True)

    def epoch(workers: int, seed: int = 0, e: int = 0) -> list[Batch]:
        return list(make_loader(ds, 16, shuffle=True, workers=workers, seed=seed, epoch=e))

    a, b = epoch(0), epoch(2)
    assert len(a) == len(b)
    assert all(torch.equal(x.indices, y.indices) and torch.equal(x.images, y.images) for x, y in zip(a, b, strict=True))
    c = epoch(0, e=1)
    assert not torch.equal(a[0].indices, c[0].indices)
    assert sum(len(x.labels) for x in a) == len(frame)


def test_truncated_jpeg_is_a_clear_error_or_skipped(tmp_path, make_images):
    paths = make_images(tmp_path / "data", [f"{c}/{i}.jpg" for c in "ab" for i in range(4)], size=(64, 48))
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: len(data) // 2])
    frame = catalog("folder", tmp_path / "data").frame
    row = frame.index[frame["path"] == str(paths[1])][0]
    with pytest.raises(StyleclsError, match=f"cannot decode {paths[1]}.*--skip-bad"):
        ImageDataset(frame, 16, train=True)[row]
    with pytest.raises(StyleclsError) as e:
        list(make_loader(ImageDataset(frame, 16, train=True), 4, shuffle=False, workers=1))
    assert str(e.value).startswith("cannot decode") and "Traceback" not in str(e.value)
    skipping = ImageDataset(frame, 16, train=True, skip_bad=True)
    assert skipping[row] is None
    batches = list(make_loader(skipping, 4, shuffle=False, workers=0))
    assert sum(b.skipped for b in batches) == 1 and sum(len(b.labels) for b in batches) == len(frame) - 1
    assert collate([None, None]).images.shape[0] == 0
    report = check("folder", tmp_path / "data", deep=True, workers=0, progress=False)
    assert not report.ok and report.bad and str(paths[1]) in report.bad[0]


def test_channels_last_random_resized_crop_matches_torchvision():
    from torchvision.transforms import v2

    from stylecls.data.transforms import RandomResizedCrop

    image = torch.randint(0, 256, (40, 52, 3), dtype=torch.uint8).permute(2, 0, 1)  # a cache row: HWC
    ours, reference = RandomResizedCrop(24, antialias=True), v2.RandomResizedCrop(24, antialias=True)
    for seed in range(20):
        torch.manual_seed(seed)
        a = ours(image)
        torch.manual_seed(seed)
        assert torch.equal(a, reference(image))
