"""A sweep's bad inputs and interruptions: one clear message before anything runs, no stale comparison,
no silent local SLURM, and Ctrl-C / SIGTERM that leave every run "interrupted" with nothing half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from stylecls.cli import app
from stylecls.errors import StyleclsError
from stylecls.runfolder import RunFolder
from stylecls.spec import RunSpec, RuntimeOptions
from stylecls.sweep import GridAxes, SlurmLauncher, SweepPlan, expand_grid, run_sweep

TINY_SPEC = dict(img_size=16, limit_train=64, limit_val=32, batch_size=32, warmup_epochs=0)


class NoLauncher:
    """Fails the test if the sweep gets as far as launching."""

    name = "none"

    def launch(self, plan: SweepPlan, runs: list[RunSpec], console: Console) -> list[str]:
        raise AssertionError("nothing should have been launched")


class Nothing:
    """Launches nothing and reports no failure (the runs stay not started)."""

    name = "nothing"

    def launch(self, plan: SweepPlan, runs: list[RunSpec], console: Console) -> list[str]:
        return []


def _plan(out: Path, **runtime: object) -> SweepPlan:
    specs = expand_grid(RunSpec(epochs=1, **TINY_SPEC), GridAxes(block=["se", "srm"]))
    return SweepPlan(out, specs, RuntimeOptions(out=str(out), **runtime))  # type: ignore[arg-type]


def test_a_file_where_a_run_folder_goes_is_one_message(tmp_path: Path) -> None:
    plan = _plan(tmp_path / "sweep")
    plan.out.mkdir()
    plan.run_dir(plan.specs[1]).write_text("notes")
    with pytest.raises(StyleclsError, match="holds files where this sweep's run folders go: demo-"):
        run_sweep(plan, NoLauncher(), Console())


def test_tensorboard_missing_is_found_once_before_any_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard -> ImportError
    with pytest.raises(StyleclsError, match="needs the tensorboard package"):
        run_sweep(_plan(tmp_path / "sweep", tensorboard=True), NoLauncher(), Console())
    assert not (tmp_path / "sweep").exists()


def test_a_corrupt_sweep_record_is_one_message_naming_it(tmp_path: Path) -> None:
    plan = _plan(tmp_path / "sweep")
    plan.write()
    record = plan.out / "sweep.json"
    record.write_text('{"runs": [{"name": "x"}]}')
    result = CliRunner().invoke(app, ["status", str(plan.out)])
    assert isinstance(result.exception, StyleclsError)
    assert str(record) in str(result.exception) and "damaged" in str(result.exception)
    record.write_text("{not json")
    with pytest.raises(StyleclsError, match="sweep.json is damaged"):
        SweepPlan.read(plan.out)


def test_a_comparison_that_cannot_be_made_removes_the_stale_one(tmp_path: Path) -> None:
    plan = _plan(tmp_path / "sweep")
    plan.out.mkdir()
    (plan.out / "comparison.md").write_text("| block | top-1 |\n| srm | 99% |\n")  # an earlier sweep's
    result = run_sweep(plan, Nothing(), Console(file=open(os.devnull, "w")))  # noqa: SIM115
    assert result.comparison is not None  # the CLI turns this into exit 1
    assert not (plan.out / "comparison.md").exists()


def test_slurm_without_sbatch_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("submitit")
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch anywhere
    with pytest.raises(StyleclsError, match="sbatch is not on PATH"):
        SlurmLauncher().executor(tmp_path / "logs")
    assert SlurmLauncher(cluster="local").executor(tmp_path / "logs") is not None  # explicit: allowed


# --- Ctrl-C and SIGTERM to a real sweep -----------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").is_dir() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_sweep_leaves_every_run_interrupted(demo_env: Path, tmp_path: Path, signum: int) -> None:
    out = tmp_path / "sweep"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    command = [sys.executable, "-m", "stylecls", "sweep", "--out", str(out), "--block", "none", "--block", "se",
               "--epochs", "200", "--img-size", "16", "--limit-train", "64", "--limit-val", "32", "--batch-size",
               "32", "--warmup-epochs", "0", "--jobs", "2"]  # fmt: skip
    # SIGINT to the sweep's process group is a terminal's Ctrl-C
    sweep = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True)
    pids: dict[Path, int] = {}
    deadline = time.monotonic() + 180
    while len(pids) < 2 and time.monotonic() < deadline and sweep.poll() is None:
        for run in out.glob("demo-*"):  # both runs past their first epoch
            status = RunFolder(run, must_exist=False).status()
            if status.details.get("pid") and (run / "last.pt").is_file() and (status.epoch or 0) >= 1:
                pids[run] = status.details["pid"]
        time.sleep(0.2)
    assert len(pids) == 2, sweep.communicate(timeout=60)[0].decode()
    if signum == signal.SIGINT:
        os.killpg(sweep.pid, signal.SIGINT)
    else:
        sweep.send_signal(signal.SIGTERM)
    output = sweep.communicate(timeout=120)[0].decode()
    assert sweep.returncode == 128 + signum, output
    assert "stopping 2 run(s)" in output
    for run, pid in pids.items():
        assert not _alive(pid), f"{run.name}'s process {pid} outlived the sweep"
        status = RunFolder(run).status()
        assert status.state == "interrupted", (run.name, status)
        assert not list(run.rglob("*.tmp")), list(run.rglob("*.tmp"))
        assert RunFolder(run).load_checkpoint("last")["epoch"] >= 1  # last.pt whole and loadable
