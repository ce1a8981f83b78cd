"""The pixel pipeline: one decode-and-pre-resize function, and a prepared cache that is only a memo of it."""

from __future__ import annotations

import ast
import os
import sys
import warnings
from pathlib import Path

import pytest
import torch

from stylecls.data import (
    CacheSource,
    ImageDataset,
    Pixels,
    catalog,
    decode,
    make_loader,
    prepare,
    protocol_parts,
)
from stylecls.data import cache as cache_module
from stylecls.data.pixels import difference
from stylecls.errors import StyleclsError

REPO = Path(__file__).parents[1]


def test_pixels_rule_sizes_and_record():
    assert (Pixels(64).side, Pixels(64).eval_side) == (72, 72)
    assert (Pixels(128).side, Pixels(224).side, Pixels(24).side) == (144, 252, 27)
    original = Pixels(64, "original")
    assert original.side is None and original.eval_side == 72
    assert Pixels(64, "1.25x").side == 80
    for bad in ("0.5x", "abc", "1.125", "5x"):
        with pytest.raises(StyleclsError, match="not a rule"):
            Pixels(64, bad)
    record = Pixels(64).to_dict()
    assert Pixels.from_dict(record) == Pixels(64)
    assert record["pre_resize"] == "1.125x" and record["side"] == 72 and record["interpolation"] == "bilinear"
    with pytest.raises(StyleclsError, match="interpolation: nearest vs bilinear"):
        Pixels.from_dict({**record, "interpolation": "nearest"})
    assert difference(record, Pixels(64, "original").to_dict()).startswith("pre_resize: 1.125x vs original")
    assert difference(record, Pixels(64).to_dict()) == ""
    # the key names the stored pixels: the same for any size/rule giving the same shorter side
    assert Pixels(64).key() == Pixels(72, "1x").key() != Pixels(128).key() != Pixels(64, "original").key()
    assert Pixels(64).describe("pacs-x").endswith("72 px (shorter side, pre-resize 1.125x), from cache pacs-x")
    assert Pixels(64, "original").describe() == "decoded at full resolution (pre-resize original), on the fly"


def _tree(root, make_images):
    """Non-square JPEG, PNG and BMP (PIL fallback) images in two classes."""
    rel = [f"{c}/{i}.{ext}" for c in "ab" for i, ext in enumerate(["jpg", "png", "jpg", "bmp"])]
    make_images(root, rel, size=(50, 37))
    data = catalog("folder", root)
    return data.frame, CacheSource.of_catalog(data)


@pytest.mark.parametrize("rule", ["1.125x", "original"])
def test_cache_and_on_the_fly_give_identical_tensors(tmp_path, make_images, cache_env, rule):
    frame, source = _tree(tmp_path / "data", make_images)
    pixels = Pixels(24, rule)
    done = prepare("folder", tmp_path / "data", 24, pre_resize=rule, workers=1, progress=False)  # decoded in a worker
    assert done.images == len(frame) and done.key.startswith("folder-")
    for train in (False, True):
        cached = ImageDataset(frame, 24, train=train, pixels=pixels, cache_source=source)
        direct = ImageDataset(frame, 24, train=train, pixels=pixels, use_cache=False, cache_source=source)
        assert (cached.cache_key, cached.cache_hits, cached.cache_note) == (done.key, len(frame), None)
        assert direct.cache_key is None and direct.cache_hits == 0
        assert cached.describe() == pixels.describe(done.key) and direct.describe().endswith(", on the fly")
        for epoch in (0, 1):
            cached.set_epoch(epoch, seed=3)
            direct.set_epoch(epoch, seed=3)
            for i in range(len(frame)):
                assert torch.equal(cached.load(i), direct.load(i))
                a, b = cached[i][0], direct[i][0]
                assert a.shape == (3, 24, 24) and torch.equal(a, b), (train, epoch, i)
        for a, b in zip(make_loader(cached, 3, shuffle=True, workers=0, seed=1, epoch=2),
                        make_loader(direct, 3, shuffle=True, workers=0, seed=1, epoch=2), strict=True):
            assert torch.equal(a.images, b.images) and torch.equal(a.indices, b.indices)


def test_a_cache_of_other_pixels_is_not_used(tmp_path, make_images, cache_env, monkeypatch):
    frame, source = _tree(tmp_path / "data", make_images)
    assert ImageDataset(frame, 24, train=False, cache_source=source).cache_note is None  # nothing prepared yet
    done = prepare("folder", tmp_path / "data", 24, workers=0, progress=False)
    for other in (Pixels(32), Pixels(24, "original"), Pixels(24, "1.25x")):
        ds = ImageDataset(frame, other.img_size, train=True, pixels=other, cache_source=source)
        assert ds.cache_key is None and ds.cache_hits == 0, other
        assert "27 px (shorter side, pre-resize 1.125x)" in ds.cache_note and "decoding on the fly" in ds.cache_note
        assert f"--size {other.img_size} --pre-resize {other.pre_resize}" in ds.cache_note
    same_pixels = ImageDataset(frame, 27, train=True, pixels=Pixels(27, "1x"), cache_source=source)  # 27 px: same memo
    assert same_pixels.cache_key == done.key
    monkeypatch.setattr(cache_module, "decoders", lambda: {"torchvision": "0.0", "pillow": "0.0"})
    stale = ImageDataset(frame, 24, train=False, cache_source=source)
    assert stale.cache_key is None and "another version" in stale.cache_note


def test_decoding_silences_torchvision_locally_only(tmp_path, make_images):
    path = make_images(tmp_path, ["x.png"])[0]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        decode(str(path))
    assert not [w for w in seen if issubclass(w.category, DeprecationWarning)]
    for module in (REPO / "stylecls").rglob("*.py"):  # no process-wide filter installed on import
        body = ast.parse(module.read_text()).body
        calls = [n for n in body if isinstance(n, ast.Expr) and "warnings" in ast.unparse(n)]
        assert not calls, f"{module} changes the warning filters of every program that imports it"


@pytest.mark.slow
def test_training_and_evaluation_are_identical_with_and_without_the_cache(
    tmp_path, make_images, cache_env, monkeypatch
):
    """The issue-14 promise end to end: same command, prepared cache or not -> same metrics and predictions."""
    import pandas as pd

    from stylecls.cli import main

    rel = [f"{c}/{i}.{'png' if i % 3 else 'jpg'}" for c in "abc" for i in range(12)]
    make_images(tmp_path / "data", rel, size=(45, 31))  # non-square: the pre-resize rule matters
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def cli(*args: object) -> None:
        monkeypatch.setattr(sys, "argv", ["stylecls", *map(str, args)])
        main()

    try:
        common = ["--dataset", "folder", "--data-root", tmp_path / "data", "--arch", "cifar_resnet20", "--img-size",
                  16, "--epochs", 2, "--batch-size", 8, "--warmup-epochs", 0, "--workers", 0, "--no-progress",
                  "--out", tmp_path / "runs"]
        cli("train", *common, "--name", "fly")
        cli("data", "prepare", "-d", "folder", "--data-root", tmp_path / "data", "--size", 16, "--workers", 0)
        cli("train", *common, "--name", "cached")
        for name in ("fly", "cached"):
            cli("evaluate", tmp_path / "runs" / name, "--workers", 0)
    finally:
        torch.set_num_threads(torch_threads)
    runs = tmp_path / "runs"
    metrics = [pd.read_csv(runs / n / "metrics.csv").drop(columns=["img_per_s", "seconds"]) for n in ("fly", "cached")]
    pd.testing.assert_frame_equal(*metrics)
    predictions = [pd.read_csv(runs / n / "eval" / "predictions.csv") for n in ("fly", "cached")]
    pd.testing.assert_frame_equal(*predictions)


def test_prepared_cache_is_used_and_invalidated(tmp_path, make_images, cache_env):
    paths = make_images(tmp_path / "data", [f"{c}/{i}.jpg" for c in "ab" for i in range(5)], size=(50, 40))
    data = catalog("folder", tmp_path / "data")
    frame, source = data.frame, CacheSource.of_catalog(data)
    assert ImageDataset(frame, 24, train=False, cache_source=source).cache_hits == 0
    done = prepare("folder", tmp_path / "data", 24, workers=0, progress=False)
    assert done.images == 10 and not done.up_to_date and done.pixels.side == 27
    cached = ImageDataset(frame, 24, train=False, cache_source=source)
    assert ImageDataset(frame, 24, train=False).cache_hits == 0  # no source named: no cache
    direct = ImageDataset(frame, 24, train=False, cache_source=source, use_cache=False)
    assert cached.cache_hits == 10
    for i in range(len(frame)):  # eval from the cache == eval from the file
        assert torch.equal(cached[i][0], direct[i][0])
    assert ImageDataset(frame, 32, train=False, cache_source=source).cache_hits == 0  # another size has no cache
    assert prepare("folder", tmp_path / "data", 24, workers=0, progress=False).up_to_date
    make_images(tmp_path / "other", ["x.jpg"], size=(30, 30))
    os.replace(tmp_path / "other" / "x.jpg", paths[0])  # the source changes
    assert ImageDataset(frame, 24, train=False, cache_source=source).cache_hits == 9
    assert not prepare("folder", tmp_path / "data", 24, workers=0, progress=False).up_to_date
    assert ImageDataset(frame, 24, train=False, cache_source=source).cache_hits == 10
    train = ImageDataset(frame, 24, train=True, cache_source=source)
    assert train[0][0].shape == (3, 24, 24)


def test_cache_is_found_whatever_the_spelling_of_the_root(tmp_path, make_images, cache_env, monkeypatch):
    make_images(tmp_path / "data", [f"{c}/{i}.jpg" for c in "ab" for i in range(3)])
    prepare("folder", tmp_path / "data", 16, workers=0, progress=False)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    data = catalog("folder", "../data")
    assert data.info.folder == data.info.data_root == tmp_path / "data"
    assert ImageDataset(data.frame, 16, train=False, cache_source=CacheSource.of_catalog(data)).cache_hits == 6
    assert CacheSource.of("folder", "../data") == CacheSource.of_catalog(data)


def test_a_run_records_its_data_root_and_finds_the_cache_of_the_dataset_folder(tmp_path, make_images, cache_env):
    """A run records the data root; the cache is keyed on the dataset's folder under it (one meaning each)."""
    domains = ("art_painting", "cartoon", "photo", "sketch")
    make_images(tmp_path / "pacs", [f"{d}/{c}/{i}.jpg" for d in domains for c in ("dog", "horse") for i in (1, 2)])
    data = catalog("pacs", tmp_path)
    assert data.info.data_root == tmp_path and data.info.folder == tmp_path / "pacs"
    assert CacheSource.of("pacs", tmp_path) == CacheSource.of_catalog(data)
    prepare("pacs", tmp_path, 16, workers=0, progress=False)
    parts = protocol_parts(data)
    val = parts.part("val")
    assert ImageDataset(val, 16, train=False, cache_source=CacheSource.of("pacs", tmp_path)).cache_hits == len(val)
    assert (val["part"] == "val").all()
