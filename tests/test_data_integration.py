"""The readers on the real subsets in ../shared/data (skipped where that folder is absent)."""

from __future__ import annotations

import pytest
import torch

from stylecls.data import ImageDataset, catalog, check, collate, protocol_parts

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning"),
]


def test_pacs_subset_with_official_lists(shared_data, cache_env):
    data = catalog("pacs", shared_data)
    frame, info = data.frame, data.info
    assert len(frame) == 1400 and info.split_source == "official"
    assert info.details["splits_dir"].endswith("pacs_splits")
    assert info.missing_listed == 9991 - 1400 and not info.complete
    assert frame.loc[frame["domain"] == "sketch", "path"].str.endswith(".png").all()
    lodo = protocol_parts(data, test_domain="photo")
    assert lodo.counts["test"] == 350
    ds = ImageDataset(lodo.part("train").iloc[::97], 64, train=True)
    batch = collate([ds[i] for i in range(len(ds))])
    assert batch.images.shape[1:] == (3, 64, 64) and batch.images.dtype == torch.uint8
    report = check("pacs", shared_data, progress=False)
    assert not report.ok and report.info.found.domains["sketch"] == 350


def test_dtd_subset_is_incomplete_and_seeded(shared_data):
    data = catalog("dtd", shared_data)
    frame, info = data.frame, data.info
    assert len(frame) == 240 and info.found.classes == 10 and len(info.classes) == 47
    assert info.split_source == "seeded" and not info.complete
    assert frame["split"].value_counts().to_dict() == {"train": 80, "val": 80, "test": 80}
    ds = ImageDataset(frame.iloc[:2], 96, train=False)  # original-resolution JPEGs
    assert ds[0][0].shape == (3, 96, 96)


@pytest.mark.parametrize(("task", "images", "classes"), [("style", 400, 27), ("genre", 289, 10), ("artist", 29, 23)])
def test_wikiart_subset_with_artgan_files(shared_data, task, images, classes):
    data = catalog("wikiart", shared_data, task=task)
    info = data.info
    assert len(data) == images and len(info.classes) == classes
    assert info.split_source == "official" and info.missing_listed > 0 and not info.complete
    assert set(data.frame["split"]) == {"train", "val", "test"}
