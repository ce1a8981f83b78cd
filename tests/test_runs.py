"""The run spec and the run folder's life cycle: names, status, signals, re-runs, claims, bad values."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from stylecls.errors import StyleclsError
from stylecls.runfolder import RunFolder
from stylecls.spec import RunSpec, RuntimeOptions
from stylecls.train import Preempted, claim_folder, resume, run_spec, train, train_all
from stylecls.train import loop as train_loop

SPEC = RunSpec(img_size=16, batch_size=32, limit_train=64, limit_val=32, warmup_epochs=0, epochs=2, block="srm")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def runtime(tmp_path: Path, **changes: object) -> RuntimeOptions:
    return RuntimeOptions(**{"workers": 0, "progress": False, "out": str(tmp_path / "runs"), **changes})


def test_spec_round_trip_and_names() -> None:
    spec = SPEC.resolved()
    assert RunSpec.from_dict(spec.to_dict()) == spec and spec.digest() == RunSpec.from_dict(spec.to_dict()).digest()
    plain = RunSpec(block="srm", seed=2).resolved()
    assert plain.run_name() == "demo-cifar_resnet20-srm-s2"  # recipe values: the readable name alone
    assert RunSpec(block="srm", seed=2).resolved().run_name() == plain.run_name()
    changed = {replace(plain, lr=0.05).run_name(), replace(plain, seed=3).run_name(),
               replace(plain, pre_resize="1x").run_name(),
               replace(plain, block_options={"pooling": "mean"}).run_name()}
    assert len(changed) == 4 and plain.run_name() not in changed
    assert replace(plain, lr=0.05).run_name().startswith("demo-cifar_resnet20-srm-s2-")
    lodo = RunSpec(dataset="pacs", test_domain="sketch", seed=1, block="se").resolved()
    assert lodo.run_name() == "pacs-resnet18-se-sketch-s1"
    with pytest.raises(StyleclsError, match="does not know"):
        RunSpec.from_dict({**spec.to_dict(), "colour": "red"})


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(seed=-1), "--seed -1"), (dict(seed=2**32), "--seed 4294967296"), (dict(img_size=100000), "--img-size"),
        (dict(img_size=0), "--img-size"), (dict(epochs=0), "--epochs"), (dict(limit_train=0), "--limit-train"),
    ],
)
def test_out_of_range_values_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(StyleclsError, match=message):
        replace(SPEC, **changes).resolved()


def test_out_and_name_must_be_usable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StyleclsError, match="is a file"):
        claim_folder(SPEC.resolved(), runtime(tmp_path, out=str(tmp_path / "file")))
    for name in ("../x", "a/b", ".."):
        with pytest.raises(StyleclsError, match="single folder name"):
            claim_folder(SPEC.resolved(), runtime(tmp_path, name=name))
    assert not (tmp_path / "x").exists()
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "ro"
        locked.mkdir(mode=0o500)
        with pytest.raises(StyleclsError, match="not writable"):
            claim_folder(SPEC.resolved(), runtime(tmp_path, out=str(locked)))


def test_default_names_take_the_next_free_suffix(tmp_path: Path) -> None:
    spec = SPEC.resolved()
    a, b = claim_folder(spec, runtime(tmp_path)), claim_folder(spec, runtime(tmp_path))
    assert a.name == spec.run_name() and b.name == f"{spec.run_name()}-2"


@pytest.mark.slow
def test_a_run_being_trained_cannot_be_trained_twice(demo_env: Path, tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "runs" / "x", must_exist=False)
    with folder.lock():
        assert folder.is_locked() or os.name != "posix"
        with pytest.raises(StyleclsError, match="being trained by another process"):
            train(SPEC, runtime(tmp_path, name="x"))
        with pytest.raises(StyleclsError, match="being trained by another process"):
            run_spec(SPEC, runtime(tmp_path), folder.path)
    assert not folder.config_path.exists()
    run = train(SPEC, runtime(tmp_path, name="x"))
    with pytest.raises(StyleclsError, match="already holds a run"):
        train(SPEC, runtime(tmp_path, name="x"))
    with pytest.raises(StyleclsError, match="holds a run of another spec"):
        run_spec(replace(SPEC, lr=0.5), runtime(tmp_path), run)


@pytest.mark.slow
def test_status_and_sigterm_then_resume(demo_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert RunFolder(tmp_path / "nothing", must_exist=False).status().state == "not started"
    original = train_loop.train_epoch

    def sigterm_in_epoch_2(t, epoch, *args):
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # what `kill`, SLURM and Kubernetes send
        return original(t, epoch, *args)

    monkeypatch.setattr(train_loop, "train_epoch", sigterm_in_epoch_2)
    with pytest.raises(Preempted) as stopped:
        train(SPEC, runtime(tmp_path, name="x"))
    assert stopped.value.exit_code == 143
    folder = RunFolder(tmp_path / "runs" / "x")
    assert folder.status().state == "interrupted"
    assert folder.status().reason == "SIGTERM" and folder.load_checkpoint("last")["epoch"] == 1
    assert f"stylecls train --resume {folder.path}" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is gone with the run

    monkeypatch.setattr(train_loop, "train_epoch", original)
    resume(folder.path)
    assert folder.status().state == "done" and folder.metrics()["epoch"].tolist() == [1, 2]


@pytest.mark.slow
def test_cli_exits_143_on_sigterm(demo_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stylecls import cli

    original = train_loop.train_epoch

    def sigterm(t, epoch, *args):
        os.kill(os.getpid(), signal.SIGTERM)
        return original(t, epoch, *args)

    monkeypatch.setattr(train_loop, "train_epoch", sigterm)
    monkeypatch.setattr(sys, "argv", ["stylecls", "train", "--img-size", "16", "--epochs", "1", "--limit-train", "64",
                                      "--limit-val", "32", "--workers", "0", "--out", str(tmp_path), "--name", "x"])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 143


@pytest.mark.slow
def test_an_interrupted_lodo_rerun_skips_finished_domains_and_resumes(
    demo_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = replace(SPEC, protocol="lodo", epochs=1, limit_train=32, block="none")
    original = train_loop.train_epoch
    calls = []

    def stop_in_third_domain(t, epoch, *args):
        calls.append(t.spec.test_domain)
        if t.spec.test_domain == "sketch":
            raise KeyboardInterrupt
        return original(t, epoch, *args)

    monkeypatch.setattr(train_loop, "train_epoch", stop_in_third_domain)
    with pytest.raises(KeyboardInterrupt):
        train_all(spec, runtime(tmp_path, name="lodo"))
    first = tmp_path / "runs" / "lodo-photo"
    mtime = (first / "last.pt").stat().st_mtime_ns
    calls.clear()
    monkeypatch.setattr(train_loop, "train_epoch", lambda t, epoch, *a: (calls.append(t.spec.test_domain),
                                                                         original(t, epoch, *a))[1])
    runs = train_all(spec, runtime(tmp_path, name="lodo"))
    assert [r.name for r in runs] == ["lodo-photo", "lodo-poster", "lodo-sketch", "lodo-watercolor"]
    assert calls == ["sketch", "watercolor"]  # photo and poster were done: skipped, untouched
    assert (first / "last.pt").stat().st_mtime_ns == mtime
    assert all(RunFolder(r).status().state == "done" for r in runs)


@pytest.mark.slow
def test_batch_size_one_trains_without_batchnorm_over_channels(demo_env: Path, tmp_path: Path) -> None:
    run = train(replace(SPEC, block="se", batch_size=1, limit_train=8, limit_val=4, epochs=1), runtime(tmp_path))
    assert RunFolder(run).status().state == "done" and RunFolder(run).metrics()["train_acc"].notna().all()
    with pytest.raises(StyleclsError, match="at least 2 images per step"):
        train(replace(SPEC, batch_size=1, limit_train=8, limit_val=4, epochs=1), runtime(tmp_path))
    with pytest.raises(StyleclsError, match="fewer than one batch of 32"):
        train(replace(SPEC, limit_train=20), runtime(tmp_path))


@pytest.mark.slow
def test_train_and_val_loss_are_the_same_quantity(demo_env: Path, tmp_path: Path) -> None:
    """train_loss and val_loss are plain cross-entropy; the smoothed objective is its own column."""
    smooth = RunFolder(train(replace(SPEC, label_smoothing=0.3, epochs=1), runtime(tmp_path))).metrics()
    plain = RunFolder(train(replace(SPEC, label_smoothing=0.0, epochs=1), runtime(tmp_path))).metrics()
    assert (plain["train_objective"] == plain["train_loss"]).all()
    # with smoothing the objective is pulled towards log(10) classes; the CE column is not
    assert (smooth["train_objective"] - smooth["train_loss"]).abs().min() > 1e-3


@pytest.mark.slow
def test_eval_test_every_records_held_out_accuracy_without_changing_selection(demo_env: Path, tmp_path: Path) -> None:
    base = replace(SPEC, epochs=2, block="none")
    with_test = RunFolder(train(replace(base, eval_test_every=1), runtime(tmp_path)))
    without = RunFolder(train(base, runtime(tmp_path)))
    a, b = with_test.metrics(), without.metrics()
    assert a["test_acc"].notna().all() and a["test_acc"].between(0, 1).all() and b["test_acc"].isna().all()
    columns = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"]
    pd.testing.assert_frame_equal(a[columns], b[columns])
    wa, wb = with_test.load_checkpoint("best"), without.load_checkpoint("best")
    assert wa["epoch"] == wb["epoch"] and all(torch.equal(wa["model"][k], wb["model"][k]) for k in wa["model"])
