"""What a recalibration block learned (``stylecls inspect``): style weights and gate statistics.

Two views, both written into ``RUN/inspect/``:

- **Style weights** (SRM with CFC integration): per layer, the BatchNorm-folded CFC weights of each
  channel for the style mean μ and the style std σ
  (:meth:`~stylecls.blocks.StyleRecalibration.effective_weights`) — the paper's analysis of which
  style statistic each layer relies on. ``style_weights.csv`` (one row per channel) and
  ``style_weights.png``.
- **Gates** (every gated block: SRM, SE, GE, ECA): forward hooks on each block's ``activation``
  collect the gate values of every image of the evaluation set (all rows the run did not train on:
  its val and test parts), grouped by class and by domain. ``gates.csv`` holds per (layer, group)
  the mean, std and deciles of the gate values and ``distance``: the mean absolute difference
  between the group's average gate vector and the average over all images — large where a layer
  treats, say, sketches differently from photos. ``gates_by_domain.png`` and ``gates_by_class.png``
  plot them; an SE run gives the same files, so the two can be put side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from stylecls.blocks import Recalibration, StyleRecalibration
from stylecls.device import select_device
from stylecls.errors import StyleclsError
from stylecls.evaluate import NonFiniteOutputs, predict
from stylecls.plotting import figure
from stylecls.runfolder import RunFolder

__all__ = [
    "DISTANCE_NOTE", "GateStats", "InspectResult", "gate_statistics", "gated_blocks", "inspect_run", "plot_gates",
    "plot_style_weights", "style_weights",
]  # fmt: skip

BINS = 100
#: what the "domain distance" of ``gates.csv``, the figures and ``stylecls inspect``'s table means
DISTANCE_NOTE = (
    "domain distance: the mean over a layer's channels of |the domain's average gate value - the average gate "
    "value over all images|; 0 when the layer gates that domain's images like all others, larger where it "
    "recalibrates them differently (the largest names the domain)"
)


@dataclass
class InspectResult:
    style_weights: pd.DataFrame | None
    gates: pd.DataFrame
    out_dir: Path
    files: list[Path]


def gated_blocks(model: nn.Module) -> dict[str, Recalibration]:
    """The model's recalibration blocks by module name (``layer1.0.recalibration`` ...)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, Recalibration)}


def _layer(name: str) -> str:
    return name.removesuffix(".recalibration")


def style_weights(model: nn.Module) -> pd.DataFrame | None:
    """Effective CFC weights per channel of every SRM block: columns layer, channel, mean, std.

    ``None`` when the model has no SRM block with CFC integration (SE, or SRM's MLP ablation).
    Single-statistic SRM variants fill only their own column.
    """
    frames = []
    for name, block in gated_blocks(model).items():
        if not isinstance(block, StyleRecalibration) or block.integration != "cfc":
            continue
        w = block.effective_weights().cpu().numpy()
        stats = ["mean", "std"] if block.pooling == "mean+std" else [block.pooling]
        frame = pd.DataFrame(w, columns=stats)
        frame.insert(0, "channel", np.arange(len(frame)))
        frame.insert(0, "layer", _layer(name))
        frames.append(frame)
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True).reindex(columns=["layer", "channel", "mean", "std"])


class GateStats:
    """Streaming gate statistics per (layer, group) from forward hooks on ``block.activation``.

    Groups are the classes and the domains; per group it keeps the sum of the gate vectors, the sum
    of squares and a histogram over [0, 1], so memory does not grow with the number of images.
    """

    def __init__(self, model: nn.Module, labels: np.ndarray, domains: np.ndarray, classes: list[str]) -> None:
        self.blocks = gated_blocks(model)
        if not self.blocks:
            raise StyleclsError("this model has no gated blocks (block 'none'): there are no gates to inspect")
        self.classes = list(classes)
        self.domains = sorted(set(domains))
        dom_index = {d: i for i, d in enumerate(self.domains)}
        k = len(self.classes)
        self.groups = [("class", c) for c in self.classes] + [("domain", d) for d in self.domains]
        self._class_of = torch.tensor(np.asarray(labels), dtype=torch.long)
        self._domain_of = torch.tensor([k + dom_index[d] for d in domains], dtype=torch.long)
        self._rows: torch.Tensor | None = None
        self.count = torch.zeros(len(self.groups), dtype=torch.float64)
        self.sums: dict[str, torch.Tensor] = {}
        self.sumsq: dict[str, torch.Tensor] = {}
        self.hist: dict[str, torch.Tensor] = {}
        self._handles = [
            block.activation.register_forward_hook(self._hook(name)) for name, block in self.blocks.items()
        ]

    def set_rows(self, rows: torch.Tensor) -> None:
        """Row positions of the batch about to run (:func:`~stylecls.evaluate.predict`'s ``on_batch``)."""
        self._rows = rows.cpu()
        groups = torch.cat([self._class_of[self._rows], self._domain_of[self._rows]])
        self.count += torch.bincount(groups, minlength=len(self.groups)).double()

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            g = output.detach().float().reshape(output.shape[0], -1).cpu().double()  # (N, C)
            if name not in self.sums:
                c, n_groups = g.shape[1], len(self.groups)
                self.sums[name] = torch.zeros(n_groups, c, dtype=torch.float64)
                self.sumsq[name] = torch.zeros(n_groups, dtype=torch.float64)
                self.hist[name] = torch.zeros(n_groups * BINS, dtype=torch.float64)
            bins = (g * BINS).long().clamp_(0, BINS - 1)
            for group_of in (self._class_of, self._domain_of):
                grp = group_of[self._rows]
                self.sums[name].index_add_(0, grp, g)
                self.sumsq[name].index_add_(0, grp, g.square().sum(1))
                flat = (grp[:, None] * BINS + bins).flatten()
                self.hist[name] += torch.bincount(flat, minlength=self.hist[name].numel()).double()

        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()

    def table(self) -> pd.DataFrame:
        """One row per (layer, group): count, mean, std, q10/q50/q90 and distance (see module doc)."""
        rows = []
        k = len(self.classes)
        edges = np.linspace(0, 1, BINS + 1)[1:]
        for name in self.blocks:
            if name not in self.sums:
                continue
            sums, sumsq = self.sums[name].numpy(), self.sumsq[name].numpy()
            hist = self.hist[name].numpy().reshape(len(self.groups), BINS)
            c = sums.shape[1]
            count = self.count.numpy()
            overall = sums[:k].sum(0) / max(count[:k].sum(), 1)  # every image once (its class)
            for i, (kind, group) in enumerate(self.groups):
                if count[i] == 0:
                    continue
                mean_vec = sums[i] / count[i]
                mean = mean_vec.mean()
                var = sumsq[i] / (count[i] * c) - mean**2
                cdf = np.cumsum(hist[i]) / hist[i].sum()
                q = [float(edges[np.searchsorted(cdf, p)]) for p in (0.1, 0.5, 0.9)]
                rows.append(
                    {
                        "layer": _layer(name), "by": kind, "group": group, "count": int(count[i]),
                        "mean": mean, "std": float(np.sqrt(max(var, 0.0))),
                        "q10": q[0], "q50": q[1], "q90": q[2],
                        "distance": float(np.abs(mean_vec - overall).mean()),
                    }
                )
        return pd.DataFrame(rows)


def gate_statistics(
    model: nn.Module,
    rows: pd.DataFrame,
    classes: list[str],
    img_size: int,
    device: torch.device | str = "cpu",
    batch_size: int = 128,
    workers: int = 0,
    pixels: Any = None,
) -> pd.DataFrame:
    """Run ``model`` over ``rows`` (through the run's pixel pipeline ``pixels``) with gate hooks attached;
    the :meth:`GateStats.table`."""
    rows = rows.reset_index(drop=True)
    stats = GateStats(model, rows["label"].to_numpy(), rows["domain"].astype(str).to_numpy(), classes)
    try:
        predict(model, rows, img_size, device, batch_size, workers, on_batch=stats.set_rows, pixels=pixels)
    finally:
        stats.remove()
    return stats.table()


# --- figures -------------------------------------------------------------------------------------


def plot_style_weights(weights: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Per layer: mean |weight| on the style mean vs the style std, and how many channels prefer σ."""
    layers = list(dict.fromkeys(weights["layer"]))
    absw = weights.assign(mean=weights["mean"].abs(), std=weights["std"].abs()).groupby("layer", sort=False)
    avg = absw[["mean", "std"]].mean().reindex(layers)
    sd = absw[["mean", "std"]].std().reindex(layers).fillna(0)
    x = np.arange(len(layers))
    fig = figure(max(6.0, 0.5 * len(layers) + 2), 6.5)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    for offset, stat, colour in ((-0.2, "mean", "tab:blue"), (0.2, "std", "tab:orange")):
        if avg[stat].notna().any():  # |w| >= 0: the lower error bar stops at zero
            err = np.vstack([np.minimum(sd[stat], avg[stat]), sd[stat]])
            ax1.bar(x + offset, avg[stat], 0.4, yerr=err, label=f"style {stat} ({'μ' if stat == 'mean' else 'σ'})",
                    color=colour, capsize=2)
    ax1.set_ylabel("mean |effective CFC weight|\n(bars: ±1 std over channels, ≥ 0)")
    ax1.set_ylim(bottom=0)
    ax1.legend(fontsize=8)
    if avg["mean"].notna().all() and avg["std"].notna().all():
        prefer = (weights["std"].abs() > weights["mean"].abs()).groupby(weights["layer"], sort=False).mean()
        ax2.bar(x, prefer.reindex(layers), 0.6, color="tab:green")
        ax2.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax2.set_ylim(0, 1)
    ax2.set_ylabel("channels with |w_σ| > |w_μ|")
    ax2.set_xticks(x, layers, rotation=60, ha="right", fontsize=8)
    fig.suptitle(title or "SRM style weights per layer (BatchNorm folded in)", fontsize=10)
    fig.savefig(path)
    return path


def plot_gates(gates: pd.DataFrame, by: str, path: Path, title: str = "") -> Path | None:
    """Gate statistics per layer for the groups of one kind (``domain`` or ``class``)."""
    sub = gates[gates["by"] == by]
    if sub.empty:
        return None
    layers = list(dict.fromkeys(sub["layer"]))
    groups = list(dict.fromkeys(sub["group"]))
    mean = sub.pivot(index="group", columns="layer", values="mean").reindex(index=groups, columns=layers)
    dist = sub.pivot(index="group", columns="layer", values="distance").reindex(index=groups, columns=layers)
    x = np.arange(len(layers))
    if by == "domain" or len(groups) <= 10:
        fig = figure(max(6.0, 0.5 * len(layers) + 2), 6.5)
        ax1, ax2 = fig.subplots(2, 1, sharex=True)
        for g in groups:
            ax1.plot(x, mean.loc[g], marker="o", ms=3, label=g)
            ax2.plot(x, dist.loc[g], marker="o", ms=3, label=g)
        ax1.set_ylabel("mean gate value")
        ax1.legend(fontsize=7, ncol=min(len(groups), 4))
        ax2.set_ylabel(f"{by} distance:\nmean over channels of\n|{by} mean gate − overall mean gate|")
        ax2.set_xticks(x, layers, rotation=60, ha="right", fontsize=8)
        ax2.set_ylim(bottom=0)
        ax2.set_title(f"0: the layer gates this {by}'s images like all others; larger: it recalibrates them "
                      "differently", fontsize=8)
    else:  # many classes: a heatmap reads better than 47 lines
        fig = figure(max(6.0, 0.35 * len(layers) + 3), max(4.0, 0.18 * len(groups) + 2))
        ax = fig.subplots()
        im = ax.imshow(dist.to_numpy(), aspect="auto", cmap="viridis")
        ax.set_yticks(range(len(groups)), groups, fontsize=float(np.clip(300 / len(groups), 5, 9)))
        ax.set_xticks(x, layers, rotation=60, ha="right", fontsize=8)
        fig.colorbar(im, ax=ax, label=f"mean over channels of |{by} mean gate − overall|")
    fig.suptitle(title or f"gate values by {by}", fontsize=10)
    fig.savefig(path)
    return path


# --- the command ---------------------------------------------------------------------------------


def inspect_run(
    run: str | Path | RunFolder,
    checkpoint: str = "best",
    data_root: str | Path | None = None,
    device: str = "auto",
    batch_size: int = 128,
    workers: int = 0,
) -> InspectResult:
    """Write ``RUN/inspect/``: style weights (SRM) and gate statistics by class and by domain."""
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    spec = run.spec()
    dev = select_device(device)
    model, _ = run.build_model(checkpoint, dev)
    block = spec.block
    if not gated_blocks(model):
        raise StyleclsError(f"{run.path} uses block {block!r}, which has no gates or style weights to inspect")
    where = run.checkpoint_path(checkpoint)
    if not all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point()):
        raise StyleclsError(f"{where} holds NaN or infinite weights (its training diverged): there is nothing to "
                            "inspect; retrain it with a lower --lr")
    rows = run.rows(data_root)
    rows = rows[rows["part"] != "train"]
    name = f"{spec.arch} + {block} on {spec.dataset}"
    weights = style_weights(model)
    pixels = run.pixels()
    try:  # every number first, then the files: a failure leaves no half-written inspect folder
        gates = gate_statistics(model, rows, run.classes, pixels.img_size, dev, batch_size, workers, pixels=pixels)
    except NonFiniteOutputs as e:
        raise StyleclsError(f"{where}: {e}") from None
    out = run.inspect_dir
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    if weights is not None:
        weights.to_csv(out / "style_weights.csv", index=False)
        title = f"{name}: SRM style weights"
        files += [out / "style_weights.csv", plot_style_weights(weights, out / "style_weights.png", title)]
    gates.to_csv(out / "gates.csv", index=False)
    files.append(out / "gates.csv")
    for by in ("domain", "class"):
        p = plot_gates(gates, by, out / f"gates_by_{by}.png", f"{name}: gates by {by} (val + test images)")
        if p is not None:
            files.append(p)
    return InspectResult(weights, gates, out, files)
