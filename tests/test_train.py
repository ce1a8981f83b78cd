"""Training: optimizer groups, schedule, checkpoints, resume, DDP on gloo, bad input at the CLI.

Every run here is tiny (16 px, a few batches of the demo set) so the file takes seconds, not minutes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import torch

from stylecls.atomic import load_checkpoint, save_checkpoint
from stylecls.blocks import no_weight_decay_names
from stylecls.errors import StyleclsError
from stylecls.models import build_model
from stylecls.runfolder import RunFolder
from stylecls.spec import RunSpec, RuntimeOptions
from stylecls.train import NonFiniteLoss, build_optimizer, build_scheduler, param_groups, resume, train, train_all
from stylecls.train import loop as train_loop
from stylecls.train.runtime import rng_state, set_rng_state

TINY = dict(img_size=16, batch_size=32, limit_train=96, limit_val=48, warmup_epochs=0, workers=0, progress=False)
RUNTIME_FIELDS = set(RuntimeOptions.__dataclass_fields__)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine OpenMP's
    spinning threads make them 10x slower; the subprocesses get OMP_NUM_THREADS=1 likewise."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(tmp_path: Path, **changes: object) -> tuple[RunSpec, RuntimeOptions]:
    """A tiny demo run: the spec and runtime fields of ``changes`` go where they belong."""
    values = {**TINY, "epochs": 2, "out": str(tmp_path / "runs"), **changes}
    runtime = {k: v for k, v in values.items() if k in RUNTIME_FIELDS}
    return RunSpec(**{k: v for k, v in values.items() if k not in RUNTIME_FIELDS}), RuntimeOptions(**runtime)


# --- optimisation ---------------------------------------------------------------------------------


def test_srm_parameters_never_decay_and_bn_bias_by_option() -> None:
    model = build_model("cifar_resnet20", "srm", num_classes=10)
    params = dict(model.named_parameters())
    srm = no_weight_decay_names(model)
    assert srm and all(".recalibration." in n for n in srm)

    groups = param_groups(model, 5e-4)
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    assert no_decay == {id(params[n]) for n in srm}
    assert sum(len(g["params"]) for g in groups) == len(params)

    groups = param_groups(model, 5e-4, norm_bias_decay=False)
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    expected = {id(p) for n, p in params.items() if n in srm or p.ndim == 1}
    assert no_decay == expected
    assert id(params["fc.bias"]) in no_decay and id(params["bn1.weight"]) in no_decay
    assert id(params["conv1.weight"]) not in no_decay


def test_schedule_warms_up_then_cosine_and_resumes_from_its_state(tmp_path: Path) -> None:
    cfg = RunSpec(epochs=4, warmup_epochs=1, lr=0.1).resolved()
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch=5)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.001)  # warmup starts at 1% of the peak
    assert max(lrs) == pytest.approx(0.1) and lrs.index(max(lrs)) == 5
    assert all(a >= b for a, b in zip(lrs[5:], lrs[6:], strict=False))  # cosine decays monotonically
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)

    # the state goes through a weights_only checkpoint and continues identically
    opt2 = build_optimizer(model, cfg)
    sched2 = build_scheduler(opt2, cfg, steps_per_epoch=5)
    for _ in range(7):
        opt2.step()
        sched2.step()
    save_checkpoint({"optimizer": opt2.state_dict(), "scheduler": sched2.state_dict()}, tmp_path / "s.pt")
    state = load_checkpoint(tmp_path / "s.pt")
    opt3 = build_optimizer(model, cfg)
    sched3 = build_scheduler(opt3, cfg, steps_per_epoch=5)
    opt3.load_state_dict(state["optimizer"])
    sched3.load_state_dict(state["scheduler"])
    rest = []
    for _ in range(13):
        rest.append(opt3.param_groups[0]["lr"])
        opt3.step()
        sched3.step()
    assert rest == pytest.approx(lrs[7:])


def test_rng_state_survives_a_weights_only_checkpoint(tmp_path: Path) -> None:
    import random

    import numpy as np

    torch.manual_seed(3)
    save_checkpoint({"rng": rng_state()}, tmp_path / "rng.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]) and expected[2] == got[2]


def test_recipe_fills_only_what_is_unset() -> None:
    cfg = RunSpec(dataset="demo", epochs=3).resolved()
    assert (cfg.arch, cfg.epochs, cfg.optimizer, cfg.schedule) == ("cifar_resnet20", 3, "sgd", "cosine")
    adamw = RunSpec(dataset="dtd", optimizer="adamw").resolved()
    assert adamw.arch == "resnet50" and adamw.lr == pytest.approx(1e-3)
    with pytest.raises(StyleclsError, match="unknown schedule"):
        RunSpec(schedule="linear").resolved()


# --- runs on the demo set -------------------------------------------------------------------------


@pytest.mark.slow
def test_train_leaves_a_complete_run_folder(demo_env: Path, tmp_path: Path) -> None:
    run = train(*tiny(tmp_path, block="srm", name="srm"))
    assert run == tmp_path / "runs" / "srm"
    folder = RunFolder(run)
    record = folder.record()
    assert folder.status().state == "done" and record.schema_version == 2
    assert (record.spec.arch, record.spec.block, record.spec.pretrained) == ("cifar_resnet20", "srm", None)
    assert record.spec == RunSpec.from_dict(folder.config()["spec"]) and record.spec.epochs == 2
    assert record.data.protocol == "multi-domain" and record.data.counts == {"train": 96, "val": 48, "test": 480}
    assert len(record.data.classes) == 10 and record.runtime["device"] == "cpu"
    assert set(record.versions) == {"stylecls", "torch", "torchvision", "python"}
    status = folder.status()
    assert 1 <= status.best_epoch <= 2 and 0 <= status.best_val_acc <= 1

    metrics = folder.metrics()
    assert list(metrics.columns) == [
        "epoch", "train_loss", "train_acc", "train_objective", "val_loss", "val_acc", "test_loss", "test_acc",
        "lr", "img_per_s", "seconds", "skipped",
    ]  # fmt: skip
    assert metrics["epoch"].tolist() == [1, 2] and metrics["val_acc"].between(0, 1).all()
    assert metrics["val_acc"].max() == pytest.approx(status.best_val_acc, abs=1e-5)
    assert metrics["test_acc"].isna().all()  # --eval-test-every is off by default

    split = pd.read_csv(folder.split_path)
    assert split["part"].value_counts().to_dict() == {"test": 480, "train": 96, "val": 48}
    assert not split["path"].str.startswith("/").any()  # relative to the data root
    assert (Path(record.data.root) / split["path"].iloc[0]).is_file()

    for which in ("best", "last"):
        state = folder.load_checkpoint(which)  # weights_only=True
        model = build_model(state["arch"], state["block"], state["num_classes"], **state["block_options"])
        model.load_state_dict(state["model"])
    assert folder.load_checkpoint("last")["epoch"] == 2


@pytest.mark.slow
def test_resume_after_an_interrupt_matches_the_uninterrupted_run(
    demo_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    straight = train(*tiny(tmp_path, epochs=3, warmup_epochs=1, block="srm", limit_train=64, name="straight"))

    original = train_loop.train_epoch

    def interrupt_in_epoch_3(t, epoch, *args):
        if epoch == 3:
            raise KeyboardInterrupt
        return original(t, epoch, *args)

    monkeypatch.setattr(train_loop, "train_epoch", interrupt_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train(*tiny(tmp_path, epochs=3, warmup_epochs=1, block="srm", limit_train=64, name="stopped"))
    stopped = tmp_path / "runs" / "stopped"
    assert RunFolder(stopped).status().state == "interrupted"
    assert f"stylecls train --resume {stopped}" in capsys.readouterr().out
    assert RunFolder(stopped).load_checkpoint("last")["epoch"] == 2

    monkeypatch.setattr(train_loop, "train_epoch", original)
    assert resume(stopped) == stopped
    a, b = pd.read_csv(straight / "metrics.csv"), pd.read_csv(stopped / "metrics.csv")
    columns = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"]
    pd.testing.assert_frame_equal(a[columns], b[columns])
    wa, wb = RunFolder(straight).load_checkpoint("last")["model"], RunFolder(stopped).load_checkpoint("last")["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert RunFolder(stopped).status().state == "done"


@pytest.mark.slow
def test_nonfinite_loss_stops_and_keeps_the_last_good_checkpoint(demo_env: Path, tmp_path: Path) -> None:
    with pytest.raises(NonFiniteLoss, match="training diverged in epoch 1"):
        train(*tiny(tmp_path, lr=1e30, name="nan"))
    folder = RunFolder(tmp_path / "runs" / "nan")
    assert folder.status().state == "failed"
    state = folder.load_checkpoint("last")
    weights = [v for v in state["model"].values() if v.is_floating_point()]
    assert state["epoch"] == 0 and all(torch.isfinite(v).all() for v in weights)


@pytest.mark.slow
def test_lodo_without_test_domain_trains_one_run_per_domain(demo_env: Path, tmp_path: Path) -> None:
    runs = train_all(*tiny(tmp_path, protocol="lodo", epochs=1, limit_train=32, limit_val=32, name="lodo"))
    assert [r.name for r in runs] == ["lodo-photo", "lodo-poster", "lodo-sketch", "lodo-watercolor"]
    record = RunFolder(runs[2]).record()
    assert record.data.protocol == "lodo" and record.spec.test_domain == "sketch"
    split = pd.read_csv(runs[2] / "split.csv")
    assert set(split.loc[split["part"] == "test", "domain"]) == {"sketch"}
    assert "sketch" not in set(split.loc[split["part"] != "test", "domain"])


# --- the command line -----------------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "stylecls", "train", *args],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip


def test_bad_input_is_one_clear_error_before_anything_is_written(demo_env: Path, tmp_path: Path) -> None:
    model = build_model("cifar_resnet20", num_classes=10)
    bad = {k: torch.zeros(v.shape[0] + 1, *v.shape[1:]) if k == "conv1.weight" else v
           for k, v in model.state_dict().items()}
    torch.save(bad, tmp_path / "bad.pt")
    cases = [
        (dict(dataset="imagenet"), "unknown dataset 'imagenet'"),
        (dict(arch="vgg16"), "unknown arch 'vgg16'"),
        (dict(dataset="dtd", data_root=str(tmp_path / "nodata")), "stylecls data check --dataset dtd"),
        (dict(test_domain="clipart"), "unknown test domain 'clipart'"),
        (dict(pretrained=str(tmp_path / "bad.pt")), "do not fit"),
        (dict(batch_size=512), "fewer than one batch"),
    ]
    if not torch.cuda.is_available():
        cases.append((dict(device="cuda"), "sees no CUDA GPU"))
    for changes, message in cases:
        with pytest.raises(StyleclsError, match=message):
            train(*tiny(tmp_path, **changes))
    with pytest.raises(StyleclsError, match="is not a run folder"):
        resume(tmp_path)
    assert not (tmp_path / "runs").exists()  # nothing half-made


def test_cli_turns_bad_input_into_exit_code_2(demo_env: Path, tmp_path: Path) -> None:
    (tmp_path / "notarun").mkdir()
    cases = {
        "unknown block": (["--block", "cbam"], "'cbam' is not one of 'eca', 'ge', 'none', 'se', 'srm'"),
        "not a run": (["--resume", str(tmp_path / "notarun")], "is not a run folder"),
    }
    procs = {name: _cli(*args, cwd=tmp_path) for name, (args, _) in cases.items()}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, (name, out, err)
        assert "Traceback" not in err and cases[name][1] in " ".join(err.replace("│", " ").split()), (name, err)
        if name != "unknown block":  # that one is click's usage error: a short box naming the valid blocks
            assert err.strip().count("\n") == 0, (name, err)  # one message


@pytest.mark.slow
def test_torchrun_two_processes_on_gloo(demo_env: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [
        "--img-size", "16", "--batch-size", "16", "--limit-train", "64", "--limit-val", "40", "--epochs", "2",
        "--warmup-epochs", "0", "--block", "srm", "--out", str(tmp_path / "runs"), "--name", "ddp",
    ]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "stylecls", "train", *args],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "runs" / "ddp"
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == str(run) and proc.stdout.count(f"\n{run}\n") + (proc.stdout.endswith(f"{run}\n")) >= 1
    assert sum(line == str(run) for line in lines) == 1  # only rank 0 reports
    folder = RunFolder(run)
    assert folder.record().runtime["world_size"] == 2 and folder.status().state == "done"
    metrics = folder.metrics()
    assert metrics["epoch"].tolist() == [1, 2]
    assert folder.record().data.counts["val"] == 40
    # validation is sharded without padding and reduced exactly: the last epoch's accuracy is the
    # single-process accuracy of last.pt on the same 40 validation images
    from stylecls.evaluate import evaluate

    result = evaluate(run, "last", part="val", device="cpu", batch_size=16)
    assert result.metrics["count"] == 40
    assert metrics["val_acc"].iloc[-1] == pytest.approx(result.metrics["top1"], abs=1e-6)


@pytest.mark.integration
def test_incomplete_copy_is_announced_and_recorded(
    shared_data: Path, cache_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = train(
        *tiny(tmp_path, dataset="pacs", data_root=str(shared_data), test_domain="sketch", epochs=1, limit_train=32,
              limit_val=32)
    )
    data = RunFolder(run).record().data
    assert data.complete is False and data.info["found"]["images"] == 1400
    assert data.info["expected"]["images"] == 9991
    assert "incomplete copy of pacs: found 1,400 of 9,991 images" in capsys.readouterr().out


# --- paths the suite did not reach --------------------------------------------------------------


@pytest.mark.parametrize("schedule", ["step", "constant"])
def test_step_and_constant_schedules(schedule: str) -> None:
    spec = RunSpec(epochs=4, warmup_epochs=0, lr=0.1, schedule=schedule).resolved()
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, spec)
    sched = build_scheduler(opt, spec, steps_per_epoch=10)
    lrs = []
    for _ in range(40):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    if schedule == "constant":
        assert lrs == pytest.approx([0.1] * 40)
    else:  # x0.1 at 50% and 75% of training
        assert lrs[:20] == pytest.approx([0.1] * 20)
        assert lrs[20:30] == pytest.approx([0.01] * 10) and lrs[30:] == pytest.approx([0.001] * 10)


def test_fp16_grad_scaler_skips_overflowing_steps_and_survives_a_checkpoint(tmp_path: Path) -> None:
    """The fp16 path's GradScaler (CUDA only in training): an inf gradient skips the step and halves the
    scale; the scaler's state goes through a weights_only checkpoint, as last.pt stores it."""
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, enabled=True)
    before = model.weight.detach().clone()
    loss = model(torch.full((2, 3), float("inf"))).sum()
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    assert torch.equal(model.weight, before) and scaler.get_scale() == 512.0  # step skipped, scale backed off
    opt.zero_grad()
    scaler.scale(model(torch.ones(2, 3)).sum()).backward()
    scaler.step(opt)
    scaler.update()
    assert not torch.equal(model.weight, before)
    save_checkpoint({"scaler": scaler.state_dict()}, tmp_path / "s.pt")
    again = torch.amp.GradScaler("cpu", enabled=True)
    again.load_state_dict(load_checkpoint(tmp_path / "s.pt")["scaler"])
    assert again.get_scale() == scaler.get_scale()


def test_sync_bn_converts_every_batchnorm() -> None:
    """What --sync-bn does to the model under torchrun (on CUDA): every BatchNorm becomes SyncBatchNorm,
    SRM's BatchNorm1d over channels included, with the weights kept."""
    model = build_model("cifar_resnet20", "srm", num_classes=10)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    norms = [m for m in synced.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and all(isinstance(m, torch.nn.SyncBatchNorm) for m in norms)
    assert all(torch.equal(state[k], v) for k, v in synced.state_dict().items())


@pytest.mark.slow
def test_resume_refuses_settings_other_than_where_it_runs(demo_env: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from stylecls import cli

    (tmp_path / "run").mkdir()
    monkeypatch.setattr(sys, "argv", ["stylecls", "train", "--resume", str(tmp_path / "run"), "--lr", "0.5",
                                      "--block", "se", "--device", "cpu"])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "drop --block, --lr" in err and "--device" not in err.split("drop")[1].split("(")[0]


@pytest.mark.slow
def test_torchrun_ranks_agree_on_skipping_a_batch(tmp_path: Path) -> None:
    """--skip-bad under DDP: a rank whose batch keeps too few readable images for SRM's BatchNorm skips
    the step, and so must every other rank, or the gradient all-reduce of the rest waits for ever."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(root / cls / f"{i:02d}.png")
    for i in range(12):  # unreadable everywhere: some rank's batch of 2 keeps a single image
        (root / "a" / f"{i:02d}.png").write_bytes(b"not an image") if i % 3 == 0 else None
    args = [
        "--dataset", "folder", "--data-root", str(root), "--img-size", "16", "--batch-size", "2", "--epochs", "1",
        "--warmup-epochs", "0", "--block", "srm", "--skip-bad", "--workers", "0", "--out", str(tmp_path / "runs"),
        "--name", "ddp",
    ]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "stylecls", "train", *args],
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = RunFolder(tmp_path / "runs" / "ddp")
    assert folder.status().state == "done" and folder.metrics()["skipped"].iloc[0] > 0
