"""Which pixels a run sees: the decode-and-pre-resize pipeline as a small value (part of the run spec).

Every image goes through one deterministic function (:func:`stylecls.data.decode.decode_pixels`):
decode to uint8 RGB, then resize the shorter side to ``side`` px (bilinear, antialiased), keeping the
aspect ratio. Training crops from that image; evaluation centre-crops ``img_size`` from it. The
prepared cache is only a memo of that function, so a :class:`Pixels` names the pixels completely:
two runs with equal ``to_dict()`` saw the same pixels, whether a cache served them or not.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from stylecls.errors import StyleclsError

#: Bump when the decode or resize code changes the pixels it makes (invalidates every cache).
PIPELINE_VERSION = 1
DEFAULT_PRE_RESIZE = "1.125x"
ORIGINAL = "original"
DECODER = "torchvision.io.decode_image RGB + EXIF orientation (PIL for other formats; 16-bit scaled to 8)"
INTERPOLATION = "bilinear"
ANTIALIAS = True
_FACTOR = re.compile(r"^(\d+(?:\.\d+)?)x$")


def _factor(rule: str) -> float | None:
    """The shorter-side factor of a rule (``"1.125x"`` -> 1.125); None for ``original``."""
    if rule == ORIGINAL:
        return None
    match = _FACTOR.match(rule)
    factor = float(match.group(1)) if match else math.nan
    if not 1.0 <= factor <= 4.0:
        raise StyleclsError(
            f"--pre-resize {rule!r} is not a rule: use original (crop from full resolution) or a factor "
            f"from 1x to 4x of the image size, e.g. {DEFAULT_PRE_RESIZE} (the default)"
        )
    return factor


@dataclass(frozen=True)
class Pixels:
    """The pixel pipeline of a run: image size and pre-resize rule (``"1.125x"`` or ``"original"``).

    ``side`` is the shorter side every image is resized to before augmentation (None: full
    resolution); ``eval_side`` the shorter side evaluation centre-crops ``img_size`` from.
    """

    img_size: int
    pre_resize: str = DEFAULT_PRE_RESIZE

    def __post_init__(self) -> None:
        if int(self.img_size) < 1:
            raise StyleclsError(f"the image size must be at least 1 px, not {self.img_size}")
        object.__setattr__(self, "img_size", int(self.img_size))
        _factor(self.pre_resize)

    @staticmethod
    def side_for(img_size: int, factor: float) -> int:
        """``factor`` x ``img_size`` rounded half up (64 -> 72, 128 -> 144, 224 -> 252 at 1.125x)."""
        return max(int(img_size), math.floor(factor * img_size + 0.5))

    @property
    def side(self) -> int | None:
        factor = _factor(self.pre_resize)
        return None if factor is None else self.side_for(self.img_size, factor)

    @property
    def eval_side(self) -> int:
        """Evaluation resizes the shorter side to this, then centre-crops (the pre-resize itself if any)."""
        return self.side if self.side is not None else self.side_for(self.img_size, _factor(DEFAULT_PRE_RESIZE) or 1)

    def to_dict(self) -> dict[str, Any]:
        """Everything that decides the pixels, JSON-able (what the run record keeps and compare checks)."""
        return {
            "version": PIPELINE_VERSION,
            "img_size": self.img_size,
            "pre_resize": self.pre_resize,
            "side": self.side,
            "eval_side": self.eval_side,
            "decoder": DECODER,
            "interpolation": INTERPOLATION,
            "antialias": ANTIALIAS,
        }

    @classmethod
    def from_dict(cls, recorded: dict[str, Any]) -> Pixels:
        """The pipeline a run recorded; refuses one this version of stylecls cannot reproduce."""
        try:
            pixels = cls(int(recorded["img_size"]), str(recorded.get("pre_resize", DEFAULT_PRE_RESIZE)))
        except (KeyError, TypeError, ValueError) as e:
            raise StyleclsError(f"not a recorded pixel pipeline: {recorded!r} ({e})") from None
        if diff := difference(recorded, pixels.to_dict()):
            raise StyleclsError(f"the recorded pixel pipeline differs from what this stylecls decodes: {diff}")
        return pixels

    def key(self) -> str:
        """A stable name of the pre-resized pixels (what a prepared cache stores), e.g. ``short72-1f0c9a2b``.

        It leaves out ``img_size``: one cache serves every size whose rule gives the same ``side``.
        """
        stored = {k: v for k, v in self.to_dict().items() if k not in ("img_size", "pre_resize", "eval_side")}
        digest = hashlib.sha1(json.dumps(stored, sort_keys=True).encode()).hexdigest()[:8]
        return f"{'original' if self.side is None else f'short{self.side}'}-{digest}"

    def stored(self) -> str:
        """The pre-resized pixels in words: ``72 px (shorter side, pre-resize 1.125x)``."""
        if self.side is None:
            return "full resolution (pre-resize original)"
        return f"{self.side} px (shorter side, pre-resize {self.pre_resize})"

    def describe(self, source: str | None = None) -> str:
        """The start-of-run line: ``decoded at 72 px (shorter side, ...), from cache pacs-...`` or ``, on the fly``."""
        return f"decoded at {self.stored()}, " + (f"from cache {source}" if source else "on the fly")


def difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    """The fields two recorded pipelines disagree on, ``"pre_resize: 1.125x vs original"``; "" when equal."""
    keys = [k for k in {**a, **b} if a.get(k) != b.get(k)]
    return "; ".join(f"{k}: {a.get(k)} vs {b.get(k)}" for k in keys)
