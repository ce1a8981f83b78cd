"""Random hyper-parameter search (equal budget, paired across blocks) and leave-one-domain-out selection
planning: grids only, nothing trains (the demo's domains: photo, poster, sketch, watercolor)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stylecls.cli import app
from stylecls.data import Listing, protocol_parts
from stylecls.data.catalog import from_listing
from stylecls.errors import StyleclsError
from stylecls.spec import RunSpec
from stylecls.sweep import GridAxes, expand_grid
from stylecls.sweep.hparams import BLOCK_RANGES, SHARED, Search, search_space

BASE = RunSpec(dataset="demo", epochs=1, img_size=16)
SHARED_NAMES = [r.name for r in SHARED]


def _grid(seed: int = 0, trials: int = 2, base: RunSpec = BASE, blocks: tuple[str, ...] = ("se", "srm")) -> list:
    return expand_grid(base, GridAxes(block=list(blocks), seed=[0, 1]), search=Search("random", trials, seed))


def test_a_trial_shares_every_non_block_value_across_blocks_and_trials_differ() -> None:
    specs = _grid(blocks=("none", "se", "srm"))
    assert len(specs) == 2 * 3 * 2 and {s.trial for s in specs} == {0, 1} and {s.hparams_seed for s in specs} == {0}
    by_trial = {t: [s for s in specs if s.trial == t] for t in (0, 1)}
    for runs in by_trial.values():  # runs pair across blocks by (trial, seed): every shared value is equal
        assert len({tuple(getattr(s, n) for n in SHARED_NAMES) for s in runs}) == 1
        assert {s.block for s in runs} == {"none", "se", "srm"}
    first, second = by_trial[0][0], by_trial[1][0]
    assert all(getattr(first, n) != getattr(second, n) for n in SHARED_NAMES)  # continuous draws: all differ
    # block-specific values exist only where the block has them, drawn per (trial, block)
    options = {(s.trial, s.block): dict(s.block_options) for s in specs}
    assert options[0, "none"] == {} and set(options[0, "se"]) == {"reduction"}
    assert set(options[0, "srm"]) == {"integration"}  # SRM stays mean+std pooling
    # a run's name says its trial and changes with every drawn value
    assert len({s.run_name() for s in specs}) == len(specs) and "-t1-" in by_trial[1][0].run_name()


def test_draws_are_seeded_reproducible_and_within_their_ranges() -> None:
    names = [s.run_name() for s in _grid(seed=3)]
    assert [s.run_name() for s in _grid(seed=3)] == names
    assert not set(names) & {s.run_name() for s in _grid(seed=4)}
    shared, _ = search_space("demo")
    bounds = {r.name: r.bounds(0.1 if r.name == "lr" else 5e-4 if r.name == "weight_decay" else 64) for r in shared}
    for spec in _grid(trials=6):
        for name in ("lr", "weight_decay", "label_smoothing", "min_crop"):
            low, high = bounds[name]
            assert low <= getattr(spec, name) <= high, (name, getattr(spec, name))
        assert isinstance(spec.batch_size, int) and 32 <= spec.batch_size <= 128
        if spec.block == "se":
            assert spec.block_options["reduction"] in BLOCK_RANGES["se"][0].choices


def test_given_values_are_not_drawn_and_do_not_shift_the_others() -> None:
    free = [s for s in _grid() if s.block == "srm"]
    fixed = [s for s in _grid(base=replace(BASE, lr=0.05, block_options={"pooling": "std"})) if s.block == "srm"]
    assert {s.lr for s in fixed} == {0.05} and {s.block_options["pooling"] for s in fixed} == {"std"}
    for a, b in zip(free, fixed, strict=True):
        assert (a.weight_decay, a.batch_size, a.block_options["integration"]) == (
            b.weight_decay, b.batch_size, b.block_options["integration"])


def test_default_search_is_todays_grid_and_bad_searches_are_refused() -> None:
    plain = expand_grid(BASE, GridAxes(block=["se", "srm"]))
    assert expand_grid(BASE, GridAxes(block=["se", "srm"]), search=Search()) == plain
    assert all(s.trial is None and s.lr == 0.1 for s in plain)
    with pytest.raises(StyleclsError, match="--trials needs --hparams random"):
        Search("default", trials=2)
    with pytest.raises(StyleclsError, match="--trials must be >= 1"):
        Search("random", trials=0)
    with pytest.raises(StyleclsError, match="unknown"):
        Search("grid")


def test_lodo_selection_adds_one_run_per_training_domain() -> None:
    base = replace(BASE, test_domain="sketch")
    specs = expand_grid(base, GridAxes(block=["se", "srm"]), search=Search("random", 2, 0), selection="lodo")
    main = [s for s in specs if s.val_domain is None]
    extra = [s for s in specs if s.val_domain is not None]
    assert len(main) == 4 and len(extra) == 4 * 3 and specs[:4] == main
    for run in main:  # each run that tests on sketch gets one run per training domain left out
        mine = [s for s in extra if replace(s, val_domain=None) == run]
        assert sorted(s.val_domain for s in mine) == ["photo", "poster", "watercolor"]
    assert len({s.run_name() for s in specs}) == 16 and "-sketch-val_photo-t0-" in extra[0].run_name()
    with pytest.raises(StyleclsError, match="hold a domain out"):
        expand_grid(BASE, GridAxes(block=["srm"]), selection="lodo")
    with pytest.raises(StyleclsError, match="val-domain"):
        replace(base, val_domain="sketch").resolved()


def test_protocol_with_a_validation_domain_trains_on_the_others() -> None:
    domains = ("a", "b", "c", "d")
    rows = [(f"/{d}/{c}/{i}.png", c, d) for d in domains for c in ("x", "y") for i in range(5)]
    splits = ["val" if r[0].endswith("/0.png") else "train" for r in rows]
    data = from_listing(Listing(rows, splits, ("x", "y"), domains, None, "seeded"), "test", Path("/"))
    parts = protocol_parts(data, "lodo", "d", val_domain="b")
    by = parts.frame.groupby("part")["domain"].agg(lambda d: sorted(set(d)))
    assert set(by.index) == {"train", "val"} and by["val"] == ["b"] and by["train"] == ["a", "c"]
    assert parts.counts["val"] == 10  # every image of b; a's and c's validation rows are left out
    assert not parts.warnings  # no test part, on purpose: selection never sees d
    assert parts.counts["train"] == 16 and parts.val_domain == "b" and parts.to_dict()["val_domain"] == "b"
    with pytest.raises(StyleclsError, match="validation domain"):
        protocol_parts(data, "lodo", "d", val_domain="d")


def test_block_options_apply_to_the_blocks_that_take_them() -> None:
    specs = expand_grid(BASE, GridAxes(block=["none", "srm"], block_options=[{"pooling": "mean"}, {"pooling": "std"}]))
    assert [(s.block, dict(s.block_options)) for s in specs] == [
        ("none", {}), ("srm", {"pooling": "mean"}), ("srm", {"pooling": "std"})]
    with pytest.raises(StyleclsError, match="no block of this sweep .* takes the block option pooling"):
        expand_grid(BASE, GridAxes(block=["none", "se"], block_options=[{"pooling": "mean"}]))
    with pytest.raises(StyleclsError, match="SRM pooling"):  # a bad value: refused at planning
        expand_grid(BASE, GridAxes(block=["srm"], block_options=[{"pooling": "median"}]))


def test_a_drawn_batch_never_exceeds_a_limited_training_part() -> None:
    specs = _grid(trials=6, base=replace(BASE, limit_train=40))
    assert max(s.batch_size for s in specs) == 40 and min(s.batch_size for s in specs) >= 32


def test_every_block_range_is_an_option_its_block_takes_with_values_it_accepts() -> None:
    from stylecls.blocks import create_block
    from stylecls.sweep.grid import block_option_names

    for block, ranges in BLOCK_RANGES.items():
        for r in ranges:
            assert r.name in block_option_names(block), (block, r.name)
            for value in r.choices:
                create_block(block, 16, **{r.name: value})


# --- the command line -----------------------------------------------------------------------------


def test_list_hparams_and_a_dry_run_that_counts_the_lodo_runs(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["sweep", "--list-hparams", "--dataset", "pacs", "--block", "se", "--block", "none"])
    assert listed.exit_code == 0, listed.output
    assert "log-uniform [0.00791, 0.0791]" in listed.output and "one of 4, 8, 16, 32" in listed.output
    assert "integration" not in listed.output  # srm was not asked for
    out = tmp_path / "sweep"
    dry = runner.invoke(app, ["sweep", "--out", str(out), "--test-domain", "sketch", "--block", "se", "--block", "srm",
                              "--hparams", "random", "--trials", "2", "--selection", "lodo", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "16 runs (12 for lodo selection); 16 to run" in dry.output and not out.exists()
    bad = runner.invoke(app, ["sweep", "--out", str(out), "--block", "none", "--block-option", "pooling=mean",
                              "--dry-run"])
    assert isinstance(bad.exception, StyleclsError) and "takes the block option pooling" in str(bad.exception)


def test_a_dry_run_needs_no_out_and_no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLECLS_DATA", str(tmp_path / "no-data"))
    monkeypatch.chdir(tmp_path)
    dry = CliRunner().invoke(app, ["sweep", "--preset", "pacs-lodo", "--hparams", "random", "--trials", "4",
                                   "--selection", "lodo", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "576 runs (432 for lodo selection); 576 to run" in dry.output and "PACS not found" in dry.output
    assert not (tmp_path / "sweeps").exists()


def test_lodo_selection_runs_record_no_test_accuracy_when_the_main_runs_do() -> None:
    """A selection run has no test part; ``--eval-test-every`` on it would stop it at its first epoch."""
    base = replace(BASE, test_domain="sketch", eval_test_every=1)
    specs = expand_grid(base, GridAxes(block=["se", "srm"]), selection="lodo")
    main = [s for s in specs if s.val_domain is None]
    extra = [s for s in specs if s.val_domain is not None]
    assert [s.eval_test_every for s in main] == [1, 1] and len(extra) == 6
    assert {s.eval_test_every for s in extra} == {0}
