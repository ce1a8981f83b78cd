"""``stylecls report``: paired statistics, model selection, figures, one self-contained report.html + report.md.

Modules: :mod:`~stylecls.report.runs` (what is read from a run folder), :mod:`~stylecls.report.pairing` (runs
matched on seed + split / held-out domain), :mod:`~stylecls.report.stats` (paired differences, intervals, tests,
verdicts), :mod:`~stylecls.report.figures`, :mod:`~stylecls.report.build` (per-group tables and figures) and
:mod:`~stylecls.report.render` (HTML and markdown).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from stylecls.report.build import Report, analyse
from stylecls.report.render import render_html, render_markdown
from stylecls.report.stats import CiMethod

__all__ = ["ReportFiles", "write_report"]


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    markdown: Path
    figures: Path
    report: Report


def write_report(
    paths: Iterable[str | Path], out: str | Path = "report.html", by: str = "block", ci: CiMethod = "auto"
) -> ReportFiles:
    """Write ``out`` (self-contained HTML), the markdown beside it (``.md``) and ``<stem>_figures/`` (PNG + CSV)."""
    html = Path(out)
    if html.suffix.lower() not in (".html", ".htm"):
        html = html / "report.html" if html.is_dir() or not html.suffix else html.with_suffix(".html")
    html.parent.mkdir(parents=True, exist_ok=True)
    fig_dir = html.parent / f"{html.stem}_figures"
    report = analyse(paths, fig_dir, by, ci)
    markdown = html.with_suffix(".md")
    html.write_text(render_html(report), encoding="utf-8")
    markdown.write_text(render_markdown(report, markdown.parent), encoding="utf-8")
    return ReportFiles(html, markdown, fig_dir, report)
