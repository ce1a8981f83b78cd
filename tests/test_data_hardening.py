"""Bad inputs and interruptions on the data side: one clear message, nothing left behind, no silent loss."""

from __future__ import annotations

import ast
import fcntl
import os
import signal
import sys
from pathlib import Path

import pytest

from stylecls.cli import main
from stylecls.data import cache as cache_module
from stylecls.data import cache_root, catalog, prepare
from stylecls.data.cache import PrepareInterrupted, prepared_dir
from stylecls.data.pixels import Pixels
from stylecls.errors import StyleclsError

REPO = Path(__file__).parents[1]


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: object) -> int:
    monkeypatch.setattr(sys, "argv", ["stylecls", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        main()
        raise SystemExit(0)
    return int(e.value.code or 0)


def test_one_class_folder_is_refused(tmp_path, make_images, monkeypatch, capsys):
    make_images(tmp_path / "data", ["only/1.jpg", "only/2.jpg"])
    with pytest.raises(StyleclsError, match=r"1 class \(only\).*at least 2"):
        catalog("folder", tmp_path / "data")
    assert run_cli(monkeypatch, "data", "check", "-d", "folder", "--data-root", tmp_path / "data") == 2
    assert "at least 2" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["check", "-d", "demo"], ["prepare", "-d", "demo", "--size", "16"]])
def test_negative_workers_is_one_message(demo_env, monkeypatch, capsys, command):
    assert run_cli(monkeypatch, "data", *command, "--workers", "-1") == 2
    err = capsys.readouterr().err
    assert "--workers" in err and "Traceback" not in err


def test_unusable_stylecls_cache_is_one_message(tmp_path, monkeypatch, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for value, why in ((afile, "is a file"), (afile / "sub", "cannot be created")):
        monkeypatch.setenv("STYLECLS_CACHE", str(value))
        with pytest.raises(StyleclsError, match=why):
            cache_root(create=True)
        assert run_cli(monkeypatch, "data", "prepare", "-d", "demo", "--size", "16") == 2
        err = capsys.readouterr().err
        assert "$STYLECLS_CACHE" in err and why in err and "Traceback" not in err


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name.startswith("."))


def test_sigterm_during_prepare_removes_the_temporary_folder(tmp_path, make_images, cache_env, monkeypatch):
    make_images(tmp_path / "data", [f"{c}/{i}.jpg" for c in "ab" for i in range(4)])
    calls = []
    real = cache_module.decode_pixels

    def decode_then_terminate(path: str, pixels: Pixels):
        calls.append(path)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(path, pixels)

    monkeypatch.setattr(cache_module, "decode_pixels", decode_then_terminate)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(PrepareInterrupted) as e:
        prepare("folder", tmp_path / "data", 16, workers=0, progress=False)
    assert e.value.code == 128 + signal.SIGTERM and len(calls) == 3
    assert signal.getsignal(signal.SIGTERM) == before
    prepared = cache_env / "prepared"
    assert _hidden(prepared) == [] and not [p for p in prepared.iterdir() if p.is_dir()]


def test_stale_temporary_folders_are_removed_by_the_next_prepare(tmp_path, make_images, cache_env):
    make_images(tmp_path / "data", [f"{c}/{i}.jpg" for c in "ab" for i in range(3)])
    folder = prepared_dir("folder", tmp_path / "data", Pixels(16))
    for force in (False, True):
        stale = [folder.parent / f".{folder.name}.tmp-4242", folder.parent / ".pacs-0123456789-64-abcd1234"]
        for path in stale:
            path.mkdir(parents=True)
            (path / "images.npy").write_bytes(b"x" * 100)
        done = prepare("folder", tmp_path / "data", 16, workers=0, progress=False, force=force)
        assert done.cleaned == 2 and _hidden(folder.parent) == [] and not done.up_to_date


def test_two_prepares_of_one_cache_the_second_is_refused(tmp_path, make_images, cache_env):
    make_images(tmp_path / "data", [f"{c}/{i}.jpg" for c in "ab" for i in range(3)])
    folder = prepared_dir("folder", tmp_path / "data", Pixels(16))
    folder.parent.mkdir(parents=True)
    busy = folder.parent / f".{folder.name}.tmp-999999"
    busy.mkdir()
    with open(folder.parent / f".{folder.name}.lock", "a") as lock:  # another writer holds the claim
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(StyleclsError, match="another `stylecls data prepare` is writing"):
            prepare("folder", tmp_path / "data", 16, workers=0, progress=False)
        other = prepared_dir("folder", tmp_path / "data", Pixels(32))  # a different cache: free, keeps theirs
        assert prepare("folder", tmp_path / "data", 32, workers=0, progress=False).folder == other
        assert busy.is_dir()
    assert prepare("folder", tmp_path / "data", 16, workers=0, progress=False).cleaned == 1


def test_catalog_keeps_symlinked_paths_under_the_root(tmp_path, make_images):
    target = make_images(tmp_path / "elsewhere", ["x.jpg"])[0]
    make_images(tmp_path / "data", ["a/1.jpg", "b/1.jpg"])
    (tmp_path / "data" / "a" / "2.jpg").symlink_to(target)
    paths = set(catalog("folder", tmp_path / "data").frame["path"])
    assert str(tmp_path / "data" / "a" / "2.jpg") in paths and str(target) not in paths


def test_every_module_level_import_is_a_declared_dependency():
    tomllib = pytest.importorskip("tomllib")
    from importlib.metadata import packages_distributions

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

    def requirement_names(requirements: list[str]) -> set[str]:
        return {d.split(">")[0].split("=")[0].split("[")[0].strip().lower() for d in requirements}

    # modules that are themselves imported only lazily, from the command that needs their extra
    extra_of = {"stylecls/sweep/slurm_job.py": "slurm"}
    dists = packages_distributions()
    missing = set()
    for path in (REPO / "stylecls").rglob("*.py"):
        extra = extra_of.get(path.relative_to(REPO).as_posix())
        declared = requirement_names(project["dependencies"]) | requirement_names(
            project["optional-dependencies"][extra] if extra else [])
        for node in ast.parse(path.read_text()).body:  # module level only: lazy imports may be extras
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for name in names:
                top = name.split(".")[0]
                if top == "stylecls" or top in sys.stdlib_module_names:
                    continue
                if not {d.lower() for d in dists.get(top, [top])} & declared:
                    missing.add(f"{top} ({path.relative_to(REPO)})")
    assert not missing, f"imported at module level but not in pyproject dependencies: {sorted(missing)}"


def test_a_read_only_cache_still_serves_runs(tmp_path, make_images, cache_env, monkeypatch):
    make_images(tmp_path / "data", [f"{c}/{i}.jpg" for c in "ab" for i in range(3)])
    prepare("folder", tmp_path / "data", 16, workers=0, progress=False)
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as for a non-root user on a read-only mount
    from stylecls.data import CacheSource, ImageDataset

    data = catalog("folder", tmp_path / "data")
    assert ImageDataset(data.frame, 16, train=False, cache_source=CacheSource.of_catalog(data)).cache_hits == 6
    with pytest.raises(StyleclsError, match="is not writable"):
        prepare("folder", tmp_path / "data", 16, workers=0, progress=False, force=True)


# --- issue 20: each bad input one line, exit 2, nothing half-written -------------------------------------


def _pacs_zip(tmp_path: Path, make_images) -> Path:
    import zipfile

    src = tmp_path / "src"
    keys = [f"{d}/{c}/{i}.jpg" for d in ("photo", "sketch") for c in ("dog", "house") for i in (1, 2)]
    make_images(src / "PACS", keys)
    with zipfile.ZipFile(tmp_path / "PACS.zip", "w") as zf:
        for p in sorted(src.rglob("*")):
            zf.write(p, p.relative_to(src).as_posix())
    return tmp_path / "PACS.zip"


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def _no_space(*args, **kwargs):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("what", ["extracting", "copying"])
def test_a_full_disk_while_importing_is_one_message_and_leaves_nothing(tmp_path, make_images, monkeypatch, capsys,
                                                                       what):
    import shutil

    archive = _pacs_zip(tmp_path, make_images)
    src = archive if what == "extracting" else tmp_path / "src"
    # extracting: zipfile writes each member through shutil.copyfileobj; copying a folder: shutil.copyfile
    monkeypatch.setattr(shutil, "copyfileobj" if what == "extracting" else "copyfile", _no_space)
    root = tmp_path / "data"
    assert run_cli(monkeypatch, "data", "import", "-d", "pacs", "--from", src, "--data-root", root) == 2
    assert "no space left on the device while importing pacs" in _one_error_line(capsys)
    assert list(root.iterdir()) == []  # no staging folder, no half dataset


def test_a_full_disk_while_converting_parquet_is_one_message(tmp_path, monkeypatch, capsys):
    pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table({"image": pa.array([{"bytes": b"x" * 10, "path": f"{i}.jpg"} for i in range(4)], image),
                      "label": pa.array([0, 1, 0, 1]), "domain": pa.array(["photo"] * 4)})
    pq.write_table(table, tmp_path / "pacs.parquet")
    writes = {"n": 0}
    real = Path.write_bytes

    def fills_up(self: Path, data: bytes) -> int:
        writes["n"] += 1
        return real(self, data) if writes["n"] < 3 else _no_space()

    monkeypatch.setattr(Path, "write_bytes", fills_up)
    root = tmp_path / "data"
    assert run_cli(monkeypatch, "data", "import", "-d", "pacs", "--from", tmp_path / "pacs.parquet",
                   "--data-root", root) == 2
    assert "no space left" in _one_error_line(capsys) and writes["n"] == 3
    assert list(root.iterdir()) == []


def test_a_symlink_loop_in_a_class_folder_is_one_message(tmp_path, make_images, monkeypatch, capsys):
    make_images(tmp_path / "data", ["a/1.jpg", "b/1.jpg"])
    (tmp_path / "data" / "a" / "loop.jpg").symlink_to("loop.jpg")
    with pytest.raises(StyleclsError, match="loop.jpg is a symbolic link that loops"):
        catalog("folder", tmp_path / "data")
    assert run_cli(monkeypatch, "data", "check", "-d", "folder", "--data-root", tmp_path / "data") == 2
    assert "loops back on itself" in _one_error_line(capsys)
    (tmp_path / "data" / "a" / "loop.jpg").unlink()
    (tmp_path / "data" / "b" / "self").symlink_to(tmp_path / "data" / "b" / "self")  # a looping folder link
    assert run_cli(monkeypatch, "data", "check", "-d", "folder", "--data-root", tmp_path / "data") == 2
    assert "loops back on itself" in _one_error_line(capsys)


def test_a_data_root_that_is_a_file_is_one_message(tmp_path, make_images, monkeypatch, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    archive = _pacs_zip(tmp_path, make_images)
    assert run_cli(monkeypatch, "data", "import", "-d", "pacs", "--from", archive, "--data-root", afile) == 2
    assert f"the data root {afile} is a file" in _one_error_line(capsys)
    assert run_cli(monkeypatch, "data", "download", "-d", "dtd", "--data-root", afile) == 2
    assert f"the data root {afile} is a file" in _one_error_line(capsys)
    assert run_cli(monkeypatch, "data", "check", "-d", "pacs", "--data-root", afile) == 2
    assert f"{afile} is a file, not a folder" in _one_error_line(capsys)
    assert afile.read_text() == "x"


def test_import_from_the_target_itself_is_refused(tmp_path, make_images, monkeypatch, capsys):
    root = tmp_path / "data"
    assert run_cli(monkeypatch, "data", "import", "-d", "pacs", "--from", _pacs_zip(tmp_path, make_images),
                   "--data-root", root) == 1
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    for src in (root / "pacs", root / "pacs" / "photo"):
        assert run_cli(monkeypatch, "data", "import", "-d", "pacs", "--from", src, "--data-root", root) == 2
        assert "is the pacs folder it would be imported into" in _one_error_line(capsys)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_the_provenance_file_follows_the_umask(tmp_path, make_images, monkeypatch):
    old = os.umask(0o022)
    try:
        root = tmp_path / "data"
        run_cli(monkeypatch, "data", "import", "-d", "pacs", "--from", _pacs_zip(tmp_path, make_images),
                "--data-root", root)
        image = next((root / "pacs").rglob("*.jpg"))
        assert (root / "pacs" / "stylecls-source.json").stat().st_mode & 0o777 == 0o644 == image.stat().st_mode & 0o777
    finally:
        os.umask(old)


def test_stale_demo_staging_folders_are_removed_by_the_next_generation(tmp_path):
    from stylecls.data.datasets import demo

    (tmp_path / ".demo-killed").mkdir()  # as a generation killed with SIGKILL leaves it
    (tmp_path / ".demo-killed" / "photo").mkdir()
    (tmp_path / ".demo-note").write_text("not a folder: left alone")
    demo.generate(tmp_path / "demo")
    assert demo.is_generated(tmp_path / "demo")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".demo-note", ".demo.lock", "demo"]
