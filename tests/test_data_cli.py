"""`stylecls data list|check|prepare`: output and exit codes (0 complete, 1 incomplete, 2 user error)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from stylecls.cli import app, main

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning")


def exit_code(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run the real entry point (with its StyleclsError -> 2 mapping) in-process."""
    monkeypatch.setattr(sys, "argv", ["stylecls", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        main()
        raise SystemExit(0)
    return e.value.code or 0


def test_check_exit_codes(demo_env, tmp_path, make_images, monkeypatch, capsys):
    assert exit_code(monkeypatch, "data", "check", "--dataset", "demo") == 0
    assert "complete and readable" in capsys.readouterr().out
    make_images(tmp_path / "pacs", [f"photo/dog/{i}.jpg" for i in range(3)])
    assert exit_code(monkeypatch, "data", "check", "--dataset", "pacs", "--data-root", tmp_path) == 1
    out = capsys.readouterr().out
    assert "missing domains" in out and "art_painting" in out and "NOT OK" in out
    assert exit_code(monkeypatch, "data", "check", "--dataset", "dtd", "--data-root", tmp_path) == 2
    err = capsys.readouterr().err
    assert "DTD" in err and str(tmp_path / "dtd") in err and "Traceback" not in err
    assert exit_code(monkeypatch, "data", "check", "--dataset", "nope") == 2
    assert exit_code(monkeypatch, "data", "check", "--dataset", "dtd", "--task", "style") == 2


def test_deep_check_lists_undecodable_files(cache_env, tmp_path, make_images):
    paths = make_images(tmp_path / "imgs", [f"{c}/{i}.jpg" for c in "ab" for i in range(3)], size=(40, 40))
    paths[2].write_bytes(paths[2].read_bytes()[:100])
    result = CliRunner().invoke(app, ["data", "check", "-d", "folder", "--data-root", str(tmp_path / "imgs"),
                                      "--deep", "--workers", "0"])
    assert result.exit_code == 1
    assert "1 files cannot be decoded" in result.output and paths[2].name in result.output


def test_list_and_prepare(demo_env, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["data", "list", "--data-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "demo" in result.output and "missing" in result.output and "office_home" in result.output
    result = runner.invoke(app, ["data", "prepare", "-d", "demo", "--size", "32", "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "2,400 images at full resolution" in result.output  # the demo recipe's rule: its runs read this cache
    assert "--pre-resize original read it" in result.output
    again = runner.invoke(app, ["data", "prepare", "-d", "demo", "--size", "32", "--workers", "0"])
    assert "already up to date" in again.output


def test_module_entry_point_reports_missing_data(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "stylecls", "data", "check", "--dataset", "office_home", "--data-root", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "Office-Home not found" in proc.stderr and "Real World" in proc.stderr
    assert "Traceback" not in proc.stderr
