"""Where datasets are looked for and where generated or prepared data is written."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from stylecls.errors import StyleclsError


def default_root() -> Path:
    """The data root: ``$STYLECLS_DATA`` or ``./datasets``."""
    return Path(os.path.abspath(Path(os.environ.get("STYLECLS_DATA") or "datasets").expanduser()))


def cache_root(create: bool = False) -> Path:
    """Generated and prepared data: ``$STYLECLS_CACHE`` or the user cache dir (never the repo).

    A file there is one clear error. With ``create`` (before writing) the folder is made when absent
    and must be writable; reading needs neither, so a read-only shared cache still serves runs.
    """
    env = os.environ.get("STYLECLS_CACHE")
    path = Path(os.path.abspath(Path(env).expanduser())) if env else Path(platformdirs.user_cache_dir("stylecls"))
    what = f"$STYLECLS_CACHE={path}" if env else f"the cache folder {path}"
    fix = "point $STYLECLS_CACHE at a folder you can write to"
    if path.exists() and not path.is_dir():
        raise StyleclsError(f"{what} is a file, not a folder: {fix}")
    return writable_folder(path, what, f": {fix}") if create else path


def writable_folder(path: Path, what: str, fix: str = "") -> Path:
    """``path`` as a folder this process can write into, made if absent; else one clear error naming
    ``what`` (e.g. ``--out runs``), followed by ``fix``."""
    if path.exists() and not path.is_dir():
        raise StyleclsError(f"{what} is a file, not a folder{fix}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StyleclsError(f"{what} cannot be created ({e.strerror or e}){fix}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise StyleclsError(f"{what} is not writable{fix}")
    return path
