"""Shared fixtures: a per-session cache (the demo set is generated once), the real data path, tiny images and
hand-made run folders (``make_run``, ``fake_run``) for tests that need a run but no training."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from stylecls.atomic import save_checkpoint
from stylecls.models import build_model
from stylecls.record import DataSummary, RunRecord
from stylecls.runfolder import RunFolder
from stylecls.spec import RunSpec

#: ../shared/data relative to the repository root: real subsets for integration tests.
SHARED_DATA = Path(__file__).parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder for the whole session, holding the generated demo dataset."""
    from stylecls.data.datasets import demo

    path = tmp_path_factory.mktemp("stylecls-cache")
    demo.generate(path / "demo")
    return path


@pytest.fixture
def demo_env(demo_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``STYLECLS_CACHE`` at the session cache (demo generated once); returns that folder."""
    monkeypatch.setenv("STYLECLS_CACHE", str(demo_cache))
    return demo_cache


@pytest.fixture
def cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty, private ``STYLECLS_CACHE`` for one test."""
    path = tmp_path / "cache"
    monkeypatch.setenv("STYLECLS_CACHE", str(path))
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data subsets; skips the test where they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


def write_image(path: Path, seed: int = 0, size: tuple[int, int] = (24, 18)) -> Path:
    """A small random RGB image; the format follows the extension (jpg, png, bmp, ...)."""
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def make_images():
    """``make_images(root, ["a/b/c.jpg", ...])`` writes tiny distinct images; returns their paths."""

    def make(root: Path, relpaths: list[str], size: tuple[int, int] = (24, 18)) -> list[Path]:
        return [write_image(root / rel, seed=i, size=size) for i, rel in enumerate(relpaths)]

    return make


@pytest.fixture
def http_folder(tmp_path: Path):
    """``(folder, url)``: a local web server for an empty folder (files written there are served)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    www = tmp_path / "www"
    www.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(www)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


# --- hand-made run folders -------------------------------------------------------------------------------------
# A run is what ``stylecls train`` leaves behind: its record, status, split rows, metrics and checkpoints, written
# through RunFolder as training writes them. The images are tiny generated PNGs; the model is a randomly
# initialised cifar_resnet20, so the tests check the bookkeeping, not the accuracy.

CLASSES = ["dots", "stripes", "waves"]
DOMAINS = ["photo", "sketch"]


def _fake_images(root: Path, per_cell: int = 4, size: int = 20) -> pd.DataFrame:
    """``root/<domain>/<class>/NN.png`` with random pixels; a LODO split holding out ``sketch``."""
    rng = np.random.default_rng(0)
    rows = []
    for domain in DOMAINS:
        for label, cls in enumerate(CLASSES):
            folder = root / domain / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_cell):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:02d}.png")
                part = "test" if domain == "sketch" else ("train" if i < per_cell // 2 else "val")
                split = "train" if i < per_cell // 2 else "val"
                rows.append((f"{domain}/{cls}/{i:02d}.png", label, cls, domain, split, part))
    return pd.DataFrame(rows, columns=["path", "label", "class_name", "domain", "split", "part"])


def _make_run(
    run: Path,
    data_root: Path,
    block: str = "srm",
    seed: int = 0,
    img_size: int = 16,
    per_cell: int = 4,
) -> Path:
    """A finished leave-one-domain-out run (test domain ``sketch``) with random weights."""
    split = _fake_images(data_root, per_cell) if not (data_root / "photo").is_dir() else _split(data_root, per_cell)
    torch.manual_seed(seed)
    model = build_model("cifar_resnet20", block, num_classes=len(CLASSES))
    with torch.no_grad():  # non-trivial SRM weights and BN statistics, so effective weights are not all 0
        for name, p in model.named_parameters():
            if name.endswith("cfc"):
                p.normal_(0, 0.5)
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_var.uniform_(0.5, 2.0)
    run.mkdir(parents=True, exist_ok=True)
    spec = RunSpec(
        dataset="folder", protocol="lodo", test_domain="sketch", arch="cifar_resnet20", block=block, img_size=img_size,
        epochs=1, batch_size=4, optimizer="sgd", lr=0.1, weight_decay=5e-4, schedule="cosine", warmup_epochs=0,
        label_smoothing=0.0, min_crop=0.08, seed=seed,
    )  # fmt: skip
    data = DataSummary(
        dataset="folder", root=str(data_root), classes=CLASSES, protocol="lodo", domains=DOMAINS,
        counts=split["part"].value_counts().to_dict(), pixels={"pre_resize": spec.pre_resize},
    )  # fmt: skip
    config = RunRecord(
        name=run.name, spec=spec, data=data, runtime={"device": "cpu", "world_size": 1},
        versions={"stylecls": "0.1.0", "torch": torch.__version__}, created="2025-01-01T00:00:00",
    ).to_dict()
    folder = RunFolder(run, must_exist=False)
    folder.write_record(RunRecord.from_dict(config))
    folder.set_status("done", epoch=1, best_epoch=1, best_val_acc=0.5)
    folder.write_rows(split.assign(path=[str(data_root / p) for p in split["path"]]), data_root)
    pd.DataFrame([{"epoch": 1, "train_loss": 1.1, "train_acc": 0.3, "val_loss": 1.0, "val_acc": 0.5, "lr": 0.1,
                   "img_per_s": 10.0, "seconds": 1.0, "skipped": 0}]).to_csv(run / "metrics.csv", index=False)
    state = {"model": model.state_dict(), "epoch": 1, "best_val_acc": 0.5, "arch": "cifar_resnet20", "block": block,
             "num_classes": len(CLASSES), "block_options": {}}
    save_checkpoint(state, run / "best.pt")
    save_checkpoint(state, run / "last.pt")
    return run


def _split(root: Path, per_cell: int) -> pd.DataFrame:
    rows = []
    for domain in DOMAINS:
        for label, cls in enumerate(CLASSES):
            for i in range(per_cell):
                part = "test" if domain == "sketch" else ("train" if i < per_cell // 2 else "val")
                split = "train" if i < per_cell // 2 else "val"
                rows.append((f"{domain}/{cls}/{i:02d}.png", label, cls, domain, split, part))
    return pd.DataFrame(rows, columns=["path", "label", "class_name", "domain", "split", "part"])


@dataclass(frozen=True)
class RunBuilder:
    """``make_run(run, data_root, block=..., seed=..., img_size=..., per_cell=...)``: a finished leave-one-domain-out
    run (test domain ``sketch``) with random weights; its images are made under ``data_root`` unless already there."""

    classes: list[str] = field(default_factory=lambda: list(CLASSES))
    domains: list[str] = field(default_factory=lambda: list(DOMAINS))

    def __call__(self, run: Path, data_root: Path, block: str = "srm", seed: int = 0, img_size: int = 16,
                 per_cell: int = 4) -> Path:
        return _make_run(run, data_root, block=block, seed=seed, img_size=img_size, per_cell=per_cell)


@pytest.fixture(scope="session")
def make_run() -> RunBuilder:
    """The fake-run builder (a factory: call it for each run); ``.classes`` and ``.domains`` are what it uses."""
    return RunBuilder()


@pytest.fixture
def fake_run(make_run: RunBuilder, tmp_path: Path) -> Path:
    """One finished srm run, ``tmp_path/runs/fake``, with its images under ``tmp_path/data``."""
    return make_run(tmp_path / "runs" / "fake", tmp_path / "data", block="srm")


@pytest.fixture(scope="session")
def readme_run() -> str:
    """The name of the run the README's snippets use (its quick start's run)."""
    import re

    match = re.search(r"runs/(demo-[\w-]+?-s0)\b", (Path(__file__).parents[1] / "README.md").read_text())
    assert match, "README.md names no quick-start run (runs/demo-...-s0)"
    return match.group(1)
