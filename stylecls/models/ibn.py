"""IBN-Net-a (Pan, Luo, Shi, Tang, ECCV 2018): instance and batch normalisation in one layer.

In IBN-Net-a the BatchNorm after the first convolution of every residual unit in the early stages
(ResNet stages 1-3, not the last) is replaced by :class:`IBN`: an affine InstanceNorm on the first
half of the channels, the usual BatchNorm on the other half. Instance normalisation removes each
image's per-channel mean and standard deviation — its style — from half of the early features.

The module's keys (``bn1.IN.*``, ``bn1.BN.*``) are those of the IBN-Net authors' code, so their
released weights load; a plain network's ``bn1.*`` (torchvision's weights) loads too, split by
:meth:`IBN.adapt_state_dict`: the BatchNorm half takes its channels' statistics and affine
parameters, the InstanceNorm half starts from its channels' affine parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["IBN", "IBN_LABEL", "IBN_SUFFIX", "ibn_factory", "split_ibn"]

#: An IBN-Net-a backbone is its plain ResNet's name plus this suffix (``resnet18_ibn_a``).
IBN_SUFFIX = "_ibn_a"
#: How results name it (the method axis of reports).
IBN_LABEL = "IBN-Net-a"


def split_ibn(arch: str) -> tuple[str, bool]:
    """(the plain backbone, whether ``arch`` is its IBN-Net-a variant): ``resnet18_ibn_a`` -> (resnet18, True)."""
    return (arch.removesuffix(IBN_SUFFIX), True) if arch.endswith(IBN_SUFFIX) else (arch, False)

_BN_KEYS = ("weight", "bias", "running_mean", "running_var")


class IBN(nn.Module):
    """InstanceNorm2d (affine) on the first ``ratio`` of the channels, BatchNorm2d on the rest."""

    def __init__(
        self, planes: int, ratio: float = 0.5, norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d
    ) -> None:
        super().__init__()
        self.in_channels = int(planes * ratio)
        self.IN = nn.InstanceNorm2d(self.in_channels, affine=True)
        self.BN = norm_layer(planes - self.in_channels)
        self._register_load_state_dict_pre_hook(self._split_flat_keys)

    def forward(self, x: Tensor) -> Tensor:
        first, rest = torch.split(x, [self.in_channels, x.shape[1] - self.in_channels], dim=1)
        return torch.cat((self.IN(first.contiguous()), self.BN(rest.contiguous())), dim=1)

    def adapt_state_dict(self, state: dict[str, Tensor], prefix: str) -> None:
        """Rewrite a plain BatchNorm's keys ``prefix + weight`` ... in ``state`` into this module's keys."""
        if prefix + "weight" not in state or prefix + "IN.weight" in state:
            return
        flat = {k: state.pop(prefix + k) for k in (*_BN_KEYS, "num_batches_tracked") if prefix + k in state}
        for key in ("weight", "bias"):
            if key in flat:
                state[f"{prefix}IN.{key}"] = flat[key][: self.in_channels].clone()
        for key, value in flat.items():
            state[f"{prefix}BN.{key}"] = value if key == "num_batches_tracked" else value[self.in_channels :].clone()

    def _split_flat_keys(self, state: dict[str, Any], prefix: str, *args: Any) -> None:
        self.adapt_state_dict(state, prefix)


def ibn_factory(norm_layer: Callable[[int], nn.Module]) -> Callable[[int], nn.Module]:
    """``planes -> IBN`` whose BatchNorm half is built by ``norm_layer`` (so ``bn="frozen"`` reaches it)."""

    def build(planes: int) -> nn.Module:
        return IBN(planes, norm_layer=norm_layer)

    return build
