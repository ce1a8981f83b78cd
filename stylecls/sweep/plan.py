"""A sweep's plan: its runs, where they live, how they execute; stored as ``<out>/sweep.json``.

The plan is what a worker (local subprocess or SLURM job) reads to know its run, and what
``stylecls status`` reads to list the runs. Run folders are named by :meth:`RunSpec.run_name`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stylecls.atomic import now, write_json
from stylecls.errors import StyleclsError
from stylecls.record import NOT_STARTED
from stylecls.runfolder import RunFolder, is_run_folder
from stylecls.spec import RunSpec, RuntimeOptions

__all__ = ["MANIFEST", "SweepPlan", "evaluated"]

MANIFEST = "sweep.json"


def evaluated(run_dir: Path) -> bool:
    """True when the run is done and holds a usable evaluation of its selected checkpoint (a stale, damaged
    or missing one means the sweep evaluates it again)."""
    if not is_run_folder(run_dir):
        return False
    try:
        RunFolder(run_dir).evaluations.selected()
    except StyleclsError:
        return False
    return True


@dataclass(frozen=True)
class SweepPlan:
    out: Path
    specs: list[RunSpec]
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    launcher: Mapping[str, Any] = field(default_factory=dict)  # name, jobs and the launcher's options

    def run_dir(self, spec: RunSpec) -> Path:
        return self.out / spec.run_name()

    def spec_named(self, name: str) -> RunSpec:
        for spec in self.specs:
            if spec.run_name() == name:
                return spec
        raise StyleclsError(f"{self.out / MANIFEST} has no run named {name}")

    def status(self, spec: RunSpec) -> str:
        """The run's state (:data:`stylecls.record.STATES`), from its folder."""
        path = self.run_dir(spec)
        return RunFolder(path, must_exist=False).status().state if path.is_dir() else NOT_STARTED

    def pending(self) -> list[RunSpec]:
        """The runs with work left: not done, or done but not yet evaluated."""
        return [s for s in self.specs if not evaluated(self.run_dir(s))]

    def check_out(self) -> None:
        """Refuse (before anything starts) an ``out`` whose folder of a planned run holds another spec."""
        clashes = []
        for spec in self.specs:
            path = self.run_dir(spec)
            if is_run_folder(path):
                diff = RunFolder(path).spec().differences(spec)
                if diff:
                    shown = ", ".join(f"{k} {a!r} there, {b!r} here" for k, (a, b) in list(diff.items())[:3])
                    clashes.append(f"{path.name} ({shown})")
        if clashes:
            raise StyleclsError(
                f"{self.out} holds runs of another spec under the names this sweep needs: {'; '.join(clashes)}; "
                "pick another --out or remove them"
            )

    # -- sweep.json ----------------------------------------------------------------------------

    def write(self) -> None:
        """``<out>/sweep.json``, atomically."""
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(self.out / MANIFEST, {
            "written": now(),
            "launcher": dict(self.launcher),
            "runtime": self.runtime.to_dict(),
            "runs": [{"name": s.run_name(), "spec": s.to_dict()} for s in self.specs],
        })  # fmt: skip

    @classmethod
    def read(cls, out: str | Path) -> SweepPlan:
        path = Path(out) / MANIFEST
        try:
            values = json.loads(path.read_text())
            specs = [RunSpec.from_dict(r["spec"]) for r in values["runs"]]
            runtime = RuntimeOptions.from_dict(values.get("runtime", {}))
        except FileNotFoundError:
            raise StyleclsError(f"{out} is not a sweep folder: it has no {MANIFEST}") from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise StyleclsError(f"cannot read {path}: {e}") from None
        return cls(Path(out), specs, runtime, values.get("launcher", {}))
