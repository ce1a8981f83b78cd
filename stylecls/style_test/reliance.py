"""The report's "style reliance" section: the style-test numbers per method, paired over seeds like accuracy.

One number per run and test, read by :func:`~stylecls.style_test.style_summary` from ``RUN/style_test/`` at full
strength (1), only from tables of the run's selected checkpoint (:func:`~stylecls.style_test.tables.selected_tables`;
the others are left out and named in the section's notes). The headline is the cue-conflict phase fraction
(decisions that follow the content among those that follow the content or the style image; its paired differences
are the section's figure), then, with their own tables, the share of decisions that switch to the style image's
label when its feature statistics are swapped in after each stage, and the agreement with the clean decision under
greyscale and colour-histogram shifts.
"""

from __future__ import annotations

import pandas as pd

from stylecls.report.build import Section, number_section
from stylecls.report.stats import CiMethod
from stylecls.style_test.tables import selected_tables, style_summary

__all__ = ["NUMBERS", "style_numbers", "style_reliance_section"]

TITLE = "style reliance"
#: (kind, test, column of the summary, short name, words); test None: every test of the kind (its stages)
NUMBERS = (
    ("amplitude-phase", "amplitude", "content_fraction", "cue conflict, phase fraction",
     "Cue conflict (A's Fourier phase, B's amplitude): share of the decisions following A or B that follow A's "
     "content (higher: less reliance on style)"),
    ("feature-stats", None, "follows_style", "AdaIN after {test}, switches to style",
     "AdaIN of B's channel mean and std into A's features after {test}: share of decisions that switch to B's label "
     "(higher: more reliance on feature statistics)"),
    ("style-shift", "greyscale", "agreement", "greyscale agreement",
     "Greyscale: agreement with the clean decision"),
    ("style-shift", "histogram", "agreement", "colour-histogram agreement",
     "Colour histogram of another image (another domain where there is one): agreement with the clean decision"),
)  # fmt: skip


def style_numbers(runs: pd.DataFrame, strength: float = 1.0, left_out: list[str] | None = None) -> pd.DataFrame:
    """One row per run (the ``run`` column holds its folder): a column per (kind, test, number) at ``strength``;
    the tables left out (another checkpoint or epoch ...) are appended to ``left_out``, one line each."""
    out = []
    for path in runs["run"]:
        tables, unusable = selected_tables(path)
        if left_out is not None:
            left_out += unusable
        summary = style_summary(path, tables)
        at = summary[summary["strength"] == strength]
        row = {"run": path}
        for kind, test, column, _, _ in NUMBERS:
            for r in at[(at["kind"] == kind) & ((at["test"] == test) if test else True)].itertuples():
                row[f"{kind}|{r.test}|{column}"] = float(getattr(r, column))
        out.append(row)
    return pd.DataFrame(out).set_index("run")


def style_reliance_section(runs: pd.DataFrame, by: str, ci: CiMethod) -> Section | None:
    """The section for one comparison group (its runs chosen by the headline selection); None when no run of the
    group has been style-tested (``stylecls style-test RUN``)."""
    left_out: list[str] = []
    numbers = style_numbers(runs, left_out=left_out)
    if numbers.empty or numbers.dropna(how="all").empty or not len(numbers.columns):
        if not left_out:
            return None
        return Section(TITLE, {}, [], [], [], notes=[f"style reliance: left out {line}" for line in left_out])
    section: Section | None = None
    for key in numbers.columns:
        kind, test, column = key.split("|")
        short, what = next((n, w) for k, t, c, n, w in NUMBERS if k == kind and c == column and t in (None, test))
        short, what = short.format(test=test), what.format(test=test)
        values = runs.assign(style_number=numbers.loc[runs["run"], key].to_numpy())
        # reliance on style is not better or worse in itself: a significant difference is "higher" or "lower"
        part = number_section(values.dropna(subset=["style_number"]), "style_number", by, ci, TITLE, what,
                              sides=("higher", "lower"))
        tables = {f"{key}|{name}": t for name, t in part.tables.items()}
        verdicts = [f"Style reliance ({short}): {v}" for v in part.verdicts]
        if section is None:  # the headline: its pairs make the section's figure
            section = part
            section.tables, section.verdicts = tables, verdicts
            continue
        section.tables.update(tables)
        section.verdicts += verdicts
        section.notes += part.notes
    if section is not None:
        section.notes.append("style reliance: numbers at strength 1 from `stylecls style-test` (RUN/style_test/) of "
                             "each run's selected checkpoint; runs without one are left out of these tables")
        section.notes += [f"style reliance: left out {line}" for line in left_out]
    return section
