"""Datasets for stylecls: the registry, catalogs, protocols, checks, the prepared cache and the loader.

Each dataset is one declaration in :mod:`stylecls.data.datasets` (:class:`DatasetDef`, listed in
:data:`DATASETS`). :func:`catalog` reads a copy into a :class:`Catalog`: the frame (one row per image:
path, label, class_name, domain, split) and a typed :class:`CatalogInfo` (found vs what a complete copy
has); :func:`protocol_parts` says which rows train, select and test; :class:`Pixels` names the decode-and-
pre-resize pipeline (the prepared cache only memoises it); :class:`ImageDataset` and :func:`make_loader`
turn rows into deterministic uint8 batches.
"""

from stylecls.data.cache import CacheSource, Prepared, prepare
from stylecls.data.catalog import Catalog, CatalogInfo, Counts, Listing, catalog, dataset_dir, domains_of
from stylecls.data.checks import CheckReport, check, list_datasets
from stylecls.data.decode import decode, decode_pixels
from stylecls.data.loading import Batch, ImageDataset, collate, make_loader
from stylecls.data.paths import cache_root, default_root
from stylecls.data.pixels import DEFAULT_PRE_RESIZE, Pixels
from stylecls.data.protocols import PROTOCOL_PARTS, PROTOCOLS, Parts, protocol_parts
from stylecls.data.registry import DATASETS, DOWNLOADABLE, IMPORTABLE, DatasetDef, dataset, register
from stylecls.data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize

__all__ = [
    "DATASETS",
    "DEFAULT_PRE_RESIZE",
    "DOWNLOADABLE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMPORTABLE",
    "PROTOCOLS",
    "PROTOCOL_PARTS",
    "Batch",
    "CacheSource",
    "Catalog",
    "CatalogInfo",
    "CheckReport",
    "Counts",
    "DatasetDef",
    "ImageDataset",
    "Listing",
    "Parts",
    "Pixels",
    "Prepared",
    "cache_root",
    "catalog",
    "check",
    "collate",
    "dataset",
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
    "register",
]
