"""Training: one call trains one model on one protocol split and leaves a complete run folder behind.

The same loop runs on the CPU, one GPU, or many through ``torchrun`` (DistributedDataParallel with a
DistributedSampler; only rank 0 writes). What a run *is* lives in :class:`~stylecls.spec.RunSpec`;
how it executes in :class:`~stylecls.spec.RuntimeOptions`.

Python API::

    from stylecls.spec import RunSpec, RuntimeOptions
    from stylecls.train import train, train_all, resume, run_spec
    run_dir = train(RunSpec(dataset="demo", block="srm", epochs=2), RuntimeOptions(out="runs"))
"""

from stylecls.train.loop import NonFiniteLoss, Trainer
from stylecls.train.optim import build_optimizer, build_scheduler, param_groups
from stylecls.train.run import claim_folder, resume, run_spec, train, train_all
from stylecls.train.runtime import Preempted, is_main_process, select_device

__all__ = [
    "NonFiniteLoss",
    "Preempted",
    "Trainer",
    "build_optimizer",
    "build_scheduler",
    "claim_folder",
    "is_main_process",
    "param_groups",
    "resume",
    "run_spec",
    "select_device",
    "train",
    "train_all",
]
