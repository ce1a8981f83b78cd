"""ImageNet-style ResNets (He et al.) with a recalibration block on every residual branch.

The structure and the state-dict keys follow torchvision's ``models/resnet.py`` exactly, so
torchvision's ImageNet weights load into any block variant; the block's own parameters live under
``layerX.Y.recalibration.*`` and are the only keys torchvision's weights lack. As in torchvision,
what varies is injected as callables: the recalibration block (``channels -> module``), the norm
layer (``channels -> module``; see :mod:`stylecls.models.norms`), the feature augmentation after
stages 1-3 (``() -> module``; :mod:`stylecls.models.feature_aug`), and for IBN-Net-a the
normalisation after each unit's first convolution in stages 1-3 (:mod:`stylecls.models.ibn`).
A *unit* is one residual unit (BasicBlock / Bottleneck); a *block* is the recalibration module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from stylecls.blocks import add_recalibrated
from stylecls.models.ibn import ibn_factory

ModuleFactory = Callable[[int], nn.Module]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


def _no_block(channels: int) -> nn.Module:
    return nn.Identity()


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
        recalibration: ModuleFactory = _no_block, norm_layer: ModuleFactory = nn.BatchNorm2d,
        first_norm: ModuleFactory | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = (first_norm or norm_layer)(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.recalibration = recalibration(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(add_recalibrated(self.recalibration, out, identity, inplace=True))


class Bottleneck(nn.Module):
    # torchvision's ResNet V1.5: the stride sits on the 3x3 convolution.
    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
        recalibration: ModuleFactory = _no_block, norm_layer: ModuleFactory = nn.BatchNorm2d,
        first_norm: ModuleFactory | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = (first_norm or norm_layer)(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = norm_layer(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.recalibration = recalibration(planes * self.expansion)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(add_recalibrated(self.recalibration, out, identity, inplace=True))


Unit = type[BasicBlock | Bottleneck]


class ResNet(nn.Module):
    """torchvision's ResNet with ``recalibration`` in every unit (see the module docstring).

    ``units`` is the number of residual units per stage (torchvision calls it ``layers``);
    ``ibn_stages`` the number of leading stages whose units use IBN-Net-a's first normalisation.
    """

    def __init__(
        self,
        unit: Unit,
        units: list[int],
        num_classes: int = 1000,
        recalibration: ModuleFactory = _no_block,
        norm_layer: ModuleFactory = nn.BatchNorm2d,
        feature_aug: Callable[[], nn.Module] = nn.Identity,
        ibn_stages: int = 0,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        self.inplanes = 64
        self.norm_layer = norm_layer
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        ibn = ibn_factory(norm_layer)
        stages = [
            self._make_layer(unit, planes, count, stride, recalibration, ibn if i < ibn_stages else None)
            for i, (planes, count, stride) in enumerate(zip((64, 128, 256, 512), units, (1, 2, 2, 2), strict=True))
        ]
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        # after stages 1-3; parameter-free, so no state-dict keys
        self.feature_aug = nn.ModuleList([feature_aug() for _ in range(3)])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * unit.expansion, num_classes)
        init_weights(self, zero_init_residual)

    def _make_layer(
        self, unit: Unit, planes: int, units: int, stride: int, recalibration: ModuleFactory,
        first_norm: ModuleFactory | None,
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * unit.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * unit.expansion, stride),
                self.norm_layer(planes * unit.expansion),
            )
        norms: dict[str, Any] = {"norm_layer": self.norm_layer, "first_norm": first_norm}
        layers = [unit(self.inplanes, planes, stride, downsample, recalibration, **norms)]
        self.inplanes = planes * unit.expansion
        layers += [unit(self.inplanes, planes, recalibration=recalibration, **norms) for _ in range(1, units)]
        return nn.Sequential(*layers)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.feature_aug[0](self.layer1(x))
        x = self.feature_aug[1](self.layer2(x))
        x = self.layer4(self.feature_aug[2](self.layer3(x)))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.forward_features(x))


def init_weights(model: nn.Module, zero_init_residual: bool = False) -> None:
    """torchvision's initialisation; recalibration blocks keep their own (SRM's CFC starts at 0)."""
    for name, m in model.named_modules():
        if ".recalibration" in name:
            continue
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, Bottleneck):
                nn.init.constant_(m.bn3.weight, 0)  # type: ignore[arg-type]
            elif isinstance(m, BasicBlock):
                nn.init.constant_(m.bn2.weight, 0)  # type: ignore[arg-type]


#: arch -> (unit, units per stage, IBN-Net-a stages)
DEPTHS: dict[str, tuple[Unit, list[int], int]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2], 0),
    "resnet34": (BasicBlock, [3, 4, 6, 3], 0),
    "resnet50": (Bottleneck, [3, 4, 6, 3], 0),
    "resnet101": (Bottleneck, [3, 4, 23, 3], 0),
    "resnet152": (Bottleneck, [3, 8, 36, 3], 0),
    "resnet18_ibn_a": (BasicBlock, [2, 2, 2, 2], 3),
    "resnet34_ibn_a": (BasicBlock, [3, 4, 6, 3], 3),
    "resnet50_ibn_a": (Bottleneck, [3, 4, 6, 3], 3),
    "resnet101_ibn_a": (Bottleneck, [3, 4, 23, 3], 3),
}


def _builder(arch: str) -> Callable[..., ResNet]:
    unit, units, ibn_stages = DEPTHS[arch]

    def build(**kwargs: Any) -> ResNet:
        return ResNet(unit, units, ibn_stages=ibn_stages, **kwargs)

    build.__name__ = arch
    kind = "IBN-Net-a" if ibn_stages else "ImageNet-style"
    build.__doc__ = f"{arch} ({kind}) with a recalibration block in every residual unit."
    return build


BUILDERS: dict[str, Callable[..., ResNet]] = {arch: _builder(arch) for arch in DEPTHS}
resnet18, resnet34, resnet50 = BUILDERS["resnet18"], BUILDERS["resnet34"], BUILDERS["resnet50"]
resnet101, resnet152 = BUILDERS["resnet101"], BUILDERS["resnet152"]
