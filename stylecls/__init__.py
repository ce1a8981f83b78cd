"""stylecls: classify images where style matters, and measure what SRM buys over SE and a plain backbone."""

__version__ = "0.1.0"
