"""evaluate / compare / inspect on runs trained on the real PACS subset (skipped without ../shared/data)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from stylecls.compare import compare
from stylecls.evaluate import evaluate
from stylecls.inspect_model import inspect_run
from stylecls.spec import RunSpec, RuntimeOptions
from stylecls.train import train

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning"),
]


def test_leave_one_domain_out_runs_on_real_pacs(shared_data: Path, cache_env: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    runs = []
    for block in ("se", "srm"):
        spec = RunSpec(
            dataset="pacs", test_domain="sketch", block=block, arch="cifar_resnet20",
            img_size=32, epochs=1, batch_size=32, limit_train=64, limit_val=48, warmup_epochs=0, eval_test_every=1,
        )  # fmt: skip
        runtime = RuntimeOptions(data_root=str(shared_data), workers=0, progress=False, out=str(tmp_path / "runs"),
                                 name=f"pacs-{block}")
        runs.append(train(spec, runtime))

    result = evaluate(runs[1], device="cpu", batch_size=64)
    files = {p.name for p in result.out_dir.iterdir()}
    assert {"metrics.json", "predictions.csv", "per_class.csv", "confusion.csv", "confusion.png",
            "per_domain.csv"} <= files  # fmt: skip
    metrics = json.loads((result.out_dir / "metrics.json").read_text())
    assert metrics["count"] == 350  # the whole held-out sketch domain of the subset
    assert metrics["held_out_domains"] == ["sketch"]
    assert metrics["test_domain"] == "sketch" and metrics["domain"] is None
    per_domain = pd.read_csv(result.out_dir / "per_domain.csv")
    val = per_domain.query("part == 'val'")
    val_acc = (val["accuracy"] * val["count"]).sum() / val["count"].sum()
    assert metrics["domain_gap"] == pytest.approx(val_acc - metrics["held_out_acc"])
    confusion = pd.read_csv(result.out_dir / "confusion.csv", index_col=0)
    assert confusion.to_numpy().sum() == 350 and list(confusion.columns) == list(confusion.index)

    inspected = inspect_run(runs[1], device="cpu", batch_size=64)
    assert (inspected.out_dir / "style_weights.csv").is_file() and (inspected.out_dir / "gates.csv").is_file()
    gates = pd.read_csv(inspected.out_dir / "gates.csv")
    assert {"photo", "sketch"} <= set(gates["group"])

    evaluate(runs[0], device="cpu", batch_size=64)
    summary, markdown, _ = compare([tmp_path / "runs"], out=tmp_path)
    assert "SRM − SE" in markdown and "sketch" in markdown
    assert (tmp_path / "comparison.csv").is_file()

    # the report with every selection method, and its LaTeX tables (issue 18's acceptance, on one trial)
    from stylecls.cli import main

    monkeypatch.setattr("sys.argv", ["stylecls", "report", str(tmp_path / "runs"), "--selection", "all", "--latex",
                                     str(tmp_path / "tables.tex"), "--out", str(tmp_path / "report.html")])
    main()
    html = (tmp_path / "report.html").read_text()
    assert all(name in html for name in ("training-domain validation", "leave-one-training-domain-out",
                                         "test-domain oracle"))
    tex = (tmp_path / "tables.tex").read_text()
    assert tex.count(r"\toprule") == 3 and r"\bottomrule" in tex and "sketch" in tex and "avg" in tex
