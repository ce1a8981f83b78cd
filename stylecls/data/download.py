"""A small HTTP downloader for plain archives: resumable, verified, extracted safely, installed atomically.

Only for sources that are plain files on a web server (the DTD archive, split lists). Hub datasets go
through ``huggingface_hub`` (see :mod:`stylecls.data.sources`). The rules:

- bytes stream into ``<file>.part``; a rerun asks for the rest with an HTTP ``Range`` request;
- the checksum (MD5 and/or SHA-256) is checked before anything is extracted; a mismatch deletes the file;
- archives are extracted into a hidden staging folder, refusing absolute paths, ``..`` and links that
  point outside the target (tar: ``filter="data"`` as well), then moved into place, so an interrupted
  run never leaves a half dataset where ``stylecls data check`` looks.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from stylecls.errors import StyleclsError

CHUNK = 1 << 16
USER_AGENT = "stylecls-downloader"


def _progress(enabled: bool) -> Any:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    disable=not enabled)


def file_digests(path: Path) -> dict[str, str]:
    """MD5 and SHA-256 of a file, read once."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            md5.update(block)
            sha.update(block)
    return {"md5": md5.hexdigest(), "sha256": sha.hexdigest()}


def verify(path: Path, md5: str | None = None, sha256: str | None = None) -> dict[str, str]:
    """Raise if ``path`` does not have the published checksum; return its digests."""
    got = file_digests(path)
    for kind, want in (("md5", md5), ("sha256", sha256)):
        if want and got[kind] != want.lower():
            raise StyleclsError(f"{path.name}: {kind.upper()} is {got[kind]}, the source publishes {want}; "
                                "the file is damaged or not the published one, refusing to use it")
    return got


def fetch(url: str, dest: Path, *, md5: str | None = None, sha256: str | None = None,
          progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify it, and return ``dest``.

    A ``dest`` that already exists and verifies is reused. A checksum mismatch deletes the partial file
    and raises, so the next run starts clean.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file():
        try:
            verify(dest, md5, sha256)
            return dest
        except StyleclsError:
            dest.unlink()
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the .part is already complete
            return _finish(part, dest, md5, sha256)
        raise StyleclsError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise StyleclsError(f"cannot reach {url}: {getattr(e, 'reason', e)}") from None
    with response:
        resumed = have and response.status == 206
        if not resumed:
            have = 0  # the server ignored the Range request: start again
        length = response.headers.get("Content-Length")
        total = have + int(length) if length else None
        with _progress(progress) as bar, open(part, "ab" if resumed else "wb") as out:
            task = bar.add_task(f"{dest.name}{' (resumed)' if resumed else ''}", total=total, completed=have)
            try:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    bar.advance(task, len(block))
            except OSError as e:
                if e.errno == errno.ENOSPC:
                    raise StyleclsError(f"no space left on the device for {dest} after {out.tell():,} bytes: free "
                                        "some space and run the same command again to resume") from None
                raise StyleclsError(f"download of {url} interrupted after {out.tell():,} bytes ({e}); "
                                    "run the same command again to resume") from None
            except http.client.HTTPException as e:
                raise StyleclsError(f"download of {url} interrupted after {out.tell():,} bytes ({e}); "
                                    "run the same command again to resume") from None
        if total is not None and part.stat().st_size < total:
            raise StyleclsError(f"download of {url} stopped at {part.stat().st_size:,} of {total:,} bytes; "
                                "run the same command again to resume")
    return _finish(part, dest, md5, sha256)


def _finish(part: Path, dest: Path, md5: str | None, sha256: str | None) -> Path:
    try:
        verify(part, md5, sha256)
    except StyleclsError:
        part.unlink()
        raise
    os.replace(part, dest)
    return dest


def _member_problem(name: str, link: str | None, is_hardlink: bool = False) -> str | None:
    """Why an archive member would land outside the target, or None."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in path.parts:
        return "'..' in path"
    if link is not None:
        target = PurePosixPath(link.replace("\\", "/"))
        base = PurePosixPath() if is_hardlink else path.parent  # hard links are relative to the archive root
        if target.is_absolute() or ".." in (base / target).parts:
            return f"link to {link!r} outside the target"
    return None


def safe_extract(archive: Path, target: Path) -> None:
    """Extract a tar or zip archive into ``target``, refusing any member that would escape it."""
    target.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
                problem = _member_problem(info.filename, zf.read(info).decode() if is_link else None)
                if problem:
                    raise StyleclsError(f"{archive.name}: refusing member {info.filename!r} ({problem})")
            zf.extractall(target)
        return
    try:
        tf = tarfile.open(archive)
    except tarfile.TarError as e:
        raise StyleclsError(f"{archive.name} is neither a zip nor a tar archive ({e})") from None
    with tf:
        for member in tf.getmembers():
            link = member.linkname if (member.issym() or member.islnk()) else None
            problem = _member_problem(member.name, link, member.islnk())
            if problem:
                raise StyleclsError(f"{archive.name}: refusing member {member.name!r} ({problem})")
        if not hasattr(tarfile, "data_filter"):  # Python < 3.10.12 / 3.11.4: our member checks above still hold
            tf.extractall(target)
            return
        try:
            tf.extractall(target, filter="data")
        except tarfile.FilterError as e:
            raise StyleclsError(f"{archive.name}: refusing to extract ({e})") from None


def writable_root(root: Path) -> Path:
    """The data root a download or import writes into: a folder (made if absent), else one clear error."""
    from stylecls.data.paths import writable_folder

    return writable_folder(root, f"the data root {root}", ": point --data-root / $STYLECLS_DATA at a folder")


@contextmanager
def writing(what: str) -> Iterator[None]:
    """Turn a failed write (a full disk above all) into one clear error; the caller's staging folder goes."""
    try:
        yield
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise StyleclsError(f"no space left on the device while {what}: nothing was installed; free some "
                                "space (or choose another --data-root) and run the command again") from None
        raise StyleclsError(f"{what} failed: {e.strerror or e}{f' ({e.filename})' if e.filename else ''}; "
                            "nothing was installed") from None


@contextmanager
def staging(root: Path, label: str) -> Iterator[Path]:
    """A hidden folder under ``root`` (same file system, so moves are renames), removed afterwards."""
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f".stylecls-{label}-", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def install_tree(staged: Path, final: Path) -> int:
    """Move ``staged`` to ``final``: one rename when ``final`` is absent, else file by file (same names win).

    Returns the number of files added or replaced. Nothing in ``final`` that the staged tree does not
    name is touched, so installing twice gives the same tree and never loses a user's files.
    """
    if not final.exists():
        final.parent.mkdir(parents=True, exist_ok=True)
        count = sum(1 for p in staged.rglob("*") if p.is_file())
        os.replace(staged, final)
        return count
    count = 0
    for src in sorted(p for p in staged.rglob("*") if p.is_file()):
        dst = final / src.relative_to(staged)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        count += 1
    return count
