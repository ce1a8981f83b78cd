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


def test_catalogue_keeps_symlinked_paths_under_the_root(tmp_path, make_images):
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
