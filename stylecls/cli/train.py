"""`stylecls train`: one run, every run of a lodo protocol, or a resume."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

from stylecls.cli import run_options as opt
from stylecls.cli.app import app, console, registry_option
from stylecls.errors import StyleclsError


@contextmanager
def interrupt_exit_codes() -> Iterator[None]:
    """Ctrl-C, SIGTERM or SIGUSR1 during training: the loop has kept last.pt and printed the resume
    command; exit 128 + the signal's number (130, 143, 138) as shells and schedulers expect."""
    from stylecls.train import Preempted

    try:
        yield
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Preempted as e:
        raise typer.Exit(e.exit_code) from None


# with --resume, the run's own settings apply; only where it runs may change
_RESUME_OPTIONS = {"resume", "device", "workers", "threads", "progress", "tensorboard"}


@app.command("train")
def train_cmd(
    ctx: typer.Context,
    dataset: str = opt.DatasetOpt,
    block: str = registry_option(
        "none", "--block", "-b", registry="stylecls.blocks:BLOCKS", help="Recalibration block."
    ),
    arch: Optional[str] = registry_option(
        None, "--arch", "-a", registry="stylecls.models:ARCHS", help="Backbone (default: the dataset's recipe)."
    ),
    block_option: list[str] = typer.Option(
        [], "--block-option", help="Block option KEY=VALUE (repeatable), e.g. pooling=mean."
    ),
    data_root: Optional[Path] = opt.RunDataRootOpt,
    protocol: str = opt.ProtocolOpt,
    test_domain: Optional[str] = typer.Option(None, "--test-domain", help="Held-out domain (leave-one-domain-out)."),
    split: Optional[int] = typer.Option(None, "--split", help="DTD official split 1..10."),
    task: Optional[str] = opt.TaskOpt,
    epochs: Optional[int] = opt.EpochsOpt,
    batch_size: Optional[int] = opt.BatchSizeOpt,
    lr: Optional[float] = opt.LrOpt,
    weight_decay: Optional[float] = opt.WeightDecayOpt,
    norm_bias_decay: bool = opt.NormBiasDecayOpt,
    optimizer: Optional[str] = opt.OptimizerOpt,
    schedule: Optional[str] = opt.ScheduleOpt,
    warmup_epochs: Optional[int] = opt.WarmupOpt,
    label_smoothing: Optional[float] = opt.SmoothingOpt,
    img_size: Optional[int] = opt.ImgSizeOpt,
    min_crop: Optional[float] = opt.MinCropOpt,
    pre_resize: Optional[str] = opt.PreResizeOpt,
    eval_test_every: int = opt.EvalTestEveryOpt,
    pretrained: Optional[str] = opt.PretrainedOpt,
    seed: int = typer.Option(0, "--seed", help="Seed of the weights, the order and the augmentation."),
    device: str = opt.RunDeviceOpt,
    amp: Optional[bool] = opt.AmpOpt,
    channels_last: Optional[bool] = opt.ChannelsLastOpt,
    compile: bool = opt.CompileOpt,
    sync_bn: bool = opt.SyncBnOpt,
    workers: Optional[int] = opt.RunWorkersOpt,
    threads: Optional[int] = opt.ThreadsOpt,
    tensorboard: Optional[bool] = opt.TensorboardOpt,
    skip_bad: bool = opt.SkipBadOpt,
    limit_train: Optional[int] = opt.LimitTrainOpt,
    limit_val: Optional[int] = opt.LimitValOpt,
    out: Path = typer.Option(Path("runs"), "--out", "-o", help="Folder of run folders."),
    name: Optional[str] = typer.Option(
        None, "--name", help="Run folder name (default: the spec's, e.g. demo-cifar_resnet20-srm-s0; -2, -3 if taken)."
    ),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder from its last.pt."),
    progress: Optional[bool] = opt.ProgressOpt,
) -> None:
    """Train a backbone with a block; leaves runs/<name>/ and prints its path last."""
    from stylecls.train import is_main_process, train_all
    from stylecls.train import resume as resume_run

    if resume is not None:
        given = sorted(
            p for p in ctx.params
            if p not in _RESUME_OPTIONS and getattr(ctx.get_parameter_source(p), "name", "") == "COMMANDLINE"
        )  # fmt: skip
        if given:
            flags = ", ".join("--" + g.replace("_", "-") for g in given)
            raise StyleclsError(
                f"--resume continues a run with its own settings; drop {flags}"
                " (only --device, --workers, --threads, --progress and --tensorboard may change)"
            )
        with interrupt_exit_codes():
            path = resume_run(resume, device=None if device == "auto" else device, workers=workers,
                              progress=progress, threads=threads, tensorboard=tensorboard)
        if is_main_process():
            console.print(str(path), highlight=False, soft_wrap=True)
        return
    values = dict(ctx.params)
    spec, runtime = opt.spec_from_values(values), opt.runtime_from_values(values)
    with interrupt_exit_codes():
        paths = train_all(spec, runtime)
    if not is_main_process():  # under torchrun, rank 0 reports
        return
    if len(paths) > 1:
        console.print("runs (one per held-out domain):", highlight=False)
    for path in paths:
        console.print(str(path), highlight=False, soft_wrap=True)
