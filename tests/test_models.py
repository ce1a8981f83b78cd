"""Backbones: exact parameter counts, torchvision key compatibility, clear errors, the models command."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import cast

import pytest
import torch
import torchvision
from typer.testing import CliRunner

from stylecls.cli import app, main
from stylecls.errors import StyleclsError
from stylecls.models import ARCHS, LoadReport, build_model, count_parameters
from stylecls.models.overhead import count_gflops, measure_overhead, side_by_side


@pytest.mark.parametrize(
    ("block", "expected"),
    [("none", 25_557_032), ("srm", 25_617_448), ("se", 28_088_024)],
)
def test_resnet50_parameter_counts_match_the_paper(block: str, expected: int) -> None:
    assert count_parameters(build_model("resnet50", block, num_classes=1000)) == expected


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_plain_resnets_match_torchvision_exactly(arch: str) -> None:
    """Same keys and shapes, and with one state dict loaded into both, the same outputs and gradients."""
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, arch)(num_classes=10)
    ours = build_model(arch, num_classes=10)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    with torch.no_grad():  # non-trivial BN statistics, so eval mode is not the identity on them
        for name, buf in theirs.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.1)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    for training in (False, True):
        ours.train(training)
        theirs.train(training)
        out_ours, out_theirs = ours(x), theirs(x)
        torch.testing.assert_close(out_ours, out_theirs, rtol=0, atol=0)
    out_ours.sum().backward()
    out_theirs.sum().backward()
    grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("arch", "block", "units"), [("resnet50", "srm", 16), ("resnet18", "se", 8), ("resnet18", "eca", 8)]
)
def test_torchvision_weights_load_into_every_variant(tmp_path, arch: str, block: str, units: int) -> None:
    torch.manual_seed(0)
    tv = getattr(torchvision.models, arch)()
    path = tmp_path / f"{arch}_tv.pth"
    torch.save(tv.state_dict(), path)

    model = build_model(arch, block, num_classes=1000, pretrained=path)
    report = cast(LoadReport, model.load_report)
    assert set(report.loaded) == set(tv.state_dict())  # every torchvision key was used
    assert report.new and all(".recalibration." in k for k in report.new)
    assert not report.reinitialised
    ours = model.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in tv.state_dict().items())
    assert f"new recalibration tensors in {units} units" in report.summary()


def test_pretrained_head_of_another_size_is_reinitialised(tmp_path) -> None:
    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    model = build_model("resnet18", "srm", num_classes=7, pretrained=path)
    assert cast(LoadReport, model.load_report).reinitialised == ["fc.bias", "fc.weight"]
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 7)


def test_pretrained_weights_that_do_not_fit_are_a_clear_error(tmp_path) -> None:
    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(StyleclsError, match=r"do not fit resnet50 \(\d+ shape mismatches"):
        build_model("resnet50", "srm", pretrained=path)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(StyleclsError, match=f"{garbage} is not a PyTorch weights file"):
        build_model("resnet18", pretrained=garbage)
    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(path.read_bytes()[:5000])  # a zip archive cut short
    with pytest.raises(StyleclsError, match=f"{damaged} is damaged or not a PyTorch weights file"):
        build_model("resnet18", pretrained=damaged)
    pickled = tmp_path / "model.pth"
    torch.save(torch.nn.Linear(2, 2), pickled)  # a whole module, not a state dict
    with pytest.raises(StyleclsError, match="Python objects besides tensors") as info:
        build_model("resnet18", pretrained=pickled)
    assert "weights_only=False" not in str(info.value)  # never that advice
    with pytest.raises(StyleclsError, match="not found"):
        build_model("resnet18", pretrained=tmp_path / "missing.pth")
    with pytest.raises(StyleclsError, match="is a folder"):
        build_model("resnet18", pretrained=tmp_path)


def test_pretrained_text_file_is_one_line_and_exit_2(tmp_path, demo_env, monkeypatch, capsys) -> None:
    """issue 20: ``--pretrained notes.txt`` used to end in 'KeyError: 105'."""
    text = tmp_path / "notes.txt"
    text.write_text("these are not weights\n")
    args = ["train", "--pretrained", text, "--arch", "cifar_resnet20", "--img-size", "32", "--out", tmp_path / "runs"]
    monkeypatch.setattr(sys, "argv", ["stylecls", *map(str, args)])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert "is not a PyTorch weights file" in err and "notes.txt" in err
    assert "Traceback" not in err and "KeyError" not in err


def test_unknown_arch_lists_the_valid_names() -> None:
    with pytest.raises(StyleclsError, match=r"unknown arch 'vgg16'; choose one of: cifar_resnet110, .*resnet50"):
        build_model("vgg16")
    with pytest.raises(StyleclsError, match="unknown block 'cbam'"):
        build_model("resnet18", "cbam")


@pytest.mark.parametrize("arch", [a for a in ARCHS if a.startswith("cifar_")])
def test_cifar_resnets_have_6n_plus_2_layers(arch: str) -> None:
    depth = int(arch.removeprefix("cifar_resnet").removesuffix("_ibn_a"))
    model = build_model(arch, "srm", num_classes=10)
    convs = [m for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d) and "downsample" not in n]
    assert len(convs) + 1 == depth  # + the classifier
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_resnet_forward_backward_channels_last() -> None:
    model = build_model("resnet18", "srm", num_classes=5).to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_overhead_measures_every_block_against_plain() -> None:
    rows = measure_overhead("cifar_resnet20", ["none", "srm"], img_size=32, batch=4, num_classes=10, repeats=2)
    assert [r.block for r in rows] == ["none", "srm"]
    assert rows[1].params == rows[0].params + 4 * 3 * (16 + 32 + 64)  # CFC 2 + BN 2 per channel
    assert all(r.train_ratio is not None and r.train_ratio > 0 for r in rows)
    assert all(r.infer_ratio is not None and r.infer_ratio > 0 for r in rows)
    assert count_gflops(build_model("resnet50"), 224) == pytest.approx(8.18, abs=0.02)  # 4.09 GMACs
    infer_only = measure_overhead("cifar_resnet20", ["srm"], img_size=32, batch=2, num_classes=3, repeats=1,
                                  min_run_time=0.01, modes=["infer"])
    assert infer_only[0].train_ratio is None and infer_only[0].infer_ratio is not None


def test_block_overhead_benchmark_reports_every_run_and_the_srm_verdict() -> None:
    """The 5-run table of issue 20 from given ratios (no timing here): every run, median, range, verdict."""
    path = Path(__file__).parents[1] / "benchmarks" / "block_overhead.py"
    spec = importlib.util.spec_from_file_location("block_overhead", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    def run(se: float, srm: float) -> list[dict]:
        ratios = {"none": 1.0, "se": se, "srm": srm}
        return [{"arch": "resnet50", "block": b, "infer_ratio": r} for b, r in ratios.items()]

    runs = [run(1.06, 1.04), run(1.04, 1.045), run(1.08, 1.06), run(1.05, 1.03), run(1.07, 1.05)]
    table = bench.runs_markdown(runs, ["infer"])
    assert "| resnet50 | srm | infer | 1.040 | 1.045 | 1.060 | 1.030 | 1.050 | 1.045 | 1.030–1.060 |" in table
    assert "resnet50: SRM inference ≤ 1.05× and ≤ SE in 3 of 5 runs." in table


def test_models_command_prints_the_table() -> None:
    args = ["models", "--arch", "cifar_resnet20", "--block", "none", "--block", "srm", "--img-size", "32"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    cells = [line.replace("│", " ").split() for line in result.output.splitlines() if "cifar_resnet20" in line]
    rows = {c[1]: c[2:] for c in cells if len(c) > 2}
    plain, srm = (count_parameters(build_model("cifar_resnet20", b)) for b in ("none", "srm"))
    assert rows["none"][:2] == [f"{plain:,}", "+0"]
    assert rows["srm"][:2] == [f"{srm:,}", f"{srm - plain:+,}"]


def _flat(output: str) -> str:
    """CLI output without rich's panel borders and line wrapping."""
    return " ".join(output.replace("│", " ").split())


@pytest.mark.parametrize("option", ["--img-size", "--num-classes", "--repeats", "--batch-size"])
@pytest.mark.parametrize("value", ["0", "-3"])
def test_models_command_refuses_sizes_below_one(option: str, value: str) -> None:
    result = CliRunner().invoke(app, ["models", "--arch", "cifar_resnet20", "--block", "srm", option, value, "--time"])
    assert result.exit_code == 2, result.output
    message = _flat(result.output)
    assert f"Invalid value for '{option}': Input should be greater than or equal to 1" in message
    assert "Traceback" not in result.output and "timing" not in result.output


@pytest.mark.parametrize(("option", "value", "names"), [("--block", "cbam", "'eca', 'ge', 'none', 'se', 'srm'"),
                                                        ("--arch", "vgg16", "'cifar_resnet110', ")])
def test_models_command_lists_registry_names_for_an_unknown_one(option: str, value: str, names: str) -> None:
    result = CliRunner().invoke(app, ["models", option, value])
    assert result.exit_code == 2, result.output
    assert f"'{value}' is not one of {names}" in _flat(result.output)


def test_models_command_completes_names_from_the_registries() -> None:
    import typer.main

    command = typer.main.get_command(app).commands["models"]  # type: ignore[attr-defined]
    params = {p.name: p for p in command.params}
    ctx = command.make_context("models", [], resilient_parsing=True)
    assert [c.value for c in params["block"].shell_complete(ctx, "s")] == ["se", "srm"]
    assert [c.value for c in params["arch"].shell_complete(ctx, "resnet1")] == [
        "resnet101", "resnet101_ibn_a", "resnet152", "resnet18", "resnet18_ibn_a"
    ]


def _gpu_check() -> ModuleType:
    path = Path(__file__).parents[1] / "benchmarks" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_imports_and_its_cpu_parts_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gpu_check = _gpu_check()
    model = build_model("cifar_resnet20", "srm", num_classes=3)
    decay, no_decay = gpu_check.sgd_like_train(model).param_groups
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    srm_params = {id(p) for n, p in model.named_parameters() if ".recalibration." in n}
    assert srm_params and srm_params == {id(p) for p in no_decay["params"]}  # as `stylecls train` by default
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    command = gpu_check.demo_command("srm", tmp_path, device="cpu")
    assert command[1:5] == ["-m", "stylecls", "train", "--dataset"] and "--no-progress" in command
    summary = gpu_check.run_summary({"train": {"epochs": 3, "amp": True, "amp_dtype": "bfloat16", "workers": 4},
                                     "best": {"epoch": 2, "val_acc": 0.5}})
    assert summary == {"epochs": 3, "best_val_acc": 0.5, "amp": True, "amp_dtype": "bfloat16", "workers": 4}
    if not torch.cuda.is_available():
        monkey_argv = ["gpu_check.py", "--out", str(tmp_path)]
        import sys

        old, sys.argv = sys.argv, monkey_argv
        try:
            assert gpu_check.main() == 0
        finally:
            sys.argv = old
        assert "no CUDA GPU" in capsys.readouterr().out


@pytest.mark.parametrize("block", ["srm", "se", "eca"])
def test_autocast_bfloat16_channels_last_trains(block: str) -> None:
    """The GPU recipe (AMP + channels_last), exercised with CPU autocast."""
    model = build_model("cifar_resnet20", block, num_classes=5).to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_side_by_side_alternates_and_reports_the_median_ratio() -> None:
    import time

    calls: list[str] = []

    def base() -> None:
        calls.append("base")
        time.sleep(0.002)

    def other() -> None:
        calls.append("other")
        time.sleep(0.006)

    b, o, ratio = side_by_side(base, other, repeats=4, min_run_time=0.01)
    assert 0.002 <= b < o and 1.5 < ratio < 4.5
    switches = [c for i, c in enumerate(calls) if i == 0 or calls[i - 1] != c]
    assert switches == ["base", "other", "base", "other", "base"]  # B O | O B | B O | O B
