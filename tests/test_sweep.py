"""Sweeps: grid expansion and naming, status, launchers (local subprocesses and submitit's local
executor), kill + re-run resumes to the metrics of an uninterrupted run, thread budgets, bad input.

Every run is a tiny demo run (16 px, 64 training images, 2-3 epochs); the file takes ~1-2 minutes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from stylecls.atomic import write_json
from stylecls.cli import app
from stylecls.errors import StyleclsError
from stylecls.record import DONE, DataSummary, EvaluationRecord, RunRecord
from stylecls.runfolder import RunFolder
from stylecls.spec import RunSpec, RuntimeOptions
from stylecls.sweep import GridAxes, SweepPlan, cpu_budget, expand_grid, status_frame
from stylecls.train import run_spec

TINY = ["--img-size", "16", "--limit-train", "64", "--limit-val", "32", "--batch-size", "32", "--warmup-epochs", "0"]
TINY_SPEC = dict(img_size=16, limit_train=64, limit_val=32, batch_size=32, warmup_epochs=0)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


# --- the grid -------------------------------------------------------------------------------------


def test_grid_is_the_product_of_repeated_options_and_names_follow_the_spec() -> None:
    base = RunSpec(epochs=2, **TINY_SPEC)
    specs = expand_grid(base, GridAxes(block=["none", "se", "srm"], seed=[0, 1]))
    assert [(s.block, s.seed) for s in specs] == [(b, s) for b in ("none", "se", "srm") for s in (0, 1)]
    names = [s.run_name() for s in specs]
    assert len(set(names)) == 6 and all(n.startswith("demo-cifar_resnet20-") for n in names)
    # equal specs -> the same folder; any changed value -> another
    again = expand_grid(RunSpec(epochs=2, **TINY_SPEC), GridAxes(block=["none", "se", "srm"], seed=[0, 1]))
    assert [s.run_name() for s in again] == names
    changed = expand_grid(replace(base, lr=0.05), GridAxes(block=["none", "se", "srm"], seed=[0, 1]))
    assert not {s.run_name() for s in changed} & set(names)
    # lodo without a test domain crosses every domain; option sets are one axis
    lodo = expand_grid(replace(base, protocol="lodo"), GridAxes(block=["srm"]))
    assert [s.test_domain for s in lodo] == ["photo", "poster", "sketch", "watercolor"]
    sets = expand_grid(base, GridAxes(block=["se"], block_options=[{"reduction": 4}, {"reduction": 8}]))
    assert [dict(s.block_options) for s in sets] == [{"reduction": 4}, {"reduction": 8}]
    with pytest.raises(StyleclsError, match="twice"):
        expand_grid(base, GridAxes(block=["srm", "srm"]))


def test_cpu_budget_never_oversubscribes() -> None:
    assert cpu_budget(2, cores=2) == (1, 0)  # this machine: one thread each, no loader workers
    assert cpu_budget(1, cores=2) == (2, 0)
    assert cpu_budget(3, cores=2) == (1, 0)
    assert cpu_budget(2, cores=16) == (4, 4)  # 8 cores a run: 4 threads + 4 loader workers


# --- status ---------------------------------------------------------------------------------------


def _record(folder: RunFolder, spec: RunSpec) -> None:
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.write_record(RunRecord(name=folder.path.name, spec=spec, data=DataSummary("demo", ".", ["a", "b"])))


def test_status_of_done_incomplete_running_and_not_started(tmp_path: Path) -> None:
    specs = expand_grid(RunSpec(epochs=2, **TINY_SPEC), GridAxes(block=["none", "se", "srm", "ge"]))
    plan = SweepPlan(tmp_path, specs, RuntimeOptions(out=str(tmp_path)))
    plan.write()
    done, incomplete, running = (RunFolder(plan.run_dir(s), must_exist=False) for s in specs[:3])
    for folder, spec in zip((done, incomplete, running), specs, strict=False):
        _record(folder, spec)
    done.set_status(DONE, epoch=2, best_epoch=2, best_val_acc=0.5)
    evaluation = EvaluationRecord(part="test", checkpoint="best", epoch=2, run_state=DONE, metrics={"top1": 0.25})
    write_json(done.eval_dir / "metrics.json", evaluation.to_dict())
    incomplete.set_status("interrupted", epoch=1, best_val_acc=0.4)
    running.set_status("running", epoch=1)
    with running.lock():
        frame = status_frame(tmp_path).set_index("run")
    names = [s.run_name() for s in specs]
    assert list(frame["status"]) == ["done", "interrupted", "running", "not started"]
    assert frame.loc[names[0], "epoch"] == 2 and frame.loc[names[0], "test_top1"] == 0.25
    assert frame.loc[names[1], "best_val"] == 0.4
    assert [s.run_name() for s in plan.pending()] == names[1:]
    result = invoke("status", str(tmp_path))
    assert result.exit_code == 0 and "1 done" in result.output and "not started" in result.output
    broken = tmp_path / "broken"  # an unreadable run beside them: its empty epochs must not turn 2/2 into 2/2.0
    broken.mkdir()
    (broken / "config.json").write_text("garbage")
    result = invoke("status", str(tmp_path))
    assert result.exit_code == 0 and "2/2 " in result.output and "2/2.0" not in result.output


def test_status_of_one_run_folder_and_its_help_speaks_the_record_states(tmp_path: Path) -> None:
    from stylecls.record import STATES

    spec = expand_grid(RunSpec(epochs=2, **TINY_SPEC), GridAxes(block=["se"]))[0]
    folder = RunFolder(tmp_path / spec.run_name(), must_exist=False)
    _record(folder, spec)
    folder.set_status("interrupted", epoch=1, best_val_acc=0.4)
    result = invoke("status", str(folder.path))
    assert result.exit_code == 0 and "1 interrupted" in result.output and "holds no runs" not in result.output
    helped = " ".join(invoke("status", "--help").output.split())
    assert " / ".join(STATES) in helped and "incomplete" not in helped


# --- the local launcher: kill one run, re-run, same metrics --------------------------------------


def _sweep_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "stylecls", "sweep", "--out", str(out), "--block", "none", "--block", "se",
            "--seed", "0", "--seed", "1", "--epochs", "2", *TINY, "--jobs", "2", *extra]


@pytest.mark.slow
def test_sweep_kill_one_run_then_rerun_skips_done_and_resumes(demo_env: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    parent = subprocess.Popen(_sweep_cmd(out), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline:  # kill the first run to finish an epoch, mid-run
        for run in out.glob("demo-*"):
            metrics, status = run / "metrics.csv", RunFolder(run, must_exist=False).status()
            if metrics.is_file() and len(pd.read_csv(metrics)) == 1 and status.details.get("pid"):
                os.kill(status.details["pid"], signal.SIGKILL)
                victim = run
                break
        time.sleep(0.05)
    output = parent.communicate(timeout=240)[0].decode()
    assert victim is not None, output
    assert parent.returncode == 1, output  # one run failed, the others went on
    assert f"failed {victim.name}" in output and "last lines" in output
    frame = status_frame(out).set_index("run")
    assert frame.loc[victim.name, "status"] == "interrupted"
    assert (frame["status"] == "done").sum() == 3
    others = [p for p in out.glob("demo-*") if p != victim]
    # each run had its share of the cores: 2 cores / 2 jobs = 1 thread, no loader workers
    runtime = RunFolder(others[0]).record().runtime
    assert (runtime["threads"], runtime["workers"]) == cpu_budget(2)
    mtimes = {f: f.stat().st_mtime_ns for p in others for f in p.rglob("*") if f.is_file()}

    rerun = subprocess.run(_sweep_cmd(out), env=env, capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "3 done, 1 to run" in rerun.stdout
    assert {f: f.stat().st_mtime_ns for f in mtimes} == mtimes  # the done runs were not touched
    assert status_frame(out)["status"].eq("done").all()
    assert (out / "comparison.md").is_file() and (victim / "eval" / "metrics.json").is_file()

    # the resumed run ends where an uninterrupted run of the same spec ends
    spec = RunFolder(victim).spec()
    straight = run_spec(spec, RuntimeOptions(workers=0, threads=1, progress=False), tmp_path / "straight" / "run")
    columns = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc"]
    resumed, reference = RunFolder(victim).metrics()[columns], RunFolder(straight).metrics()[columns]
    pd.testing.assert_frame_equal(resumed.reset_index(drop=True), reference.reset_index(drop=True), rtol=1e-5)


# --- submitit -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_slurm_launcher_through_submitits_local_executor(demo_env: Path, tmp_path: Path) -> None:
    pytest.importorskip("submitit")
    out = tmp_path / "sweep"
    result = invoke("sweep", "--out", str(out), "--launcher", "slurm", "--slurm-cluster", "local", "--block", "srm",
                    "--epochs", "1", *TINY, "--threads", "1", "--workers", "0")
    assert result.exit_code == 0, result.output
    (run,) = out.glob("demo-*")
    assert RunFolder(run).status().state == DONE and (run / "eval" / "metrics.json").is_file()
    assert list((out / "logs" / "slurm").glob("*_log.out"))  # submitit's own job logs
    assert json.loads((out / "sweep.json").read_text())["launcher"]["name"] == "slurm"


def test_slurm_job_requeues_the_same_run_on_preemption() -> None:
    pytest.importorskip("submitit")
    from stylecls.sweep.slurm_job import RunJob

    job = RunJob("sweeps/x", "demo-run")
    again = job.checkpoint()  # what submitit calls on SLURM's preemption / timeout signal
    assert again.function is job and (job.out, job.name) == ("sweeps/x", "demo-run")


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--preset", "nope"], "unknown preset"),
    (["--launcher", "nope"], "unknown launcher"),
    (["--jobs", "0"], "--jobs must be >= 1"),
    (["--block", "srm", "--block", "srm"], "twice"),
    (["--preset", "dtd-splits"], "dtd"),
])  # fmt: skip
def test_bad_input_exits_2_and_starts_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              args: list[str], message: str) -> None:
    monkeypatch.setenv("STYLECLS_DATA", str(tmp_path / "no-data"))
    out = tmp_path / "sweep"
    with pytest.raises(SystemExit) as exit_info:
        _main(monkeypatch, "sweep", "--out", str(out), *args)
    assert exit_info.value.code == 2
    assert not out.exists()


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    from stylecls.cli import main

    monkeypatch.setattr(sys, "argv", ["stylecls", *args])
    main()


def test_out_holding_another_specs_run_and_slurm_without_submitit_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    (spec,) = expand_grid(RunSpec(epochs=1, **TINY_SPEC), GridAxes(block=["srm"]))
    other = RunFolder(out / spec.run_name(), must_exist=False)
    _record(other, replace(spec, protocol="multi-domain"))  # same name, another spec
    before = sorted(p.name for p in other.path.iterdir())
    with pytest.raises(SystemExit) as exit_info:
        _main(monkeypatch, "sweep", "--out", str(out), "--block", "srm", "--epochs", "1", *TINY)
    assert exit_info.value.code == 2 and "another spec" in capsys.readouterr().err
    assert sorted(p.name for p in other.path.iterdir()) == before and not (out / "sweep.json").exists()

    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit -> ImportError
    with pytest.raises(SystemExit) as exit_info:
        _main(monkeypatch, "sweep", "--out", str(tmp_path / "s2"), "--launcher", "slurm", "--epochs", "1")
    assert exit_info.value.code == 2 and 'pip install "stylecls[slurm]"' in capsys.readouterr().err
    assert not (tmp_path / "s2").exists()


def test_preset_is_printed_and_options_override_it(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "pacs"
    result = invoke("sweep", "--preset", "pacs-lodo", "--data-root", str(shared_data), "--out", str(out),
                    "--seed", "0", "--block", "srm", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "preset pacs-lodo" in result.output and "overridden: --block, --seed" in result.output
    assert "4 not started" in result.output and "pacs-resnet18-srm-sketch-s0" in result.output
    assert not out.exists()  # a dry run starts nothing


def test_an_out_that_is_a_file_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("notes")
    with pytest.raises(SystemExit) as exit_info:
        _main(monkeypatch, "sweep", "--out", str(afile), "--block", "srm", "--epochs", "1", *TINY)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "is a file" in err and "Traceback" not in err
    assert afile.read_text() == "notes"
