"""Backbones that take a recalibration block by name, and :func:`build_model` to make one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from stylecls.errors import unknown_name
from stylecls.models import cifar_resnet, resnet
from stylecls.models.pretrained import LoadReport, load_pretrained

__all__ = ["ARCHS", "LoadReport", "build_model", "count_parameters"]

ARCHS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet.resnet18,
    "resnet34": resnet.resnet34,
    "resnet50": resnet.resnet50,
    "resnet101": resnet.resnet101,
    "resnet152": resnet.resnet152,
    "cifar_resnet20": cifar_resnet.cifar_resnet20,
    "cifar_resnet32": cifar_resnet.cifar_resnet32,
    "cifar_resnet44": cifar_resnet.cifar_resnet44,
    "cifar_resnet56": cifar_resnet.cifar_resnet56,
    "cifar_resnet110": cifar_resnet.cifar_resnet110,
}


def build_model(
    arch: str,
    block: str = "none",
    num_classes: int = 1000,
    pretrained: str | Path | None = None,
    **block_options: Any,
) -> nn.Module:
    """Build ``arch`` with ``block`` in every residual unit.

    ``pretrained`` is ``"imagenet"`` (torchvision's weights) or a path to a state dict; the loading
    report is kept on ``model.load_report``. ``block_options`` go to the block (e.g. SRM's
    ``pooling="mean"`` or ``integration="mlp"``, SE's ``reduction=8``).
    """
    if arch not in ARCHS:
        raise unknown_name("arch", arch, ARCHS)
    model = ARCHS[arch](num_classes=num_classes, block=block, block_options=block_options)
    report = load_pretrained(model, pretrained, arch) if pretrained else None
    model.load_report = report  # type: ignore[assignment]  # a plain attribute, not a parameter or buffer
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of learnable parameters (buffers such as BN running stats excluded)."""
    return sum(p.numel() for p in model.parameters())
