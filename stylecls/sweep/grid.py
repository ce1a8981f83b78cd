"""A sweep's grid: the product of every repeated option, each cell one resolved :class:`RunSpec`.

Every cell is named by :meth:`RunSpec.run_name` (readable, plus the spec's digest when any recipe
value was changed), so equal specs land in the same folder and a changed spec in another.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from stylecls.errors import StyleclsError
from stylecls.spec import RunSpec

__all__ = ["GridAxes", "expand_grid"]


@dataclass(frozen=True)
class GridAxes:
    """The values to cross; an empty axis keeps the base spec's value."""

    block: Sequence[str] = ()
    seed: Sequence[int] = ()
    test_domain: Sequence[str] = ()
    split: Sequence[int] = ()
    arch: Sequence[str] = ()
    block_options: Sequence[Mapping[str, Any]] = field(default_factory=tuple)  # one dict per option set

    def given(self) -> dict[str, list[Any]]:
        """The non-empty axes, by RunSpec field."""
        axes = {name: list(getattr(self, name)) for name in ("block", "seed", "test_domain", "split", "arch")}
        axes["block_options"] = [dict(o) for o in self.block_options]
        return {k: v for k, v in axes.items() if v}


def expand_grid(base: RunSpec, axes: GridAxes, data_root: str | None = None) -> list[RunSpec]:
    """Every cell of ``base`` x ``axes``, resolved, in a stable order (the axes' order, then values given).

    ``protocol="lodo"`` without test domains crosses every domain of the dataset. A grid of no
    runs, or two cells that are the same run, is a :class:`StyleclsError`.
    """
    given = axes.given()
    if base.protocol == "lodo" and "test_domain" not in given and base.test_domain is None:
        from stylecls.data import domains_of

        domains = domains_of(base.dataset, data_root)
        if len(domains) < 2:
            raise StyleclsError(f"{base.dataset} has one domain; the lodo protocol needs several")
        given["test_domain"] = domains
    names, values = list(given), list(given.values())
    specs = [replace(base, **dict(zip(names, cell, strict=True))).resolved() for cell in itertools.product(*values)]
    if not specs:
        raise StyleclsError("the sweep's grid has no runs")
    seen: dict[str, int] = {}
    for i, spec in enumerate(specs):
        name = spec.run_name()
        if name in seen:
            raise StyleclsError(f"the grid holds the run {name} twice (a value given twice?); each run must differ")
        seen[name] = i
    return specs
