"""``stylecls report`` and ``stylecls compare``: one results stack from run folders to tables, figures and verdicts.

Modules: :mod:`~stylecls.report.runs` (what is read from a run folder, and which runs are left out and why),
:mod:`~stylecls.report.pairing` (comparison groups, axis order, runs matched on seed + split / held-out domain),
:mod:`~stylecls.report.selection` (model selection: training-domain, lodo, oracle), :mod:`~stylecls.report.stats`
(paired differences, intervals, tests, verdicts), :mod:`~stylecls.report.tables` (the unpaired tables: compare's and
DomainBed's), :mod:`~stylecls.report.figures`, :mod:`~stylecls.report.build` (per-group sections and figures) and
:mod:`~stylecls.report.render` (HTML, markdown, LaTeX).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from stylecls.report.build import Report, analyse
from stylecls.report.pairing import DEFAULT_BY
from stylecls.report.render import render_html, render_latex, render_markdown
from stylecls.report.stats import CiMethod

__all__ = ["ReportFiles", "write_report"]


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    markdown: Path
    figures: Path
    latex: Path | None
    report: Report


def write_report(
    paths: Iterable[str | Path], out: str | Path = "report.html", by: str = DEFAULT_BY, ci: CiMethod = "auto",
    selections: Sequence[str] = ("training-domain",), latex: str | Path | None = None, skip_unevaluated: bool = False,
) -> ReportFiles:
    """Write ``out`` (self-contained HTML), the markdown beside it (``.md``), ``<stem>_figures/`` (PNG + CSV) and,
    when asked, the tables as LaTeX (``latex``)."""
    html = Path(out)
    if html.suffix.lower() not in (".html", ".htm"):
        html = html / "report.html" if html.is_dir() or not html.suffix else html.with_suffix(".html")
    html.parent.mkdir(parents=True, exist_ok=True)
    fig_dir = html.parent / f"{html.stem}_figures"
    report = analyse(paths, fig_dir, by, ci, selections, skip_unevaluated)
    markdown = html.with_suffix(".md")
    html.write_text(render_html(report), encoding="utf-8")
    markdown.write_text(render_markdown(report, markdown.parent), encoding="utf-8")
    tex = None
    if latex is not None:
        tex = Path(latex)
        tex.parent.mkdir(parents=True, exist_ok=True)
        tex.write_text(render_latex(report), encoding="utf-8")
    return ReportFiles(html, markdown, fig_dir, tex, report)
