"""Style tests: the perturbations against their defining formulas, and `stylecls style-test` on a hand-made run."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fake_run import sweep

from stylecls.atomic import load_checkpoint, save_checkpoint
from stylecls.errors import StyleclsError
from stylecls.models import build_model
from stylecls.runfolder import RunFolder
from stylecls.style_test import KINDS, SUMMARY_COLUMNS, stages, style_summary, style_test
from stylecls.style_test.pairs import PairDataset, draw_pairs, pair_loader
from stylecls.style_test.perturb import (
    adain,
    amplitude_phase,
    blend,
    channel_stats,
    greyscale,
    low_band,
    match_histograms,
)  # fmt: skip
from stylecls.style_test.run import Decider, captured_stats, swapped_stats

pytestmark = pytest.mark.usefixtures("cache_env")  # nothing may land in the user's cache


def images(n: int = 2, size: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, size, size), dtype=np.uint8))


# -- the pure functions ------------------------------------------------------------------------


def test_recombining_an_image_with_its_own_amplitude_returns_it() -> None:
    x = images(3, 15).float()  # odd size: no unpaired Nyquist frequency
    for beta in (0.0, 0.1, 0.3, 1.0):
        assert torch.allclose(amplitude_phase(x, x, beta), x, atol=1e-5, rtol=0)
    y = images(2, 16).float()
    assert torch.allclose(amplitude_phase(y, y), y, atol=1e-5, rtol=0)


def test_amplitude_phase_takes_the_style_amplitude_and_keeps_the_content_phase() -> None:
    a, b = images(2, 16, seed=1).float(), images(2, 16, seed=2).float()
    mixed = amplitude_phase(a, b).double()
    fa, fb, fm = (torch.fft.fft2(t.double()) for t in (a, b, mixed))
    assert torch.allclose(fm.abs(), fb.abs(), atol=1e-6 * fb.abs().max())
    strong = fb.abs() > 1e-3 * fb.abs().max()  # the phase is defined where the amplitude is not ~0
    phase_diff = torch.angle(fm * fa.conj())[strong]
    assert phase_diff.abs().max() < 1e-6
    assert torch.equal(amplitude_phase(a, b, 0.0), a)  # β = 0: nothing swapped


def test_fda_band_is_a_centred_symmetric_square_of_half_size_beta_min_hw() -> None:
    band = low_band(16, 20, 0.125)  # half-size 2: |k| < 2 -> k in {-1, 0, 1} on both axes
    assert band.sum() == 9 and band[0, 0] and band[1, 1] and band[-1, -1] and not band[2, 0]
    assert torch.equal(band, band.flip(0).roll(1, 0).flip(1).roll(1, 1))  # k -> -k
    assert not low_band(16, 16, 0.0).any() and low_band(16, 16, 1.0).all()
    a, b = images(1, 16, seed=3).float(), images(1, 16, seed=4).float()
    fa, fb = torch.fft.fft2(a.double()), torch.fft.fft2(b.double())
    fm = torch.fft.fft2(amplitude_phase(a, b, 0.125).double())
    inside = low_band(16, 16, 0.125)
    assert torch.allclose(fm.abs()[..., inside], fb.abs()[..., inside], rtol=1e-5)
    assert torch.allclose(fm.abs()[..., ~inside], fa.abs()[..., ~inside], rtol=1e-5, atol=1e-3)


def test_adain_with_its_own_statistics_is_the_identity_and_alpha_interpolates() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 5, 4, 6, generator=g), 3 * torch.randn(2, 5, 4, 6, generator=g) + 1
    assert torch.allclose(adain(x, *channel_stats(x)), x, atol=1e-5)
    assert torch.allclose(adain(x, *channel_stats(y), alpha=0.0), x, atol=1e-5)
    out_mean, out_std = channel_stats(adain(x, *channel_stats(y)))
    y_mean, y_std = channel_stats(y)
    assert torch.allclose(out_mean, y_mean, atol=1e-4) and torch.allclose(out_std, y_std, atol=1e-3)
    half_mean, _ = channel_stats(adain(x, y_mean, y_std, alpha=0.5))
    assert torch.allclose(half_mean, (channel_stats(x)[0] + y_mean) / 2, atol=1e-4)
    assert torch.isfinite(adain(torch.randn(1, 2, 1, 1), *channel_stats(x[:1, :2]))).all()  # 1x1 maps


def test_histogram_matching_greyscale_and_blend() -> None:
    a, ref = images(2, 16, seed=5), (images(2, 16, seed=6) // 4 + 100).to(torch.uint8)  # ref: values 100..163
    assert torch.equal(match_histograms(a, a), a)
    matched = match_histograms(a, ref)
    assert matched.min() >= 100 and matched.max() <= 163
    mean_gap = (matched.float().mean((-2, -1)) - ref.float().mean((-2, -1))).abs().max()
    assert mean_gap < 1.5  # the reference's histogram, up to ties and rounding
    order = torch.argsort(a.flatten(2))
    assert (matched.flatten(2).gather(2, order).diff() >= 0).all()  # a monotone map of each channel's values
    grey = greyscale(a)
    assert grey.dtype == torch.uint8 and torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    assert blend(a, grey, 0.0) is a and torch.equal(blend(a, grey, 1.0), grey)
    assert torch.equal(blend(a, grey, 0.5), ((a.float() + grey.float()) / 2).round().to(torch.uint8))


def test_stages_of_both_backbones_and_swapping_own_statistics_changes_nothing() -> None:
    assert list(stages(build_model("resnet18", "none", num_classes=3))) == ["stage1", "stage2", "stage3", "stage4"]
    model = build_model("cifar_resnet20", "srm", num_classes=3).eval()
    assert list(stages(model)) == ["stage1", "stage2", "stage3"]
    with pytest.raises(StyleclsError, match="no ResNet stages"):
        stages(torch.nn.Linear(2, 2))
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        clean = model(x)
        stats: dict = {}
        with captured_stats(stages(model), stats):
            model(x)
        for name, module in stages(model).items():
            with swapped_stats(module, *stats[name], alpha=1.0):
                assert torch.allclose(model(x), clean, atol=1e-4), name
        assert torch.equal(model(x), clean)  # the hooks are gone


# -- pairs ------------------------------------------------------------------------------------


def _rows() -> pd.DataFrame:
    rows = [(f"{d}/{c}/{i}.png", c, d, "test" if d == "sketch" else "val") for d in ("photo", "sketch")
            for c in range(3) for i in range(4)]  # fmt: skip
    return pd.DataFrame(rows, columns=["path", "label", "domain", "part"])


def test_pairs_are_seeded_other_class_and_other_domain() -> None:
    rows = _rows()
    test = rows[rows["part"] == "test"]
    pairs = draw_pairs(rows, test, seed=3)
    assert pairs["a"].tolist() == test.index.tolist()  # every test image, in the run's order
    assert (rows.loc[pairs["a"], "label"].to_numpy() != rows.loc[pairs["b"], "label"].to_numpy()).all()
    assert (rows.loc[pairs["b"], "part"] == "test").all()
    assert (rows.loc[pairs["c"], "domain"] == "photo").all()
    assert pairs.equals(draw_pairs(rows, test, seed=3)) and not pairs.equals(draw_pairs(rows, test, seed=4))
    few = draw_pairs(rows, test, pairs=5, seed=3)
    assert len(few) == 5 and few["a"].is_monotonic_increasing and set(few["a"]) <= set(test.index)
    single = rows[rows["domain"] == "photo"].reset_index(drop=True)
    alone = draw_pairs(single, single, seed=0)
    assert (alone["c"] != alone["a"]).all()  # single-domain: another image of the part
    with pytest.raises(StyleclsError, match="two classes"):
        draw_pairs(rows, test[test["label"] == 0])


# -- on a run folder ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, make_run) -> Path:
    """A hand-made LODO run whose (random) model does not give every image the same class."""
    base = tmp_path_factory.mktemp("style")
    path = make_run(base / "run", base / "data", img_size=16)
    state = load_checkpoint(path / "best.pt")
    state["model"]["fc.weight"] = state["model"]["fc.weight"] * 200
    save_checkpoint(state, path / "best.pt")
    return path


def test_streamed_in_batches_over_pairs(run: Path) -> None:
    folder = RunFolder(run)
    rows = folder.rows()
    test = rows[rows["part"] == "test"]
    dataset = PairDataset(rows["path"].tolist(), draw_pairs(rows, test), folder.pixels(), ("b",))
    batches = list(pair_loader(dataset, batch_size=5))
    assert [len(b.positions) for b in batches] == [5, 5, 2] and batches[0].c.numel() == 0
    assert batches[0].a.shape == (5, 3, 16, 16) and batches[0].a.dtype == torch.uint8


def test_style_test_strength_0_is_evaluate_and_reruns_identically(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stylecls.evaluate import evaluate

    seen: list[int] = []
    call = Decider.__call__
    monkeypatch.setattr(Decider, "__call__", lambda self, x: (seen.append(len(x)), call(self, x))[1])
    result = style_test(run, device="cpu", batch_size=5, workers=0)
    assert seen and max(seen) <= 5  # never more than a batch of images at once
    top1 = evaluate(run, device="cpu", batch_size=5).metrics["top1"]
    assert 0 < top1 < 1
    assert set(result.tables) == set(KINDS)
    for kind, table in result.tables.items():
        clean = table[(table["strength"] == 0) & (table["part"] == "test")]
        assert (clean["accuracy"] == top1).all() and len(clean), kind
        numbers = table.select_dtypes("number").drop(columns=["seed", "strength", "n", "epoch"])
        assert ((numbers >= 0) & (numbers <= 1) | numbers.isna()).all().all(), kind
        assert set(zip(table["checkpoint"], table["epoch"], table["run_state"], strict=True)) == {("best", 1, "done")}
    amp = result.tables["amplitude-phase"]
    assert (amp["follows_phase"] + amp["follows_amplitude"] <= 1).all()
    stages_seen = set(result.tables["feature-stats"]["stage"])
    assert stages_seen == {"stage1", "stage2", "stage3"}
    shifts = result.tables["style-shift"]
    assert set(shifts["shift"]) == {"greyscale", "histogram", "domain"}
    assert (shifts.loc[shifts["strength"] == 0, "agreement"].dropna() == 1).all()
    first = {p.name: p.read_bytes() for p in result.out_dir.glob("*.csv")}
    assert (result.out_dir / "style_test.png").is_file()
    style_test(run, device="cpu", batch_size=3, workers=0)  # other batches, same numbers and files
    assert {p.name: p.read_bytes() for p in result.out_dir.glob("*.csv")} == first
    summary = style_summary(run)
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert {"amplitude", "stage1", "greyscale", "domain sketch (test)"} <= set(summary["test"])


def test_cli_writes_prints_and_refuses_missing_data(run: Path, monkeypatch, capsys, tmp_path: Path) -> None:
    from stylecls.cli import main

    def code(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["stylecls", "style-test", *map(str, args)])
        with pytest.raises(SystemExit) as e:
            main()
            raise SystemExit(0)
        return e.value.code or 0

    args = ("--kind", "style-shift", "--strength", "1", "--device", "cpu", "--workers", "0")
    assert code(run, *args, "--pairs", "999") == 0
    printed = capsys.readouterr()
    assert "greyscale" in printed.out and "style-test took" in printed.out
    assert "note: --pairs 999 is more than the 12 images of the test part: testing all 12" in printed.err
    assert code(run, "--data-root", tmp_path / "elsewhere") == 2
    assert "missing" in capsys.readouterr().err
    assert code(run, "--kind", "texture") == 2
    assert code(run, "--strength", "2") == 2


def test_only_tables_of_the_selected_checkpoint_are_read_the_others_named(run: Path, tmp_path: Path) -> None:
    """A rerun with one --kind after the run trained on: the older kind's table (of another epoch) is left out."""
    from stylecls.style_test.tables import selected_tables

    copy = Path(shutil.copytree(run, tmp_path / "run"))
    shutil.rmtree(copy / "style_test", ignore_errors=True)
    one = {"strengths": [1.0], "device": "cpu", "workers": 0}
    style_test(copy, ["amplitude-phase", "style-shift"], **one)
    assert set(selected_tables(copy)[0]) == {"amplitude-phase", "style-shift"} and not selected_tables(copy)[1]
    state = load_checkpoint(copy / "best.pt")
    save_checkpoint({**state, "epoch": 2}, copy / "best.pt")  # trained on: best.pt is now epoch 2
    RunFolder(copy).set_status("done", epoch=2, best_epoch=2, best_val_acc=0.6)
    style_test(copy, ["style-shift"], **one)
    usable, left_out = selected_tables(copy)
    assert set(usable) == {"style-shift"} and set(usable["style-shift"]["epoch"]) == {2}
    assert len(left_out) == 1 and "amplitude-phase.csv" in left_out[0]
    assert "epoch 1 but best.pt is epoch 2" in left_out[0] and "--kind amplitude-phase" in left_out[0]
    assert set(style_summary(copy)["kind"]) == {"style-shift"}
    table = pd.read_csv(copy / "style_test" / "style-shift.csv")
    table.drop(columns=["checkpoint", "epoch", "run_state"]).to_csv(copy / "style_test" / "style-shift.csv")
    assert "does not say which checkpoint" in selected_tables(copy)[1][-1]


def test_example_shows_the_pair_style_test_draws(run: Path) -> None:
    from stylecls.style_test.examples import example, example_decisions

    ex = example(run, position=1, seed=0)
    assert len(ex.images) == 7 and all(i.shape == (3, 16, 16) and i.dtype == torch.uint8 for i in ex.images.values())
    rows = RunFolder(run).rows()
    pair = draw_pairs(rows, rows[rows["part"] == "test"], seed=0).iloc[1]
    assert ex.classes == {"A": rows.loc[pair["a"], "class_name"], "B": rows.loc[pair["b"], "class_name"]}
    decisions = example_decisions(run, ex)
    assert len(decisions) == 7 + 3 and set(decisions) <= set(RunFolder(run).classes)
    with pytest.raises(StyleclsError, match="does not exist"):
        example(run, position=99)


def test_report_has_a_style_reliance_section_paired_over_seeds(tmp_path: Path) -> None:
    from stylecls.report import write_report
    from stylecls.runfolder import find_run_folders
    from stylecls.style_test.tables import write_outputs

    root = sweep(tmp_path / "runs", blocks=("se", "srm"), seeds=(0, 1), domains=("sketch",))
    for path in find_run_folders(root):
        folder = RunFolder(path)
        srm, seed = folder.spec().block == "srm", folder.spec().seed
        base = {"kind": "amplitude-phase", "part": "test", "checkpoint": "best", "epoch": 2, "run_state": "done",
                "seed": 0, "n": 10}
        amp = pd.DataFrame([{**base, "strength": s, "accuracy": 0.5, "follows_phase": 0.5, "follows_amplitude": 0.2,
                             "phase_fraction": 0.6 + (0.2 + 0.01 * seed) * srm * s + 0.01 * seed} for s in (0.0, 1.0)])
        stale = amp.assign(kind="feature-stats", stage="stage1", epoch=1, keeps_content=0.1, switches_to_style=0.9)
        write_outputs({"amplitude-phase": amp, "feature-stats": stale}, pd.DataFrame({"a": [0], "b": [1], "c": [2]}),
                      folder.style_test_dir)
    files = write_report([root], tmp_path / "r.html")
    section = files.report.groups[0].sections[-1]
    assert not any(k.startswith("feature-stats") for k in section.tables)
    assert sum("feature-stats.csv" in n and "epoch 1 but best.pt is epoch 2" in n for n in section.notes) == 4
    assert section.title == "style reliance" and section.stats[0].n == 2
    assert section.stats[0].mean == pytest.approx(0.205)
    assert section.verdicts[0].startswith("Style reliance (cue conflict, phase fraction): SRM − SE: +20.5 points")
    assert section.verdicts[0].endswith("SRM higher than SE.")  # reliance on style is neither better nor worse
    assert any("paired_style-reliance" in str(png) for _, png in files.report.groups[0].figures)
    assert "Cue conflict" in files.html.read_text()


@pytest.mark.slow
def test_trained_demo_run_strength_0_is_evaluate_top1_through_the_cli(
    demo_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The acceptance check on a trained run: CSVs with fractions in [0, 1], strength 0 = evaluate's top-1,
    a rerun writes identical files."""
    from stylecls.cli import main
    from stylecls.spec import RunSpec, RuntimeOptions
    from stylecls.train import train

    path = train(RunSpec(dataset="demo", block="srm", arch="cifar_resnet20", epochs=1, img_size=32, batch_size=16,
                         limit_train=32, limit_val=16), RuntimeOptions(workers=0, device="cpu", out=str(tmp_path),
                                                                       progress=False))  # fmt: skip

    def cli(*args: str) -> None:
        monkeypatch.setattr(sys, "argv", ["stylecls", *map(str, args)])
        main()

    cli("evaluate", path, "--device", "cpu", "--workers", "0")
    top1 = RunFolder(path).evaluations.selected().metrics["top1"]
    cli("style-test", path, "--device", "cpu", "--workers", "0", "--strength", "1")
    out = RunFolder(path).style_test_dir
    first = {p.name: p.read_bytes() for p in sorted(out.glob("*.csv"))}
    assert {"amplitude-phase.csv", "feature-stats.csv", "style-shift.csv", "pairs.csv"} <= set(first)
    for name in ("amplitude-phase.csv", "feature-stats.csv", "style-shift.csv"):
        table = pd.read_csv(out / name)
        assert table.loc[table["strength"] == 0, "accuracy"].tolist()[0] == pytest.approx(top1, abs=1e-6)
        fractions = table.select_dtypes("number").drop(columns=["seed", "strength", "n", "epoch"])
        assert ((fractions >= 0) & (fractions <= 1) | fractions.isna()).all().all()
    cli("style-test", path, "--device", "cpu", "--workers", "0", "--strength", "1", "--batch-size", "50")
    assert {p.name: p.read_bytes() for p in sorted(out.glob("*.csv"))} == first
    assert "style-test took" in capsys.readouterr().out
