"""A :class:`~stylecls.report.build.Report` as one self-contained ``report.html`` and a ``report.md``.

The HTML embeds every figure as a base64 PNG (one file to mail or archive, no server); the markdown links the
figure files, which sit in a folder beside it (for READMEs and papers).
"""

from __future__ import annotations

import base64
import os
from datetime import datetime
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import escape

from stylecls.report.build import Report
from stylecls.report.stats import CI_NAMES

__all__ = ["markdown_table", "render_html", "render_markdown", "verdict_paragraph"]

HTML = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>stylecls report</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; } caption { caption-side: top; text-align: left; font-size: 0.9em; padding: 0.3em 0; }
figure { margin: 1em 0 2em; } img { max-width: 100%; } figcaption { font-size: 0.9em; color: #555; }
.verdict { background: #f6f8fa; border-left: 4px solid #888; padding: 0.6em 1em; }
</style></head><body>
<h1>stylecls report: {{ by_title }}</h1>
<p>Made {{ made }} from {{ sources }}. {{ method }}</p>
{% for g in groups %}
<h2>{{ g.title }}</h2>
<div class="verdict"><p>{{ g.paragraph }}</p></div>
{% for note in g.notes %}<p><em>{{ note }}</em></p>{% endfor %}
{% for caption, table in g.tables %}{{ table | safe }}{% endfor %}
{% for caption, alt, data in g.figures %}
<figure><img alt="{{ alt }}" src="data:image/png;base64,{{ data }}"><figcaption>{{ caption }}</figcaption></figure>
{% endfor %}
{% endfor %}
</body></html>
""")


def verdict_paragraph(report: Report, index: int = 0) -> str:
    """The plain-language verdict of one group: its sentences, and what the intervals and tests are."""
    g = report.groups[index]
    return (" ".join(g.verdicts) + f" Intervals: 95 %, {CI_NAMES[report.ci]}, over pairs of runs matched on "
            "seed, split and held-out domain; \"significant\" needs the interval to exclude 0 and the paired test "
            "to give p < 0.05. Accuracies are of the checkpoint chosen on training-domain validation.")


def markdown_table(table: pd.DataFrame) -> str:
    """A pipe table (no extra dependency); missing values as empty cells, pipes escaped."""

    def cell(v: object) -> str:
        return "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def _header(report: Report) -> tuple[str, str]:
    method = ("Selected accuracy: held-out accuracy of the checkpoint chosen by training-domain validation (best.pt). "
              f"Paired intervals: 95 %, {CI_NAMES[report.ci]}.")
    return f"paired comparison by {report.by}", method


def render_html(report: Report) -> str:
    """The whole report as one HTML document with the figures embedded."""
    title, method = _header(report)
    groups = []
    for i, g in enumerate(report.groups):
        tables = [
            (caption, table.to_html(index=False, na_rep="", border=0, escape=True)
             .replace("<thead>", f"<caption>{escape(caption)}</caption><thead>", 1))
            for caption, table in g.tables.values()
        ]
        figs = [(caption, png.stem, base64.b64encode(png.read_bytes()).decode("ascii")) for caption, png in g.figures]
        groups.append({"title": g.title, "paragraph": verdict_paragraph(report, i), "notes": g.notes,
                       "tables": tables, "figures": figs})
    return HTML.render(by_title=title, made=datetime.now().strftime("%Y-%m-%d %H:%M"),
                       sources=", ".join(report.sources), method=method, groups=groups)


def render_markdown(report: Report, where: Path) -> str:
    """The report as markdown; figure links are relative to the folder ``where`` the markdown file is written."""
    title, method = _header(report)
    parts = [f"# stylecls report: {title}", "", f"Made from {', '.join(report.sources)}. {method}"]
    for i, g in enumerate(report.groups):
        parts += ["", f"## {g.title}", "", verdict_paragraph(report, i)]
        parts += [f"\n_{note}_" for note in g.notes]
        for caption, table in g.tables.values():
            parts += ["", caption, "", markdown_table(table)]
        for caption, png in g.figures:
            rel = Path(os.path.relpath(png, where)).as_posix()
            parts += ["", f"![{caption}]({rel})", "", f"{caption} Data: `{Path(rel).with_suffix('.csv')}`."]
    return "\n".join(parts) + "\n"
