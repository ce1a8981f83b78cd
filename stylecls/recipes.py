"""Per-dataset training defaults ("recipes"): what ``stylecls train --dataset X`` uses unless told otherwise.

A recipe only fills settings the user left unset, so every value here can be overridden by a flag
(or a :class:`~stylecls.train.TrainConfig` field). The learning rates follow the linear scaling rule
(0.1 per 256 images for SGD from scratch, He et al. / Goyal et al.); the epochs are what trains each
dataset to a useful accuracy from scratch. The demo recipe is sized so that the quick start finishes
in a couple of minutes on a 2-core CPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Recipe:
    arch: str
    img_size: int
    epochs: int
    batch_size: int
    lr: float  # SGD learning rate; AdamW uses ``adamw_lr``
    weight_decay: float
    warmup_epochs: int
    label_smoothing: float
    schedule: str = "cosine"
    min_crop: float = 0.08  # RandomResizedCrop's smallest area fraction (torchvision's default 0.08)
    pre_resize: str = "1.125x"  # decode-time resize before augmentation (stylecls.data.pixels)
    optimizer: str = "sgd"
    adamw_lr: float = 1e-3
    adamw_weight_decay: float = 0.05

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ImageNet-style backbones from scratch on a few thousand images: long schedules, smoothing.
_IMAGENET_SIZED = Recipe(
    arch="resnet50", img_size=224, epochs=90, batch_size=64, lr=0.025, weight_decay=1e-4,
    warmup_epochs=5, label_smoothing=0.1,
)  # fmt: skip

RECIPES: dict[str, Recipe] = {
    # 2,400 procedurally generated 64 px textures; CIFAR ResNet-20 at 32 px trains in ~1-2 min on 2 cores.
    # Crops below a third of the image lose the texture's frequency, which is what tells classes apart;
    # so does shrinking the 64 px images to 36 before cropping: the demo crops from the full 64 px.
    "demo": Recipe(
        arch="cifar_resnet20", img_size=32, epochs=10, batch_size=64, lr=0.1, weight_decay=5e-4,
        warmup_epochs=1, label_smoothing=0.0, min_crop=0.35, pre_resize="original",
    ),
    # DTD: 1,880 training images per split; textures need the full resolution.
    "dtd": _IMAGENET_SIZED,
    # PACS / Office-Home: small per-domain sets; ResNet-18 keeps a from-scratch run tractable.
    "pacs": Recipe(
        arch="resnet18", img_size=224, epochs=60, batch_size=64, lr=0.025, weight_decay=5e-4,
        warmup_epochs=3, label_smoothing=0.1,
    ),
    "office_home": Recipe(
        arch="resnet50", img_size=224, epochs=60, batch_size=64, lr=0.025, weight_decay=1e-4,
        warmup_epochs=3, label_smoothing=0.1,
    ),
    # WikiArt: ~57k training images per task; fewer epochs go further.
    "wikiart": Recipe(
        arch="resnet50", img_size=224, epochs=30, batch_size=64, lr=0.025, weight_decay=1e-4,
        warmup_epochs=2, label_smoothing=0.1,
    ),
    "folder": Recipe(
        arch="resnet18", img_size=224, epochs=30, batch_size=64, lr=0.025, weight_decay=1e-4,
        warmup_epochs=2, label_smoothing=0.1,
    ),
}  # fmt: skip


def recipe_for(dataset: str) -> Recipe:
    """The recipe of ``dataset``; any dataset without its own gets the ImageNet-sized one."""
    return RECIPES.get(dataset, _IMAGENET_SIZED)
