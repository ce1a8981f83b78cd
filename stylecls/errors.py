"""The one exception type that means "the user asked for something we cannot do".

The CLI turns a :class:`StyleclsError` into one clear message and exit code 2; every other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable


class StyleclsError(Exception):
    """Bad input from the user: a missing dataset, an unknown name, an unusable checkpoint."""


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> StyleclsError:
    """The error for a name that is not one of ``valid``, listing the valid names."""
    choices = ", ".join(sorted(valid))
    return StyleclsError(f"unknown {kind} {name!r}; choose one of: {choices}")


class Signalled(Exception):
    """A stop signal arrived (Ctrl-C, SIGTERM, SIGUSR1): the process ends with the shell's code for it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
