"""The dataset registry: each dataset is one :class:`DatasetDef`, declared by one module.

As timm registers models and DomainBed declares a dataset as one small class, a dataset here is one
declaration -- its catalog reader, domains, classes, training recipe, download sources, import format
and help -- passed to :func:`register`. Every module in :mod:`stylecls.data.datasets` is imported on the
first look at :data:`DATASETS`, so a new dataset is one new file there (or a :func:`register` call in
code of your own). Everything that lists datasets (the CLI's choices, ``data list``, ``data download``,
``data import``, recipes, the catalog) reads this registry; nothing else names them.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stylecls.data.sources import HubParquet, ParquetSchema, Source, SplitFiles
from stylecls.errors import StyleclsError, unknown_name

if TYPE_CHECKING:
    from stylecls.data.catalog import Listing
    from stylecls.recipes import Recipe

#: The package whose modules declare the built-in datasets (each imported once, on first use).
PACKAGE = "stylecls.data.datasets"


@dataclass(frozen=True)
class DatasetDef:
    """Everything stylecls knows about one dataset (see the module docstring).

    ``read(folder, seed=..., **options) -> Listing`` lists the images under the dataset's folder;
    ``folder`` is its sub-folder of the data root (None: the data root is the dataset itself);
    ``home`` places a dataset outside the data root (the demo lives in the cache) and ``generated``
    says whether such a generated copy exists yet. ``domains``/``classes`` are fixed names (None: read
    from the copy). ``downloads`` are tried in order by ``data download``; ``split_files`` are official
    lists fetched beside a converted copy (and brought along by ``data import``); ``parquet`` is the
    column schema of a parquet copy, which also makes the dataset importable.
    """

    name: str
    title: str
    help: str  # one line for ``data list`` and the CLI
    read: Callable[..., Listing]
    folder: str | None
    layout: str
    source: str  # where a user gets it, in words
    options: tuple[str, ...] = ("seed",)  # the keyword options ``read`` takes
    domains: tuple[str, ...] | None = None
    classes: tuple[str, ...] | None = None
    recipe: Recipe | None = None  # None: stylecls.recipes.DEFAULT_RECIPE
    downloads: tuple[Source, ...] = ()
    split_files: SplitFiles | None = None
    parquet: ParquetSchema | None = None
    home: Callable[[], Path] | None = None
    generated: Callable[[Path], bool] | None = None

    @property
    def downloadable(self) -> bool:
        return bool(self.downloads)

    @property
    def importable(self) -> bool:
        return self.parquet is not None and self.folder is not None

    def missing(self, where: Path, what: str = "") -> StyleclsError:
        """The error for a copy that is not where it is looked for: the layout and how to get it."""
        detail = f" ({what})" if what else ""
        get = f"Get it with `stylecls data download --dataset {self.name}`, or " if self.downloadable else "Get it "
        return StyleclsError(
            f"{self.title} not found at {where}{detail}. Expected layout: {self.layout}. "
            f"{get}from {self.source} and unpack it under the data root (see datasets/README.md), "
            "or point --data-root / $STYLECLS_DATA at the folder that holds it."
        )

    def validate(self) -> None:
        """Refuse a declaration whose parts contradict each other (a clear error at registration)."""
        if not self.name.isidentifier():
            raise StyleclsError(f"dataset name {self.name!r} must be an identifier (letters, digits, _)")
        if "seed" not in self.options:
            raise StyleclsError(f"dataset {self.name!r}: every reader takes a seed option")
        if self.parquet is not None and (self.classes is None or self.domains is None):
            raise StyleclsError(f"dataset {self.name!r}: a parquet import needs fixed classes and domains")
        if any(isinstance(s, HubParquet) for s in self.downloads) and self.parquet is None:
            raise StyleclsError(f"dataset {self.name!r}: a Hub parquet source needs a parquet schema")


class Registry(Mapping[str, DatasetDef]):
    """Name -> :class:`DatasetDef`; the modules of :data:`PACKAGE` are imported on the first look.

    ``where`` filters (``Registry(where=lambda d: d.downloadable)``) give views that stay in step.
    """

    def __init__(self, where: Callable[[DatasetDef], bool] | None = None, parent: Registry | None = None) -> None:
        self._defs: dict[str, DatasetDef] = {}
        self._where = where
        self._parent = parent
        self._discovered = False

    def _all(self) -> dict[str, DatasetDef]:
        if self._parent is not None:
            return self._parent._all()
        if not self._discovered:
            self._discovered = True
            self.discover()
        return self._defs

    def _view(self) -> dict[str, DatasetDef]:
        everything = self._all()
        return everything if self._where is None else {k: v for k, v in everything.items() if self._where(v)}

    def discover(self) -> None:
        """Import every module of :data:`PACKAGE` not imported yet (each registers its datasets)."""
        package = importlib.import_module(PACKAGE)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{PACKAGE}.{module.name}")

    def add(self, definition: DatasetDef) -> DatasetDef:
        if self._parent is not None:
            return self._parent.add(definition)
        definition.validate()
        known = self._defs.get(definition.name)
        if known is not None and known.read.__module__ != definition.read.__module__:
            raise StyleclsError(f"dataset {definition.name!r} is declared twice ({known.read.__module__} and "
                                f"{definition.read.__module__})")
        self._defs[definition.name] = definition
        return definition

    def remove(self, name: str) -> None:
        """Forget a dataset (for tests that register one of their own)."""
        (self._parent or self)._defs.pop(name, None)

    def get_def(self, name: str, kind: str = "dataset") -> DatasetDef:
        """The definition of ``name``, or the clear error listing the valid names."""
        view = self._view()
        if name not in view:
            raise unknown_name(kind, name, view)
        return view[name]

    def __getitem__(self, name: str) -> DatasetDef:
        return self._view()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._view())

    def __len__(self) -> int:
        return len(self._view())

    def __repr__(self) -> str:
        return f"Registry({', '.join(self)})"


#: Every dataset by name: THE list of dataset names (CLI choices, ``data list``, recipes, catalog).
DATASETS = Registry()
#: The datasets ``stylecls data download`` can fetch.
DOWNLOADABLE = Registry(lambda d: d.downloadable, parent=DATASETS)
#: The datasets ``stylecls data import`` can convert.
IMPORTABLE = Registry(lambda d: d.importable, parent=DATASETS)


def register(definition: DatasetDef) -> DatasetDef:
    """Add ``definition`` to :data:`DATASETS` (a module's ``DATASET = register(DatasetDef(...))``)."""
    return DATASETS.add(definition)


def dataset(name: str) -> DatasetDef:
    """The definition of dataset ``name`` (raises a clear error listing the valid names)."""
    return DATASETS.get_def(name)

