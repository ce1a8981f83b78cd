"""The ``stylecls`` command line: one module per group of commands, all on one typer app.

Heavy modules are imported inside the commands so that ``stylecls --help`` stays instant.
A :class:`~stylecls.errors.StyleclsError` becomes one red line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

from rich.markup import escape

# each module registers its commands on the app; the import order is their order in --help
from stylecls.cli import data, data_get, export, models, predict, report, results, style_test, sweep, train  # noqa: F401, I001
from stylecls.cli.app import app, err_console
from stylecls.errors import StyleclsError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: run the app, turning user errors into one message and exit code 2.

    Click's standalone mode already handles usage errors (exit 2), ``typer.Exit`` and Ctrl-C;
    our own :class:`StyleclsError` passes through it and is reported here.
    """
    try:
        app()
    except StyleclsError as e:
        err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except SystemExit as e:
        if e.code not in (0, None):
            raise  # success returns normally, so main() can be called from Python too
