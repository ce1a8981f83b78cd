"""How blocks start (block_init) and how the backbone's BatchNorm trains (bn), from Python and from a spec."""

from __future__ import annotations

from typing import cast

import pytest
import torch
import torchvision
from torch import nn

from stylecls.blocks import BLOCKS, StyleRecalibration, create_block
from stylecls.errors import StyleclsError
from stylecls.models import build_model
from stylecls.models.ibn import IBN
from stylecls.models.norms import FrozenStatsBatchNorm2d
from stylecls.spec import RunSpec

IDENTITY_BLOCKS = [("se", {}), ("srm", {}), ("srm", {"pooling": "std"}), ("srm", {"integration": "mlp"}),
                   ("eca", {})]


@pytest.fixture
def plain_weights(tmp_path):
    """One torchvision ResNet-18 state dict with non-trivial BatchNorm statistics, saved to a file."""
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(num_classes=10)
    with torch.no_grad():
        for name, buf in tv.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.1)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
        for name, p in tv.named_parameters():
            if "bn" in name and name.endswith("bias"):
                p.normal_(0, 0.1)
    path = tmp_path / "resnet18.pth"
    torch.save(tv.state_dict(), path)
    return path


def test_identity_init_computes_exactly_the_pretrained_plain_network(plain_weights) -> None:
    """issue 18 part 6: with one plain state dict, SE/SRM/ECA with identity-initialised gates give the
    plain network's logits (eval mode, and train mode with batch statistics)."""
    plain = build_model("resnet18", "none", 10, pretrained=plain_weights)
    variants = {f"{b}{o}": build_model("resnet18", b, 10, pretrained=plain_weights, block_init="identity", **o)
                for b, o in IDENTITY_BLOCKS}
    paper_srm = build_model("resnet18", "srm", 10, pretrained=plain_weights)
    x = torch.randn(4, 3, 64, 64)
    for training in (False, True):
        with torch.no_grad():
            reference = plain.train(training)(x)
            for name, model in variants.items():
                torch.testing.assert_close(model.train(training)(x), reference, rtol=0, atol=1e-5, msg=name)
            # the paper's start halves every residual branch: not the pretrained function
            assert (paper_srm.train(training)(x) - reference).abs().max() > 1e-2
    # with gradients (SRM's fused join in training) the same, and the gates learn from the first step
    srm = variants["srm{}"].train()
    out = srm(x)
    torch.testing.assert_close(out, plain.train()(x), rtol=0, atol=1e-5)
    out.logsumexp(1).sum().backward()
    cfc = cast(StyleRecalibration, srm.layer1[0].recalibration).cfc
    assert cfc.grad is not None and cfc.grad.abs().sum() > 0


@pytest.mark.parametrize(("block", "options"), IDENTITY_BLOCKS)
def test_identity_gates_are_exactly_one(block: str, options: dict) -> None:
    module = create_block(block, 32, "identity", **options)
    x = torch.randn(4, 32, 5, 5) * 3 + 1
    for training in (True, False):
        module.train(training)
        gate = module.gate(x)  # type: ignore[operator]
        assert torch.equal(gate, torch.ones_like(gate))
        assert torch.equal(module(x), x)


def test_paper_init_is_unchanged_and_unknown_or_impossible_inits_are_refused() -> None:
    x = torch.randn(2, 16, 4, 4)
    srm = create_block("srm", 16).eval()
    assert torch.allclose(srm.gate(x), torch.full((2, 16, 1, 1), 0.5))  # type: ignore[operator]
    with pytest.raises(StyleclsError, match="unknown block init 'zero'; choose one of: identity, paper"):
        create_block("se", 16, "zero")
    with pytest.raises(StyleclsError, match="'ge' .*cannot start at 1"):
        build_model("resnet18", "ge", block_init="identity")
    with pytest.raises(StyleclsError, match="cannot start at 1"):
        RunSpec(block="ge", block_init="identity").resolved()
    assert isinstance(create_block("none", 16, "identity"), nn.Identity)
    assert set(BLOCKS) == {"none", "se", "srm", "ge", "eca"}  # a new block decides its identity start here


def _bn2d(model: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d) and ".recalibration" not in n]


@pytest.mark.parametrize("arch", ["cifar_resnet20", "cifar_resnet20_ibn_a"])
def test_frozen_bn_keeps_backbone_statistics_but_not_the_blocks(arch: str) -> None:
    """issue 18 part 5: --bn frozen: the backbone's BatchNorm2d stays in eval mode under model.train()
    (statistics used and kept, affine trained); SRM's own BatchNorm trains and updates."""
    torch.manual_seed(0)
    model = build_model(arch, "srm", 5, bn="frozen")
    model.train()
    model.train()  # a second call (the loop calls train() every epoch) changes nothing
    backbone = _bn2d(model)
    assert backbone and all(isinstance(m, FrozenStatsBatchNorm2d) and not m.training for m in backbone)
    srm_bns = [m.bn for m in model.modules() if isinstance(m, StyleRecalibration)]
    assert srm_bns and all(bn.training for bn in srm_bns)
    before = {id(m): (m.running_mean.clone(), m.running_var.clone()) for m in (*backbone, *srm_bns)}  # type: ignore[union-attr]
    model(torch.randn(4, 3, 32, 32) * 2 + 1).sum().backward()
    for m in backbone:
        assert torch.equal(m.running_mean, before[id(m)][0]) and torch.equal(m.running_var, before[id(m)][1])
        assert m.weight.grad is not None  # affine parameters still learn
    assert all(not torch.equal(bn.running_var, before[id(bn)][1]) for bn in srm_bns)  # type: ignore[arg-type]
    assert all(int(bn.num_batches_tracked) == 1 for bn in srm_bns)  # type: ignore[call-overload]
    if arch.endswith("_ibn_a"):
        ibn = [m for m in model.modules() if isinstance(m, IBN)]
        assert ibn and all(isinstance(m.BN, FrozenStatsBatchNorm2d) and not m.BN.training for m in ibn)
    default = build_model(arch, "srm", 5).train()
    assert all(m.training and type(m) is nn.BatchNorm2d for m in _bn2d(default))


def test_frozen_bn_loads_plain_keys_and_refuses_unknown_modes(plain_weights) -> None:
    frozen = build_model("resnet18", "se", 10, pretrained=plain_weights, bn="frozen", block_init="identity")
    plain = build_model("resnet18", "none", 10, pretrained=plain_weights)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():  # frozen statistics in train mode: the pretrained eval-mode function
        torch.testing.assert_close(frozen.train()(x), plain.eval()(x), rtol=0, atol=1e-5)
    with pytest.raises(StyleclsError, match="unknown bn mode 'fixed'; choose one of: frozen, train"):
        build_model("resnet18", bn="fixed")
    with pytest.raises(StyleclsError, match="unknown bn 'fixed'; choose one of: frozen, train"):
        RunSpec(bn="fixed").resolved()
    with pytest.raises(StyleclsError, match="--bn frozen .* needs --pretrained"):
        RunSpec(bn="frozen").resolved()
    assert RunSpec(bn="frozen", pretrained="imagenet").resolved().bn == "frozen"
    with pytest.raises(StyleclsError, match="unknown block init"):
        RunSpec(block_init="half").resolved()
