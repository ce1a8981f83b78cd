"""A run's ``config.json``, typed: what the run is (its :class:`~stylecls.spec.RunSpec`), what its data
was (:class:`DataSummary`) and how it was executed; plus the two other typed documents of a run folder: its
status (:class:`RunStatus`, one vocabulary: :data:`STATES`) and each evaluation's provenance
(:class:`EvaluationRecord`). Schema 1 (stylecls 0.1) is read, never written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stylecls.errors import StyleclsError
from stylecls.spec import SCHEMA_VERSION, RunSpec

__all__ = ["STATES", "DataSummary", "EvaluationRecord", "RunRecord", "RunStatus"]


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
    info: dict[str, Any] = field(default_factory=dict)  # the catalog's report: found vs expected, warnings


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
        if not isinstance(config, dict):
            raise StyleclsError(f"expected a JSON object, got {type(config).__name__}")
        if "schema_version" not in config and not ("model" in config and "data" in config):
            raise StyleclsError("it has no schema_version and is not a stylecls 0.1 record (no model/data sections)")
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


#: A run's state, the one vocabulary every command speaks (status.json, ``stylecls status``, the sweep).
NOT_STARTED, RUNNING, INTERRUPTED, FAILED, DONE = "not started", "running", "interrupted", "failed", "done"
STATES = (NOT_STARTED, RUNNING, INTERRUPTED, FAILED, DONE)


@dataclass(frozen=True)
class RunStatus:
    """Where a run stands: its state, the last finished epoch, the selected (best) epoch and why it stopped.

    ``done`` is the last thing a finished run writes; ``running`` without a live trainer (the lock is free)
    is read as ``interrupted`` (killed without a word)."""

    state: str = NOT_STARTED
    epoch: int | None = None
    best_epoch: int | None = None
    best_val_acc: float | None = None
    reason: str = ""  # why it stopped: Ctrl-C, SIGTERM, the error of a failed run ...
    updated: str = ""
    details: dict[str, Any] = field(default_factory=dict)  # seconds, pid, ... (kept as written)

    @property
    def finished(self) -> bool:
        return self.state == DONE

    def to_dict(self) -> dict[str, Any]:
        values = {"state": self.state, "epoch": self.epoch, "best_epoch": self.best_epoch,
                  "best_val_acc": self.best_val_acc, "reason": self.reason, "updated": self.updated}  # fmt: skip
        return {**self.details, **{k: v for k, v in values.items() if v not in (None, "")}}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunStatus:
        known = {"state", "epoch", "best_epoch", "best_val_acc", "reason", "updated"}
        state = str(values.get("state", NOT_STARTED))
        if state not in STATES:
            raise StyleclsError(f"unknown run state {state!r} (expected one of: {', '.join(STATES)})")
        reason = values.get("reason") or values.get("error") or ""
        return cls(
            state=state, epoch=_int_or_none(values.get("epoch")), best_epoch=_int_or_none(values.get("best_epoch")),
            best_val_acc=_float_or_none(values.get("best_val_acc")), reason=str(reason),
            updated=str(values.get("updated", "")), details={k: v for k, v in values.items() if k not in known},
        )  # fmt: skip


#: The headline numbers an evaluation must have, each a fraction in [0, 1].
EVALUATION_METRICS = ("top1",)
_PROVENANCE = ("run", "part", "checkpoint", "domain", "epoch", "run_state", "created")


@dataclass(frozen=True)
class EvaluationRecord:
    """One evaluation of a run: what it is of (part, checkpoint and its epoch, a one-domain filter, the run's
    state at the time) and its headline metrics (top1, top5, balanced_accuracy, macro_f1, count, domain gap ...).

    Readers of results use only the evaluation :attr:`is_selected` of a finished run: the selected
    checkpoint (best.pt) on the run's reported part, unfiltered, made after training ended."""

    part: str
    checkpoint: str
    epoch: int | None
    run_state: str
    metrics: dict[str, Any]
    domain: str | None = None
    run: str = ""
    created: str = ""

    @property
    def is_selected(self) -> bool:
        """Of best.pt, unfiltered, made when the run was done (the part is checked by the run folder)."""
        return self.checkpoint == "best" and self.domain is None and self.run_state == DONE

    @property
    def top1(self) -> float:
        return float(self.metrics["top1"])

    def describe(self) -> str:
        """``test part, best.pt (epoch 4), evaluated while done``."""
        where = f"{self.part} part" + (f", domain {self.domain}" if self.domain else "")
        state = self.run_state or "?"
        return f"{where}, {self.checkpoint}.pt (epoch {self.epoch}), evaluated while the run was {state}"

    def to_dict(self) -> dict[str, Any]:
        """Provenance first, then the metrics, flat (the file stays readable by people and old scripts)."""
        provenance = {"run": self.run, "part": self.part, "checkpoint": self.checkpoint, "domain": self.domain,
                      "epoch": self.epoch, "run_state": self.run_state, "created": self.created}  # fmt: skip
        return {**provenance, **{k: v for k, v in self.metrics.items() if k not in _PROVENANCE}}

    @classmethod
    def from_dict(cls, values: Any) -> EvaluationRecord:
        """Checked: a damaged or incomplete file is a :class:`StyleclsError` (never a silently dropped run)."""
        if not isinstance(values, dict):
            raise StyleclsError(f"expected a JSON object, got {type(values).__name__}")
        for key in EVALUATION_METRICS:
            value = values.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise StyleclsError(f"{key!r} is {value!r}, not a fraction in [0, 1]")
        return cls(
            part=str(values.get("part") or "test"), checkpoint=str(values.get("checkpoint") or "best"),
            epoch=_int_or_none(values.get("epoch")), run_state=str(values.get("run_state") or ""),
            domain=values.get("domain", values.get("domain_filter")) or None, run=str(values.get("run") or ""),
            created=str(values.get("created") or ""), metrics={k: v for k, v in values.items() if k not in _PROVENANCE},
        )  # fmt: skip


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StyleclsError(f"{value!r} is not an epoch number") from None


def _float_or_none(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise StyleclsError(f"{value!r} is not a number") from None
