"""ImageNet-style ResNets (He et al.) with a recalibration block on every residual branch.

The structure and the state-dict keys follow torchvision's ``models/resnet.py`` exactly, so
torchvision's ImageNet weights load into any block variant; the block's own parameters live under
``layerX.Y.recalibration.*`` and are the only keys torchvision's weights lack.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from stylecls.blocks import add_recalibrated, create_block


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


BlockFactory = Callable[[int], nn.Module]


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
        recalibration: BlockFactory = nn.Identity,
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.recalibration = recalibration(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(add_recalibrated(self.recalibration, out, identity))


class Bottleneck(nn.Module):
    # torchvision's ResNet V1.5: the stride sits on the 3x3 convolution.
    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
        recalibration: BlockFactory = nn.Identity,
    ) -> None:
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.recalibration = recalibration(planes * self.expansion)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(add_recalibrated(self.recalibration, out, identity))


class ResNet(nn.Module):
    """torchvision's ResNet with ``block`` (a name from :data:`stylecls.blocks.BLOCKS`) in every unit."""

    def __init__(
        self,
        unit: type[BasicBlock | Bottleneck],
        layers: list[int],
        num_classes: int = 1000,
        block: str = "none",
        block_options: dict[str, Any] | None = None,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        options = dict(block_options or {})
        create_block(block, 64, **options)  # fail fast on a bad name or option

        def recalibration(channels: int) -> nn.Module:
            return create_block(block, channels, **options)

        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(unit, 64, layers[0], 1, recalibration)
        self.layer2 = self._make_layer(unit, 128, layers[1], 2, recalibration)
        self.layer3 = self._make_layer(unit, 256, layers[2], 2, recalibration)
        self.layer4 = self._make_layer(unit, 512, layers[3], 2, recalibration)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * unit.expansion, num_classes)
        init_weights(self, zero_init_residual)

    def _make_layer(
        self, unit: type[BasicBlock | Bottleneck], planes: int, blocks: int, stride: int, recalibration: BlockFactory
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * unit.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * unit.expansion, stride),
                nn.BatchNorm2d(planes * unit.expansion),
            )
        layers = [unit(self.inplanes, planes, stride, downsample, recalibration)]
        self.inplanes = planes * unit.expansion
        layers += [unit(self.inplanes, planes, recalibration=recalibration) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
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
                nn.init.constant_(m.bn3.weight, 0)
            elif isinstance(m, BasicBlock):
                nn.init.constant_(m.bn2.weight, 0)


_DEPTHS: dict[str, tuple[type[BasicBlock | Bottleneck], list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
    "resnet152": (Bottleneck, [3, 8, 36, 3]),
}


def _builder(arch: str) -> Callable[..., ResNet]:
    unit, layers = _DEPTHS[arch]

    def build(**kwargs: Any) -> ResNet:
        return ResNet(unit, layers, **kwargs)

    build.__name__ = arch
    build.__doc__ = f"{arch} (ImageNet-style) with a recalibration block in every residual unit."
    return build


resnet18 = _builder("resnet18")
resnet34 = _builder("resnet34")
resnet50 = _builder("resnet50")
resnet101 = _builder("resnet101")
resnet152 = _builder("resnet152")
