"""Datasets for stylecls: catalogues, protocols, checks, the prepared cache and the loader.

A dataset is read into a *catalogue* (a DataFrame, one row per image: path, label, class_name,
domain, split, with ``attrs["info"]`` saying what was found vs what a complete copy has);
:func:`protocol_parts` says which rows train, select and test; :class:`Pixels` names the decode-and-
pre-resize pipeline (the prepared cache only memoises it); :class:`ImageDataset` and :func:`make_loader`
turn rows into deterministic uint8 batches.
"""

from stylecls.data.cache import Prepared, prepare
from stylecls.data.catalog import DATASETS, card, catalog, dataset_dir, domains_of
from stylecls.data.checks import CheckReport, check, list_datasets
from stylecls.data.decode import decode, decode_pixels
from stylecls.data.loading import Batch, ImageDataset, collate, make_loader
from stylecls.data.paths import cache_root, default_root
from stylecls.data.pixels import DEFAULT_PRE_RESIZE, Pixels
from stylecls.data.protocols import PROTOCOLS, protocol_parts
from stylecls.data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize

__all__ = [
    "DATASETS",
    "DEFAULT_PRE_RESIZE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PROTOCOLS",
    "Batch",
    "CheckReport",
    "ImageDataset",
    "Pixels",
    "Prepared",
    "cache_root",
    "card",
    "catalog",
    "check",
    "collate",
    "dataset_dir",
    "decode",
    "decode_pixels",
    "default_root",
    "domains_of",
    "list_datasets",
    "make_loader",
    "normalize",
    "prepare",
    "protocol_parts",
]
