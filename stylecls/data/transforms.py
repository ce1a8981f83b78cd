"""Augmentation and normalisation on uint8 tensors (torchvision.transforms.v2).

Workers hand out uint8 images (4x less to copy than float); the model's side converts and
normalises whole batches with :func:`normalize`, on the GPU when there is one.
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from stylecls.data.pixels import Pixels

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RandomResizedCrop(v2.RandomResizedCrop):
    """``v2.RandomResizedCrop`` that packs a uint8 CPU crop channels-last before resizing.

    torch's antialiased bilinear uint8 kernel works on channels-last data; handed a strided crop
    view it repacks input and output, which makes it ~2x slower. Same parameters, same pixels.
    """

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if type(inpt) is torch.Tensor and inpt.dtype == torch.uint8 and inpt.ndim == 3 and not inpt.is_cuda:
            top, left, height, width = params["top"], params["left"], params["height"], params["width"]
            crop = inpt[:, top : top + height, left : left + width].permute(1, 2, 0).contiguous().permute(2, 0, 1)
            return F.resize(crop, self.size, interpolation=self.interpolation, antialias=self.antialias)
        return super().transform(inpt, params)


def train_transform(img_size: int, min_crop: float = 0.08) -> v2.Transform:
    """The standard ImageNet training augmentation: random resized crop + horizontal flip.

    ``min_crop`` is the smallest crop's fraction of the image area (torchvision's default 0.08);
    small, low-resolution images want gentler crops.
    """
    return v2.Compose([RandomResizedCrop(img_size, scale=(min_crop, 1.0), antialias=True), v2.RandomHorizontalFlip()])


def eval_transform(pixels: Pixels) -> v2.Transform:
    """Resize the shorter side to ``pixels.eval_side`` and centre crop ``img_size``.

    On a pre-resized image (the default rule) the resize is the identity (torchvision returns the
    input when the size already matches), so evaluation is a centre crop of the pre-resized pixels.
    """
    return v2.Compose([v2.Resize(pixels.eval_side, antialias=True), v2.CenterCrop(pixels.img_size)])


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) on any device -> float32 normalised with the ImageNet mean and std."""
    return F.normalize(F.to_dtype(images, torch.float32, scale=True), IMAGENET_MEAN, IMAGENET_STD)
