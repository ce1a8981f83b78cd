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
    search: Mapping[str, Any] = field(default_factory=dict)  # hparams, trials, hparams_seed, selection

    @property
    def lodo_selection_runs(self) -> list[RunSpec]:
        """The runs that only serve leave-one-domain-out model selection (a training domain left out)."""
        return [s for s in self.specs if s.val_domain is not None]

    def describe(self) -> str:
        """"12 runs" or "48 runs (36 for lodo selection)"."""
        extra = len(self.lodo_selection_runs)
        return f"{len(self.specs)} runs" + (f" ({extra} for lodo selection)" if extra else "")

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
        if files := [self.run_dir(s).name for s in self.specs if self.run_dir(s).is_file()]:
            raise StyleclsError(f"{self.out} holds files where this sweep's run folders go: {', '.join(files[:3])}"
                                f"{' ...' if len(files) > 3 else ''}; move them away or pick another --out")
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
            "search": dict(self.search),
            "runs": [{"name": s.run_name(), "spec": s.to_dict()} for s in self.specs],
        })  # fmt: skip

    @classmethod
    def read(cls, out: str | Path) -> SweepPlan:
        path = Path(out) / MANIFEST
        try:
            values = json.loads(path.read_text())
            specs = [RunSpec.from_dict(r["spec"]) for r in values["runs"]]
            runtime = RuntimeOptions.from_dict(values.get("runtime", {}))
            launcher, search = dict(values.get("launcher", {})), dict(values.get("search", {}))
        except FileNotFoundError:
            raise StyleclsError(f"{out} is not a sweep folder: it has no {MANIFEST}") from None
        except IsADirectoryError:
            raise StyleclsError(f"{path} is a folder, not a sweep's record") from None
        except StyleclsError as e:
            raise StyleclsError(f"{path} is damaged: {e}; re-run the sweep command to write it again") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            what = f"missing key {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
            raise StyleclsError(f"{path} is damaged ({what}); re-run the sweep command to write it again") from None
        return cls(Path(out), specs, runtime, launcher, search)
