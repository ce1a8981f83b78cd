"""SRM's style pooling: per-channel mean and standard deviation over H×W, with closed-form backwards.

Kept apart from the blocks so the block module reads as the paper's definitions; these are the
kernels that make them cheap (one pass forward on other devices, one pass backward everywhere,
and in training the gate multiply and the residual addition as one autograd node).
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

__all__ = ["SRM_EPS", "FoldCache", "StyleJoin", "accumulation_dtype", "fold_batch_norm", "moments", "style_pool"]

SRM_EPS = 1e-5  # the paper's σ = sqrt(var + 1e-5)


def accumulation_dtype(x: Tensor) -> torch.dtype:
    """Sums over H×W run in at least float32 (bf16/fp16 inputs), and in float64 for float64 inputs."""
    return torch.promote_types(x.dtype, torch.float32)


def moments(x: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor | None]:
    """Per-(n, c) mean and sqrt(unbiased var + eps), each (N, C, 1, 1), in :func:`accumulation_dtype`.

    ``torch.var`` over H×W runs a scalar Welford loop on the CPU (50-90× a mean here). On the CPU we
    read x for Σx and Σx² and take var = (Σx² - (Σx)²/n)/(n - 1); that cancels where
    |mean| >> std, so those rows (offset inputs, dead channels: Σx² > 64·n·(var + eps)) are
    recomputed from centred values and their flat (n·C + c) indices returned. Elsewhere the float32
    error of σ² stays below ~3e-5 relative. Other devices have the bandwidth for the centred
    two-pass form (and no host sync): they return ``None`` for the indices. So does tracing
    (TorchScript/ONNX export), which cannot record the data-dependent fix-up.
    """
    n = x.shape[-1] * x.shape[-2]
    acc = accumulation_dtype(x)
    if x.device.type != "cpu" or torch.jit.is_tracing():
        mean = x.mean(dim=(2, 3), keepdim=True, dtype=acc)
        var = torch.linalg.vector_norm(x - mean, dim=(2, 3), keepdim=True).square_() / max(n - 1, 1)
        return mean, var.add_(eps).sqrt_(), None
    # two reads of x (Σx, Σx²); the rest works in place on (N, C, 1, 1) tensors, a few allocations per call
    mean = x.sum(dim=(2, 3), keepdim=True, dtype=acc).div_(n)
    sq = torch.linalg.vector_norm(x, dim=(2, 3), keepdim=True, dtype=acc).square_()
    var_eps = torch.addcmul(sq, mean, mean, value=-n).clamp_min_(0).div_(max(n - 1, 1)).add_(eps)
    ill = (sq > var_eps * (64 * n)).view(-1).nonzero().view(-1)
    if ill.numel():
        rows = _rows(x, ill).to(acc)
        centred = (rows - rows.mean(dim=(1, 2), keepdim=True)).square_().sum(dim=(1, 2))
        var_eps.view(-1)[ill] = centred / max(n - 1, 1) + eps
    return mean, var_eps.sqrt_(), ill


def _rows(x: Tensor, flat: Tensor) -> Tensor:
    """The (H, W) maps of x at flat (n·C + c) indices, shape (k, H, W), in any memory layout."""
    return x[flat // x.shape[1], flat % x.shape[1]]


def _pool_grad(x: Tensor, mean: Tensor, std: Tensor, ill: Tensor | None, d_mean: Tensor | None,
               d_std: Tensor | None) -> Tensor:
    """dL/dx of style pooling: gμ/n + gσ·(x - μ)/((n - 1)σ) = a + b·x per (n, c), one pass over x.

    The rows where |μ| >> σ (``ill``) would make a + b·x cancel: they take the centred form. Off the
    CPU (``ill`` is None) the centred form is used throughout.
    """
    n = x.shape[-1] * x.shape[-2]
    b = torch.zeros_like(std) if d_std is None else d_std.reshape(std.shape).to(std.dtype) / (std * max(n - 1, 1))
    a = torch.zeros_like(mean) if d_mean is None else d_mean.reshape(mean.shape).to(mean.dtype) / n
    if ill is None:
        return torch.addcmul(a, b, x - mean).to(x.dtype)
    grad_x = torch.addcmul((a - b * mean).to(x.dtype), b.to(x.dtype), x)
    if ill.numel():
        rows = _rows(x, ill).to(std.dtype)
        a_, b_, m_ = (t.view(-1, 1, 1)[ill] for t in (a, b, mean))
        grad_x[ill // x.shape[1], ill % x.shape[1]] = (a_ + b_ * (rows - m_)).to(x.dtype)
    return grad_x


class _StylePool(torch.autograd.Function):
    """Style pooling with a closed-form backward in one pass over x (:func:`_pool_grad`).
    Only x (already kept by the gate's multiply) is saved."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, eps: float) -> tuple[Tensor, Tensor]:
        mean, std, ill = moments(x, eps)
        ctx.save_for_backward(x, mean, std)
        ctx.ill = ill
        return mean.to(x.dtype), std.to(x.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_mean: Tensor, grad_std: Tensor) -> tuple[Tensor, None]:
        x, mean, std = ctx.saved_tensors
        return _pool_grad(x, mean, std, ctx.ill, grad_mean, grad_std), None


def style_pool(x: Tensor, eps: float = SRM_EPS) -> tuple[Tensor, Tensor]:
    """SRM's style pooling: per-channel mean and sqrt(unbiased var + eps), each (N, C, 1, 1)."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _StylePool.apply(x, eps)
    mean, std, _ = moments(x, eps)
    return mean.to(x.dtype), std.to(x.dtype)


def _row_dot(a: Tensor, b: Tensor, dtype: torch.dtype) -> Tensor:
    """Σ over H×W of a·b per (n, c), shape (N, C), without materialising a·b where the layout allows."""
    return (a * b).sum(dim=(2, 3), dtype=dtype)


class StyleJoin(torch.autograd.Function):
    """``identity + x·g`` with g = SRM's gate of x, for training: autograd's backward would go over
    the feature map five times (the product's two gradients, the reduction to g's shape, the
    pooling's gradient and the sum of x's two gradients); this one reads x and the incoming
    gradient for Σ grad·x and once more for x's gradient. The small gate graph (CFC, BatchNorm,
    sigmoid on (N, C)) is built as usual and differentiated by autograd inside the backward.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, identity: Tensor, block: Any, *params: Tensor) -> Tensor:
        mean, std, ill = moments(x, block.eps)
        with torch.enable_grad():
            feats = [t.to(x.dtype).flatten(1).detach().requires_grad_() for t in (mean, std)]
            gate = block.integrate(block.select(feats))
        ctx.save_for_backward(x, mean, std)
        ctx.ill, ctx.feats, ctx.gate, ctx.params = ill, feats, gate, params
        return torch.addcmul(identity, x, gate.detach()[:, :, None, None].to(x.dtype))

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, mean, std = ctx.saved_tensors
        gate = ctx.gate
        trainable = [p for p in ctx.params if p.requires_grad]
        d_gate = _row_dot(grad, x, mean.dtype).to(gate.dtype)
        # retain: the outer graph may be differentiated again (retain_graph=True, gradcheck); the gate graph is small
        grads = torch.autograd.grad(gate, [*ctx.feats, *trainable], d_gate, allow_unused=True, retain_graph=True)
        grad_x = _pool_grad(x, mean, std, ctx.ill, grads[0], grads[1])
        grad_x.addcmul_(grad, gate.detach()[:, :, None, None].to(grad.dtype))
        by_param = dict(zip(map(id, trainable), grads[2:], strict=True))
        return (grad_x, grad, None, *(by_param.get(id(p)) for p in ctx.params))


# --- inference: SRM's CFC with its BatchNorm folded in ----------------------------------------------


def fold_batch_norm(bn: nn.BatchNorm1d) -> tuple[Tensor, Tensor]:
    """An eval-mode BatchNorm as BN(z) = z·s + t: s = γ/sqrt(running var + eps), t = β − running mean·s."""
    running_mean, running_var = cast(Tensor, bn.running_mean), cast(Tensor, bn.running_var)
    scale = bn.weight * torch.rsqrt(running_var + bn.eps)
    return scale, bn.bias - running_mean * scale


class FoldCache:
    """SRM's CFC with its eval BatchNorm folded in, computed once and kept until one of the tensors changes
    (its version counter: an optimizer step, ``load_state_dict``) or moves (``.to()``)."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.value: tuple[Tensor, Tensor] | None = None

    def get(self, cfc: Tensor, bn: nn.BatchNorm1d, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
        """(weights (n_style, C, 1, 1), shift (C, 1, 1)) for ``shift + Σ_k weights[k]·feature_k``."""
        tensors = [cfc, bn.weight, bn.bias, cast(Tensor, bn.running_mean), cast(Tensor, bn.running_var)]
        key = None
        if not any(t.is_inference() for t in tensors):  # inference tensors have no version counter: no cache
            key = (dtype, device, *(t._version for t in tensors), *(t.data_ptr() for t in tensors))
        if key is None or self.value is None or key != self.key:
            scale, shift = fold_batch_norm(bn)
            weights = (cfc * scale[:, None]).t().to(device=device, dtype=dtype)[:, :, None, None].contiguous()
            self.key, self.value = key, (weights, shift.to(device=device, dtype=dtype)[:, None, None])
        return self.value
