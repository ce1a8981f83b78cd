"""Optimizer and learning-rate schedule of a run, from its spec."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from stylecls.spec import RunSpec


def param_groups(model: nn.Module, weight_decay: float, norm_bias_decay: bool = True) -> list[dict[str, Any]]:
    """Two groups: with and without weight decay.

    SRM's parameters never decay (the paper; :func:`stylecls.blocks.no_weight_decay_names`); with
    ``norm_bias_decay=False`` neither do 1-d parameters (BatchNorm scales/shifts, biases).
    """
    from stylecls.blocks import no_weight_decay_names

    exempt = no_weight_decay_names(model)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name in exempt or (not norm_bias_decay and p.ndim <= 1):
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, spec: RunSpec) -> torch.optim.Optimizer:
    """SGD with (Nesterov-free) momentum, or AdamW, over :func:`param_groups`."""
    groups = param_groups(model, float(spec.weight_decay or 0.0), spec.norm_bias_decay)
    if spec.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=float(spec.lr or 0.0))
    return torch.optim.SGD(groups, lr=float(spec.lr or 0.0), momentum=spec.momentum)


def build_scheduler(
    optimizer: torch.optim.Optimizer, spec: RunSpec, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-iteration schedule: linear warmup over ``warmup_epochs``, then cosine to 0, a x0.1 step
    at 50% and 75% of training, or a constant rate. Stepped once per optimizer step."""
    from torch.optim import lr_scheduler as sched

    total = max(1, int(spec.epochs or 1) * steps_per_epoch)
    warmup = min(int(spec.warmup_epochs or 0) * steps_per_epoch, total - 1)
    rest = total - warmup
    if spec.schedule == "cosine":
        main: sched.LRScheduler = sched.CosineAnnealingLR(optimizer, T_max=rest)
    elif spec.schedule == "step":
        main = sched.MultiStepLR(optimizer, milestones=[rest // 2, rest * 3 // 4], gamma=0.1)
    else:
        main = sched.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if warmup == 0:
        return main
    ramp = sched.LinearLR(optimizer, start_factor=0.01, end_factor=1.0, total_iters=warmup)
    return sched.SequentialLR(optimizer, [ramp, main], milestones=[warmup])
