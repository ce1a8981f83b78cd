"""Sweeps: a grid of runs (blocks x seeds x held-out domains x splits ...) as one restartable study.

Python API::

    from stylecls.spec import RunSpec, RuntimeOptions
    from stylecls.sweep import GridAxes, LocalLauncher, SweepPlan, expand_grid, run_sweep
    specs = expand_grid(RunSpec(dataset="demo", epochs=2), GridAxes(block=["none", "se", "srm"], seed=[0, 1]))
    run_sweep(SweepPlan(Path("sweeps/demo"), specs, RuntimeOptions()), LocalLauncher(jobs=2), console)
"""

from stylecls.sweep.grid import GridAxes, expand_grid
from stylecls.sweep.launchers import LAUNCHERS, LocalLauncher, SlurmLauncher, cpu_budget, launcher
from stylecls.sweep.plan import SweepPlan
from stylecls.sweep.presets import PRESETS, Preset, preset
from stylecls.sweep.run import SweepResult, run_sweep
from stylecls.sweep.status import status_frame, status_table

__all__ = [
    "LAUNCHERS", "PRESETS", "GridAxes", "LocalLauncher", "Preset", "SlurmLauncher", "SweepPlan", "SweepResult",
    "cpu_budget", "expand_grid", "launcher", "preset", "run_sweep", "status_frame", "status_table",
]  # fmt: skip
