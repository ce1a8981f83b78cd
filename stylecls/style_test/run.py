"""``stylecls style-test``: how much a run's model relies on style, in the dataset's own labels.

One streamed pass over seeded pairs (:mod:`stylecls.style_test.pairs`) of the tested part: each batch is
decoded once through the run's evaluation pixels, perturbed by every kind and strength
(:mod:`stylecls.style_test.perturb`), and only the decisions (class indices) are kept. Strength 0 is the
clean image through the same model, normalisation and softmax as ``stylecls evaluate``, so its accuracy
is evaluate's top-1 on the same rows.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from stylecls.data.cache import CacheSource
from stylecls.device import select_device
from stylecls.errors import StyleclsError, unknown_name
from stylecls.evaluate import select_rows
from stylecls.evaluate.predict import NonFiniteOutputs
from stylecls.presentation import method_of
from stylecls.record import EvaluationRecord
from stylecls.runfolder import RunFolder
from stylecls.style_test.pairs import PairBatch, PairDataset, draw_pairs, pair_loader
from stylecls.style_test.perturb import (
    adain,
    amplitude_phase,
    blend,
    channel_stats,
    greyscale,
    match_histograms,
    to_uint8,
)  # fmt: skip

__all__ = ["DEFAULT_STRENGTHS", "KINDS", "SHIFTS", "Decider", "StyleTestResult", "stages", "style_test"]

KINDS = ("amplitude-phase", "feature-stats", "style-shift")
#: strength 0 (the clean image) is always added; amplitude-phase's strength is FDA's β (1 = the whole amplitude)
DEFAULT_STRENGTHS = {"amplitude-phase": (0.05, 0.2, 1.0), "feature-stats": (0.5, 1.0), "style-shift": (0.5, 1.0)}
SHIFTS = ("greyscale", "histogram")

Key = tuple[str, str, float]  # (kind, test, strength): test is "amplitude", "stage<k>" or a shift


@dataclass
class StyleTestResult:
    """What :func:`style_test` wrote: one table per kind, how long it took, and notes for the user (``--pairs``
    beyond the part's images)."""

    tables: dict[str, pd.DataFrame]
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    pairs: int = 0
    skipped: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


class Decider:
    """The model's decisions (argmax of the softmax, as ``evaluate``) for uint8 images, on its device."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.model, self.device = model.eval(), device
        self.forward_passes = 0

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        from stylecls.data import normalize

        self.forward_passes += 1
        logits = self.model(normalize(images.to(self.device, non_blocking=True))).float()
        if not bool(torch.isfinite(logits).all()):
            raise NonFiniteOutputs("the model's outputs are not finite (NaN or inf): the checkpoint is unusable")
        return torch.softmax(logits, dim=-1).argmax(dim=1).cpu()


def stages(model: nn.Module) -> dict[str, nn.Module]:
    """The ResNet stages (``layer1`` ... ``layer4``; three in cifar_resnet) as ``stage1`` ...: their outputs
    are the feature maps whose statistics are swapped."""
    layers = {int(m.group(1)): mod for name, mod in model.named_children() if (m := re.fullmatch(r"layer(\d+)", name))}
    if not layers:
        raise StyleclsError(f"{type(model).__name__} has no ResNet stages (layer1, layer2, ...) to swap statistics in")
    return {f"stage{k}": layers[k] for k in sorted(layers)}


@contextmanager
def captured_stats(modules: dict[str, nn.Module], into: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> Iterator[None]:
    """While open, each forward pass stores every module's output channel statistics in ``into``."""

    def hook(name: str) -> Callable[..., None]:
        def store(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            into[name] = channel_stats(output)

        return store

    handles = [m.register_forward_hook(hook(name)) for name, m in modules.items()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def swapped_stats(module: nn.Module, mean: torch.Tensor, std: torch.Tensor, alpha: float) -> Iterator[None]:
    """While open, ``module``'s output is AdaIN'd towards (``mean``, ``std``) by ``alpha`` (no decoder needed)."""
    handle = module.register_forward_hook(lambda m, i, output: adain(output, mean, std, alpha))
    try:
        yield
    finally:
        handle.remove()


def _strengths(kinds: Sequence[str], strengths: Sequence[float] | None) -> dict[str, tuple[float, ...]]:
    if strengths is not None:
        bad = [s for s in strengths if not 0 <= s <= 1]
        if bad:
            raise StyleclsError(f"--strength must be between 0 and 1, not {bad[0]}")
    return {k: tuple(sorted({0.0, *map(float, strengths if strengths is not None else DEFAULT_STRENGTHS[k])}))
            for k in kinds}  # fmt: skip


def check_kinds(kinds: Sequence[str] | None) -> tuple[str, ...]:
    """The requested kinds in their canonical order (all of them for None)."""
    for k in kinds or ():
        if k not in KINDS:
            raise unknown_name("--kind", k, KINDS)
    return tuple(k for k in KINDS if not kinds or k in kinds)


def batch_decisions(
    batch: PairBatch, strengths: dict[str, tuple[float, ...]], decide: Decider, stage_modules: dict[str, nn.Module]
) -> Iterator[tuple[Key, torch.Tensor]]:
    """The decisions on one batch of pairs for every (kind, test, strength); strength 0 is the clean image."""
    clean = decide(batch.a)
    for beta in strengths.get("amplitude-phase", ()):
        a, b = batch.a.to(decide.device), batch.b.to(decide.device)
        yield ("amplitude-phase", "amplitude", beta), (
            clean if beta == 0 else decide(to_uint8(amplitude_phase(a.float(), b.float(), beta)))
        )
    if "feature-stats" in strengths:
        style: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        with captured_stats(stage_modules, style):
            decide(batch.b)
        for stage, module in stage_modules.items():
            for alpha in strengths["feature-stats"]:
                if alpha == 0:
                    yield ("feature-stats", stage, alpha), clean
                    continue
                with swapped_stats(module, *style[stage], alpha):
                    yield ("feature-stats", stage, alpha), decide(batch.a)
    if "style-shift" in strengths:
        shifted = {"greyscale": greyscale(batch.a), "histogram": match_histograms(batch.a, batch.c)}
        for shift in SHIFTS:
            for s in strengths["style-shift"]:
                yield ("style-shift", shift, s), clean if s == 0 else decide(blend(batch.a, shifted[shift], s))


def style_test(
    run: str | Path | RunFolder,
    kinds: Sequence[str] | None = None,
    part: str | None = None,
    strengths: Sequence[float] | None = None,
    pairs: int | None = None,
    seed: int = 0,
    data_root: str | Path | None = None,
    device: str = "auto",
    batch_size: int = 128,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> StyleTestResult:
    """Run the style tests ``kinds`` (default all of :data:`KINDS`) on ``part`` (test, or val where there is
    none) of a run with its best.pt, and write ``RUN/style_test/`` (a CSV per kind, the pairs, a figure).

    ``strengths`` replace every kind's defaults (:data:`DEFAULT_STRENGTHS`; 0 is always added); ``pairs``
    caps the number of content images (a seeded sample; more than the part has: all of them, said in
    :attr:`StyleTestResult.notes`); ``progress(done, total)`` follows each batch. Each table records what it
    measured (part, checkpoint, epoch, run state), as an evaluation does.
    """
    from stylecls.style_test.tables import domain_rows, kind_tables, with_provenance, write_outputs

    started = time.perf_counter()
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    kinds = check_kinds(kinds)
    by_kind = _strengths(kinds, strengths)
    record = run.record()
    spec = record.spec
    rows = run.rows(data_root)
    part_rows, part = select_rows(rows, part)
    drawn = draw_pairs(rows, part_rows, pairs, seed)
    notes = []
    if pairs is not None and pairs > len(part_rows):
        notes.append(f"--pairs {pairs:,} is more than the {len(part_rows):,} images of the {part} part: "
                     f"testing all {len(part_rows):,}")
    run_state = run.status().state  # before testing: a run that finishes meanwhile is not "done" here
    dev = select_device(device)
    model, state = run.build_model("best", dev)
    measured = EvaluationRecord(part, "best", state.get("epoch"), run_state, metrics={})
    decide = Decider(model, dev)
    stage_modules = stages(model) if "feature-stats" in kinds else {}
    need = [k for k, used_by in (("b", ("amplitude-phase", "feature-stats")), ("c", ("style-shift",)))
            if set(used_by) & set(kinds)]  # fmt: skip
    source = CacheSource.of(spec.dataset, data_root if data_root is not None else record.data.root)
    paths = rows["path"].astype(str).tolist()
    loader = pair_loader(PairDataset(paths, drawn, run.pixels(), need, source), batch_size, workers,
                         pin_memory=dev.type == "cuda")
    decisions: dict[Key, list[torch.Tensor]] = defaultdict(list)
    kept: list[torch.Tensor] = []
    failed: list[tuple[int, str]] = []
    for batch in loader:
        failed += batch.failed
        if failed and not spec.skip_bad:
            i, why = failed[0]
            raise StyleclsError(f"cannot decode an image of pair {i} ({why}); replace or delete the file")
        if len(batch.positions):
            kept.append(batch.positions)
            for key, pred in batch_decisions(batch, by_kind, decide, stage_modules):
                decisions[key].append(pred)
        if progress is not None:
            progress(sum(map(len, kept)) + len(failed), len(drawn))
    if not kept:
        raise StyleclsError(f"none of the {len(drawn):,} pairs of the {part!r} part could be read")
    used = drawn.iloc[torch.cat(kept).numpy()].reset_index(drop=True)
    preds = {key: torch.cat(p).numpy() for key, p in decisions.items()}
    tables = kind_tables(preds, rows, used, part, seed)
    if "style-shift" in tables and rows["domain"].nunique() > 1:
        extra = domain_rows(rows, used, preds[("style-shift", SHIFTS[0], 0.0)], part, seed, model, run, dev,
                            batch_size, workers, source)  # fmt: skip
        tables["style-shift"] = pd.concat([tables["style-shift"], extra], ignore_index=True)
    tables = {kind: with_provenance(t, measured) for kind, t in tables.items()}
    out_dir = run.style_test_dir
    title = f"{method_of(spec).label} on {spec.arch}, {spec.dataset} ({part}, best.pt epoch {measured.epoch})"
    files = write_outputs(tables, used, out_dir, title=title)
    return StyleTestResult(tables, out_dir, files, len(used), len(failed), time.perf_counter() - started, notes)

