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


def check_tensorboard(plan: SweepPlan) -> None:
    """Once for the whole sweep: TensorBoard asked for (``--tensorboard`` or the environment) but not installed."""
    from stylecls.tensorboard import require_tensorboard, tensorboard_default

    wanted = plan.runtime.tensorboard
    if wanted or (wanted is None and tensorboard_default()):
        require_tensorboard()


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
    try:
        check_data(plan)
    except StyleclsError as e:
        if not dry_run:
            raise
        console.print(f"[yellow]warning:[/] {e}\n(the dry run goes on; a real run stops here)", highlight=False)
    check_tensorboard(plan)
    pending = plan.pending()
    if dry_run:
        console.print(status_table(plan_frame(plan), f"{plan.out}: {plan.describe()} (dry run: nothing started)"))
        console.print(f"{plan.describe()}; {len(pending)} to run", highlight=False)
        return SweepResult([], [], "dry run")
    plan.write()
    console.print(f"[bold]stylecls sweep[/] {plan.out}: {plan.describe()}, {len(plan.specs) - len(pending)} "
                  f"done, {len(pending)} to run ({launcher.name} launcher)", highlight=False)
    failed = launcher.launch(plan, pending, console) if pending else []
    console.print(status_table(status_frame(plan.out), str(plan.out)))
    return SweepResult([s.run_name() for s in pending], failed, _compare(plan, console))


COMPARISON = ("comparison.md", "comparison.csv")


def _compare(plan: SweepPlan, console: Console) -> str | None:
    """``stylecls compare`` of the sweep's runs (not those for lodo selection) into ``<out>``; a refusal is
    printed and returned, and a comparison left by an earlier sweep into ``<out>`` is removed (it would
    describe other runs). A random search is compared by ``stylecls report``, which chooses the trials."""
    from stylecls.compare import compare

    runs = [plan.run_dir(s) for s in plan.specs if s.val_domain is None and plan.run_dir(s).is_dir()]
    if plan.search.get("hparams") == "random":
        _remove_stale(plan, console, "")
        console.print(f"random search: `stylecls report {plan.out} --selection all` chooses each block's trial "
                      "and compares them", highlight=False)
        return None
    try:
        _, markdown, _ = compare(runs, out=plan.out)
    except StyleclsError as e:
        _remove_stale(plan, console, f"[red]no comparison written:[/] {e}")
        return str(e)
    console.print(markdown, highlight=False, markup=False)
    console.print(f"comparison: {plan.out / 'comparison.md'} and comparison.csv", highlight=False)
    return None


def _remove_stale(plan: SweepPlan, console: Console, why: str) -> None:
    """Remove a comparison an earlier sweep left in ``<out>``: it describes other runs."""
    stale = [name for name in COMPARISON if (plan.out / name).is_file()]
    for name in stale:
        (plan.out / name).unlink()
    removed = f"removed the earlier {' and '.join(stale)}: it described other runs" if stale else ""
    if why or removed:
        console.print(f"{why}{' (' + removed + ')' if why and removed else removed}", highlight=False)
