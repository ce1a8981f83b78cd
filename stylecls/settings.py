"""What a :class:`~stylecls.spec.RunSpec` or :class:`~stylecls.spec.RuntimeOptions` field means to a user.

Each field carries one :class:`Setting` in its ``dataclasses.field(metadata=...)``: its help, its
command-line flag, its range or choices, whether the dataset's recipe fills it and how ``stylecls
sweep`` takes it. ``stylecls train`` and ``stylecls sweep`` build their options from these
(:mod:`stylecls.cli.run_options`), and :func:`check_ranges` checks the values, so a new
hyper-parameter is one field here and the code that uses it. No torch, no typer: ``--help`` stays fast.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["KEY", "Setting", "check_ranges", "setting", "settings_of"]

KEY = "stylecls"  # the metadata key of a field's Setting

#: how ``stylecls sweep`` takes a field: one value for every run, an axis (repeat the option to cross
#: several values), or not at all (``train`` only)
SweepRole = Literal["value", "axis", "train-only"]


@dataclass(frozen=True)
class Setting:
    """A field's help, flag, range, choices, recipe default and sweep role (see :func:`setting`)."""

    help: str
    flag: str = ""  # "--lr"; default: "--" + the field's name with dashes
    short: str = ""  # "-b"
    min: float | None = None  # closed bounds: min <= value <= max
    max: float | None = None
    above: float | None = None  # open bounds: above < value < below
    below: float | None = None
    choices: tuple[str, ...] = ()  # the valid values, when they are a fixed list
    registry: str = ""  # "stylecls.blocks:BLOCKS": the value is a name in this registry (read lazily)
    recipe: bool = False  # None means "the dataset's recipe value" (stylecls.recipes.Recipe has the field)
    sweep: SweepRole = "value"
    axis_help: str = ""  # the help of the sweep's repeated option (default: help + "Repeat to cross.")
    hidden: bool = False
    internal: bool = False  # set by stylecls itself (e.g. a sweep's random search): no command-line option

    def rule(self) -> str:
        """The range as words, e.g. ``in [0, 1)`` or ``>= 1``; empty without one."""
        low = ("[", ">=", self.min) if self.min is not None else ("(", ">", self.above)
        high = ("]", "<=", self.max) if self.max is not None else (")", "<", self.below)
        if low[2] is not None and high[2] is not None:
            return f"in {low[0]}{_num(low[2])}, {_num(high[2])}{high[0]}"
        if low[2] is not None:
            return f"{low[1]} {_num(low[2])}"
        return f"{high[1]} {_num(high[2])}" if high[2] is not None else ""

    def accepts(self, value: Any) -> bool:
        """``value`` is within the range (None, the unset value, always is)."""
        return value is None or not (
            (self.min is not None and value < self.min) or (self.max is not None and value > self.max)
            or (self.above is not None and value <= self.above) or (self.below is not None and value >= self.below)
        )  # fmt: skip


def setting(help: str, **details: Any) -> dict[str, Setting]:
    """A field's metadata: ``lr: float | None = field(default=None, metadata=setting("Peak LR.", above=0))``."""
    return {KEY: Setting(help, **details)}


def settings_of(cls: type) -> dict[str, Setting]:
    """``{field name: Setting}`` of a dataclass, in field order, with every flag filled in."""
    out = {}
    for f in dataclasses.fields(cls):
        if (s := f.metadata.get(KEY)) is None:
            raise TypeError(f"{cls.__name__}.{f.name} has no setting(...) in its field metadata: say how it is set")
        out[f.name] = s if s.flag else dataclasses.replace(s, flag="--" + f.name.replace("_", "-"))
    return out


def check_ranges(obj: Any) -> list[str]:
    """``--flag value (must be RULE)`` for every field of ``obj`` out of its range."""
    bad = []
    for name, s in settings_of(type(obj)).items():
        if not s.accepts(value := getattr(obj, name)):
            bad.append(f"{s.flag} {value} (must be {s.rule()})")
    return bad


def _num(x: float | None) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)
