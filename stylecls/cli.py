"""The ``stylecls`` command line: train, evaluate, compare, inspect, data, models.

Heavy modules are imported inside the commands so that ``stylecls --help`` stays instant.
A :class:`~stylecls.errors.StyleclsError` becomes one red line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from stylecls.errors import StyleclsError

app = typer.Typer(
    name="stylecls",
    help="Classify images where style matters; compare SRM, SE and plain backbones.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="List, check and prepare datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)


# --- models ---------------------------------------------------------------------------------

# --- data -----------------------------------------------------------------------------------

# --- train ----------------------------------------------------------------------------------

# --- evaluate / compare / inspect -----------------------------------------------------------


def main() -> None:
    """Entry point: run the app, turning user errors into one message and exit code 2."""
    try:
        app(standalone_mode=False)
    except StyleclsError as e:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
    except Exception as e:  # click usage errors (bad options) keep click's exit code 2
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Abort):
            err_console.print("[yellow]aborted[/]")
            sys.exit(1)
        raise
