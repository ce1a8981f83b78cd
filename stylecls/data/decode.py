"""Decoding: a file to uint8 RGB, and the one decode-and-pre-resize function every path calls.

:func:`decode_pixels` is the whole pixel pipeline up to augmentation. The prepared cache stores its
output and the loader computes it on the fly when no cache holds a file, so which of the two served
an image never changes a pixel.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

from stylecls.data.pixels import Pixels
from stylecls.errors import StyleclsError

#: What a decoder raises for a file it cannot read (a bad file, not a bug).
DECODE_ERRORS = (RuntimeError, OSError, ValueError, Image.DecompressionBombError)


def decode(path: str) -> torch.Tensor:
    """Decode any image to uint8 RGB (3, H, W): torchvision's decoders, PIL for other formats.

    An animated image gives its first frame.
    """
    try:
        with warnings.catch_warnings():
            # torchvision 0.29 announces, on every call, that decoding moves to TorchCodec; until it does
            # these decoders are the fastest on uint8 tensors. Silenced here only, not process-wide.
            warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                                    category=DeprecationWarning)
            image = decode_image(path, mode=ImageReadMode.RGB, apply_exif_orientation=True)
    except RuntimeError as e:
        if "Unsupported image file" not in str(e):
            raise
        with Image.open(path) as im:
            image = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1).contiguous()
    if image.ndim == 4:  # an animated GIF: (frames, 3, H, W)
        image = image[0]
    if image.dtype != torch.uint8:  # 16-bit PNG
        image = F.to_dtype(image, torch.uint8, scale=True)
    return image


def pre_resize(image: torch.Tensor, pixels: Pixels) -> torch.Tensor:
    """Resize the shorter side to ``pixels.side`` (nothing for ``original``); channels-last uint8 out.

    The result is always the CHW view of a contiguous HWC array: exactly what a cache row is, so the
    augmentation that follows sees the same values *and* the same memory layout from either source.
    """
    if pixels.side is not None:
        image = F.resize(image, [pixels.side], interpolation=InterpolationMode.BILINEAR, antialias=True)
    return image.permute(1, 2, 0).contiguous().permute(2, 0, 1)


def decode_pixels(path: str, pixels: Pixels) -> torch.Tensor:
    """The pixel pipeline: decode ``path`` and pre-resize it (what a prepared cache memoises)."""
    return pre_resize(decode(path), pixels)


def reason(e: BaseException) -> str:
    """A decoder's message without its C++ source location."""
    return re.sub(r"^[\w_]+, \S+\.cpp:\d+, ", "", str(e)).strip() or type(e).__name__


def decode_pixels_or_error(path: str, pixels: Pixels) -> torch.Tensor:
    """:func:`decode_pixels`, with an undecodable file as one clear :class:`StyleclsError`."""
    try:
        return decode_pixels(path, pixels)
    except DECODE_ERRORS as e:
        raise StyleclsError(
            f"cannot decode {path}: {reason(e)}. Replace or delete the file, or train with --skip-bad "
            "to drop undecodable images (they are counted in the log)"
        ) from None
