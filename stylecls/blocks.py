"""Channel recalibration modules, selected by name through one factory (like timm's ``create_attn``).

Every module maps ``x -> x * gate(x)`` with a per-channel gate in (0, 1). Backbones place them on the
residual branch, after the last BatchNorm and before the addition, and call :func:`add_recalibrated`
so the gate multiply and the residual addition run as one fused ``addcmul``.

Blocks: ``none`` (identity), ``se`` (Squeeze-and-Excitation), ``srm`` (Style-based Recalibration,
Lee et al. ICCV 2019, with the paper's pooling/integration ablations), ``ge`` (Gather-Excite θ⁻,
parameter-free), ``eca`` (Efficient Channel Attention, adaptive kernel).
"""

from __future__ import annotations

import inspect
import math
from abc import abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from stylecls.errors import StyleclsError, unknown_name

__all__ = [
    "BLOCKS",
    "ECA",
    "GatherExcite",
    "PRESENTATION",
    "Presentation",
    "REFERENCE_BLOCK",
    "Recalibration",
    "SqueezeExcite",
    "StyleRecalibration",
    "add_recalibrated",
    "block_differences",
    "block_order",
    "create_block",
    "no_weight_decay_names",
    "presentation",
    "register_block",
    "style_pool",
]

SRM_EPS = 1e-5  # the paper's σ = sqrt(var + 1e-5)


class Recalibration(nn.Module):
    """Base class: a module defined by a per-channel gate of shape (N, C, 1, 1).

    ``no_weight_decay`` marks modules whose parameters the optimizer builder exempts from weight
    decay (SRM's CFC and its BatchNorm, as in the paper). Every gate passes through the
    ``activation`` submodule, so a forward hook on it sees the gate values (``stylecls inspect``).
    """

    no_weight_decay: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.activation = nn.Sigmoid()

    @abstractmethod
    def gate(self, x: Tensor) -> Tensor:
        """The per-channel gate, shape (N, C, 1, 1), dtype of ``x``."""

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x)

    def join(self, x: Tensor, identity: Tensor) -> Tensor:
        """``identity + self(x)`` as one ``addcmul`` pass (blocks may fuse more, see SRM)."""
        return torch.addcmul(identity, x, self.gate(x))


def add_recalibrated(block: nn.Module, x: Tensor, identity: Tensor) -> Tensor:
    """``identity + block(x)``, fused into one pass when the block is a gate (:meth:`Recalibration.join`)."""
    if isinstance(block, Recalibration):
        return block.join(x, identity)
    return block(x) + identity


def _positive_int(option: str, value: Any) -> int:
    """``value`` if it is an integer >= 1 (not a bool), else the user's error naming the option."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StyleclsError(f"block option {option} must be a positive integer, got {value!r}")
    return value


def _positive_float(option: str, value: Any) -> float:
    """``value`` as a float if it is a finite number > 0, else the user's error naming the option."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise StyleclsError(f"block option {option} must be a positive number, got {value!r}")
    return float(value)


# --- style pooling ------------------------------------------------------------------------------


def accumulation_dtype(x: Tensor) -> torch.dtype:
    """Sums over H×W run in at least float32 (bf16/fp16 inputs), and in float64 for float64 inputs."""
    return torch.promote_types(x.dtype, torch.float32)


def _moments(x: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor | None]:
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
    total = x.sum(dim=(2, 3), keepdim=True, dtype=acc)
    sq = torch.linalg.vector_norm(x, dim=(2, 3), keepdim=True, dtype=acc).square_()
    mean = total / n
    var = (sq - total * mean).clamp_min_(0) / max(n - 1, 1)
    ill = (sq > (var + eps) * (64 * n)).view(-1).nonzero().view(-1)
    if ill.numel():
        rows = _rows(x, ill).to(acc)
        var.view(-1)[ill] = (rows - rows.mean(dim=(1, 2), keepdim=True)).square_().sum(dim=(1, 2)) / max(n - 1, 1)
    return mean, var.add_(eps).sqrt_(), ill


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
        mean, std, ill = _moments(x, eps)
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
    mean, std, _ = _moments(x, eps)
    return mean.to(x.dtype), std.to(x.dtype)


def _row_dot(a: Tensor, b: Tensor, dtype: torch.dtype) -> Tensor:
    """Σ over H×W of a·b per (n, c), shape (N, C), without materialising a·b where the layout allows."""
    return (a * b).sum(dim=(2, 3), dtype=dtype)


class _StyleJoin(torch.autograd.Function):
    """``identity + x·g`` with g = SRM's gate of x, for training: autograd's backward would go over
    the feature map five times (the product's two gradients, the reduction to g's shape, the
    pooling's gradient and the sum of x's two gradients); this one reads x and the incoming
    gradient for Σ grad·x and once more for x's gradient. The small gate graph (CFC, BatchNorm,
    sigmoid on (N, C)) is built as usual and differentiated by autograd inside the backward.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, identity: Tensor, block: StyleRecalibration, *params: Tensor) -> Tensor:
        mean, std, ill = _moments(x, block.eps)
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


# --- blocks -------------------------------------------------------------------------------------


class SqueezeExcite(Recalibration):
    """Squeeze-and-Excitation (Hu et al.): global mean -> FC(C/r) -> ReLU -> FC(C) -> sigmoid."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // _positive_int("reduction", reduction))
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=True)

    def gate(self, x: Tensor) -> Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return self.activation(self.fc2(self.act(self.fc1(s))))


class StyleRecalibration(Recalibration):
    """SRM (Lee, Kim, Nam, ICCV 2019): style pooling -> style integration -> sigmoid gate.

    ``pooling``: ``"mean+std"`` (the paper), ``"mean"`` or ``"std"``.
    ``integration``: ``"cfc"`` (the paper: per-channel weights over the style features, initialised
    to 0, then BatchNorm over channels) or ``"mlp"`` (SE-style two layers on the flattened style
    vector, reduction ``reduction``). In eval mode the BatchNorm is folded into the CFC weights.
    """

    no_weight_decay = True
    POOLINGS = ("mean+std", "mean", "std")
    INTEGRATIONS = ("cfc", "mlp")

    def __init__(
        self,
        channels: int,
        pooling: str = "mean+std",
        integration: str = "cfc",
        reduction: int = 16,
        eps: float = SRM_EPS,
    ) -> None:
        super().__init__()
        if pooling not in self.POOLINGS:
            raise unknown_name("SRM pooling", pooling, self.POOLINGS)
        if integration not in self.INTEGRATIONS:
            raise unknown_name("SRM integration", integration, self.INTEGRATIONS)
        reduction = _positive_int("reduction", reduction)
        self.pooling = pooling
        self.integration = integration
        self.eps = _positive_float("eps", eps)
        n_style = 2 if pooling == "mean+std" else 1
        if integration == "cfc":
            # (C, n_style): the reference implementation's Conv1d(C, C, kernel=2, groups=C) weight, squeezed.
            self.cfc = nn.Parameter(torch.zeros(channels, n_style))
            self.bn = nn.BatchNorm1d(channels)
        else:
            hidden = max(1, channels // reduction)
            self.mlp = nn.Sequential(
                nn.Linear(n_style * channels, hidden),
                nn.ReLU(inplace=True),
                nn.Linear(hidden, channels),
            )

    def style(self, x: Tensor) -> list[Tensor]:
        """The style features [μ] / [σ] / [μ, σ], each (N, C)."""
        if self.pooling == "mean":
            return [x.mean(dim=(2, 3), dtype=accumulation_dtype(x)).to(x.dtype)]
        mean, std = style_pool(x, self.eps)
        return self.select([mean.flatten(1), std.flatten(1)])

    def select(self, mean_std: list[Tensor]) -> list[Tensor]:
        """The features this pooling uses, from [μ, σ]."""
        return {"mean+std": mean_std, "mean": mean_std[:1], "std": mean_std[1:]}[self.pooling]

    def integrate(self, feats: list[Tensor]) -> Tensor:
        """Style integration and activation: the gate (N, C) from the style features."""
        if self.integration == "mlp":
            z = self.mlp(torch.cat(feats, dim=1))
        else:
            w = self.cfc.to(feats[0].dtype)
            z = feats[0] * w[:, 0]
            if len(feats) == 2:
                z = torch.addcmul(z, feats[1], w[:, 1])
            z = self._batch_norm(z)
        return self.activation(z)

    def gate(self, x: Tensor) -> Tensor:
        return self.integrate(self.style(x))[:, :, None, None].to(x.dtype)

    def join(self, x: Tensor, identity: Tensor) -> Tensor:
        """``identity + x·gate(x)``; in training, through :class:`_StyleJoin`'s fused backward."""
        params = tuple(self.parameters())
        fused = (
            torch.is_grad_enabled()
            and self.pooling != "mean"
            and any(t.requires_grad for t in (x, identity, *params))
            and not torch.jit.is_tracing()
            and not torch.compiler.is_compiling()
        )
        if fused:
            return _StyleJoin.apply(x, identity, self, *params)
        return super().join(x, identity)

    def _batch_norm(self, z: Tensor) -> Tensor:
        if self.training or not self.bn.track_running_stats:
            return self.bn(z)
        scale, shift = self._folded_bn()
        return torch.addcmul(shift.to(z.dtype), z, scale.to(z.dtype))

    def _folded_bn(self) -> tuple[Tensor, Tensor]:
        # eval: BN(z) = z·s + t with s = γ/sqrt(var+eps), t = β - mean·s (folded into the CFC's output)
        bn = self.bn
        running_mean, running_var = cast(Tensor, bn.running_mean), cast(Tensor, bn.running_var)
        scale = bn.weight * torch.rsqrt(running_var + bn.eps)
        return scale, bn.bias - running_mean * scale

    @torch.no_grad()
    def effective_weights(self) -> Tensor:
        """CFC weights with the BatchNorm folded in, (C, n_style): how much each channel's gate
        depends on its mean and its std at inference (the paper's style-importance analysis)."""
        if self.integration != "cfc":
            raise ValueError("effective weights exist for the CFC integration only")
        scale, _ = self._folded_bn()
        return self.cfc * scale[:, None]

    def extra_repr(self) -> str:
        return f"pooling={self.pooling!r}, integration={self.integration!r}"


class GatherExcite(Recalibration):
    """Gather-Excite θ⁻ (Hu et al., NeurIPS 2018) with global extent: parameter-free, g = σ(mean(x))."""

    def __init__(self, channels: int) -> None:
        super().__init__()

    def gate(self, x: Tensor) -> Tensor:
        return self.activation(x.mean(dim=(2, 3), keepdim=True))


class ECA(Recalibration):
    """Efficient Channel Attention (Wang et al., CVPR 2020): 1-D conv across channels, adaptive k."""

    def __init__(self, channels: int, gamma: int = 2, beta: int = 1, kernel_size: int | None = None) -> None:
        super().__init__()
        gamma = _positive_int("gamma", gamma)
        if isinstance(beta, bool) or not isinstance(beta, int):
            raise StyleclsError(f"block option beta must be an integer, got {beta!r}")
        if kernel_size is None:
            t = int(abs((math.log2(channels) + beta) / gamma))
            kernel_size = t if t % 2 else t + 1
        if _positive_int("kernel_size", kernel_size) % 2 == 0:
            raise StyleclsError(f"block option kernel_size must be odd (the gate keeps C channels), got {kernel_size}")
        self.conv = nn.Conv1d(1, 1, kernel_size=kernel_size, padding=(kernel_size - 1) // 2, bias=False)

    def gate(self, x: Tensor) -> Tensor:
        s = x.mean(dim=(2, 3))  # N, C
        return self.activation(self.conv(s.unsqueeze(1))).view(x.shape[0], -1, 1, 1)


def _identity(channels: int) -> nn.Module:
    return nn.Identity()


BLOCKS: dict[str, Any] = {
    "none": _identity,
    "se": SqueezeExcite,
    "srm": StyleRecalibration,
    "ge": GatherExcite,
    "eca": ECA,
}


def _option_names(factory: Any) -> list[str]:
    """The keyword options a block factory takes (every parameter after ``channels``)."""
    params = list(inspect.signature(factory).parameters.values())[1:]
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def create_block(name: str, channels: int, **options: Any) -> nn.Module:
    """Build the recalibration module ``name`` for ``channels`` channels (see :data:`BLOCKS`).

    Option names the block does not have are refused here, by name; errors raised while building
    the block (bad values are :class:`StyleclsError`, bugs anything else) pass through unchanged.
    """
    if name not in BLOCKS:
        raise unknown_name("block", name, BLOCKS)
    accepted = _option_names(BLOCKS[name])
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        listed = ", ".join(repr(k) for k in unknown)
        takes = f"its options: {', '.join(accepted)}" if accepted else "it takes none"
        raise StyleclsError(f"block {name!r} does not take option{'s' if len(unknown) > 1 else ''} {listed}; {takes}")
    return BLOCKS[name](channels, **options)


def no_weight_decay_names(model: nn.Module) -> set[str]:
    """Names of parameters inside blocks marked ``no_weight_decay`` (SRM's CFC and BN)."""
    names: set[str] = set()
    for mod_name, module in model.named_modules():
        if getattr(module, "no_weight_decay", False):
            prefix = f"{mod_name}." if mod_name else ""
            names.update(prefix + p for p, _ in module.named_parameters())
    return names


# --- How results present a block (tables, figures, verdicts); the one place that says it ----------------------


@dataclass(frozen=True)
class Presentation:
    """How results show a block: ``label`` in tables, figures and sentences; ``rank`` orders the rows.

    A difference is always *earlier − later* in this order, so the reference (``none``, ranked last) is the
    one subtracted and a positive number means the block helps.
    """

    label: str
    rank: int = 500


#: The plain network every block is measured against; ranked last.
REFERENCE_BLOCK = "none"
PRESENTATION: dict[str, Presentation] = {
    "srm": Presentation("SRM", 0),
    "se": Presentation("SE", 10),
    "ge": Presentation("GE", 20),
    "eca": Presentation("ECA", 30),
    REFERENCE_BLOCK: Presentation("none", 1_000),
}


def register_block(name: str, factory: Any, *, label: str | None = None, rank: int = 500) -> None:
    """Add a block to :data:`BLOCKS` with how results show it (default: its name, after the presented blocks
    and before the reference); every table and figure then shows it without being told."""
    BLOCKS[name] = factory
    PRESENTATION[name] = Presentation(label or name, rank)


def presentation(name: str) -> Presentation:
    """The block's :class:`Presentation`; a name without one (an unregistered or removed block) is shown as
    itself and ranked before the reference, never after it."""
    return PRESENTATION.get(str(name)) or Presentation(str(name))


def block_order(names: Iterable[str]) -> list[str]:
    """``names`` (once each) in presentation order: by rank, then by name."""
    return sorted(set(map(str, names)), key=lambda n: (presentation(n).rank, n))


def block_differences(names: Iterable[str]) -> list[tuple[str, str]]:
    """The differences results show, each ``(first, second)`` read *first − second*: the first block in
    :func:`block_order` against every other, and every block against the reference."""
    order = block_order(names)
    pairs = [(order[0], other) for other in order[1:]]
    pairs += [(b, REFERENCE_BLOCK) for b in order[1:] if b != REFERENCE_BLOCK and REFERENCE_BLOCK in order]
    return list(dict.fromkeys(pairs))
