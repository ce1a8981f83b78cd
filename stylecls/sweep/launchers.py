"""Launchers run a sweep's pending runs and report which failed (a registry, like DomainBed's
``command_launchers``): ``local`` runs them as subprocesses on this machine, ``slurm`` as SLURM jobs.

On a CPU, the local launcher splits the cores between the runs it holds at once (``torch`` threads
and ``OMP_NUM_THREADS``; loader workers only when a run has cores to spare), so ``--jobs 2`` on two
cores does not make each run fight for both. On GPUs it gives each run its own GPU(s).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from stylecls.errors import Signalled, StyleclsError
from stylecls.spec import RunSpec
from stylecls.sweep.plan import SweepPlan

__all__ = [
    "LAUNCHERS", "Interrupted", "Launcher", "LocalLauncher", "SlurmLauncher", "cpu_budget", "launcher", "log_tail",
]  # fmt: skip

TAIL_LINES = 15
STOP_GRACE_S = 60.0  # how long stopped runs get to finish their step and record "interrupted"


class Interrupted(Signalled):
    """Ctrl-C or SIGTERM reached the sweep; its runs were asked to stop and record where they are."""


@contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` while the launcher waits on its runs (main thread only)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        for s in (signal.SIGINT, signal.SIGTERM):  # the runs are being stopped: a second signal must not cut that
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class Launcher(Protocol):
    name: str

    def launch(self, plan: SweepPlan, runs: list[RunSpec], console: Console) -> list[str]:
        """Run ``runs`` of ``plan`` to completion; returns the names of the runs that failed."""
        ...


def log_path(plan: SweepPlan, name: str) -> Path:
    return plan.out / "logs" / f"{name}.log"


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def cpu_budget(jobs: int, cores: int | None = None) -> tuple[int, int]:
    """(torch threads, loader workers) for each of ``jobs`` runs sharing ``cores``: never more than
    the run's share; loader workers only from 4 cores a run (half its share), else 0."""
    cores = cores or len(os.sched_getaffinity(0))
    share = max(1, cores // jobs)
    workers = share // 2 if share >= 4 else 0
    return share - workers, workers


def _progress(console: Console) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def _counts(done: int, running: int, failed: int) -> str:
    return f"runs: [green]{done} done[/] · {running} running · [red]{failed} failed[/]"


@dataclass
class LocalLauncher:
    """Up to ``jobs`` runs at once as ``python -m stylecls.sweep.worker`` subprocesses (``torchrun``
    for ``gpus_per_run`` > 1); each logs to ``<out>/logs/<run>.log``."""

    jobs: int = 1
    gpus_per_run: int = 1
    name: str = "local"

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise StyleclsError(f"--jobs must be >= 1, got {self.jobs}")
        if self.gpus_per_run < 1:
            raise StyleclsError(f"--gpus-per-run must be >= 1, got {self.gpus_per_run}")

    def slots(self, device: str) -> list[dict[str, str]]:
        """One environment per run that may run at once: its GPUs, or its share of the CPU."""
        gpus = [] if device == "cpu" else _visible_gpus()
        if gpus:
            groups = [gpus[i:i + self.gpus_per_run] for i in range(0, len(gpus) - self.gpus_per_run + 1,
                                                                   self.gpus_per_run)]
            if not groups:
                raise StyleclsError(f"--gpus-per-run {self.gpus_per_run} but {len(gpus)} GPU(s) visible")
            groups = groups[: self.jobs]
            threads = max(1, len(os.sched_getaffinity(0)) // len(groups))
            return [{"CUDA_VISIBLE_DEVICES": ",".join(g), "OMP_NUM_THREADS": str(threads)} for g in groups]
        if self.gpus_per_run > 1:
            raise StyleclsError(f"--gpus-per-run {self.gpus_per_run} needs GPUs; none is visible")
        threads, workers = cpu_budget(self.jobs)
        return [{"OMP_NUM_THREADS": str(threads), "STYLECLS_SWEEP_WORKERS": str(workers)}] * self.jobs

    def command(self, plan: SweepPlan, name: str, env: dict[str, str]) -> list[str]:
        worker = ["-m", "stylecls.sweep.worker", str(plan.out), name]
        if plan.runtime.threads is None:  # an explicit --threads wins over the share
            worker += ["--threads", env["OMP_NUM_THREADS"]]
        if "STYLECLS_SWEEP_WORKERS" in env and plan.runtime.workers is None:
            worker += ["--workers", env["STYLECLS_SWEEP_WORKERS"]]
        if self.gpus_per_run > 1:
            return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc_per_node={self.gpus_per_run}", *worker]
        return [sys.executable, *worker]

    def launch(self, plan: SweepPlan, runs: list[RunSpec], console: Console) -> list[str]:
        free, queue = self.slots(plan.runtime.device), deque(s.run_name() for s in runs)
        running: dict[str, tuple[subprocess.Popen[bytes], dict[str, str], IO[bytes]]] = {}
        done, failed = 0, []
        with _progress(console) as bar, _signals_raise():
            task = bar.add_task(_counts(0, 0, 0), total=len(queue))
            try:
                while queue or running:
                    while queue and free:
                        name, env = queue.popleft(), free.pop()
                        running[name] = self._start(plan, name, env)
                    time.sleep(0.2)
                    for name, (proc, env, log) in list(running.items()):
                        if proc.poll() is None:
                            continue
                        log.close()
                        del running[name]
                        free.append(env)
                        if proc.returncode == 0:
                            done += 1
                            bar.console.print(f"[green]done[/] {name}", highlight=False)
                        else:
                            failed.append(name)
                            _report_failure(bar.console, name, proc.returncode, log_path(plan, name))
                        bar.advance(task)
                    bar.update(task, description=_counts(done, len(running), len(failed)))
            except (Interrupted, KeyboardInterrupt):
                bar.console.print(f"[yellow]stopping[/] {len(running)} run(s): each records where it is "
                                  f"(last.pt keeps its last finished epoch); re-run the same command to resume",
                                  highlight=False)
                _stop(running)
                raise
        return failed

    def _start(self, plan: SweepPlan, name: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], dict, IO]:
        path = log_path(plan, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        log = open(path, "ab")  # noqa: SIM115 - closed when the run ends
        log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(self.command(plan, name, env))}\n".encode())
        log.flush()
        child_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        child_env.pop("STYLECLS_SWEEP_WORKERS", None)
        # a session of its own: a terminal's Ctrl-C reaches the sweep only, which stops each run with one SIGTERM
        # (a second signal while a run records "interrupted" would cut that write short)
        proc = subprocess.Popen(self.command(plan, name, env), stdout=log, stderr=subprocess.STDOUT, env=child_env,
                                start_new_session=True)
        return proc, env, log


def _visible_gpus() -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return []
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [g for g in given.split(",") if g.strip()] if given else [str(i) for i in range(torch.cuda.device_count())]
    return ids[: torch.cuda.device_count()]


def _stop(running: dict[str, Any], grace_s: float = STOP_GRACE_S) -> None:
    """One SIGTERM to every run (it stops after its current step and records "interrupted"), then wait
    (the signal handler ignores further signals meanwhile). A run still going after ``grace_s`` is killed."""
    for proc, _, _ in running.values():
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace_s
    for proc, _, log in running.values():
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _report_failure(console: Console, name: str, code: int | None, log: Path) -> None:
    console.print(f"[red]failed[/] {name} (exit {code}); last lines of {log}:", highlight=False)
    console.print(log_tail(log), highlight=False, markup=False, soft_wrap=True)


@dataclass
class SlurmLauncher:
    """One SLURM job per run through submitit (an array when submitted together); ``cluster="local"``
    runs the same path on this machine (submitit's LocalExecutor), which is how it is tested."""

    partition: str | None = None
    gpus_per_run: int = 1
    time_min: int = 24 * 60
    mem_gb: int | None = None
    cluster: str | None = None  # None: SLURM when available (submitit.AutoExecutor), "local", "debug"
    name: str = "slurm"

    def executor(self, folder: Path) -> Any:
        try:
            import submitit
        except ImportError:
            raise StyleclsError('the slurm launcher needs submitit: pip install "stylecls[slurm]" '
                                '(from a clone: pip install -e ".[slurm]")') from None
        if self.cluster is None and shutil.which("sbatch") is None:  # submitit would quietly run the jobs here
            raise StyleclsError("--launcher slurm needs SLURM, but sbatch is not on PATH here; run it on the cluster's "
                                "login node, or use --launcher local (or --slurm-cluster local: submitit's "
                                "local executor)")
        executor = submitit.AutoExecutor(folder=folder, cluster=self.cluster)
        params: dict[str, Any] = {"timeout_min": self.time_min, "name": "stylecls-sweep"}
        if self.cluster != "local":  # the local executor would try to share GPUs it does not have
            params.update(gpus_per_node=self.gpus_per_run, tasks_per_node=self.gpus_per_run)
        if self.mem_gb:
            params["mem_gb"] = self.mem_gb
        if self.partition:
            params["slurm_partition"] = self.partition
        executor.update_parameters(**params)
        return executor

    def launch(self, plan: SweepPlan, runs: list[RunSpec], console: Console) -> list[str]:
        executor = self.executor(plan.out / "logs" / "slurm")
        from stylecls.sweep.slurm_job import RunJob

        names = [s.run_name() for s in runs]
        with executor.batch():
            jobs = [executor.submit(RunJob(str(plan.out), name)) for name in names]
        console.print(f"submitted {len(jobs)} job(s): {', '.join(str(j.job_id) for j in jobs)}", highlight=False)
        return _wait(jobs, names, console)


def _wait(jobs: list[Any], names: list[str], console: Console) -> list[str]:
    pending, failed, done = dict(zip(names, jobs, strict=True)), [], 0
    with _progress(console) as bar:
        task = bar.add_task(_counts(0, len(jobs), 0), total=len(jobs))
        while pending:
            time.sleep(1.0)
            for name, job in list(pending.items()):
                if not job.done():
                    continue
                del pending[name]
                try:
                    job.result()
                    done += 1
                    bar.console.print(f"[green]done[/] {name}", highlight=False)
                except Exception as e:  # noqa: BLE001 - submitit wraps the job's own failure
                    failed.append(name)
                    bar.console.print(f"[red]failed[/] {name} (job {job.job_id}); last lines:", highlight=False)
                    tail = "\n".join(str(e).splitlines()[-TAIL_LINES:])
                    bar.console.print(tail, highlight=False, markup=False, soft_wrap=True)
                bar.advance(task)
            bar.update(task, description=_counts(done, len(pending), len(failed)))
    return failed


LAUNCHERS: dict[str, Callable[..., Launcher]] = {"local": LocalLauncher, "slurm": SlurmLauncher}


def launcher(name: str, **options: Any) -> Launcher:
    """The launcher called ``name`` with its options (unknown names list the known ones)."""
    from stylecls.errors import unknown_name

    if name not in LAUNCHERS:
        raise unknown_name("launcher", name, LAUNCHERS)
    return LAUNCHERS[name](**options)
