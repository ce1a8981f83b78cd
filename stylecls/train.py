"""Training: one call trains one model on one protocol split and leaves a complete run folder behind.

The same loop runs on the CPU, one GPU, or many through ``torchrun`` (DistributedDataParallel with a
DistributedSampler; only rank 0 writes). Batches arrive as uint8 and are normalised on the device.
Every epoch ends with validation, a ``metrics.csv`` row and an atomic ``last.pt`` (``best.pt`` when
validation accuracy improves); ``last.pt`` holds everything a resume needs (model, optimizer,
scheduler, grad scaler, epoch, RNG), and the loader's order and augmentation depend only on
(seed, epoch), so a resumed run retraces the uninterrupted one exactly on the CPU.

Python API::

    from stylecls.train import TrainConfig, train, train_all, resume
    run_dir = train(TrainConfig(dataset="demo", block="srm", epochs=2))
"""

from __future__ import annotations

import csv
import math
import os
import platform
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn

from stylecls.errors import StyleclsError, unknown_name
from stylecls.recipes import recipe_for
from stylecls.runfolder import RunFolder, save_checkpoint, write_json

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "NonFiniteLoss",
    "TrainConfig",
    "build_optimizer",
    "build_scheduler",
    "is_main_process",
    "param_groups",
    "resolve",
    "resume",
    "train",
    "train_all",
]

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step", "constant")
METRIC_COLUMNS = (
    "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "img_per_s", "seconds", "skipped",
)  # fmt: skip
LOG_EVERY = 10  # steps between host syncs (progress text, non-finite loss check)
PLAIN_LOG_SECONDS = 60.0  # without a terminal, a progress line at most this often within an epoch

console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160)


class NonFiniteLoss(StyleclsError):
    """The loss became NaN or infinite; the run stops and keeps its last good checkpoint."""


@dataclass
class TrainConfig:
    """Every setting of a run. ``None`` means "the dataset's recipe" (see :mod:`stylecls.recipes`)
    or, for the device-dependent switches, "on for CUDA, off for the CPU"."""

    dataset: str = "demo"
    block: str = "none"
    arch: str | None = None
    block_options: dict[str, Any] = field(default_factory=dict)
    pretrained: str | None = None  # "imagenet" or a path to a state dict
    data_root: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)  # extra catalog options (e.g. wikiart task)
    protocol: str = "auto"  # auto | single | lodo | multi-domain
    test_domain: str | None = None
    split: int | None = None  # DTD's official split 1..10
    img_size: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    optimizer: str | None = None  # sgd | adamw
    momentum: float = 0.9
    schedule: str | None = None  # cosine | step | constant (per iteration, after a linear warmup)
    warmup_epochs: int | None = None
    label_smoothing: float | None = None
    min_crop: float | None = None  # smallest RandomResizedCrop area fraction (augmentation strength)
    norm_bias_decay: bool = True  # False: no weight decay on BatchNorm and bias parameters either
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool | None = None
    compile: bool = False
    channels_last: bool | None = None
    sync_bn: bool = False
    workers: int | None = None
    skip_bad: bool = False
    limit_train: int | None = None  # a seeded subset of the training rows (quick experiments, tests)
    limit_val: int | None = None
    out: str = "runs"
    name: str | None = None
    progress: bool | None = None  # rich progress bar; None: when printing to a terminal


def resolve(config: TrainConfig) -> TrainConfig:
    """Fill every unset field from the dataset's recipe and check the names (no data is read)."""
    from stylecls.blocks import BLOCKS
    from stylecls.data import DATASETS
    from stylecls.models import ARCHS

    if config.dataset not in DATASETS:
        raise unknown_name("dataset", config.dataset, DATASETS)
    recipe = recipe_for(config.dataset)
    optimizer = config.optimizer or recipe.optimizer
    if optimizer not in OPTIMIZERS:
        raise unknown_name("optimizer", optimizer, OPTIMIZERS)
    adamw = optimizer == "adamw" and recipe.optimizer != "adamw"
    cfg = replace(
        config,
        arch=config.arch or recipe.arch,
        img_size=config.img_size or recipe.img_size,
        epochs=config.epochs if config.epochs is not None else recipe.epochs,
        batch_size=config.batch_size or recipe.batch_size,
        optimizer=optimizer,
        lr=config.lr if config.lr is not None else (recipe.adamw_lr if adamw else recipe.lr),
        weight_decay=config.weight_decay if config.weight_decay is not None
        else (recipe.adamw_weight_decay if adamw else recipe.weight_decay),
        schedule=config.schedule or recipe.schedule,
        warmup_epochs=config.warmup_epochs if config.warmup_epochs is not None else recipe.warmup_epochs,
        label_smoothing=config.label_smoothing if config.label_smoothing is not None else recipe.label_smoothing,
        min_crop=config.min_crop if config.min_crop is not None else recipe.min_crop,
        block_options=dict(config.block_options),
        data_options=dict(config.data_options),
    )  # fmt: skip
    if cfg.arch not in ARCHS:
        raise unknown_name("arch", cfg.arch, ARCHS)
    if cfg.block not in BLOCKS:
        raise unknown_name("block", cfg.block, BLOCKS)
    if cfg.schedule not in SCHEDULES:
        raise unknown_name("schedule", cfg.schedule, SCHEDULES)
    for name in ("img_size", "epochs", "batch_size"):
        if getattr(cfg, name) < 1:
            raise StyleclsError(f"{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    rules = [
        ("lr", cfg.lr, cfg.lr > 0, "> 0"),
        ("weight-decay", cfg.weight_decay, cfg.weight_decay >= 0, ">= 0"),
        ("label-smoothing", cfg.label_smoothing, 0 <= cfg.label_smoothing < 1, "in [0, 1)"),
        ("warmup-epochs", cfg.warmup_epochs, cfg.warmup_epochs >= 0, ">= 0"),
    ]
    if bad := [f"--{name} {value} (must be {rule})" for name, value, ok, rule in rules if not ok]:
        raise StyleclsError("invalid optimisation settings: " + "; ".join(bad))
    if not 0 < cfg.min_crop <= 1:
        raise StyleclsError(f"min-crop is an area fraction in (0, 1], got {cfg.min_crop}")
    if cfg.warmup_epochs >= cfg.epochs:  # the warmup must leave at least one epoch to decay in
        cfg = replace(cfg, warmup_epochs=cfg.epochs - 1)
    return cfg


# --- optimisation ---------------------------------------------------------------------------------


def param_groups(model: nn.Module, weight_decay: float, norm_bias_decay: bool = True) -> list[dict[str, Any]]:
    """Two groups: with and without weight decay.

    SRM's parameters never decay (the paper; :func:`stylecls.blocks.no_weight_decay_names`); with
    ``norm_bias_decay=False`` neither do 1-d parameters (BatchNorm scales/shifts, biases).
    """
    from stylecls.blocks import no_weight_decay_names

    exempt = no_weight_decay_names(model)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name in exempt or (not norm_bias_decay and p.ndim <= 1):
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD with (Nesterov-free) momentum, or AdamW, over :func:`param_groups`."""
    groups = param_groups(model, cfg.weight_decay, cfg.norm_bias_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-iteration schedule: linear warmup over ``warmup_epochs``, then cosine to 0, a x0.1 step
    at 50% and 75% of training, or a constant rate. Stepped once per optimizer step."""
    from torch.optim import lr_scheduler as sched

    total = max(1, cfg.epochs * steps_per_epoch)
    warmup = min(cfg.warmup_epochs * steps_per_epoch, total - 1)
    rest = total - warmup
    if cfg.schedule == "cosine":
        main: sched.LRScheduler = sched.CosineAnnealingLR(optimizer, T_max=rest)
    elif cfg.schedule == "step":
        main = sched.MultiStepLR(optimizer, milestones=[rest // 2, rest * 3 // 4], gamma=0.1)
    else:
        main = sched.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if warmup == 0:
        return main
    ramp = sched.LinearLR(optimizer, start_factor=0.01, end_factor=1.0, total_iters=warmup)
    return sched.SequentialLR(optimizer, [ramp, main], milestones=[warmup])


# --- devices, processes, RNG ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def is_main_process() -> bool:
    """False in the torchrun processes other than rank 0 (they train but do not write or report)."""
    return _dist_from_env().main


def _dist_from_env() -> _Dist:
    """torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; without them this is a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    return _Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def _select_device(requested: str, ddp: _Dist) -> torch.device:
    req = requested.lower()
    if req == "auto":
        req = "cuda" if torch.cuda.is_available() else "cpu"
    if req == "cpu":
        return torch.device("cpu")
    if req.startswith("cuda"):
        if not torch.cuda.is_available():
            raise StyleclsError(
                f"--device {requested} asked for CUDA, but this PyTorch ({torch.__version__}) sees no CUDA GPU; "
                "use --device cpu (or auto)"
            )
        if ddp.enabled:
            return torch.device("cuda", ddp.local_rank)
        device = torch.device(req)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise StyleclsError(f"--device {requested}: only {torch.cuda.device_count()} CUDA device(s) here")
        return device
    raise unknown_name("device", requested, ("auto", "cpu", "cuda", "cuda:N"))


def _rng_state() -> dict[str, Any]:
    """Every RNG as tensors and plain lists, so ``torch.load(weights_only=True)`` reads it back."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _versions() -> dict[str, str]:
    import torchvision

    import stylecls

    return {
        "stylecls": stylecls.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
    }


# --- data -----------------------------------------------------------------------------------------


@dataclass
class _Data:
    frame: pd.DataFrame  # the rows used, with ``part``
    info: dict[str, Any]
    catalog_options: dict[str, Any]

    def part(self, name: str) -> pd.DataFrame:
        rows = self.frame[self.frame["part"] == name].reset_index(drop=True)
        rows.attrs["info"] = self.info
        return rows

    @property
    def counts(self) -> dict[str, int]:
        return {p: int((self.frame["part"] == p).sum()) for p in ("train", "val", "test")}


def _catalog_options(cfg: TrainConfig) -> dict[str, Any]:
    options = {"seed": cfg.seed, **cfg.data_options}
    if cfg.split is not None:
        options["split"] = cfg.split
    return options


def _load_data(cfg: TrainConfig) -> _Data:
    """Catalogue -> protocol parts -> the optional seeded subsets of train/val."""
    from stylecls.data import catalog, protocol_parts

    options = _catalog_options(cfg)
    try:
        frame = catalog(cfg.dataset, cfg.data_root, **options)
    except StyleclsError as e:
        raise StyleclsError(f"{e} (`stylecls data check --dataset {cfg.dataset}` says what is there)") from None
    parts = protocol_parts(frame, cfg.protocol, cfg.test_domain)
    info = parts.attrs["info"]
    keep = []
    for name, limit in (("train", cfg.limit_train), ("val", cfg.limit_val), ("test", None)):
        rows = parts[parts["part"] == name]
        if limit is not None and limit < len(rows):
            rows = rows.sample(n=limit, random_state=cfg.seed).sort_index()
        keep.append(rows)
    used = pd.concat(keep).sort_index().reset_index(drop=True)
    return _Data(used, info, options)


def _data_root(info: dict[str, Any]) -> Path:
    return Path(info.get("data_root") or info.get("root") or ".")


def _write_split(path: Path, data: _Data) -> None:
    """split.csv: the exact rows, paths relative to the data root when inside it."""
    root = _data_root(data.info).resolve()
    rows = data.frame[["path", "label", "class_name", "domain", "split", "part"]].copy()

    def rel(p: str) -> str:
        q = Path(p)
        try:
            return q.resolve().relative_to(root).as_posix()
        except ValueError:
            return str(q)

    rows["path"] = rows["path"].map(rel)
    tmp = path.with_suffix(".csv.tmp")
    rows.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _read_split(folder: RunFolder, config: dict[str, Any]) -> _Data:
    """The rows a run trained on, from its split.csv (resume never re-splits)."""
    if not folder.split_path.is_file():
        raise StyleclsError(f"{folder.path} has no {folder.split_path.name}; it cannot be resumed")
    info = config["data"]["info"]
    root = Path(config["data"]["root"])
    frame = pd.read_csv(folder.split_path, dtype={"path": str, "class_name": str, "domain": str})
    frame["path"] = [str(p if Path(p).is_absolute() else root / p) for p in frame["path"]]
    missing = [p for p in frame["path"].head(50) if not Path(p).is_file()]
    if missing:
        raise StyleclsError(
            f"the images of {folder.path} are gone (e.g. {missing[0]}); the run's data root was {root}. "
            f"`stylecls data check --dataset {config['data']['dataset']}` says what is there"
        )
    frame.attrs["info"] = info
    return _Data(frame, info, config["data"].get("options", {}))


# --- the run --------------------------------------------------------------------------------------


def _default_name(cfg: TrainConfig, stamp: str) -> str:
    parts = [cfg.dataset, cfg.arch, cfg.block] + ([cfg.test_domain] if cfg.test_domain else [])
    return "-".join([*parts, stamp]).replace(" ", "_")


def _new_run_dir(cfg: TrainConfig, stamp: str) -> Path:
    out = Path(cfg.out)
    if cfg.name:
        path = out / cfg.name
        if path.exists() and (path / "config.json").exists():
            raise StyleclsError(f"{path} already holds a run; resume it with --resume {path} or pick another --name")
        if path.exists() and any(path.iterdir()):
            raise StyleclsError(f"{path} exists and is not empty; pick another --name or --out")
        return path
    base = out / _default_name(cfg, stamp)
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _print_settings(cfg: TrainConfig, data: _Data, run_dir: Path, device: torch.device, extra: dict[str, Any]) -> None:
    info = data.info
    console.print(f"[bold]stylecls train[/] -> {run_dir}")
    counts = data.counts
    console.print(
        f"  data     {cfg.dataset} ({info.get('data_root')}), protocol {info.get('protocol')}"
        + (f", test domain {info.get('test_domain')}" if info.get("test_domain") else "")
        + (f", split {cfg.split}" if cfg.split else "")
        + f"; {len(info.get('classes', []))} classes; train {counts['train']:,} / val {counts['val']:,}"
        f" / test {counts['test']:,} images"
    )
    console.print(
        f"  model    {cfg.arch} + {cfg.block}"
        + (f" {cfg.block_options}" if cfg.block_options else "")
        + (f", pretrained {cfg.pretrained}" if cfg.pretrained else "")
        + f", {extra['params']:,} parameters"
    )
    console.print(
        f"  recipe   {cfg.epochs} epochs, {cfg.img_size} px, batch {cfg.batch_size}, {cfg.optimizer} lr {cfg.lr:g}"
        f" wd {cfg.weight_decay:g} ({'no decay for SRM' if cfg.norm_bias_decay else 'no decay for SRM/BN/bias'}),"
        f" {cfg.schedule} with {cfg.warmup_epochs} warmup epochs, label smoothing {cfg.label_smoothing:g},"
        f" crops >= {cfg.min_crop:g} of the area, seed {cfg.seed}"
    )
    console.print(
        f"  device   {device}{' x' + str(extra['world_size']) if extra['world_size'] > 1 else ''}, amp {extra['amp']},"
        f" channels_last {extra['channels_last']}, compile {cfg.compile}, workers {extra['workers']}"
    )
    if not info.get("complete", True):
        found, expected = info.get("found", {}), info.get("expected") or {}
        console.print(
            f"  [yellow]incomplete copy of {cfg.dataset}: found {found.get('images', '?'):,} of "
            f"{expected.get('images', '?'):,} images, {found.get('classes', '?')} of {expected.get('classes', '?')} "
            "classes (recorded in config.json)[/]"
        )
    warnings = [w for w in info.get("warnings", []) if not w.startswith("incomplete copy")]
    for w in warnings[:5]:
        console.print(f"  [yellow]warning:[/] {w}")
    if len(warnings) > 5:
        console.print(f"  [yellow]... {len(warnings) - 5} more warnings in config.json[/]")


def _config_json(
    cfg: TrainConfig, data: _Data, model: nn.Module, runtime: dict[str, Any], name: str
) -> dict[str, Any]:
    info = data.info
    return {
        "name": name,
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "status": "running",
        "versions": _versions(),
        "seed": cfg.seed,
        "model": {
            "arch": cfg.arch,
            "block": cfg.block,
            "num_classes": len(info["classes"]),
            "block_options": dict(cfg.block_options),
            "pretrained": cfg.pretrained,
        },
        "data": {
            "dataset": cfg.dataset,
            "root": str(_data_root(info)),
            "options": data.catalog_options,
            "protocol": info.get("protocol"),
            "test_domain": info.get("test_domain"),
            "split": cfg.split,
            "img_size": cfg.img_size,
            "classes": list(info["classes"]),
            "domains": list(info.get("domains", [])),
            "complete": bool(info.get("complete", True)),
            "info": info,
            "counts": data.counts,
        },
        "train": {
            "epochs": cfg.epochs,
            "batch_size": cfg.batch_size,
            "lr": cfg.lr,
            "weight_decay": cfg.weight_decay,
            "norm_bias_decay": cfg.norm_bias_decay,
            "optimizer": cfg.optimizer,
            "momentum": cfg.momentum,
            "schedule": cfg.schedule,
            "warmup_epochs": cfg.warmup_epochs,
            "label_smoothing": cfg.label_smoothing,
            "min_crop": cfg.min_crop,
            "limit_train": cfg.limit_train,
            "limit_val": cfg.limit_val,
            "skip_bad": cfg.skip_bad,
            "parameters": runtime["params"],
            **{k: runtime[k] for k in ("amp", "amp_dtype", "compile", "channels_last", "workers", "device", "world_size", "sync_bn")},
        },
        "settings": asdict(cfg),  # the resolved TrainConfig, for --resume
    }


class _Trainer:
    """One run's state and loop; rank 0 owns the run folder."""

    def __init__(self, cfg: TrainConfig, data: _Data, run_dir: Path, ddp: _Dist, device: torch.device) -> None:
        from stylecls.data import ImageDataset
        from stylecls.models import build_model, count_parameters

        self.cfg, self.data, self.ddp, self.device = cfg, data, ddp, device
        self.folder = RunFolder(run_dir, must_exist=False)
        cuda = device.type == "cuda"
        self.amp = cfg.amp if cfg.amp is not None else cuda
        self.amp_dtype = torch.bfloat16 if (not cuda or torch.cuda.is_bf16_supported()) else torch.float16
        self.channels_last = cfg.channels_last if cfg.channels_last is not None else cuda
        self.workers = cfg.workers if cfg.workers is not None else _default_workers(device)
        if cfg.sync_bn and ddp.enabled and not cuda:
            raise StyleclsError("--sync-bn needs CUDA devices: SyncBatchNorm does not run on the CPU")
        if cuda:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        num_classes = len(data.info["classes"])
        self.net = build_model(cfg.arch, cfg.block, num_classes, pretrained=cfg.pretrained, **cfg.block_options)
        self.params = count_parameters(self.net)
        if cfg.sync_bn and ddp.enabled:
            self.net = nn.SyncBatchNorm.convert_sync_batchnorm(self.net)
        self.net.to(device, memory_format=torch.channels_last if self.channels_last else torch.preserve_format)
        model: nn.Module = self.net
        if ddp.enabled:
            model = nn.parallel.DistributedDataParallel(self.net, device_ids=[device.index] if cuda else None)
        if cfg.compile:
            model = torch.compile(model)
        self.model = model

        self.train_set = ImageDataset(
            data.part("train"), cfg.img_size, train=True, skip_bad=cfg.skip_bad, min_crop=cfg.min_crop
        )
        self.val_set = ImageDataset(data.part("val"), cfg.img_size, train=False, skip_bad=cfg.skip_bad)
        if len(self.val_set) == 0:
            raise StyleclsError(f"protocol {data.info.get('protocol')} leaves no validation images; model selection needs some")
        per_rank = len(self.train_set) // ddp.world_size
        self.steps_per_epoch = per_rank // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise StyleclsError(
                f"{per_rank} training images per process are fewer than one batch of {cfg.batch_size}; "
                "lower --batch-size"
            )
        self.train_sampler = None
        if ddp.enabled:
            from torch.utils.data.distributed import DistributedSampler

            self.train_sampler = DistributedSampler(
                self.train_set, ddp.world_size, ddp.rank, shuffle=True, seed=cfg.seed, drop_last=True
            )
        # validation: a disjoint shard per rank, no padding, so the reduced metrics are exact
        self.val_indices = list(range(ddp.rank, len(self.val_set), ddp.world_size))

        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.optimizer = build_optimizer(self.net, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp and self.amp_dtype == torch.float16)
        self.epoch = 0  # completed epochs
        self.best_val_acc = -1.0
        self.best_epoch = 0
        self.show_progress = ddp.main and (cfg.progress if cfg.progress is not None else console.is_terminal)

    # -- state -----------------------------------------------------------------------------------

    def runtime(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "amp": self.amp,
            "amp_dtype": str(self.amp_dtype).removeprefix("torch.") if self.amp else None,
            "compile": self.cfg.compile,
            "channels_last": self.channels_last,
            "workers": self.workers,
            "device": str(self.device),
            "world_size": self.ddp.world_size,
            "sync_bn": self.cfg.sync_bn,
        }

    def state(self) -> dict[str, Any]:
        cfg = self.cfg
        return {
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "epoch": self.epoch,
            "best_val_acc": self.best_val_acc,
            "best_epoch": self.best_epoch,
            "rng": _rng_state(),
            "arch": cfg.arch,
            "block": cfg.block,
            "num_classes": len(self.data.info["classes"]),
            "block_options": dict(cfg.block_options),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler") is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.best_val_acc = float(state["best_val_acc"])
        self.best_epoch = int(state.get("best_epoch", 0))
        _set_rng_state(state["rng"])

    def save(self, which: str) -> None:
        if self.ddp.main:
            save_checkpoint(self.state(), self.folder.checkpoint_path(which))

    # -- steps -----------------------------------------------------------------------------------

    def _inputs(self, images: torch.Tensor) -> torch.Tensor:
        from stylecls.data import normalize

        x = normalize(images.to(self.device, non_blocking=True))
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp else nullcontext()

    def _reduce(self, *values: torch.Tensor) -> list[float]:
        t = torch.stack([v.detach().double().to(self.device) for v in values])
        if self.ddp.enabled:
            dist.all_reduce(t)
        return t.tolist()

    def train_epoch(self, epoch: int) -> dict[str, float]:
        from stylecls.data import make_loader

        cfg = self.cfg
        loader = make_loader(
            self.train_set, cfg.batch_size, shuffle=True, workers=self.workers, sampler=self.train_sampler,
            drop_last=True, pin_memory=self.device.type == "cuda", seed=cfg.seed, epoch=epoch,
        )  # fmt: skip
        self.model.train()
        zero = torch.zeros((), device=self.device, dtype=torch.float64)
        loss_sum, correct, seen = zero.clone(), zero.clone(), zero.clone()
        skipped = 0
        start = last_plain = time.perf_counter()
        with self._progress(epoch) as advance:
            for step, batch in enumerate(loader, 1):
                skipped += batch.skipped
                if len(batch.labels) < 2:  # all-but-one images of the batch were unreadable
                    self.scheduler.step()
                    continue
                x = self._inputs(batch.images)
                y = batch.labels.to(self.device, non_blocking=True)
                with self._autocast():
                    logits = self.model(x)
                    loss = self.criterion(logits, y)
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.scheduler.step()
                n = y.numel()
                loss_sum += loss.detach().double() * n
                correct += (logits.detach().argmax(1) == y).sum()
                seen += n
                if step % LOG_EVERY == 0 or step == self.steps_per_epoch:
                    total_loss, total_correct, total_seen = self._reduce(loss_sum, correct, seen)
                    if not math.isfinite(total_loss):
                        raise NonFiniteLoss(self._nonfinite_message(epoch, step, total_loss))
                    elapsed = time.perf_counter() - start
                    text = (
                        f"loss {total_loss / total_seen:.4f} acc {100 * total_correct / total_seen:5.1f}% "
                        f"{total_seen / elapsed:,.0f} img/s"
                    )
                    advance(step, text)
                    if not self.show_progress and self.ddp.main and time.perf_counter() - last_plain > PLAIN_LOG_SECONDS:
                        last_plain = time.perf_counter()
                        console.print(f"  epoch {epoch}/{cfg.epochs} step {step}/{self.steps_per_epoch}: {text}")
        seconds = time.perf_counter() - start
        total_loss, total_correct, total_seen, total_skipped = self._reduce(
            loss_sum, correct, seen, torch.tensor(float(skipped))
        )
        if total_seen == 0:
            raise StyleclsError(f"epoch {epoch}: no training image could be read (see --skip-bad)")
        if not math.isfinite(total_loss):
            raise NonFiniteLoss(self._nonfinite_message(epoch, self.steps_per_epoch, total_loss))
        return {
            "train_loss": total_loss / total_seen,
            "train_acc": total_correct / total_seen,
            "img_per_s": total_seen / seconds,
            "skipped": int(total_skipped),
        }

    @torch.inference_mode()
    def validate(self) -> dict[str, float]:
        from stylecls.data import make_loader

        loader = make_loader(
            self.val_set, self.cfg.batch_size, shuffle=False, workers=self.workers, sampler=self.val_indices,
            pin_memory=self.device.type == "cuda",
        )  # fmt: skip
        net = self.net  # not the DDP wrapper: shards may differ in length, and eval needs no sync
        net.eval()
        zero = torch.zeros((), device=self.device, dtype=torch.float64)
        loss_sum, correct, seen = zero.clone(), zero.clone(), zero.clone()
        skipped = 0
        for batch in loader:
            skipped += batch.skipped
            if len(batch.labels) == 0:
                continue
            y = batch.labels.to(self.device, non_blocking=True)
            with self._autocast():
                logits = net(self._inputs(batch.images)).float()
            loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").double()
            correct += (logits.argmax(1) == y).sum()
            seen += y.numel()
        total_loss, total_correct, total_seen, total_skipped = self._reduce(
            loss_sum, correct, seen, torch.tensor(float(skipped))
        )
        if total_seen == 0:
            raise StyleclsError("no validation image could be read (see --skip-bad)")
        return {"val_loss": total_loss / total_seen, "val_acc": total_correct / total_seen, "skipped": int(total_skipped)}

    def _nonfinite_message(self, epoch: int, step: int, value: float) -> str:
        kept = f"last.pt (epoch {self.epoch})" if self.epoch else "last.pt (the initial weights)"
        return (
            f"the training loss became {value} in epoch {epoch} (by step {step}); stopped. "
            f"The last good checkpoint is kept: {self.folder.path / 'last.pt'} = {kept}. "
            f"Lower --lr (now {self.cfg.lr:g})" + (" or train without --amp" if self.amp else "") + " and start again"
        )

    @contextmanager
    def _progress(self, epoch: int) -> Iterator[Any]:
        """``advance(step, text)``: a rich bar on a terminal, nothing otherwise."""
        if not self.show_progress:
            yield lambda step, text: None
            return
        progress = Progress(
            TextColumn(f"epoch {epoch}/{self.cfg.epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[text]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        with progress:
            task = progress.add_task("train", total=self.steps_per_epoch, text="")
            yield lambda step, text: progress.update(task, completed=step, text=text)

    # -- the loop --------------------------------------------------------------------------------

    def fit(self) -> None:
        cfg = self.cfg
        for epoch in range(self.epoch + 1, cfg.epochs + 1):
            start = time.perf_counter()
            train_metrics = self.train_epoch(epoch)
            val_metrics = self.validate()
            self.epoch = epoch
            best = val_metrics["val_acc"] > self.best_val_acc
            if best:
                self.best_val_acc, self.best_epoch = val_metrics["val_acc"], epoch
            row = {
                "epoch": epoch,
                **{k: train_metrics[k] for k in ("train_loss", "train_acc")},
                "val_loss": val_metrics["val_loss"],
                "val_acc": val_metrics["val_acc"],
                "lr": self.optimizer.param_groups[0]["lr"],
                "img_per_s": train_metrics["img_per_s"],
                "seconds": time.perf_counter() - start,
                "skipped": train_metrics["skipped"] + val_metrics["skipped"],
            }
            if self.ddp.main:
                _append_metrics(self.folder.metrics_path, row)  # before the checkpoints: resume trims extras
                if best:
                    self.save("best")
                self.save("last")
                console.print(
                    f"epoch {epoch:>{len(str(cfg.epochs))}}/{cfg.epochs}  train loss {row['train_loss']:.4f} "
                    f"acc {100 * row['train_acc']:5.1f}%  val loss {row['val_loss']:.4f} acc {100 * row['val_acc']:5.1f}%"
                    f"  lr {row['lr']:.3g}  {row['img_per_s']:,.0f} img/s  {row['seconds']:.1f}s"
                    + ("  [green]best[/]" if best else "")
                    + (f"  [yellow]{row['skipped']} unreadable images skipped[/]" if row["skipped"] else "")
                )


def _default_workers(device: torch.device) -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if device.type == "cuda":
        return min(8, max(1, cpus - 1))
    return 0 if cpus <= 2 else min(4, cpus // 2)  # on the CPU the workers compete with the model


def _append_metrics(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def _trim_metrics(path: Path, epochs: int) -> None:
    """Drop rows after the checkpoint's epoch (written before a crash that beat the checkpoint)."""
    if not path.exists():
        return
    frame = pd.read_csv(path)
    kept = frame[frame["epoch"] <= epochs]
    if len(kept) != len(frame):
        tmp = path.with_suffix(".csv.tmp")
        kept.to_csv(tmp, index=False)
        os.replace(tmp, path)


def _update_config(folder: RunFolder, **changes: Any) -> None:
    config = folder.config()
    config.update(changes)
    write_json(folder.config_path, config)


@contextmanager
def _process_group(ddp: _Dist, device_hint: str) -> Iterator[None]:
    """Join torchrun's process group for the run (gloo on the CPU, NCCL on GPUs)."""
    if not ddp.enabled or dist.is_initialized():
        yield
        return
    cuda = device_hint != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(ddp.local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def _broadcast(ddp: _Dist, value: Any) -> Any:
    if not ddp.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _run(trainer: _Trainer, resumed: bool) -> Path:
    """Fit, then record how the run ended (finished / interrupted / failed)."""
    folder, ddp = trainer.folder, trainer.ddp
    if not resumed:
        trainer.save("last")  # epoch 0: an interrupt in the first epoch still leaves a resumable run
    started = time.perf_counter()
    try:
        trainer.fit()
    except KeyboardInterrupt:
        if ddp.main:
            _update_config(folder, status="interrupted")
            done = f"epoch {trainer.epoch}" if trainer.epoch else "the initial weights"
            console.print(
                f"[yellow]interrupted in epoch {trainer.epoch + 1}[/]: last.pt holds {done} "
                "(the unfinished epoch is not kept)"
            )
            console.print(f"resume with: stylecls train --resume {folder.path}")
        raise
    except BaseException:
        if ddp.main:
            _update_config(folder, status="failed")
        raise
    if ddp.main:
        config = folder.config()
        config.update(
            status="finished",
            finished=datetime.now().astimezone().isoformat(timespec="seconds"),
            best={"epoch": trainer.best_epoch, "val_acc": trainer.best_val_acc},
            seconds=round(config.get("seconds", 0.0) + time.perf_counter() - started, 1),
        )
        write_json(folder.config_path, config)
        console.print(
            f"done: best val acc {100 * trainer.best_val_acc:.1f}% at epoch {trainer.best_epoch}; "
            f"next: stylecls evaluate {folder.path}"
        )
    return folder.path


def train(config: TrainConfig) -> Path:
    """Train one run and return its folder (``<out>/<name>``).

    Under ``torchrun`` every process calls this; rank 0 writes the folder. ``protocol="lodo"``
    needs a ``test_domain`` here; :func:`train_all` loops over the domains.
    """
    cfg = resolve(config)
    if cfg.protocol == "lodo" and cfg.test_domain is None:
        raise StyleclsError("the lodo protocol trains one run per test domain: give test_domain, or call train_all()")
    ddp = _dist_from_env()
    with _process_group(ddp, cfg.device):
        device = _select_device(cfg.device, ddp)
        data = _load_data(cfg)
        _seed_everything(cfg.seed)
        stamp = _broadcast(ddp, datetime.now().strftime("%Y%m%d-%H%M%S"))
        run_dir = _new_run_dir(cfg, stamp) if ddp.main else None
        run_dir = Path(_broadcast(ddp, str(run_dir) if run_dir else None))
        trainer = _Trainer(cfg, data, run_dir, ddp, device)
        if ddp.main:
            run_dir.mkdir(parents=True, exist_ok=True)
            _print_settings(cfg, data, run_dir, device, trainer.runtime())
            if trainer.net.load_report is not None:
                console.print(f"  weights  {trainer.net.load_report.summary()}")
            write_json(trainer.folder.config_path, _config_json(cfg, data, trainer.net, trainer.runtime(), run_dir.name))
            _write_split(trainer.folder.split_path, data)
        return _run(trainer, resumed=False)


def train_all(config: TrainConfig) -> list[Path]:
    """Train every run ``config`` asks for: one per held-out domain for ``lodo`` without a test
    domain (named ``<name>-<domain>``), else the one run."""
    cfg = resolve(config)
    if cfg.protocol != "lodo" or cfg.test_domain is not None:
        return [train(config)]
    from stylecls.data import domains_of

    domains = domains_of(cfg.dataset, cfg.data_root)
    if len(domains) < 2:
        raise StyleclsError(f"{cfg.dataset} has one domain; the lodo protocol needs several")
    base = config.name or _default_name(replace(cfg, test_domain=None), datetime.now().strftime("%Y%m%d-%H%M%S"))
    return [train(replace(config, test_domain=d, name=f"{base}-{d}")) for d in domains]


def resume(run_dir: str | Path, device: str | None = None, workers: int | None = None, progress: bool | None = None) -> Path:
    """Continue a run from its ``last.pt`` with the settings it was started with.

    Only where it runs may change (``device``, ``workers``, ``progress``). A finished run is left
    as it is.
    """
    folder = RunFolder(run_dir)
    config = folder.config()
    if "settings" not in config:
        raise StyleclsError(f"{folder.path} was not written by `stylecls train` (config.json has no settings)")
    known = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in config["settings"].items() if k in known})
    cfg = replace(
        cfg,
        device=device or cfg.device,
        workers=workers if workers is not None else cfg.workers,
        progress=progress,
    )
    if not folder.checkpoint_path("last").is_file():
        raise StyleclsError(f"{folder.path} has no last.pt to resume from")
    ddp = _dist_from_env()
    with _process_group(ddp, cfg.device):
        device_ = _select_device(cfg.device, ddp)
        data = _read_split(folder, config)
        _seed_everything(cfg.seed)
        trainer = _Trainer(cfg, data, folder.path, ddp, device_)
        state = folder.load_checkpoint("last")  # on the CPU: RNG states must stay CPU tensors
        try:
            trainer.load_state(state)
        except (KeyError, RuntimeError, ValueError) as e:
            raise StyleclsError(f"{folder.checkpoint_path('last')} does not fit this run's model: {e}") from None
        if trainer.epoch >= cfg.epochs:
            if ddp.main:
                console.print(f"{folder.path} already finished its {cfg.epochs} epochs; nothing to resume")
            return folder.path
        if ddp.main:
            _trim_metrics(folder.metrics_path, trainer.epoch)
            _update_config(folder, status="running", runtime_on_resume=trainer.runtime())
            console.print(f"[bold]stylecls train[/] resuming {folder.path} after epoch {trainer.epoch} of {cfg.epochs}")
        return _run(trainer, resumed=True)
