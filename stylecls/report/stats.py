"""Paired statistics: pure functions from arrays of per-pair numbers to a difference, intervals, a test, a verdict.

Runs of two blocks matched on seed and split / held-out domain are *pairs*; the quantity of interest is the
mean of the per-pair differences ``a − b``. Two 95 % intervals are computed and both are kept: a percentile
bootstrap over the pairs (fixed seed, so a report is reproducible) and Student's t-interval. The p-value is
the Wilcoxon signed-rank test where there are at least :data:`WILCOXON_MIN_PAIRS` pairs (it cannot reach
p < 0.05 with fewer), else the paired t-test; the result names which. The verdict sentence is computed from
the numbers and never calls a difference better or worse when the shown interval contains 0.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats as sps

from stylecls.presentation import method_label

__all__ = [
    "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "CONFIDENCE", "WILCOXON_MIN_PAIRS", "CiMethod", "PairedStats",
    "bootstrap_ci", "display_name", "mean_sem", "mean_std", "paired_stats", "paired_test", "signed", "t_interval",
    "verdict",
]  # fmt: skip

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
#: With n < 6 pairs the two-sided Wilcoxon signed-rank test cannot give p < 0.05, so the t-test is used.
WILCOXON_MIN_PAIRS = 6
#: ``auto``: the t-interval below :data:`WILCOXON_MIN_PAIRS` pairs (a percentile bootstrap of 3-5 values is too
#: narrow: it cannot reach beyond the extreme pair means), the bootstrap from there on.
CiMethod = Literal["auto", "bootstrap", "t"]
CI_NAMES = {
    "bootstrap": f"percentile bootstrap over pairs ({BOOTSTRAP_RESAMPLES:,} resamples, seed {BOOTSTRAP_SEED})",
    "t": "Student's t-interval",
    "auto": f"Student's t-interval below {WILCOXON_MIN_PAIRS} pairs, else the percentile bootstrap over pairs "
    f"({BOOTSTRAP_RESAMPLES:,} resamples, seed {BOOTSTRAP_SEED})",
}


def display_name(value: str) -> str:
    """How results write an axis value: a method's or block's label (:func:`stylecls.presentation.method_label`),
    others as given."""
    return method_label(str(value))


def mean_std(values: np.ndarray) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof=1; NaN for fewer than two values) and n, NaNs dropped."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    n = len(v)
    return (float(v.mean()) if n else math.nan, float(v.std(ddof=1)) if n > 1 else math.nan, n)


def mean_sem(values: np.ndarray) -> tuple[float, float, int]:
    """Mean, standard error of the mean (sample std / sqrt(n); NaN for fewer than two values) and n."""
    mean, std, n = mean_std(values)
    return mean, std / math.sqrt(n) if n > 1 else math.nan, n


def t_interval(diff: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student's t confidence interval of the mean (scipy.stats.t); NaN for fewer than two values."""
    d = np.asarray(diff, dtype=float)
    if len(d) < 2:
        return math.nan, math.nan
    sem = sps.sem(d)
    if sem == 0:
        return float(d.mean()), float(d.mean())
    low, high = sps.t.interval(confidence, len(d) - 1, loc=d.mean(), scale=sem)
    return float(low), float(high)


def bootstrap_ci(
    diff: np.ndarray, confidence: float = CONFIDENCE, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over the pairs (scipy.stats.bootstrap), deterministic for a seed.

    NaN for fewer than two pairs; a constant difference gives the degenerate interval [d, d].
    """
    d = np.asarray(diff, dtype=float)
    if len(d) < 2:
        return math.nan, math.nan
    if np.all(d == d[0]):
        return float(d[0]), float(d[0])
    res = sps.bootstrap(
        (d,), np.mean, confidence_level=confidence, n_resamples=resamples, method="percentile",
        rng=np.random.default_rng(seed),
    )  # fmt: skip
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def paired_test(diff: np.ndarray) -> tuple[str, float]:
    """(test name, two-sided p) for H0: the median/mean difference is 0.

    Wilcoxon signed-rank for n >= 6 (zero differences dropped, as scipy's default), else the paired t-test;
    p is NaN where the test is undefined (n < 2, or every difference 0).
    """
    d = np.asarray(diff, dtype=float)
    if len(d) >= WILCOXON_MIN_PAIRS:
        if np.all(d == 0):
            return "Wilcoxon signed-rank", math.nan
        return "Wilcoxon signed-rank", float(sps.wilcoxon(d).pvalue)
    if len(d) < 2 or np.all(d == d[0]):
        return "paired t-test", math.nan
    return "paired t-test", float(sps.ttest_1samp(d, 0.0).pvalue)


@dataclass(frozen=True)
class PairedStats:
    """The comparison ``a − b`` over matched pairs (differences in the units of the inputs)."""

    a: str
    b: str
    n: int
    mean: float
    std: float  # sample std of the per-pair differences
    boot_low: float
    boot_high: float
    t_low: float
    t_high: float
    wins: float  # fraction of pairs where a > b
    ties: float  # fraction of pairs where a == b
    test: str
    p_value: float

    def method(self, method: CiMethod = "auto") -> Literal["bootstrap", "t"]:
        """The interval ``method`` means for this comparison (``auto`` resolves by the number of pairs)."""
        if method == "auto":
            return "t" if self.n < WILCOXON_MIN_PAIRS else "bootstrap"
        return method

    def ci(self, method: CiMethod = "auto") -> tuple[float, float]:
        if self.method(method) == "bootstrap":
            return self.boot_low, self.boot_high
        return self.t_low, self.t_high

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_stats(a_values: np.ndarray, b_values: np.ndarray, a: str = "a", b: str = "b") -> PairedStats:
    """Statistics of ``a_values − b_values`` (the i-th entries of both are one pair)."""
    av, bv = np.asarray(a_values, dtype=float), np.asarray(b_values, dtype=float)
    if av.shape != bv.shape:
        raise ValueError(f"paired arrays differ in shape: {av.shape} vs {bv.shape}")
    diff = av - bv
    mean, std, n = mean_std(diff)
    test, p = paired_test(diff)
    (boot_low, boot_high), (t_low, t_high) = bootstrap_ci(diff), t_interval(diff)
    return PairedStats(
        a=a, b=b, n=n, mean=mean, std=std, boot_low=boot_low, boot_high=boot_high, t_low=t_low, t_high=t_high,
        wins=float(np.mean(diff > 0)) if n else math.nan, ties=float(np.mean(diff == 0)) if n else math.nan,
        test=test, p_value=p,
    )  # fmt: skip


def verdict(s: PairedStats, method: CiMethod = "auto", scale: float = 100.0, unit: str = "points",
            alpha: float = 0.05, sides: tuple[str, str] = ("better", "worse")) -> str:
    """One sentence from the numbers, e.g. ``SRM − SE: +1.3 points [−0.4, +3.0], 12 pairs, not significant at 5 %``.

    "better"/"worse" (``sides``: "higher"/"lower" for a number that is neither good nor bad) only when the shown
    interval excludes 0 *and* the paired test gives p < alpha; an interval that contains 0 is always "not
    significant".
    """
    a, b = display_name(s.a), display_name(s.b)
    label = f"{a} − {b}"
    pairs = f"{s.n} pair{'s' if s.n != 1 else ''}"
    if s.n == 0:
        return f"{label}: no matched pairs."
    head = f"{label}: {signed(s.mean * scale)} {unit}"
    low, high = s.ci(method)
    if math.isnan(low):
        return f"{head}, {pairs}: too few pairs for an interval or a test; no conclusion."
    ci_text = f"[{signed(low * scale)}, {signed(high * scale)}]"
    p_text = "p undefined" if math.isnan(s.p_value) else f"p = {s.p_value:.3g}"
    pct = f"{100 * alpha:g} %"
    if low <= 0 <= high:
        return f"{head} {ci_text}, {pairs}, not significant at {pct} (the interval contains 0; {s.test} {p_text})."
    if math.isnan(s.p_value) or s.p_value >= alpha:
        return (f"{head} {ci_text}, {pairs}, not significant at {pct}: the interval excludes 0 but the "
                f"{s.test} gives {p_text}.")
    side = sides[0] if s.mean > 0 else sides[1]
    return f"{head} {ci_text}, {pairs}, significant at {pct} ({s.test} {p_text}): {a} {side} than {b}."


def signed(x: float) -> str:
    """``+1.3`` / ``−0.4`` (a real minus sign), one decimal."""
    text = f"{x:+.1f}"
    return text.replace("-", "−")
