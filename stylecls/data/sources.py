"""The kinds of places a dataset comes from, as its declaration names them (:mod:`stylecls.data.registry`).

A dataset module lists its :class:`HttpArchive` / :class:`HubParquet` sources (tried in order by
``stylecls data download``), its official :class:`SplitFiles` and the :class:`ParquetSchema` of a parquet
copy (every column name the importer relies on, so a copy with other names needs one edit there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from stylecls.errors import StyleclsError


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
    """Official split lists fetched beside a converted copy: ``(remote path, local path in the dataset folder)``.

    ``listed(folder)`` reads the image paths the fetched lists name (relative to the dataset folder), so a
    download keeps the lists only where they name the converted files; ``by_stem`` also matches a path
    without its extension (PACS's lists say .jpg for PNG sketches). ``data import`` brings along files of
    the input named like a local path's base name.
    """

    base_url: str
    files: tuple[tuple[str, str], ...]
    about: str
    listed: Callable[[Path], set[str]]
    by_stem: bool = False


@dataclass(frozen=True)
class ParquetSchema:
    """Column names of a parquet copy; the label order to assume where a file carries none is the
    dataset's ``classes`` (see :class:`~stylecls.data.registry.DatasetDef`)."""

    image: str
    label: str
    domain: str | None  # None: one domain (the dataset's own name)


def with_mirror(source: Source, mirror: str) -> Source:
    """The same source served from ``mirror``: the archive's file name under it, or the Hub endpoint itself."""
    if not mirror.startswith(("http://", "https://")):
        raise StyleclsError(f"--mirror must be an http(s) URL, not {mirror!r}")
    if isinstance(source, HttpArchive):
        return replace(source, url=f"{mirror.rstrip('/')}/{source.filename}")
    return replace(source, endpoint=mirror.rstrip("/"))
