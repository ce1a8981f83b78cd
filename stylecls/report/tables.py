"""The unpaired tables of results: per axis value (method) and place (held-out domain, split, domain), mean ± spread.

One implementation for ``stylecls compare`` (:func:`unpaired_summary`, :func:`summary_markdown`) and the report's
DomainBed-style tables (:func:`accuracy_table`, as markdown, HTML and LaTeX). The rules they share:

- rows in presentation order, differences first − second as :func:`~stylecls.report.pairing.axis_differences` says;
- leave-one-domain-out tables have one column per held-out domain and ``avg``, the mean of the domain means
  (DomainBed's); a row that lacks a domain of the table has no average, and a difference is only taken over
  domains both rows have, so runs with different held-out domains are never averaged or subtracted;
- ± is named wherever it is shown: the sample standard deviation (``std``, compare) or the standard error of the
  mean (``sem``, the report's tables); accuracies in %.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from stylecls.report.pairing import DEFAULT_BY, axis_differences, axis_values, group_keys, group_title, groups
from stylecls.report.runs import METRICS, domain_accuracy
from stylecls.report.stats import display_name, mean_sem, mean_std, signed

__all__ = [
    "AVERAGE", "SPREAD_NAMES", "Spread", "accuracy_table", "cell", "latex_table", "markdown_table", "placed",
    "summary_markdown", "unpaired_summary",
]  # fmt: skip

Spread = Literal["std", "sem"]
SPREAD_NAMES = {"std": "the sample standard deviation (ddof = 1)", "sem": "the standard error of the mean (sample "
                "standard deviation / √n)"}
STATS: dict[str, Callable[[np.ndarray], tuple[float, float, int]]] = {"std": mean_std, "sem": mean_sem}
AVERAGE = "avg"


def cell(mean: float, spread: float = math.nan, n: int | None = None) -> str:
    """``61.3 ± 2.0 (n=3)`` from fractions; empty for no value, no ± for one value."""
    if math.isnan(mean):
        return ""
    text = f"{100 * mean:.1f}" + ("" if math.isnan(spread) else f" ± {100 * spread:.1f}")
    return text + (f" (n={n})" if n is not None else "")


def placed(runs: pd.DataFrame, by: str, column: str) -> tuple[str, pd.DataFrame]:
    """Where each accuracy was measured: (axis label, long frame ``run``/``by``/``where``/``accuracy``).

    Leave-one-domain-out runs by held-out domain, DTD runs by split, multi-domain runs (their ``top1``) by the
    domains of their evaluated part, anything else as one place, "all runs".
    """
    base = pd.DataFrame({"run": runs["run"], by: runs[by].astype(str), "accuracy": runs[column].astype(float)})
    for key, label in (("test_domain", "held-out domain"), ("split", "split")):
        if runs[key].notna().any():
            return label, base.assign(where=runs[key].astype(object).where(runs[key].notna(), "").astype(str))
    if column == "top1":
        per_domain = [domain_accuracy(r) for r in runs["run"]]
        if per_domain and all(len(d) > 1 for d in per_domain):
            rows = [{"run": r, by: str(v), "where": dom, "accuracy": acc}
                    for r, v, d in zip(runs["run"], runs[by], per_domain, strict=True) for dom, acc in d.items()]
            return "domain (evaluated part)", pd.DataFrame(rows)
    return "", base.assign(where="all runs")


def _place_stats(long: pd.DataFrame, by: str, spread: Spread) -> dict[str, dict[str, tuple[float, float, int]]]:
    """{axis value: {place: (mean, spread, n)}}."""
    out: dict[str, dict[str, tuple[float, float, int]]] = {}
    for (value, where), g in long.groupby([by, "where"], sort=True):
        out.setdefault(str(value), {})[str(where)] = STATS[spread](g["accuracy"].to_numpy(dtype=float))
    return out


def _with_average(stats: dict[str, dict[str, tuple[float, float, int]]], places: Sequence[str]) -> None:
    """Add :data:`AVERAGE` (mean of the place means) to each value that has every place."""
    for cells in stats.values():
        means = [cells[p][0] for p in places if p in cells and not math.isnan(cells[p][0])]
        if len(means) == len(places):
            cells[AVERAGE] = (float(np.mean(means)), math.nan, len(means))


def _differences(stats: dict[str, dict[str, tuple[float, float, int]]], by: str) -> list[tuple[str, dict[str, float]]]:
    """(``a − b``, {place: difference of the means}) for every shown difference, over places both have."""
    out = []
    for a, b in axis_differences(list(stats), by):
        common = [p for p in stats[a] if p in stats[b]]
        out.append((f"{a} − {b}", {p: stats[a][p][0] - stats[b][p][0] for p in common}))
    return out


def accuracy_table(runs: pd.DataFrame, by: str, column: str, spread: Spread = "sem",
                   differences: bool = False) -> pd.DataFrame:
    """Rows: axis values in order (then the differences, if asked); columns: each place, then ``avg`` for held-out
    domains (DomainBed's collect_results) or ``all runs`` otherwise; cells ``mean ± spread (n=k)`` in %."""
    label, long = placed(runs, by, column)
    long = long.dropna(subset=["accuracy"])
    places = sorted(long["where"].unique())
    stats = _place_stats(long, by, spread)
    if label == "held-out domain":
        _with_average(stats, places)
        columns = [*places, AVERAGE]
    else:
        every = runs.assign(**{by: runs[by].astype(str)}).dropna(subset=[column])
        for value, g in every.groupby(by):
            stats.setdefault(str(value), {})["all runs"] = STATS[spread](g[column].to_numpy(dtype=float))
        columns = [*(places if len(places) > 1 else []), "all runs"]
    values = [v for v in axis_values(list(stats), by)] if stats else []
    rows: list[dict[str, Any]] = []
    for value in values:
        cells = stats[value]
        rows.append({by: display_name(value), **{c: cell(*cells[c][:2], n=None if c == AVERAGE else cells[c][2])
                                                  if c in cells else "" for c in columns}})
    if differences:
        for name, diff in _differences({v: stats[v] for v in values}, by):
            a, b = name.split(" − ")
            rows.append({by: f"{display_name(a)} − {display_name(b)}",
                         **{c: signed(100 * diff[c]) if c in diff else "" for c in columns}})
    return pd.DataFrame(rows, columns=[by, *columns])


def unpaired_summary(frame: pd.DataFrame, by: str = DEFAULT_BY, spread: Spread = "std") -> pd.DataFrame:
    """``stylecls compare`` in long form: one row per (group, axis value, measure) with ``mean``, ``std``, ``n``.

    ``measure``: a metric name (single-domain), ``top1@<domain>`` / ``top1@avg`` / ``domain_gap``
    (leave-one-domain-out). Difference rows (axis value ``srm − se``) hold the difference of the means.
    """
    keys = group_keys(by)
    out: list[dict[str, Any]] = []
    for head, runs in groups(frame, by):
        stats: dict[str, dict[str, tuple[float, float, int]]] = {}
        lodo = runs["test_domain"].notna().any()
        runs = runs.assign(**{by: runs[by].astype(str)})
        if lodo:  # held-out domains as columns, and their average
            _, long = placed(runs, by, "top1")
            stats = _place_stats(long.dropna(subset=["accuracy"]).assign(where="top1@" + long["where"]), by, spread)
            _with_average(stats, sorted(f"top1@{d}" for d in long["where"].unique()))
            for cells in stats.values():
                if AVERAGE in cells:
                    cells["top1@avg"] = cells.pop(AVERAGE)
        measures = ["domain_gap"] if lodo else list(METRICS)
        for value, g in runs.groupby(by):
            cells = stats.setdefault(value, {}) if lodo else {}
            for m in measures:
                if g[m].notna().any():
                    cells[m] = STATS[spread](g[m].to_numpy(dtype=float))
            stats[value] = cells
        values = axis_values(list(stats), by)
        for value in values:
            out += [{**head, by: value, "measure": m, "mean": s[0], "std": s[1], "n": s[2]}
                    for m, s in stats[value].items()]
        for name, diff in _differences({v: stats[v] for v in values}, by):
            out += [{**head, by: name, "measure": m, "mean": d, "std": math.nan, "n": 0} for m, d in diff.items()]
    return pd.DataFrame(out, columns=[*keys, by, "measure", "mean", "std", "n"])


def summary_markdown(summary: pd.DataFrame, by: str = DEFAULT_BY) -> str:
    """One markdown table per (dataset, protocol, arch): rows are ``by`` values, numbers in %."""
    parts = []
    for head, table in groups(summary, by):
        measures = list(dict.fromkeys(table["measure"]))
        header = [by, *[m.replace("top1@", "") for m in measures], "runs"]
        rows = []
        for value, g in table.groupby(by, sort=False):
            diff = " − " in str(value)
            cells = {r.measure: signed(100 * r.mean) if diff else cell(r.mean, r.std) for r in g.itertuples()}
            label = " − ".join(display_name(v) for v in str(value).split(" − "))
            rows.append([label, *[cells.get(m, "") for m in measures], "" if diff else str(int(g["n"].max()))])
        parts.append(f"### {group_title(head)}\n\n" + markdown_table(pd.DataFrame(rows, columns=header)))
    note = (f"Accuracies in %, mean ± {SPREAD_NAMES['std']} over seeds / splits; leave-one-domain-out columns are "
            "held-out domains (avg = mean of the domain means, only for rows with every domain); difference rows "
            "compare means, first − second, over the columns both rows have.")
    return "\n\n".join(parts) + "\n\n" + note + "\n"


def markdown_table(table: pd.DataFrame) -> str:
    """A pipe table; missing values as empty cells, pipes escaped."""

    def text(v: object) -> str:
        return "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(text, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(text(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def latex_table(table: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs table (``\\toprule``/``\\midrule``/``\\bottomrule``; pandas' Styler), ± as ``$\\pm$``; the
    ``(n=k)`` of the cells goes into the caption (``caption`` is LaTeX already)."""
    text = table.fillna("").astype(str)
    counts = sorted({int(n) for v in text.to_numpy().ravel() for n in re.findall(r"\(n=(\d+)\)", v)})
    text = text.map(lambda v: re.sub(r" \(n=\d+\)", "", v))
    if counts:
        caption += f" n = {counts[0]}" + (f"--{counts[-1]}" if len(counts) > 1 else "") + " per cell."

    def tex(v: str) -> str:  # after pandas' escaping
        return v.replace(" ± ", r" $\pm$ ").replace("−", "$-$")

    styler = text.style.hide(axis="index").format(tex, escape="latex").format_index(escape="latex", axis=1)
    return styler.to_latex(hrules=True, caption=caption, label=label, position="t", position_float="centering",
                           column_format="l" + "c" * (len(table.columns) - 1))
