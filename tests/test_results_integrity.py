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


def _run(root: Path, block: str, seed: int, top1: float, test_domain: str = "sketch", trial: int | None = None,
         val_domain: str | None = None, val_acc: float = 0.5, last_test: float = 0.3) -> Path:
    spec = RunSpec(dataset="folder", protocol="lodo", test_domain=test_domain, arch="cifar_resnet20", block=block,
                   img_size=16, epochs=2, lr=0.1 if trial is None else 0.1 + trial, batch_size=4, seed=seed,
                   trial=trial, val_domain=val_domain).resolved()
    run = root / spec.run_name()
    part = "val" if val_domain else "test"  # a run of lodo selection has no test part
    counts = {"train": 8, "val": 4, **({} if val_domain else {"test": 4})}
    data = DataSummary("folder", "/data", classes=CLASSES, protocol="lodo", counts=counts)
    record = RunRecord(name=run.name, spec=spec, data=data, runtime={}, versions={"stylecls": "0.2.0"})
    write_result(run, record.to_dict(), {"top1": top1, "top5": 1.0, "epoch": 2, "part": part})
    folder = RunFolder(run)
    folder.evaluations.write(folder.evaluations.get(part), _tables())  # with the tables the report's figures read
    for epoch in (1, 2):
        folder.append_metrics({"epoch": epoch, "train_loss": 1.0, "train_acc": 0.4, "val_loss": 1.0,
                               "val_acc": val_acc - 0.1 * (2 - epoch), "test_acc": last_test + 0.2 * (2 - epoch)})
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
        assert "srm-sketch-s2" in err and "while the run was running" in err
        assert "se-sketch-s2" in err and "interrupted" in err
        assert "srm-sketch-s3" in err and "not evaluated" in err
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
    assert "3 run folder(s) left out" in html and "srm-sketch-s2" in html and "99.0" not in html


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


def test_a_random_search_is_reported_with_each_selection_method(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Two trials: trial 0 wins on training-domain validation, trial 1 on leave-one-domain-out and the oracle."""
    root = tmp_path / "runs"
    for block, shift in (("se", 0.0), ("srm", 0.05)):
        for seed in (0, 1):
            _run(root, block, seed, 0.40 + shift, trial=0, val_acc=0.9, last_test=0.35 + shift)
            _run(root, block, seed, 0.50 + shift, trial=1, val_acc=0.7, last_test=0.55 + shift)
            for trial, acc in ((0, 0.6), (1, 0.8)):
                for domain in ("photo", "art"):
                    _run(root, block, seed, acc, trial=trial, val_domain=domain)
    tex = tmp_path / "tables.tex"
    assert _cli(monkeypatch, "report", str(root), "--selection", "all", "--latex", str(tex)) == 0
    out = capsys.readouterr().out
    assert "training-domain validation" in out and "SRM − SE: +5.0 points" in out
    from stylecls.report import build

    report = build.analyse([root], tmp_path / "figures", selections=("training-domain", "lodo", "oracle"))
    sections = report.groups[0].sections
    chosen = [s.tables["chosen"][1] for s in sections]
    assert [set(c["chosen trial"]) for c in chosen] == [{0}, {1}, {1}] and set(chosen[0]["of trials"]) == {2}
    assert sections[0].tables["values"][1]["sketch"].tolist() == ["45.0 ± 0.0 (n=2)", "40.0 ± 0.0 (n=2)"]
    assert sections[1].tables["values"][1]["sketch"].tolist() == ["55.0 ± 0.0 (n=2)", "50.0 ± 0.0 (n=2)"]
    assert sections[2].tables["values"][1]["sketch"].tolist() == ["60.0 ± 0.0 (n=2)", "55.0 ± 0.0 (n=2)"]
    trials = report.groups[0].details["trials"][1]
    assert trials["trial"].tolist() == [0, 0, 1, 1] and "spec.lr" in trials
    html = (root / "report.html").read_text()
    assert all(m in html for m in ("training-domain validation", "leave-one-training-domain-out", "test-domain oracle"))
    assert tex.read_text().count(r"\toprule") == 3
