"""The run folder contract: atomic checkpoint writes, safe loading, clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from stylecls.atomic import load_checkpoint, save_checkpoint, write_json
from stylecls.errors import StyleclsError
from stylecls.runfolder import RunFolder


def test_failed_write_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full, say")

    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint({"epoch": 2, "bad": Unpicklable()}, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_checkpoints_load_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "foreign.pt"
    torch.save({"model": Path("an arbitrary pickled object")}, path)  # not allowed by weights_only
    with pytest.raises(StyleclsError, match="cannot read checkpoint"):
        load_checkpoint(path)
    (tmp_path / "list.pt").write_bytes(b"")
    with pytest.raises(StyleclsError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "list.pt")
    with pytest.raises(StyleclsError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_run_folder_errors_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(StyleclsError, match="does not exist"):
        RunFolder(tmp_path / "nope")
    with pytest.raises(StyleclsError, match="has no config.json"):
        RunFolder(tmp_path)
    write_json(tmp_path / "config.json", {"name": "x"})
    save_checkpoint({"epoch": 0}, tmp_path / "best.pt")
    with pytest.raises(StyleclsError, match="is a file; pass the run folder"):
        RunFolder(tmp_path / "best.pt")
    run = RunFolder(tmp_path)
    assert run.config() == {"name": "x"} and run.load_checkpoint("best") == {"epoch": 0}
    with pytest.raises(StyleclsError, match="unknown checkpoint 'final'"):
        run.checkpoint_path("final")


def test_split_rows_keep_symlinked_images_under_the_root(tmp_path: Path) -> None:
    """A symlinked image is stored relative to the data root, so a moved root (``--data-root``) still finds it."""
    import pandas as pd

    elsewhere = tmp_path / "elsewhere.png"
    elsewhere.write_bytes(b"png")
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    (root / "a" / "linked.png").symlink_to(elsewhere)
    (root / "a" / "plain.png").write_bytes(b"png")
    frame = pd.DataFrame({"path": [str(root / "a" / "linked.png"), str(root / "a" / "plain.png")], "label": [0, 0],
                          "class_name": ["a", "a"], "domain": ["", ""], "split": ["train"] * 2, "part": ["train"] * 2})
    run = RunFolder(tmp_path / "run", must_exist=False)
    run.path.mkdir()
    run.write_rows(frame, root)
    assert pd.read_csv(run.split_path)["path"].tolist() == ["a/linked.png", "a/plain.png"]
