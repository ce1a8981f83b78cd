"""What determines a result (:class:`RunSpec`) versus how it is executed (:class:`RuntimeOptions`).

A run folder's ``config.json`` stores the *resolved* spec once (every recipe default filled in),
with a ``schema_version``. Equal resolved specs name the same folder; any change to a value that can
change the result names another, so a sweep can skip, resume or start each run from the folder alone.
Runtime options (device, workers, threads, AMP, progress, where the data and runs live) never enter
the name: moving a run to a GPU does not make it another run.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from stylecls.errors import StyleclsError, unknown_name

__all__ = ["MAX_IMG_SIZE", "OPTIMIZERS", "SCHEDULES", "SCHEMA_VERSION", "RunSpec", "RuntimeOptions"]

SCHEMA_VERSION = 2
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step", "constant")
MAX_IMG_SIZE = 2048  # larger inputs are almost always a typo (100000 px tries to allocate ~30 GB)
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run's result. ``None`` fields are filled by :meth:`resolved`
    from the dataset's recipe (:mod:`stylecls.recipes`); a resolved spec has no ``None`` left
    except where ``None`` is itself a value (no test domain, no split, no pretrained weights, no limit)."""

    dataset: str = "demo"
    data_options: Mapping[str, Any] = field(default_factory=dict)  # dataset-specific (e.g. WikiArt's task)
    protocol: str = "auto"  # auto | single | lodo | multi-domain
    test_domain: str | None = None
    split: int | None = None  # DTD's official split 1..10
    arch: str | None = None
    block: str = "none"
    block_options: Mapping[str, Any] = field(default_factory=dict)
    pretrained: str | None = None  # "imagenet" or a path to a torchvision state dict
    img_size: int | None = None
    pre_resize: str | None = None  # how images are decoded and resized before augmentation (recipe: 1.125x)
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None  # sgd | adamw
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float | None = None
    norm_bias_decay: bool = True  # False: BatchNorm and bias parameters get no weight decay either
    schedule: str | None = None  # cosine | step | constant (per iteration, after a linear warmup)
    warmup_epochs: int | None = None
    label_smoothing: float | None = None
    min_crop: float | None = None  # smallest RandomResizedCrop area fraction (augmentation strength)
    seed: int = 0
    skip_bad: bool = False  # drop undecodable images (counted) instead of stopping
    limit_train: int | None = None  # a seeded subset of the training rows (quick experiments)
    limit_val: int | None = None
    eval_test_every: int = 0  # record held-out accuracy every N epochs (never used for selection)
    # a sweep's random search (stylecls.sweep.hparams): the trial whose drawn values this spec holds
    trial: int | None = None
    hparams_seed: int | None = None
    # leave-one-domain-out model selection: this training domain is left out of training and validates
    val_domain: str | None = None
    block_init: str = "paper"  # how blocks start: paper | identity (gates exactly 1: a pretrained net unchanged)
    bn: str = "train"  # the backbone's BatchNorm in training: train | frozen (running stats kept, affine trained)
    feature_aug: str = "none"  # style augmentation after the early stages: none | mixstyle | efdmix | dsu

    def resolved(self) -> RunSpec:
        """Fill every unset field from the dataset's recipe and check every value (no data is read)."""
        return resolve(self)

    # -- identity ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, in field order."""
        out = asdict(self)
        out["data_options"] = {k: _plain(x) for k, x in sorted(self.data_options.items())}
        out["block_options"] = {k: _plain(x) for k, x in sorted(self.block_options.items())}
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RunSpec:
        """The spec stored in a config.json; unknown keys are an error (a newer stylecls wrote it)."""
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(values) - known):
            raise StyleclsError(f"the run spec has settings this stylecls does not know: {', '.join(unknown)}")
        return cls(**dict(values))

    def digest(self, length: int = 8) -> str:
        """A short, stable hash of every value: equal specs, equal digests."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:length]

    def run_name(self) -> str:
        """A readable, unique folder name, e.g. ``pacs-resnet18-srm-sketch-s2``.

        The readable part names the dataset, task, backbone, block (+ options), held-out domain,
        split and seed; when any other value differs from the dataset's recipe, the spec's digest
        is appended, so a changed spec never lands in a finished run's folder.
        """
        parts = [self.dataset, *(str(x) for x in self.data_options.values()), str(self.arch), self.block]
        parts += [f"{k}{_plain(x)}" for k, x in sorted(self.block_options.items())]
        if self.feature_aug != "none":
            parts.append(self.feature_aug)
        if self.test_domain:
            parts.append(self.test_domain)
        if self.val_domain:
            parts.append(f"val_{self.val_domain}")
        if self.trial is not None:
            parts.append(f"t{self.trial}")
        if self.split is not None:
            parts.append(f"split{self.split}")
        parts.append(f"s{self.seed}")
        name = "-".join(re.sub(r"[^A-Za-z0-9_.+]+", "_", p) for p in parts)
        if self != self.with_recipe_defaults():
            name += f"-{self.digest()}"
        return name

    def with_recipe_defaults(self) -> RunSpec:
        """This spec with every recipe-covered value reset to the recipe (what the readable name says)."""
        bare = RunSpec(
            dataset=self.dataset, data_options=self.data_options, protocol=self.protocol,
            test_domain=self.test_domain, split=self.split, arch=self.arch, block=self.block,
            block_options=self.block_options, seed=self.seed, trial=self.trial, hparams_seed=self.hparams_seed,
            val_domain=self.val_domain, feature_aug=self.feature_aug,
        )  # fmt: skip
        return bare.resolved() if self.arch is not None else bare

    def differences(self, other: RunSpec) -> dict[str, tuple[Any, Any]]:
        """``{field: (mine, theirs)}`` for every value that differs."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if a[k] != b[k]}

    def summary(self) -> str:
        """One line for tables: protocol, domain/split, seed."""
        where = self.test_domain or (f"split {self.split}" if self.split is not None else self.protocol)
        where = "" if where == "auto" else f" {where}"  # the dataset's own protocol: nothing to add
        where += f" (val {self.val_domain})" if self.val_domain else ""
        trial = f" trial {self.trial}" if self.trial is not None else ""
        return f"{self.dataset} {self.arch}+{self.block}{where}{trial} seed {self.seed}"


def resolve(spec_: RunSpec) -> RunSpec:
    """:meth:`RunSpec.resolved`: the recipe fills what is unset; names and ranges are checked."""
    from stylecls.blocks import BLOCKS
    from stylecls.data import DATASETS, PROTOCOLS
    from stylecls.models import ARCHS
    from stylecls.recipes import recipe_for

    if spec_.dataset not in DATASETS:
        raise unknown_name("dataset", spec_.dataset, DATASETS)
    recipe = recipe_for(spec_.dataset)
    optimizer = spec_.optimizer or recipe.optimizer
    if optimizer not in OPTIMIZERS:
        raise unknown_name("optimizer", optimizer, OPTIMIZERS)
    adamw = optimizer == "adamw" and recipe.optimizer != "adamw"

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    spec = replace(
        spec_,
        arch=spec_.arch or recipe.arch,
        img_size=pick(spec_.img_size, recipe.img_size),
        epochs=pick(spec_.epochs, recipe.epochs),
        batch_size=pick(spec_.batch_size, recipe.batch_size),
        optimizer=optimizer,
        lr=pick(spec_.lr, recipe.adamw_lr if adamw else recipe.lr),
        weight_decay=pick(spec_.weight_decay, recipe.adamw_weight_decay if adamw else recipe.weight_decay),
        schedule=spec_.schedule or recipe.schedule,
        warmup_epochs=pick(spec_.warmup_epochs, recipe.warmup_epochs),
        label_smoothing=pick(spec_.label_smoothing, recipe.label_smoothing),
        min_crop=pick(spec_.min_crop, recipe.min_crop),
        pre_resize=spec_.pre_resize or recipe.pre_resize,
        data_options=dict(spec_.data_options),
        block_options=dict(spec_.block_options),
    )
    if spec.arch not in ARCHS:
        raise unknown_name("arch", str(spec.arch), ARCHS)
    if spec.block not in BLOCKS:
        raise unknown_name("block", spec.block, BLOCKS)
    if spec.protocol not in ("auto", *PROTOCOLS):
        raise unknown_name("protocol", spec.protocol, ("auto", *PROTOCOLS))
    if spec.schedule not in SCHEDULES:
        raise unknown_name("schedule", str(spec.schedule), SCHEDULES)
    _check_model_names(spec)
    _check_values(spec)
    from stylecls.data.pixels import Pixels

    Pixels(int(spec.img_size), str(spec.pre_resize))  # type: ignore[arg-type]  # an unknown rule is refused here
    if spec.warmup_epochs >= spec.epochs:  # type: ignore[operator]  # leave at least one epoch to decay in
        spec = replace(spec, warmup_epochs=spec.epochs - 1)  # type: ignore[operator]
    return spec

def _check_model_names(spec: RunSpec) -> None:
    """block_init, bn and feature_aug are names from their registries; an identity start the block cannot
    make (a parameter-free gate) is refused here, before a run folder is claimed."""
    from stylecls.blocks import BLOCK_INITS, create_block
    from stylecls.models import BN_MODES, FEATURE_AUGS

    if spec.block_init not in BLOCK_INITS:
        raise unknown_name("block init", spec.block_init, BLOCK_INITS)
    if spec.bn not in BN_MODES:
        raise unknown_name("bn mode", spec.bn, BN_MODES)
    if spec.feature_aug not in FEATURE_AUGS:
        raise unknown_name("feature augmentation", spec.feature_aug, FEATURE_AUGS)
    if spec.block_init != "paper":
        create_block(spec.block, 16, spec.block_init, **spec.block_options)


def _check_values(spec_: RunSpec) -> None:
    """Every numeric setting in its range; all the bad ones named in one message."""
    v: dict[str, Any] = {f.name: getattr(spec_, f.name) for f in fields(spec_)}
    rules = [
        ("img-size", v["img_size"], 8 <= v["img_size"] <= MAX_IMG_SIZE, f"in [8, {MAX_IMG_SIZE}]"),
        ("epochs", v["epochs"], v["epochs"] >= 1, ">= 1"),
        ("batch-size", v["batch_size"], v["batch_size"] >= 1, ">= 1"),
        ("lr", v["lr"], v["lr"] > 0, "> 0"),
        ("momentum", v["momentum"], 0 <= v["momentum"] < 1, "in [0, 1)"),
        ("weight-decay", v["weight_decay"], v["weight_decay"] >= 0, ">= 0"),
        ("label-smoothing", v["label_smoothing"], 0 <= v["label_smoothing"] < 1, "in [0, 1)"),
        ("warmup-epochs", v["warmup_epochs"], v["warmup_epochs"] >= 0, ">= 0"),
        ("min-crop", v["min_crop"], 0 < v["min_crop"] <= 1, "an area fraction in (0, 1]"),
        ("seed", v["seed"], 0 <= v["seed"] <= MAX_SEED, f"in [0, {MAX_SEED}]"),
        ("eval-test-every", v["eval_test_every"], v["eval_test_every"] >= 0, ">= 0 (0: off)"),
    ]
    if v["val_domain"] is not None and (v["test_domain"] is None or v["val_domain"] == v["test_domain"]):
        rules.append(("val-domain", v["val_domain"], False, "a training domain: another than a given --test-domain"))
    for name in ("trial", "hparams_seed"):
        if v[name] is not None:
            rules.append((name.replace("_", "-"), v[name], v[name] >= 0, ">= 0"))
    for name in ("limit_train", "limit_val", "split"):
        if v[name] is not None:
            rules.append((name.replace("_", "-"), v[name], v[name] >= 1, ">= 1"))
    if bad := [f"--{name} {value} (must be {rule})" for name, value, ok, rule in rules if not ok]:
        raise StyleclsError("invalid settings: " + "; ".join(bad))


def _plain(value: Any) -> Any:
    """Options as JSON-stable plain values (paths as strings)."""
    return str(value) if isinstance(value, Path) else value


@dataclass(frozen=True)
class RuntimeOptions:
    """How and where a run executes; none of it changes the result it converges to on one machine."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N
    workers: int | None = None  # data-loading processes (None: by device)
    threads: int | None = None  # torch intra-op threads (None: PyTorch's default)
    amp: bool | None = None  # None: on for CUDA
    channels_last: bool | None = None  # None: on for CUDA
    compile: bool = False
    sync_bn: bool = False
    progress: bool | None = None  # rich progress bar; None: when printing to a terminal
    tensorboard: bool | None = None  # None: $STYLECLS_TENSORBOARD
    data_root: str | None = None
    out: str = "runs"
    name: str | None = None

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 0:
            raise StyleclsError(f"--workers must be >= 0, got {self.workers}")
        if self.threads is not None and self.threads < 1:
            raise StyleclsError(f"--threads must be >= 1, got {self.threads}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RuntimeOptions:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
