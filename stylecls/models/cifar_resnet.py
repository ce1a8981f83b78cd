"""CIFAR-style ResNets (He et al. 2016, section 4.2) for 32-64 px images: 3 stages of 16/32/64 channels.

Depth 6n+2 with n basic units per stage; projection shortcuts (1x1 conv + BN) where the shape
changes. The recalibration block sits where it does in :mod:`stylecls.models.resnet`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from stylecls.blocks import create_block
from stylecls.models.resnet import BasicBlock, conv1x1, init_weights


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for small images, with ``block`` in every residual unit."""

    def __init__(
        self,
        depth: int,
        num_classes: int = 10,
        block: str = "none",
        block_options: dict[str, Any] | None = None,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        options = dict(block_options or {})
        create_block(block, 16, **options)  # fail fast on a bad name or option

        def recalibration(channels: int) -> nn.Module:
            return create_block(block, channels, **options)

        self.inplanes = 16
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(16, n, 1, recalibration)
        self.layer2 = self._make_layer(32, n, 2, recalibration)
        self.layer3 = self._make_layer(64, n, 2, recalibration)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
        init_weights(self, zero_init_residual)

    def _make_layer(
        self, planes: int, blocks: int, stride: int, recalibration: Callable[[int], nn.Module]
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample, recalibration)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes, recalibration=recalibration) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.forward_features(x))


def _builder(depth: int) -> Callable[..., CifarResNet]:
    def build(**kwargs: Any) -> CifarResNet:
        return CifarResNet(depth, **kwargs)

    build.__name__ = f"cifar_resnet{depth}"
    build.__doc__ = f"CIFAR-style ResNet-{depth} with a recalibration block in every residual unit."
    return build


cifar_resnet20 = _builder(20)
cifar_resnet32 = _builder(32)
cifar_resnet44 = _builder(44)
cifar_resnet56 = _builder(56)
cifar_resnet110 = _builder(110)
