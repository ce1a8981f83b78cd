"""The train/sweep options are the RunSpec/RuntimeOptions fields; names in --help; the first hour's CLI."""

from __future__ import annotations

import importlib
import subprocess
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from stylecls import __version__
from stylecls.cli import app, main
from stylecls.cli import run_options as opt
from stylecls.errors import StyleclsError
from stylecls.names import NAMES
from stylecls.settings import setting, settings_of
from stylecls.spec import RunSpec, RuntimeOptions


def _params(command: str) -> dict[str, Any]:
    return {p.name: p for p in typer.main.get_command(app).commands[command].params}  # type: ignore[attr-defined]


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["stylecls", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0)


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_every_field_is_one_option_and_every_run_option_a_field(command: str) -> None:
    params = _params(command)
    run_params = {n for n, p in params.items() if getattr(p, "rich_help_panel", None) in (opt.RUN_PANEL,
                                                                                          opt.RUNTIME_PANEL)}
    fields_ = {(owner, f.name) for owner in (RunSpec, RuntimeOptions) for f in fields(owner)}
    options = opt.options_for(command)
    internal = {(owner, n) for owner in (RunSpec, RuntimeOptions) for n, s in settings_of(owner).items() if s.internal}
    train_only = {(RuntimeOptions, "out"), (RuntimeOptions, "name")} if command == "sweep" else set()
    assert {(o.owner, o.field) for o in options} == fields_ - internal - train_only  # a field, an option
    assert run_params == {o.param for o in options}  # an option, a field
    flags = {o.setting.flag for o in options}
    for name, p in params.items():  # the command's own options never repeat a field's flag
        if name not in run_params:
            assert not set(p.opts) & flags, (name, p.opts)
    if command == "train":
        assert set(params) - run_params == {"resume"}
    else:
        axes = {"block", "seed", "test_domain", "split", "arch", "block_option", "feature_aug"}
        assert {o.param for o in options if o.is_axis("sweep")} == axes
        assert all(params[p].multiple for p in axes)


def test_a_field_without_a_setting_is_refused() -> None:
    @dataclass(frozen=True)
    class Bare(RunSpec):
        colour: str = "red"

    with pytest.raises(TypeError, match=r"Bare.colour has no setting"):
        settings_of(Bare)


@dataclass(frozen=True)
class WithSampler(RunSpec):
    """A RunSpec with one more hyper-parameter, declared the way a lane adds one."""

    sampler: str = field(default="random", metadata=setting("Batch sampler.", choices=("random", "balanced")))


def test_a_new_field_is_an_option_of_both_commands_and_keeps_old_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(opt, "RunSpec", WithSampler)
    probe = typer.Typer()
    seen: dict[str, RunSpec] = {}

    @probe.command()
    @opt.run_options("sweep")
    def cmd(**values: Any) -> None:
        seen["base"], seen["axes"] = opt.grid_from_values(values)  # type: ignore[assignment]

    result = CliRunner().invoke(probe, ["--sampler", "balanced", "--seed", "1", "--seed", "2", "--lr", "0.5"])
    assert result.exit_code == 0, result.output
    assert seen["base"] == WithSampler(sampler="balanced", lr=0.5) and seen["axes"]["seed"] == [1, 2]
    assert "Batch sampler. One of: random, balanced." in " ".join(
        CliRunner().invoke(probe, ["--help"], env={"COLUMNS": "300"}).output.split())

    old = RunSpec(block="srm", seed=2).resolved()
    new = WithSampler(block="srm", seed=2).resolved()
    assert new.run_name() == old.run_name() == "demo-cifar_resnet20-srm-s2" and new.digest() == old.digest()
    assert replace(new, lr=0.05).run_name() == replace(old, lr=0.05).run_name()
    assert replace(new, sampler="balanced").run_name().startswith("demo-cifar_resnet20-srm-s2-")
    assert replace(new, sampler="balanced").digest() != new.digest()
    with pytest.raises(StyleclsError, match="unknown sampler 'x'"):
        replace(new, sampler="x").resolved()


def test_names_and_digests_of_schema_2_specs_are_stable() -> None:
    plain = RunSpec(block="srm", seed=2).resolved()
    # the names stylecls 0.2.0 gave these specs: a run folder made then is found again
    assert plain.run_name() == "demo-cifar_resnet20-srm-s2"
    assert replace(plain, lr=0.05).run_name() == "demo-cifar_resnet20-srm-s2-65e49ca2"
    assert replace(plain, momentum=0.5).run_name() == "demo-cifar_resnet20-srm-s2-8a3106af"
    assert RunSpec(dataset="pacs", test_domain="sketch", optimizer="adamw").resolved().run_name() == (
        "pacs-resnet18-none-sketch-s0-c445c54d")
    stored = {k: v for k, v in plain.to_dict().items() if k not in ("trial", "hparams_seed", "val_domain")}
    assert RunSpec.from_dict(stored) == plain  # a config written before the newer fields loads


def test_ranges_come_from_the_settings() -> None:
    with pytest.raises(StyleclsError, match=r"--lr 0 \(must be > 0\); --momentum 1.0 \(must be in \[0, 1\)\)"):
        RunSpec(momentum=1.0, lr=0).resolved()
    with pytest.raises(StyleclsError, match=r"--min-crop 0.0 \(must be in \(0, 1\]\)"):
        RunSpec(min_crop=0.0).resolved()
    with pytest.raises(StyleclsError, match=r"--workers -1 \(must be >= 0\)"):
        RuntimeOptions(workers=-1)


def test_the_static_names_are_the_registries() -> None:
    for registry, names in NAMES.items():
        module, _, attribute = registry.partition(":")
        real = tuple(sorted(getattr(importlib.import_module(module), attribute)))
        assert names == real, f"update stylecls/names.py: {registry} holds {real}"


def test_help_lists_names_without_importing_torch() -> None:
    code = ("import sys; from stylecls.cli import main; sys.argv = ['stylecls', 'train', '--help']; main(); "
            "print('TORCH' if 'torch' in sys.modules else 'NO TORCH')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"COLUMNS": "300", "PATH": "", **_pythonpath()}, check=True).stdout
    assert out.strip().endswith("NO TORCH")
    assert "One of: eca, ge, none, se, srm." in out and "resnet50" in out and "office_home" in out
    assert "DTD official split index" in out


def _pythonpath() -> dict[str, str]:
    return {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def test_version(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["stylecls", "--version"])
    main()  # success returns normally
    assert capsys.readouterr().out.strip() == f"stylecls {__version__}"


@pytest.mark.parametrize("bad", ["a\nb", "tab\there", "nul\x00"])
def test_names_with_control_characters_are_one_line_exit_2(
    bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _main(monkeypatch, "train", "--name", bad, "--epochs", "1") == 2
    err = capsys.readouterr().err
    assert "control character" in err and err.strip().count("\n") == 0
    assert _main(monkeypatch, "sweep", "--out", str(tmp_path / bad), "--dry-run") == 2
    err = capsys.readouterr().err
    assert "control character" in err or "null byte" in err  # click's Path refuses a NUL itself
    assert list(tmp_path.iterdir()) == []


def test_help_shows_flags_without_a_type_and_the_data_group_lists_its_commands() -> None:
    def line(text: str, flag: str) -> str:
        return next(x for x in text.splitlines() if f"{flag} " in x)

    top = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"}).output
    assert "Show the version and exit." in line(top, "--version") and "<" not in line(top, "--version")
    train = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "160"}).output
    assert "<" not in line(train, "--amp") and "<int" in line(train, "--epochs")
    data = CliRunner().invoke(app, ["data", "--help"], env={"COLUMNS": "120"}).output
    assert all(f" {c} " in data for c in ("list", "check", "prepare", "download", "import"))


@pytest.mark.parametrize("command", ["sweep", "export", "models", "compare", "report", "data check", "data download"])
def test_no_command_shows_a_value_type_for_a_flag(command: str) -> None:
    text = CliRunner().invoke(app, [*command.split(), "--help"], env={"COLUMNS": "200"}).output
    flags = [line for line in text.splitlines() if "<bool>" in line and "--help" not in line]
    assert "--" in text and flags == []


def test_status_on_a_file_and_on_a_folder_without_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("x")
    assert _main(monkeypatch, "status", str(tmp_path / "notes.txt")) == 2
    assert "is a file" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert _main(monkeypatch, "status", str(tmp_path / "empty")) == 2
    assert "holds no runs" in capsys.readouterr().err
