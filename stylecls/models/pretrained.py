"""Load torchvision ImageNet weights (or any compatible state dict) into a stylecls backbone.

Our ResNets keep torchvision's keys, so a plain ResNet's weights fill every layer of an SE/SRM
variant; the recalibration parameters stay at their initialisation and are reported as new. A
classifier head of another size is left at its initialisation and reported too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from stylecls.errors import StyleclsError
from stylecls.models.ibn import split_ibn


@dataclass
class LoadReport:
    """What loading weights did: keys taken, keys new to this model, head keys re-initialised."""

    loaded: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    reinitialised: list[str] = field(default_factory=list)
    source: str = ""

    def summary(self) -> str:
        parts = [f"loaded {len(self.loaded)} tensors from {self.source}"]
        if self.new:
            units = sorted({k.split(".recalibration.")[0] for k in self.new if ".recalibration." in k})
            others = [k for k in self.new if ".recalibration." not in k]
            if units:
                parts.append(f"{len(self.new) - len(others)} new recalibration tensors in {len(units)} units")
            if others:
                parts.append(f"new: {', '.join(others)}")
        if self.reinitialised:
            parts.append(f"re-initialised (shape differs): {', '.join(self.reinitialised)}")
        return "; ".join(parts)


def torchvision_arch(arch: str) -> str:
    """The torchvision model whose ImageNet weights fit ``arch`` (IBN-Net-a variants: the plain ResNet's)."""
    return split_ibn(arch)[0]


def imagenet_state_dict(arch: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights for ``arch`` (downloads through torchvision's cache)."""
    from torchvision.models import get_model_weights

    if arch.startswith("cifar_"):
        raise StyleclsError(f"there are no ImageNet weights for the CIFAR-style {arch}; pass a local weights file")
    arch = torchvision_arch(arch)
    try:
        weights = get_model_weights(arch).DEFAULT
    except ValueError:
        raise StyleclsError(f"torchvision has no ImageNet weights for {arch!r}; pass a local weights file") from None
    try:
        return weights.get_state_dict(progress=True)
    except Exception as e:  # noqa: BLE001 - no network, proxy, corrupt download
        raise StyleclsError(
            f"cannot fetch torchvision's ImageNet weights for {arch} ({type(e).__name__}: {e}); "
            f"download {weights.url} elsewhere and pass the file: --pretrained PATH"
        ) from None


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a file: a raw state dict, or a stylecls checkpoint (its ``model`` entry)."""
    path = Path(path)
    if path.is_dir():
        raise StyleclsError(f"pretrained weights {path} is a folder; pass the weights file (.pth / .pt)")
    if not path.is_file():
        raise StyleclsError(f"pretrained weights not found: {path}")
    with open(path, "rb") as f:
        start = f.read(4)
    # torch.save writes a zip archive (or, before PyTorch 1.6, a pickle: protocol byte 0x80)
    if start != b"PK\x03\x04" and start[:1] != b"\x80":
        raise StyleclsError(
            f"{path} is not a PyTorch weights file (a state dict saved with torch.save, or a stylecls checkpoint)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise StyleclsError(
                f"{path} holds Python objects besides tensors (a whole pickled model?); stylecls loads tensors "
                "only: save model.state_dict() and pass that file"
            ) from None
        raise StyleclsError(f"{path} is damaged or not a PyTorch weights file ({type(e).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise StyleclsError(f"{path} does not hold a state dict of tensors")
    # checkpoints saved from DistributedDataParallel or torch.compile wrap the keys
    for prefix in ("module.", "_orig_mod."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def load_pretrained(model: nn.Module, weights: str | Path, arch: str) -> LoadReport:
    """Copy ``weights`` ("imagenet" or a file) into ``model``; mismatched bodies are an error.

    Modules that store a plain layer's weights under other keys (IBN-Net-a's split normalisation)
    rewrite them first, through their ``adapt_state_dict(state, prefix)``.
    """
    if str(weights) == "imagenet":
        state, source = imagenet_state_dict(arch), f"torchvision ImageNet weights ({torchvision_arch(arch)})"
    else:
        state, source = read_state_dict(weights), str(weights)
    state = dict(state)
    for name, module in model.named_modules():
        adapt = getattr(module, "adapt_state_dict", None)
        if callable(adapt):
            adapt(state, f"{name}." if name else "")
    own = model.state_dict()
    report = LoadReport(source=source)
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in state if k in own and own[k].shape != state[k].shape]
    head = {k for k in mismatched if k.startswith("fc.")}
    body = [k for k in mismatched if k not in head]
    if unexpected or body:
        details = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in body[:5]]
        details += [f"{k}: not in the model" for k in unexpected[:5]]
        raise StyleclsError(
            f"weights in {source} do not fit {arch} ({len(body)} shape mismatches, {len(unexpected)} unknown keys): "
            + "; ".join(details)
        )
    usable = {k: v for k, v in state.items() if k not in head}
    model.load_state_dict(usable, strict=False)
    report.loaded = sorted(usable)
    report.reinitialised = sorted(head)
    report.new = sorted(k for k in own if k not in state and not k.endswith("num_batches_tracked"))
    return report
