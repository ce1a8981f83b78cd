"""Comparing runs (``stylecls compare``): mean ± std over seeds, splits and held-out domains.

Runs are grouped as the paper's tables group them: one table per (dataset, protocol, arch), one row
per block, with the differences SRM − SE and SRM − none. Single-domain runs (DTD, WikiArt) report
top-1/top-5/balanced accuracy/macro-F1 averaged over seeds and DTD splits; leave-one-domain-out runs
report one column per held-out domain (mean over seeds) and their average, as DomainBed does.

Only seed, split and test domain may vary inside a table: averaging runs trained with different
settings would hide the difference the table is meant to show, so :func:`check_settings` refuses,
naming the setting. Every number is the run's selected evaluation (``stylecls evaluate``; the finished run's
best.pt on its reported part, :meth:`~stylecls.runfolder.Evaluations.selected`).
Standard deviations are sample standard deviations (ddof=1); a single run has none.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stylecls.errors import StyleclsError, unknown_name
from stylecls.record import RunRecord
from stylecls.runfolder import RunFolder, UnusableEvaluation, find_run_folders, is_run_folder

__all__ = ["BY", "METRICS", "check_settings", "collect_runs", "compare", "find_runs", "summarize", "to_markdown"]

#: What may differ between runs that are averaged together.
VARYING = ("spec.seed", "spec.split", "spec.test_domain")
#: Spec values that change what a run records, not what it learns.
RECORDING = {"spec.eval_test_every"}
#: ``--by``: the settings that make a column (they may differ across columns, not within one).
BY = {"block": ("spec.block", "spec.block_options"), "arch": ("spec.arch",)}
METRICS = ("top1", "top5", "balanced_accuracy", "macro_f1")
GROUP = ("dataset", "protocol", "arch", "block")
DIFFERENCES = (("srm", "se"), ("srm", "none"))


def find_runs(paths: Iterable[str | Path]) -> list[RunFolder]:
    """Each path is a run folder or a folder holding runs (searched recursively)."""
    runs: list[RunFolder] = []
    for p in map(Path, paths):
        if is_run_folder(p):
            runs.append(RunFolder(p))
        elif p.is_dir():
            found = find_run_folders(p)
            if not found:
                raise StyleclsError(f"{p} holds no run folders (none made by `stylecls train` below it)")
            runs.extend(RunFolder(f) for f in found)
        elif p.exists():
            raise StyleclsError(f"{p} is neither a run folder nor a folder of runs")
        else:
            raise StyleclsError(f"{p} does not exist")
    if not runs:
        raise StyleclsError("no runs to compare")
    return runs


def _settings(record: RunRecord) -> dict[str, str]:
    """What determines the run's result, flat: every spec value (``spec.<name>``) and the pixel
    pipeline its images went through (``data.pixels``), as JSON text."""
    flat = {f"spec.{k}": json.dumps(v, sort_keys=True) for k, v in record.spec.to_dict().items()}
    flat["data.pixels"] = json.dumps(record.data.pixels, sort_keys=True)
    skip = RECORDING | set(VARYING)
    return {k: v for k, v in flat.items() if k not in skip}


def collect_runs(runs: Sequence[RunFolder]) -> pd.DataFrame:
    """One row per run: what it is (dataset, protocol, arch, block, seed, split, test domain),
    its evaluated metrics, and its settings (column ``settings``, for :func:`check_settings`)."""
    rows, unusable = [], []
    for run in runs:
        try:
            metrics = run.evaluations.selected().metrics
        except UnusableEvaluation as e:
            unusable.append(str(e))
            continue
        record = run.record()
        spec = record.spec
        rows.append(
            {
                "run": str(run.path),
                "dataset": spec.dataset,
                "protocol": record.data.protocol or spec.protocol,
                "arch": spec.arch,
                "block": spec.block,
                "seed": spec.seed,
                "split": spec.split,
                "test_domain": spec.test_domain,
                **{m: metrics.get(m, np.nan) for m in METRICS},
                "domain_gap": metrics.get("domain_gap", np.nan),
                "settings": _settings(record),
            }
        )
    if unusable:
        shown = "\n  ".join(unusable[:10]) + ("\n  ..." if len(unusable) > 10 else "")
        raise StyleclsError(f"{len(unusable)} run(s) have no usable evaluation:\n  {shown}")
    return pd.DataFrame(rows)


def check_settings(frame: pd.DataFrame, by: str = "block") -> None:
    """Refuse to average runs whose settings differ other than by seed, split and test domain.

    Inside one cell (same dataset/protocol/arch/block) everything else must agree; across the
    columns of a table only the ``by`` keys may differ.
    """
    if by not in BY:
        raise unknown_name("--by", by, BY)
    group_keys = [g for g in GROUP if g != by]
    for _, table in frame.groupby(group_keys, sort=False, dropna=False):
        for _, cell in table.groupby(by, sort=False):
            _same(cell, ignore=())
            _no_duplicates(cell)
        _same(table, ignore=BY[by])


def _same(runs: pd.DataFrame, ignore: Sequence[str]) -> None:
    keys = sorted(set().union(*(s.keys() for s in runs["settings"])) - set(ignore))
    for key in keys:
        values: dict[str, list[str]] = {}
        for run, s in zip(runs["run"], runs["settings"], strict=False):
            values.setdefault(s.get(key, "(unset)"), []).append(run)
        if len(values) > 1:
            shown = "; ".join(f"{v} in {', '.join(r[:2])}{' ...' if len(r) > 2 else ''}" for v, r in values.items())
            raise StyleclsError(
                f"cannot average runs whose setting {key} differs: {shown}. Only seed, split and test domain "
                f"may differ; compare these runs separately"
            )


def _no_duplicates(cell: pd.DataFrame) -> None:
    keys = zip(cell["seed"], cell["split"], cell["test_domain"], strict=True)
    ids = pd.Series([f"{a}/{b}/{c}" for a, b, c in keys], cell.index)
    dup = ids[ids.duplicated(keep=False)]
    if not dup.empty:
        runs = cell.loc[dup.index, "run"].tolist()
        raise StyleclsError(
            f"runs {', '.join(runs)} repeat the same seed/split/test domain; averaging them would count "
            f"one experiment twice. Pass only one of them"
        )


def summarize(frame: pd.DataFrame, by: str = "block") -> pd.DataFrame:
    """The comparison in long form: one row per (table, column value, measure).

    ``measure`` is a metric name (single-domain) or ``top1@<domain>`` / ``top1@avg`` / ``domain_gap``
    (leave-one-domain-out). ``mean``/``std``/``n`` summarise the runs; difference rows (``by`` value
    ``srm − se``) hold the difference of the means.
    """
    check_settings(frame, by)
    group_keys = [g for g in GROUP if g != by]
    out: list[dict[str, Any]] = []
    for key, table in frame.groupby(group_keys, sort=True, dropna=False):
        head = dict(zip(group_keys, key, strict=False))
        lodo = table["test_domain"].notna().any()
        cells: dict[str, dict[str, tuple[float, float, int]]] = {}
        for value, cell in table.groupby(by, sort=True):
            cells[value] = _cell_stats(cell, lodo)
        for value, stats in cells.items():
            out += [{**head, by: value, "measure": m, "mean": s[0], "std": s[1], "n": s[2]} for m, s in stats.items()]
        if by == "block":
            for a, b in DIFFERENCES:
                if a in cells and b in cells:
                    for m in cells[a]:
                        if m in cells[b]:
                            diff = cells[a][m][0] - cells[b][m][0]
                            out.append({**head, by: f"{a} − {b}", "measure": m, "mean": diff, "std": np.nan, "n": 0})
    return pd.DataFrame(out, columns=[*group_keys, by, "measure", "mean", "std", "n"])


def _stats(values: pd.Series) -> tuple[float, float, int]:
    v = values.dropna().astype(float)
    return (float(v.mean()) if len(v) else np.nan, float(v.std(ddof=1)) if len(v) > 1 else np.nan, int(len(v)))


def _cell_stats(cell: pd.DataFrame, lodo: bool) -> dict[str, tuple[float, float, int]]:
    if not lodo:
        return {m: _stats(cell[m]) for m in METRICS if cell[m].notna().any()}
    stats = {f"top1@{d}": _stats(g["top1"]) for d, g in cell.groupby("test_domain", sort=True)}
    means = [s[0] for s in stats.values()]
    stats["top1@avg"] = (float(np.mean(means)), np.nan, len(means))  # DomainBed: the mean of the domain means
    if cell["domain_gap"].notna().any():
        stats["domain_gap"] = _stats(cell["domain_gap"])
    return stats


def _fmt(mean: float, std: float, diff: bool) -> str:
    if math.isnan(mean):
        return ""
    if diff:
        return f"{100 * mean:+.1f}"
    return f"{100 * mean:.1f}" + ("" if math.isnan(std) else f" ± {100 * std:.1f}")


def to_markdown(summary: pd.DataFrame, by: str = "block") -> str:
    """One markdown table per (dataset, protocol, arch): rows are ``by`` values, numbers in %."""
    group_keys = [g for g in GROUP if g != by]
    parts = []
    for key, table in summary.groupby(group_keys, sort=True, dropna=False):
        measures = list(dict.fromkeys(table["measure"]))
        title = " · ".join(f"{k} {v}" for k, v in zip(group_keys, key, strict=False) if isinstance(v, str) and v)
        header = [by, *[m.replace("top1@", "") for m in measures], "runs"]
        lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for value, rows in table.groupby(by, sort=False):
            diff = " − " in str(value)
            cells = {r.measure: _fmt(r.mean, r.std, diff) for r in rows.itertuples()}
            n = "" if diff else str(int(rows["n"].max()))
            lines.append("| " + " | ".join([str(value), *[cells.get(m, "") for m in measures], n]) + " |")
        parts.append("\n".join(lines))
    note = (
        "Accuracies in %, mean ± sample std over seeds / splits; leave-one-domain-out columns are held-out "
        "domains (avg = mean of the domain means); difference rows compare means."
    )
    return "\n\n".join(parts) + "\n\n" + note + "\n"


def compare(
    paths: Iterable[str | Path], by: str = "block", out: str | Path | None = None
) -> tuple[pd.DataFrame, str, Path | None]:
    """Collect, check and summarise runs; write ``comparison.md`` and ``comparison.csv`` into ``out``."""
    frame = collect_runs(find_runs(paths))
    summary = summarize(frame, by)
    markdown = to_markdown(summary, by)
    out_dir = None
    if out is not None:
        out_dir = Path(out)
        out_dir.mkdir(parents=True, exist_ok=True)
        summary.to_csv(out_dir / "comparison.csv", index=False)
        (out_dir / "comparison.md").write_text(markdown)
    return summary, markdown, out_dir
