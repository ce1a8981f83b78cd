"""Normalisation layers the backbones are built with: how their BatchNorm behaves while fine-tuning.

``bn="train"`` (default): every BatchNorm2d normalises with batch statistics in training and updates
its running statistics, as usual. ``bn="frozen"`` (DomainBed's choice when fine-tuning a pretrained
ResNet): the backbone's BatchNorm2d stays in eval mode even under ``model.train()`` — it normalises
with its (pretrained) running statistics and never updates them — while its affine weight and bias
stay trainable. Only the backbone's layers are built from this: a recalibration block's own
normalisation (SRM's BatchNorm over the CFC outputs) keeps training and updating; freezing it at its
initial statistics would handicap SRM alone.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from stylecls.errors import unknown_name

__all__ = ["BN_MODES", "FrozenStatsBatchNorm2d", "norm_layer"]

BN_MODES = ("train", "frozen")

NormLayer = Callable[[int], nn.Module]


class FrozenStatsBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm2d that is always in eval mode: running statistics used and kept, affine trainable.

    Overriding :meth:`train` is what makes it survive ``model.train()`` (which calls ``train`` on
    every submodule); the state-dict keys are BatchNorm2d's, so torchvision's weights load as usual.
    """

    def train(self, mode: bool = True) -> FrozenStatsBatchNorm2d:
        return super().train(False)


def norm_layer(bn: str = "train") -> NormLayer:
    """The backbone's BatchNorm2d class for BatchNorm mode ``bn`` (:data:`BN_MODES`)."""
    if bn not in BN_MODES:
        raise unknown_name("bn mode", bn, BN_MODES)
    return FrozenStatsBatchNorm2d if bn == "frozen" else nn.BatchNorm2d
