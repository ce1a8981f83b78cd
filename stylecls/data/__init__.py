"""Datasets for stylecls: catalogues, protocols, checks, the prepared cache and the loader.

A dataset is read into a *catalogue* (a DataFrame, one row per image: path, label, class_name,
domain, split, with ``attrs["info"]`` saying what was found vs what a complete copy has);
:func:`protocol_parts` says which rows train, select and test; :class:`ImageDataset` and
:func:`make_loader` turn rows into deterministic uint8 batches.
"""

from stylecls.data.cache import Prepared, prepare
from stylecls.data.catalog import DATASETS, card, catalog, dataset_dir, domains_of
from stylecls.data.checks import CheckReport, check, list_datasets
from stylecls.data.loading import Batch, ImageDataset, collate, decode, make_loader
from stylecls.data.paths import cache_root, default_root
from stylecls.data.protocols import PROTOCOLS, protocol_parts
from stylecls.data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize, stored_size

__all__ = [
    "DATASETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PROTOCOLS",
    "Batch",
    "CheckReport",
    "ImageDataset",
    "Prepared",
    "cache_root",
    "card",
    "catalog",
    "check",
    "collate",
    "dataset_dir",
    "decode",
    "default_root",
    "domains_of",
    "list_datasets",
    "make_loader",
    "normalize",
    "prepare",
    "protocol_parts",
    "stored_size",
]
