"""``stylecls data download``: try a dataset's sources in order and leave the documented layout behind.

HTTP archives go through :mod:`stylecls.data.download`; Hub parquet copies through ``huggingface_hub``
(its cache, resumable downloads, ``HF_ENDPOINT``, token and offline mode) and then
:mod:`stylecls.data.importers`. Official split lists are added only when the converted file names match
them; otherwise the copy keeps stylecls's seeded split and the provenance file says so.
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylecls.data.download import fetch, install_tree, safe_extract, staging, writable_root, writing
from stylecls.data.importers import PROVENANCE, Imported, convert_parquet
from stylecls.data.registry import DOWNLOADABLE, DatasetDef
from stylecls.data.scan import is_image
from stylecls.data.sources import HttpArchive, HubParquet, Source, with_mirror
from stylecls.errors import StyleclsError, unknown_name

#: Split lists are used only if they name at least this share of the converted images.
MIN_LIST_COVERAGE = 0.99


@dataclass
class Plan:
    """One line of ``--dry-run``: what would be fetched, from where, and how big."""

    source: str
    where: str
    size: int | None
    about: str


@dataclass
class Obtained:
    dataset: str
    folder: Path
    source: str
    files: int = 0
    notes: list[str] = field(default_factory=list)


def sources_for(dataset: str, name: str | None = None, mirror: str | None = None) -> list[Source]:
    """The sources of ``dataset`` in the order they are tried; ``name`` picks one, ``mirror`` replaces its base URL."""
    known = DOWNLOADABLE.get_def(dataset, "dataset to download").downloads
    chosen = list(known)
    if name is not None:
        chosen = [s for s in chosen if s.name == name]
        if not chosen:
            raise unknown_name(f"source of {dataset}", name, [s.name for s in known])
    return [with_mirror(s, mirror) for s in chosen] if mirror else chosen


def plan(dataset: str, source: str | None = None, mirror: str | None = None) -> list[Plan]:
    """What ``download`` would fetch, without fetching (sizes: the HTTP server's answer or the dataset card)."""
    out = []
    for s in sources_for(dataset, source, mirror):
        size = s.size
        if isinstance(s, HttpArchive) and size is None:
            size = _remote_size(s.url)
        out.append(Plan(s.name, s.where(), size, s.about))
    extra = DOWNLOADABLE[dataset].split_files
    if extra:
        out.append(Plan("split lists", f"{extra.base_url}/ ({len(extra.files)} files)", None, extra.about))
    return out


def _remote_size(url: str) -> int | None:
    try:
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "stylecls-downloader"})
        with urllib.request.urlopen(request, timeout=10) as r:
            length = r.headers.get("Content-Length")
            return int(length) if length else None
    except (OSError, ValueError):
        return None


def download(dataset: str, root: Path, *, source: str | None = None, mirror: str | None = None,
             progress: bool = True) -> Obtained:
    """Fetch ``dataset`` into ``root/<folder>`` from the first source that works; raise with every failure."""
    sources = sources_for(dataset, source, mirror)
    d = DOWNLOADABLE[dataset]
    writable_root(root)
    failures = []
    for s in sources:
        try:
            with writing(f"downloading {dataset} into {root}"):
                if isinstance(s, HttpArchive):
                    return _from_archive(d, s, root, progress)
                return _from_hub(d, s, root, progress, mirror)
        except StyleclsError as e:
            failures.append(f"{s.name} ({s.where()}): {e}")
        finally:
            _remove_if_empty(root / ".downloads")
    raise StyleclsError(f"could not download {dataset}: " + "; ".join(failures))


def _from_archive(d: DatasetDef, s: HttpArchive, root: Path, progress: bool) -> Obtained:
    downloads = root / ".downloads"
    archive = fetch(s.url, downloads / s.filename, md5=s.md5, sha256=s.sha256, progress=progress)
    final = root / str(d.folder)
    with staging(root, d.name) as tmp:
        safe_extract(archive, tmp)
        top = tmp / str(d.folder)
        if not top.is_dir():
            raise StyleclsError(f"{s.filename} has no top-level {d.folder}/ folder; is it the right archive?")
        _write_provenance(top, {"dataset": d.name, "source": s.name, "url": s.url, "md5": s.md5,
                                "sha256": s.sha256, "split_files": "from the archive"})
        files = install_tree(top, final)
    archive.unlink()  # verified and installed: the archive is no longer needed
    return Obtained(d.name, final, s.name, files)


def _from_hub(d: DatasetDef, s: HubParquet, root: Path, progress: bool, mirror: str | None) -> Obtained:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        folder = snapshot_download(s.repo_id, repo_type="dataset", revision=s.revision, allow_patterns=list(s.patterns),
                                   endpoint=s.endpoint)
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as e:
        raise StyleclsError(f"huggingface_hub could not get {s.repo_id}: {str(e).splitlines()[0]}") from None
    files = sorted(Path(folder).rglob("*.parquet"))
    if not files:
        raise StyleclsError(f"{s.repo_id} at revision {s.revision} has no files matching {', '.join(s.patterns)}")
    final = root / str(d.folder)
    result = Imported(d.name, final)
    with staging(root, d.name) as tmp:
        staged = tmp / "tree"
        staged.mkdir()
        convert_parquet(d.name, files, staged, result, progress)
        notes = _add_split_files(d, staged, tmp, result, progress, mirror)
        _write_provenance(staged, {"dataset": d.name, "source": s.name, "repo_id": s.repo_id, "revision": s.revision,
                                   "parquet_files": [f.name for f in files], "images": result.images,
                                   "split_files": result.split_files or "none: stylecls's seeded split",
                                   "notes": notes})
        install_tree(staged, final)
    return Obtained(d.name, final, s.name, result.images, notes)


def _add_split_files(d: DatasetDef, staged: Path, tmp: Path, result: Imported, progress: bool,
                     mirror: str | None) -> list[str]:
    """Fetch the official lists; keep them only if they name the converted files (else: seeded split)."""
    spec = d.split_files
    if spec is None:
        return []
    lists = tmp / "lists"
    bases = ([mirror.rstrip("/")] if mirror else []) + [spec.base_url]  # a mirror first, then the published place
    for base in bases:
        try:
            for remote, local in spec.files:
                fetch(f"{base}/{remote}", lists / local, progress=progress)
            break
        except StyleclsError as e:
            failure = str(e)
    else:
        return [f"split lists not fetched ({failure}); stylecls's seeded split is used"]
    named, total = list_coverage(d, staged, lists)
    if total and named / total >= MIN_LIST_COVERAGE:
        for _, local in spec.files:
            (staged / local).parent.mkdir(parents=True, exist_ok=True)
            os.replace(lists / local, staged / local)
            result.split_files.append(local)
        return [f"official split lists name {named:,} of {total:,} images: official split"]
    return [f"the official split lists name only {named:,} of {total:,} converted images (the Hub copy does not keep "
            "the original file names): stylecls's seeded split is used"]


def list_coverage(d: DatasetDef, tree: Path, lists: Path) -> tuple[int, int]:
    """How many images under ``tree`` the split lists in ``lists`` name (also by path without extension where
    the dataset's lists allow it)."""
    assert d.split_files is not None
    keys = {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file() and is_image(p.name)}
    listed = d.split_files.listed(lists)
    if d.split_files.by_stem:
        stems = {os.path.splitext(k)[0] for k in listed}
        return sum(1 for k in keys if k in listed or os.path.splitext(k)[0] in stems), len(keys)
    return len(keys & listed), len(keys)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # absent, or holds a partial download to resume


def _write_provenance(folder: Path, record: dict[str, Any]) -> None:
    """``stylecls-source.json`` in the (staged) dataset folder: where this copy came from (for the user and for
    bug reports). The staged tree is moved into place whole, so a plain write is atomic enough, and the file
    gets the umask's mode like every other file of the copy."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PROVENANCE).write_text(json.dumps(record, indent=2) + "\n")
