"""A run's images: catalogue -> protocol parts -> seeded subsets, or the rows a run folder recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from stylecls.errors import StyleclsError
from stylecls.runfolder import RunFolder
from stylecls.spec import RunSpec

PARTS = ("train", "val", "test")


@dataclass
class RunData:
    """The rows a run uses (column ``part``), the catalogue's report, and the data root."""

    frame: pd.DataFrame
    root: Path
    info: dict[str, Any] = field(default_factory=dict)

    def part(self, name: str) -> pd.DataFrame:
        return self.frame[self.frame["part"] == name].reset_index(drop=True)

    @property
    def counts(self) -> dict[str, int]:
        return {p: int((self.frame["part"] == p).sum()) for p in PARTS}

    @property
    def cache_source(self) -> dict[str, Any]:
        """Where a prepared cache of these rows would come from (dataset and data root)."""
        return {"dataset": self.info.get("dataset"), "root": self.info.get("root")}

    @property
    def classes(self) -> list[str]:
        return list(self.info["classes"])


def catalog_options(spec: RunSpec) -> dict[str, Any]:
    """The dataset's own options: the seed of a seeded split, DTD's split, WikiArt's task ..."""
    options = {"seed": spec.seed, **dict(spec.data_options)}
    if spec.split is not None:
        options["split"] = spec.split
    return options


def load_data(spec: RunSpec, data_root: str | None) -> RunData:
    """Catalogue -> protocol parts -> the optional seeded subsets of train/val."""
    from stylecls.data import catalog, protocol_parts

    try:
        frame = catalog(spec.dataset, data_root, **catalog_options(spec))
    except StyleclsError as e:
        raise StyleclsError(f"{e} (`stylecls data check --dataset {spec.dataset}` says what is there)") from None
    parts = protocol_parts(frame, spec.protocol, spec.test_domain, val_domain=spec.val_domain)
    info = dict(parts.attrs["info"])
    keep = []
    for name, limit in (("train", spec.limit_train), ("val", spec.limit_val), ("test", None)):
        rows = parts[parts["part"] == name]
        if limit is not None and limit < len(rows):
            rows = rows.sample(n=limit, random_state=spec.seed).sort_index()
        keep.append(rows)
    used = pd.concat(keep).sort_index().reset_index(drop=True)
    root = Path(info.get("data_root") or info.get("root") or ".")
    return RunData(used, root, info)


def recorded_data(folder: RunFolder) -> RunData:
    """The rows a run trained on, from its split.csv (resume never re-splits)."""
    record = folder.record()
    try:
        frame = folder.rows()
    except StyleclsError as e:
        raise StyleclsError(f"{e}. `stylecls data check --dataset {record.spec.dataset}` says what is there") from None
    info = {**record.data.info, "classes": record.data.classes, "domains": record.data.domains,
            "dataset": record.spec.dataset, "root": record.data.info.get("root", record.data.root)}
    return RunData(frame, Path(record.data.root), info)
