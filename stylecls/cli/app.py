"""The typer app, its consoles and the options several commands share (one place for each)."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console


def _names_epilog() -> str:
    """The valid names, from the static table (``stylecls --help`` imports no torch)."""
    from stylecls.names import NAMES

    label = {"stylecls.data:DATASETS": "datasets", "stylecls.models:ARCHS": "backbones (--arch)",
             "stylecls.blocks:BLOCKS": "blocks", "stylecls.data:PROTOCOLS": "protocols",
             "stylecls.models:FEATURE_AUGS": "feature augmentations (--feature-aug)"}  # fmt: skip
    return "\n\n".join(f"{label[r]}: {', '.join(names)}" for r, names in NAMES.items())


app = typer.Typer(
    name="stylecls",
    help="Classify images where style matters; compare SRM, SE and plain backbones.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    epilog=_names_epilog(),
)


def _print_version(value: bool) -> None:
    if value:
        from stylecls import __version__

        print(f"stylecls {__version__}")
        raise typer.Exit()


@app.callback()
def _app_options(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, metavar="",  # a flag takes no value to show
        help="Show the version and exit."
    ),
) -> None:
    """Classify images where style matters; compare SRM, SE and plain backbones."""


data_app = typer.Typer(help="List, check and prepare datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _console(stderr: bool = False) -> Console:
    """Rich console; when piped or logged (no terminal, no $COLUMNS) 160 columns rather than rich's 80,
    so paths and run names in tables are not cut."""
    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=160 if wide else None)


console = _console()
err_console = _console(stderr=True)

DataRootOpt = typer.Option(None, "--data-root", help="Data root (default: $STYLECLS_DATA or ./datasets).")
CheckpointOpt = typer.Option("best", "--checkpoint", help="Which checkpoint: best or last.")
EvalDataRootOpt = typer.Option(
    None, "--data-root", help="Where the run's images are now (default: its config's data root)."
)
DeviceOpt = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
BatchOpt = typer.Option(128, "--batch-size", min=1, help="Images per forward pass.")
WorkersOpt = typer.Option(2, "--workers", min=0, help="Data-loading worker processes.")


def pct(x: float | str | None) -> str:
    """A fraction as a percentage with two decimals; empty for None."""
    return "" if x is None else f"{100 * float(x):.2f}%"


def data_options(split: Optional[int], task: Optional[str], seed: Optional[int], splits_dir: Optional[Path]) -> dict:
    """Only the options the user set, so each dataset can refuse the ones it does not have."""
    given = {"split": split, "task": task, "seed": seed, "splits_dir": splits_dir}
    return {k: v for k, v in given.items() if v is not None}


class RegistryChoice:
    """One of the names in a registry dict (``"stylecls.blocks:BLOCKS"``), read when first needed.

    The registries import torch; reading them lazily keeps ``stylecls --help`` instant. Typer 0.29 has
    no ``click_type=``, so this is the option's ``parser`` (an unknown name is a usage error, exit 2,
    listing the valid names) and its ``autocompletion`` (completion offers the registry's names).
    """

    def __init__(self, registry: str) -> None:
        self.registry = registry

    @property
    def names(self) -> list[str]:
        module, _, attribute = self.registry.partition(":")
        return sorted(getattr(importlib.import_module(module), attribute))

    def __call__(self, value: str) -> str:
        if value not in self.names:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(map(repr, self.names))}.")
        return value

    def complete(self, incomplete: str) -> list[str]:
        return [name for name in self.names if name.startswith(incomplete)]


def flag(*param_decls: str, help: str) -> Any:
    """A switch, off unless given: its help shows no value type (typer would print ``<bool>``)."""
    return typer.Option(False, *param_decls, metavar="", help=help)


def registry_option(default: Any, *param_decls: str, registry: str, help: str, **details: Any) -> Any:
    """A typer option whose values must be names in ``registry`` (``"module:ATTRIBUTE"``).

    ``block: str = registry_option("srm", "--block", registry="stylecls.blocks:BLOCKS", help="...")``;
    the help lists the names from :data:`stylecls.names.NAMES` (no torch import) where it has them; ``details``
    go to typer.
    """
    from stylecls.names import NAMES

    choice = RegistryChoice(registry)
    names = NAMES.get(registry)  # a view of a registry (datasets that download) is listed by a wrong name
    listed = f"One of: {', '.join(names)}." if names else "A wrong name lists the valid ones."
    return typer.Option(
        default, *param_decls, parser=choice, autocompletion=choice.complete, metavar="NAME",
        help=f"{help} {listed}", **details,
    )
