"""A sweep's grid: the product of every repeated option, each cell one resolved :class:`RunSpec`.

Every cell is named by :meth:`RunSpec.run_name` (readable, plus the spec's digest when any recipe
value was changed), so equal specs land in the same folder and a changed spec in another.

A block option applies to the blocks of the grid that take it (``--block none --block srm
--block-option pooling=mean`` gives ``none`` and ``srm`` with mean pooling); an option no block of the
grid takes, or a bad value, is refused here, before anything runs. With a random search
(:class:`~stylecls.sweep.hparams.Search`) every cell is crossed with the trials; ``selection="lodo"`` adds,
for every run that holds a domain out, one run per training domain left out for validation
(``RunSpec.val_domain``), which leave-one-domain-out model selection needs.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from stylecls.errors import StyleclsError, unknown_name
from stylecls.spec import RunSpec
from stylecls.sweep.hparams import Search

__all__ = ["SELECTIONS", "GridAxes", "expand_grid", "lodo_runs"]

SELECTIONS = ("training-domain", "lodo")


@dataclass(frozen=True)
class GridAxes:
    """The values to cross; an empty axis keeps the base spec's value."""

    block: Sequence[str] = ()
    seed: Sequence[int] = ()
    test_domain: Sequence[str] = ()
    split: Sequence[int] = ()
    arch: Sequence[str] = ()
    block_options: Sequence[Mapping[str, Any]] = field(default_factory=tuple)  # one dict per option set
    feature_aug: Sequence[str] = ()

    def given(self) -> dict[str, list[Any]]:
        """The non-empty axes, by RunSpec field."""
        names = ("block", "seed", "test_domain", "split", "arch", "feature_aug")
        axes = {name: list(getattr(self, name)) for name in names}
        axes["block_options"] = [dict(o) for o in self.block_options]
        return {k: v for k, v in axes.items() if v}


def block_option_names(block: str) -> list[str]:
    """The options ``block`` takes (its factory's keyword parameters)."""
    from stylecls.blocks import BLOCKS, _option_names

    if block not in BLOCKS:
        raise unknown_name("block", block, BLOCKS)
    return _option_names(BLOCKS[block])


def _options_for_blocks(cells: list[dict[str, Any]], base: RunSpec) -> list[dict[str, Any]]:
    """Each cell's block options cut to what its block takes; refuse an option no block takes, and bad values."""
    from stylecls.blocks import create_block

    wanted: set[str] = set(base.block_options)
    for cell in cells:
        wanted |= set(cell.get("block_options", {}))
    blocks = {cell.get("block", base.block) for cell in cells}
    taken = {name for b in blocks for name in block_option_names(b)}
    if unused := sorted(wanted - taken):
        raise StyleclsError(f"no block of this sweep ({', '.join(sorted(blocks))}) takes the block option "
                            f"{', '.join(unused)}")
    out = []
    for cell in cells:
        block = cell.get("block", base.block)
        names = block_option_names(block)
        options = {k: v for k, v in {**base.block_options, **cell.get("block_options", {})}.items() if k in names}
        create_block(block, 16, **options)  # a bad value is refused now, not when the run starts
        out.append({**cell, "block_options": options})
    return out


def lodo_runs(spec: RunSpec, data_root: str | None = None) -> list[RunSpec]:
    """The runs leave-one-domain-out selection needs for ``spec``: one per training domain left out."""
    from stylecls.data import domains_of

    if spec.test_domain is None:
        raise StyleclsError("--selection lodo needs runs that hold a domain out (--test-domain or --protocol lodo)")
    training = [d for d in domains_of(spec.dataset, data_root) if d != spec.test_domain]
    if len(training) < 2:
        raise StyleclsError(f"--selection lodo needs 2 training domains or more; {spec.dataset} without "
                            f"{spec.test_domain} has {len(training)}")
    # a selection run has no test part (its held-out domain is left out entirely), so it records no test
    # accuracy during training; the oracle reads that only from the main runs
    return [replace(spec, val_domain=d, eval_test_every=0) for d in training]


def expand_grid(
    base: RunSpec, axes: GridAxes, data_root: str | None = None, search: Search | None = None,
    selection: str = "training-domain",
) -> list[RunSpec]:
    """Every cell of ``base`` x ``axes`` (x the search's trials), resolved, in a stable order (trials, then
    the axes' order and values given; runs for lodo selection last).

    ``protocol="lodo"`` without test domains crosses every domain of the dataset. A grid of no
    runs, or two cells that are the same run, is a :class:`StyleclsError`.
    """
    if selection not in SELECTIONS:
        raise unknown_name("selection", selection, SELECTIONS)
    given = axes.given()
    if base.protocol == "lodo" and "test_domain" not in given and base.test_domain is None:
        from stylecls.data import domains_of

        domains = domains_of(base.dataset, data_root)
        if len(domains) < 2:
            raise StyleclsError(f"{base.dataset} has one domain; the lodo protocol needs several")
        given["test_domain"] = domains
    names, values = list(given), list(given.values())
    raw = [dict(zip(names, cell, strict=True)) for cell in itertools.product(*values)]
    if not raw:
        raise StyleclsError("the sweep's grid has no runs")
    cells = _options_for_blocks(raw, base)
    unique = _drop_cut_duplicates(raw, cells)
    specs = [s.resolved() for s in (search or Search()).expand([replace(base, **c) for c in unique])]
    if selection == "lodo":
        specs += [run.resolved() for spec in specs for run in lodo_runs(spec, data_root)]
    seen: dict[str, int] = {}
    for i, spec in enumerate(specs):
        name = spec.run_name()
        if name in seen:
            raise StyleclsError(f"the grid holds the run {name} twice (a value given twice?); each run must differ")
        seen[name] = i
    return specs


def _drop_cut_duplicates(raw: list[dict[str, Any]], cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cells that became equal only because a block does not take an option set are one run; cells given
    twice stay (and are refused as a duplicate)."""
    out, kept = [], []
    for original, cell in zip(raw, cells, strict=True):
        if cell in out and original not in kept:
            continue
        out.append(cell)
        kept.append(original)
    return out
