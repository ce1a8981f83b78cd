"""Backbones that take a recalibration block by name, and :func:`build_model` to make one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from stylecls.blocks import block_factory
from stylecls.errors import unknown_name
from stylecls.models import cifar_resnet, resnet
from stylecls.models.feature_aug import FEATURE_AUGS, feature_aug_factory
from stylecls.models.norms import BN_MODES, norm_layer
from stylecls.models.pretrained import LoadReport, load_pretrained

__all__ = ["ARCHS", "BN_MODES", "FEATURE_AUGS", "LoadReport", "build_model", "build_model_for_spec", "count_parameters"]

ARCHS: dict[str, Callable[..., nn.Module]] = {**resnet.BUILDERS, **cifar_resnet.BUILDERS}


def build_model(
    arch: str,
    block: str = "none",
    num_classes: int = 1000,
    pretrained: str | Path | None = None,
    *,
    block_init: str = "paper",
    bn: str = "train",
    feature_aug: str = "none",
    **block_options: Any,
) -> nn.Module:
    """Build ``arch`` with ``block`` in every residual unit.

    ``pretrained`` is ``"imagenet"`` (torchvision's weights) or a path to a state dict; the loading
    report is kept on ``model.load_report``. ``block_init`` is how the blocks start (``"paper"`` or
    ``"identity"``: gates exactly 1, so a pretrained backbone keeps its function; see
    :mod:`stylecls.blocks`), ``bn`` the backbone's BatchNorm mode while training (``"train"`` or
    ``"frozen"``; :mod:`stylecls.models.norms`), ``feature_aug`` a style augmentation after the early
    stages (:data:`FEATURE_AUGS`). ``block_options`` go to the block (e.g. SRM's ``pooling="mean"``
    or ``integration="mlp"``, SE's ``reduction=8``).
    """
    if arch not in ARCHS:
        raise unknown_name("arch", arch, ARCHS)
    model = ARCHS[arch](
        num_classes=num_classes,
        recalibration=block_factory(block, block_init, **block_options),
        norm_layer=norm_layer(bn),
        feature_aug=feature_aug_factory(feature_aug),
    )
    report = load_pretrained(model, pretrained, arch) if pretrained else None
    model.load_report = report  # type: ignore[assignment]  # a plain attribute, not a parameter or buffer
    return model


def build_model_for_spec(spec: Any, num_classes: int, pretrained: str | Path | None = None) -> nn.Module:
    """The model a run spec (:class:`~stylecls.spec.RunSpec`) describes: every model setting it holds
    (arch, block, block options, block_init, bn, feature_aug) in one place, for training and for rebuilding
    a run's model from its folder (``pretrained`` only when training starts)."""
    return build_model(
        str(spec.arch), spec.block, num_classes, pretrained,
        block_init=getattr(spec, "block_init", "paper"), bn=getattr(spec, "bn", "train"),
        feature_aug=getattr(spec, "feature_aug", "none"), **dict(spec.block_options),
    )  # fmt: skip


def count_parameters(model: nn.Module) -> int:
    """Number of learnable parameters (buffers such as BN running stats excluded)."""
    return sum(p.numel() for p in model.parameters())
