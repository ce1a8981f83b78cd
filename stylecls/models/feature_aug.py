"""Style-based feature augmentations for domain generalisation, selected by name (:data:`FEATURE_AUGS`).

Each is a parameter-free module that backbones place after every stage but the last (ResNet stages
1-3, the CIFAR ResNets' stages 1-2, as MixStyle's paper does for ResNets); each perturbs the
per-channel statistics of its input — the style SRM pools — in training, with probability ``p`` per
batch, and is the identity in eval mode (so an image's prediction never depends on the rest of its
batch). Randomness comes from torch's global generator, which a run's checkpoint saves and restores.

- ``mixstyle`` (Zhou, Yang, Qiao, Xiang, ICLR 2021): :func:`mixstyle`.
- ``efdmix`` (Zhang, Li, Gong, Zhang, Zheng, CVPR 2022): :func:`efdmix`, exact feature distribution
  mixing of sorted values.
- ``dsu`` (Li, Dai, Ge, Liu, Shan, Duan, ICLR 2022): :func:`dsu`, statistics resampled from Gaussians.
  (The DSU paper also inserts it after the stem; here it sits where the other two do, so the three
  are compared at the same places.)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor, nn

from stylecls.errors import unknown_name

__all__ = ["DSU", "EFDMix", "FEATURE_AUGS", "MixStyle", "dsu", "efdmix", "feature_aug_factory", "feature_aug_label",
           "mixstyle", "set_domains"]


def instance_stats(x: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Per-(n, c) mean and sqrt(unbiased variance + eps) over H×W, (N, C, 1, 1), in float32 or wider."""
    wide = x if x.dtype in (torch.float32, torch.float64) else x.float()
    mean = wide.mean(dim=(2, 3), keepdim=True)
    return mean, (wide.var(dim=(2, 3), keepdim=True) + eps).sqrt()


def mixstyle(x: Tensor, lam: Tensor, perm: Tensor, eps: float = 1e-6) -> Tensor:
    """MixStyle with a given λ (N, 1, 1, 1) and partner index ``perm`` (N,): with μ, σ of each instance
    (detached), γ = λσ_i + (1−λ)σ_j, β = λμ_i + (1−λ)μ_j, out = γ·(x − μ_i)/σ_i + β."""
    mu, sig = (t.detach() for t in instance_stats(x, eps))
    lam = lam.to(mu.dtype)
    gamma = lam * sig + (1 - lam) * sig[perm]
    beta = lam * mu + (1 - lam) * mu[perm]
    return ((x - mu) / sig * gamma + beta).to(x.dtype)


def efdmix(x: Tensor, lam: Tensor, perm: Tensor) -> Tensor:
    """EFDMix with a given λ (N, 1, 1, 1) and partner ``perm`` (N,): the value of rank r in channel c of
    image i becomes λ·x_i + (1−λ)·(the value of rank r in channel c of image j); the gradient flows
    through x_i only (the paper's exact-histogram-matching with a straight-through x)."""
    n, c = x.shape[:2]
    flat = x.reshape(n, c, -1)
    values, index = torch.sort(flat, dim=-1)
    matched = values[perm].gather(-1, index.argsort(dim=-1))
    lam = lam.reshape(n, 1, 1).to(x.dtype)
    return (flat + (1 - lam) * (matched - flat.detach())).reshape(x.shape)


def dsu(x: Tensor, noise_mean: Tensor, noise_std: Tensor, eps: float = 1e-6) -> Tensor:
    """DSU with given standard-normal draws (N, C): μ' = μ + ε_μ·Σ_μ, σ' = σ + ε_σ·Σ_σ where Σ_μ, Σ_σ
    are the batch standard deviations (sqrt(unbiased var + eps)) of μ and σ per channel;
    out = σ'·(x − μ)/σ + μ'. Gradients flow through the statistics, as in the paper's code."""
    mu, sig = instance_stats(x, eps)
    spread_mu = (mu.var(dim=0, keepdim=True) + eps).sqrt()
    spread_sig = (sig.var(dim=0, keepdim=True) + eps).sqrt()
    beta = mu + noise_mean.reshape(mu.shape).to(mu.dtype) * spread_mu
    gamma = sig + noise_std.reshape(sig.shape).to(sig.dtype) * spread_sig
    return ((x - mu) / sig * gamma + beta).to(x.dtype)


class _FeatureAug(nn.Module, ABC):
    """Training only, with probability ``p`` per batch of two or more images; the identity otherwise.

    ``label``: how results name the augmentation (tables, figures, the method axis of reports)."""

    label: ClassVar[str] = ""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or x.shape[0] < 2 or torch.rand(()).item() >= self.p:
            return x
        return self.augment(x)

    @abstractmethod
    def augment(self, x: Tensor) -> Tensor:
        """The augmented batch (training, with probability ``p``)."""

    def extra_repr(self) -> str:
        return f"p={self.p}"


class _Mixing(_FeatureAug):
    """MixStyle and EFDMix: λ ~ Beta(α, α) per image, a partner image per image.

    ``mix="random"``: the partner is a random permutation of the batch. ``mix="crossdomain"``: a
    random image of another domain, from the domain ids given by :func:`set_domains` before the
    forward pass; images without one (no ids given, or a one-domain batch) get a random partner.
    """

    def __init__(self, p: float = 0.5, alpha: float = 0.1, mix: str = "random") -> None:
        super().__init__(p)
        if mix not in ("random", "crossdomain"):
            raise unknown_name("mixing", mix, ("random", "crossdomain"))
        self.alpha, self.mix = alpha, mix
        self.domains: Tensor | None = None

    def draw(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(λ, partner index), drawn from torch's global generator."""
        n = x.shape[0]
        lam = torch.distributions.Beta(self.alpha, self.alpha).sample((n, 1, 1, 1)).to(x.device)
        perm = torch.randperm(n)
        if self.mix == "crossdomain" and self.domains is not None and len(self.domains) == n:
            d = self.domains.cpu()
            scores = torch.rand(n, n).masked_fill_(d[:, None] == d[None, :], -1.0)
            best, other = scores.max(dim=1)
            perm = torch.where(best >= 0, other, perm)
        return lam, perm.to(x.device)

    def extra_repr(self) -> str:
        return f"p={self.p}, alpha={self.alpha}, mix={self.mix!r}"


class MixStyle(_Mixing):
    """MixStyle (p = 0.5, α = 0.1, the paper's defaults): :func:`mixstyle` with drawn λ and partners."""

    label = "MixStyle"

    def __init__(self, p: float = 0.5, alpha: float = 0.1, mix: str = "random", eps: float = 1e-6) -> None:
        super().__init__(p, alpha, mix)
        self.eps = eps

    def augment(self, x: Tensor) -> Tensor:
        return mixstyle(x, *self.draw(x), eps=self.eps)


class EFDMix(_Mixing):
    """EFDMix (p = 0.5, α = 0.1 as the paper's MixStyle-style setting): :func:`efdmix`."""

    label = "EFDMix"

    def augment(self, x: Tensor) -> Tensor:
        return efdmix(x, *self.draw(x))


class DSU(_FeatureAug):
    """DSU (p = 0.5): :func:`dsu` with fresh standard-normal draws per image and channel."""

    label = "DSU"

    def __init__(self, p: float = 0.5, eps: float = 1e-6) -> None:
        super().__init__(p)
        self.eps = eps

    def augment(self, x: Tensor) -> Tensor:
        shape = x.shape[:2]
        noise = torch.randn(2, *shape).to(x.device)
        return dsu(x, noise[0], noise[1], eps=self.eps)


FEATURE_AUGS: dict[str, Callable[[], nn.Module]] = {
    "none": nn.Identity,
    "mixstyle": MixStyle,
    "efdmix": EFDMix,
    "dsu": DSU,
}


def feature_aug_label(name: str) -> str:
    """How results name feature augmentation ``name``: its class's ``label``, else the name itself."""
    return getattr(FEATURE_AUGS.get(name), "label", "") or name


def feature_aug_factory(name: str = "none") -> Callable[[], nn.Module]:
    """The module factory for feature augmentation ``name`` (:data:`FEATURE_AUGS`)."""
    if name not in FEATURE_AUGS:
        raise unknown_name("feature augmentation", name, FEATURE_AUGS)
    return FEATURE_AUGS[name]


def set_domains(model: nn.Module, domains: Tensor | None) -> None:
    """Give every cross-domain mixing module of ``model`` the domain ids (N,) of the next batch."""
    for module in model.modules():
        if isinstance(module, _Mixing):
            module.domains = domains
