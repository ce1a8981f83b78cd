"""TensorBoardLogger on its own: write scalars, SRM histograms and a figure, read them back."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest

from stylecls.errors import StyleclsError
from stylecls.models import build_model
from stylecls.tensorboard import TensorBoardLogger, scalar_tag, tensorboard_default

pytest.importorskip("tensorboard")


def read_tags(log_dir: Path) -> tuple[dict[str, list[str]], object]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    events.Reload()
    return events.Tags(), events


def test_logger_writes_scalars_histograms_and_figures(tmp_path: Path) -> None:
    from stylecls.plotting import figure

    srm = build_model("cifar_resnet20", "srm", 3)
    with TensorBoardLogger(tmp_path) as logger:
        for epoch in (1, 2):
            logger.log_epoch(epoch, {"epoch": epoch, "train_loss": 1.0 / epoch, "train_acc": 0.5, "val_loss": 0.9,
                                     "val_acc": 0.6, "lr": 0.1, "img_per_s": 321.0, "seconds": 2.0,
                                     "skipped": 0, "note": "text", "bad": float("nan")})
            logger.log_model(epoch, srm)
            logger.log_model(epoch, build_model("cifar_resnet20", "se", 3))  # no style weights: nothing
        fig = figure(3, 3)
        fig.subplots().plot([0, 1], [1, 0])
        logger.log_figure("eval/confusion", fig, 2)
    tags, events = read_tags(tmp_path / "tb")  # events: an EventAccumulator
    assert {"loss/train", "acc/train", "loss/val", "acc/val", "lr", "img_per_s", "seconds", "skipped"} <= set(
        tags["scalars"]
    )
    assert "epoch" not in tags["scalars"] and "bad" not in tags["scalars"] and "note" not in tags["scalars"]
    assert [e.step for e in events.Scalars("loss/train")] == [1, 2]
    assert events.Scalars("loss/train")[1].value == pytest.approx(0.5)
    assert events.Scalars("acc/val")[0].value == pytest.approx(60.0)  # percent, as the console prints it
    srm_layers = [n for n, m in srm.named_modules() if type(m).__name__ == "StyleRecalibration"]
    assert sorted(tags["histograms"]) == sorted(f"style_weights/{n}/{f}" for n in srm_layers for f in ("mean", "std"))
    assert tags["images"] == ["eval/confusion"]


def test_scalar_tags_and_the_environment_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert scalar_tag("train_loss") == "loss/train" and scalar_tag("val_acc") == "acc/val"
    assert scalar_tag("lr") == "lr" and scalar_tag("img_per_s") == "img_per_s"
    monkeypatch.delenv("STYLECLS_TENSORBOARD", raising=False)
    assert not tensorboard_default()
    monkeypatch.setenv("STYLECLS_TENSORBOARD", "1")
    assert tensorboard_default()
    monkeypatch.setenv("STYLECLS_TENSORBOARD", "0")
    assert not tensorboard_default()


def test_a_clear_message_without_tensorboard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_tensorboard(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith(("torch.utils.tensorboard", "tensorboard")):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(StyleclsError, match=r'pip install "stylecls\[tensorboard\]"'):
        TensorBoardLogger(tmp_path)
    assert not (tmp_path / "tb").exists()
    # asked of a training, the missing package is found before any run folder is claimed
    from stylecls.spec import RunSpec, RuntimeOptions
    from stylecls.train import train

    with pytest.raises(StyleclsError, match="tensorboard package"):
        train(RunSpec(epochs=1), RuntimeOptions(tensorboard=True, out=str(tmp_path / "runs"), name="tb"))
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_training_with_tensorboard_writes_scalars_histograms_and_the_confusion_matrix(
    demo_env: Path, tmp_path: Path
) -> None:
    """`stylecls train --tensorboard`: the loop's own calls, read back with tensorboard's EventAccumulator."""
    import torch
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from stylecls.spec import RunSpec, RuntimeOptions
    from stylecls.train import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = train(RunSpec(block="srm", img_size=16, epochs=2, batch_size=32, limit_train=64, limit_val=32,
                            warmup_epochs=0),
                    RuntimeOptions(workers=0, progress=False, tensorboard=True, out=str(tmp_path), name="tb"))
    finally:
        torch.set_num_threads(threads)
    events = EventAccumulator(str(run / "tb"), size_guidance={"images": 0, "histograms": 0}).Reload()
    tags = events.Tags()
    assert {"loss/train", "loss/val", "acc/val", "lr"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("acc/val")] == [1, 2]
    assert any(t.startswith("style_weights/") for t in tags["histograms"])
    assert "confusion/val" in tags["images"]


@pytest.mark.slow
def test_training_says_where_the_events_go_and_logs_accuracy_in_percent(
    demo_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from stylecls.runfolder import RunFolder
    from stylecls.spec import RunSpec, RuntimeOptions
    from stylecls.train import train

    spec = RunSpec(img_size=16, batch_size=32, limit_train=64, limit_val=32, epochs=1, warmup_epochs=0)
    run = train(spec, RuntimeOptions(out=str(tmp_path / "runs"), name="tb", workers=0, progress=False,
                                     tensorboard=True))
    out = " ".join(capsys.readouterr().out.split())
    assert f"tensorboard events in {run / 'tb'}/; view with: tensorboard --logdir {tmp_path / 'runs'}" in out
    _, events = read_tags(run / "tb")
    val_acc = RunFolder(run).metrics()["val_acc"].iloc[0]
    assert events.Scalars("acc/val")[0].value == pytest.approx(100 * val_acc, abs=1e-3)
    assert f"acc {100 * val_acc:.1f}%" in out  # the console line says the same number
