"""The report's figures: each writes ``NAME.png`` and the numbers it draws as ``NAME.csv`` beside it.

Accuracies are drawn in % (the inputs are fractions). Figures are drawn off-screen
(:func:`stylecls.plotting.figure`), so they work in a command, a test and a notebook alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from stylecls.plotting import figure
from stylecls.report.pairing import DEFAULT_BY, Pairing, axis_values
from stylecls.report.runs import confusion, epoch_metrics, per_class_accuracy
from stylecls.report.stats import CiMethod, PairedStats, display_name

__all__ = ["accuracy_by_part", "confusion_difference", "paired_differences", "per_class_difference", "training_curves"]

SHORT_CI = {"bootstrap": "bootstrap over pairs", "t": "t-interval", "auto": "t below 6 pairs, else bootstrap"}
#: (train, val, held-out test per ``--eval-test-every``, axis label) columns of metrics.csv.
CURVES = (("train_loss", "val_loss", "test_loss", "loss"), ("train_acc", "val_acc", "test_acc", "accuracy (%)"))
#: (line style, marker) of the train, validation and test curves: told apart without colour.
LINES = ((":", "o"), ("-", "."), ("--", "x"))


def _run_pairs(pairing: Pairing) -> list[tuple[str, str]]:
    return list(zip(pairing.pairs["run_a"], pairing.pairs["run_b"], strict=True))


def _save(fig: object, data: pd.DataFrame, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path.with_suffix(".png"))  # type: ignore[attr-defined]
    data.to_csv(path.with_suffix(".csv"), index=False)
    return path.with_suffix(".png")


def accuracy_by_part(xlabel: str, data: pd.DataFrame, path: Path, by: str = DEFAULT_BY,
                     label: str = "top-1 accuracy (%)") -> Path:
    """Accuracy per place (held-out domain, split or domain; ``data``: run, ``by``, where, accuracy as fractions):
    mean ± sample std per axis value as error bars, each run a point."""
    data = data.assign(accuracy=100 * data["accuracy"])
    measure = "accuracy"
    places, values = sorted(data["where"].unique()), axis_values(data, by)
    fig = figure(max(4.5, 1.2 * len(places) * len(values) / 2 + 2), 3.6)
    ax = fig.add_subplot()
    width = 0.8 / len(values)
    for i, value in enumerate(values):
        xs_mean, means, stds = [], [], []
        for j, place in enumerate(places):
            v = data.loc[(data[by] == value) & (data["where"] == place), measure].to_numpy()
            if not len(v):
                continue
            x = j - 0.4 + width * (i + 0.5)
            xs_mean.append(x)
            means.append(v.mean())
            stds.append(v.std(ddof=1) if len(v) > 1 else 0.0)
            ax.scatter(np.full(len(v), x) + np.linspace(-width / 6, width / 6, len(v)), v, s=14, color=f"C{i}",
                       alpha=0.55, zorder=3)
        ax.errorbar(xs_mean, means, yerr=stds, fmt="_", markersize=14, capsize=4, color=f"C{i}",
                    label=display_name(value), zorder=4)
    ax.set_xticks(range(len(places)), places)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(label)
    ax.set_title("mean ± sample std over runs (bars); each run a point", fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, data, path)


def paired_differences(pairings: Sequence[Pairing], stats: Sequence[PairedStats], path: Path,
                       measure: str = "top1", method: CiMethod = "auto") -> Path:
    """One row per comparison: each pair's difference a − b as a point, the mean and its 95 % interval."""
    rows = []
    for p, s in zip(pairings, stats, strict=True):
        low, high = s.ci(method)
        for r in p.pairs.itertuples():
            rows.append({"comparison": f"{display_name(p.a)} − {display_name(p.b)}", "run_a": r.run_a,
                         "run_b": r.run_b, "seed": r.seed, "split": r.split, "test_domain": r.test_domain,
                         "difference": 100 * (getattr(r, f"{measure}_a") - getattr(r, f"{measure}_b")),
                         "mean": 100 * s.mean, "ci_low": 100 * low, "ci_high": 100 * high, "ci": method})
    data = pd.DataFrame(rows, columns=["comparison", "run_a", "run_b", "seed", "split", "test_domain", "difference",
                                       "mean", "ci_low", "ci_high", "ci"])
    fig = figure(6.0, 1.0 + 0.8 * max(len(stats), 1))
    ax = fig.add_subplot()
    for i, (p, s) in enumerate(zip(pairings, stats, strict=True)):
        d = 100 * (p.pairs[f"{measure}_a"] - p.pairs[f"{measure}_b"]).to_numpy(dtype=float)
        y = len(stats) - 1 - i
        ax.scatter(d, y + np.linspace(-0.18, 0.18, len(d)) if len(d) > 1 else [y] * len(d), s=14, color="C0",
                   alpha=0.6, zorder=3)
        low, high = s.ci(method)
        if np.isfinite(low):
            ax.errorbar([100 * s.mean], [y], xerr=[[100 * (s.mean - low)], [100 * (high - s.mean)]], fmt="o",
                        color="k", capsize=5, zorder=4)
        elif s.n:
            ax.scatter([100 * s.mean], [y], color="k", zorder=4)
    ax.axvline(0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(len(stats)), [f"{display_name(s.a)} − {display_name(s.b)} (n={s.n})" for s in stats][::-1])
    ax.set_xlabel("difference in accuracy (points)")
    ax.set_title(f"points: pairs; black: mean and 95 % CI ({SHORT_CI[method]})", fontsize=9)
    return _save(fig, data, path)


def training_curves(frame: pd.DataFrame, path: Path, by: str = DEFAULT_BY) -> Path:
    """Train/val loss and accuracy per epoch of every run (``metrics.csv``), one colour per axis value."""
    values = axis_values(frame, by)
    tables = []
    for r in frame.itertuples():
        m = epoch_metrics(r.run)
        if not m.empty:
            tables.append(m.assign(run=r.run, **{by: str(getattr(r, by))}))
    data = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["run", by, "epoch"])
    fig = figure(10, 3.6)
    axes = fig.subplots(1, 2)
    has_test = "test_acc" in data and pd.to_numeric(data["test_acc"], errors="coerce").notna().any()
    test = "held-out test" if frame["test_domain"].notna().any() else "test"
    for ax, (train, val, held, name) in zip(axes, CURVES, strict=True):
        scale = 100 if "acc" in train else 1
        for _run, m in data.groupby("run", sort=True):
            colour = f"C{values.index(m[by].iloc[0])}"
            for column, (style, marker) in zip((train, val, held), LINES, strict=True):
                if column in m:
                    points = m[["epoch", column]].apply(pd.to_numeric, errors="coerce").dropna()  # test: some epochs
                    ax.plot(points["epoch"], scale * points[column], style, color=colour, alpha=0.7, marker=marker,
                            fillstyle="none" if marker == "o" else "full")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for i, value in enumerate(values):
        axes[1].plot([], [], color=f"C{i}", label=display_name(value))
    kinds = ["train", "validation", f"{test} (never used to select)"][: 3 if has_test else 2]
    for kind, (style, marker) in zip(kinds, LINES, strict=False):
        axes[1].plot([], [], style, color="k", marker=marker, fillstyle="none" if marker == "o" else "full", label=kind)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"every run: training (dotted, open circles), validation (solid, dots)"
                 f"{f', {test} where recorded (dashed, crosses)' if has_test else ''}", fontsize=9)
    return _save(fig, data, path)


def per_class_difference(pairing: Pairing, path: Path) -> Path:
    """Per class, the accuracy of ``a`` minus ``b`` averaged over the pairs, sorted (``eval/per_class.csv``)."""
    diffs = pd.concat([per_class_accuracy(ra) - per_class_accuracy(rb)
                       for ra, rb in _run_pairs(pairing)], axis=1)
    data = pd.DataFrame({"class_name": diffs.index, "difference": 100 * diffs.mean(axis=1).to_numpy(),
                         "pairs": diffs.notna().sum(axis=1).to_numpy()}).sort_values("difference")
    fig = figure(6.0, 1.0 + 0.22 * len(data))
    ax = fig.add_subplot()
    colours = ["C3" if d < 0 else "C2" for d in data["difference"]]
    ax.barh(range(len(data)), data["difference"], color=colours)
    ax.set_yticks(range(len(data)), data["class_name"], fontsize=7 if len(data) > 30 else 9)
    ax.axvline(0, color="grey", linewidth=0.8)
    label = f"{display_name(pairing.a)} − {display_name(pairing.b)}"
    ax.set_xlabel(f"per-class accuracy, {label} (points, mean over {len(pairing.pairs)} pairs)")
    return _save(fig, data, path)


def confusion_difference(pairing: Pairing, path: Path) -> Path:
    """Row-normalised confusion of ``a`` minus that of ``b``, averaged over the pairs (``eval/confusion.csv``)."""
    mats = [confusion(ra) - confusion(rb) for ra, rb in _run_pairs(pairing)]
    diff = 100 * sum(mats[1:], mats[0]) / len(mats)
    k = len(diff)
    fig = figure(max(4.5, 0.35 * k + 2), max(4.0, 0.35 * k + 1.5))
    ax = fig.add_subplot()
    limit = float(np.nanmax(np.abs(diff.to_numpy()))) or 1.0
    image = ax.imshow(diff.to_numpy(), cmap="RdBu", vmin=-limit, vmax=limit)
    font = 7 if k > 20 else 9
    ax.set_xticks(range(k), diff.columns, rotation=90, fontsize=font)
    ax.set_yticks(range(k), diff.index, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    label = f"{display_name(pairing.a)} − {display_name(pairing.b)}"
    ax.set_title(f"{label}: row-normalised confusion (points), mean over {len(mats)} pairs", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8)
    data = diff.reset_index().rename(columns={diff.index.name or "index": "true"})
    return _save(fig, data, path)
