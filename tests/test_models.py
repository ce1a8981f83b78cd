"""Backbones: exact parameter counts, torchvision key compatibility, clear errors, the models command."""

from __future__ import annotations

import pytest
import torch
import torchvision
from typer.testing import CliRunner

from stylecls.cli import app
from stylecls.errors import StyleclsError
from stylecls.models import ARCHS, build_model, count_parameters
from stylecls.models.overhead import count_gflops, measure_overhead


@pytest.mark.parametrize(
    ("block", "expected"),
    [("none", 25_557_032), ("srm", 25_617_448), ("se", 28_088_024)],
)
def test_resnet50_parameter_counts_match_the_paper(block: str, expected: int) -> None:
    assert count_parameters(build_model("resnet50", block, num_classes=1000)) == expected


def test_plain_resnets_match_torchvision_exactly() -> None:
    for arch in ("resnet18", "resnet50"):
        ours = build_model(arch).state_dict()
        theirs = getattr(torchvision.models, arch)().state_dict()
        assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


@pytest.mark.parametrize(("arch", "block", "units"), [("resnet50", "srm", 16), ("resnet18", "se", 8), ("resnet18", "eca", 8)])
def test_torchvision_weights_load_into_every_variant(tmp_path, arch: str, block: str, units: int) -> None:
    torch.manual_seed(0)
    tv = getattr(torchvision.models, arch)()
    path = tmp_path / f"{arch}_tv.pth"
    torch.save(tv.state_dict(), path)

    model = build_model(arch, block, num_classes=1000, pretrained=path)
    report = model.load_report
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
    assert model.load_report.reinitialised == ["fc.bias", "fc.weight"]
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 7)


def test_pretrained_weights_that_do_not_fit_are_a_clear_error(tmp_path) -> None:
    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(StyleclsError, match=r"do not fit resnet50 \(\d+ shape mismatches"):
        build_model("resnet50", "srm", pretrained=path)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(StyleclsError, match="cannot read weights"):
        build_model("resnet18", pretrained=garbage)
    with pytest.raises(StyleclsError, match="not found"):
        build_model("resnet18", pretrained=tmp_path / "missing.pth")


def test_unknown_arch_lists_the_valid_names() -> None:
    with pytest.raises(StyleclsError, match=r"unknown arch 'vgg16'; choose one of: cifar_resnet110, .*resnet50"):
        build_model("vgg16")
    with pytest.raises(StyleclsError, match="unknown block 'cbam'"):
        build_model("resnet18", "cbam")


@pytest.mark.parametrize("arch", [a for a in ARCHS if a.startswith("cifar_")])
def test_cifar_resnets_have_6n_plus_2_layers(arch: str) -> None:
    depth = int(arch.removeprefix("cifar_resnet"))
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
    rows = measure_overhead("cifar_resnet20", ["none", "srm"], img_size=32, batch=4, num_classes=10, repeats=2, warmup=1)
    assert [r.block for r in rows] == ["none", "srm"]
    assert rows[1].params == rows[0].params + 4 * 3 * (16 + 32 + 64)  # CFC 2 + BN 2 per channel
    assert all(r.train_ratio > 0 and r.infer_ratio > 0 for r in rows)
    assert count_gflops(build_model("resnet50"), 224) == pytest.approx(8.18, abs=0.02)  # 4.09 GMACs


def test_models_command_prints_the_table() -> None:
    result = CliRunner().invoke(app, ["models", "--arch", "cifar_resnet20", "--block", "none", "--block", "srm", "--img-size", "32"])
    assert result.exit_code == 0, result.output
    assert "cifar_resnet20" in result.output and "srm" in result.output
    assert "272,474" in result.output or "params" in result.output.lower()


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
