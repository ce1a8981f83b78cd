"""A :class:`~stylecls.report.build.Report` as one self-contained ``report.html``, a ``report.md`` and LaTeX tables.

The report opens with what it found (verdicts, then figures), then the tables of every selection method; the runs,
their settings and versions come last, collapsed. The HTML embeds every figure as a base64 PNG (one file to mail or
archive, no server); the markdown links the figure files, which sit in a folder beside it.
"""

from __future__ import annotations

import base64
import os
from datetime import datetime
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import escape

from stylecls.report.build import GroupReport, Report
from stylecls.report.pairing import matched_on
from stylecls.report.runs import left_out_table
from stylecls.report.stats import CI_NAMES
from stylecls.report.tables import latex_table, markdown_table

__all__ = ["render_html", "render_latex", "render_markdown", "verdict_paragraph"]

HTML = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>stylecls report</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; } p.caption { font-size: 0.9em; color: #333; margin: 1em 0 0.2em; }
figure { margin: 1em 0 2em; } img { max-width: 100%; } figcaption { font-size: 0.9em; color: #555; }
.verdict { background: #f6f8fa; border-left: 4px solid #888; padding: 0.6em 1em; }
.warning { background: #fff8e1; border-left: 4px solid #e0a800; padding: 0.6em 1em; }
details { margin: 0.5em 0 1em; } summary { cursor: pointer; font-weight: 600; }
</style></head><body>
<h1>stylecls report: {{ title }}</h1>
<p>{{ method }}</p>
{% if left_out %}<div class="warning"><p>{{ left_out_text }}</p>{{ left_out | safe }}</div>{% endif %}
{% for g in groups %}
<h2>{{ g.title }}</h2>
<div class="verdict"><p>{{ g.paragraph }}</p></div>
{% for note in g.notes %}<p><em>{{ note }}</em></p>{% endfor %}
{% for caption, alt, data in g.figures %}
<figure><img alt="{{ alt }}" src="data:image/png;base64,{{ data }}"><figcaption>{{ caption }}</figcaption></figure>
{% endfor %}
{% for s in g.sections %}<h3>{{ s.title }}</h3>
{% for sentence in s.verdicts %}<p>{{ sentence }}</p>{% endfor %}
{% for table in s.tables %}{{ table | safe }}{% endfor %}{% endfor %}
{% endfor %}
<h2>Settings and versions</h2>
{% for g in groups %}<details><summary>{{ g.title }}: every run, its settings and versions</summary>
{% for table in g.details %}{{ table | safe }}{% endfor %}</details>
{% endfor %}
<p>Made {{ made }} from {{ sources }}.</p>
</body></html>
""")


def verdict_paragraph(report: Report, index: int = 0) -> str:
    """The plain-language verdict of one group: the headline sentences, and what the intervals and tests are."""
    g = report.groups[index]
    head = g.sections[0]
    return (" ".join(head.verdicts) + f" Intervals: 95 %, {CI_NAMES[report.ci]}, over pairs of runs matched on "
            f"{matched_on(g.runs)}; \"significant\" needs the interval to exclude 0 and the paired test "
            f"to give p < 0.05. Model selection: {head.title}.")


def _clean(table: pd.DataFrame) -> pd.DataFrame:
    """Empty cells for missing values (never ``None`` or ``nan`` in a cell)."""
    return table.astype(object).where(table.notna(), "")


def _html_table(caption: str, table: pd.DataFrame) -> str:
    html = _clean(table).to_html(index=False, na_rep="", border=0, escape=True)
    return (f'<p class="caption">{escape(caption)}</p>' if caption else "") + html


def _header(report: Report) -> tuple[str, str]:
    names = "; ".join(m.title for m in report.selections)
    method = (f"Paired comparison by {report.by}. Model selection, each named in its tables: {names}. "
              f"Paired intervals: 95 %, {CI_NAMES[report.ci]}.")
    return f"paired comparison by {report.by}", method


def _left_out_text(report: Report) -> str:
    n = len(report.left_out)
    return (f"{n} run folder(s) left out of every table (unreadable, or without a usable evaluation of their "
            "selected checkpoint):")


def _group_context(report: Report, i: int, g: GroupReport) -> dict[str, object]:
    return {
        "title": g.title, "paragraph": verdict_paragraph(report, i), "notes": g.notes,
        "figures": [(c, png.stem, base64.b64encode(png.read_bytes()).decode("ascii")) for c, png in g.figures],
        "sections": [{"title": s.title, "verdicts": s.verdicts if s is not g.sections[0] else [],
                      "tables": [_html_table(c, t) for c, t in s.tables.values()]} for s in g.sections],
        "details": [_html_table(c, t) for c, t in g.details.values()],
    }  # fmt: skip


def render_html(report: Report) -> str:
    """The whole report as one HTML document with the figures embedded."""
    title, method = _header(report)
    left_out = _html_table("", left_out_table(report.left_out)) if report.left_out else ""
    return HTML.render(title=title, method=method, left_out=left_out, left_out_text=_left_out_text(report),
                       groups=[_group_context(report, i, g) for i, g in enumerate(report.groups)],
                       made=datetime.now().strftime("%Y-%m-%d %H:%M"), sources=", ".join(report.sources))


def render_markdown(report: Report, where: Path) -> str:
    """The report as markdown; figure links are relative to the folder ``where`` the markdown file is written."""
    title, method = _header(report)
    parts = [f"# stylecls report: {title}", "", method]
    if report.left_out:
        parts += ["", f"**{_left_out_text(report)}**", "", markdown_table(left_out_table(report.left_out))]
    for i, g in enumerate(report.groups):
        parts += ["", f"## {g.title}", "", verdict_paragraph(report, i)]
        parts += [f"\n_{note}_" for note in g.notes]
        for caption, png in g.figures:
            rel = Path(os.path.relpath(png, where)).as_posix()
            parts += ["", f"![{caption}]({rel})", "", f"{caption} Data: `{Path(rel).with_suffix('.csv')}`."]
        for s in g.sections:
            parts += ["", f"### {s.title}"]
            parts += ["", *s.verdicts] if s is not g.sections[0] else []
            for caption, table in s.tables.values():
                parts += ["", caption, "", markdown_table(_clean(table))]
    parts += ["", "## Settings and versions"]
    for g in report.groups:
        parts += ["", f"<details><summary>{g.title}: every run, its settings and versions</summary>"]
        for caption, table in g.details.values():
            parts += ["", caption, "", markdown_table(_clean(table))]
        parts += ["", "</details>"]
    parts += ["", f"Made from {', '.join(report.sources)}."]
    return "\n".join(parts) + "\n"


def render_latex(report: Report) -> str:
    """One booktabs table per group and selection method (DomainBed's layout: blocks × held-out domains and avg,
    mean ± standard error over seeds), for ``\\usepackage{booktabs}``."""
    parts = [f"% stylecls report tables; needs \\usepackage{{booktabs}}. {_header(report)[1]}"]
    for gi, g in enumerate(report.groups):
        for si, s in enumerate(s for s in g.sections if "values" in s.tables):
            caption = f"{g.title}: {s.title}. Top-1 accuracy (\\%), mean $\\pm$ standard error over seeds."
            parts.append(latex_table(s.tables["values"][1], _tex(caption), f"tab:stylecls-{gi}-{si}"))
    return "\n".join(parts)


def _tex(text: str) -> str:
    """Escape the characters LaTeX treats specially in a caption written here (``_`` and ``·`` in titles)."""
    return text.replace("_", r"\_").replace("·", r"$\cdot$").replace("#", r"\#").replace("&", r"\&")
