"""Evaluation protocols on top of a catalog: which rows train, select the model, and test.

- ``single``: the catalog's own train/val/test split (DTD, WikiArt, folders).
- ``lodo`` (leave one domain out, DomainBed's protocol): train and select on the other domains'
  train/val rows, test on every image of the held-out domain. With a ``val_domain`` (leave-one-domain-out
  model selection), that training domain is left out too: every image of it validates, the others train,
  and the test domain is not used at all (such a run has no test part; selection never sees it).
- ``multi-domain`` (the paper's Office-Home task): all domains together. Multi-domain catalogs
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
#: The parts a protocol cuts a catalog into (the ``part`` column): train, select the model, report.
PROTOCOL_PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class Parts:
    """A catalog cut by a protocol: :attr:`frame` is the catalog's rows with a ``part`` column."""

    frame: pd.DataFrame
    info: CatalogInfo
    protocol: str  # as resolved: single, lodo or multi-domain
    test_domain: str | None
    warnings: tuple[str, ...]  # the catalog's, then the protocol's (an empty part)
    val_domain: str | None = None  # leave-one-domain-out selection: the training domain that validates

    @property
    def counts(self) -> dict[str, int]:
        return {p: int((self.frame["part"] == p).sum()) for p in PROTOCOL_PARTS}

    def part(self, name: str) -> pd.DataFrame:
        return self.frame[self.frame["part"] == name].reset_index(drop=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the catalog's report with the protocol, for a run's record."""
        return {**self.info.to_dict(), "protocol": self.protocol, "test_domain": self.test_domain,
                **({"val_domain": self.val_domain} if self.val_domain is not None else {}),
                "parts": self.counts, "warnings": list(self.warnings)}


def protocol_parts(
    catalog: Catalog, protocol: str = "auto", test_domain: str | None = None, seed: int | None = None,
    val_domain: str | None = None,
) -> Parts:
    """The rows of ``catalog`` cut into train/val/test by ``protocol`` (the catalog is not changed)."""
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
        if val_domain is not None:
            _leave_out(out, domains, test_domain, val_domain)
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
    elif val_domain is not None:
        raise StyleclsError(f"a validation domain only applies to the lodo protocol, not {protocol!r}")
    else:  # single
        if not (out["split"] == "test").any():
            raise StyleclsError(
                f"{info.dataset} has no test split of its own; use --protocol multi-domain "
                f"or --protocol lodo --test-domain <{'|'.join(domains)}>"
            )
        out["part"] = out["split"]
    out = out.reset_index(drop=True)
    counts = out["part"].value_counts()
    expected = PROTOCOL_PARTS if val_domain is None else ("train", "val")
    empty = [f"protocol {protocol}: the {p} part is empty" for p in expected if counts.get(p, 0) == 0]
    return Parts(out, info, protocol, test_domain, (*info.warnings, *empty), val_domain)


def _leave_out(out: pd.DataFrame, domains: list[str], test_domain: str, val_domain: str) -> None:
    """Leave-one-domain-out selection: every row of ``val_domain`` validates; the other training domains'
    validation rows and the test domain are dropped (their training rows train, as in the run this one
    selects for)."""
    if val_domain not in domains or val_domain == test_domain:
        raise unknown_name("validation domain", val_domain, [d for d in domains if d != test_domain])
    if len(domains) < 3:
        raise StyleclsError("leaving a training domain out for validation needs 3 domains or more")
    left = out["domain"] == val_domain
    out.loc[left, "part"] = "val"
    out.loc[~left & out["part"].isin(["val", "test"]), "part"] = "test_in_domain"  # dropped below
