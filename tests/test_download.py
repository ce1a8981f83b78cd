"""`stylecls data download` over HTTP against a local server: verified, resumable, safe, atomic."""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
import threading
import zipfile
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from stylecls.cli import main
from stylecls.data import DOWNLOADABLE, dataset, register
from stylecls.data.datasets.dtd import CLASSES
from stylecls.data.download import safe_extract
from stylecls.data.sources import HttpArchive, HubParquet
from stylecls.errors import StyleclsError


@pytest.fixture
def dtd_checksum():
    """``dtd_checksum(archive)``: the registry's DTD source with that archive's MD5 (restored afterwards)."""
    official = dataset("dtd")

    def use(archive: bytes) -> HttpArchive:
        source = official.downloads[0]
        assert isinstance(source, HttpArchive)
        register(replace(official, downloads=(replace(source, md5=hashlib.md5(archive).hexdigest()),)))
        return source

    yield use
    register(official)


def exit_code(monkeypatch: pytest.MonkeyPatch, *args: object) -> int:
    """The real entry point in-process (StyleclsError -> exit 2)."""
    monkeypatch.setattr(sys, "argv", ["stylecls", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        main()
        raise SystemExit(0)
    return e.value.code or 0


def _tiny_jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (120, 80, 40)).save(buf, "JPEG")
    return buf.getvalue()


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="session")
def dtd_tarball() -> bytes:
    """A complete DTD in the official archive's layout: 47 x 120 (identical tiny) JPEGs and 10 splits in thirds."""
    jpeg = _tiny_jpeg()
    members: dict[str, bytes] = {}
    keys = {c: [f"{c}/{c}_{i:04d}.jpg" for i in range(120)] for c in CLASSES}
    for cls_keys in keys.values():
        for key in cls_keys:
            members[f"dtd/images/{key}"] = jpeg
    for split in range(1, 11):
        for j, part in enumerate(("train", "val", "test")):
            lines = [k for ks in keys.values() for k in ks[40 * j: 40 * (j + 1)]]
            members[f"dtd/labels/{part}{split}.txt"] = ("\n".join(lines) + "\n").encode()
    return _tar(members)


class _Server:
    """Serves ``files`` on 127.0.0.1 with Range support; ``cut_after`` closes the connection mid-body once."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.ranges: list[str] = []
        self.cut_after: int | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                data = outer.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if (rng := self.headers.get("Range")) is not None:
                    outer.ranges.append(rng)
                    start = int(rng.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if outer.cut_after is not None:
                    body, outer.cut_after = body[: outer.cut_after], None
                    self.wfile.write(body)
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def dtd_source(dtd_checksum, dtd_tarball):
    """The registry's DTD entry with the test archive's checksum (the mirror serves our generated archive)."""
    return dtd_checksum(dtd_tarball)


def test_good_download_checks_ok(server, dtd_source, dtd_tarball, tmp_path, monkeypatch, capsys):
    server.files["/mirror/dtd-r1.0.1.tar.gz"] = dtd_tarball
    root = tmp_path / "data"
    code = exit_code(monkeypatch, "data", "download", "--dataset", "dtd", "--data-root", root,
                     "--mirror", f"{server.url}/mirror")
    out = capsys.readouterr().out
    assert code == 0, out
    assert "complete and readable" in out
    assert len(list((root / "dtd" / "images").rglob("*.jpg"))) == 5640
    assert sorted(p.name for p in root.iterdir()) == ["dtd"]  # no archive, .part or staging folder left
    assert exit_code(monkeypatch, "data", "check", "--dataset", "dtd", "--data-root", root) == 0
    server.files.clear()  # a complete copy is not fetched again
    assert exit_code(monkeypatch, "data", "download", "-d", "dtd", "--data-root", root, "--mirror", server.url) == 0
    assert "already complete" in capsys.readouterr().out


def test_wrong_checksum_is_refused_and_root_unchanged(server, dtd_tarball, tmp_path, monkeypatch, capsys):
    server.files["/dtd-r1.0.1.tar.gz"] = dtd_tarball  # the registry keeps the official MD5: it cannot match
    root = tmp_path / "data"
    root.mkdir()
    assert exit_code(monkeypatch, "data", "download", "-d", "dtd", "--data-root", root, "--mirror", server.url) == 2
    err = capsys.readouterr().err
    assert "MD5" in err and "fff73e5086ae6bdbea199a49dfb8a4c1" in err and "Traceback" not in err
    assert list(root.iterdir()) == []


def test_interrupted_download_resumes_with_range(server, dtd_source, dtd_tarball, tmp_path, monkeypatch, capsys):
    server.files["/dtd-r1.0.1.tar.gz"] = dtd_tarball
    server.cut_after = len(dtd_tarball) // 3
    root = tmp_path / "data"
    assert exit_code(monkeypatch, "data", "download", "-d", "dtd", "--data-root", root, "--mirror", server.url) == 2
    assert "run the same command again to resume" in capsys.readouterr().err
    assert not (root / "dtd").exists()
    part = root / ".downloads" / "dtd-r1.0.1.tar.gz.part"
    assert part.stat().st_size == len(dtd_tarball) // 3
    assert exit_code(monkeypatch, "data", "download", "-d", "dtd", "--data-root", root, "--mirror", server.url) == 0
    assert server.ranges == [f"bytes={len(dtd_tarball) // 3}-"]
    assert len(list((root / "dtd" / "images").rglob("*.jpg"))) == 5640


@pytest.mark.parametrize("name", ["../evil.txt", "/tmp/evil.txt", "dtd/../../evil.txt"])
def test_tar_escaping_members_are_refused(tmp_path, name):
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(_tar({"dtd/images/ok.txt": b"ok", name: b"evil"}))
    with pytest.raises(StyleclsError, match="refusing member"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_tar_link_out_and_zip_escape_are_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        link = tarfile.TarInfo("dtd/link")
        link.type, link.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        tf.addfile(link)
    (tmp_path / "link.tar").write_bytes(buf.getvalue())
    with pytest.raises(StyleclsError, match="outside the target"):
        safe_extract(tmp_path / "link.tar", tmp_path / "out")
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr("../evil.txt", b"evil")
    with pytest.raises(StyleclsError, match="refusing member"):
        safe_extract(tmp_path / "bad.zip", tmp_path / "out2")
    assert not (tmp_path / "evil.txt").exists()


def test_evil_tarball_through_the_cli_leaves_no_dataset(server, monkeypatch, tmp_path, capsys, dtd_checksum):
    evil = _tar({"dtd/images/banded/banded_0001.jpg": _tiny_jpeg(), "../evil.txt": b"evil"})
    server.files["/dtd-r1.0.1.tar.gz"] = evil
    dtd_checksum(evil)
    root = tmp_path / "data"
    assert exit_code(monkeypatch, "data", "download", "-d", "dtd", "--data-root", root, "--mirror", server.url) == 2
    assert "refusing member '../evil.txt'" in capsys.readouterr().err
    assert not (root / "dtd").exists() and not (tmp_path / "evil.txt").exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".stylecls-")]


def test_dry_run_and_missing_dataset_message(monkeypatch, tmp_path, capsys):
    assert exit_code(monkeypatch, "data", "download", "-d", "pacs", "--dry-run", "--data-root", tmp_path) == 0
    out = capsys.readouterr().out
    assert "flwrlabs/pacs" in out and "191.4 MB" in out and "k-fold lists" in out
    assert list(tmp_path.iterdir()) == []
    assert exit_code(monkeypatch, "data", "check", "-d", "office_home", "--data-root", tmp_path) == 2
    assert "stylecls data download --dataset office_home" in capsys.readouterr().err
    assert exit_code(monkeypatch, "data", "download", "-d", "pacs", "--source", "nope") == 2


def test_every_downloadable_dataset_has_verified_sources():
    assert set(DOWNLOADABLE) == {"dtd", "pacs", "office_home", "wikiart"}
    for d in DOWNLOADABLE.values():
        for source in d.downloads:  # an archive has a published checksum; a Hub copy a schema to convert it with
            assert (source.md5 or source.sha256) if isinstance(source, HttpArchive) else d.parquet, d.name
            assert isinstance(source, (HttpArchive, HubParquet))
