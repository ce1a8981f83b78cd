"""Where datasets are looked for and where generated or prepared data is written."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def default_root() -> Path:
    """The data root: ``$STYLECLS_DATA`` or ``./datasets``."""
    return Path(os.path.abspath(Path(os.environ.get("STYLECLS_DATA") or "datasets").expanduser()))


def cache_root() -> Path:
    """Generated and prepared data: ``$STYLECLS_CACHE`` or the user cache dir (never the repo)."""
    env = os.environ.get("STYLECLS_CACHE")
    return Path(os.path.abspath(Path(env).expanduser())) if env else Path(platformdirs.user_cache_dir("stylecls"))
