"""Using a trained run: `stylecls predict`, the load_run API, its README snippet, bad input at the CLI.

One tiny demo run is trained and evaluated through the CLI for the whole module (about 20 s); the
other tests use hand-made run folders (the ``fake_run`` fixture of tests/conftest.py).
"""

from __future__ import annotations

import doctest
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from stylecls import cli
from stylecls.errors import StyleclsError

README = Path(__file__).parents[1] / "README.md"


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """``stylecls ARGS`` in this process; its exit code."""
    monkeypatch.setattr(sys, "argv", ["stylecls", *map(str, args)])
    try:
        cli.main()
    except SystemExit as e:
        return int(e.code or 0)
    return 0


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory, demo_cache: Path) -> Iterator[Path]:
    """A demo run trained for one epoch on 64 images, then `stylecls evaluate`d."""
    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STYLECLS_CACHE", str(demo_cache))
        torch.set_num_threads(1)
        assert run_cli(mp, "train", "--block", "srm", "--epochs", "1", "--limit-train", "64", "--limit-val", "32",
                       "--img-size", "16", "--workers", "0", "--out", runs, "--name", "demo", "--no-progress") == 0
        assert run_cli(mp, "evaluate", runs / "demo", "--workers", "0", "--device", "cpu") == 0
        yield runs / "demo"


# --- the API -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_predict_equals_evaluate_on_the_test_images(demo_run: Path) -> None:
    from stylecls import load_run

    evaluated = pd.read_csv(demo_run / "eval" / "predictions.csv")
    run = load_run(demo_run)
    frame = run.predict(evaluated["path"].tolist(), top_k=3, batch_size=50)
    assert frame["path"].tolist() == evaluated["path"].tolist()
    assert frame["pred_class"].tolist() == evaluated["pred_class"].tolist()
    np.testing.assert_allclose(frame["confidence"], evaluated["confidence"], rtol=0, atol=1e-6)
    assert (frame["prob_1"] >= frame["prob_2"]).all() and (frame["prob_2"] >= frame["prob_3"]).all()
    assert (frame["error"] == "").all()


@pytest.mark.slow
def test_model_and_transform_reproduce_predict_and_flip_tta(demo_run: Path) -> None:
    from PIL import Image

    from stylecls import load_run

    run = load_run(demo_run)
    path = pd.read_csv(demo_run / "eval" / "predictions.csv")["path"][0]
    image = Image.open(path)
    x = run.transform()(image)
    assert x.shape == (3, run.img_size, run.img_size) and x.dtype == torch.float32
    with torch.no_grad():
        probs = torch.softmax(run.model()(x[None]), dim=1)[0]
        flipped = torch.softmax(run.model()(x.flip(-1)[None]), dim=1)[0]
    frame = run.predict([image, path], top_k=len(run.classes))
    assert frame["path"].tolist() == [None, path]
    row = frame.iloc[0]
    for j in range(1, len(run.classes) + 1):
        assert row[f"prob_{j}"] == pytest.approx(float(probs[run.classes.index(row[f"class_{j}"])]), abs=1e-6)
    tta = run.predict([image], top_k=1, tta="flip").iloc[0]
    mean = (probs + flipped) / 2
    assert tta["pred_class"] == run.classes[int(mean.argmax())]
    assert tta["confidence"] == pytest.approx(float(mean.max()), abs=1e-6)


def test_top_k_is_clamped_with_a_warning_and_zero_refused(make_run, fake_run: Path, tmp_path: Path) -> None:
    from stylecls import load_run

    run = load_run(fake_run)
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    with pytest.warns(UserWarning, match="showing all 3"):
        frame = run.predict([image], top_k=10)
    assert sorted(frame.iloc[0][["class_1", "class_2", "class_3"]]) == sorted(make_run.classes)
    assert frame.iloc[0][["prob_1", "prob_2", "prob_3"]].sum() == pytest.approx(1, abs=1e-5)
    with pytest.raises(StyleclsError, match="at least 1"):
        run.predict([image], top_k=0)
    with pytest.raises(StyleclsError, match="unknown --tta"):
        run.predict([image], top_k=1, tta="rotate")


@pytest.mark.slow
def test_readme_api_snippet(readme_run: str, demo_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Python API block, run as a doctest against a run named as in the README."""
    text = README.read_text()
    block = re.search(r"## Python API.*?```python\n(.*?)```", text, re.S)
    assert block, "README has no '## Python API' section with a python block"
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / readme_run).symlink_to(demo_run)
    shutil.copy(pd.read_csv(demo_run / "eval" / "predictions.csv")["path"][0], tmp_path / "photo.png")
    monkeypatch.chdir(tmp_path)
    test = doctest.DocTestParser().get_doctest(block.group(1), {}, "README", str(README), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and test.examples


def test_import_stylecls_stays_cheap() -> None:
    import subprocess

    code = "import sys, stylecls; print('torch' in sys.modules)"  # load_run is imported on first use
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"]


# --- the command ------------------------------------------------------------------------------------


def test_cli_mixed_inputs_bad_files_listed_and_skipped(
    make_run, fake_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    (data / "photo" / "dots" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    out = tmp_path / "out" / "pred.csv"
    code = run_cli(monkeypatch, "predict", fake_run, data / "photo", f"{data}/sketch/*/00.png",
                   data / "sketch" / "dots" / "01.png", notes, "--top-k", "2", "--out", out, "--workers", "0")
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err
    assert "broken.png" in captured.err and "notes.txt" in captured.err
    assert "2 of 18 files could not be read and were skipped" in captured.err
    frame = pd.read_csv(out, keep_default_na=False)  # one row per input file, the unreadable ones with the reason
    expected = [str(p) for p in sorted((data / "photo").rglob("*.png"))]
    expected += [str(data / "sketch" / c / "00.png") for c in make_run.classes]
    expected += [str(data / "sketch" / "dots" / "01.png")]
    expected += [str(notes)]
    assert frame["path"].tolist() == expected
    assert list(frame.columns) == ["index", "path", "pred_class", "confidence", "class_1", "prob_1", "class_2",
                                   "prob_2", "error"]
    failed = frame[frame["error"] != ""]
    assert [Path(p).name for p in failed["path"]] == ["broken.png", "notes.txt"] and (failed["pred_class"] == "").all()
    assert "dots" in captured.out and "probability" in captured.out


@pytest.mark.parametrize("suffix", [".json", ".parquet"])
def test_cli_writes_json_and_parquet(
    make_run, fake_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    out = tmp_path / f"pred{suffix}"
    assert run_cli(monkeypatch, "predict", fake_run, tmp_path / "data" / "sketch", "--out", out,
                   "--workers", "0", "--tta", "flip") == 0
    frame = pd.read_json(out) if suffix == ".json" else pd.read_parquet(out)
    assert len(frame) == 12 and set(frame["pred_class"]) <= set(make_run.classes)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--top-k", "0"], "--top-k must be at least 1"),
        (["--out", "x.xlsx"], "unknown file type '.xlsx'"),
        (["--checkpoint", "last"], "has no last.pt checkpoint"),
        (["--tta", "rotate"], "unknown --tta"),
    ],
)
def test_cli_bad_input_exits_2(
    fake_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    args: list[str], message: str,
) -> None:
    (fake_run / "last.pt").unlink()
    assert run_cli(monkeypatch, "predict", fake_run, tmp_path / "data", *args, "--workers", "0") == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_paths_matching_nothing_and_not_a_run_exit_2(
    fake_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    for paths, message in [
        ([tmp_path / "empty"], "matches no image files"),
        ([f"{tmp_path}/data/*.jpg"], "matches no image files"),
        ([tmp_path / "missing.png"], "does not exist"),
    ]:
        assert run_cli(monkeypatch, "predict", fake_run, *paths) == 2
        assert message in capsys.readouterr().err
    assert run_cli(monkeypatch, "predict", tmp_path / "data", tmp_path / "data") == 2
    assert "is not a run folder" in capsys.readouterr().err


def test_cli_top_k_above_the_class_count_is_clamped_with_a_note(
    fake_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pred.csv"
    assert run_cli(monkeypatch, "predict", fake_run, tmp_path / "data" / "sketch", "--top-k", "9", "--out", out,
                   "--workers", "0") == 0
    assert "--top-k 9 > the run's 3 classes" in capsys.readouterr().err
    assert "class_3" in pd.read_csv(out).columns and "class_4" not in pd.read_csv(out).columns


# --- hardening: formats, huge images, diverged models ----------------------------------------------------


def _probs(frame: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """The full probability vector of each row (class order), from a frame with top_k = len(classes)."""
    out = np.zeros((len(frame), len(classes)))
    for j in range(1, len(classes) + 1):
        for r, (cls, p) in enumerate(zip(frame[f"class_{j}"], frame[f"prob_{j}"], strict=True)):
            out[r, classes.index(cls)] = p
    return out


def test_pil_images_of_any_mode_predict_as_their_files(fake_run: Path, tmp_path: Path) -> None:
    """RGBA, LA, CMYK, a palette with transparency and 16-bit grey: the PIL image and its file agree."""
    from PIL import Image

    from stylecls import load_run

    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    grey16 = Image.fromarray(rng.integers(0, 65536, (30, 40), dtype=np.uint16))
    images = {
        "rgba.png": Image.fromarray(rng.integers(0, 256, (30, 40, 4), dtype=np.uint8), "RGBA"),
        "la.png": Image.fromarray(rng.integers(0, 256, (30, 40, 2), dtype=np.uint8), "LA"),
        "cmyk.jpg": rgb.convert("CMYK"),
        "palette.png": palette,
        "grey16.png": grey16,
    }
    paths = []
    for name, image in images.items():
        image.save(tmp_path / name, **({"transparency": 3} if name == "palette.png" else {}))
        paths.append(str(tmp_path / name))
    opened = [Image.open(p) for p in paths]
    assert [im.mode for im in opened] == ["RGBA", "LA", "CMYK", "P", "I;16"]
    assert "transparency" in opened[3].info
    run = load_run(fake_run)
    frame = run.predict(paths + opened, top_k=3)
    assert (frame["error"] == "").all()
    probs = _probs(frame, run.classes)
    np.testing.assert_allclose(probs[: len(paths)], probs[len(paths) :], rtol=0, atol=1e-6)


def test_an_animated_gif_predicts_its_first_frame(fake_run: Path, tmp_path: Path) -> None:
    from PIL import Image

    from stylecls import load_run

    rng = np.random.default_rng(2)
    frames = [Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)) for _ in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(tmp_path / "anim.gif") as gif:
        assert gif.n_frames == 3
        gif.convert("RGB").save(tmp_path / "first.png")  # what PIL shows of it: frame 0
        gif.seek(1)
        gif.convert("RGB").save(tmp_path / "second.png")
    run = load_run(fake_run)
    frame = run.predict([tmp_path / "anim.gif", tmp_path / "first.png", tmp_path / "second.png"], top_k=3)
    assert (frame["error"] == "").all()
    probs = _probs(frame, run.classes)
    np.testing.assert_allclose(probs[0], probs[1], rtol=0, atol=1e-6)
    assert np.abs(probs[0] - probs[2]).max() > 1e-6  # not the second frame (the frames are different images)


def _png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR claiming ``width`` x ``height`` RGB pixels, with no pixel data at all."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + chunk + end


def test_images_above_the_pixel_limit_are_refused_with_a_reason(
    fake_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    from stylecls import load_run

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(20000, 20000))  # 400 M pixels claimed in 57 bytes
    small = tmp_path / "data" / "sketch" / "dots" / "00.png"  # 20 x 20
    run = load_run(fake_run)
    frame = run.predict([bomb, small], top_k=1)
    assert "too large to decode safely" in frame.loc[0, "error"] and frame.loc[1, "error"] == ""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # 400 px: between the limit and twice it
    frame = run.predict([small], top_k=1)
    assert frame.loc[0, "error"].startswith("the image is too large to decode safely (20x20 = 400 pixels")
    assert "Pillow's MAX_IMAGE_PIXELS" in frame.loc[0, "error"]


def _diverge(run: Path) -> None:
    """Write NaN into best.pt's classifier, as a training run at --lr 1e9 leaves it."""
    state = torch.load(run / "best.pt", weights_only=True)
    key = next(k for k in state["model"] if k.endswith("weight") and state["model"][k].ndim == 2)
    state["model"][key] = torch.full_like(state["model"][key], float("nan"))
    torch.save(state, run / "best.pt")


def test_nan_outputs_are_one_clear_error_not_unreadable_images(
    fake_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stylecls import load_run
    from stylecls.evaluate import NonFiniteOutputs, evaluate

    _diverge(fake_run)
    with pytest.raises(NonFiniteOutputs, match=r"best\.pt: the model's outputs are not finite \(NaN or inf\)"):
        load_run(fake_run).predict([tmp_path / "data" / "sketch" / "dots" / "00.png"], top_k=1)
    with pytest.raises(NonFiniteOutputs, match="the checkpoint is unusable"):
        evaluate(fake_run, device="cpu", workers=0)
    for command in (["predict", fake_run, tmp_path / "data" / "sketch"], ["evaluate", fake_run]):
        assert run_cli(monkeypatch, *command, "--workers", "0", "--device", "cpu") == 2
        err = capsys.readouterr().err
        assert "not finite" in err and "unreadable" not in err and "Traceback" not in err


def test_cli_out_never_overwrites_a_file_of_a_run_folder(
    fake_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    split = (fake_run / "split.csv").read_bytes()
    assert run_cli(monkeypatch, "predict", fake_run, tmp_path / "data" / "sketch", "--out", fake_run / "split.csv",
                   "--workers", "0") == 2
    err = capsys.readouterr().err
    assert "would overwrite split.csv of the run folder" in err and "Traceback" not in err
    assert (fake_run / "split.csv").read_bytes() == split
    assert run_cli(monkeypatch, "predict", fake_run, tmp_path / "data" / "sketch", "--out", fake_run / "mine.csv",
                   "--workers", "0") == 0  # a new file is fine
