"""Training defaults ("recipes"): what ``stylecls train --dataset X`` uses unless told otherwise.

Each dataset declares its recipe beside its reader (``stylecls/data/datasets/<name>.py``); this module
defines what a recipe is and the default. A recipe only fills settings the user left unset, so every
value can be overridden by a flag (or a :class:`~stylecls.spec.RunSpec` field). The learning rates
follow the linear scaling rule (0.1 per 256 images for SGD from scratch, He et al. / Goyal et al.);
the epochs are what trains each dataset to a useful accuracy from scratch. The demo recipe is sized
so that the quick start finishes in a couple of minutes on a 2-core CPU.
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
IMAGENET_SIZED = Recipe(
    arch="resnet50", img_size=224, epochs=90, batch_size=64, lr=0.025, weight_decay=1e-4,
    warmup_epochs=5, label_smoothing=0.1,
)  # fmt: skip
#: The recipe of a dataset whose declaration has none.
DEFAULT_RECIPE = IMAGENET_SIZED


def recipe_for(dataset: str) -> Recipe:
    """The recipe of ``dataset`` (its declaration's, see :mod:`stylecls.data.registry`), else the default."""
    from stylecls.data.registry import DATASETS

    declared = DATASETS[dataset].recipe if dataset in DATASETS else None
    return declared or DEFAULT_RECIPE
