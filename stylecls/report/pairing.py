"""Matching runs that differ only by the compared axis (the block, by default) into pairs.

Two runs form a pair when they agree on dataset, protocol, the other axis (arch), seed, DTD split and held-out
domain, and differ by the axis. Runs without a partner are listed and left out, never paired by position.
Runs whose settings differ beyond seed, split and held-out domain are refused (naming the setting) by
:func:`stylecls.compare.check_settings`, the same rule ``stylecls compare`` applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import pandas as pd

from stylecls.compare import BY, GROUP, check_settings
from stylecls.errors import StyleclsError, unknown_name

__all__ = [
    "AXIS_ORDER", "PAIR_KEYS", "Pairing", "axis_values", "check_comparable", "groups", "pair_runs", "value_pairs",
]  # fmt: skip

#: What identifies a run's partner (besides the group): the same seed, DTD split and held-out domain.
PAIR_KEYS = ("seed", "split", "test_domain")
#: Order of the axis values, so differences read "SRM − SE", "SRM − none", "SE − none".
AXIS_ORDER = {"block": ("srm", "se", "ge", "eca", "none")}


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
    """The columns that make one comparison group: dataset, protocol and the other axis."""
    if by not in BY:
        raise unknown_name("--by", by, BY)
    return [g for g in GROUP if g != by]


def groups(frame: pd.DataFrame, by: str = "block") -> list[tuple[dict[str, str], pd.DataFrame]]:
    """The comparison groups of ``frame`` (one per dataset/protocol/arch), each with its header values."""
    keys = group_keys(by)
    return [(dict(zip(keys, key, strict=True)), g) for key, g in frame.groupby(keys, sort=True, dropna=False)]


def axis_values(frame: pd.DataFrame, by: str = "block") -> list[str]:
    """The values of the axis present in ``frame``, in :data:`AXIS_ORDER` (the rest alphabetically)."""
    present = set(frame[by].astype(str))
    order = [v for v in AXIS_ORDER.get(by, ()) if v in present]
    return order + sorted(present - set(order))


def value_pairs(values: list[str]) -> list[tuple[str, str]]:
    """Every pair of axis values, earlier minus later: srm − se, srm − none, se − none."""
    return list(combinations(values, 2))


def check_comparable(frame: pd.DataFrame, by: str = "block") -> None:
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
            where = ", ".join(f"{k} {v}" for k, v in head.items() if isinstance(v, str) and v)
            raise StyleclsError(
                f"only one {by} ({values[0]}) among the {len(group)} run(s) of {where}: a report compares "
                f"{by}s; add runs of another {by} with the same settings and seeds"
            )


def _key_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The pair keys as text ('' for unset), so None/NaN keys match each other and nothing else."""
    return frame[list(PAIR_KEYS)].astype(object).where(frame[list(PAIR_KEYS)].notna(), "").astype(str)


def pair_runs(frame: pd.DataFrame, a: str, b: str, by: str = "block") -> Pairing:
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
            run = getattr(row, f"run{suffix}")
            keys = {k: getattr(row, f"key_{k}") for k in PAIR_KEYS}
            lonely.append({"run": run, by: name, **keys, "missing": b if name == a else a})
    unmatched = pd.DataFrame(lonely, columns=["run", by, *PAIR_KEYS, "missing"])
    return Pairing(a, b, pairs, unmatched)
