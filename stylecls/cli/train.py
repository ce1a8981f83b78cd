"""`stylecls train`: one run, every run of a lodo protocol, or a resume."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

from stylecls.cli.app import app, console
from stylecls.errors import StyleclsError
from stylecls.spec import DEFAULT_PRE_RESIZE


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


def _block_options(pairs: list[str]) -> dict:
    """``--block-option pooling=mean --block-option reduction=8`` -> {"pooling": "mean", "reduction": 8}."""
    import json

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise StyleclsError(f"--block-option takes KEY=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


# with --resume, the run's own settings apply; only where it runs may change
_RESUME_OPTIONS = {"resume", "device", "workers", "threads", "progress"}


@app.command("train")
def train_cmd(
    ctx: typer.Context,
    dataset: str = typer.Option("demo", "--dataset", "-d", help="demo, dtd, pacs, office_home, wikiart or folder."),
    block: str = typer.Option("none", "--block", "-b", help="Recalibration block: none, se, srm, ge, eca."),
    arch: Optional[str] = typer.Option(None, "--arch", "-a", help="Backbone (default: the dataset's recipe)."),
    block_option: list[str] = typer.Option([], "--block-option", help="Block option KEY=VALUE (repeatable), e.g. pooling=mean."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Data root (default: $STYLECLS_DATA or ./datasets)."),
    protocol: str = typer.Option("auto", "--protocol", help="auto, single, lodo or multi-domain."),
    test_domain: Optional[str] = typer.Option(None, "--test-domain", help="Held-out domain (leave-one-domain-out)."),
    split: Optional[int] = typer.Option(None, "--split", help="DTD official split 1..10."),
    task: Optional[str] = typer.Option(None, "--task", help="WikiArt task: style, genre or artist."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Epochs (default: recipe)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Images per step and process (default: recipe)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (default: recipe)."),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay", help="Weight decay (default: recipe; never on SRM)."),
    norm_bias_decay: bool = typer.Option(True, "--norm-bias-decay/--no-norm-bias-decay", help="Weight decay on BatchNorm and bias parameters."),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="sgd (momentum 0.9) or adamw."),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="cosine, step or constant (after the warmup)."),
    warmup_epochs: Optional[int] = typer.Option(None, "--warmup-epochs", min=0, help="Linear warmup epochs (default: recipe)."),
    label_smoothing: Optional[float] = typer.Option(None, "--label-smoothing", help="Label smoothing (default: recipe)."),
    img_size: Optional[int] = typer.Option(None, "--img-size", min=8, help="Training image size (default: recipe)."),
    min_crop: Optional[float] = typer.Option(None, "--min-crop", help="Smallest random crop, as an area fraction (default: recipe)."),
    pre_resize: str = typer.Option(
        DEFAULT_PRE_RESIZE, "--pre-resize",
        help="Decode-time resize before augmentation: a factor of --img-size for the shorter side, or original.",
    ),
    eval_test_every: int = typer.Option(
        0, "--eval-test-every", min=0, help="Record held-out accuracy every N epochs (never used to select; 0: off)."
    ),
    pretrained: Optional[str] = typer.Option(None, "--pretrained", help="imagenet or a path to a state dict."),
    seed: int = typer.Option(0, "--seed", help="Seed of the weights, the order and the augmentation."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda, cuda:1 ..."),
    amp: Optional[bool] = typer.Option(None, "--amp/--no-amp", help="Mixed precision (default: on for CUDA)."),
    channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last", help="Default: on for CUDA."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the model."),
    sync_bn: bool = typer.Option(False, "--sync-bn", help="SyncBatchNorm across torchrun processes (CUDA)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="Data-loading processes (default: by device)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads for the model (default: all)."),
    tensorboard: Optional[bool] = typer.Option(
        None, "--tensorboard/--no-tensorboard", help="Also log to RUN/tb/ (default: $STYLECLS_TENSORBOARD=1)."
    ),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Drop undecodable images (counted) instead of stopping."),
    limit_train: Optional[int] = typer.Option(None, "--limit-train", min=1, help="Train on a seeded subset of N images."),
    limit_val: Optional[int] = typer.Option(None, "--limit-val", min=1, help="Validate on a seeded subset of N images."),
    out: Path = typer.Option(Path("runs"), "--out", "-o", help="Folder of run folders."),
    name: Optional[str] = typer.Option(None, "--name", help="Run folder name (default: dataset-arch-block-time)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder from its last.pt."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: on a terminal)."),
) -> None:
    """Train a backbone with a block; leaves runs/<name>/ and prints its path last."""
    from stylecls.spec import RunSpec, RuntimeOptions
    from stylecls.train import is_main_process, train_all
    from stylecls.train import resume as resume_run

    if resume is not None:
        given = sorted(
            p for p in ctx.params
            if p not in _RESUME_OPTIONS and getattr(ctx.get_parameter_source(p), "name", "") == "COMMANDLINE"
        )  # fmt: skip
        if given:
            raise StyleclsError(
                f"--resume continues a run with its own settings; drop {', '.join('--' + g.replace('_', '-') for g in given)}"
                " (only --device, --workers, --threads and --progress may change)"
            )
        with interrupt_exit_codes():
            path = resume_run(resume, device=None if device == "auto" else device, workers=workers,
                              progress=progress, threads=threads)
        if is_main_process():
            console.print(str(path), highlight=False, soft_wrap=True)
        return
    spec = RunSpec(
        dataset=dataset, data_options={"task": task} if task else {}, protocol=protocol, test_domain=test_domain,
        split=split, arch=arch, block=block, block_options=_block_options(block_option), pretrained=pretrained,
        img_size=img_size, pre_resize=pre_resize, epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr,
        weight_decay=weight_decay, norm_bias_decay=norm_bias_decay, schedule=schedule, warmup_epochs=warmup_epochs,
        label_smoothing=label_smoothing, min_crop=min_crop, seed=seed, skip_bad=skip_bad, limit_train=limit_train,
        limit_val=limit_val, eval_test_every=eval_test_every,
    )  # fmt: skip
    runtime = RuntimeOptions(
        device=device, workers=workers, threads=threads, amp=amp, channels_last=channels_last, compile=compile,
        sync_bn=sync_bn, progress=progress, tensorboard=tensorboard,
        data_root=str(data_root) if data_root else None, out=str(out), name=name,
    )  # fmt: skip
    with interrupt_exit_codes():
        paths = train_all(spec, runtime)
    if not is_main_process():  # under torchrun, rank 0 reports
        return
    if len(paths) > 1:
        console.print("runs (one per held-out domain):", highlight=False)
    for path in paths:
        console.print(str(path), highlight=False, soft_wrap=True)
