"""One test image under every style-test perturbation, and each run's decision on it (the notebook's view).

The pair is the one ``stylecls style-test`` draws at ``position`` with the same seed, so the pictures are
the images behind the CSV's numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from stylecls.device import select_device
from stylecls.errors import StyleclsError
from stylecls.evaluate import select_rows
from stylecls.presentation import method_of
from stylecls.runfolder import RunFolder
from stylecls.style_test.pairs import PairDataset, draw_pairs
from stylecls.style_test.perturb import amplitude_phase, blend, greyscale, match_histograms, to_uint8
from stylecls.style_test.run import Decider, captured_stats, stages, swapped_stats

__all__ = ["Example", "example", "example_decisions"]


@dataclass
class Example:
    """A content image A, its other-class partner B, its colour reference C, and A perturbed (uint8 (3, S, S))."""

    images: dict[str, torch.Tensor]  # "A (content)", "B (style)", "C (colour reference)", then the perturbations
    classes: dict[str, str]  # A's and B's true class
    content: torch.Tensor
    style: torch.Tensor


def example(
    run: str | Path | RunFolder,
    position: int = 0,
    seed: int = 0,
    strength: float = 1.0,
    low_band: float = 0.1,
    part: str | None = None,
    data_root: str | Path | None = None,
) -> Example:
    """Pair ``position`` of the run's style test (same ``seed``) and its perturbations at ``strength``
    (amplitude-phase also with FDA's ``low_band`` β)."""
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    rows = run.rows(data_root)
    part_rows, _ = select_rows(rows, part)
    pairs = draw_pairs(rows, part_rows, None, seed)
    if not 0 <= position < len(pairs):
        raise StyleclsError(f"pair {position} does not exist: the part has {len(pairs)} pairs")
    one = pairs.iloc[[position]].reset_index(drop=True)
    sample, _, why = PairDataset(rows["path"].astype(str).tolist(), one, run.pixels())[0]
    if sample is None:
        raise StyleclsError(f"pair {position} has an unreadable image ({why})")
    a, b, c = sample
    A, B, C = a[None], b[None], c[None]
    images = {
        "A (content)": a, "B (style)": b, "C (colour reference)": c,
        "A phase + B amplitude": to_uint8(amplitude_phase(A.float(), B.float(), strength))[0],
        f"B's low band β={low_band:g}": to_uint8(amplitude_phase(A.float(), B.float(), low_band))[0],
        "greyscale": blend(A, greyscale(A), strength)[0],
        "C's colour histogram": blend(A, match_histograms(A, C), strength)[0],
    }  # fmt: skip
    names = run.classes
    classes = {"A": names[int(rows.loc[one.at[0, "a"], "label"])], "B": names[int(rows.loc[one.at[0, "b"], "label"])]}
    return Example(images, classes, A, B)


def example_decisions(
    run: str | Path | RunFolder, ex: Example, strength: float = 1.0, device: str = "cpu"
) -> pd.Series:
    """The run's (best.pt) predicted class for every image of ``ex``, plus A with B's feature statistics per stage."""
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    dev = select_device(device)
    model, _ = run.build_model("best", dev)
    decide, names = Decider(model, dev), run.classes
    batch = torch.stack(list(ex.images.values()))
    out = {name: names[int(p)] for name, p in zip(ex.images, decide(batch), strict=True)}
    style: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    modules = stages(model)
    with captured_stats(modules, style):
        decide(ex.style)
    for stage, module in modules.items():
        with swapped_stats(module, *style[stage], strength):
            out[f"A with B's {stage} statistics"] = names[int(decide(ex.content)[0])]
    return pd.Series(out, name=f"{method_of(run.spec()).label} ({run.path.name})")
