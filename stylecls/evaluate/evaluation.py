"""``stylecls evaluate``: a run folder in, an evaluation (``RUN/eval/``) out.

Everything is computed from the run folder alone: its spec says how to rebuild the model and how
its pixels were made, its split rows list the exact images of every part, the checkpoint holds the
weights. What is written (through :class:`~stylecls.runfolder.Evaluations`): the evaluation's record
(what it is of: part, checkpoint and its epoch, the run's state; and the headline numbers, + the domain gap
for held-out domains), the predictions of every image predicted, per-class and per-domain accuracy, the
confusion counts, and two figures (confusion.png, row-normalised; mistakes.png, the most confident mistakes).

A run trained with ``skip_bad`` is evaluated the same way: unreadable or missing images are
skipped and counted (``skipped`` in the record), never silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stylecls.atomic import now
from stylecls.data.cache import CacheSource
from stylecls.device import select_device
from stylecls.errors import StyleclsError, unknown_name
from stylecls.evaluate.metrics import (
    classification_metrics,
    confusion_table,
    domain_gap,
    per_class_domain_table,
    per_class_table,
    per_domain_table,
)  # fmt: skip
from stylecls.evaluate.predict import NonFiniteOutputs, predict, predictions_frame
from stylecls.plotting import plot_confusion, plot_mistakes
from stylecls.record import EvaluationRecord
from stylecls.runfolder import EVALUATED_PARTS, EvaluationTables, RunFolder


@dataclass
class EvalResult:
    """What :func:`evaluate` wrote: the headline metrics and the tables behind them."""

    metrics: dict[str, Any]
    predictions: pd.DataFrame
    per_class: pd.DataFrame
    confusion: pd.DataFrame
    per_domain: pd.DataFrame | None
    out_dir: Path


def select_rows(
    rows: pd.DataFrame, part: str | None = None, domain: str | None = None
) -> tuple[pd.DataFrame, str]:
    """The rows to report on and the part they come from.

    ``part=None`` means the test part, or the validation part where a run has no test part.
    ``domain`` keeps one domain of that part (a filter; the run's held-out domain is its spec's ``test_domain``).
    """
    parts = set(rows["part"])
    if part is None:
        part = "test" if "test" in parts else "val"
    elif part not in EVALUATED_PARTS:
        raise unknown_name("part", part, EVALUATED_PARTS)
    chosen = rows[rows["part"] == part]
    if chosen.empty:
        raise StyleclsError(f"this run has no {part!r} part; parts present: {', '.join(sorted(parts))}")
    if domain is not None:
        present = sorted(set(chosen["domain"]))
        if domain not in present:
            raise StyleclsError(
                f"domain {domain!r} has no images in the {part!r} part of this run; "
                f"domains there: {', '.join(present)}"
            )
        chosen = chosen[chosen["domain"] == domain]
    return chosen, part


def held_out_rows(rows: pd.DataFrame, domain: str | None = None) -> pd.DataFrame:
    """Test-part rows of domains the model never trained on (optionally one of them)."""
    train_domains = set(rows.loc[rows["part"] == "train", "domain"])
    held = rows[(rows["part"] == "test") & ~rows["domain"].isin(train_domains)]
    if domain is not None:
        held = held[held["domain"] == domain]
    return held


def _rows_to_predict(rows: pd.DataFrame, part: str, domain: str | None) -> pd.DataFrame:
    """The reported part, plus the validation part when the run has a held-out domain (domain gap)."""
    needed = rows["part"] == part
    if domain is not None:
        needed &= rows["domain"] == domain
    held = held_out_rows(rows, domain)
    if not held.empty:
        needed |= rows["part"] == "val"
        needed |= rows.index.isin(held.index)
    return rows[needed].reset_index(drop=True)


def _deprecated(old: str, new: str, value: str | None, current: str | None) -> str | None:
    """The value of a renamed keyword (``split`` -> ``part``, ``test_domain`` -> ``domain``), with a warning."""
    if value is None:
        return current
    warnings.warn(f"evaluate({old}=...) is deprecated, use {new}=...", DeprecationWarning, stacklevel=3)
    if current is not None and current != value:
        raise StyleclsError(f"{old}={value!r} and {new}={current!r} disagree; pass {new} only")
    return value


def evaluate(
    run: str | Path | RunFolder,
    checkpoint: str = "best",
    part: str | None = None,
    domain: str | None = None,
    data_root: str | Path | None = None,
    device: str = "auto",
    batch_size: int = 128,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
    *,
    split: str | None = None,
    test_domain: str | None = None,
) -> EvalResult:
    """Evaluate ``checkpoint`` of a run folder on ``part`` (test, or val where there is no test part),
    optionally on one ``domain`` of it, and write it through the run's evaluations (see the module docstring):
    the default evaluation (best.pt, reported part, all domains) is ``RUN/eval/``; any other goes beside it
    (``Evaluations.dir_for``) and never replaces it.

    The model runs once over the union of the rows needed. ``progress(done, total)`` is called
    after each batch. ``split`` and ``test_domain`` are the deprecated names of ``part`` and ``domain``.
    """
    part = _deprecated("split", "part", split, part)
    domain = _deprecated("test_domain", "domain", test_domain, domain)
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    record = run.record()
    spec, classes = record.spec, record.data.classes
    rows = run.rows(data_root)
    chosen, part = select_rows(rows, part, domain)
    train_domains = set(rows.loc[rows["part"] == "train", "domain"])
    union = _rows_to_predict(rows, part, domain)

    run_state = run.status().state  # before predicting: a run that finishes meanwhile is not "done" here
    dev = select_device(device)
    model, state = run.build_model(checkpoint, dev)
    total, done = len(union), 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    pixels = run.pixels()
    source = CacheSource.of(spec.dataset, data_root if data_root is not None else record.data.root)
    try:
        probs = predict(model, union, pixels.img_size, dev, batch_size, workers, progress=advance,
                        skip_bad=spec.skip_bad, pixels=pixels, cache_source=source)
    except NonFiniteOutputs as e:
        raise NonFiniteOutputs(f"{run.checkpoint_path(checkpoint)}: {e}") from None
    read = ~np.isnan(probs).any(axis=1)
    skipped = union.loc[~read, "path"].tolist()
    union, probs = union[read].reset_index(drop=True), probs[read]
    preds = predictions_frame(union, probs, classes)
    mask = (preds["part"] == part).to_numpy(copy=True)
    if domain is not None:
        mask &= (preds["domain"] == domain).to_numpy()
    ev, ev_probs = preds[mask], probs[mask]
    if ev.empty:
        raise StyleclsError(f"none of the {len(chosen):,} images of the {part!r} part could be read")

    metrics: dict[str, Any] = {
        "test_domain": spec.test_domain,  # the run's held-out domain (leave-one-domain-out)
        **classification_metrics(ev["label"].to_numpy(), ev_probs),
        "skipped": len(skipped),
        "skipped_paths": skipped[:20],
    }
    per_class = per_class_table(ev["label"].to_numpy(), ev["pred"].to_numpy(), classes)
    confusion = confusion_table(ev["label"].to_numpy(), ev["pred"].to_numpy(), classes)

    tables = EvaluationTables(preds, per_class, confusion)
    if len(set(rows["domain"])) > 1:
        tables.per_domain = per_domain = per_domain_table(preds, train_domains)
        tables.per_class_domain = per_class_domain_table(preds, classes)
        metrics["per_domain"] = {f"{r.domain} ({r.part})": float(r.accuracy) for r in per_domain.itertuples()}
        metrics.update(domain_gap(preds, train_domains, domain))
    evaluation = EvaluationRecord(
        part=part, checkpoint=checkpoint, epoch=state.get("epoch"), run_state=run_state, metrics=metrics,
        domain=domain, run=record.name or run.path.name, created=now(),
    )  # fmt: skip
    out = run.evaluations.write(evaluation, tables)
    where = f"{part}" + (f", {domain}" if domain else "")
    title = f"{spec.arch} + {spec.block} on {spec.dataset} ({where}): top-1 {metrics['top1']:.1%}"
    plot_confusion(confusion, out / "confusion.png", title)
    if plot_mistakes(ev, pixels, out / "mistakes.png") is None:
        (out / "mistakes.png").unlink(missing_ok=True)
    return EvalResult(evaluation.to_dict(), preds, per_class, confusion, tables.per_domain, out)
