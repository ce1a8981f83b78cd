"""Recalibration blocks: SRM against the paper's formula, shapes/dtypes/layouts of every block."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest
import torch
import torch.nn.functional as F

from stylecls.blocks import (
    BLOCKS,
    ECA,
    SqueezeExcite,
    StyleRecalibration,
    add_recalibrated,
    create_block,
    no_weight_decay_names,
    style_pool,
)
from stylecls.errors import StyleclsError


def srm_reference(x: torch.Tensor, block: StyleRecalibration) -> torch.Tensor:
    """The paper's SRM written naively: torch.var, a CFC, BatchNorm, sigmoid, x·g."""
    mean = x.mean(dim=(2, 3))
    std = torch.sqrt(x.var(dim=(2, 3), unbiased=True) + 1e-5)
    feats = {"mean+std": [mean, std], "mean": [mean], "std": [std]}[block.pooling]
    if block.integration == "mlp":
        z = block.mlp(torch.cat(feats, dim=1))
    else:
        z = feats[0] * block.cfc[:, 0]
        if len(feats) == 2:
            z = z + feats[1] * block.cfc[:, 1]
        bn, stats = block.bn, block.bn.state_dict()
        z = F.batch_norm(
            z, stats["running_mean"].clone(), stats["running_var"].clone(), bn.weight, bn.bias,
            training=block.training, momentum=0.0, eps=bn.eps,
        )
    return x * torch.sigmoid(z)[:, :, None, None]


def _randomised_srm(channels: int, **options) -> StyleRecalibration:
    torch.manual_seed(0)
    block = StyleRecalibration(channels, **options)
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0, 0.5)
        if block.integration == "cfc":
            stats = block.bn.state_dict(keep_vars=True)
            stats["running_mean"].normal_(0, 0.3)
            stats["running_var"].uniform_(0.5, 2.0)
    return block


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-12)).item()


def _assert_close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4) -> None:
    assert _rel_err(a, b) <= rtol, _rel_err(a, b)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("offset", [0.0, 1e3], ids=["centred", "offset1e3"])
@pytest.mark.parametrize(
    "options",
    [{}, {"pooling": "mean"}, {"pooling": "std"}, {"integration": "mlp"}],
    ids=["paper", "mean-only", "std-only", "mlp"],
)
def test_srm_matches_paper_formula_with_gradients(training: bool, offset: float, options: dict) -> None:
    block = _randomised_srm(8, **options).train(training)
    torch.manual_seed(1)
    # offset inputs: |mean| >> std inside each map; the means still spread across the batch, as
    # real features do (a batch of identical means makes train-mode BN ill-conditioned in any precision)
    shift = offset * (1 + 0.01 * torch.randn(4, 8, 1, 1))
    x = (torch.randn(4, 8, 5, 6) * torch.rand(1, 8, 1, 1) * 2 + shift).requires_grad_()
    identity = torch.randn(4, 8, 5, 6)
    grad = torch.randn(4, 8, 5, 6)

    out = add_recalibrated(block, x, identity)
    out.backward(grad)
    results: dict[object, tuple[Any, ...]] = {"ours": (out, x.grad, [p.grad for p in block.parameters()])}
    for dtype in (torch.float32, torch.float64):  # the naive formula in float32, and the exact value
        reference = _randomised_srm(8, **options).train(training).to(dtype)
        x_ref = x.detach().to(dtype).requires_grad_()
        ref = identity.to(dtype) + srm_reference(x_ref, reference)
        ref.backward(grad.to(dtype))
        results[dtype] = (ref.detach(), x_ref.grad, [p.grad for p in reference.parameters()])
    exact = results[torch.float64]
    for i, (ours, naive, true) in enumerate(zip(results["ours"], results[torch.float32], exact, strict=True)):
        for a, b, c in zip(*(t if isinstance(t, list) else [t] for t in (ours, naive, true)), strict=True):
            # within 1e-4 of the naive formula, or (where float32 itself cannot get there, as for
            # sums like Σ ∂L/∂y·x over inputs offset by 1e3) no further from the exact value than it
            assert _rel_err(a, b) <= 1e-4 or _rel_err(a, c) <= 2 * _rel_err(b, c), (i, _rel_err(a, b), _rel_err(b, c))


def test_srm_starts_as_half_gate_and_updates_running_stats() -> None:
    block = StyleRecalibration(6)
    x = torch.randn(3, 6, 4, 4)
    assert torch.equal(block.cfc, torch.zeros(6, 2))
    torch.testing.assert_close(block(x), x * 0.5)
    assert int(block.bn.state_dict()["num_batches_tracked"]) == 1


def test_style_pool_is_safe_for_large_offsets() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16) * 0.01 + 1e3
    mean, std = style_pool(x)
    x64 = x.double()
    _assert_close(std.flatten(1).double(), torch.sqrt(x64.var(dim=(2, 3)) + 1e-5))
    _assert_close(mean.flatten(1).double(), x64.mean(dim=(2, 3)), rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_inference_style_pool_handles_offsets_and_dead_channels(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 6, 9, 9)
    x[:, 1] = x[:, 1] * 0.01 + 1e3  # |mean| >> std
    x[:, 2] = 0.7  # a dead channel: constant, σ = sqrt(1e-5)
    x[:, 3] = x[:, 3] * 1e-3 - 5.0
    x = x.to(dtype)
    with torch.inference_mode():
        mean, std = style_pool(x)
    x64 = x.double()
    _assert_close(mean.flatten(1).double(), x64.mean(dim=(2, 3)), rtol=1e-6 if dtype == torch.float32 else 1e-2)
    rel_std = ((std.flatten(1).double() - torch.sqrt(x64.var(dim=(2, 3)) + 1e-5)).abs() / std.flatten(1).double())
    assert rel_std.max() <= (1e-4 if dtype == torch.float32 else 1e-2)


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("joined", [False, True], ids=["block", "join"])
def test_srm_gradients_with_some_ill_conditioned_channels(joined: bool, channels_last: bool) -> None:
    block = _randomised_srm(6).train()
    reference = _randomised_srm(6).train().double()
    torch.manual_seed(3)
    x = torch.randn(3, 6, 9, 9)
    x[:, 1] = x[:, 1] * 0.01 + 1e3 * (1 + 0.01 * torch.randn(3, 1, 1))
    x[:, 2] = 0.7
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    x64 = x.detach().double().requires_grad_()
    grad = torch.randn(3, 6, 9, 9)
    out = add_recalibrated(block, x, torch.zeros_like(x)) if joined else block(x)
    assert (type(out.grad_fn).__name__ == "StyleJoinBackward") == joined  # the fused backward is the one taken
    out.backward(grad)
    srm_reference(x64, reference).backward(grad.double())
    assert x.grad is not None and x64.grad is not None
    for c in (0, 3, 4, 5):  # well-conditioned channels: tight
        _assert_close(x.grad[:, c], x64.grad[:, c])
    _assert_close(x.grad[:, 1], x64.grad[:, 1], rtol=1e-3)  # float32 itself is ~5e-4 off at |mean|/std = 1e5
    _assert_close(x.grad[:, 2], x64.grad[:, 2])
    well = [0, 3, 4, 5]  # channel 1's CFC gradient Σ_n ∂z·μ cancels at μ ≈ 1e3 in float32 whatever the code
    for p, q in zip(block.parameters(), reference.parameters(), strict=True):
        assert p.grad is not None and q.grad is not None
        _assert_close(p.grad[well], q.grad[well])
    assert int(block.bn.state_dict()["num_batches_tracked"]) == 1  # one forward, one running-stat update


@pytest.mark.parametrize("offset", [0.0, 1e3], ids=["centred", "offset1e3"])
def test_srm_inference_matches_paper_formula(offset: float) -> None:
    block = _randomised_srm(8).eval()
    torch.manual_seed(2)
    x = torch.randn(4, 8, 6, 6) + offset * (1 + 0.01 * torch.randn(4, 8, 1, 1))
    with torch.inference_mode():
        out = block(x)
    _assert_close(out, srm_reference(x.double(), _randomised_srm(8).eval().double()))


def test_srm_eval_folds_batchnorm_into_cfc() -> None:
    block = _randomised_srm(5).eval()
    w = block.effective_weights()
    x = torch.randn(2, 5, 4, 4)
    mean, std = x.mean(dim=(2, 3)), torch.sqrt(x.var(dim=(2, 3)) + 1e-5)
    bn, stats = block.bn, block.bn.state_dict()
    shift = bn.bias - stats["running_mean"] * bn.weight / torch.sqrt(stats["running_var"] + bn.eps)
    gate = torch.sigmoid(mean * w[:, 0] + std * w[:, 1] + shift)
    torch.testing.assert_close(block(x), x * gate[:, :, None, None], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("options", [{}, {"pooling": "mean"}, {"pooling": "std"}], ids=["paper", "mean", "std"])
def test_srm_inference_fold_is_cached_and_follows_every_change(options: dict) -> None:
    """The eval gate without autograd uses the cached fold; a training step, a load_state_dict or a
    change of statistics is seen at once (the fold is keyed on the tensors' versions)."""
    block = _randomised_srm(6, **options).eval()
    x = torch.randn(3, 6, 5, 5) + 0.5
    identity = torch.randn_like(x)
    for step in range(4):
        with torch.no_grad():
            expected = identity + srm_reference(x, block)
            torch.testing.assert_close(add_recalibrated(block, x, identity), expected, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(block(x), srm_reference(x, block), rtol=1e-5, atol=1e-5)
        with torch.inference_mode():
            torch.testing.assert_close(block(x), expected - identity, rtol=1e-5, atol=1e-5)
        if step == 0:  # an optimizer step on the CFC and the BatchNorm's affine parameters
            block.train()
            block(x).square().sum().backward()
            with torch.no_grad():
                for p in block.parameters():
                    p -= 0.5 * p.grad  # type: ignore[operator]
            block.eval()
        elif step == 1:  # new weights loaded
            block.load_state_dict(_randomised_srm(6, **options).state_dict())
            with torch.no_grad():
                block.cfc.mul_(-2)
        elif step == 2:  # new statistics
            cast(torch.Tensor, block.bn.running_var).mul_(3)
    assert block._fold.value is not None  # the cache is in use


@pytest.mark.parametrize("name", sorted(BLOCKS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_block_keeps_shape_dtype_and_layout(name: str, dtype: torch.dtype, channels_last: bool, training: bool) -> None:
    block = create_block(name, 32).to(dtype).train(training)
    x = torch.randn(4, 32, 7, 7, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    identity = torch.randn_like(x)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    for out in (block(x), add_recalibrated(block, x, identity)):
        assert out.shape == x.shape
        assert out.dtype == dtype
        assert out.is_contiguous(memory_format=layout)
        assert torch.isfinite(out.float()).all()
    # the fused residual equals the plain one
    torch.testing.assert_close(add_recalibrated(block, x, identity), block(x) + identity, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("name", sorted(BLOCKS))
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_inplace_join_writes_over_the_branch_only_in_inference(name: str, channels_last: bool) -> None:
    """``inplace=True`` (a ResNet unit's own branch output) gives the same sum; without autograd it is written
    over the branch, with autograd never (the backward may need it); ``inplace=False`` never touches ``x``."""
    block = create_block(name, 16).eval()
    x = torch.randn(2, 16, 5, 5) + 0.3
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    identity = torch.randn_like(x)
    with torch.no_grad():
        expected = add_recalibrated(block, x, identity)
        branch = x.clone()
        out = add_recalibrated(block, branch, identity, inplace=True)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)
    assert out.data_ptr() == branch.data_ptr() and out.is_contiguous(memory_format=torch.channels_last) == channels_last
    leaf = x.clone().requires_grad_()
    branch = leaf * 1.0
    before = branch.detach().clone()
    add_recalibrated(block, branch, identity, inplace=True).sum().backward()
    torch.testing.assert_close(branch.detach(), before, rtol=0, atol=0)
    assert leaf.grad is not None and torch.isfinite(leaf.grad).all()


def test_gates_pass_through_activation_hook() -> None:
    seen: dict[str, torch.Tensor] = {}
    for name in ("se", "srm", "ge", "eca"):
        block = create_block(name, 16)
        hook = cast(torch.nn.Module, block.activation).register_forward_hook
        hook(lambda m, i, o, name=name: seen.setdefault(name, o))
        block(torch.randn(2, 16, 4, 4))
    assert set(seen) == {"se", "srm", "ge", "eca"}
    assert all(v.numel() == 2 * 16 and ((v > 0) & (v < 1)).all() for v in seen.values())


def test_eca_kernel_size_is_adaptive() -> None:
    assert cast(ECA, create_block("eca", 64)).conv.kernel_size == (3,)
    assert cast(ECA, create_block("eca", 2048)).conv.kernel_size == (7,)


def test_bad_block_name_and_option_are_clear_errors() -> None:
    with pytest.raises(StyleclsError, match=r"unknown block 'cbam'; choose one of: eca, ge, none, se, srm"):
        create_block("cbam", 8)
    with pytest.raises(StyleclsError, match="unknown SRM pooling 'max'"):
        create_block("srm", 8, pooling="max")
    with pytest.raises(StyleclsError, match=r"^block 'se' does not take option 'pooling'; its options: reduction$"):
        create_block("se", 8, pooling="mean", reduction=4)
    with pytest.raises(StyleclsError, match=r"^block 'none' does not take options 'a', 'b'; it takes none$"):
        create_block("none", 8, b=1, a=2)


def test_a_type_error_inside_a_block_is_not_called_an_unknown_option(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(channels: int, reduction: int = 16) -> torch.nn.Module:
        raise TypeError("a bug inside the block")

    monkeypatch.setitem(BLOCKS, "broken", broken)
    with pytest.raises(TypeError, match="a bug inside the block"):
        create_block("broken", 8, reduction=4)


@pytest.mark.parametrize("name", ["se", "srm"])
@pytest.mark.parametrize("value", [0, -4, "abc", 2.5, True, None])
def test_reduction_must_be_a_positive_integer(name: str, value: object) -> None:
    message = f"block option reduction must be a positive integer, got {value!r}"
    with pytest.raises(StyleclsError, match=f"^{re.escape(message)}$"):
        create_block(name, 64, reduction=value)


@pytest.mark.parametrize(
    ("name", "option", "value", "message"),
    [
        ("eca", "kernel_size", 0, "kernel_size must be a positive integer"),
        ("eca", "kernel_size", 4, "kernel_size must be odd"),
        ("eca", "gamma", -1, "gamma must be a positive integer"),
        ("srm", "eps", -1.0, "eps must be a positive number"),
        ("srm", "eps", "x", "eps must be a positive number"),
    ],
)
def test_other_numeric_block_options_are_checked(name: str, option: str, value: object, message: str) -> None:
    with pytest.raises(StyleclsError, match=message):
        create_block(name, 64, **{option: value})
    assert cast(SqueezeExcite, create_block("se", 64, reduction=8)).fc1.out_channels == 8


def test_srm_runs_in_float64_forward_and_backward() -> None:
    for training in (True, False):
        block = _randomised_srm(8).double().train(training)
        reference = _randomised_srm(8).double().train(training)
        torch.manual_seed(4)
        x = torch.randn(4, 8, 5, 6, dtype=torch.float64, requires_grad=True)
        x_ref = x.detach().clone().requires_grad_()
        identity = torch.randn_like(x)
        grad = torch.randn_like(x)
        out = add_recalibrated(block, x, identity)
        assert out.dtype == torch.float64
        out.backward(grad)
        (identity + srm_reference(x_ref, reference)).backward(grad)
        torch.testing.assert_close(out, identity + srm_reference(x_ref.detach(), reference), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-10, atol=1e-12)
        for p, q in zip(block.parameters(), reference.parameters(), strict=True):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-12)
        with torch.inference_mode():
            assert block(x.detach()).dtype == torch.float64


@pytest.mark.parametrize("offset", [0.0, 1e3], ids=["centred", "offset1e3"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_style_pool_passes_gradcheck_in_float64(offset: float, channels_last: bool) -> None:
    torch.manual_seed(5)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64) + offset
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    assert torch.autograd.gradcheck(style_pool, (x.requires_grad_(),))


@pytest.mark.parametrize("options", [{}, {"pooling": "std"}, {"integration": "mlp"}], ids=["paper", "std-only", "mlp"])
def test_srm_residual_passes_gradcheck_in_float64(options: dict) -> None:
    block = _randomised_srm(3, **options).double().train()
    torch.manual_seed(6)
    x = torch.randn(4, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    identity = torch.randn_like(x, requires_grad=True)
    params = tuple(block.parameters())

    def residual(x: torch.Tensor, identity: torch.Tensor, *_: torch.Tensor) -> torch.Tensor:
        return add_recalibrated(block, x, identity)

    assert torch.autograd.gradcheck(residual, (x, identity, *params))


def test_no_weight_decay_names_are_srm_parameters_only() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1), create_block("srm", 8), create_block("se", 8))
    assert no_weight_decay_names(model) == {"1.cfc", "1.bn.weight", "1.bn.bias"}
