"""The callable a SLURM job runs: one sweep run, requeued on preemption or timeout.

Imported only by the ``slurm`` launcher (it needs submitit, the optional ``stylecls[slurm]`` extra).
On SLURM's preemption/timeout signal submitit calls :meth:`RunJob.checkpoint`, which resubmits
this same call; the requeued job's :func:`stylecls.train.run_spec` resumes the run from ``last.pt``.
"""

from __future__ import annotations

import os
from pathlib import Path

import submitit


class RunJob(submitit.helpers.Checkpointable):
    """Train and evaluate the run ``name`` of the sweep in ``out`` (one process per GPU for N > 1)."""

    def __init__(self, out: str, name: str) -> None:
        self.out, self.name = out, name

    def __call__(self) -> str:
        from stylecls.sweep.worker import run_one

        env = submitit.JobEnvironment()
        if env.num_tasks > 1:  # torch.distributed from SLURM's tasks: RANK, WORLD_SIZE, MASTER_ADDR ...
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        cpus = os.environ.get("SLURM_CPUS_PER_TASK")
        return str(run_one(Path(self.out), self.name, threads=int(cpus) if cpus else None))
