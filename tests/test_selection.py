"""Model selection (training-domain, lodo, oracle) on hand-made run frames, and the DomainBed tables they feed."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stylecls.report.selection import select
from stylecls.report.tables import accuracy_table, latex_table, unpaired_summary

DOMAINS = ("art", "cartoon", "photo")  # training domains of the selection runs; the test domain is sketch


def _row(block: str, trial: int, seed: int, top1: float, val: float, last: float, **kw: object) -> dict:
    return {"run": f"{block}-t{trial}-s{seed}-{kw.get('val_domain')}", "dataset": "pacs", "protocol": "lodo",
            "arch": "cifar_resnet20", "backbone": "cifar_resnet20", "block": block, "method": block, "seed": seed,
            "split": None, "test_domain": "sketch",
            "trial": trial, "val_domain": None, "top1": top1, "domain_gap": math.nan, "val_score": val,
            "last_test": last, "settings": {}, **kw}


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two trials per (block, seed). Trial 0 wins on validation, trial 1 on leave-one-domain-out and the oracle."""
    runs, lodo = [], []
    for block, shift in (("se", 0.0), ("srm", 0.05)):
        for seed in (0, 1):
            runs.append(_row(block, 0, seed, 0.40 + shift + 0.01 * seed, val=0.90, last=0.38 + shift))
            runs.append(_row(block, 1, seed, 0.50 + shift + 0.01 * seed, val=0.80, last=0.52 + shift))
            for trial, acc in ((0, 0.6), (1, 0.7)):
                for i, d in enumerate(DOMAINS):
                    lodo.append(_row(block, trial, seed, acc + 0.01 * i, val=math.nan, last=math.nan, val_domain=d))
    return pd.DataFrame(runs), pd.DataFrame(lodo)


def test_each_method_chooses_its_trial_per_block_domain_and_seed() -> None:
    runs, lodo = _frames()
    chosen = {m: select(runs, lodo, m).runs for m in ("training-domain", "lodo", "oracle")}
    assert set(chosen["training-domain"]["trial"]) == {0} and len(chosen["training-domain"]) == 4
    assert set(chosen["lodo"]["trial"]) == {1} and chosen["lodo"]["score"].tolist() == pytest.approx([0.71] * 4)
    oracle = chosen["oracle"]
    assert set(oracle["trial"]) == {1} and sorted(oracle["last_test"]) == pytest.approx([0.52, 0.52, 0.57, 0.57])
    assert (chosen["lodo"]["trials"] == 2).all()


def test_a_trial_missing_a_held_out_training_domain_cannot_win_lodo() -> None:
    runs, lodo = _frames()
    lodo = lodo[~((lodo["trial"] == 1) & (lodo["val_domain"] == "photo"))]  # trial 1 lacks one domain everywhere
    assert set(select(runs, lodo, "lodo").runs["trial"]) == {0}
    nothing = select(runs, lodo.iloc[0:0], "lodo")
    assert nothing.runs.empty and "--selection lodo" in nothing.notes[0]


def test_one_trial_is_chosen_by_every_method() -> None:
    runs, lodo = _frames()
    single = runs[runs["trial"] == 0].assign(trial=None)
    for method in ("training-domain", "lodo", "oracle"):
        assert select(single, lodo.iloc[0:0], method).runs["run"].tolist() == single["run"].tolist()


def test_domainbed_table_is_mean_and_standard_error_over_seeds_with_the_average_of_domain_means() -> None:
    runs = pd.DataFrame([_row(b, 0, s, acc, 0.9, math.nan, test_domain=d)
                         for b, base in (("se", 0.4), ("srm", 0.5)) for s in (0, 1, 2)
                         for d, acc in (("sketch", base + 0.01 * s), ("photo", base + 0.3 + 0.02 * s))])
    table = accuracy_table(runs, "block", "top1", "sem", differences=True)
    assert list(table.columns) == ["block", "photo", "sketch", "avg"]
    sem = np.std([0.80, 0.82, 0.84], ddof=1) / np.sqrt(3)
    assert table.iloc[0].tolist() == ["SRM", f"82.0 ± {100 * sem:.1f} (n=3)", "51.0 ± 0.6 (n=3)", "66.5"]
    assert table.iloc[2].tolist() == ["SRM − SE", "+10.0", "+10.0", "+10.0"]
    tex = latex_table(table, "PACS", "tab:pacs")
    assert all(rule in tex for rule in (r"\toprule", r"\midrule", r"\bottomrule"))
    assert r"82.0 $\pm$" in tex and "SRM $-$ SE" in tex


def test_runs_of_different_held_out_domains_are_never_averaged_or_subtracted() -> None:
    runs = pd.DataFrame([_row("none", 0, 0, 0.30, 0.9, math.nan, test_domain="sketch"),
                         _row("srm", 0, 0, 0.90, 0.9, math.nan, test_domain="photo"),
                         _row("srm", 0, 0, 0.40, 0.9, math.nan, test_domain="sketch", run="srm-sketch")])
    rows = unpaired_summary(runs).set_index(["method", "measure"])["mean"]
    assert rows[("srm", "top1@avg")] == pytest.approx(0.65) and ("none", "top1@avg") not in rows
    assert rows[("srm − none", "top1@sketch")] == pytest.approx(0.10)
    assert ("srm − none", "top1@avg") not in rows and ("srm − none", "top1@photo") not in rows
