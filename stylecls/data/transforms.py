"""Augmentation and normalisation on uint8 tensors (torchvision.transforms.v2).

Workers hand out uint8 images (4x less to copy than float); the model's side converts and
normalises whole batches with :func:`normalize`, on the GPU when there is one.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_FRACTION = 0.875  # eval: resize the shorter side to ~size / 0.875, centre crop size (224 <- 256)


def stored_size(img_size: int) -> int:
    """The eval resize, which is also the side of the square a prepared cache keeps.

    About ``img_size / 0.875`` (64 -> 72, 128 -> 148, 224 -> 256), rounded so that the margin is a
    multiple of 4: then a centre crop of the cached square lands on exactly the pixels a centre
    crop of the resized file would (torchvision rounds crop offsets half to even).
    """
    margin = img_size / CROP_FRACTION - img_size
    return img_size + 4 * max(1, int(round(margin / 4)))


def train_transform(img_size: int) -> v2.Transform:
    """The standard ImageNet training augmentation: random resized crop + horizontal flip."""
    return v2.Compose([v2.RandomResizedCrop(img_size, antialias=True), v2.RandomHorizontalFlip()])


def eval_transform(img_size: int) -> v2.Transform:
    """Resize the shorter side to ``stored_size`` and centre crop ``img_size``."""
    return v2.Compose([v2.Resize(stored_size(img_size), antialias=True), v2.CenterCrop(img_size)])


def cache_transform(img_size: int) -> v2.Transform:
    """What the prepared cache stores: the centre square of the eval resize.

    Evaluating from it is identical to :func:`eval_transform` on the file (a centre crop of a
    centre crop); training crops from that square, i.e. from all but the far ends of the long side.
    """
    side = stored_size(img_size)
    return v2.Compose([v2.Resize(side, antialias=True), v2.CenterCrop(side)])


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) on any device -> float32 normalised with the ImageNet mean and std."""
    return F.normalize(F.to_dtype(images, torch.float32, scale=True), IMAGENET_MEAN, IMAGENET_STD)
