"""Grouping runs into comparisons, and matching runs that differ only by the compared axis into pairs.

A comparison group is one (dataset, protocol, backbone) for the default axis, the *method* (block, feature
augmentation, IBN-Net-a: :mod:`stylecls.presentation`), or (dataset, protocol, the other axis) for ``--by block`` /
``--by arch``; its axis values are ordered and differenced as :func:`stylecls.presentation.method_order` /
:func:`~stylecls.presentation.method_differences` say (first − second; blocks alone: the block order). Two runs
form a pair when they agree on the group, seed, DTD split and held-out domain, and differ by the axis. Runs
without a partner are listed and left out, never paired by position. Runs whose settings differ beyond seed,
split, held-out domain and trial are refused, naming the setting (:func:`check_settings`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

import pandas as pd

from stylecls.errors import StyleclsError, unknown_name
from stylecls.presentation import method_differences, method_order
from stylecls.report.runs import TRIAL

__all__ = [
    "BY", "DEFAULT_BY", "GROUP", "PAIR_KEYS", "Pairing", "axis_differences", "axis_values", "check_comparable",
    "check_settings", "group_keys", "group_title", "groups", "matched_on", "pair_runs",
]  # fmt: skip

#: ``--by``: the settings that make a column (they may differ across columns, not within one).
BY = {
    "method": ("spec.block", "spec.block_options", "spec.feature_aug", "spec.arch"),
    "block": ("spec.block", "spec.block_options"),
    "arch": ("spec.arch",),
}
DEFAULT_BY = "method"
#: ``--by``: the columns that make one comparison group (``backbone``: the arch without its IBN-Net-a suffix).
GROUP = {
    "method": ("dataset", "protocol", "backbone"),
    "block": ("dataset", "protocol", "arch"),
    "arch": ("dataset", "protocol", "block"),
}
#: What identifies a run's partner (besides the group): the same seed, DTD split and held-out domain.
PAIR_KEYS = ("seed", "split", "test_domain")


@dataclass(frozen=True)
class Pairing:
    """Runs of ``a`` and ``b`` matched on :data:`PAIR_KEYS`.

    ``pairs``: one row per pair, the keys plus ``run_a``/``run_b`` and every other column of the input frame
    suffixed ``_a``/``_b``. ``unmatched``: the runs of ``a`` or ``b`` without a partner (run, value, keys).
    """

    a: str
    b: str
    pairs: pd.DataFrame
    unmatched: pd.DataFrame


def group_keys(by: str) -> list[str]:
    """The columns that make one comparison group (:data:`GROUP`)."""
    if by not in BY:
        raise unknown_name("--by", by, BY)
    return list(GROUP[by])


def groups(frame: pd.DataFrame, by: str = DEFAULT_BY) -> list[tuple[dict[str, str], pd.DataFrame]]:
    """The comparison groups of ``frame`` (:data:`GROUP`), each with its header values."""
    keys = group_keys(by)
    return [(dict(zip(keys, key, strict=True)), g) for key, g in frame.groupby(keys, sort=True, dropna=False)]


def group_title(head: dict[str, str]) -> str:
    return " · ".join(f"{k} {v}" for k, v in head.items() if isinstance(v, str) and v)


def axis_values(frame: pd.DataFrame | Iterable[str], by: str = DEFAULT_BY) -> list[str]:
    """The axis values present, in presentation order (methods and blocks: :func:`~stylecls.presentation.method_order`;
    archs by name)."""
    present = set((frame[by] if isinstance(frame, pd.DataFrame) else pd.Series(list(frame))).astype(str))
    return sorted(present) if by == "arch" else method_order(present)


def axis_differences(values: Sequence[str], by: str = DEFAULT_BY) -> list[tuple[str, str]]:
    """The differences to show, each read first − second (methods and blocks:
    :func:`~stylecls.presentation.method_differences`; archs: every pair)."""
    if len(values) < 2:
        return []
    return list(combinations(axis_values(values, by), 2)) if by == "arch" else method_differences(values)


def check_settings(frame: pd.DataFrame, by: str = DEFAULT_BY) -> None:
    """Refuse to average or pair runs whose settings differ other than by seed, split, held-out domain and trial.

    Inside one cell (same group, axis value and trial) everything else must agree and no experiment may appear
    twice; across the axis values of a trial only the axis settings may differ.
    """
    keys = group_keys(by)
    for _, table in frame.groupby([*keys, TRIAL], sort=False, dropna=False):
        for _, cell in table.groupby(by, sort=False):
            _same(cell, ignore=(), by=by)
            _no_duplicates(cell)
        _same(table, ignore=BY[by], by=by)


def _same(runs: pd.DataFrame, ignore: Sequence[str], by: str) -> None:
    keys = sorted(set().union(*(s.keys() for s in runs["settings"])) - set(ignore))
    for key in keys:
        values: dict[str, list[str]] = {}
        for run, s in zip(runs["run"], runs["settings"], strict=True):
            values.setdefault(s.get(key, "(unset)"), []).append(run)
        if len(values) > 1:
            shown = "; ".join(f"{v} in {', '.join(r[:2])}{' ...' if len(r) > 2 else ''}" for v, r in values.items())
            hint = (f"; they differ by method (block, feature augmentation, IBN-Net-a): compare them --by {DEFAULT_BY}"
                    if by != DEFAULT_BY and key in BY[DEFAULT_BY] else "; compare these runs separately")
            raise StyleclsError(
                f"cannot average runs whose setting {key} differs: {shown}. Only seed, split, held-out domain and "
                f"trial may differ{hint}"
            )


def _no_duplicates(cell: pd.DataFrame) -> None:
    ids = _key_frame(cell).agg("/".join, axis=1)
    dup = ids[ids.duplicated(keep=False)]
    if not dup.empty:
        raise StyleclsError(
            f"runs {', '.join(cell.loc[dup.index, 'run'])} repeat the same seed/split/test domain; averaging them "
            f"would count one experiment twice. Pass only one of them"
        )


def check_comparable(frame: pd.DataFrame, by: str = DEFAULT_BY) -> None:
    """Refuse input that cannot be paired: no runs, settings that differ beyond the axis, one axis value only."""
    if frame.empty:
        raise StyleclsError("no evaluated runs to report on; run `stylecls evaluate RUN` on each run first")
    try:
        check_settings(frame, by)
    except StyleclsError as e:
        raise StyleclsError(f"cannot pair runs: {e}") from None
    for head, group in groups(frame, by):
        values = axis_values(group, by)
        if len(values) < 2:
            raise StyleclsError(
                f"only one {by} ({values[0]}) among the {len(group)} run(s) of {group_title(head)}: a report "
                f"compares {by}s; add runs of another {by} with the same settings and seeds"
            )


def matched_on(frame: pd.DataFrame) -> str:
    """The pair keys that vary in ``frame``, in words: "seed", "seed and held-out domain", "seed and split"."""
    words = {"seed": "seed", "split": "split", "test_domain": "held-out domain"}
    used = [words[k] for k in PAIR_KEYS if k == "seed" or frame[k].notna().any()]
    return " and ".join(used) if len(used) < 3 else f"{used[0]}, {used[1]} and {used[2]}"


def _key_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The pair keys as text ('' for unset), so None/NaN keys match each other and nothing else."""
    keys = frame[list(PAIR_KEYS)].astype(object)
    return keys.where(keys.notna(), "").astype(str)


def pair_runs(frame: pd.DataFrame, a: str, b: str, by: str = DEFAULT_BY) -> Pairing:
    """Match the runs of ``a`` with those of ``b`` inside one group (see :func:`groups`) on :data:`PAIR_KEYS`."""
    keyed = pd.concat([_key_frame(frame).add_prefix("key_"), frame], axis=1)
    key_cols = [f"key_{k}" for k in PAIR_KEYS]
    side_a, side_b = keyed[keyed[by].astype(str) == a], keyed[keyed[by].astype(str) == b]
    for side, name in ((side_a, a), (side_b, b)):
        dup = side[side.duplicated(key_cols, keep=False)]
        if not dup.empty:
            raise StyleclsError(
                f"runs {', '.join(dup['run'])} of {by} {name} repeat the same seed/split/test domain; "
                f"pairing them would count one experiment twice. Pass only one of them"
            )
    merged = side_a.merge(side_b, on=key_cols, how="outer", suffixes=("_a", "_b"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    pairs = both.drop(columns=["_merge"]).rename(columns={f"key_{k}": k for k in PAIR_KEYS})
    pairs = pairs.drop(columns=[f"{k}_{s}" for k in PAIR_KEYS for s in "ab" if f"{k}_{s}" in pairs])
    pairs = pairs.sort_values(list(PAIR_KEYS)).reset_index(drop=True)
    lonely = []
    for side, suffix, name in (("left_only", "_a", a), ("right_only", "_b", b)):
        for row in merged[merged["_merge"] == side].itertuples():
            keys = {k: getattr(row, f"key_{k}") for k in PAIR_KEYS}
            lonely.append({"run": getattr(row, f"run{suffix}"), by: name, **keys, "missing": b if name == a else a})
    unmatched = pd.DataFrame(lonely, columns=["run", by, *PAIR_KEYS, "missing"])
    return Pairing(a, b, pairs, unmatched)
