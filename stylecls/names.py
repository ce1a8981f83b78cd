"""The names in the torch-importing registries, as a static table, so ``--help`` lists them instantly.

``tests/test_cli_options.py`` checks every tuple against its registry: a block, backbone, dataset or
protocol registered without being listed here fails that test (add its name here).
"""

from __future__ import annotations

__all__ = ["NAMES"]

#: registry ("module:ATTRIBUTE") -> its names, sorted
NAMES: dict[str, tuple[str, ...]] = {
    "stylecls.blocks:BLOCKS": ("eca", "ge", "none", "se", "srm"),
    "stylecls.models:ARCHS": (
        "cifar_resnet110", "cifar_resnet20", "cifar_resnet20_ibn_a", "cifar_resnet32", "cifar_resnet44",
        "cifar_resnet56", "cifar_resnet56_ibn_a", "resnet101", "resnet101_ibn_a", "resnet152", "resnet18",
        "resnet18_ibn_a", "resnet34", "resnet34_ibn_a", "resnet50", "resnet50_ibn_a",
    ),
    "stylecls.models:FEATURE_AUGS": ("dsu", "efdmix", "mixstyle", "none"),
    "stylecls.data:DATASETS": ("demo", "dtd", "folder", "office_home", "pacs", "wikiart"),
    "stylecls.data:PROTOCOLS": ("auto", "lodo", "multi-domain", "single"),
}  # fmt: skip
