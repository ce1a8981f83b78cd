"""Starting, resuming and finishing runs: the run folder's life cycle and its status.

``train`` starts a new run in a folder of its own; ``resume`` continues one from ``last.pt``;
``run_spec`` is what sweeps call: skip a ``done`` run, resume an ``incomplete`` one, start the rest.
A run folder is claimed atomically (``os.mkdir`` of its final name) and locked for the trainer's
life, so two commands never write one folder. its status says ``done`` last of all.
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

from stylecls.atomic import LOCK, now
from stylecls.errors import StyleclsError
from stylecls.record import DONE, FAILED, INTERRUPTED, RUNNING, DataSummary, RunRecord
from stylecls.runfolder import RunFolder, is_run_folder
from stylecls.spec import RunSpec, RuntimeOptions
from stylecls.train.data import RunData, load_data, recorded_data
from stylecls.train.loop import Trainer, fit, log_confusion
from stylecls.train.reporting import console, print_settings
from stylecls.train.runtime import (
    Dist,
    Preempted,
    StopFlag,
    apply_threads,
    broadcast,
    dist_from_env,
    process_group,
    seed_everything,
    select_device,
    versions,
)  # fmt: skip
from stylecls.train.sampler import DomainBalancedSampler


def check_name(name: str) -> str:
    """A run name is one folder inside ``--out``: no separators, no ``..``."""
    if not name or name in (".", "..") or "/" in name or os.sep in name or "\0" in name:
        raise StyleclsError(f"--name {name!r} must be a single folder name (no '/', not '.' or '..')")
    return name


def _out_dir(out: str) -> Path:
    from stylecls.data.paths import writable_folder

    return writable_folder(Path(out), f"--out {out}")


def claim_folder(spec: RunSpec, runtime: RuntimeOptions) -> Path:
    """Create this run's folder atomically: ``--name`` exactly, else the spec's name with the next free suffix.

    An existing, empty ``--name`` folder is accepted (the run's lock then decides who trains in it).
    """
    out = _out_dir(runtime.out)
    if runtime.name:
        path = out / check_name(runtime.name)
        try:
            path.mkdir()
        except FileExistsError:
            if is_run_folder(path):
                raise StyleclsError(
                    f"{path} already holds a run; resume it with --resume {path} or pick another --name"
                ) from None
            if not path.is_dir() or any(p.name != LOCK for p in path.iterdir()):
                raise StyleclsError(f"{path} exists and is not empty; pick another --name or --out") from None
        return path
    base, n = spec.run_name(), 1
    while True:
        path = out / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1


def _summary(spec: RunSpec, data: RunData, trainer: Trainer) -> DataSummary:
    info = data.info
    pixels = trainer.train_set.pixels
    return DataSummary(
        dataset=spec.dataset, root=str(data.root), classes=data.classes, protocol=str(info.get("protocol", "")),
        domains=list(info.get("domains", [])),
        counts=data.counts, complete=bool(info.get("complete", True)),
        pixels=pixels.to_dict(), pixel_source=trainer.train_set.cache_key or "on the fly", info=info,
    )  # fmt: skip


def _pixels_line(trainer: Trainer) -> str:
    """The start-of-run line naming the pixels and their source, and why a cache was not used."""
    note = trainer.train_set.cache_note
    return trainer.train_set.describe() + (f"\n  [yellow]note:[/] {note}" if note else "")


def _start(spec: RunSpec, runtime: RuntimeOptions, folder: RunFolder, ddp: Dist) -> Path:
    """A new run in an empty, claimed ``folder``."""
    device = select_device(runtime.device, ddp)
    threads = apply_threads(runtime.threads)
    data = load_data(spec, runtime.data_root)
    seed_everything(spec.seed)
    trainer = Trainer(spec, runtime, data, folder, ddp, device)
    if ddp.main:
        record_runtime = trainer.runtime_record(runtime, threads)
        print_settings(spec, data.info, data.counts, folder.path, record_runtime, _pixels_line(trainer))
        report = getattr(trainer.net, "load_report", None)
        if report is not None:
            console.print(f"  weights  {report.summary()}")
        if isinstance(trainer.train_sampler, DomainBalancedSampler):
            console.print(f"  batches  {trainer.train_sampler.per_batch()}")
        folder.write_record(RunRecord(
            name=folder.path.name, spec=spec, data=_summary(spec, data, trainer), runtime=record_runtime,
            versions=versions(), parameters=trainer.parameters, created=now(),
        ))  # fmt: skip
        folder.write_rows(data.frame, data.root)
        trainer.save("last")  # epoch 0: an interrupt in the first epoch still leaves a resumable run
    return _run(trainer, runtime)


def _resume(folder: RunFolder, runtime: RuntimeOptions, ddp: Dist) -> Path:
    record = folder.record()
    spec = record.spec
    device = select_device(runtime.device, ddp)
    threads = apply_threads(runtime.threads)
    data = recorded_data(folder)
    seed_everything(spec.seed)
    trainer = Trainer(spec, runtime, data, folder, ddp, device)
    state = folder.load_checkpoint("last")  # on the CPU: RNG states must stay CPU tensors
    try:
        trainer.load_state(state, folder.checkpoint_path("last"))
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        why = f"it holds no {e}" if isinstance(e, KeyError) else (str(e).strip() or type(e).__name__).splitlines()[0]
        raise StyleclsError(f"{folder.checkpoint_path('last')} cannot resume this run: {why[:160]}") from None
    if trainer.epoch >= int(spec.epochs):  # type: ignore[arg-type]
        if ddp.main:
            if not folder.status().finished:  # stopped between the last checkpoint and the done marker
                folder.set_status(DONE, epoch=trainer.epoch, best_epoch=trainer.best_epoch,
                                 best_val_acc=trainer.best_val_acc, finished=now())
            epochs = f"{spec.epochs} epoch{'s' if spec.epochs != 1 else ''}"
            console.print(f"{folder.path} already finished its {epochs}; nothing to resume")
        return folder.path
    if ddp.main:
        folder.trim_metrics(trainer.epoch)
        console.print(f"[bold]stylecls train[/] resuming {folder.path} after epoch {trainer.epoch} of {spec.epochs}"
                      f" ({trainer.runtime_record(runtime, threads)['device']})")
    return _run(trainer, runtime)


def _wants_tensorboard(runtime: RuntimeOptions) -> bool:
    from stylecls.tensorboard import require_tensorboard, tensorboard_default

    wanted = runtime.tensorboard if runtime.tensorboard is not None else tensorboard_default()
    if wanted:
        require_tensorboard()  # before any folder is claimed, not after the header
    return wanted


def _loggers(trainer: Trainer, runtime: RuntimeOptions) -> list[Any]:
    """TensorBoard when asked for (``--tensorboard``, or ``$STYLECLS_TENSORBOARD=1``); metrics.csv stays
    the source of truth."""
    if not trainer.ddp.main:
        return []
    from stylecls.tensorboard import TensorBoardLogger

    if not _wants_tensorboard(runtime):
        return []
    logger = TensorBoardLogger(trainer.folder.path)
    console.print(f"  tensorboard  {logger.describe()}")
    return [logger]


def _run(trainer: Trainer, runtime: RuntimeOptions) -> Path:
    """Fit, then record how the run ended: done, interrupted (resumable) or failed."""
    folder, ddp = trainer.folder, trainer.ddp
    started = time.perf_counter()
    previous = float(folder.status().details.get("seconds", 0.0)) if ddp.main else 0.0
    show = ddp.main and (runtime.progress if runtime.progress is not None else console.is_terminal)
    stop = StopFlag()
    loggers = _loggers(trainer, runtime)
    if ddp.main:
        folder.set_status(RUNNING, epoch=trainer.epoch, pid=os.getpid())
    try:
        with stop.installed():
            fit(trainer, stop, show, loggers)
            log_confusion(trainer, loggers)
    except (KeyboardInterrupt, Preempted) as e:
        if ddp.main:
            why = "Ctrl-C" if isinstance(e, KeyboardInterrupt) else str(e)
            _final_status(folder, INTERRUPTED, reason=why, epoch=trainer.saved_epoch)
            done = f"epoch {trainer.saved_epoch}" if trainer.saved_epoch else "the initial weights"
            console.print(f"[yellow]interrupted ({why}) in epoch {trainer.saved_epoch + 1}[/]: last.pt holds "
                          f"{done} (the unfinished epoch is not kept)")
            console.print(f"resume with: stylecls train --resume {folder.path}")
        raise
    except BaseException as e:
        if ddp.main:
            why = str(e) if isinstance(e, StyleclsError) else f"{type(e).__name__}: {e}"
            _final_status(folder, FAILED, reason=why, epoch=trainer.saved_epoch)
        raise
    finally:
        for logger in loggers:
            logger.close()
    if ddp.main:
        seconds = round(previous + time.perf_counter() - started, 1)
        folder.set_status(DONE, epoch=trainer.epoch, best_epoch=trainer.best_epoch, best_val_acc=trainer.best_val_acc,
                         seconds=seconds, finished=now())  # the done marker: the last write of a run
        console.print(f"done: best val acc {100 * trainer.best_val_acc:.1f}% at epoch {trainer.best_epoch}; "
                      f"next: stylecls evaluate {folder.path}")
    return folder.path


def _final_status(folder: RunFolder, state: str, **details: Any) -> None:
    """Record how the run ended, unless that write fails too (a full disk): the error that ended the run
    is the one to report, and the status keeps its last good epoch."""
    try:
        folder.set_status(state, **details)
    except (StyleclsError, OSError) as e:
        console.print(f"[yellow]note:[/] the run's status could not be updated to {state!r} ({e})")


def _locked(folder: RunFolder, ddp: Dist) -> Any:
    return folder.lock() if ddp.main else nullcontext()


def train(spec: RunSpec, runtime: RuntimeOptions | None = None) -> Path:
    """Train one new run and return its folder (``<out>/<name>``).

    Under torchrun every process calls this; rank 0 claims and writes the folder. ``protocol="lodo"``
    needs a ``test_domain`` here; :func:`train_all` runs every held-out domain.
    """
    runtime = runtime or RuntimeOptions()
    spec = spec.resolved()
    if spec.protocol == "lodo" and spec.test_domain is None:
        raise StyleclsError("the lodo protocol trains one run per test domain: give test_domain, or call train_all()")
    _wants_tensorboard(runtime)
    ddp = dist_from_env()
    with process_group(ddp, runtime.device):
        existed = runtime.name is not None and (Path(runtime.out) / runtime.name).is_dir()
        path = claim_folder(spec, runtime) if ddp.main else None
        folder = RunFolder(Path(broadcast(ddp, str(path) if path else None)), must_exist=False)
        try:
            with _locked(folder, ddp):
                return _start(spec, runtime, folder, ddp)
        except BaseException:
            if ddp.main and not existed and not folder.config_path.exists():  # refused before anything was written
                _remove_unused(folder.path)
            raise


def _remove_unused(path: Path) -> None:
    """Remove a claimed folder that holds nothing but our lock file (bad input found after the claim)."""
    (path / LOCK).unlink(missing_ok=True)
    try:
        path.rmdir()
        path.parent.rmdir()  # an --out made for this run alone
    except OSError:
        pass


def run_spec(spec: RunSpec, runtime: RuntimeOptions, run_dir: str | Path) -> Path:
    """Bring the run of ``spec`` in ``run_dir`` to ``done``: skip it if done, resume it if incomplete,
    start it if absent. A folder holding another spec is refused, never overwritten."""
    spec = spec.resolved()
    _wants_tensorboard(runtime)
    folder = RunFolder(run_dir, must_exist=False)
    ddp = dist_from_env()
    with process_group(ddp, runtime.device):
        if ddp.main:
            _out_dir(str(folder.path.parent))
        with _locked(folder, ddp):
            if folder.config_path.is_file():
                if diff := folder.spec().differences(spec):
                    shown = "; ".join(f"{k}: {a!r} there, {b!r} here" for k, (a, b) in list(diff.items())[:4])
                    raise StyleclsError(f"{folder.path} holds a run of another spec ({shown}); "
                                        "pick another --out or remove it")
                if folder.status().finished:
                    if ddp.main:
                        console.print(f"{folder.path} is done; skipped")
                    return folder.path
                if folder.checkpoint_path("last").is_file():
                    return _resume(folder, runtime, ddp)
                if ddp.main:  # died before its first checkpoint: nothing to keep
                    folder.discard()
            return _start(spec, runtime, folder, ddp)


def train_all(spec: RunSpec, runtime: RuntimeOptions | None = None) -> list[Path]:
    """Every run ``spec`` asks for: one per held-out domain for ``lodo`` without a test domain (named
    ``<name>-<domain>``, or each spec's own name), else the one run. A lodo re-run skips the finished
    domains and resumes the interrupted one."""
    runtime = runtime or RuntimeOptions()
    spec = spec.resolved()
    if spec.protocol != "lodo" or spec.test_domain is not None:
        return [train(spec, runtime)]
    from stylecls.data import domains_of

    domains = domains_of(spec.dataset, runtime.data_root)
    if len(domains) < 2:
        raise StyleclsError(f"{spec.dataset} has one domain; the lodo protocol needs several")
    out = _out_dir(runtime.out)
    paths = []
    for domain in domains:
        one = replace(spec, test_domain=domain)
        name = f"{check_name(runtime.name)}-{domain}" if runtime.name else one.run_name()
        paths.append(run_spec(one, replace(runtime, name=None), out / name))
    return paths


def resume(run_dir: str | Path, device: str | None = None, workers: int | None = None,
           progress: bool | None = None, threads: int | None = None, tensorboard: bool | None = None) -> Path:
    """Continue a run from its ``last.pt`` with the spec it was started with; only where it runs may
    change (``device``, ``workers``, ``threads``, ``progress``, ``tensorboard``). A finished run is left as it is."""
    folder = RunFolder(run_dir)
    record = folder.record()
    if record.schema_version == 1:
        raise StyleclsError(f"{folder.path} was written by stylecls 0.1 (schema 1); it evaluates and compares, "
                            "but cannot be resumed by this version")
    if not folder.checkpoint_path("last").is_file():
        raise StyleclsError(f"{folder.path} has no last.pt to resume from")
    runtime = RuntimeOptions.from_dict(record.runtime.get("requested", {}))
    runtime = replace(
        runtime, device=device or runtime.device, progress=progress,
        workers=workers if workers is not None else runtime.workers,
        threads=threads if threads is not None else runtime.threads, out=str(folder.path.parent), name=folder.path.name,
        tensorboard=tensorboard if tensorboard is not None else runtime.tensorboard,
    )  # fmt: skip
    _wants_tensorboard(runtime)
    ddp = dist_from_env()
    with process_group(ddp, runtime.device), _locked(folder, ddp):
        return _resume(folder, runtime, ddp)
