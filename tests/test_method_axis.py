"""The method axis of compare and report: block, feature augmentation and IBN-Net-a, labelled and ordered once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fake_run import CLASSES, write_result

from stylecls.compare import compare
from stylecls.errors import StyleclsError
from stylecls.presentation import Method, method_differences, method_label, method_of, method_order
from stylecls.record import DataSummary, RunRecord
from stylecls.report import write_report
from stylecls.spec import RunSpec

#: (block, feature_aug, IBN-Net-a) -> top-1 of seed 0 (seed s adds s / 100): every difference has a known sign.
METHODS = {
    ("none", "none", False): 0.40,
    ("se", "none", False): 0.45,
    ("srm", "none", False): 0.50,
    ("none", "mixstyle", False): 0.43,
    ("none", "none", True): 0.47,
    ("srm", "mixstyle", False): 0.52,
}
ORDER = ["SRM", "SE", "MixStyle", "IBN-Net-a", "SRM + MixStyle", "none"]
DIFFERENCES = {  # first − second, in points
    "SRM − SE": 5.0, "SRM − none": 10.0, "SE − none": 5.0, "MixStyle − none": 3.0, "IBN-Net-a − none": 7.0,
    "SRM − MixStyle": 7.0, "SRM − IBN-Net-a": 3.0, "SRM + MixStyle − SRM": 2.0, "SRM + MixStyle − MixStyle": 9.0,
    "SRM + MixStyle − none": 12.0,
}  # fmt: skip


def method_run(root: Path, block: str, feature_aug: str, ibn: bool, seed: int, top1: float) -> Path:
    """An evaluated leave-one-domain-out run folder (no checkpoint, no images) of one method."""
    arch = "cifar_resnet20_ibn_a" if ibn else "cifar_resnet20"
    spec = RunSpec(dataset="folder", protocol="lodo", test_domain="sketch", arch=arch, block=block,
                   feature_aug=feature_aug, img_size=16, epochs=2, lr=0.1, batch_size=4, seed=seed).resolved()
    run = root / f"{method_of(spec).key}-s{seed}"
    data = DataSummary("folder", "/data", classes=CLASSES, protocol="lodo")
    config = RunRecord(name=run.name, spec=spec, data=data, runtime={"workers": 0, "device": "cpu"},
                       versions={"stylecls": "0.1.0"}).to_dict()
    write_result(run, config, {"top1": top1, "top5": 1.0, "epoch": 2, "part": "test"})
    pd.DataFrame({"epoch": [1, 2], "train_loss": [1.2, 1.0], "val_loss": [1.1, 1.0], "train_acc": [0.3, 0.4],
                  "val_acc": [0.35, 0.45]}).to_csv(run / "metrics.csv", index=False)
    pd.DataFrame({"class_name": CLASSES, "accuracy": 0.5, "precision": 0.5, "f1": 0.5, "support": 4}).to_csv(
        run / "eval" / "per_class.csv", index=False)
    pd.DataFrame(1, index=pd.Index(CLASSES, name="true"), columns=CLASSES).to_csv(run / "eval" / "confusion.csv")
    return run


def methods_sweep(root: Path, methods: dict = METHODS) -> Path:
    for (block, aug, ibn), top1 in methods.items():
        for seed in (0, 1):
            method_run(root, block, aug, ibn, seed, top1 + 0.01 * seed)
    return root


def test_a_method_is_block_feature_augmentation_and_ibn_with_one_label_and_order() -> None:
    spec = RunSpec(dataset="folder", arch="resnet18_ibn_a", block="srm", feature_aug="mixstyle")
    m = method_of(spec)
    assert (m.key, m.label, m.kind) == ("srm+mixstyle+ibn_a", "SRM + MixStyle + IBN-Net-a", "combination")
    assert Method.parse(m.key) == m and Method.parse("none") == Method() and method_label("none") == "none"
    assert method_label("resnet18") == "resnet18"  # another axis' value is shown as itself
    keys = [Method(*k).key for k in METHODS]
    assert [method_label(k) for k in method_order(keys)] == ORDER
    assert method_order(["none", "se", "srm", "eca"]) == ["srm", "se", "eca", "none"]  # blocks alone: block order
    assert method_differences(["none", "se", "srm"]) == [("srm", "se"), ("srm", "none"), ("se", "none")]
    shown = [f"{method_label(a)} − {method_label(b)}" for a, b in method_differences(keys)]
    assert shown == list(DIFFERENCES)


def test_compare_and_report_rows_order_and_signs_by_method(tmp_path: Path) -> None:
    runs = methods_sweep(tmp_path / "runs")
    summary, markdown, _ = compare([runs])
    rows = [line.split("|")[1].strip() for line in markdown.splitlines() if line.startswith("| ")][1:]
    assert rows == [*ORDER, *DIFFERENCES]
    assert "backbone cifar_resnet20" in markdown  # the IBN-Net-a runs are in the plain backbone's table
    diffs = summary[summary["method"].str.contains(" − ") & (summary["measure"] == "top1@sketch")]
    assert (100 * diffs["mean"]).round(6).tolist() == list(DIFFERENCES.values())
    report = write_report([runs], tmp_path / "report.html").report
    assert len(report.groups) == 1
    section = report.groups[0].sections[0]
    assert section.tables["values"][1]["method"].tolist() == ORDER
    verdicts = {v.split(":")[0]: v for v in section.verdicts}
    assert list(verdicts) == list(DIFFERENCES)
    for name, points in DIFFERENCES.items():
        assert verdicts[name].startswith(f"{name}: +{points:.1f} points") and [s.n for s in section.stats][0] == 2
    assert "none − " not in (tmp_path / "report.md").read_text()


def test_by_block_refuses_runs_that_differ_by_feature_augmentation_and_by_arch_still_works(tmp_path: Path) -> None:
    runs = methods_sweep(tmp_path / "runs")
    with pytest.raises(StyleclsError, match=r"spec\.feature_aug differs.*--by method"):
        compare([runs], by="block")
    plain = methods_sweep(tmp_path / "plain", {k: v for k, v in METHODS.items() if k[1] == "none"})
    _, markdown, _ = compare([plain], by="block")  # IBN-Net-a runs: a table of their own arch
    assert "arch cifar_resnet20_ibn_a" in markdown and "| SRM − SE | +5.0 |" in markdown
    ibn = methods_sweep(tmp_path / "ibn", {k: v for k, v in METHODS.items() if k[0] == "none" and k[1] == "none"})
    _, markdown, _ = compare([ibn], by="arch")
    assert "| cifar_resnet20 − cifar_resnet20_ibn_a | −7.0 |" in markdown
