"""One entry point for every dataset: ``catalog(name, root, **options)`` -> the catalogue frame."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from stylecls.data import demo, dtd, folder, office_home, pacs, wikiart
from stylecls.data.paths import default_root
from stylecls.data.records import Card
from stylecls.errors import StyleclsError, unknown_name

_FAMILIES: dict[str, tuple[Card, Callable[..., pd.DataFrame]]] = {
    m.CARD.name: (m.CARD, m.load) for m in (demo, dtd, pacs, office_home, wikiart, folder)
}
DATASETS: tuple[str, ...] = tuple(_FAMILIES)


def card(name: str) -> Card:
    """Layout, source and options of a dataset (raises a clear error for an unknown name)."""
    if name not in _FAMILIES:
        raise unknown_name("dataset", name, DATASETS)
    return _FAMILIES[name][0]


def dataset_dir(name: str, root: str | Path | None = None) -> Path:
    """Where ``name`` is looked for: ``<root>/<folder>``; the root itself for ``folder``; the cache for ``demo``."""
    c = card(name)
    if name == "demo":
        return demo.demo_root()
    base = Path(os.path.abspath(Path(root).expanduser())) if root is not None else default_root()
    return base / c.folder if c.folder else base


def catalog(name: str, root: str | Path | None = None, **options: Any) -> pd.DataFrame:
    """The catalogue of ``name``: columns path, label, class_name, domain, split; ``attrs["info"]``.

    ``root`` is the data root (``$STYLECLS_DATA`` or ``./datasets``); for ``folder`` it is the
    folder itself; ``demo`` ignores it (the demo lives in the cache). Options: ``seed`` (seeded
    splits) for all, ``split`` (1..10) for dtd, ``task`` for wikiart, ``splits_dir`` for pacs.
    """
    c = card(name)
    unknown = sorted(set(options) - set(c.options))
    if unknown:
        raise StyleclsError(
            f"dataset {name!r} has no option {', '.join(map(repr, unknown))}; its options: {', '.join(c.options)}"
        )
    options = {k: v for k, v in options.items() if v is not None}
    where = dataset_dir(name, root)
    if name != "demo" and not where.is_dir():
        raise c.missing(where)
    frame = _FAMILIES[name][1](where, **options)
    classes = frame.attrs["info"]["classes"]
    if len(classes) < 2:
        raise StyleclsError(
            f"{where} has {len(classes)} class{'' if len(classes) == 1 else 'es'} ({', '.join(classes) or 'none'}): "
            "classification needs at least 2 class folders"
        )
    frame.attrs["info"]["data_root"] = str(where if c.folder is None else where.parent)
    return frame


def domains_of(name: str, root: str | Path | None = None) -> list[str]:
    """The domains of a dataset (for looping ``--protocol lodo`` over every held-out domain)."""
    card(name)
    fixed = {"demo": demo.DOMAINS, "pacs": pacs.DOMAINS, "office_home": office_home.DOMAINS}
    if name in fixed:
        return list(fixed[name])
    if name in ("dtd", "wikiart"):
        return [name]
    return list(catalog(name, root).attrs["info"]["domains"])
