"""From run folders to the numbers, tables and figures of a report (rendered by :mod:`stylecls.report.render`).

Per comparison group (dataset, protocol, backbone) and per model-selection method (:mod:`~stylecls.report.selection`):
the DomainBed table (methods × held-out domains and their average, mean ± standard error over seeds), the paired
differences of the methods with both 95 % intervals and the paired test, and the verdict sentences; then the
figures of the headline method (training-domain validation unless it was not asked for; never the oracle).
:func:`number_section` is the same treatment for any one number per run (the style lane's style reliance).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from stylecls.report import figures
from stylecls.report.pairing import (
    BY,
    DEFAULT_BY,
    Pairing,
    axis_differences,
    axis_values,
    check_comparable,
    group_title,
    groups,
    matched_on,
    pair_runs,
)
from stylecls.report.runs import TRIAL, Collection, LeftOut, collect
from stylecls.report.selection import METHODS, Method, select
from stylecls.report.stats import CI_NAMES, CiMethod, PairedStats, display_name, paired_stats, signed, verdict
from stylecls.report.tables import SPREAD_NAMES, accuracy_table, placed

__all__ = ["GroupReport", "Report", "Section", "analyse", "number_section", "paired_table"]

SELECTIONS = tuple(METHODS)


@dataclass
class Section:
    """One number per run, per axis value: its table, its paired differences, its verdicts."""

    title: str
    tables: dict[str, tuple[str, pd.DataFrame]]
    pairings: list[Pairing]
    stats: list[PairedStats]
    verdicts: list[str]
    notes: list[str] = field(default_factory=list)
    measure: str = ""  # the column its pairings compare (an extra section's paired figure)


@dataclass
class GroupReport:
    """Everything the report shows for one dataset/protocol/arch: a section per selection method (the headline
    first), figures, and the runs and settings (shown last)."""

    title: str
    runs: pd.DataFrame  # every usable run of the group (all trials)
    sections: list[Section]
    figures: list[tuple[str, Path]] = field(default_factory=list)  # (caption, png)
    details: dict[str, tuple[str, pd.DataFrame]] = field(default_factory=dict)  # runs, settings: shown last
    notes: list[str] = field(default_factory=list)

    @property
    def verdicts(self) -> list[str]:
        return [v for s in self.sections for v in s.verdicts]


@dataclass
class Report:
    by: str
    ci: CiMethod
    selections: list[Method]
    groups: list[GroupReport]
    sources: list[str]
    left_out: list[LeftOut]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "runs"


def paired_table(stats: Sequence[PairedStats], ci: CiMethod, scale: float = 100.0) -> pd.DataFrame:
    """One row per comparison: n, mean difference, both intervals and which the verdict uses, wins, the test."""

    def interval(s: PairedStats, method: CiMethod) -> str:
        low, high = s.ci(method)
        return "" if math.isnan(low) else f"[{signed(scale * low)}, {signed(scale * high)}]"

    return pd.DataFrame(
        [{"comparison": f"{display_name(s.a)} − {display_name(s.b)}", "pairs (n)": s.n,
          "mean difference": "" if math.isnan(s.mean) else signed(scale * s.mean),
          "95 % CI, bootstrap": interval(s, "bootstrap"), "95 % CI, t": interval(s, "t"),
          "interval in the verdict": s.method(ci),
          "sd of differences": "" if math.isnan(s.std) else f"{scale * s.std:.1f}",
          "first wins (a > b)": "" if math.isnan(s.wins) else f"{100 * s.wins:.0f} %",
          "test": s.test, "p": "" if math.isnan(s.p_value) else f"{s.p_value:.3g}"}
         for s in stats],
        columns=["comparison", "pairs (n)", "mean difference", "95 % CI, bootstrap", "95 % CI, t",
                 "interval in the verdict", "sd of differences", "first wins (a > b)", "test", "p"],
    )


def number_section(runs: pd.DataFrame, column: str, by: str, ci: CiMethod, title: str, what: str,
                   unit: str = "points", sides: tuple[str, str] = ("better", "worse")) -> Section:
    """``column`` (one number per run, a fraction shown in %) per axis value: mean ± standard error per place, and
    the paired differences over runs matched on seed, split and held-out domain, with verdicts.

    ``what`` says in words what the number is (it starts the captions); ``sides`` are the verdict's words for a
    significant difference (see :func:`~stylecls.report.stats.verdict`).
    """
    if runs.empty:
        return Section(title, {}, [], [], [], notes=[f"{what}: no run has this number."])
    pairings = [pair_runs(runs, a, b, by) for a, b in axis_differences(axis_values(runs, by), by)]
    stats = []
    for p in pairings:
        values = p.pairs[[f"{column}_a", f"{column}_b"]].astype(float).dropna()
        stats.append(paired_stats(values[f"{column}_a"].to_numpy(), values[f"{column}_b"].to_numpy(), p.a, p.b))
    tables = {
        "values": (f"{what} (%), mean ± {SPREAD_NAMES['sem']} over runs (n per cell).",
                   accuracy_table(runs, by, column, "sem")),
        "paired": (f"{what}: paired differences (points), over runs matched on {matched_on(runs)}; "
                   f"n is the number of pairs. Both 95 % intervals are given; the verdict uses the {CI_NAMES[ci]}. "
                   "p: Wilcoxon signed-rank for n ≥ 6 pairs, else the paired t-test, as named.",
                   paired_table(stats, ci)),
    }
    lonely = [p.unmatched.assign(compared=f"{p.a} − {p.b}") for p in pairings if len(p.unmatched)]
    if lonely:
        unmatched = pd.concat(lonely, ignore_index=True)
        tables["unmatched"] = ("Runs without a partner in a comparison (left out of that comparison).", unmatched)
    return Section(title, tables, pairings, stats, [verdict(s, ci, unit=unit, sides=sides) for s in stats],
                   measure=column)


#: Extra sections per group: each gets the group's runs chosen by the headline selection, the axis and the interval
#: method, and returns a :class:`Section` (or None to show nothing), e.g. via :func:`number_section`.
def _style_reliance(runs: pd.DataFrame, by: str, ci: CiMethod) -> Section | None:
    from stylecls.style_test.reliance import style_reliance_section

    return style_reliance_section(runs, by, ci)


EXTRA_SECTIONS: list[Callable[[pd.DataFrame, str, CiMethod], Section | None]] = [_style_reliance]


def _where(runs: pd.DataFrame) -> str:
    """How the measured place is named: "held-out-domain" only where a domain is held out."""
    return "held-out-domain" if runs["test_domain"].notna().any() else "test"


def _selection_section(runs: pd.DataFrame, selection_runs: pd.DataFrame, method: Method, by: str,
                       ci: CiMethod) -> tuple[Section, pd.DataFrame]:
    chosen = select(runs, selection_runs, method.name, by)
    where = _where(runs)
    what = f"{where.capitalize()} accuracy, {method.title}"
    section = number_section(chosen.runs.dropna(subset=[method.column]), method.column, by, ci, method.title, what)
    trials = int(chosen.runs["trials"].max()) if len(chosen.runs) else 0  # none chosen: nothing to choose by
    if "values" not in section.tables:
        section.notes = chosen.notes or section.notes
        return section, chosen.runs
    section.tables["values"] = (
        f"{what}: chosen by {method.chooses_by}; shown: {method.reports.replace('test', where)}. "
        f"{trials} trial(s) per cell to choose from. Mean ± {SPREAD_NAMES['sem']} over seeds (n per cell); avg: the "
        "mean of the domain means (DomainBed's collect_results).", section.tables["values"][1])
    if method.upper_bound:
        section.verdicts = [f"Oracle (upper bound): {v}" for v in section.verdicts]
    if trials > 1:
        section.tables["chosen"] = (f"Which trial {method.title} chose per {by}, {matched_on(runs)}, "
                                    f"and its score ({method.chooses_by}, %).", _chosen_table(chosen.runs, by))
    section.notes += chosen.notes
    return section, chosen.runs


def _chosen_table(chosen: pd.DataFrame, by: str) -> pd.DataFrame:
    table = chosen[[by, "test_domain", "split", "seed", TRIAL, "trials", "score"]].copy()
    table[by] = table[by].map(display_name)
    table["score"] = (100 * table["score"]).round(2)
    table = table.rename(columns={"test_domain": "held-out domain", TRIAL: "chosen trial", "trials": "of trials",
                                  "score": "score (%)"})
    table = table.dropna(axis=1, how="all")
    return table.sort_values(list(table.columns[:-3]), key=lambda c: c.astype(str)).reset_index(drop=True)


def _trials_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The settings that differ between trials, one row per (trial, axis settings)."""
    keys = sorted({k for s in runs["settings"] for k in s})
    varying = [k for k in keys if len({s.get(k) for s in runs["settings"]}) > 1]
    rows = {(t, tuple(s.get(k) for k in varying)) for t, s in zip(runs[TRIAL], runs["settings"], strict=True)}
    table = pd.DataFrame([[t, *values] for t, values in rows], columns=[TRIAL, *varying])
    return table.sort_values([TRIAL, *varying[:1]], key=lambda c: c.astype(str)).reset_index(drop=True)


def _details(runs: pd.DataFrame, by: str) -> dict[str, tuple[str, pd.DataFrame]]:
    table = runs[["run", by, "seed", "split", "test_domain", TRIAL, "top1", "last_test"]].copy()
    for c in ("top1", "last_test"):
        table[c] = (100 * table[c]).round(2)
    table["versions"] = [", ".join(f"{k} {v}" for k, v in sorted(d.items())) for d in runs["versions"]]
    table = table.rename(columns={"top1": "best.pt top-1 (%)", "last_test": "last-epoch test top-1 (%)"})
    axis_keys = set(BY[by])
    first = runs["settings"].iloc[0]
    rows = [{"setting": k, "value": v} for k, v in sorted(first.items()) if k not in axis_keys]
    for value, g in runs.groupby(by, sort=True):
        rows += [{"setting": f"{k} ({by} {value})", "value": g["settings"].iloc[0].get(k, "(unset)")}
                 for k in sorted(axis_keys)]
    details = {"runs": ("Every run of this group, with the versions it was trained with.", table),
               "settings": ("The exact settings of these runs (those of the first run; seed, split, held-out domain "
                            "and trial vary as listed above).", pd.DataFrame(rows))}
    if runs[TRIAL].nunique() > 1:
        details["trials"] = ("The values each trial of the hyper-parameter search drew (the settings that differ "
                             "between runs).", _trials_table(runs))
    return details


def _group(head: dict[str, str], runs: pd.DataFrame, collection: Collection, by: str, ci: CiMethod,
           methods: Sequence[Method], fig_dir: Path) -> GroupReport:
    title = group_title(head)
    sections, headline = [], None
    for method in methods:
        section, chosen = _selection_section(runs, collection.selection_runs, method, by, ci)
        sections.append(section)
        if headline is None and not method.upper_bound:
            headline = (section, chosen)
    g = GroupReport(title, runs, sections)
    section, chosen = headline or (sections[0], runs)
    extras = [made for extra in EXTRA_SECTIONS if (made := extra(chosen, by, ci)) is not None]
    g.sections += extras
    g.notes = [n for s in sections for n in s.notes]
    g.figures = _figures(chosen, section, by, ci, fig_dir / _slug(title))
    for s in extras:  # one figure each: the paired differences of its (headline) number
        if s.measure and any(len(p.pairs) for p in s.pairings):
            path = figures.paired_differences(s.pairings, s.stats[: len(s.pairings)],
                                              fig_dir / _slug(title) / f"paired_{_slug(s.title)}", s.measure, ci)
            g.figures.append((f"{s.title.capitalize()}: paired differences of its first number, one point per pair, "
                              "the mean and its 95 % interval.", path))
    g.details = _details(runs, by)
    return g


def _figures(runs: pd.DataFrame, section: Section, by: str, ci: CiMethod, out: Path) -> list[tuple[str, Path]]:
    where = _where(runs)
    made = [
        (f"{where.capitalize()} accuracy per {by} ({section.title}): mean ± sample std over runs (bars), each run a "
         "point.", figures.accuracy_by_part(*placed(runs, by, "top1"), out / "accuracy", by)),
        ("Paired differences: one point per pair, the mean and its 95 % interval.",
         figures.paired_differences(section.pairings, section.stats, out / "paired_differences", "top1", ci)),
        ("Training curves of every run (metrics.csv).", figures.training_curves(runs, out / "training_curves", by)),
    ]
    first = next((p for p in section.pairings if len(p.pairs)), None)
    if first is not None:
        label = f"{display_name(first.a)} − {display_name(first.b)}"
        stem = f"{_slug(first.a)}_minus_{_slug(first.b)}"
        made.append((f"Per-class accuracy difference {label}, mean over pairs, sorted (eval/per_class.csv).",
                     figures.per_class_difference(first, out / f"per_class_{stem}")))
        made.append((f"Confusion-matrix difference {label} (row-normalised, mean over pairs; eval/confusion.csv).",
                     figures.confusion_difference(first, out / f"confusion_{stem}")))
    return made


def analyse(paths: Iterable[str | Path], fig_dir: Path, by: str = DEFAULT_BY, ci: CiMethod = "auto",
            selections: Sequence[str] = ("training-domain",), skip_unevaluated: bool = False) -> Report:
    """Read, check, select, pair and summarise the runs under ``paths``; figures go under ``fig_dir``."""
    if ci not in CI_NAMES:
        raise ValueError(f"unknown interval {ci!r}")
    paths = list(paths)
    collection = collect(paths, skip_unevaluated)
    check_comparable(collection.runs, by)
    methods = [METHODS[s] for s in selections]
    reports = [_group(head, runs, collection, by, ci, methods, Path(fig_dir)) for head, runs in
               groups(collection.runs, by)]
    return Report(by, ci, methods, reports, [str(p) for p in paths], collection.left_out)

