"""Comparing runs (hand-calculated means/stds, refusals) and inspecting what the blocks learned."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fake_run import CLASSES, DOMAINS, write_result

from stylecls.compare import compare
from stylecls.errors import StyleclsError
from stylecls.inspect_model import GateStats, gated_blocks, inspect_run, style_weights
from stylecls.record import DataSummary, RunRecord
from stylecls.report.runs import collect
from stylecls.report.tables import unpaired_summary
from stylecls.runfolder import RunFolder
from stylecls.spec import RunSpec

pytestmark = pytest.mark.usefixtures("cache_env")

BASE = dict(dataset="dtd", split=1, protocol="single", arch="resnet18", block="none", img_size=224, epochs=30,
            batch_size=64, lr=0.01, weight_decay=1e-4, seed=0)


def _run(root: Path, name: str, top1: float, runtime: dict | None = None, **changes: object) -> Path:
    """A run folder holding only what compare reads: its record and eval/metrics.json."""
    spec = RunSpec(**{**BASE, **changes}).resolved()
    data = DataSummary(spec.dataset, "/data", classes=[], protocol="lodo" if spec.test_domain else "single")
    record = RunRecord(name=name, spec=spec, data=data, runtime=runtime or {})
    metrics = {"top1": top1, "top5": min(1.0, top1 + 0.2), "balanced_accuracy": top1, "macro_f1": top1 - 0.01}
    if spec.test_domain:
        metrics["domain_gap"] = 0.9 - top1
    return write_result(root / name, record.to_dict(), metrics)


def _schema_1_run(root: Path, name: str, top1: float, block: str, seed: int) -> Path:
    """A run folder as stylecls 0.1 wrote it (model/data/train sections)."""
    config = {
        "name": name, "created": "2025-01-01", "status": "finished", "versions": {}, "seed": seed,
        "model": {"arch": "resnet18", "block": block, "num_classes": 47, "block_options": {}, "pretrained": None},
        "data": {"dataset": "dtd", "root": "/data", "options": {"split": 1}, "protocol": "single",
                 "test_domain": None, "split": 1, "img_size": 224, "classes": [], "domains": [], "info": {},
                 "counts": {}},
        "train": {"epochs": 30, "batch_size": 64, "lr": 0.01, "weight_decay": 1e-4, "workers": 8, "device": "cuda"},
    }  # fmt: skip
    return write_result(root / name, config, {"top1": top1, "top5": top1, "balanced_accuracy": top1, "macro_f1": top1})


def test_schema_1_runs_still_compare(tmp_path: Path) -> None:
    for i, (block, v) in enumerate([("none", 0.6), ("none", 0.62), ("srm", 0.7), ("srm", 0.66)]):
        _schema_1_run(tmp_path, f"{block}{i}", v, block, seed=i)
    summary, _, _ = compare([tmp_path])
    top1 = summary[summary["measure"] == "top1"].set_index("method")
    assert top1.loc["srm", "mean"] == pytest.approx(0.68) and top1.loc["none", "n"] == 2
    assert RunFolder(tmp_path / "srm2").status().state == "done" and RunFolder(tmp_path / "srm2").spec().block == "srm"


def test_single_domain_means_stds_and_differences(tmp_path: Path) -> None:
    acc = {"none": [0.60, 0.62, 0.65], "se": [0.63, 0.64], "srm": [0.66, 0.70, 0.71]}
    for block, values in acc.items():
        for i, v in enumerate(values):  # DTD splits 1..3, and different machines (workers, device)
            _run(tmp_path, f"{block}{i}", v, block=block, split=i + 1, seed=i,
                 runtime={"workers": i, "device": "cuda" if i else "cpu"})
    summary, markdown, out = compare([tmp_path], out=tmp_path / "cmp")
    top1 = summary[summary["measure"] == "top1"].set_index("method")
    for block, values in acc.items():
        assert top1.loc[block, "mean"] == pytest.approx(statistics.mean(values))
        assert top1.loc[block, "std"] == pytest.approx(statistics.stdev(values))
        assert top1.loc[block, "n"] == len(values)
    assert top1.loc["srm − se", "mean"] == pytest.approx(statistics.mean(acc["srm"]) - statistics.mean(acc["se"]))
    assert top1.loc["srm − none", "mean"] == pytest.approx(statistics.mean(acc["srm"]) - statistics.mean(acc["none"]))
    assert f"{100 * statistics.mean(acc['srm']):.1f} ± {100 * statistics.stdev(acc['srm']):.1f}" in markdown
    assert "| SRM − SE |" in markdown and "| SE − none |" in markdown
    assert (out / "comparison.md").read_text() == markdown
    assert pd.read_csv(out / "comparison.csv").shape[0] == len(summary)


def test_leave_one_domain_out_has_a_column_per_domain_and_their_average(tmp_path: Path) -> None:
    acc = {("srm", "sketch"): [0.5, 0.6], ("srm", "photo"): [0.9, 0.94], ("se", "sketch"): [0.4, 0.45],
           ("se", "photo"): [0.9, 0.9]}
    for (block, domain), values in acc.items():
        for seed, v in enumerate(values):
            _run(tmp_path, f"{block}-{domain}-{seed}", v, block=block, seed=seed, test_domain=domain,
                 dataset="pacs", protocol="lodo", split=None)
    summary = unpaired_summary(collect([tmp_path]).runs)
    rows = summary.set_index(["method", "measure"])
    assert rows.loc[("srm", "top1@sketch"), "mean"] == pytest.approx(0.55)
    assert rows.loc[("srm", "top1@sketch"), "std"] == pytest.approx(statistics.stdev([0.5, 0.6]))
    assert rows.loc[("srm", "top1@avg"), "mean"] == pytest.approx((0.55 + 0.92) / 2)
    assert rows.loc[("srm − se", "top1@avg"), "mean"] == pytest.approx((0.55 + 0.92) / 2 - (0.425 + 0.9) / 2)
    assert rows.loc[("se", "domain_gap"), "mean"] == pytest.approx(0.9 - statistics.mean([0.4, 0.45, 0.9, 0.9]))
    assert ("srm − none", "top1@avg") not in rows.index  # no plain runs, no difference


def test_refuses_to_average_runs_with_different_settings(tmp_path: Path) -> None:
    _run(tmp_path, "a", 0.6, seed=0)
    _run(tmp_path, "b", 0.7, seed=1, lr=0.1)
    with pytest.raises(StyleclsError, match=r"spec\.lr differs"):
        compare([tmp_path])
    # the same difference across blocks would make SRM − none unfair, so it is refused too
    _run(tmp_path, "b", 0.7, seed=1, block="srm", lr=0.1)
    with pytest.raises(StyleclsError, match=r"spec\.lr"):
        compare([tmp_path])
    # runs whose pixels were made differently are never averaged or differenced either
    _run(tmp_path, "b", 0.7, seed=1, block="srm", pre_resize="original")
    with pytest.raises(StyleclsError, match=r"spec\.pre_resize differs"):
        compare([tmp_path])


def test_refuses_duplicates_and_unevaluated_runs(tmp_path: Path) -> None:
    _run(tmp_path, "a", 0.6)
    _run(tmp_path, "b", 0.7)
    with pytest.raises(StyleclsError, match="repeat the same seed"):
        compare([tmp_path])
    (tmp_path / "b" / "eval" / "metrics.json").unlink()
    with pytest.raises(StyleclsError, match="stylecls evaluate"):
        compare([tmp_path])
    with pytest.raises(StyleclsError, match="holds no run folders"):
        compare([tmp_path / "a" / "eval"])


def test_a_damaged_metrics_file_is_one_clear_error(tmp_path: Path) -> None:
    _run(tmp_path, "a", 0.6, seed=0)
    _run(tmp_path, "b", 0.7, seed=1, block="srm")
    (tmp_path / "b" / "eval" / "metrics.json").write_text('{"top1": 0.7,')  # cut off mid-write
    with pytest.raises(StyleclsError, match=r"(?s)/b: .*metrics.json.*stylecls evaluate"):
        compare([tmp_path])
    for damaged in ("[1, 2]", '{"top1": "abc"}', "{}", '{"top1": 1.5}'):  # never a silently dropped run
        (tmp_path / "b" / "eval" / "metrics.json").write_text(damaged)
        with pytest.raises(StyleclsError, match=r"(?s)metrics.json is damaged: .*stylecls evaluate"):
            compare([tmp_path])


def test_cli_compare_writes_and_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from stylecls import cli

    _run(tmp_path, "a", 0.6, seed=0)
    _run(tmp_path, "b", 0.7, seed=1, block="srm")
    monkeypatch.setattr(sys, "argv", ["stylecls", "compare", str(tmp_path), "--format", "csv"])
    cli.main()
    printed = capsys.readouterr().out
    assert "srm − none" in printed and (tmp_path / "comparison.md").is_file()
    monkeypatch.setattr(sys, "argv", ["stylecls", "compare", str(tmp_path), "--by", "colour"])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 2


# --- inspect -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, make_run) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("inspect")
    return {b: make_run(base / b, base / "data", block=b) for b in ("srm", "se", "none")}


def test_style_weights_are_the_folded_cfc_weights(runs: dict[str, Path]) -> None:
    from stylecls.runfolder import RunFolder

    model, _ = RunFolder(runs["srm"]).build_model()
    table = style_weights(model)
    blocks = gated_blocks(model)
    assert len(table) == sum(b.cfc.shape[0] for b in blocks.values())
    first = blocks["layer1.0.recalibration"]
    bn = first.bn
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    expected = (first.cfc * scale[:, None]).detach().numpy()
    got = table[table["layer"] == "layer1.0"][["mean", "std"]].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_gate_statistics_match_hooked_gates(runs: dict[str, Path]) -> None:
    """GateStats' streamed per-domain means equal the mean of every gate value captured directly."""
    from stylecls.runfolder import RunFolder

    model, _ = RunFolder(runs["se"]).build_model()
    n = 10
    x = torch.randn(n, 3, 16, 16)
    labels = np.arange(n) % len(CLASSES)
    domains = np.array([DOMAINS[i % 2] for i in range(n)])
    captured = []
    handle = model.layer2[0].recalibration.activation.register_forward_hook(lambda m, i, o: captured.append(o))
    stats = GateStats(model, labels, domains, CLASSES)
    for rows in (torch.arange(0, 4), torch.arange(4, n)):  # two batches
        stats.set_rows(rows)
        with torch.no_grad():
            model(x[rows])
    stats.remove()
    handle.remove()
    gates = torch.cat(captured).flatten(1).double().numpy()  # (N, C) from SE's (N, C, 1, 1)
    table = stats.table().set_index(["layer", "by", "group"])
    for d in DOMAINS:
        row = table.loc[("layer2.0", "domain", d)]
        assert row["count"] == (domains == d).sum()
        assert row["mean"] == pytest.approx(gates[domains == d].mean())
        assert row["std"] == pytest.approx(gates[domains == d].std(), rel=1e-6)
        overall = gates.mean(0)
        assert row["distance"] == pytest.approx(np.abs(gates[domains == d].mean(0) - overall).mean())
    assert row["q10"] <= row["q50"] <= row["q90"]


def test_inspect_writes_files_for_srm_and_se(runs: dict[str, Path]) -> None:
    srm = inspect_run(runs["srm"], device="cpu", workers=0, batch_size=8)
    names = {p.name for p in srm.files}
    assert names == {"style_weights.csv", "style_weights.png", "gates.csv", "gates_by_domain.png", "gates_by_class.png"}
    gates = pd.read_csv(runs["srm"] / "inspect" / "gates.csv")
    domains = gates[(gates["by"] == "domain") & (gates["layer"] == "layer1.0")].set_index("group")["count"]
    assert domains.to_dict() == {"photo": 6, "sketch": 12}  # val (photo) + test (sketch): nothing trained on
    se = inspect_run(runs["se"], device="cpu", workers=0, batch_size=8)
    assert se.style_weights is None and {p.name for p in se.files} == {"gates.csv", "gates_by_domain.png",
                                                                        "gates_by_class.png"}
    assert set(se.gates["layer"]) == set(srm.gates["layer"])  # side by side, layer for layer


def test_inspect_refuses_a_model_without_gates(runs: dict[str, Path]) -> None:
    with pytest.raises(StyleclsError, match="no gates"):
        inspect_run(runs["none"], device="cpu")


def _copy_with(run: Path, to: Path, change: object) -> Path:
    """A copy of ``run`` whose best.pt has ``change(state_dict)`` applied."""
    import shutil

    from stylecls.atomic import save_checkpoint

    shutil.copytree(run, to, ignore=shutil.ignore_patterns("inspect"))
    state = RunFolder(to).load_checkpoint("best")
    change(state["model"])  # type: ignore[operator]
    save_checkpoint(state, RunFolder(to).checkpoint_path("best"))
    return to


def test_inspect_on_a_diverged_run_is_one_line_and_writes_nothing(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stylecls.cli import main

    nan = _copy_with(runs["srm"], tmp_path / "nan", lambda w: [v.fill_(float("nan")) for v in w.values()
                                                               if v.is_floating_point()])
    monkeypatch.setattr(sys, "argv", ["stylecls", "inspect", str(nan), "--device", "cpu", "--workers", "0"])
    with pytest.raises(SystemExit) as e:
        main()
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.count("\n") == 0 and "Traceback" not in err
    assert "best.pt holds NaN or infinite weights (its training diverged)" in err
    # finite weights whose outputs are NaN (a negative running variance): named by its checkpoint, not "unreadable"
    odd = _copy_with(runs["srm"], tmp_path / "odd", lambda w: w["bn1.running_var"].fill_(-1.0))
    with pytest.raises(StyleclsError, match=r"odd/best\.pt: the model's outputs are not finite"):
        inspect_run(odd, device="cpu", workers=0, batch_size=8)
    assert not (nan / "inspect").exists() and not (odd / "inspect").exists()


def test_style_weight_error_bars_never_go_below_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import stylecls.inspect_model as inspect_model

    figures = []
    real = inspect_model.figure
    monkeypatch.setattr(inspect_model, "figure", lambda *a, **k: figures.append(real(*a, **k)) or figures[-1])
    # |w| of [0, 0, 0, 1]: mean 0.25, std 0.5; a symmetric bar would reach -0.25
    weights = pd.DataFrame({"layer": ["layer1.0"] * 4, "channel": range(4), "mean": [0, 0, 0, -1.0],
                            "std": [0.1, 0.2, 0.1, 0.2]})
    inspect_model.plot_style_weights(weights, tmp_path / "w.png")
    ax = figures[0].axes[0]
    assert ax.get_ylim()[0] == 0
    lows = [seg[:, 1].min() for c in ax.containers if hasattr(c, "lines") for lc in c.lines[2]
            for seg in lc.get_segments()]
    assert lows and min(lows) == 0.0  # the mean bar's lower whisker stops at zero


def test_inspect_explains_the_domain_distance(runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from stylecls.cli import main

    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setattr(sys, "argv", ["stylecls", "inspect", str(runs["se"]), "--device", "cpu", "--workers", "0"])
    main()
    out = " ".join(capsys.readouterr().out.split())
    assert "largest domain distance" in out
    assert "domain distance: the mean over a layer's channels of |the domain's average gate value - the average " \
           "gate value over all images|" in out
