"""The style tests' perturbations as pure functions of tensors (no model, no files).

Images are (N, C, H, W); feature maps too. Pixel perturbations take and give float images in the
uint8 range (:func:`to_uint8` rounds them back, so a perturbed image goes through the run's
normalisation exactly as a decoded file does).

- :func:`amplitude_phase`: the Fourier phase of one image with the amplitude of another, per channel
  (Chen et al., "Amplitude-Phase Recombination", ICCV 2021); ``beta`` < 1 swaps only the centred
  low-frequency square of half-size β·min(H, W), as FDA does (Yang & Soatto, CVPR 2020).
- :func:`adain`: a feature map with another's channel mean and standard deviation (Huang & Belongie,
  ICCV 2017), ``alpha`` interpolating the statistics.
- :func:`match_histograms`: per-channel histogram matching (the algorithm of scikit-image's
  ``match_histograms``, on uint8), :func:`greyscale`, and :func:`blend` for a strength between 0 and 1.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torchvision.transforms.v2 import functional as F

__all__ = [
    "adain", "amplitude_phase", "blend", "channel_stats", "greyscale", "low_band", "match_histograms", "to_uint8",
]  # fmt: skip

EPS = 1e-5


def low_band(height: int, width: int, beta: float, device: torch.device | str = "cpu") -> Tensor:
    """Boolean (H, W) mask, in ``torch.fft.fft2``'s layout, of the frequencies with |k_y| and |k_x| < β·min(H, W).

    Symmetric under k -> -k, so a swapped spectrum stays that of a real image; β = 0 is empty, β = 1 is all.
    """
    half = beta * min(height, width)
    ky = torch.fft.fftfreq(height, 1 / height, device=device).abs()
    kx = torch.fft.fftfreq(width, 1 / width, device=device).abs()
    return (ky[:, None] < half) & (kx[None, :] < half)


def amplitude_phase(content: Tensor, style: Tensor, beta: float = 1.0) -> Tensor:
    """``content``'s phase with ``style``'s amplitude in the low band ``beta`` (see :func:`low_band`), per channel.

    Computed in float64 so that recombining an image with its own amplitude returns it (to ~1e-12);
    the result is float32 and not clipped (see :func:`to_uint8`).
    """
    if content.shape != style.shape:
        raise ValueError(f"content {tuple(content.shape)} and style {tuple(style.shape)} differ in shape")
    band = low_band(content.shape[-2], content.shape[-1], beta, content.device)
    if not bool(band.any()):
        return content.float().clone()
    fc = torch.fft.fft2(content.double())
    amplitude = torch.where(band, torch.fft.fft2(style.double()).abs(), fc.abs())
    return torch.fft.ifft2(torch.polar(amplitude, fc.angle())).real.float()


def channel_stats(x: Tensor, eps: float = EPS) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel mean and standard deviation over H×W, shaped (N, C, 1, 1).

    σ = sqrt(var + eps) with the population variance, so a 1×1 map has σ = sqrt(eps), not NaN.
    """
    var, mean = torch.var_mean(x, dim=(-2, -1), keepdim=True, correction=0)
    return mean, (var + eps).sqrt()


def adain(x: Tensor, mean: Tensor, std: Tensor, alpha: float = 1.0, eps: float = EPS) -> Tensor:
    """AdaIN of ``x`` towards the statistics (``mean``, ``std``), interpolated: α = 0 keeps x's own, 1 takes them.

    σ_t·(x − μ_x)/σ_x + μ_t with μ_t = (1−α)μ_x + αμ, σ_t = (1−α)σ_x + ασ. With its own statistics it is the
    identity up to rounding.
    """
    own_mean, own_std = channel_stats(x, eps)
    target_mean = torch.lerp(own_mean, mean.to(x.dtype), alpha)
    target_std = torch.lerp(own_std, std.to(x.dtype), alpha)
    return target_std * (x - own_mean) / own_std + target_mean


def to_uint8(x: Tensor) -> Tensor:
    """Round and clip a float image in the uint8 range to uint8 (what saving it as a file would give)."""
    return x.round().clamp(0, 255).to(torch.uint8)


def greyscale(images: Tensor) -> Tensor:
    """uint8 RGB (N, 3, H, W) -> the same images in grey (ITU-R 601 luma), still three channels."""
    return F.rgb_to_grayscale(images, num_output_channels=3)


def _match_channel(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """scikit-image's cumulative-histogram matching of one uint8 channel: each value goes to the reference
    value at the same quantile (linear interpolation between the reference's values)."""
    src_counts = np.bincount(source.ravel(), minlength=256)
    ref_counts = np.bincount(reference.ravel(), minlength=256)
    ref_values = np.nonzero(ref_counts)[0]
    src_quantiles = np.cumsum(src_counts) / source.size
    ref_quantiles = np.cumsum(ref_counts[ref_values]) / reference.size
    lookup = np.interp(src_quantiles, ref_quantiles, ref_values)
    return lookup[source]


def match_histograms(images: Tensor, references: Tensor) -> Tensor:
    """uint8 (N, C, H, W): each image's channels given the histogram of the matching reference's channels."""
    if images.dtype != torch.uint8 or references.dtype != torch.uint8:
        raise ValueError("match_histograms takes uint8 images")
    if images.shape[:2] != references.shape[:2]:
        raise ValueError(f"images {tuple(images.shape)} and references {tuple(references.shape)} do not pair up")
    src, ref = images.cpu().numpy(), references.cpu().numpy()
    out = np.empty(src.shape, dtype=np.float64)
    for n in range(src.shape[0]):
        for c in range(src.shape[1]):
            out[n, c] = _match_channel(src[n, c], ref[n, c])
    return to_uint8(torch.from_numpy(out)).to(images.device)


def blend(clean: Tensor, shifted: Tensor, strength: float) -> Tensor:
    """uint8 images ``(1−s)·clean + s·shifted``; s = 0 returns ``clean`` itself."""
    if strength == 0:
        return clean
    return to_uint8(torch.lerp(clean.float(), shifted.float(), float(strength)))
