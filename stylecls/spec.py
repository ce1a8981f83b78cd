"""What determines a result (:class:`RunSpec`) versus how it is executed (:class:`RuntimeOptions`).

A run folder's record stores the *resolved* spec once (every recipe default filled in),
with a ``schema_version``. Equal resolved specs name the same folder; any change to a value that can
change the result names another, so a sweep can skip, resume or start each run from the folder alone.
Runtime options (device, workers, threads, AMP, progress, where the data and runs live) never enter
the name: moving a run to a GPU does not make it another run.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from stylecls.errors import StyleclsError, unknown_name
from stylecls.settings import check_ranges, setting, settings_of

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
    except where ``None`` is itself a value (no test domain, no split, no pretrained weights, no limit).

    Each field's :func:`~stylecls.settings.setting` is its ``train``/``sweep`` option (help, flag,
    range, choices, recipe default, sweep role): a new hyper-parameter is one field here.
    """

    dataset: str = field(default="demo", metadata=setting("Dataset.", short="-d", registry="stylecls.data:DATASETS"))
    data_options: Mapping[str, Any] = field(  # dataset-specific; the CLI sets WikiArt's task
        default_factory=dict, metadata=setting("WikiArt task: style, genre or artist.", flag="--task")
    )
    protocol: str = field(default="auto", metadata=setting("Evaluation protocol.", registry="stylecls.data:PROTOCOLS"))
    test_domain: str | None = field(default=None, metadata=setting(
        "Domain held out of training and tested on (leave-one-domain-out).", sweep="axis",
        axis_help="Held-out domain(s) to cross; --protocol lodo without it: all.",
    ))  # fmt: skip
    split: int | None = field(default=None, metadata=setting(
        "DTD official split index, 1..10.", min=1, sweep="axis", axis_help="DTD official split index(es) to cross.",
    ))  # fmt: skip
    arch: str | None = field(default=None, metadata=setting(
        "Backbone.", short="-a", registry="stylecls.models:ARCHS", recipe=True, sweep="axis",
        axis_help="Backbone(s) to cross (default: the dataset's recipe).",
    ))  # fmt: skip
    block: str = field(default="none", metadata=setting(
        "Recalibration block.", short="-b", registry="stylecls.blocks:BLOCKS", sweep="axis",
        axis_help="Block(s) to cross.",
    ))  # fmt: skip
    block_options: Mapping[str, Any] = field(default_factory=dict, metadata=setting(
        "Block option KEY=VALUE (repeatable), e.g. pooling=mean.", flag="--block-option", sweep="axis",
        axis_help="A block option set KEY=VALUE[,KEY=VALUE] (repeat to cross several sets); each option applies "
        "to the blocks that take it, one no block takes is refused.",
    ))  # fmt: skip
    pretrained: str | None = field(default=None, metadata=setting("imagenet or a path to a state dict."))
    img_size: int | None = field(
        default=None, metadata=setting("Training image size.", min=8, max=MAX_IMG_SIZE, recipe=True)
    )
    pre_resize: str | None = field(default=None, metadata=setting(
        "Decode-time resize before augmentation: a factor of --img-size for the shorter side (the recipes': "
        "1.125x; the demo's: original), or original.", recipe=True,
    ))  # fmt: skip
    epochs: int | None = field(default=None, metadata=setting("Epochs.", min=1, recipe=True))
    batch_size: int | None = field(
        default=None, metadata=setting("Images per step and process.", min=1, recipe=True)
    )
    optimizer: str | None = field(
        default=None, metadata=setting("sgd (with --momentum) or adamw.", choices=OPTIMIZERS, recipe=True)
    )
    lr: float | None = field(default=None, metadata=setting("Peak learning rate.", above=0, recipe=True))
    momentum: float = field(default=0.9, metadata=setting("SGD momentum.", min=0, below=1))
    weight_decay: float | None = field(
        default=None, metadata=setting("Weight decay (never on SRM's parameters).", min=0, recipe=True)
    )
    norm_bias_decay: bool = field(default=True, metadata=setting(
        "Weight decay on BatchNorm and bias parameters."
    ))  # fmt: skip
    schedule: str | None = field(default=None, metadata=setting(
        "Learning-rate schedule per iteration, after a linear warmup.", choices=SCHEDULES, recipe=True,
    ))  # fmt: skip
    warmup_epochs: int | None = field(default=None, metadata=setting("Linear warmup epochs.", min=0, recipe=True))
    label_smoothing: float | None = field(
        default=None, metadata=setting("Label smoothing.", min=0, below=1, recipe=True)
    )
    min_crop: float | None = field(default=None, metadata=setting(
        "Smallest random crop, as an area fraction (augmentation strength).", above=0, max=1, recipe=True,
    ))  # fmt: skip
    seed: int = field(default=0, metadata=setting(
        "Seed of the weights, the order and the augmentation.", min=0, max=MAX_SEED, sweep="axis",
        axis_help="Seed(s) to cross (default: 0).",
    ))  # fmt: skip
    skip_bad: bool = field(default=False, metadata=setting("Drop undecodable images (counted) instead of stopping."))
    limit_train: int | None = field(default=None, metadata=setting("Train on a seeded subset of N images.", min=1))
    limit_val: int | None = field(default=None, metadata=setting("Validate on a seeded subset of N images.", min=1))
    eval_test_every: int = field(default=0, metadata=setting(
        "Record held-out accuracy every N epochs (never used to select; 0: off).", min=0,
    ))  # fmt: skip
    # a sweep's random search (stylecls.sweep.hparams): the trial whose drawn values this spec holds
    trial: int | None = field(default=None, metadata=setting("Random-search trial.", min=0, internal=True))
    hparams_seed: int | None = field(default=None, metadata=setting("Random-search seed.", min=0, internal=True))
    # leave-one-domain-out model selection: this training domain is left out of training and validates
    val_domain: str | None = field(default=None, metadata=setting(
        "Training domain left out of training to validate on (lodo model selection).", internal=True,
    ))  # fmt: skip
    # how inserted blocks start: paper | identity (gates exactly 1, so a pretrained backbone keeps its function)
    block_init: str = field(default="paper", metadata=setting(
        "How the blocks start: paper (each paper's init; SRM's gates start at 0.5) or identity (every gate "
        "exactly 1: a pretrained backbone computes its own function before training).", choices=("paper", "identity"),
    ))  # fmt: skip
    # the backbone's BatchNorm while training: train | frozen (running statistics kept, affine trained)
    bn: str = field(default="train", metadata=setting(
        "Backbone BatchNorm in training: train, or frozen (running statistics used and kept, weight and bias "
        "trained; the blocks' own BatchNorm always trains).", choices=("train", "frozen"),
    ))  # fmt: skip
    # a style augmentation after the early stages, in training only: none | mixstyle | efdmix | dsu
    feature_aug: str = field(default="none", metadata=setting(
        "Style augmentation after the early stages, in training only: mixstyle, efdmix or dsu.",
        registry="stylecls.models:FEATURE_AUGS", sweep="axis",
        axis_help="Style augmentation(s) to cross (none, mixstyle, efdmix, dsu), like blocks.",
    ))  # fmt: skip
    # how training batches are drawn (stylecls.train.sampler): random | domain-balanced
    sampler: str = field(default="random", metadata=setting(
        "How training batches are drawn: random, or domain-balanced (every batch holds equal numbers of images "
        "of each training domain; a remainder of batch-size / domains goes to domains drawn at random).",
        choices=("random", "domain-balanced"),
    ))  # fmt: skip

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
        """The spec stored in a run record; unknown keys are an error (a newer stylecls wrote it)."""
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(values) - known):
            raise StyleclsError(f"the run spec has settings this stylecls does not know: {', '.join(unknown)}")
        return cls(**dict(values))

    def digest(self, length: int = 8) -> str:
        """A short, stable hash of every value: equal specs, equal digests.

        A field added after schema 2 enters the hash only when it differs from its declared default,
        so adding a field (with a default that keeps the old behaviour) keeps every existing folder name.
        """
        defaults = type(self)().to_dict()
        values = {k: v for k, v in self.to_dict().items() if k in _SCHEMA2_FIELDS or v != defaults[k]}
        text = json.dumps(values, sort_keys=True, default=str)
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
        bare = type(self)(
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


#: the fields of schema 2, always in the digest; a later field is hashed only when not at its default
_SCHEMA2_FIELDS = frozenset((
    "dataset", "data_options", "protocol", "test_domain", "split", "arch", "block", "block_options", "pretrained",
    "img_size", "pre_resize", "epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay",
    "norm_bias_decay", "schedule", "warmup_epochs", "label_smoothing", "min_crop", "seed", "skip_bad",
    "limit_train", "limit_val", "eval_test_every",
))  # fmt: skip


def resolve(spec_: RunSpec) -> RunSpec:
    """:meth:`RunSpec.resolved`: the recipe fills what is unset; names and ranges are checked."""
    from stylecls.recipes import recipe_for

    recipe = recipe_for(spec_.dataset)  # an unknown dataset is refused below, with the other names
    adamw = spec_.optimizer == "adamw" and recipe.optimizer != "adamw"
    settings = settings_of(type(spec_))
    filled = {
        name: getattr(recipe, f"adamw_{name}" if adamw and name in ("lr", "weight_decay") else name)
        for name, s in settings.items() if s.recipe and getattr(spec_, name) is None
    }  # fmt: skip
    spec = replace(spec_, **filled, data_options=dict(spec_.data_options), block_options=dict(spec_.block_options))
    for name, s in settings.items():
        value = getattr(spec, name)
        valid = _names(s.registry) if s.registry else s.choices
        if valid and value not in valid:
            raise unknown_name(name.replace("_", " "), str(value), valid)
    bad = check_ranges(spec)
    if spec.val_domain is not None and spec.test_domain in (None, spec.val_domain):
        bad.append(f"--val-domain {spec.val_domain} (must be a training domain: another than a given --test-domain)")
    if bad:
        raise StyleclsError("invalid settings: " + "; ".join(bad))
    if spec.bn == "frozen" and spec.pretrained is None:
        raise StyleclsError("--bn frozen keeps the backbone's pretrained BatchNorm statistics; it needs --pretrained "
                            "(from scratch they would stay at their initial 0 and 1)")
    if spec.block_init != "paper":  # a start the block cannot make (a parameter-free gate) is refused before a run
        from stylecls.blocks import create_block

        create_block(spec.block, 16, spec.block_init, **spec.block_options)
    from stylecls.data.pixels import Pixels

    Pixels(int(spec.img_size), str(spec.pre_resize))  # type: ignore[arg-type]  # an unknown rule is refused here
    if spec.warmup_epochs >= spec.epochs:  # type: ignore[operator]  # leave at least one epoch to decay in
        spec = replace(spec, warmup_epochs=spec.epochs - 1)  # type: ignore[operator]
    return spec


def _names(registry: str) -> list[str]:
    """The names in a registry ``"module:ATTRIBUTE"`` (importing it)."""
    module, _, attribute = registry.partition(":")
    return sorted(getattr(importlib.import_module(module), attribute))


def _plain(value: Any) -> Any:
    """Options as JSON-stable plain values (paths as strings)."""
    return str(value) if isinstance(value, Path) else value


@dataclass(frozen=True)
class RuntimeOptions:
    """How and where a run executes; none of it changes the result it converges to on one machine."""

    device: str = field(default="auto", metadata=setting("auto (CUDA when present), cpu, cuda, cuda:1 ..."))
    workers: int | None = field(default=None, metadata=setting("Data-loading processes (default: by device).", min=0))
    threads: int | None = field(default=None, metadata=setting("CPU threads for the model (default: all).", min=1))
    amp: bool | None = field(default=None, metadata=setting("Mixed precision (default: on for CUDA)."))
    channels_last: bool | None = field(default=None, metadata=setting("Channels-last layout (default: on for CUDA)."))
    compile: bool = field(default=False, metadata=setting("torch.compile the model."))
    sync_bn: bool = field(default=False, metadata=setting("SyncBatchNorm across torchrun processes (CUDA)."))
    progress: bool | None = field(default=None, metadata=setting("Progress bar (default: on a terminal)."))
    tensorboard: bool | None = field(
        default=None, metadata=setting("Also log to RUN/tb/ (default: $STYLECLS_TENSORBOARD=1).")
    )
    data_root: str | None = field(
        default=None, metadata=setting("Data root (default: $STYLECLS_DATA or ./datasets).")
    )
    out: str = field(default="runs", metadata=setting("Folder of run folders.", short="-o", sweep="train-only"))
    name: str | None = field(default=None, metadata=setting(
        "Run folder name (default: the spec's, e.g. demo-cifar_resnet20-srm-s0; -2, -3 if taken).",
        sweep="train-only",
    ))  # fmt: skip

    def __post_init__(self) -> None:
        if bad := check_ranges(self):
            raise StyleclsError("invalid settings: " + "; ".join(bad))
        for flag, value in (("--name", self.name), ("--out", self.out)):
            if value is not None and any(unicodedata.category(c) == "Cc" for c in value):
                raise StyleclsError(f"{flag} {value!r} holds a control character (newline, tab ...); use another")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> RuntimeOptions:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
