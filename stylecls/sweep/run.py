"""Running a sweep: check everything, record the plan, launch what is left, evaluate, compare.

Re-running the same command is the way to resume: ``done`` (and evaluated) runs are not touched,
``incomplete`` ones resume from ``last.pt``, the rest start.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console

from stylecls.errors import StyleclsError
from stylecls.sweep.launchers import Launcher
from stylecls.sweep.plan import SweepPlan
from stylecls.sweep.status import plan_frame, status_frame, status_table

__all__ = ["SweepResult", "check_data", "run_sweep"]


@dataclass(frozen=True)
class SweepResult:
    started: list[str]  # runs handed to the launcher
    failed: list[str]
    comparison: str | None  # why the comparison was not written, or None when it was


def check_data(plan: SweepPlan) -> None:
    """Fail before any run starts if a dataset of the sweep is missing (the ``data check`` message)."""
    from stylecls.data import catalog

    for dataset, options in {(s.dataset, tuple(sorted(s.data_options.items()))) for s in plan.specs}:
        if dataset != "demo":
            catalog(dataset, plan.runtime.data_root, **dict(options))


def run_sweep(plan: SweepPlan, launcher: Launcher, console: Console, dry_run: bool = False) -> SweepResult:
    """Bring every run of ``plan`` to done and evaluated; write ``<out>/comparison.md|csv``."""
    if plan.out.exists() and not plan.out.is_dir():
        raise StyleclsError(f"--out {plan.out} is a file, not a folder of runs")
    plan.check_out()
    check_data(plan)
    pending = plan.pending()
    if dry_run:
        console.print(status_table(plan_frame(plan), f"{plan.out}: {len(plan.specs)} runs (dry run: nothing started)"))
        return SweepResult([], [], "dry run")
    plan.write()
    console.print(f"[bold]stylecls sweep[/] {plan.out}: {len(plan.specs)} runs, {len(plan.specs) - len(pending)} "
                  f"done, {len(pending)} to run ({launcher.name} launcher)", highlight=False)
    failed = launcher.launch(plan, pending, console) if pending else []
    console.print(status_table(status_frame(plan.out), str(plan.out)))
    return SweepResult([s.run_name() for s in pending], failed, _compare(plan, console))


def _compare(plan: SweepPlan, console: Console) -> str | None:
    """``stylecls compare`` of the whole sweep into ``<out>``; a refusal is printed, not raised."""
    from stylecls.compare import compare

    try:
        _, markdown, _ = compare([plan.out], out=plan.out)
    except StyleclsError as e:
        console.print(f"[yellow]no comparison written:[/] {e}", highlight=False)
        return str(e)
    console.print(markdown, highlight=False, markup=False)
    console.print(f"comparison: {plan.out / 'comparison.md'} and comparison.csv", highlight=False)
    return None
