"""A run's images: catalog -> protocol parts -> seeded subsets, or the rows a run folder recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from stylecls.data.cache import CacheSource
from stylecls.data.protocols import PROTOCOL_PARTS
from stylecls.errors import StyleclsError
from stylecls.runfolder import RunFolder
from stylecls.spec import RunSpec


@dataclass
class RunData:
    """The rows a run uses (column ``part``), the data root, the catalog's report as the run records it
    (:meth:`stylecls.data.Parts.to_dict`), and the copy a prepared cache of these rows would come from."""

    frame: pd.DataFrame
    root: Path
    info: dict[str, Any] = field(default_factory=dict)
    cache_source: CacheSource | None = None

    def part(self, name: str) -> pd.DataFrame:
        return self.frame[self.frame["part"] == name].reset_index(drop=True)

    @property
    def counts(self) -> dict[str, int]:
        return {p: int((self.frame["part"] == p).sum()) for p in PROTOCOL_PARTS}

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
    """Catalog -> protocol parts -> the optional seeded subsets of train/val."""
    from stylecls.data import catalog, protocol_parts

    try:
        data = catalog(spec.dataset, data_root, **catalog_options(spec))
    except StyleclsError as e:
        raise StyleclsError(f"{e} (`stylecls data check --dataset {spec.dataset}` says what is there)") from None
    parts = protocol_parts(data, spec.protocol, spec.test_domain, val_domain=spec.val_domain)
    keep = []
    for name, limit in (("train", spec.limit_train), ("val", spec.limit_val), ("test", None)):
        rows = parts.frame[parts.frame["part"] == name]
        if limit is not None and limit < len(rows):
            rows = rows.sample(n=limit, random_state=spec.seed).sort_index()
        keep.append(rows)
    used = pd.concat(keep).sort_index().reset_index(drop=True)
    return RunData(used, data.info.data_root, parts.to_dict(), CacheSource.of_catalog(data))


def recorded_data(folder: RunFolder) -> RunData:
    """The rows a run trained on, from its split.csv (resume never re-splits)."""
    record = folder.record()
    try:
        frame = folder.rows()
    except StyleclsError as e:
        raise StyleclsError(f"{e}. `stylecls data check --dataset {record.spec.dataset}` says what is there") from None
    info = {**record.data.info, "classes": record.data.classes, "domains": record.data.domains,
            "dataset": record.spec.dataset}
    return RunData(frame, Path(record.data.root), info, CacheSource.of(record.spec.dataset, record.data.root))
