"""Where each dataset can be fetched from, tried in order, and the Hub copies' parquet schemas.

Checked against the dataset cards (README front matter) of the Hub copies:

- ``flwrlabs/pacs``: one file ``data/train-00000-of-00001.parquet`` (191,395,900 bytes, 9,991 rows), columns
  ``image`` (image), ``domain`` (string: art_painting, cartoon, photo, sketch), ``label`` (class label,
  0 dog, 1 elephant, 2 giraffe, 3 guitar, 4 horse, 5 house, 6 person).
- ``flwrlabs/office-home``: three files ``data/train-0000{0,1,2}-of-00003.parquet`` (15,588 rows), columns
  ``image``, ``domain`` (string: Art, Clipart, Product, Real World), ``label`` (class label, 65 names in
  sorted order: 0 Alarm_Clock ... 58 TV, 59 Table ... 64 Webcam).
- ``huggan/wikiart``: parquet shards under ``data/``, columns ``image``, ``artist``, ``genre``, ``style``
  (class labels; 27 styles). The style label order is read from the file's own metadata (the
  ``huggingface`` key that ``datasets`` writes); only where a file lacks it is the ArtGAN order assumed.

Every column name the importer relies on is in :data:`SCHEMAS`, so a copy with other names needs one edit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from stylecls.data import office_home, pacs, wikiart
from stylecls.errors import StyleclsError, unknown_name


@dataclass(frozen=True)
class HttpArchive:
    """A plain archive on a web server, with its published checksum."""

    name: str
    url: str
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None
    about: str = ""

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    def where(self) -> str:
        return self.url


@dataclass(frozen=True)
class HubParquet:
    """A parquet copy on the Hugging Face Hub (fetched with huggingface_hub, cache and all)."""

    name: str
    repo_id: str
    revision: str = "main"
    patterns: tuple[str, ...] = ("data/*.parquet",)
    size: int | None = None
    endpoint: str | None = None  # None: huggingface_hub's default ($HF_ENDPOINT or huggingface.co)
    about: str = ""

    def where(self) -> str:
        base = (self.endpoint or "$HF_ENDPOINT or https://huggingface.co").rstrip("/")
        return f"{base}/datasets/{self.repo_id} ({', '.join(self.patterns)}, revision {self.revision})"


Source = HttpArchive | HubParquet


@dataclass(frozen=True)
class SplitFiles:
    """Official split lists fetched beside a converted copy: ``(remote path, local path in the dataset folder)``."""

    base_url: str
    files: tuple[tuple[str, str], ...]
    about: str


@dataclass(frozen=True)
class ParquetSchema:
    """Column names of a Hub parquet copy and the label order to assume when a file carries none."""

    image: str
    label: str
    domain: str | None  # None: one domain (the dataset's own name)
    class_names: tuple[str, ...]
    domains: tuple[str, ...]


SCHEMAS: dict[str, ParquetSchema] = {
    "pacs": ParquetSchema("image", "label", "domain", pacs.CLASSES, pacs.DOMAINS),
    "office_home": ParquetSchema("image", "label", "domain", tuple(office_home.CLASSES), office_home.DOMAINS),
    "wikiart": ParquetSchema("image", "style", None, tuple(wikiart.STYLES), ("wikiart",)),
}

DTD_URL = "https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz"
SOURCES: dict[str, tuple[Source, ...]] = {
    "dtd": (
        HttpArchive("official", DTD_URL, md5="fff73e5086ae6bdbea199a49dfb8a4c1",
                    about="the authors' archive (images and the 10 official splits); MD5 as torchvision checks it"),
    ),
    "pacs": (
        HubParquet("hub", "flwrlabs/pacs", size=191_395_900,
                   about="Flower's parquet copy of PACS (9,991 images) + the official k-fold lists"),
    ),
    "office_home": (
        HubParquet("hub", "flwrlabs/office-home", size=1_158_984_115,
                   about="Flower's parquet copy of Office-Home (15,588 images)"),
    ),
    "wikiart": (
        HubParquet("hub", "huggan/wikiart",
                   about="the Hub's parquet copy of WikiArt (81,444 images) + ArtGAN split files"),
    ),
}

_RSC = "https://raw.githubusercontent.com/DeLightCMU/RSC/master/Domain_Generalization/data/correct_txt_lists"
_ARTGAN = "https://raw.githubusercontent.com/cs-chan/ArtGAN/master/WikiArt%20Dataset"
SPLIT_FILES: dict[str, SplitFiles] = {
    "pacs": SplitFiles(
        _RSC,
        tuple((f"{d}_{part}_kfold.txt", f"splits/{d}_{part}_kfold.txt")
              for d in pacs.DOMAINS for part in ("train", "crossval", "test")),
        "official PACS k-fold lists (as published with the dataset; copy in DeLightCMU/RSC)",
    ),
    "wikiart": SplitFiles(
        _ARTGAN,
        tuple((f"{folder}/{name}", name) for folder, names in
              (("Style", wikiart.FILES["style"]), ("Genre", wikiart.FILES["genre"]),
               ("Artist", wikiart.FILES["artist"])) for name in names),
        "ArtGAN split files (cs-chan/ArtGAN, 'WikiArt Dataset')",
    ),
}


def sources_for(dataset: str, name: str | None = None, mirror: str | None = None) -> list[Source]:
    """The sources of ``dataset`` in the order they are tried; ``name`` picks one, ``mirror`` replaces its base URL."""
    if dataset not in SOURCES:
        raise unknown_name("dataset to download", dataset, SOURCES)
    chosen = list(SOURCES[dataset])
    if name is not None:
        chosen = [s for s in chosen if s.name == name]
        if not chosen:
            raise unknown_name(f"source of {dataset}", name, [s.name for s in SOURCES[dataset]])
    return [with_mirror(s, mirror) for s in chosen] if mirror else chosen


def with_mirror(source: Source, mirror: str) -> Source:
    """The same source served from ``mirror``: the archive's file name under it, or the Hub endpoint itself."""
    if not mirror.startswith(("http://", "https://")):
        raise StyleclsError(f"--mirror must be an http(s) URL, not {mirror!r}")
    if isinstance(source, HttpArchive):
        return replace(source, url=f"{mirror.rstrip('/')}/{source.filename}")
    return replace(source, endpoint=mirror.rstrip("/"))
