"""CIFAR-style ResNets (He et al. 2016, section 4.2) for 32-64 px images: 3 stages of 16/32/64 channels.

Depth 6n+2 with n basic units per stage; projection shortcuts (1x1 conv + BN) where the shape
changes. The recalibration block, the norm layer, the feature augmentation (after stages 1-2, every
stage but the last) and IBN-Net-a's first normalisation (stages 1-2) are injected as in
:mod:`stylecls.models.resnet`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from stylecls.models.ibn import ibn_factory
from stylecls.models.resnet import BasicBlock, ModuleFactory, _no_block, conv1x1, init_weights


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for small images, with ``recalibration`` in every residual unit."""

    def __init__(
        self,
        depth: int,
        num_classes: int = 10,
        recalibration: ModuleFactory = _no_block,
        norm_layer: ModuleFactory = nn.BatchNorm2d,
        feature_aug: Callable[[], nn.Module] = nn.Identity,
        ibn_stages: int = 0,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        self.norm_layer = norm_layer
        self.inplanes = 16
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = norm_layer(16)
        self.relu = nn.ReLU(inplace=True)
        ibn = ibn_factory(norm_layer)
        stages = [
            self._make_layer(planes, n, stride, recalibration, ibn if i < ibn_stages else None)
            for i, (planes, stride) in enumerate(((16, 1), (32, 2), (64, 2)))
        ]
        self.layer1, self.layer2, self.layer3 = stages
        self.feature_aug = nn.ModuleList([feature_aug() for _ in range(2)])  # parameter-free: no keys
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
        init_weights(self, zero_init_residual)

    def _make_layer(
        self, planes: int, units: int, stride: int, recalibration: ModuleFactory, first_norm: ModuleFactory | None
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride), self.norm_layer(planes))
        norms: dict[str, Any] = {"norm_layer": self.norm_layer, "first_norm": first_norm}
        layers = [BasicBlock(self.inplanes, planes, stride, downsample, recalibration, **norms)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes, recalibration=recalibration, **norms) for _ in range(1, units)]
        return nn.Sequential(*layers)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.feature_aug[0](self.layer1(x))
        x = self.layer3(self.feature_aug[1](self.layer2(x)))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.forward_features(x))


def _builder(depth: int, ibn_stages: int = 0) -> Callable[..., CifarResNet]:
    def build(**kwargs: Any) -> CifarResNet:
        return CifarResNet(depth, ibn_stages=ibn_stages, **kwargs)

    suffix = "_ibn_a" if ibn_stages else ""
    build.__name__ = f"cifar_resnet{depth}{suffix}"
    kind = "IBN-Net-a " if ibn_stages else ""
    build.__doc__ = f"CIFAR-style {kind}ResNet-{depth} with a recalibration block in every residual unit."
    return build


BUILDERS: dict[str, Callable[..., CifarResNet]] = {
    **{f"cifar_resnet{d}": _builder(d) for d in (20, 32, 44, 56, 110)},
    **{f"cifar_resnet{d}_ibn_a": _builder(d, ibn_stages=2) for d in (20, 56)},
}
cifar_resnet20, cifar_resnet32 = BUILDERS["cifar_resnet20"], BUILDERS["cifar_resnet32"]
cifar_resnet44, cifar_resnet56 = BUILDERS["cifar_resnet44"], BUILDERS["cifar_resnet56"]
cifar_resnet110 = BUILDERS["cifar_resnet110"]
