"""stylecls: classify images where style matters, and measure what SRM buys over SE and a plain backbone.

``from stylecls import load_run`` opens a trained run folder (see :mod:`stylecls.predict`); it is
imported on first use so that ``import stylecls`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"
__all__ = ["load_run", "Run"]


def __getattr__(name: str) -> Any:
    if name in ("load_run", "Run"):
        from stylecls import predict

        return getattr(predict, name)
    raise AttributeError(f"module 'stylecls' has no attribute {name!r}")
