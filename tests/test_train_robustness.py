"""Training when things go wrong: divergence, a full disk mid-save, damaged files on --resume.

Each failure is one line (a :class:`StyleclsError`, exit 2 at the CLI) and leaves the run folder consistent:
the status names the epoch that ``last.pt`` really holds, and ``--resume`` can carry on from it.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from stylecls import atomic
from stylecls.atomic import load_checkpoint, load_model_state, save_checkpoint
from stylecls.errors import StyleclsError
from stylecls.models import build_model
from stylecls.runfolder import RunFolder
from stylecls.spec import RunSpec, RuntimeOptions
from stylecls.train import loop as train_loop
from stylecls.train import resume, train

TINY = dict(img_size=16, batch_size=32, limit_train=64, limit_val=32, warmup_epochs=0, epochs=2)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(out: Path, name: str, **changes: Any) -> tuple[RunSpec, RuntimeOptions]:
    return RunSpec(**{**TINY, **changes}), RuntimeOptions(out=str(out), name=name, workers=0, progress=False)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "stylecls", "train", *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=300)


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr and stderr.strip().count("\n") == 0, stderr
    return stderr.strip()


def stop_after_epoch_1(monkeypatch: pytest.MonkeyPatch) -> None:
    original = train_loop.train_epoch

    def interrupt(t: Any, epoch: int, *args: Any) -> Any:
        if epoch == 2:
            raise KeyboardInterrupt
        return original(t, epoch, *args)

    monkeypatch.setattr(train_loop, "train_epoch", interrupt)


# --- loading checkpoints (no training) -------------------------------------------------------------


def test_a_garbage_checkpoint_is_one_line_without_unsafe_advice(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(4000))
    with pytest.raises(StyleclsError, match="it is not a PyTorch checkpoint") as e:
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"path": Path("x")}, foreign)  # a class weights_only refuses
    with pytest.raises(StyleclsError, match="objects other than tensors") as f:
        load_checkpoint(foreign)
    for error in (e.value, f.value):
        assert "weights_only" not in str(error) and "\n" not in str(error)


def test_another_architecture_is_one_line_that_counts_the_mismatch(tmp_path: Path) -> None:
    model = build_model("cifar_resnet20", num_classes=7)
    other = build_model("cifar_resnet32", num_classes=7).state_dict()
    with pytest.raises(StyleclsError, match=r"x\.pt does not fit the model: 72 unexpected weights") as e:
        load_model_state(model, other, tmp_path / "x.pt")
    assert "\n" not in str(e.value)
    wider = {k: v for k, v in build_model("cifar_resnet20", num_classes=10).state_dict().items()}
    with pytest.raises(StyleclsError, match=r"2 weights of another shape \(e\.g\. fc\.weight\)"):
        load_model_state(model, wider, tmp_path / "x.pt")
    load_model_state(model, build_model("cifar_resnet20", num_classes=7).state_dict(), tmp_path / "x.pt")


# --- divergence -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_diverging_run_ends_failed_with_one_line_and_its_initial_checkpoint(demo_env: Path, tmp_path: Path) -> None:
    proc = cli("--img-size", "16", "--batch-size", "32", "--limit-train", "64", "--limit-val", "32", "--epochs", "2",
               "--lr", "1e9", "--workers", "0", "--out", str(tmp_path / "runs"), "--name", "nan", cwd=tmp_path)
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert "training diverged in epoch 1" in line and "last.pt (the initial weights)" in line and "Lower --lr" in line
    folder = RunFolder(tmp_path / "runs" / "nan")
    status = folder.status()
    assert status.state == "failed" and status.epoch == 0 and "training diverged" in status.reason
    state = folder.load_checkpoint("last")
    assert state["epoch"] == 0 and all(torch.isfinite(v).all() for v in state["model"].values())
    assert not folder.checkpoint_path("best").exists()  # a NaN model is never "best"


# --- a full disk ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("failure", ["torch", "oserror"])
def test_a_full_disk_mid_save_keeps_the_previous_checkpoint_and_a_consistent_status(
    demo_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    real_save = torch.save

    def save(state: dict, f: Any) -> None:
        if state.get("epoch") != 2:
            return real_save(state, f)
        f.write(b"PK\x03\x04 half a checkpoint")
        if failure == "torch":  # what torch's zip writer raises on ENOSPC
            raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 1472 vs 1366")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.torch, "save", save)
    with pytest.raises(StyleclsError, match="no space left on the device to write .*the previous version is kept"):
        train(*tiny(tmp_path, "full"))
    folder = RunFolder(tmp_path / "full")
    assert folder.load_checkpoint("last")["epoch"] == 1
    status = folder.status()
    assert status.state == "failed" and status.epoch == 1 and "no space left" in status.reason
    assert not list(folder.path.glob(".*.tmp"))
    if failure == "torch":
        monkeypatch.setattr(atomic.torch, "save", real_save)
        resume(folder.path)  # space is back: the run carries on from epoch 1
        assert folder.status().state == "done" and folder.metrics()["epoch"].tolist() == [1, 2]


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 16 MiB file system (root may mount tmpfs); skipped where mounting is not allowed."""
    mount = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_a_really_full_disk_after_epoch_1(demo_env: Path, small_tmpfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = train_loop.print_epoch

    def fill_disk(row: dict, epochs: int, best: bool) -> None:
        original(row, epochs, best)
        if row["epoch"] == 1:  # leave 64 KiB: enough for the status, not for a checkpoint
            free = shutil.disk_usage(small_tmpfs).free
            (small_tmpfs / "filler").write_bytes(b"\0" * max(free - 64 * 1024, 0))

    monkeypatch.setattr(train_loop, "print_epoch", fill_disk)
    with pytest.raises(StyleclsError, match="no space left on the device"):
        train(*tiny(small_tmpfs, "full"))
    folder = RunFolder(small_tmpfs / "full")
    assert folder.load_checkpoint("last")["epoch"] == 1
    assert folder.status().state == "failed" and folder.status().epoch == 1
    assert not list(folder.path.glob(".*.tmp"))


# --- damaged files on --resume --------------------------------------------------------------------


@pytest.mark.slow
def test_resume_refuses_damaged_files_with_one_line(demo_env: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    stop_after_epoch_1(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train(*tiny(tmp_path, "run"))
    monkeypatch.undo()
    run = tmp_path / "run"
    folder = RunFolder(run)
    metrics, last = folder.metrics_path.read_bytes(), folder.checkpoint_path("last").read_bytes()

    folder.metrics_path.write_bytes(metrics + b"\0" * 12 + b"\n")
    with pytest.raises(StyleclsError, match=r"metrics\.csv is damaged"):
        resume(run)
    folder.metrics_path.write_bytes(metrics)

    state = folder.load_checkpoint("last")
    state.update(model=build_model("cifar_resnet32", num_classes=10).state_dict(), arch="cifar_resnet32")
    save_checkpoint(state, folder.checkpoint_path("last"))
    proc = cli("--resume", str(run), cwd=tmp_path)
    assert proc.returncode == 2
    assert "last.pt does not fit this run's model (cifar_resnet20 + none); it was saved by a cifar_resnet32 + none " \
           "run: 72 unexpected weights" in one_line(proc.stderr)

    folder.checkpoint_path("last").write_bytes(os.urandom(3000))
    with pytest.raises(StyleclsError, match="it is not a PyTorch checkpoint"):
        resume(run)
    assert folder.status().state == "interrupted"  # a refused resume changes nothing

    folder.checkpoint_path("last").write_bytes(last)
    resume(run)
    assert folder.status().state == "done" and folder.metrics()["epoch"].tolist() == [1, 2]

