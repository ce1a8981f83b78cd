"""ONNX / TorchScript export: agreement with PyTorch (none/se/srm, dynamic batch), metadata, refusal, bad input."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from stylecls import cli
from stylecls.errors import StyleclsError
from stylecls.export import TOLERANCE, export_model, export_run, read_metadata

sys.path.insert(0, str(Path(__file__).parent))
from fake_run import CLASSES, make_run  # noqa: E402

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
def test_export_agrees_with_pytorch_at_any_batch(tmp_path: Path, block: str, fmt: str) -> None:
    run = make_run(tmp_path / "run", tmp_path / "data", block=block)
    result = export_run(run, fmt, dynamic_batch=True)
    assert result.path.parent == run / "export" and result.path.is_file()
    assert result.max_abs_diff <= TOLERANCE and result.checked_on == "3 real images"
    assert [p.name for p in result.path.parent.iterdir()] == [result.path.name]  # no temporary file left

    from stylecls import load_run

    model = load_run(run).model()
    x = torch.randn(5, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 + 0.5  # a batch never seen
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(run_exported(result.path, x), expected, rtol=0, atol=TOLERANCE)

    meta = read_metadata(result.path)
    assert meta["classes"] == CLASSES and meta["block"] == block and meta["img_size"] == 16
    assert meta["mean"] == pytest.approx([0.485, 0.456, 0.406])


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_file_that_disagrees_is_not_kept(tmp_path: Path, fmt: str) -> None:
    from stylecls.models import build_model

    model = build_model("cifar_resnet20", "srm", 3).eval()
    out = tmp_path / "m.bin"
    with pytest.raises(StyleclsError, match="differs from PyTorch"):
        export_model(model, out, fmt, torch.randn(2, 3, 16, 16), tolerance=-1.0)
    assert list(tmp_path.iterdir()) == []


def test_fixed_batch_export_without_the_run_data_uses_random_inputs(tmp_path: Path) -> None:
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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = make_run(tmp_path / "run", tmp_path / "data", block="se")
    assert _cli(monkeypatch, "export", run, "--format", "torchscript", "--dynamic-batch") == 0
    out = capsys.readouterr().out
    assert "max abs diff vs PyTorch" in out and "best.torchscript.pt" in out


def test_cli_export_bad_input_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
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
