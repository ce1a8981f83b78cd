"""A run's ``config.json``, typed: what the run is (its :class:`~stylecls.spec.RunSpec`), what its data
was (:class:`DataSummary`) and how it was executed. Schema 1 (stylecls 0.1) is read, never written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stylecls.errors import StyleclsError
from stylecls.spec import SCHEMA_VERSION, RunSpec

__all__ = ["DataSummary", "RunRecord"]


@dataclass(frozen=True)
class DataSummary:
    """What the run's data was: where, which classes and domains, how many images, how decoded."""

    dataset: str
    root: str
    classes: list[str]
    protocol: str = ""  # as resolved: single, lodo or multi-domain
    domains: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    complete: bool = True
    pixels: dict[str, Any] = field(default_factory=dict)  # the decode/pre-resize pipeline (stylecls.data)
    pixel_source: str = ""  # "cache <key>" or "on the fly"
    info: dict[str, Any] = field(default_factory=dict)  # the catalogue's report: found vs expected, warnings


@dataclass(frozen=True)
class RunRecord:
    """config.json, typed: what the run is (spec) and how it was executed (runtime)."""

    name: str
    spec: RunSpec
    data: DataSummary
    runtime: dict[str, Any] = field(default_factory=dict)  # requested and resolved (device, amp, workers ...)
    versions: dict[str, str] = field(default_factory=dict)
    parameters: int = 0
    created: str = ""
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "name": self.name,
            "created": self.created,
            "spec": self.spec.to_dict(),
            "data": self.data.__dict__,
            "runtime": self.runtime,
            "versions": self.versions,
            "parameters": self.parameters,
        }

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> RunRecord:
        version = config.get("schema_version", 1)
        if version == 1:
            return _from_schema_1(config)
        if version != SCHEMA_VERSION:
            raise StyleclsError(
                f"run written with schema {version}; this stylecls reads schemas 1 and {SCHEMA_VERSION} (upgrade it)"
            )
        known = set(DataSummary.__dataclass_fields__)
        return cls(
            name=config["name"],
            spec=RunSpec.from_dict(config["spec"]),
            data=DataSummary(**{k: v for k, v in config["data"].items() if k in known}),
            runtime=config.get("runtime", {}),
            versions=config.get("versions", {}),
            parameters=int(config.get("parameters", 0)),
            created=config.get("created", ""),
        )


def _from_schema_1(config: dict[str, Any]) -> RunRecord:
    """Run folders of stylecls 0.1 (model/data/train sections, ``settings``): read, never rewritten."""
    model, data, train = config.get("model", {}), config.get("data", {}), config.get("train", {})
    settings = dict(config.get("settings") or {})
    values = {
        "dataset": data.get("dataset", settings.get("dataset", "folder")),
        "data_options": {k: v for k, v in (data.get("options") or {}).items() if k not in ("seed", "split")},
        "protocol": data.get("protocol") or settings.get("protocol", "auto"),
        "test_domain": data.get("test_domain"),
        "split": data.get("split"),
        "arch": model.get("arch"),
        "block": model.get("block", "none"),
        "block_options": model.get("block_options") or {},
        "pretrained": model.get("pretrained"),
        "img_size": data.get("img_size"),
        "pre_resize": "unrecorded (schema 1)",
        "seed": config.get("seed", settings.get("seed", 0)),
    }
    for key in ("epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "norm_bias_decay", "schedule",
                "warmup_epochs", "label_smoothing", "min_crop", "skip_bad", "limit_train", "limit_val"):
        if key in train or key in settings:
            values[key] = train.get(key, settings.get(key))
    try:
        spec = RunSpec(**values)
    except TypeError as e:
        raise StyleclsError(f"cannot read this schema-1 run's settings: {e}") from None
    summary = DataSummary(
        dataset=spec.dataset, root=str(data.get("root", ".")), classes=list(data.get("classes", [])),
        protocol=str(data.get("protocol") or ""),
        domains=list(data.get("domains", [])), counts=dict(data.get("counts", {})),
        complete=bool(data.get("complete", True)), info=dict(data.get("info") or {}),
    )  # fmt: skip
    return RunRecord(
        name=config.get("name", ""), spec=spec, data=summary, versions=config.get("versions", {}),
        runtime={k: train[k] for k in ("device", "amp", "workers", "world_size") if k in train},
        created=config.get("created", ""), schema_version=1,
    )  # fmt: skip
