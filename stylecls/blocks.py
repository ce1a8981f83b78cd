"""Channel recalibration modules, selected by name through one factory (like timm's ``create_attn``).

Every module maps ``x -> x * gate(x)`` with a per-channel gate. Backbones place them on the residual
branch, after the last BatchNorm and before the addition, and call :func:`add_recalibrated` so the
gate multiply and the residual addition run as one fused ``addcmul``.

Blocks: ``none`` (identity), ``se`` (Squeeze-and-Excitation), ``srm`` (Style-based Recalibration,
Lee et al. ICCV 2019, with the paper's pooling/integration ablations), ``ge`` (Gather-Excite θ⁻,
parameter-free), ``eca`` (Efficient Channel Attention, adaptive kernel).

How a block starts (``block_init``): ``"paper"`` is each paper's initialisation, a sigmoid gate in
(0, 1) (SRM's zero CFC gives sigmoid(0) = 0.5 on every channel, which halves each residual branch
of a pretrained backbone); ``"identity"`` zeroes the layer before the activation and doubles the
sigmoid, a gate in (0, 2) that starts at exactly 1, so a pretrained backbone computes exactly its
own function before training.
"""

from __future__ import annotations

import inspect
import math
from abc import abstractmethod
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import Tensor, nn

from stylecls.errors import StyleclsError, unknown_name
from stylecls.style_pool import SRM_EPS, FoldCache, StyleJoin, accumulation_dtype, fold_batch_norm, moments, style_pool

__all__ = [
    "BLOCKS",
    "BLOCK_INITS",
    "ECA",
    "GatherExcite",
    "Recalibration",
    "SqueezeExcite",
    "StyleRecalibration",
    "add_recalibrated",
    "may_overwrite",
    "block_factory",
    "create_block",
    "no_weight_decay_names",
    "style_pool",
]

BLOCK_INITS = ("paper", "identity")


class DoubledSigmoid(nn.Module):
    """2·sigmoid(z): the gate of an identity-initialised block, in (0, 2) and exactly 1 at z = 0."""

    def forward(self, z: Tensor) -> Tensor:
        return 2 * torch.sigmoid(z)


class Recalibration(nn.Module):
    """Base class: a module defined by a per-channel gate of shape (N, C, 1, 1).

    ``no_weight_decay`` marks modules whose parameters the optimizer builder exempts from weight
    decay (SRM's CFC and its BatchNorm, as in the paper). Every gate passes through the
    ``activation`` submodule, so a forward hook on it sees the gate values (``stylecls inspect``).
    """

    no_weight_decay: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.activation: nn.Module = nn.Sigmoid()

    @abstractmethod
    def gate(self, x: Tensor) -> Tensor:
        """The per-channel gate, shape (N, C, 1, 1), dtype of ``x``."""

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x)

    def join(self, x: Tensor, identity: Tensor, inplace: bool = False) -> Tensor:
        """``identity + self(x)`` as one ``addcmul`` pass (blocks may fuse more, see SRM); with ``inplace``,
        written over ``x`` where :func:`may_overwrite` allows, as torchvision's ``out += identity``."""
        gate = self.gate(x)
        return torch.addcmul(identity, x, gate, out=x if inplace and may_overwrite() else None)

    def start_at_identity(self) -> None:
        """Make the gate exactly 1 for every input: a zero pre-activation through 2·sigmoid."""
        self.activation = DoubledSigmoid()
        with torch.no_grad():
            for tensor in self.preactivation():
                tensor.zero_()

    def preactivation(self) -> list[Tensor]:
        """The tensors whose zeroing makes the activation's input 0 (``block_init="identity"``)."""
        raise StyleclsError(
            f"block {type(self).__name__} has no parameters that can make its gate start at 1; "
            "use block_init 'paper' (--block-init paper)"
        )


def may_overwrite() -> bool:
    """Inference without autograd, tracing or compilation: an addition may be written over its input. On the
    CPU a new feature map costs its page faults, about as long as the addition itself; training keeps the
    out-of-place form, which autograd may need."""
    return not torch.is_grad_enabled() and not torch.jit.is_tracing() and not torch.compiler.is_compiling()


def add_recalibrated(block: nn.Module, x: Tensor, identity: Tensor, inplace: bool = False) -> Tensor:
    """``identity + block(x)``, fused into one pass when the block is a gate (:meth:`Recalibration.join`).

    ``inplace``: ``x`` is the residual branch's own output, read by no one else (a ResNet unit's last
    BatchNorm), so in inference the sum may be written over it."""
    if isinstance(block, Recalibration):
        return block.join(x, identity, inplace)
    out = block(x)
    return out.add_(identity) if inplace and may_overwrite() else out + identity


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

    def preactivation(self) -> list[Tensor]:
        return [self.fc2.weight, cast(Tensor, self.fc2.bias)]


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
        self._fold = FoldCache()  # the eval-mode CFC with its BatchNorm folded in (see _inference_gate)
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
        if self._folded_inference():
            return self._inference_gate(x)
        return self.integrate(self.style(x))[:, :, None, None].to(x.dtype)

    def preactivation(self) -> list[Tensor]:
        if self.integration == "mlp":
            last = cast(nn.Linear, self.mlp[-1])
            return [last.weight, last.bias]
        return [self.cfc, self.bn.bias]  # BN(0) = bias in training (batch statistics) and in eval (folded)

    # -- inference: the BatchNorm folded into the CFC once, not on every call -------------------------

    def _folded_inference(self) -> bool:
        """Eval mode without autograd, CFC + tracked BatchNorm, eager: the cached fold applies."""
        return (
            not self.training
            and self.integration == "cfc"
            and bool(self.bn.track_running_stats)
            and not torch.is_grad_enabled()
            and not torch.jit.is_tracing()
            and not torch.compiler.is_compiling()
        )

    def _inference_gate(self, x: Tensor) -> Tensor:
        """σ(shift + Σ_k w_k·feature_k) with the BatchNorm folded into w and shift: two reads of x for
        Σx and Σx² (:func:`~stylecls.style_pool.moments`), then a few ops on (N, C, 1, 1) tensors."""
        if self.pooling == "mean":
            feats = [x.mean(dim=(2, 3), keepdim=True, dtype=accumulation_dtype(x))]
        else:
            mean, std, _ = moments(x, self.eps)
            feats = self.select([mean, std])
        weights, shift = self._fold.get(self.cfc, self.bn, feats[0].dtype, x.device)
        z = torch.addcmul(shift, feats[0], weights[0])
        if len(feats) == 2:
            z.addcmul_(feats[1], weights[1])
        return self.activation(z).to(x.dtype)

    def join(self, x: Tensor, identity: Tensor, inplace: bool = False) -> Tensor:
        """``identity + x·gate(x)``; in training, through :class:`~stylecls.style_pool.StyleJoin`'s fused backward."""
        params = tuple(self.parameters())
        fused = (
            torch.is_grad_enabled()
            and self.pooling != "mean"
            and any(t.requires_grad for t in (x, identity, *params))
            and not torch.jit.is_tracing()
            and not torch.compiler.is_compiling()
        )
        if fused:
            return StyleJoin.apply(x, identity, self, *params)
        return super().join(x, identity, inplace)

    def _batch_norm(self, z: Tensor) -> Tensor:
        if self.training or not self.bn.track_running_stats:
            return self.bn(z)
        scale, shift = fold_batch_norm(self.bn)
        return torch.addcmul(shift.to(z.dtype), z, scale.to(z.dtype))

    @torch.no_grad()
    def effective_weights(self) -> Tensor:
        """CFC weights with the BatchNorm folded in, (C, n_style): how much each channel's gate
        depends on its mean and its std at inference (the paper's style-importance analysis)."""
        if self.integration != "cfc":
            raise ValueError("effective weights exist for the CFC integration only")
        scale, _ = fold_batch_norm(self.bn)
        return self.cfc * scale[:, None]

    def extra_repr(self) -> str:
        return f"pooling={self.pooling!r}, integration={self.integration!r}"


class GatherExcite(Recalibration):
    """Gather-Excite θ⁻ (Hu et al., NeurIPS 2018) with global extent: parameter-free, g = σ(mean(x))."""

    def __init__(self, channels: int) -> None:
        super().__init__()

    def gate(self, x: Tensor) -> Tensor:
        return self.activation(x.mean(dim=(2, 3), keepdim=True))

    def preactivation(self) -> list[Tensor]:
        raise StyleclsError(
            "block 'ge' (Gather-Excite θ⁻) has no parameters: its gate σ(mean(x)) depends on the input alone and "
            "cannot start at 1; use block_init 'paper' (--block-init paper) with it"
        )


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

    def preactivation(self) -> list[Tensor]:
        return [self.conv.weight]

    def gate(self, x: Tensor) -> Tensor:
        s = x.mean(dim=(2, 3))  # N, C
        return self.activation(self.conv(s.unsqueeze(1))).view(x.shape[0], -1, 1, 1)


def _identity(channels: int) -> nn.Module:
    return nn.Identity()


#: name -> ``factory(channels, **options)``. How results show each block (label, order, differences) lives beside
#: it in :mod:`stylecls.presentation` (:func:`~stylecls.presentation.register_block` adds both).
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


def create_block(name: str, channels: int, block_init: str = "paper", **options: Any) -> nn.Module:
    """Build the recalibration module ``name`` for ``channels`` channels (see :data:`BLOCKS`),
    started as ``block_init`` says (:data:`BLOCK_INITS`; see the module's docstring).

    Option names the block does not have are refused here, by name; errors raised while building
    the block (bad values are :class:`StyleclsError`, bugs anything else) pass through unchanged.
    """
    if name not in BLOCKS:
        raise unknown_name("block", name, BLOCKS)
    if block_init not in BLOCK_INITS:
        raise unknown_name("block init", block_init, BLOCK_INITS)
    accepted = _option_names(BLOCKS[name])
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        listed = ", ".join(repr(k) for k in unknown)
        takes = f"its options: {', '.join(accepted)}" if accepted else "it takes none"
        raise StyleclsError(f"block {name!r} does not take option{'s' if len(unknown) > 1 else ''} {listed}; {takes}")
    block = BLOCKS[name](channels, **options)
    if block_init == "identity" and isinstance(block, Recalibration):
        block.start_at_identity()
    return block


def block_factory(name: str, block_init: str = "paper", **options: Any) -> Callable[[int], nn.Module]:
    """``channels -> block`` for a backbone to call once per residual unit; a bad name, option or
    init is refused here, before any unit is built."""
    create_block(name, 64, block_init, **options)

    def build(channels: int) -> nn.Module:
        return create_block(name, channels, block_init, **options)

    return build


def no_weight_decay_names(model: nn.Module) -> set[str]:
    """Names of parameters inside blocks marked ``no_weight_decay`` (SRM's CFC and BN)."""
    names: set[str] = set()
    for mod_name, module in model.named_modules():
        if getattr(module, "no_weight_decay", False):
            prefix = f"{mod_name}." if mod_name else ""
            names.update(prefix + p for p, _ in module.named_parameters())
    return names
