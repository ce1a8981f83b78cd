"""Comparing runs (``stylecls compare``): the unpaired table of the results stack in :mod:`stylecls.report`.

One table per (dataset, protocol, backbone), one row per method (block, feature augmentation, IBN-Net-a, or a
combination) in presentation order, then the differences (first − second,
:func:`stylecls.presentation.method_differences`). Single-domain runs (DTD, WikiArt) report
top-1/top-5/balanced accuracy/macro-F1 over seeds and DTD splits; leave-one-domain-out runs one column per held-out
domain and their average (DomainBed's), and never average or subtract runs of different held-out domains. ± is the
sample standard deviation (ddof=1); a single run has none. With a hyper-parameter search, each cell is the trial
chosen by training-domain validation (``stylecls report --selection`` has the other methods).

Only seed, split, held-out domain and trial may vary inside a table: averaging runs trained with different settings
would hide the difference the table is meant to show, so such runs are refused, naming the setting. Runs without a
usable evaluation of their selected checkpoint are refused (all listed, with the fix) unless ``skip_unevaluated``;
unreadable run folders are listed and left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stylecls.errors import StyleclsError
from stylecls.report.pairing import BY, DEFAULT_BY, check_settings
from stylecls.report.runs import METRICS, TRIAL, LeftOut, collect, find_runs
from stylecls.report.selection import select
from stylecls.report.tables import markdown_table, summary_markdown, unpaired_summary

__all__ = ["BY", "METRICS", "Comparison", "compare", "comparison", "find_runs", "write_comparison"]

FILES = ("comparison.md", "comparison.csv")


@dataclass(frozen=True)
class Comparison:
    """The unpaired summary, its markdown tables, and the run folders left out (tabled in comparison.md)."""

    summary: pd.DataFrame
    markdown: str
    left_out: list[LeftOut]


def comparison(paths: Iterable[str | Path], by: str = DEFAULT_BY, skip_unevaluated: bool = False) -> Comparison:
    """Collect, check, select (training-domain validation) and summarise the runs under ``paths``."""
    collection = collect(paths, skip_unevaluated)
    if collection.runs.empty:
        raise StyleclsError("no evaluated runs to compare" + "".join(f"\n  {r.line()}" for r in collection.left_out))
    check_settings(collection.runs, by)
    chosen = select(collection.runs, collection.selection_runs, "training-domain", by).runs
    summary = unpaired_summary(chosen, by)
    markdown = summary_markdown(summary, by)
    if collection.runs[TRIAL].nunique() > 1:
        markdown += ("\nA hyper-parameter search: each cell is the trial chosen by training-domain validation per "
                     f"{by}, held-out domain / split and seed (`stylecls report --selection all` for the others).\n")
    return Comparison(summary, markdown, collection.left_out)


def write_comparison(result: Comparison, out: str | Path) -> Path:
    """``comparison.md`` and ``comparison.csv`` into ``out``."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    result.summary.to_csv(out_dir / FILES[1], index=False)
    markdown = result.markdown
    if result.left_out:  # the file says which runs it leaves out (the command says it on stderr)
        table = pd.DataFrame([{"run": r.run, "left out because": r.why()} for r in result.left_out])
        markdown += f"\n### Left out ({len(result.left_out)} run folders)\n\n{markdown_table(table)}\n"
    (out_dir / FILES[0]).write_text(markdown)
    return out_dir


def compare(
    paths: Iterable[str | Path], by: str = DEFAULT_BY, out: str | Path | None = None, skip_unevaluated: bool = False
) -> tuple[pd.DataFrame, str, Path | None]:
    """:func:`comparison`, written into ``out`` when given: (summary, markdown, the folder written to)."""
    result = comparison(paths, by, skip_unevaluated)
    return result.summary, result.markdown, None if out is None else write_comparison(result, out)
