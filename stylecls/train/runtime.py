"""How a run executes: torchrun processes, threads, RNG state, signals.

Signals: SIGTERM (what ``kill``, SLURM and Kubernetes send) and SIGUSR1 (SLURM's
warning before preemption) become a :class:`Preempted` exception raised between two training steps.
"""

from __future__ import annotations

import os
import platform
import random
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from stylecls.device import Dist, dist_from_env, is_main_process, select_device
from stylecls.errors import Signalled

__all__ = [
    "Dist", "Preempted", "StopFlag", "apply_threads", "broadcast", "default_workers", "dist_from_env",
    "is_main_process", "process_group", "rng_state", "seed_everything", "select_device", "set_rng_state", "versions",
]


def available_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_workers(device: torch.device) -> int:
    """Loader processes: most cores on a GPU machine; on the CPU the workers compete with the model."""
    cpus = available_cpus()
    if device.type == "cuda":
        return min(8, max(1, cpus - 1))
    return 0 if cpus <= 2 else min(4, cpus // 2)


def apply_threads(threads: int | None) -> int:
    """Set torch's intra-op threads (a sweep gives each run its share of the cores); returns the count."""
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def rng_state() -> dict[str, Any]:
    """Every RNG as tensors and plain lists, so ``torch.load(weights_only=True)`` reads it back."""
    np_state: tuple[Any, ...] = tuple(np.random.get_state())
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def versions() -> dict[str, str]:
    import torchvision

    import stylecls

    return {
        "stylecls": stylecls.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
    }


@contextmanager
def process_group(ddp: Dist, device_hint: str) -> Iterator[None]:
    """Join torchrun's process group for the run (gloo on the CPU, NCCL on GPUs)."""
    if not ddp.enabled or dist.is_initialized():
        yield
        return
    cuda = device_hint != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(ddp.local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def broadcast(ddp: Dist, value: Any) -> Any:
    """Rank 0's ``value`` on every rank."""
    if not ddp.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class Preempted(Signalled):
    """SIGTERM or SIGUSR1 arrived: the loop stops after the current step; the run is resumable."""


class StopFlag:
    """Set by SIGTERM/SIGUSR1 while installed; the loop calls :meth:`check` between steps."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self) -> None:
        self.signum: int | None = None

    def check(self) -> None:
        if self.signum is not None:
            raise Preempted(self.signum)

    @contextmanager
    def installed(self) -> Iterator[StopFlag]:
        """Catch the signals for the duration (main thread only; elsewhere a no-op), then restore."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield self
            return

        def handler(signum: int, frame: Any) -> None:
            self.signum = signum

        previous = {s: signal.signal(s, handler) for s in self.SIGNALS}
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
