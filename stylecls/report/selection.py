"""Model selection (DomainBed's three methods): which trial of a hyper-parameter search a table reports.

Per (group, block, held-out domain, DTD split, seed) the candidates are the runs of every trial; a method picks one
and says which number of it the table shows:

- ``training-domain``: the trial with the best validation accuracy of its selected checkpoint (the pooled 20 % of
  the training domains that chose best.pt); the table shows its test / held-out-domain accuracy (best.pt).
- ``lodo``: leave-one-training-domain-out cross-validation: the trial with the best mean accuracy over its
  selection runs, each holding out one training domain in turn (RunSpec ``val_domain``); the table shows the chosen
  trial's test / held-out-domain accuracy (best.pt).
- ``oracle``: the test-domain oracle, the trial with the best held-out accuracy at its last epoch (metrics.csv
  ``test_acc``, ``--eval-test-every``); the table shows that accuracy. An upper bound, never a result.

With one trial (``--hparams default``) every method picks it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from stylecls.report.pairing import DEFAULT_BY, PAIR_KEYS, group_keys
from stylecls.report.runs import TRIAL, VAL_DOMAIN

__all__ = ["METHODS", "Method", "Selection", "select"]


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    chooses_by: str
    reports: str
    column: str = "top1"  # the run column the tables show
    upper_bound: bool = False


METHODS = {
    m.name: m
    for m in (
        Method("training-domain", "training-domain validation",
               "the validation accuracy (training domains) of each trial's selected checkpoint",
               "the test accuracy of the chosen trial's best.pt"),
        Method("lodo", "leave-one-training-domain-out cross-validation",
               "each trial's mean accuracy on the training domains, each held out in turn",
               "the test accuracy of the chosen trial's best.pt"),
        Method("oracle", "test-domain oracle (an upper bound, not a result)",
               "each trial's test accuracy at its last epoch (metrics.csv test_acc)",
               "that last-epoch test accuracy", column="last_test", upper_bound=True),
    )
}


@dataclass
class Selection:
    """The runs ``method`` chose, one per (group, axis value, seed, split, held-out domain), with ``score`` (what
    chose it) and ``trials`` (how many it chose among); the tables show their ``method.column``."""

    method: Method
    runs: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def _lodo_scores(selection_runs: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Per (keys, trial): the mean accuracy of the selection runs over the training domains they hold out; NaN for a
    trial that lacks one of the domains the others hold out."""
    if selection_runs.empty:
        return pd.Series(dtype=float)
    k = [*keys, TRIAL]
    runs = selection_runs.assign(**{c: selection_runs[c].astype(object).where(selection_runs[c].notna(), "")
                                    for c in k})
    per_trial = runs.groupby(k, sort=False).agg(score=("top1", "mean"), domains=(VAL_DOMAIN, "nunique"))
    expected = per_trial.groupby(level=list(range(len(keys))))["domains"].transform("max")
    return per_trial["score"].where(per_trial["domains"] == expected)


def select(runs: pd.DataFrame, selection_runs: pd.DataFrame, method: str, by: str = DEFAULT_BY) -> Selection:
    """The runs ``method`` chooses (see the module docstring)."""
    chosen = METHODS[method]
    keys = [*group_keys(by), by, *PAIR_KEYS]
    frame = runs.assign(**{c: runs[c].astype(object).where(runs[c].notna(), "") for c in [*keys, TRIAL]})
    if method == "training-domain":
        score = frame["val_score"]
    elif method == "oracle":
        score = frame["last_test"]
    else:
        lodo = _lodo_scores(selection_runs, keys)
        index = pd.MultiIndex.from_frame(frame[[*keys, TRIAL]])
        score = pd.Series(lodo.reindex(index).to_numpy() if len(lodo) else math.nan, index=frame.index, dtype=float)
    frame = frame.assign(score=score.astype(float))
    picked, trials, unscored = [], [], 0
    for _, candidates in frame.groupby(keys, sort=False):
        candidates = candidates.sort_values(TRIAL, key=lambda s: s.astype(str))
        if len(candidates) == 1 or candidates["score"].notna().any():
            picked.append(candidates.index[0] if len(candidates) == 1 else candidates["score"].idxmax())
            trials.append(len(candidates))
        else:
            unscored += 1
    out = runs.loc[picked].assign(score=frame.loc[picked, "score"], trials=trials)
    notes = []
    if unscored:
        notes.append(f"{chosen.title}: {unscored} cell(s) of several trials had nothing to choose by "
                     f"({chosen.chooses_by}) and are left out" +
                     ("; sweep with --selection lodo to train the selection runs" if method == "lodo" else ""))
    if method == "oracle" and out[chosen.column].isna().all():
        notes.append("test-domain oracle: no run recorded its held-out accuracy at the last epoch (metrics.csv "
                     "test_acc; train with --eval-test-every N)")
    return Selection(chosen, out.reset_index(drop=True), notes)
