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


def check_pixel_count(path: str) -> None:
    """Refuse an image with more pixels than Pillow's ``Image.MAX_IMAGE_PIXELS`` before decoding it.

    torchvision's decoders have no decompression-bomb check: a 20000x20000 PNG of a few kB would
    allocate 1.2 GB. The header alone (read by PIL, lazily) gives the size; files PIL cannot identify
    are left to the decoder. Raise the limit as for Pillow: ``PIL.Image.MAX_IMAGE_PIXELS = N``.
    """
    limit = Image.MAX_IMAGE_PIXELS
    if limit is None:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
        size = f"{width}x{height} = {width * height:,} pixels"
        too_large = width * height > limit
    except Image.DecompressionBombError:  # more than twice the limit: Pillow refuses to open it at all
        size, too_large = f"more than {2 * limit:,} pixels", True
    except (OSError, ValueError, SyntaxError):
        return  # not a format PIL reads (or not an image): the decoder says why
    if too_large:
        raise Image.DecompressionBombError(
            f"the image is too large to decode safely ({size}; the limit is {limit:,}, Pillow's "
            "MAX_IMAGE_PIXELS); downscale it first"
        )


def decode(path: str) -> torch.Tensor:
    """Decode any image to uint8 RGB (3, H, W): torchvision's decoders, PIL for other formats.

    An animated image gives its first frame; an image above the pixel limit is refused
    (:func:`check_pixel_count`).
    """
    check_pixel_count(path)
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
