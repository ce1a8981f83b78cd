"""How results present what they compare: a block's label and rank, and a run's *method*; the one place that says it.

A run's **method** is what it adds to its plain backbone: its recalibration block (:data:`~stylecls.blocks.BLOCKS`),
its feature augmentation (:data:`~stylecls.models.feature_aug.FEATURE_AUGS`) and IBN-Net-a (an ``_ibn_a`` arch is
the method "IBN-Net-a" on the plain arch, so ``resnet18`` and ``resnet18_ibn_a`` runs are one comparison). A
combination (SRM + MixStyle) is a method of its own. Every table, figure and verdict takes its labels, row order and
differences from here: :func:`method_of` (a run's spec -> its :class:`Method`), :func:`method_order` and
:func:`method_differences`. A difference is always read *first − second*, the method that adds something first, so
a positive number means the addition helps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from stylecls import blocks
from stylecls.models.feature_aug import FEATURE_AUGS, feature_aug_label
from stylecls.models.ibn import IBN_LABEL, IBN_SUFFIX, split_ibn

__all__ = [
    "IBN_KEY", "Method", "PRESENTATION", "Presentation", "REFERENCE_BLOCK", "block_differences", "block_order",
    "method_differences", "method_label", "method_of", "method_order", "presentation", "register_block",
]  # fmt: skip


# --- blocks ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Presentation:
    """How results show a block: ``label`` in tables, figures and sentences; ``rank`` orders the rows.

    A difference is always *earlier − later* in this order, so the reference (``none``, ranked last) is the
    one subtracted and a positive number means the block helps.
    """

    label: str
    rank: int = 500


#: The plain network every block is measured against; ranked last.
REFERENCE_BLOCK = "none"
PRESENTATION: dict[str, Presentation] = {
    "srm": Presentation("SRM", 0),
    "se": Presentation("SE", 10),
    "ge": Presentation("GE", 20),
    "eca": Presentation("ECA", 30),
    REFERENCE_BLOCK: Presentation("none", 1_000),
}


def register_block(name: str, factory: Any, *, label: str | None = None, rank: int = 500) -> None:
    """Add a block to :data:`~stylecls.blocks.BLOCKS` with how results show it (default: its name, after the
    presented blocks and before the reference); every table and figure then shows it without being told."""
    blocks.BLOCKS[name] = factory
    PRESENTATION[name] = Presentation(label or name, rank)


def presentation(name: str) -> Presentation:
    """The block's :class:`Presentation`; a name without one (an unregistered or removed block) is shown as
    itself and ranked before the reference, never after it."""
    return PRESENTATION.get(str(name)) or Presentation(str(name))


def block_order(names: Iterable[str]) -> list[str]:
    """``names`` (once each) in presentation order: by rank, then by name."""
    return sorted(set(map(str, names)), key=lambda n: (presentation(n).rank, n))


def block_differences(names: Iterable[str]) -> list[tuple[str, str]]:
    """The differences results show, each ``(first, second)`` read *first − second*: the first block in
    :func:`block_order` against every other, and every block against the reference."""
    order = block_order(names)
    if not order:
        return []
    pairs = [(order[0], other) for other in order[1:]]
    pairs += [(b, REFERENCE_BLOCK) for b in order[1:] if b != REFERENCE_BLOCK and REFERENCE_BLOCK in order]
    return list(dict.fromkeys(pairs))


# --- methods -----------------------------------------------------------------------------------------------------

#: The part of a method's key that stands for IBN-Net-a.
IBN_KEY = IBN_SUFFIX.lstrip("_")
Kind = Literal["block", "baseline", "combination", "reference"]
_KIND_RANK = {"block": 0, "baseline": 1, "combination": 2, "reference": 3}


@dataclass(frozen=True)
class Method:
    """What a run adds to its plain backbone. ``key`` (``srm+mixstyle``, ``ibn_a``, ``none``) is the value a results
    table holds; ``label`` (``SRM + MixStyle``) what it shows; ``order`` sorts the rows."""

    block: str = REFERENCE_BLOCK
    feature_aug: str = "none"
    ibn: bool = False

    @classmethod
    def parse(cls, key: str) -> Method:
        """The method of a ``key``; a part that is neither a feature augmentation nor ``ibn_a`` is the block (so any
        other axis value, an arch name say, is a "block" shown as itself)."""
        block, aug, ibn = REFERENCE_BLOCK, "none", False
        for part in str(key).split("+"):
            if part == IBN_KEY:
                ibn = True
            elif part in FEATURE_AUGS and part != "none" and part not in blocks.BLOCKS:
                aug = part
            else:
                block = part
        return cls(block, aug, ibn)

    @property
    def key(self) -> str:
        parts = [p for p in (self.block, self.feature_aug) if p != "none"] + [IBN_KEY] * self.ibn
        return "+".join(parts) or REFERENCE_BLOCK

    @property
    def label(self) -> str:
        parts = [presentation(self.block).label] if self.block != REFERENCE_BLOCK or self.kind == "reference" else []
        parts += [feature_aug_label(self.feature_aug)] * (self.feature_aug != "none") + [IBN_LABEL] * self.ibn
        return " + ".join(parts)

    @property
    def kind(self) -> Kind:
        """``block`` (a block alone), ``baseline`` (a style baseline alone), ``combination``, ``reference``."""
        baseline = self.feature_aug != "none" or self.ibn
        if self.block == REFERENCE_BLOCK:
            return "baseline" if baseline else "reference"
        return "combination" if baseline else "block"

    @property
    def order(self) -> tuple[int, int, str, bool, int]:
        """Blocks alone (in block order), then the baselines (feature augmentations in their registry's order, then
        IBN-Net-a), then the combinations, the plain network last."""
        augs = list(FEATURE_AUGS)
        aug_rank = augs.index(self.feature_aug) if self.feature_aug in augs else len(augs)
        return _KIND_RANK[self.kind], presentation(self.block).rank, self.block, self.ibn, aug_rank

    @property
    def block_part(self) -> Method:
        return Method(self.block)

    @property
    def baseline_part(self) -> Method:
        return Method(REFERENCE_BLOCK, self.feature_aug, self.ibn)


def method_of(spec: Any) -> Method:
    """A run's method from its spec (``block``, ``feature_aug``, ``arch``)."""
    return Method(str(spec.block), str(getattr(spec, "feature_aug", "none")), split_ibn(str(spec.arch))[1])


def method_label(key: str) -> str:
    """How results write an axis value: a method's (or block's) label; any other value as given."""
    return Method.parse(key).label


def method_order(keys: Iterable[str]) -> list[str]:
    """``keys`` (once each) in presentation order (:attr:`Method.order`); for blocks alone, :func:`block_order`."""
    return sorted(set(map(str, keys)), key=lambda k: Method.parse(k).order)


def method_differences(keys: Iterable[str]) -> list[tuple[str, str]]:
    """The differences results show, each ``(first, second)`` read *first − second*.

    Among the blocks alone, :func:`block_differences` (SRM − SE, SRM − none, SE − none); each baseline − none and
    the first block − each baseline (SRM − MixStyle); each combination − its block alone and − its baseline alone
    (SRM + MixStyle − SRM: what MixStyle adds to SRM) and − none. Only differences of present keys.
    """
    order = [Method.parse(k) for k in method_order(keys)]
    present = {m.key for m in order}
    blocks = [m for m in order if m.kind == "block"]
    pairs = block_differences(m.key for m in order if m.kind in ("block", "reference"))
    for m in (m for m in order if m.kind == "baseline"):
        pairs += [(m.key, REFERENCE_BLOCK)] if REFERENCE_BLOCK in present else []
    for m in (m for m in order if m.kind == "baseline"):
        pairs += [(blocks[0].key, m.key)] if blocks else []
    for m in (m for m in order if m.kind == "combination"):
        pairs += [(m.key, part) for part in (m.block_part.key, m.baseline_part.key, REFERENCE_BLOCK) if part in present]
    return list(dict.fromkeys(pairs))
