"""Which device and which torchrun process: one answer for training, evaluation and prediction,
so ``--device`` means the same everywhere."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from stylecls.errors import StyleclsError, unknown_name


@dataclass(frozen=True)
class Dist:
    """This process's place in a torchrun job (a single process by default)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def dist_from_env() -> Dist:
    """torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; without them this is a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    return Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def is_main_process() -> bool:
    """False in the torchrun processes other than rank 0 (they train but do not write or report)."""
    return dist_from_env().main


def select_device(requested: str = "auto", ddp: Dist | None = None) -> torch.device:
    """``auto`` is CUDA when present, else the CPU; under torchrun each process takes its local GPU."""
    ddp = ddp or Dist()
    req = requested.lower()
    if req == "auto":
        req = "cuda" if torch.cuda.is_available() else "cpu"
    if req == "cpu":
        return torch.device("cpu")
    if req.startswith("cuda"):
        if not torch.cuda.is_available():
            raise StyleclsError(
                f"--device {requested} asked for CUDA, but this PyTorch ({torch.__version__}) sees no CUDA GPU; "
                "use --device cpu (or auto)"
            )
        if ddp.enabled:
            return torch.device("cuda", ddp.local_rank)
        try:
            device = torch.device(req)
        except RuntimeError:
            raise unknown_name("device", requested, ("auto", "cpu", "cuda", "cuda:N")) from None
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise StyleclsError(f"--device {requested}: only {torch.cuda.device_count()} CUDA device(s) here")
        return device
    raise unknown_name("device", requested, ("auto", "cpu", "cuda", "cuda:N"))
