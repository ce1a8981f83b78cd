"""ONNX / TorchScript export: agreement with PyTorch (none/se/srm, dynamic batch), metadata, refusal, bad input."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from stylecls import cli, load_run
from stylecls.errors import StyleclsError
from stylecls.export import TOLERANCE, export_model, export_run, read_metadata

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))
FORMATS = [pytest.param("onnx", marks=pytest.mark.skipif(not HAS_ONNX, reason="needs stylecls[export]")),
           "torchscript"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_exported(path: Path, x: torch.Tensor) -> np.ndarray:
    if path.suffix == ".onnx":
        import onnxruntime as ort

        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": x.numpy()})[0]
    with pytest.warns(FutureWarning):  # torch.jit.load announces its deprecation
        loaded = torch.jit.load(str(path))
    return loaded.eval()(x).detach().numpy()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("block", ["none", "se", "srm"])
def test_export_agrees_with_pytorch_at_any_batch(make_run, tmp_path: Path, block: str, fmt: str) -> None:
    run = make_run(tmp_path / "run", tmp_path / "data", block=block)
    result = export_run(run, fmt, dynamic_batch=True)
    assert result.path.parent == run / "export" and result.path.is_file()
    assert result.max_abs_diff <= TOLERANCE and result.checked_on == "3 real images"
    assert [p.name for p in result.path.parent.iterdir()] == [result.path.name]  # no temporary file left

    model = load_run(run).model()
    x = torch.randn(5, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 + 0.5  # a batch never seen
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(run_exported(result.path, x), expected, rtol=0, atol=TOLERANCE)

    meta = read_metadata(result.path)
    assert meta["classes"] == make_run.classes and meta["block"] == block and meta["img_size"] == 16
    assert meta["mean"] == pytest.approx([0.485, 0.456, 0.406])


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_file_that_disagrees_is_not_kept(tmp_path: Path, fmt: str) -> None:
    from stylecls.models import build_model

    model = build_model("cifar_resnet20", "srm", 3).eval()
    out = tmp_path / "m.bin"
    with pytest.raises(StyleclsError, match="differs from PyTorch"):
        export_model(model, out, fmt, torch.randn(2, 3, 16, 16), tolerance=-1.0)
    assert list(tmp_path.iterdir()) == []


def test_fixed_batch_export_without_the_run_data_uses_random_inputs(make_run, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", tmp_path / "data", block="srm")
    for png in (tmp_path / "data").rglob("*.png"):
        png.unlink()
    out = tmp_path / "model.pt"
    result = export_run(run, "torchscript", out=out, img_size=24, checkpoint="last")
    assert result.path == out and result.checked_on == "4 random inputs" and result.batch_sizes == (1,)
    assert read_metadata(out)["img_size"] == 24 and read_metadata(out)["checkpoint"] == "last"


def _cli(monkeypatch: pytest.MonkeyPatch, *args: object) -> int:
    monkeypatch.setattr(sys, "argv", ["stylecls", *map(str, args)])
    try:
        cli.main()
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def test_cli_export_prints_the_difference(
    make_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_run(tmp_path / "run", tmp_path / "data", block="se")
    assert _cli(monkeypatch, "export", run, "--format", "torchscript", "--dynamic-batch") == 0
    out = capsys.readouterr().out
    assert "max abs diff vs PyTorch" in out and "best.torchscript.pt" in out


def test_cli_export_bad_input_exits_2(
    make_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_run(tmp_path / "run", tmp_path / "data", block="none")
    assert _cli(monkeypatch, "export", run, "--format", "tflite") == 2
    assert "unknown export format 'tflite'" in capsys.readouterr().err
    (run / "best.pt").unlink()
    assert _cli(monkeypatch, "export", run, "--format", "torchscript") == 2
    assert "checkpoint not found" in capsys.readouterr().err

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    assert _cli(monkeypatch, "export", run, "--format", "onnx") == 2
    err = capsys.readouterr().err
    assert 'pip install "stylecls[export]"' in err and "Traceback" not in err


def test_export_refuses_to_overwrite_any_file_of_a_run_folder(
    make_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_run(tmp_path / "run", tmp_path / "data", block="srm")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    (tmp_path / "link.pt").symlink_to(run / "last.pt")
    for out in (run / "best.pt", run / "config.json", run / "export" / ".." / "split.csv", tmp_path / "link.pt"):
        assert _cli(monkeypatch, "export", run, "--format", "torchscript", "--out", out) == 2
        err = capsys.readouterr().err
        assert "would overwrite" in err and "of the run folder" in err and "Traceback" not in err
    assert _cli(monkeypatch, "export", run, "--format", "torchscript", "--out", run) == 2
    assert "is a folder" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before  # nothing touched
    with pytest.raises(StyleclsError, match="would overwrite best.pt"):
        export_model(load_run(run).model(), run / "best.pt", "torchscript", torch.randn(1, 3, 16, 16))
    # a new file in the run folder, and an earlier export under RUN/export/, may be written
    assert _cli(monkeypatch, "export", run, "--format", "torchscript", "--out", run / "model.torchscript.pt") == 0
    for _ in range(2):
        assert _cli(monkeypatch, "export", run, "--format", "torchscript") == 0
    assert (run / "export" / "best.torchscript.pt").is_file()


def _readme_export_block() -> str:
    text = (Path(__file__).parents[1] / "README.md").read_text()
    block = re.search(r"### Export\n.*?```python\n(.*?)```", text, re.S)
    assert block, "README's Export section has no python block"
    return block.group(1)


@pytest.mark.skipif(not HAS_ONNX, reason="needs stylecls[export]")
@pytest.mark.parametrize(("pre_resize", "side"), [("1.125x", 18), ("original", None)])
def test_the_metadata_alone_reproduces_stylecls_predict(
    make_run, readme_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pre_resize: str, side: int | None
) -> None:
    """The README's recipe (torchvision + onnxruntime, nothing of stylecls) gives predict's probabilities."""
    import json

    from PIL import Image

    from stylecls.data.pixels import Pixels

    run = make_run(tmp_path / "runs" / readme_run, tmp_path / "data", block="srm")
    config = json.loads((run / "config.json").read_text())
    config["data"]["pixels"] = Pixels(16, pre_resize).to_dict()
    (run / "config.json").write_text(json.dumps(config))
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)).save(tmp_path / "photo.png")  # not square
    export_run(run, "onnx")
    expected = load_run(run).predict([tmp_path / "photo.png"], top_k=len(make_run.classes)).iloc[0]
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(_readme_export_block(), "README.md", "exec"), scope)  # noqa: S102 - the README's own snippet
    probs = torch.softmax(torch.as_tensor(scope["logits"]), dim=1)[0]
    assert scope["classes"] == make_run.classes
    classes = make_run.classes
    for j in range(1, len(classes) + 1):
        assert float(probs[classes.index(expected[f"class_{j}"])]) == pytest.approx(expected[f"prob_{j}"], abs=1e-5)
    pre = read_metadata(run / "export" / "best.onnx")["preprocessing"]
    assert (pre["pre_resize"], pre["pre_resize_side"], pre["resize_shorter_side"], pre["center_crop"]) == (
        pre_resize, side, 18, 16)
    assert pre["interpolation"] == "bilinear" and pre["antialias"] is True
    assert pre["std"] == pytest.approx([0.229, 0.224, 0.225]) and "centre-crop 16x16" in pre["steps"]


def test_preprocess_applies_the_metadata_as_predict_does(make_run, tmp_path: Path) -> None:
    from torchvision.io import decode_image

    from stylecls.data import normalize
    from stylecls.data.pixels import Pixels
    from stylecls.evaluate import predict_loader
    from stylecls.export import preprocess

    run = make_run(tmp_path / "run", tmp_path / "data", block="none")
    result = export_run(run, "torchscript", img_size=24)
    meta = read_metadata(result.path)
    pre = meta["preprocessing"]
    assert meta["img_size"] == 24 and (pre["pre_resize_side"], pre["resize_shorter_side"], pre["center_crop"]) == (
        27, 27, 24)
    path = tmp_path / "data" / "sketch" / "waves" / "01.png"
    x = preprocess(decode_image(str(path)), meta)
    batch = next(iter(predict_loader([path], Pixels(24))))
    torch.testing.assert_close(x, normalize(batch.images), rtol=0, atol=1e-6)
