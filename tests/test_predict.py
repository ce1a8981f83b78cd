"""Using a trained run: `stylecls predict`, the load_run API, its README snippet, bad input at the CLI.

One tiny demo run is trained and evaluated through the CLI for the whole module (about 20 s); the
other tests use hand-made run folders (tests/fake_run.py).
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

sys.path.insert(0, str(Path(__file__).parent))
from fake_run import CLASSES, make_run  # noqa: E402

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


@pytest.fixture
def fake_run(tmp_path: Path) -> Path:
    return make_run(tmp_path / "runs" / "fake", tmp_path / "data", block="srm")


# --- the API -----------------------------------------------------------------------------------------


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


def test_top_k_is_clamped_with_a_warning_and_zero_refused(fake_run: Path, tmp_path: Path) -> None:
    from stylecls import load_run

    run = load_run(fake_run)
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    with pytest.warns(UserWarning, match="showing all 3"):
        frame = run.predict([image], top_k=10)
    assert sorted(frame.iloc[0][["class_1", "class_2", "class_3"]]) == sorted(CLASSES)
    assert frame.iloc[0][["prob_1", "prob_2", "prob_3"]].sum() == pytest.approx(1, abs=1e-5)
    with pytest.raises(StyleclsError, match="at least 1"):
        run.predict([image], top_k=0)
    with pytest.raises(StyleclsError, match="unknown --tta"):
        run.predict([image], top_k=1, tta="rotate")


def test_readme_api_snippet(demo_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Python API block, run as a doctest against a run named as in the README."""
    text = README.read_text()
    block = re.search(r"## Python API.*?```python\n(.*?)```", text, re.S)
    assert block, "README has no '## Python API' section with a python block"
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "demo-srm").symlink_to(demo_run)
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
    fake_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
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
    expected += [str(data / "sketch" / c / "00.png") for c in CLASSES] + [str(data / "sketch" / "dots" / "01.png")]
    expected += [str(notes)]
    assert frame["path"].tolist() == expected
    assert list(frame.columns) == ["index", "path", "pred_class", "confidence", "class_1", "prob_1", "class_2",
                                   "prob_2", "error"]
    failed = frame[frame["error"] != ""]
    assert [Path(p).name for p in failed["path"]] == ["broken.png", "notes.txt"] and (failed["pred_class"] == "").all()
    assert "dots" in captured.out and "probability" in captured.out


@pytest.mark.parametrize("suffix", [".json", ".parquet"])
def test_cli_writes_json_and_parquet(
    fake_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    out = tmp_path / f"pred{suffix}"
    assert run_cli(monkeypatch, "predict", fake_run, tmp_path / "data" / "sketch", "--out", out,
                   "--workers", "0", "--tta", "flip") == 0
    frame = pd.read_json(out) if suffix == ".json" else pd.read_parquet(out)
    assert len(frame) == 12 and set(frame["pred_class"]) <= set(CLASSES)


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
