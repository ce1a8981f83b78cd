"""`stylecls sweep` (a grid of runs, restartable) and `stylecls status` (where each run stands)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from stylecls.cli import run_options as opt
from stylecls.cli.app import app, console, flag
from stylecls.errors import StyleclsError

# the options a sweep repeats to make its grid (the RunSpec fields whose sweep role is "axis")
_GRID = {o.param for o in opt.options_for("sweep") if o.is_axis("sweep")}
# the sweep's own options for the hyper-parameter search and model selection (not RunSpec fields)
_SEARCH = ("hparams", "trials", "hparams_seed", "list_hparams", "selection")


def _given(ctx: typer.Context) -> set[str]:
    return {p for p in ctx.params if getattr(ctx.get_parameter_source(p), "name", "") == "COMMANDLINE"}


def _list_presets() -> None:
    from rich.table import Table

    from stylecls.sweep import PRESETS

    table = Table(title="sweep presets (any option given overrides the preset's value)")
    for column in ("preset", "what", "grid"):
        table.add_column(column)
    for p in PRESETS.values():
        table.add_row(p.name, p.description, p.describe())
    console.print(table)


def _with_preset(name: str, values: dict[str, Any], given: set[str]) -> dict[str, Any]:
    """The preset's values and axes under the options given on the command line."""
    from stylecls.sweep import preset

    chosen = preset(name)
    merged = dict(values)
    for key, value in {**chosen.values, **chosen.axes}.items():
        cli_key = "block_option" if key == "block_options" else key
        if cli_key not in given:
            merged[cli_key] = [value] if cli_key in _GRID and not isinstance(value, list) else value
    console.print(f"[bold]preset {chosen.name}[/]: {chosen.description}\n  {chosen.describe()}", highlight=False)
    if overridden := sorted(k for k in given if k in {*chosen.values, *chosen.axes}):
        console.print(f"  overridden: {', '.join('--' + k.replace('_', '-') for k in overridden)}", highlight=False)
    return merged


def _list_hparams(dataset: str, blocks: list[str]) -> None:
    from stylecls.sweep.hparams import hparams_table

    console.print(hparams_table(dataset, blocks))


def _plan(values: dict[str, Any], out: Path, launcher: dict[str, Any]) -> Any:
    from stylecls.sweep import GridAxes, SweepPlan, expand_grid
    from stylecls.sweep.hparams import Search

    search = Search(values["hparams"], values["trials"], values["hparams_seed"])
    selection = values["selection"]
    base, axes = opt.grid_from_values({k: v for k, v in values.items() if k not in _SEARCH})
    runtime = opt.runtime_from_values({**values, "out": out, "name": None})
    specs = expand_grid(base, GridAxes(**axes), runtime.data_root, search, selection)
    recorded = {"hparams": search.mode, "trials": search.trials, "hparams_seed": search.seed, "selection": selection}
    return SweepPlan(out, specs, runtime, launcher, recorded)


@app.command("sweep")
@opt.run_options("sweep")
def sweep_cmd(
    ctx: typer.Context,
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="The sweep's folder (its runs, sweep.json, logs); a --dry-run without it: "
        "sweeps/<preset or dataset>."
    ),
    preset: Optional[str] = typer.Option(None, "--preset", help="A named grid; see --list-presets."),
    list_presets: bool = flag("--list-presets", help="Show the presets and exit."),
    hparams: str = typer.Option(
        "default", "--hparams", help="default: the recipe's values; random: --trials draws from the search space "
        "(see --list-hparams), a trial's shared values alike for every block.",
    ),
    trials: int = typer.Option(1, "--trials", min=1, help="Random-search trials (--hparams random)."),
    hparams_seed: int = typer.Option(0, "--hparams-seed", min=0, help="Seed of the random search's draws."),
    list_hparams: bool = flag(
        "--list-hparams", help="Show the random search's ranges for --dataset (and --block) and exit."
    ),
    selection: str = typer.Option(
        "training-domain", "--selection",
        help="Model selection the sweep plans for: training-domain (validation on the training domains) or lodo "
        "(adds one run per training domain left out, for leave-one-domain-out cross-validation).",
    ),  # fmt: skip
    jobs: int = typer.Option(1, "--jobs", "-j", help="Runs at once (local launcher; on GPUs at most one per GPU)."),
    launcher: str = typer.Option("local", "--launcher", help="local (subprocesses) or slurm (submitit)."),
    dry_run: bool = flag("--dry-run", help="Print the runs and their status; start nothing."),
    partition: Optional[str] = typer.Option(None, "--partition", help="SLURM partition (slurm launcher)."),
    gpus_per_run: int = typer.Option(1, "--gpus-per-run", help="GPUs per run (N > 1: torchrun / SLURM tasks)."),
    time_min: int = typer.Option(24 * 60, "--time", help="SLURM time limit per job, in minutes."),
    mem_gb: Optional[int] = typer.Option(None, "--mem", help="SLURM memory per job, in GB."),
    slurm_cluster: Optional[str] = typer.Option(
        None, "--slurm-cluster", help="submitit cluster (slurm launcher): SLURM when sbatch is found, else refused; "
        "local or debug run the jobs on this machine, on purpose.",
    ),
    **values: Any,
) -> None:
    """Train every run of a grid (each repeated option is an axis), evaluate each, compare them all.

    Re-running the same command skips done runs, resumes interrupted ones and starts the rest.
    """
    from stylecls.sweep import launcher as make_launcher
    from stylecls.sweep import run_sweep
    from stylecls.sweep.launchers import Interrupted

    if list_presets:
        _list_presets()
        return
    if list_hparams:
        _list_hparams(values["dataset"], values["block"])
        return
    if out is None and dry_run:
        out = Path("sweeps") / (preset or values["dataset"])  # a dry run writes nothing; shown as if there
        console.print(f"no --out: the runs as they would be under {out}", highlight=False)
    if out is None:
        raise StyleclsError("--out is required: the folder that holds the sweep's runs")
    if jobs < 1:
        raise StyleclsError(f"--jobs must be >= 1, got {jobs}")
    values = dict(ctx.params)
    if preset is not None:
        values = _with_preset(preset, values, _given(ctx))
    options: dict[str, Any] = {"jobs": jobs, "gpus_per_run": gpus_per_run} if launcher == "local" else {
        "partition": partition, "gpus_per_run": gpus_per_run, "time_min": time_min, "mem_gb": mem_gb,
        "cluster": slurm_cluster,
    }  # fmt: skip
    chosen = make_launcher(launcher, **options)
    if launcher == "slurm" and not dry_run:
        chosen.executor(out / "logs" / "slurm")  # type: ignore[attr-defined]  # fails now if submitit is missing
    plan = _plan(values, out, {"name": launcher, **options})
    try:
        result = run_sweep(plan, chosen, console, dry_run=dry_run)
    except Interrupted as e:
        console.print(f"[yellow]sweep stopped ({e})[/]: its runs are interrupted; re-run the same command to "
                      "resume them", highlight=False)
        raise typer.Exit(e.exit_code) from None
    if result.failed:
        console.print(f"[red]{len(result.failed)} run(s) failed[/]: {', '.join(result.failed)}; fix and re-run "
                      "the same command to resume them", highlight=False)
        raise typer.Exit(1)
    if result.comparison is not None and not dry_run:
        raise typer.Exit(1)  # the runs are done, but no comparison describes them


@app.command("status")
def status_cmd(out: Path = typer.Argument(..., help="A run folder, a sweep folder or any folder of runs.")) -> None:
    """Where each run stands: not started / running / interrupted / failed / done, epoch, best val, test top-1."""
    from stylecls.sweep import status_frame, status_table

    if out.is_file():
        raise StyleclsError(f"{out} is a file; give a run folder, a sweep folder (its --out) or a folder of runs")
    frame = status_frame(out)
    if frame.empty:
        raise StyleclsError(f"{out} holds no runs (no sweep and no run folder in it)")
    console.print(status_table(frame, str(out)))
