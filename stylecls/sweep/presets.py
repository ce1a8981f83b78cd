"""Presets: the paper's style tasks as one command (``stylecls sweep --preset NAME``).

A preset is a grid (axes) plus the spec values it fixes; every option given on the command line
overrides the preset's value for that option (a repeated option replaces the preset's whole axis).
Recipe values (epochs, lr, image size ...) come from :mod:`stylecls.recipes` unless overridden.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stylecls.errors import unknown_name

__all__ = ["PRESETS", "Preset", "preset"]

BLOCKS = ["none", "se", "srm"]
SEEDS = [0, 1, 2]


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    values: Mapping[str, Any]  # RunSpec fields (and ``task``), as the CLI names them
    axes: Mapping[str, list[Any]] = field(default_factory=dict)  # GridAxes fields

    def runs(self) -> int:
        """Runs in the grid before lodo domains are crossed (``pacs-lodo`` multiplies by its 4 domains)."""
        n = 1
        for values in self.axes.values():
            n *= len(values)
        return n * (4 if self.values.get("protocol") == "lodo" else 1)

    def describe(self) -> str:
        axes = " x ".join(f"{k} {'/'.join(map(str, v))}" for k, v in self.axes.items())
        fixed = ", ".join(f"{k}={v}" for k, v in self.values.items())
        lodo = " x held-out domains" if self.values.get("protocol") == "lodo" else ""
        return f"{fixed}; {axes}{lodo} ({self.runs()} runs)"


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("dtd-splits", "DTD, the 10 official splits x none/se/srm (ResNet-50 recipe, seed 0)",
               {"dataset": "dtd"}, {"split": list(range(1, 11)), "block": BLOCKS}),
        Preset("pacs-lodo", "PACS leave-one-domain-out (DomainBed's protocol: train on 3 domains, select on their "
               "validation part, test on the 4th) x none/se/srm x 3 seeds, ResNet-18",
               {"dataset": "pacs", "protocol": "lodo", "arch": "resnet18"}, {"block": BLOCKS, "seed": SEEDS}),
        Preset("office-home-multi", "Office-Home, all four domains together (the paper's multi-domain task) "
               "x none/se/srm x 3 seeds", {"dataset": "office_home", "protocol": "multi-domain"},
               {"block": BLOCKS, "seed": SEEDS}),
        Preset("wikiart-style", "WikiArt style classification x none/se/srm (seed 0)",
               {"dataset": "wikiart", "task": "style"}, {"block": BLOCKS}),
    )
}  # fmt: skip


def preset(name: str) -> Preset:
    """The preset called ``name`` (an unknown name lists the known ones)."""
    if name not in PRESETS:
        raise unknown_name("preset", name, list(PRESETS))
    return PRESETS[name]
