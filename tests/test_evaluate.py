"""Evaluation: metrics against hand-computed cases, and the eval/ files of a hand-made run."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from stylecls.errors import StyleclsError
from stylecls.evaluate import (
    classification_metrics,
    confusion_table,
    domain_gap,
    evaluate,
    per_class_table,
    plot_confusion,
    select_rows,
)
from stylecls.runfolder import RunFolder

pytestmark = pytest.mark.usefixtures("cache_env")  # nothing may land in the user's cache

# Six images, three classes; predictions 0,1,1,1,2,0 (true 0,0,1,1,2,2).
LABELS = np.array([0, 0, 1, 1, 2, 2])
PROBS = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.3, 0.6, 0.1],
        [0.1, 0.8, 0.1],
        [0.2, 0.5, 0.3],
        [0.1, 0.1, 0.8],
        [0.5, 0.1, 0.4],
    ]
)


def test_classification_metrics_match_a_hand_calculation() -> None:
    m = classification_metrics(LABELS, PROBS)
    assert m["top1"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    # F1 per class: 0 -> P 1/2 R 1/2 = 0.5; 1 -> P 2/3 R 1 = 0.8; 2 -> P 1 R 1/2 = 2/3
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    true_p = [0.7, 0.3, 0.8, 0.5, 0.8, 0.4]
    assert m["loss"] == pytest.approx(-np.mean(np.log(true_p)))
    assert m["count"] == 6
    assert "top5" not in m  # only with more than five classes


def test_top5_with_more_than_five_classes() -> None:
    probs = np.full((2, 7), 0.1)
    probs[0, [0, 1, 2, 3, 4]] = [0.3, 0.25, 0.2, 0.15, 0.12]  # true class 4 is 5th: a top-5 hit
    probs[1, [0, 1, 2, 3, 4]] = [0.3, 0.25, 0.2, 0.15, 0.12]  # true class 6 is tied last: a miss
    probs[1, 6] = 0.01
    m = classification_metrics(np.array([4, 6]), probs)
    assert m["top1"] == 0.0
    assert m["top5"] == pytest.approx(0.5)


def test_per_class_accuracy_is_confusion_diagonal_over_row_sums() -> None:
    pred = PROBS.argmax(1)
    names = ["a", "b", "c", "d"]  # "d" has no images: its accuracy is undefined, not 0
    cm = confusion_table(LABELS, pred, names)
    table = per_class_table(LABELS, pred, names)
    assert cm.to_numpy().sum() == len(LABELS)
    rows = cm.to_numpy().sum(1)
    np.testing.assert_allclose(table["accuracy"][:3], np.diag(cm.to_numpy())[:3] / rows[:3])
    assert math.isnan(table.loc["d", "accuracy"])
    assert table["support"].tolist() == [2, 2, 2, 0]
    assert cm.loc["c", "a"] == 1  # the one "c" predicted as "a"


def test_domain_gap_is_in_domain_val_minus_held_out() -> None:
    preds = pd.DataFrame(
        {
            "part": ["val"] * 4 + ["test"] * 5,
            "domain": ["photo", "photo", "art", "art", "sketch", "sketch", "sketch", "sketch", "sketch"],
            "label": [0, 1, 0, 1, 0, 1, 0, 1, 0],
            "pred": [0, 1, 0, 0, 0, 0, 0, 0, 1],  # val 3/4 right, sketch 2/5
        }
    )
    gap = domain_gap(preds, train_domains={"photo", "art"})
    assert gap["in_domain_val_acc"] == pytest.approx(0.75)
    assert gap["held_out_acc"] == pytest.approx(0.4)
    assert gap["domain_gap"] == pytest.approx(0.75 - 0.4)
    assert gap["held_out_domains"] == ["sketch"]
    assert domain_gap(preds, train_domains={"photo", "art", "sketch"}) == {}  # nothing held out: no gap


def test_select_rows_defaults_and_refusals() -> None:
    rows = pd.DataFrame({"part": ["train", "val", "val"], "domain": ["a", "a", "b"]})
    chosen, part = select_rows(rows)
    assert part == "val" and len(chosen) == 2  # no test part: the validation part
    assert len(select_rows(rows, "val", "b")[0]) == 1
    with pytest.raises(StyleclsError, match="no 'test' part"):
        select_rows(rows, "test")
    with pytest.raises(StyleclsError, match="unknown part 'train'.*choose one of: test, val"):
        select_rows(rows, "train")
    with pytest.raises(StyleclsError, match="domains there: a, b"):
        select_rows(rows, "val", "sketch")


def test_confusion_plot_scales_to_many_classes(tmp_path: Path) -> None:
    names = [f"class_{i:02d}" for i in range(47)]
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 47, 300)
    cm = confusion_table(labels, rng.integers(0, 47, 300), names)
    path = plot_confusion(cm, tmp_path / "confusion.png", "47 classes")
    from PIL import Image

    with Image.open(path) as im:
        assert min(im.size) > 1000  # 47 names on each axis need a large canvas


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory, make_run) -> Path:
    base = tmp_path_factory.mktemp("evalrun")
    run = make_run(base / "run", base / "data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STYLECLS_CACHE", str(base / "cache"))
        evaluate(run, device="cpu", workers=0, batch_size=8)
    return run


def test_evaluate_writes_consistent_files(evaluated: Path) -> None:
    out = evaluated / "eval"
    for name in ("predictions.csv", "metrics.json", "per_class.csv", "confusion.csv", "confusion.png",
                 "per_domain.csv", "per_class_domain.csv", "mistakes.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    preds = pd.read_csv(out / "predictions.csv")
    cm = pd.read_csv(out / "confusion.csv", index_col=0)
    per_class = pd.read_csv(out / "per_class.csv", index_col=0)

    test = preds[preds["part"] == "test"]
    assert metrics["part"] == "test" and metrics["count"] == len(test) == 12  # all of sketch
    assert cm.to_numpy().sum() == metrics["count"]
    classes = RunFolder(evaluated).classes
    assert list(cm.index) == classes and list(cm.columns) == classes
    np.testing.assert_allclose(per_class["accuracy"], np.diag(cm.to_numpy()) / cm.to_numpy().sum(1))
    assert metrics["top1"] == pytest.approx(test["correct"].mean())
    # LODO: the model ran once over val (photo) + test (sketch); gap = val acc - held-out acc
    val = preds[preds["part"] == "val"]
    assert set(val["domain"]) == {"photo"} and len(val) == 6
    assert metrics["in_domain_val_acc"] == pytest.approx(val["correct"].mean())
    assert metrics["held_out_acc"] == pytest.approx(test["correct"].mean())
    assert metrics["domain_gap"] == pytest.approx(val["correct"].mean() - test["correct"].mean())
    per_domain = pd.read_csv(out / "per_domain.csv")
    assert per_domain.set_index("domain").loc["sketch", "held_out"]
    assert not per_domain.set_index("domain").loc["photo", "held_out"]


def test_evaluate_val_part_and_data_root_override(evaluated: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    run = tmp_path / "run"
    shutil.copytree(evaluated, run)
    shutil.copytree(Path(RunFolder(run).record().data.root), moved)
    config = json.loads((run / "config.json").read_text())
    config["data"]["root"] = str(tmp_path / "gone")
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(StyleclsError, match="--data-root"):
        evaluate(run, device="cpu", workers=0)
    result = evaluate(run, part="val", data_root=moved, device="cpu", workers=0, checkpoint="last")
    assert result.metrics["part"] == "val" and result.metrics["count"] == 6
    assert result.metrics["checkpoint"] == "last"


def test_cli_evaluate_errors_are_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from stylecls import cli

    monkeypatch.setattr(sys, "argv", ["stylecls", "evaluate", str(tmp_path / "missing")])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "is not a run folder" in err and "Traceback" not in err


def test_cli_evaluate_prints_the_headline(evaluated: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from stylecls import cli

    monkeypatch.setattr(sys, "argv", ["stylecls", "evaluate", str(evaluated), "--workers", "0", "--device", "cpu"])
    cli.main()
    out = capsys.readouterr().out
    assert "top1" in out and "domain gap" in out


def test_schema_1_run_folders_still_evaluate(evaluated: Path, tmp_path: Path) -> None:
    """A run written by stylecls 0.1 (model/data/train sections, no status.json) evaluates as before."""
    run = tmp_path / "old"
    shutil.copytree(evaluated, run)
    record = RunFolder(run).record()
    old = {
        "name": "old", "status": "finished", "seed": 0,
        "model": {"arch": record.spec.arch, "block": record.spec.block, "num_classes": 3, "block_options": {}},
        "data": {"dataset": "folder", "root": record.data.root, "protocol": "lodo", "test_domain": "sketch",
                 "img_size": record.spec.img_size, "classes": record.data.classes, "domains": record.data.domains},
        "train": {"epochs": 1, "batch_size": 4},
    }  # fmt: skip
    (run / "config.json").write_text(json.dumps(old))
    (run / "status.json").unlink()
    folder = RunFolder(run)
    assert folder.record().schema_version == 1 and folder.status().state == "done"
    result = evaluate(run, device="cpu", workers=0)
    assert result.metrics["count"] == 12 and result.metrics["test_domain"] == "sketch"


def test_a_skip_bad_run_evaluates_skipping_and_counting_unreadable_images(evaluated: Path, tmp_path: Path) -> None:
    """The run's skip policy holds in evaluation: a corrupt and a deleted test image are skipped and counted."""
    run, data = tmp_path / "run", tmp_path / "data"
    shutil.copytree(evaluated, run)
    shutil.copytree(Path(RunFolder(run).record().data.root), data)
    config = json.loads((run / "config.json").read_text())
    config["spec"]["skip_bad"] = True
    config["data"]["root"] = str(data)
    (run / "config.json").write_text(json.dumps(config))
    (data / "sketch" / "dots" / "00.png").write_bytes(b"not a png")
    (data / "sketch" / "waves" / "01.png").unlink()
    result = evaluate(run, device="cpu", workers=0)
    assert result.metrics["skipped"] == 2 and result.metrics["count"] == 10
    assert any(p.endswith("sketch/waves/01.png") for p in result.metrics["skipped_paths"])
    config["spec"]["skip_bad"] = False
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(StyleclsError, match="missing"):
        evaluate(run, device="cpu", workers=0)


def test_cli_evaluate_part_and_domain_and_their_deprecated_aliases(
    evaluated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--part/--domain are the options; the old --split/--test-domain still work for one release, with a warning."""
    from stylecls import cli

    def run(*args: str) -> tuple[int, str, dict]:
        monkeypatch.setattr(sys, "argv", ["stylecls", "evaluate", str(evaluated), *args, "--workers", "0",
                                          "--device", "cpu"])
        try:
            cli.main()
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
        return code, capsys.readouterr().err

    evaluations = RunFolder(evaluated).evaluations
    code, err = run("--part", "val", "--domain", "photo")
    assert code == 0 and "deprecated" not in err and "this one is kept beside it" in err
    val = evaluations.get("val", "best", "photo")  # stored beside the selected evaluation, never over it
    assert val.part == "val" and val.domain == "photo" and val.metrics["count"] == 6
    code, err = run("--split", "test")
    assert code == 0 and "--split is deprecated" in err and "use --part" in err
    assert evaluations.get("test").metrics["count"] == 12
    code, err = run("--part", "test", "--test-domain", "sketch")
    assert code == 0 and "--test-domain is deprecated" in err
    assert evaluations.get("test", "best", "sketch").domain == "sketch"
    code, err = run("--split", "val", "--part", "test")
    assert code == 2 and "disagree" in err and "Traceback" not in err
    code, err = run("--part", "test")
    assert code == 0 and evaluations.selected().part == "test" and evaluations.selected().domain is None
    assert "kept beside it" not in err and "warning" not in err


def test_evaluate_python_keywords_part_and_domain_and_the_deprecated_ones(evaluated: Path) -> None:
    result = evaluate(evaluated, part="val", domain="photo", device="cpu", workers=0)
    assert result.metrics["part"] == "val" and result.metrics["count"] == 6
    with pytest.warns(DeprecationWarning) as warned:
        old = evaluate(evaluated, split="val", test_domain="photo", device="cpu", workers=0)
    assert [str(w.message) for w in warned] == ["evaluate(split=...) is deprecated, use part=...",
                                                "evaluate(test_domain=...) is deprecated, use domain=..."]
    assert {**old.metrics, "created": ""} == {**result.metrics, "created": ""}
    evaluate(evaluated, device="cpu", workers=0)  # leave the default evaluation for the other tests


def test_the_prediction_dataset_reads_a_prepared_cache_to_the_same_pixels(
    tmp_path: Path, cache_env: Path, make_run
) -> None:
    """evaluate's rows come from the prepared cache where it holds them; in-memory images and files mix."""
    from PIL import Image

    from stylecls.data import cache
    from stylecls.data.pixels import Pixels
    from stylecls.evaluate import PredictDataset

    run = make_run(tmp_path / "run", tmp_path / "data")
    rows = RunFolder(run).rows()
    paths = rows["path"].tolist()
    (tmp_path / "data" / "photo" / "dots" / "01.png").write_bytes(b"broken")  # now unreadable, and not in the cache
    source = cache.CacheSource("folder", str(tmp_path / "data"))
    on_the_fly = PredictDataset(paths, Pixels(16))
    assert on_the_fly.cache_hits == 0 and PredictDataset(rows, Pixels(16)).items == paths  # rows: their paths
    cache.prepare("folder", tmp_path / "data", size=16, workers=0, progress=False)
    items = [*paths, Image.open(paths[0])]
    cached = PredictDataset(items, Pixels(16), cache_source=source)
    assert cached.cache_hits == len(paths) - 1
    for i in range(len(paths)):
        a, b = on_the_fly[i], cached[i]
        if a[0] is None:
            assert b[0] is None and a[2] == b[2] and b[2]
        else:
            assert torch.equal(a[0], b[0]) and a[1:] == b[1:] == (i, "")
    assert torch.equal(cached[len(paths)][0], on_the_fly[0][0])  # the PIL image of the first file: same pixels


def test_other_evaluations_never_replace_the_selected_one(evaluated: Path, tmp_path: Path) -> None:
    """val part, last.pt, one domain: each is stored in its own place; the selected evaluation stays as it was."""
    run = tmp_path / "run"
    shutil.copytree(evaluated, run)
    evaluations = RunFolder(run).evaluations
    selected = evaluations.selected()
    files = {p.relative_to(run): p.read_bytes() for p in (run / "eval").iterdir() if p.is_file()}
    made = [
        evaluate(run, part="val", device="cpu", workers=0),
        evaluate(run, checkpoint="last", device="cpu", workers=0),
        evaluate(run, domain="sketch", device="cpu", workers=0),
        evaluate(run, part="val", checkpoint="last", domain="photo", device="cpu", workers=0),
    ]
    assert len({r.out_dir for r in made} | {run / "eval"}) == 5  # five places
    assert evaluations.selected() == selected
    assert {p.relative_to(run): p.read_bytes() for p in (run / "eval").iterdir() if p.is_file()} == files
    got = evaluations.get("val", "last", "photo")
    assert (got.part, got.checkpoint, got.domain, got.metrics["count"]) == ("val", "last", "photo", 6)
    assert not got.is_selected and evaluations.get("test", "last").checkpoint == "last"


def test_cli_evaluate_warns_that_an_unfinished_run_s_evaluation_is_not_used(
    evaluated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stylecls import cli

    run = tmp_path / "run"
    shutil.copytree(evaluated, run)
    RunFolder(run).set_status("interrupted", epoch=1)
    monkeypatch.setattr(sys, "argv", ["stylecls", "evaluate", str(run), "--workers", "0", "--device", "cpu"])
    cli.main()
    err = capsys.readouterr().err
    assert "warning: the run is interrupted (epoch 1): compare, report and sweep will not use" in err
    assert RunFolder(run).evaluations.get().run_state == "interrupted"


def test_evaluate_without_best_pt_says_to_resume_wait_or_retrain(
    make_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stylecls.cli import main

    run = make_run(tmp_path / "run", tmp_path / "data")
    folder = RunFolder(run)
    (run / "best.pt").unlink()

    def evaluate() -> str:
        monkeypatch.setattr(sys, "argv", ["stylecls", "evaluate", str(run), "--device", "cpu"])
        with pytest.raises(SystemExit) as exit_:
            main()
        err = capsys.readouterr().err.strip()
        assert exit_.value.code == 2 and err.count("\n") == 0 and "Traceback" not in err
        return " ".join(err.split())

    folder.set_status("interrupted", epoch=0)
    assert f"stylecls train --resume {run}" in evaluate()
    folder.set_status("running", epoch=1)
    with folder.lock():
        assert "still training" in evaluate()
    (run / "last.pt").unlink()
    folder.set_status("failed", epoch=0)
    assert "train it again" in evaluate()
