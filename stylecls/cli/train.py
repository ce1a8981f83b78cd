"""`stylecls train`: one run, every run of a lodo protocol, or a resume."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import typer

from stylecls.cli import run_options as opt
from stylecls.cli.app import app, console
from stylecls.errors import StyleclsError


@contextmanager
def interrupt_exit_codes() -> Iterator[None]:
    """Ctrl-C, SIGTERM or SIGUSR1 during training: the loop has kept last.pt and printed the resume
    command; exit 128 + the signal's number (130, 143, 138) as shells and schedulers expect."""
    from stylecls.train import Preempted

    try:
        yield
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Preempted as e:
        raise typer.Exit(e.exit_code) from None


# with --resume, the run's own settings apply; only where it runs may change
_RESUME_OPTIONS = {"resume", "device", "workers", "threads", "progress", "tensorboard"}


@app.command("train")
@opt.run_options("train")
def train_cmd(
    ctx: typer.Context,
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder from its last.pt."),
    **values: Any,
) -> None:
    """Train a backbone with a block; leaves runs/<name>/ and prints its path last."""
    from stylecls.train import is_main_process, train_all
    from stylecls.train import resume as resume_run

    if resume is not None:
        given = sorted(
            p for p in ctx.params
            if p not in _RESUME_OPTIONS and getattr(ctx.get_parameter_source(p), "name", "") == "COMMANDLINE"
        )  # fmt: skip
        if given:
            flags = ", ".join("--" + g.replace("_", "-") for g in given)
            raise StyleclsError(
                f"--resume continues a run with its own settings; drop {flags}"
                " (only --device, --workers, --threads, --progress and --tensorboard may change)"
            )
        with interrupt_exit_codes():
            path = resume_run(resume, device=None if values["device"] == "auto" else values["device"],
                              **{k: values[k] for k in ("workers", "progress", "threads", "tensorboard")})
        if is_main_process():
            console.print(str(path), highlight=False, soft_wrap=True)
        return
    spec, runtime = opt.spec_from_values(values), opt.runtime_from_values(values)
    with interrupt_exit_codes():
        paths = train_all(spec, runtime)
    if not is_main_process():  # under torchrun, rank 0 reports
        return
    if len(paths) > 1:
        console.print("runs (one per held-out domain):", highlight=False)
    for path in paths:
        console.print(str(path), highlight=False, soft_wrap=True)
