"""Style tests: does a run's model decide by content or by style, in the dataset's own labels?

``perturb`` holds the pure perturbations (amplitude-phase recombination, FDA's low band, AdaIN, histogram
matching, greyscale), ``pairs`` the seeded pairs and their streaming loader, ``run`` the orchestration of
``stylecls style-test`` (:func:`style_test`), ``tables`` the tables, figure and :func:`style_summary` (one row
per kind, test and strength, for reports), ``examples`` one image under every perturbation (the notebook).
"""

from stylecls.style_test.run import DEFAULT_STRENGTHS, KINDS, SHIFTS, StyleTestResult, stages, style_test
from stylecls.style_test.tables import SUMMARY_COLUMNS, read_tables, style_summary

__all__ = [
    "DEFAULT_STRENGTHS", "KINDS", "SHIFTS", "SUMMARY_COLUMNS", "StyleTestResult", "read_tables", "stages",
    "style_summary", "style_test",
]  # fmt: skip
