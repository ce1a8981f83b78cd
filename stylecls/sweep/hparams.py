"""Random hyper-parameter search with an equal budget for every block (DomainBed's protocol).

The search space is data: :data:`SHARED` (every block draws these, per dataset centred on its recipe in
:mod:`stylecls.recipes`, with :data:`DATASET_RANGES` where a dataset needs its own), and :data:`BLOCK_RANGES`
(values only a block has). Our recipes train from scratch on a CPU, so the ranges are not DomainBed's
fine-tuning ones (lr 10^U(-5,-3.5) ...): a decade of learning rate and two of weight decay around the recipe.

Trial ``t`` draws each shared value from a stream seeded by ``(hparams_seed, t, name)``, the same for every
block, so runs pair across blocks by (trial, seed); a block's own values come from ``(hparams_seed, t, block,
name)``. One stream per value means fixing one (``--lr 0.05``) never shifts the draws of the others.
A value given on the command line is never drawn; a drawn batch larger than ``--limit-train`` is cut to it.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import stats

from stylecls.errors import StyleclsError, unknown_name
from stylecls.spec import RunSpec

__all__ = ["BLOCK_RANGES", "DATASET_RANGES", "HPARAMS", "SHARED", "Range", "Search", "search_space"]

HPARAMS = ("default", "random")


@dataclass(frozen=True)
class Range:
    """One searched value: a RunSpec field (shared) or a block option (block-specific).

    ``log-uniform`` and ``uniform`` take ``low``/``high`` (times the recipe's value when ``relative``);
    ``integer`` rounds a draw down (DomainBed's ``int(2**U(a, b))`` batch size is log-uniform + integer);
    ``choice`` draws uniformly from ``choices``.
    """

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    relative: bool = False
    integer: bool = False
    choices: tuple[Any, ...] = ()

    def bounds(self, centre: float | None) -> tuple[float, float]:
        if not self.relative:
            return self.low, self.high
        if centre is None:
            raise StyleclsError(f"the search range of {self.name} is relative but has no recipe value")
        return self.low * centre, self.high * centre

    def distribution(self, centre: float | None = None) -> Any:
        """The frozen scipy.stats distribution (of the index, for a choice)."""
        if self.kind == "choice":
            return stats.randint(0, len(self.choices))
        low, high = self.bounds(centre)
        if self.kind == "log-uniform":
            return stats.loguniform(low, high)
        if self.kind == "uniform":
            return stats.uniform(low, high - low)
        raise unknown_name("distribution", self.kind, ("log-uniform", "uniform", "choice"))

    def sample(self, rng: np.random.Generator, centre: float | None = None) -> Any:
        draw = self.distribution(centre).rvs(random_state=rng)
        if self.kind == "choice":
            return self.choices[int(draw)]
        return int(draw) if self.integer else round(float(draw), 6)  # 6 digits: readable specs, same draw

    def describe(self, centre: float | None = None) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(map(str, self.choices))
        low, high = self.bounds(centre)
        if self.integer:
            return f"{self.kind} [{int(low)}, {int(high)}), rounded down"
        return f"{self.kind} [{low:.3g}, {high:.3g}]"


#: every block draws these; relative ranges are centred (in log scale) on the dataset's recipe value
SHARED: tuple[Range, ...] = (
    Range("lr", "log-uniform", 10**-0.5, 10**0.5, relative=True),
    Range("weight_decay", "log-uniform", 0.1, 10.0, relative=True),
    Range("batch_size", "log-uniform", 0.5, 2.0, relative=True, integer=True),
    Range("label_smoothing", "uniform", 0.0, 0.2),
    Range("min_crop", "log-uniform", 0.04, 0.25),
)

#: a dataset's own ranges, replacing the shared one of the same name
DATASET_RANGES: Mapping[str, tuple[Range, ...]] = {
    # the demo's textures lose what tells them apart below a third of the image (see its recipe)
    "demo": (Range("min_crop", "uniform", 0.25, 0.6),),
}

#: values only a block has (its options in stylecls.blocks); a block not listed has none to search
BLOCK_RANGES: Mapping[str, tuple[Range, ...]] = {
    "se": (Range("reduction", "choice", choices=(4, 8, 16, 32)),),
    # SRM's pooling is not searched: mean+std is what makes it a style block (mean alone is SE's squeeze), and a
    # search that may pick another would report an ablation under SRM's name; ask for one with --block-option
    "srm": (Range("integration", "choice", choices=("cfc", "mlp")),),
}


def search_space(dataset: str, block: str | None = None) -> tuple[list[Range], list[Range]]:
    """(shared ranges, ``block``'s own ranges) for ``dataset``."""
    from stylecls.blocks import BLOCKS
    from stylecls.data import DATASETS

    if dataset not in DATASETS:
        raise unknown_name("dataset", dataset, DATASETS)
    if block is not None and block not in BLOCKS:
        raise unknown_name("block", block, BLOCKS)
    own = {r.name: r for r in DATASET_RANGES.get(dataset, ())}
    shared = [own.get(r.name, r) for r in SHARED]
    return shared, list(BLOCK_RANGES.get(block, ())) if block else []


def recipe_value(dataset: str, name: str, optimizer: str | None = None) -> float | None:
    """The recipe's value of a shared field (the centre of a relative range); AdamW's own lr and weight
    decay where ``optimizer`` is adamw and the recipe's is not."""
    from stylecls.recipes import recipe_for

    recipe = recipe_for(dataset)
    adamw = optimizer == "adamw" and recipe.optimizer != "adamw" and name in ("lr", "weight_decay")
    value = getattr(recipe, f"adamw_{name}" if adamw else name, None)
    return float(value) if isinstance(value, int | float) else None


def _stream(*key: int | str) -> np.random.Generator:
    """A numpy Generator seeded by ``key`` (strings by their CRC-32: stable across processes and versions)."""
    return np.random.default_rng([k if isinstance(k, int) else zlib.crc32(k.encode()) for k in key])


@dataclass(frozen=True)
class Search:
    """How a sweep sets the searched values: ``default`` (the recipe, one trial) or ``random`` (N trials)."""

    mode: str = "default"
    trials: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in HPARAMS:
            raise unknown_name("--hparams mode", self.mode, HPARAMS)
        if self.trials < 1:
            raise StyleclsError(f"--trials must be >= 1, got {self.trials}")
        if self.mode == "default" and self.trials != 1:
            raise StyleclsError("--trials needs --hparams random (the default hyper-parameters are one trial)")
        if self.seed < 0:
            raise StyleclsError(f"--hparams-seed must be >= 0, got {self.seed}")

    @property
    def random(self) -> bool:
        return self.mode == "random"

    def draw(self, spec: RunSpec, trial: int) -> RunSpec:
        """``spec`` (unresolved: ``None`` = not given) with trial ``trial``'s values where none was given."""
        if not self.random:
            return spec
        shared, own = search_space(spec.dataset, spec.block)
        values: dict[str, Any] = {}
        for r in shared:
            if getattr(spec, r.name) is None:
                centre = recipe_value(spec.dataset, r.name, spec.optimizer)
                values[r.name] = r.sample(_stream(self.seed, trial, r.name), centre)
        if spec.limit_train is not None and values.get("batch_size", 0) > spec.limit_train:
            values["batch_size"] = spec.limit_train  # a quick run (--limit-train) has fewer images than the draw
        options = dict(spec.block_options)
        for r in own:
            if r.name not in options:
                options[r.name] = r.sample(_stream(self.seed, trial, spec.block, r.name))
        return replace(spec, **values, block_options=options, trial=trial, hparams_seed=self.seed)

    def expand(self, cells: Sequence[RunSpec]) -> list[RunSpec]:
        """Every cell in every trial (trial outermost), unresolved."""
        return [self.draw(cell, t) for t in range(self.trials) for cell in cells] if self.random else list(cells)


def hparams_table(dataset: str, blocks: Sequence[str] = ()) -> Any:
    """A rich table of the search space of ``dataset`` (and of ``blocks``' own values; all blocks when none)."""
    from rich.table import Table

    from stylecls.blocks import BLOCKS

    shared, _ = search_space(dataset)
    table = Table(title=f"random search for {dataset} (--hparams random): every block draws the shared values "
                  "of a trial alike")
    for column in ("value", "for", "distribution", "recipe"):
        table.add_column(column)
    for r in shared:
        centre = recipe_value(dataset, r.name)
        shown = "" if centre is None else f"{centre:g}"
        table.add_row(r.name.replace("_", "-"), "every block", r.describe(centre), shown)
    for block in blocks or list(BLOCKS):
        own = search_space(dataset, block)[1]
        for r in own:
            table.add_row(f"block option {r.name}", block, r.describe(), "")
        if blocks and not own:
            table.add_row("(none)", block, "no value of its own to search", "")
    return table
