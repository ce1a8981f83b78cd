"""From run folders to the numbers, tables and figures of a report (rendered by :mod:`stylecls.report.render`).

Per comparison group (dataset, protocol, arch): accuracy per block with the sample std over runs, the paired
differences of every pair of blocks with both 95 % intervals and the paired test, the verdict sentences,
and the figures. Model selection is named: the *selected* accuracy is the held-out accuracy of best.pt (chosen
on training-domain validation; the selected evaluation); the *oracle* is the best held-out accuracy over the
epochs that recorded one (``test_acc`` in metrics.csv) and is reported beside it only, never used to select.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stylecls.compare import BY, collect_runs, find_runs
from stylecls.report import figures
from stylecls.report.pairing import Pairing, axis_values, check_comparable, groups, pair_runs, value_pairs
from stylecls.report.runs import ORACLE_COLUMN, domain_accuracy, oracle_accuracy, run_versions
from stylecls.report.stats import CI_NAMES, CiMethod, PairedStats, display_name, mean_std, paired_stats, signed, verdict

__all__ = ["GroupReport", "Report", "analyse"]

SELECTED = "top1"
ORACLE = "oracle_top1"
PLUS_MINUS = "± is the sample standard deviation (ddof = 1) over the n runs of a cell; n is given with each cell."


@dataclass
class GroupReport:
    """Everything the report shows for one dataset/protocol/arch."""

    title: str
    runs: pd.DataFrame  # collect_runs rows of the group + the oracle column
    pairings: list[Pairing]
    selected: list[PairedStats]
    oracle: list[PairedStats]  # empty when no run recorded per-epoch held-out accuracy
    tables: dict[str, tuple[str, pd.DataFrame]] = field(default_factory=dict)  # name -> (caption, table)
    figures: list[tuple[str, Path]] = field(default_factory=list)  # (caption, png)
    verdicts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    by: str
    ci: CiMethod
    groups: list[GroupReport]
    sources: list[str]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "runs"


def _cell(values: Iterable[float]) -> str:
    mean, std, n = mean_std(np.fromiter(values, dtype=float))
    if n == 0:
        return ""
    return f"{100 * mean:.1f}" + ("" if math.isnan(std) else f" ± {100 * std:.1f}") + f" (n={n})"


def placed(runs: pd.DataFrame, by: str, measure: str) -> tuple[str, pd.DataFrame]:
    """Where each accuracy was measured: (axis label, long frame ``run``/``by``/``where``/``accuracy``).

    Leave-one-domain-out runs by held-out domain, DTD runs by split, multi-domain runs (selected accuracy) by the
    domains of their evaluated part (``eval/per_domain.csv``), anything else as one place, "all runs".
    """
    base = pd.DataFrame({"run": runs["run"], by: runs[by].astype(str), "accuracy": runs[measure].astype(float)})
    for column, label in (("test_domain", "held-out domain"), ("split", "split")):
        if runs[column].notna().any():
            return label, base.assign(where=runs[column].fillna("").astype(str))
    if measure == SELECTED:
        per_domain = [domain_accuracy(r) for r in runs["run"]]
        if all(len(d) > 1 for d in per_domain):
            rows = [{"run": r, by: str(v), "where": dom, "accuracy": acc}
                    for r, v, d in zip(runs["run"], runs[by], per_domain, strict=True) for dom, acc in d.items()]
            return "domain (evaluated part)", pd.DataFrame(rows)
    return "", base.assign(where="all runs")


def accuracy_table(runs: pd.DataFrame, by: str, measure: str) -> pd.DataFrame:
    """Rows: axis values; columns: each place of :func:`placed` (when there are several), then all runs."""
    _, long = placed(runs, by, measure)
    places = sorted(long["where"].unique())
    rows = []
    for value in axis_values(runs, by):
        row = {by: value}
        if len(places) > 1:
            mine = long[long[by] == value]
            row.update({p: _cell(mine.loc[mine["where"] == p, "accuracy"]) for p in places})
        row["all runs"] = _cell(runs.loc[runs[by].astype(str) == value, measure])
        rows.append(row)
    return pd.DataFrame(rows)


def paired_table(stats: list[PairedStats], ci: CiMethod) -> pd.DataFrame:
    """One row per comparison: n, mean difference, both intervals and which the verdict uses, wins, the test."""

    def interval(s: PairedStats, method: CiMethod) -> str:
        low, high = s.ci(method)
        return "" if math.isnan(low) else f"[{signed(100 * low)}, {signed(100 * high)}]"

    return pd.DataFrame(
        [{"comparison": f"{display_name(s.a)} − {display_name(s.b)}", "pairs (n)": s.n,
          "mean difference": "" if math.isnan(s.mean) else signed(100 * s.mean),
          "95 % CI, bootstrap": interval(s, "bootstrap"), "95 % CI, t": interval(s, "t"),
          "interval in the verdict": s.method(ci),
          "sd of differences": "" if math.isnan(s.std) else f"{100 * s.std:.1f}",
          "first wins (a > b)": "" if math.isnan(s.wins) else f"{100 * s.wins:.0f} %",
          "test": s.test, "p": "" if math.isnan(s.p_value) else f"{s.p_value:.3g}"}
         for s in stats]
    )


def _pair_stats(pairing: Pairing, measure: str) -> PairedStats:
    p = pairing.pairs[[f"{measure}_a", f"{measure}_b"]].astype(float).dropna()
    return paired_stats(p[f"{measure}_a"].to_numpy(), p[f"{measure}_b"].to_numpy(), pairing.a, pairing.b)


def _runs_table(runs: pd.DataFrame, by: str) -> pd.DataFrame:
    table = runs[["run", by, "seed", "split", "test_domain", SELECTED, ORACLE]].copy()
    table[SELECTED] = (100 * table[SELECTED]).round(2)
    table[ORACLE] = (100 * table[ORACLE]).round(2)
    versions = [run_versions(r) for r in runs["run"]]
    table["versions"] = [", ".join(f"{k} {v}" for k, v in sorted(d.items()) if v) for d in versions]
    return table.rename(columns={SELECTED: "selected top-1 (%)", ORACLE: "oracle top-1 (%)"})


def _settings_table(runs: pd.DataFrame, by: str) -> pd.DataFrame:
    """The settings every run of the group shares, and those that make the axis (one value per axis value)."""
    axis_keys = set(BY[by])
    first = runs["settings"].iloc[0]
    rows = [{"setting": k, "value": v} for k, v in sorted(first.items()) if k not in axis_keys]
    for value, g in runs.groupby(by, sort=True):
        s = g["settings"].iloc[0]
        rows += [{"setting": f"{k} ({by} {value})", "value": s.get(k, "(unset)")} for k in sorted(axis_keys)]
    return pd.DataFrame(rows)


def _group(head: dict[str, str], runs: pd.DataFrame, by: str, ci: CiMethod, fig_dir: Path) -> GroupReport:
    runs = runs.assign(**{ORACLE: [oracle_accuracy(r) for r in runs["run"]]})
    title = " · ".join(f"{k} {v}" for k, v in head.items() if isinstance(v, str) and v)
    pairings = [pair_runs(runs, a, b, by) for a, b in value_pairs(axis_values(runs, by))]
    selected = [_pair_stats(p, SELECTED) for p in pairings]
    has_oracle = runs[ORACLE].notna().any()
    oracle = [_pair_stats(p, ORACLE) for p in pairings] if has_oracle else []
    g = GroupReport(title, runs, pairings, selected, oracle)
    n_runs = f"{len(runs)} runs"
    g.tables["accuracy"] = (
        f"Test / held-out-domain accuracy (%) of the checkpoint selected by training-domain validation (best.pt, "
        f"the selected evaluation), mean ± std per cell over {n_runs} in all. {PLUS_MINUS}",
        accuracy_table(runs, by, SELECTED),
    )
    if has_oracle:
        g.tables["oracle"] = (
            "Oracle (not a model-selection method; an upper bound): the best held-out accuracy (%) over the epochs "
            f"that evaluated it (metrics.csv {ORACLE_COLUMN}), never used to choose best.pt. {PLUS_MINUS}",
            accuracy_table(runs, by, ORACLE),
        )
    else:
        g.notes.append(
            f"No oracle column: no run recorded per-epoch held-out accuracy ({ORACLE_COLUMN} in metrics.csv; "
            "train with `--eval-test-every N`)."
        )
    shown = f"Both 95 % intervals are given; the verdict uses the {CI_NAMES[ci]}"
    g.tables["paired"] = (
        "Paired differences of the selected test / held-out-domain accuracy (points = percentage points), over "
        f"runs matched on seed, split and held-out domain; n is the number of pairs. {shown}. p: Wilcoxon "
        "signed-rank for n ≥ 6 pairs, else the paired t-test, as named.",
        paired_table(selected, ci),
    )
    if oracle:
        g.tables["paired_oracle"] = ("The same with oracle selection (upper bound, never used to select).",
                                     paired_table(oracle, ci))
    unmatched = pd.concat([p.unmatched.assign(compared=f"{p.a} − {p.b}") for p in pairings], ignore_index=True)
    if not unmatched.empty:
        g.tables["unmatched"] = ("Runs without a partner in a comparison (left out of that comparison).", unmatched)
    g.tables["runs"] = ("Every run of this group, with the versions it was trained with.", _runs_table(runs, by))
    g.tables["settings"] = ("The exact settings of these runs (the run records; seed, split and held-out domain vary "
                            "as listed above).", _settings_table(runs, by))
    g.verdicts = [verdict(s, ci) for s in selected]
    g.verdicts += [f"Oracle selection (upper bound): {verdict(s, ci)}" for s in oracle]
    g.figures = _figures(g, by, ci, fig_dir / _slug(title))
    return g


def _figures(g: GroupReport, by: str, ci: CiMethod, out: Path) -> list[tuple[str, Path]]:
    runs = g.runs
    made = [
        ("Test / held-out-domain accuracy per block: mean ± sample std over runs (bars), each run a point.",
         figures.accuracy_by_part(*placed(runs, by, SELECTED), out / "accuracy", by)),
        ("Paired differences: one point per pair, the mean and its 95 % interval.",
         figures.paired_differences(g.pairings, g.selected, out / "paired_differences", SELECTED, ci)),
        ("Training curves of every run (metrics.csv).", figures.training_curves(runs, out / "training_curves", by)),
    ]
    first = next((p for p in g.pairings if len(p.pairs)), None)
    if first is not None:
        label = f"{display_name(first.a)} − {display_name(first.b)}"
        stem = f"{_slug(first.a)}_minus_{_slug(first.b)}"
        made.append((f"Per-class accuracy difference {label}, mean over pairs, sorted (eval/per_class.csv).",
                     figures.per_class_difference(first, out / f"per_class_{stem}")))
        made.append((f"Confusion-matrix difference {label} (row-normalised, mean over pairs; eval/confusion.csv).",
                     figures.confusion_difference(first, out / f"confusion_{stem}")))
    return made


def analyse(paths: Iterable[str | Path], fig_dir: Path, by: str = "block", ci: CiMethod = "auto") -> Report:
    """Read, check, pair and summarise the runs under ``paths``; figures go under ``fig_dir``."""
    if ci not in CI_NAMES:
        raise ValueError(f"unknown interval {ci!r}")
    paths = list(paths)
    frame = collect_runs(find_runs(paths))
    check_comparable(frame, by)
    reports = [_group(head, runs, by, ci, Path(fig_dir)) for head, runs in groups(frame, by)]
    return Report(by, ci, reports, [str(p) for p in paths])

