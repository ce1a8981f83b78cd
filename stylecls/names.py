"""The names in the torch-importing registries, as a static table, so ``--help`` lists them instantly.

``tests/test_cli_options.py`` checks every tuple against its registry: a block, backbone or protocol
registered without being listed here fails that test (add its name here). Datasets are not listed: each is
one module of ``stylecls/data/datasets/`` named like the dataset, so their names are the file names there
(read without importing anything; ``tests/test_data_registry.py`` checks the convention).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["NAMES"]


def _dataset_modules() -> tuple[str, ...]:
    folder = Path(__file__).parent / "data" / "datasets"
    return tuple(sorted(p.stem for p in folder.glob("*.py") if not p.name.startswith("_")))


#: registry ("module:ATTRIBUTE") -> its names, sorted
NAMES: dict[str, tuple[str, ...]] = {
    "stylecls.blocks:BLOCKS": ("eca", "ge", "none", "se", "srm"),
    "stylecls.models:ARCHS": (
        "cifar_resnet110", "cifar_resnet20", "cifar_resnet20_ibn_a", "cifar_resnet32", "cifar_resnet44",
        "cifar_resnet56", "cifar_resnet56_ibn_a", "resnet101", "resnet101_ibn_a", "resnet152", "resnet18",
        "resnet18_ibn_a", "resnet34", "resnet34_ibn_a", "resnet50", "resnet50_ibn_a",
    ),
    "stylecls.models:FEATURE_AUGS": ("dsu", "efdmix", "mixstyle", "none"),
    "stylecls.data:DATASETS": _dataset_modules(),
    "stylecls.data:PROTOCOLS": ("auto", "lodo", "multi-domain", "single"),
}  # fmt: skip
