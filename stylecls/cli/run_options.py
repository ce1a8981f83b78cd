"""The options of one run, shared by ``stylecls train`` and ``stylecls sweep`` (one definition each).

Options a sweep repeats to make its grid (block, seed, test domain, split, arch, block options) are
declared by each command itself; everything else is here, with the helpers that turn the values
into a :class:`~stylecls.spec.RunSpec` and :class:`~stylecls.spec.RuntimeOptions`.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from stylecls.cli.app import registry_option
from stylecls.errors import StyleclsError
from stylecls.spec import RunSpec, RuntimeOptions

DatasetOpt = registry_option("demo", "--dataset", "-d", registry="stylecls.data:DATASETS", help="Dataset.")
RunDataRootOpt = typer.Option(None, "--data-root", help="Data root (default: $STYLECLS_DATA or ./datasets).")
ProtocolOpt = typer.Option("auto", "--protocol", help="auto, single, lodo or multi-domain.")
TaskOpt = typer.Option(None, "--task", help="WikiArt task: style, genre or artist.")
EpochsOpt = typer.Option(None, "--epochs", min=1, help="Epochs (default: recipe).")
BatchSizeOpt = typer.Option(None, "--batch-size", min=1, help="Images per step and process (default: recipe).")
LrOpt = typer.Option(None, "--lr", help="Peak learning rate (default: recipe).")
WeightDecayOpt = typer.Option(None, "--weight-decay", help="Weight decay (default: recipe; never on SRM).")
NormBiasDecayOpt = typer.Option(
    True, "--norm-bias-decay/--no-norm-bias-decay", help="Weight decay on BatchNorm and bias parameters."
)
OptimizerOpt = typer.Option(None, "--optimizer", help="sgd (momentum 0.9) or adamw.")
ScheduleOpt = typer.Option(None, "--schedule", help="cosine, step or constant (after the warmup).")
WarmupOpt = typer.Option(None, "--warmup-epochs", min=0, help="Linear warmup epochs (default: recipe).")
SmoothingOpt = typer.Option(None, "--label-smoothing", help="Label smoothing (default: recipe).")
ImgSizeOpt = typer.Option(None, "--img-size", min=8, help="Training image size (default: recipe).")
MinCropOpt = typer.Option(None, "--min-crop", help="Smallest random crop, as an area fraction (default: recipe).")
PreResizeOpt = typer.Option(
    None, "--pre-resize",
    help="Decode-time resize before augmentation: a factor of --img-size for the shorter side (default: the "
    "recipe's, 1.125x; the demo's: original), or original.",
)  # fmt: skip
EvalTestEveryOpt = typer.Option(
    0, "--eval-test-every", min=0, help="Record held-out accuracy every N epochs (never used to select; 0: off)."
)
PretrainedOpt = typer.Option(None, "--pretrained", help="imagenet or a path to a state dict.")
RunDeviceOpt = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
AmpOpt = typer.Option(None, "--amp/--no-amp", help="Mixed precision (default: on for CUDA).")
ChannelsLastOpt = typer.Option(None, "--channels-last/--no-channels-last", help="Default: on for CUDA.")
CompileOpt = typer.Option(False, "--compile", help="torch.compile the model.")
SyncBnOpt = typer.Option(False, "--sync-bn", help="SyncBatchNorm across torchrun processes (CUDA).")
RunWorkersOpt = typer.Option(None, "--workers", min=0, help="Data-loading processes (default: by device).")
ThreadsOpt = typer.Option(None, "--threads", min=1, help="CPU threads for the model (default: all).")
TensorboardOpt = typer.Option(
    None, "--tensorboard/--no-tensorboard", help="Also log to RUN/tb/ (default: $STYLECLS_TENSORBOARD=1)."
)
SkipBadOpt = typer.Option(False, "--skip-bad", help="Drop undecodable images (counted) instead of stopping.")
LimitTrainOpt = typer.Option(None, "--limit-train", min=1, help="Train on a seeded subset of N images.")
LimitValOpt = typer.Option(None, "--limit-val", min=1, help="Validate on a seeded subset of N images.")
ProgressOpt = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: on a terminal).")

#: the RunSpec fields a command's values fill one to one (the rest are built below)
_SPEC_VALUES = (
    "dataset", "protocol", "test_domain", "split", "arch", "block", "pretrained", "img_size", "pre_resize", "epochs",
    "batch_size", "optimizer", "lr", "weight_decay", "norm_bias_decay", "schedule", "warmup_epochs",
    "label_smoothing", "min_crop", "seed", "skip_bad", "limit_train", "limit_val", "eval_test_every",
)  # fmt: skip
_RUNTIME_VALUES = (
    "device", "workers", "threads", "amp", "channels_last", "compile", "sync_bn", "progress", "tensorboard",
)  # fmt: skip


def parse_block_options(pairs: list[str]) -> dict[str, Any]:
    """``--block-option pooling=mean --block-option reduction=8`` -> {"pooling": "mean", "reduction": 8}."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise StyleclsError(f"--block-option takes KEY=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def spec_from_values(values: dict[str, Any]) -> RunSpec:
    """A RunSpec from one command's values (``task`` and ``block_option`` as the CLI takes them)."""
    task = values.get("task")
    return RunSpec(
        data_options={"task": task} if task else {},
        block_options=parse_block_options(values.get("block_option") or []),
        **{k: values[k] for k in _SPEC_VALUES if k in values},
    )


def runtime_from_values(values: dict[str, Any]) -> RuntimeOptions:
    """RuntimeOptions from one command's values (``data_root``, ``out`` as paths)."""
    data_root, out = values.get("data_root"), values.get("out")
    return RuntimeOptions(
        data_root=str(data_root) if data_root else None, out=str(out or "runs"), name=values.get("name"),
        **{k: values[k] for k in _RUNTIME_VALUES if k in values},
    )  # fmt: skip
