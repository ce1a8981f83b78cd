"""The options of one run, made from the fields of :class:`~stylecls.spec.RunSpec` and
:class:`~stylecls.spec.RuntimeOptions` (their :class:`~stylecls.settings.Setting` metadata).

``@run_options("train")`` adds one typer option per field to the command's signature (typer reads
``inspect.signature``); the command takes them as ``**values`` and turns them back into a spec with
:func:`spec_from_values` / :func:`runtime_from_values`. ``stylecls sweep`` gets the same options, the
fields whose sweep role is ``axis`` as repeatable lists (its grid). A new field is a new option in
both commands: nothing here names a hyper-parameter, except the two fields that are dicts (the
dataset's ``--task`` and ``--block-option KEY=VALUE``).
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Optional, TypeVar

import typer

from stylecls.cli.app import registry_option
from stylecls.errors import StyleclsError
from stylecls.settings import Setting, settings_of
from stylecls.spec import RunSpec, RuntimeOptions

__all__ = [
    "RUNTIME_PANEL", "RUN_PANEL", "FieldOption", "grid_from_values", "options_for", "parse_block_options",
    "run_options", "runtime_from_values", "spec_from_values",
]  # fmt: skip

Command = Literal["train", "sweep"]
F = TypeVar("F", bound=Callable[..., Any])
RUN_PANEL, RUNTIME_PANEL = "Run: what the result depends on", "Runtime: where and how it runs"


@dataclass(frozen=True)
class FieldOption:
    """One field's command-line option: the field, its typer parameter name and its Setting."""

    owner: type  # RunSpec or RuntimeOptions
    field: str
    setting: Setting
    panel: str  # the --help section

    @property
    def param(self) -> str:
        """The typer parameter (and ``ctx.params`` key): the flag's name, ``--block-option`` -> block_option."""
        return self.setting.flag.removeprefix("--").replace("-", "_")

    def is_axis(self, command: Command) -> bool:
        return command == "sweep" and self.setting.sweep == "axis"

    def parameter(self, command: Command) -> inspect.Parameter:
        """The typer parameter of this option in ``command``."""
        s, axis = self.setting, self.is_axis(command)
        base: Any = _cli_type(self.owner, self.field)
        repeat = axis or self.field == "block_options"  # train takes several KEY=VALUE, merged into one dict
        default: Any = [] if repeat else _cli_default(self.owner, self.field)
        annotation: Any = list[base] if repeat else base if default is not None else Optional[base]
        help_ = (s.axis_help or f"{s.help} Repeat to cross several values.") if axis else s.help
        help_ += " Default: the dataset's recipe." if s.recipe and not axis else ""
        help_ += f" One of: {', '.join(s.choices)}." if s.choices else ""
        if (rule := s.rule()) and (s.above is not None or s.below is not None):
            help_ += f" Must be {rule}."
        decls = [s.flag, *([s.short] if s.short else [])]
        if base is bool:
            decls = [s.flag if default is False else f"{s.flag}/--no-{s.flag[2:]}"]
        panel = self.panel
        if s.registry:  # a name checked against its registry when parsed (an unknown one lists them)
            option = registry_option(default, *decls, registry=s.registry, help=help_, rich_help_panel=panel,
                                     hidden=s.hidden)  # fmt: skip
        else:
            ranges: dict[str, Any] = {"min": s.min, "max": s.max} if base in (int, float) else {}
            metavar = "" if base is bool else {"block_options": "KEY=VALUE"}.get(self.field)  # a flag shows no type
            option = typer.Option(default, *decls, help=help_, hidden=s.hidden, rich_help_panel=panel, metavar=metavar,
                                  **ranges)  # fmt: skip
        return inspect.Parameter(self.param, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


def options_for(command: Command) -> list[FieldOption]:
    """Every option ``command`` takes from the two dataclasses, in field order."""
    return [
        FieldOption(owner, name, s, panel)
        for owner, panel in ((RunSpec, RUN_PANEL), (RuntimeOptions, RUNTIME_PANEL))
        for name, s in settings_of(owner).items()
        if not s.internal and not (command == "sweep" and s.sweep == "train-only")
    ]  # fmt: skip


def run_options(command: Command) -> Callable[[F], F]:
    """Decorator: the command's signature gains one typer option per field (after its own parameters).

    The command declares ``**values: Any`` to receive them; ``ctx.params`` holds them too.
    """

    def decorate(fn: F) -> F:
        own = inspect.signature(fn)
        hints = typing.get_type_hints(fn)
        params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in own.parameters.values()
                  if p.kind is not inspect.Parameter.VAR_KEYWORD]  # fmt: skip
        params += [o.parameter(command) for o in options_for(command)]
        fn.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
        return fn

    return decorate


def parse_block_options(pairs: list[str]) -> dict[str, Any]:
    """``--block-option pooling=mean --block-option reduction=8`` -> {"pooling": "mean", "reduction": 8}."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise StyleclsError(f"--block-option takes KEY=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def spec_from_values(values: Mapping[str, Any]) -> RunSpec:
    """A RunSpec from one command's values (keyed by parameter; the ones absent keep their default)."""
    given = {o.field: _to_field(o.field, values[o.param]) for o in options_for("train")
             if o.owner is RunSpec and o.param in values}  # fmt: skip
    return RunSpec(**given)


def runtime_from_values(values: Mapping[str, Any]) -> RuntimeOptions:
    """RuntimeOptions from one command's values (paths as strings; ``out`` "runs" when unset)."""
    given = {o.field: values[o.param] for o in options_for("train") if o.owner is RuntimeOptions and o.param in values}
    given = {k: str(v) if k in ("data_root", "out") and v is not None else v for k, v in given.items()}
    return RuntimeOptions(**{**given, "out": given.get("out") or "runs"})


def grid_from_values(values: Mapping[str, Any]) -> tuple[RunSpec, dict[str, list[Any]]]:
    """A sweep's base spec (every single value) and its axes (``GridAxes`` fields -> the values given)."""
    axes = [o for o in options_for("sweep") if o.is_axis("sweep")]
    base = spec_from_values({k: v for k, v in values.items() if k not in {o.param for o in axes}})
    grid = {o.field: list(values.get(o.param) or []) for o in axes}
    grid["block_options"] = [parse_block_options(s.split(",")) for s in grid.get("block_options", [])]
    return base, grid


def _to_field(name: str, value: Any) -> Any:
    """A command-line value as its field's value (the two dict fields take strings)."""
    if name == "data_options":
        return {"task": value} if value else {}
    if name == "block_options":
        return parse_block_options(list(value or []))
    return value


def _cli_type(owner: type, name: str) -> type:
    """The field's type without ``| None``; ``str`` for the two dict fields (a task, a KEY=VALUE)."""
    if name in ("data_options", "block_options"):
        return str
    hint = typing.get_type_hints(owner)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def _cli_default(owner: type, name: str) -> Any:
    return None if name == "data_options" else owner.__dataclass_fields__[name].default  # type: ignore[attr-defined]
