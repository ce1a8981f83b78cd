"""compare and report use only a finished run's selected evaluation: stale, partial and unreadable runs are named."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_run import CLASSES, write_result

from stylecls.atomic import write_json
from stylecls.record import DataSummary, EvaluationRecord, RunRecord
from stylecls.runfolder import EvaluationTables, RunFolder
from stylecls.spec import RunSpec


def _tables() -> EvaluationTables:
    """The tables of an evaluation, tiny."""
    per_class = pd.DataFrame({"accuracy": [0.5, 0.6, 0.7]}, index=pd.Index(CLASSES, name="class_name"))
    confusion = pd.DataFrame(np.eye(3, dtype=int) + 1, index=pd.Index(CLASSES, name="true"), columns=CLASSES)
    return EvaluationTables(pd.DataFrame({"path": ["a.png"]}), per_class, confusion)


def _run(root: Path, block: str, seed: int, top1: float, test_domain: str = "sketch") -> Path:
    run = root / f"{block}-s{seed}-{test_domain}"
    spec = RunSpec(dataset="folder", protocol="lodo", test_domain=test_domain, arch="cifar_resnet20", block=block,
                   img_size=16, epochs=2, lr=0.1, batch_size=4, seed=seed).resolved()
    data = DataSummary("folder", "/data", classes=CLASSES, protocol="lodo")
    record = RunRecord(name=run.name, spec=spec, data=data, runtime={}, versions={"stylecls": "0.2.0"})
    write_result(run, record.to_dict(), {"top1": top1, "top5": 1.0, "epoch": 2, "part": "test"})
    folder = RunFolder(run)
    folder.evaluations.write(folder.evaluations.get(), _tables())  # with the tables the report's figures read
    return run


def _cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    from stylecls.cli import main

    monkeypatch.setattr(sys, "argv", ["stylecls", *args])
    try:
        main()
    except SystemExit as e:
        return int(e.code or 0)
    return 0


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Four good runs (se and srm, two seeds), then three that must not be used, one of each kind."""
    root = tmp_path / "runs"
    for seed in (0, 1):
        _run(root, "se", seed, 0.40 + 0.01 * seed)
        _run(root, "srm", seed, 0.45 + 0.01 * seed)
    stale = RunFolder(_run(root, "srm", 2, 0.99))  # evaluated at epoch 1 while training, then training finished
    write_json(stale.eval_dir / "metrics.json", EvaluationRecord(
        part="test", checkpoint="best", epoch=1, run_state="running", metrics={"top1": 0.99}).to_dict())
    interrupted = RunFolder(_run(root, "se", 2, 0.98))  # evaluated, then stopped at epoch 1 of 2
    interrupted.set_status("interrupted", epoch=1, best_epoch=1, reason="SIGTERM")
    other_part = RunFolder(_run(root, "srm", 3, 0.97))  # only a val-part evaluation of last.pt
    (other_part.eval_dir / "metrics.json").unlink()
    other_part.evaluations.write(EvaluationRecord(part="val", checkpoint="last", epoch=2, run_state="done",
                                                  metrics={"top1": 0.97}), _tables())
    return root


def test_unusable_runs_are_refused_all_named_with_the_reason(runs: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("compare", "report"):
        assert _cli(monkeypatch, command, str(runs)) == 2
        err = capsys.readouterr().err
        assert "3 run(s) have no usable evaluation" in err and "--skip-unevaluated" in err
        assert "srm-s2-sketch" in err and "while the run was running" in err
        assert "se-s2-sketch" in err and "interrupted" in err
        assert "srm-s3-sketch" in err and "not evaluated" in err
    assert not (runs / "report.html").exists()


def test_skip_unevaluated_lists_them_and_leaves_them_out(runs: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(monkeypatch, "compare", str(runs), "--skip-unevaluated", "--format", "csv") == 0
    out, err = capsys.readouterr()
    assert err.count("left out") == 3 and "0.99" not in out and "0.98" not in out
    assert "45.5 ± 0.7" in (runs / "comparison.md").read_text() and "Left out (3 run folders)" in (
        runs / "comparison.md").read_text()
    assert _cli(monkeypatch, "report", str(runs), "--skip-unevaluated") == 0
    out, err = capsys.readouterr()
    assert "SRM − SE: +5.0 points" in out and err.count("left out") == 3
    html = (runs / "report.html").read_text()
    assert "3 run folder(s) left out" in html and "srm-s2-sketch" in html and "99.0" not in html


def test_an_unreadable_run_folder_is_listed_and_the_others_compared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "runs"
    for seed in (0, 1):
        _run(root, "se", seed, 0.40)
        _run(root, "srm", seed, 0.45)
    (root / "broken").mkdir()
    (root / "broken" / "config.json").write_text('{"name": "broken", "spec": ')  # cut off
    for command in ("compare", "report"):
        assert _cli(monkeypatch, command, str(root)) == 0
        err = capsys.readouterr().err
        assert "left out" in err and "broken" in err and "repair or remove" in err
    assert "broken" in (root / "comparison.md").read_text() and "broken" in (root / "report.html").read_text()


def test_a_damaged_evaluation_is_refused_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "runs"
    _run(root, "se", 0, 0.40)
    bad = _run(root, "srm", 0, 0.45)
    (bad / "eval" / "metrics.json").write_text('{"top1": "abc"}')
    assert _cli(monkeypatch, "compare", str(root)) == 2
    assert "metrics.json is damaged" in capsys.readouterr().err
