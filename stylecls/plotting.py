"""Figures drawn off-screen: the Agg canvas directly, never pyplot's global state.

Commands write PNGs from any thread or process without a display, and a notebook that imports
them keeps its own (inline) backend.
"""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def figure(width: float, height: float, dpi: int = 100) -> Figure:
    """A new figure of ``width`` x ``height`` inches (constrained layout) attached to an Agg canvas."""
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig
