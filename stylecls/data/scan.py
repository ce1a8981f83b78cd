"""The one folder reader every dataset shares: class folders of images, and domains of class folders.

DomainBed's datasets lean on one folder reader; ours is :func:`scan_classes` (``<folder>/<class>/<image>``)
and :func:`read_domains` (``<folder>/<domain>/<class>/<image>``). A link that loops, or a folder that
cannot be listed, is one clear error naming it, not a traceback.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from stylecls.errors import StyleclsError

if TYPE_CHECKING:
    from stylecls.data.registry import DatasetDef

Image.init()
#: Every extension PIL can open (the folder reader accepts any of them).
IMAGE_EXTENSIONS = frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


@dataclass
class Found:
    """Images gathered by a dataset reader, plus what it noticed on the way."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (path, class_name, domain)
    warnings: list[str] = field(default_factory=list)
    ignored: int = 0  # files with no image extension


def is_image(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _unreadable(path: str | Path, e: OSError) -> StyleclsError:
    if e.errno == errno.ELOOP:
        return StyleclsError(f"{path} is a symbolic link that loops back on itself; remove it or point it at an image")
    return StyleclsError(f"cannot read {path}: {e.strerror or e}")


def entries(folder: Path) -> list[tuple[str, str, bool, bool]]:
    """``(name, path, is_dir, is_file)`` of every visible entry of ``folder``, sorted by name (links followed)."""
    out = []
    try:
        with os.scandir(folder) as it:
            listed = sorted(it, key=lambda e: e.name)
    except OSError as e:
        raise _unreadable(folder, e) from None
    for entry in listed:
        if entry.name.startswith("."):
            continue
        try:
            out.append((entry.name, entry.path, entry.is_dir(), entry.is_file()))
        except OSError as e:
            raise _unreadable(entry.path, e) from None
    return out


def subdirs(folder: Path) -> list[str]:
    """Sorted names of the visible sub-folders of ``folder``."""
    return [name for name, _, is_dir, _ in entries(folder) if is_dir]


def has_images(folder: Path) -> bool:
    return any(is_file and is_image(name) for name, _, _, is_file in entries(folder))


def scan_classes(folder: Path, domain: str, found: Found, classes: Iterable[str] | None = None) -> list[str]:
    """Add ``folder/<class>/<image>`` rows to ``found``; return the class folders seen.

    With ``classes`` given, folders outside that list are reported and skipped, so a stray
    folder never shifts the label numbering.
    """
    allowed = set(classes) if classes is not None else None
    seen = []
    for name in subdirs(folder):
        if allowed is not None and name not in allowed:
            found.warnings.append(f"{folder / name}: not a class of this dataset, ignored")
            continue
        seen.append(name)
        for file, path, _, is_file in entries(folder / name):
            if not is_file:
                continue
            if is_image(file):
                found.rows.append((os.path.abspath(path), name, domain))
            else:
                found.ignored += 1
    return seen


def read_domains(
    folder: Path,
    domains: Sequence[str],
    classes: Sequence[str] | None,
    dataset: DatasetDef,
    aliases: dict[str, str] | None = None,
) -> Found:
    """Rows of ``folder/<domain>/<class>/*`` for the listed domains; absent domains are warned about.

    ``aliases`` maps a domain to another folder name some copies use (``Real World`` -> ``Real_World``).
    """
    found = Found()
    for domain in domains:
        path = folder / domain
        alias = (aliases or {}).get(domain)
        if not path.is_dir() and alias and (folder / alias).is_dir():
            path = folder / alias
        if not path.is_dir():
            found.warnings.append(f"domain folder {folder / domain} is missing")
            continue
        scan_classes(path, domain, found, classes)
    if not found.rows:
        raise dataset.missing(folder, "no images in any domain folder")
    return found
