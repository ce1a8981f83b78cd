"""Evaluation protocols on top of a catalogue: which rows train, select the model, and test.

- ``single``: the catalogue's own train/val/test split (DTD, WikiArt, folders).
- ``lodo`` (leave one domain out, DomainBed's protocol): train and select on the other domains'
  train/val rows, test on every image of the held-out domain.
- ``multi-domain`` (the paper's Office-Home task): all domains together. Multi-domain catalogues
  hold train/val (80/20) per domain, so the held-out 20% becomes the test part and a seeded,
  stratified eighth of the training rows becomes the val part (70/10/20 overall).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stylecls.data.catalog import Catalog, CatalogInfo
from stylecls.data.splits import relative_key, seeded_split
from stylecls.errors import StyleclsError, unknown_name

PROTOCOLS = ("auto", "single", "lodo", "multi-domain")
#: The parts a protocol cuts a catalogue into (the ``part`` column): train, select the model, report.
PROTOCOL_PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class Parts:
    """A catalogue cut by a protocol: :attr:`frame` is the catalogue's rows with a ``part`` column."""

    frame: pd.DataFrame
    info: CatalogInfo
    protocol: str  # as resolved: single, lodo or multi-domain
    test_domain: str | None
    warnings: tuple[str, ...]  # the catalogue's, then the protocol's (an empty part)

    @property
    def counts(self) -> dict[str, int]:
        return {p: int((self.frame["part"] == p).sum()) for p in PROTOCOL_PARTS}

    def part(self, name: str) -> pd.DataFrame:
        return self.frame[self.frame["part"] == name].reset_index(drop=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the catalogue's report with the protocol, for a run's record."""
        return {**self.info.to_dict(), "protocol": self.protocol, "test_domain": self.test_domain,
                "parts": self.counts, "warnings": list(self.warnings)}


def protocol_parts(
    catalog: Catalog, protocol: str = "auto", test_domain: str | None = None, seed: int | None = None
) -> Parts:
    """The rows of ``catalog`` cut into train/val/test by ``protocol`` (the catalogue is not changed)."""
    if protocol not in PROTOCOLS:
        raise unknown_name("protocol", protocol, PROTOCOLS)
    info = catalog.info
    frame = catalog.frame
    domains = list(info.domains or sorted(frame["domain"].unique()))
    multi = len(domains) > 1
    if protocol == "auto":
        protocol = "lodo" if test_domain is not None else ("multi-domain" if multi else "single")
    if test_domain is not None and protocol != "lodo":
        raise StyleclsError(f"--test-domain only applies to the lodo protocol, not {protocol!r}")
    if seed is None:
        seed = info.seed
    out = frame.copy()
    if protocol == "lodo":
        if test_domain is None:
            raise StyleclsError(f"the lodo protocol needs a test domain; choose one of: {', '.join(domains)}")
        if test_domain not in domains:
            raise unknown_name("test domain", test_domain, domains)
        if not multi:
            raise StyleclsError(f"{info.dataset} has one domain; lodo needs several")
        held = out["domain"] == test_domain
        if not held.any():
            raise StyleclsError(f"domain {test_domain!r} has no images in this copy")
        out["part"] = np.where(held, "test", out["split"])
        out.loc[~held & (out["split"] == "test"), "part"] = "test_in_domain"
        out = out[out["part"] != "test_in_domain"]
    elif protocol == "multi-domain":
        if (out["split"] == "test").any():
            out["part"] = out["split"]
        else:
            out["part"] = np.where(out["split"] == "val", "test", "train")
            train = np.flatnonzero(out["part"].to_numpy() == "train")
            keys = [relative_key(p, info.folder) for p in out["path"].to_numpy()[train]]
            strata = (out["domain"] + "/" + out["class_name"]).to_numpy()[train]
            held = seeded_split(keys, strata, {"val": 1 / 8}, seed)
            out.iloc[train, out.columns.get_loc("part")] = held
    else:  # single
        if not (out["split"] == "test").any():
            raise StyleclsError(
                f"{info.dataset} has no test split of its own; use --protocol multi-domain "
                f"or --protocol lodo --test-domain <{'|'.join(domains)}>"
            )
        out["part"] = out["split"]
    out = out.reset_index(drop=True)
    counts = out["part"].value_counts()
    empty = [f"protocol {protocol}: the {p} part is empty" for p in PROTOCOL_PARTS if counts.get(p, 0) == 0]
    return Parts(out, info, protocol, test_domain, (*info.warnings, *empty))
