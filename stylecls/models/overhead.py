"""What a recalibration block costs: parameters, FLOPs, and measured step-time ratios.

Timings on shared machines are noisy, so every block is timed side by side with the plain
backbone by ``torch.utils.benchmark`` (one timed block of each per repeat, alternating which goes
first, so a burst of load from elsewhere hits both), and we report the median of the per-repeat
ratios.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils import benchmark
from torch.utils.flop_counter import FlopCounterMode

from stylecls.models import build_model, count_parameters


@dataclass
class BlockCost:
    """One row of the overhead table (times in milliseconds, ratios against ``block='none'``)."""

    arch: str
    block: str
    params: int
    gflops: float
    train_ms: float | None = None
    infer_ms: float | None = None
    train_ratio: float | None = None
    infer_ratio: float | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def count_gflops(model: nn.Module, img_size: int, batch: int = 1) -> float:
    """Forward GFLOPs per image (torch.utils.flop_counter: one multiply-add = 2 FLOPs)."""
    x = torch.randn(batch, 3, img_size, img_size)
    was_training = model.training
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    model.train(was_training)
    return counter.get_total_flops() / batch / 1e9


def _train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        model.train()
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    return step


def _infer_step(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        model.eval()
        with torch.inference_mode():
            model(x)

    return step


def _timer(fn: Callable[[], None], what: str) -> benchmark.Timer:
    # Timer defaults to one thread; a training step uses all of them
    return benchmark.Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads(), description=what)


def side_by_side(
    base: Callable[[], None], other: Callable[[], None], repeats: int, min_run_time: float = 0.2
) -> tuple[float, float, float]:
    """Median seconds of ``base``, of ``other``, and the median of the per-repeat ratios other/base.

    Each repeat runs one ``Timer.blocked_autorange`` of each, alternating which goes first, so load
    from elsewhere falls on both. Its block-size estimate is an untimed first call after every switch
    of model (a warm-up); a step slower than ``min_run_time`` is then timed once.
    """
    timers = (_timer(base, "base"), _timer(other, "other"))
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(repeats):
        for k in ((0, 1) if i % 2 == 0 else (1, 0)):
            times[k].append(timers[k].blocked_autorange(min_run_time=min_run_time).median)
    ratios = [o / b for b, o in zip(*times, strict=True)]
    return statistics.median(times[0]), statistics.median(times[1]), statistics.median(ratios)


def measure_overhead(
    arch: str,
    blocks: Iterable[str],
    img_size: int,
    batch: int = 16,
    num_classes: int = 1000,
    time_steps: bool = True,
    repeats: int = 10,
    min_run_time: float = 0.2,
    progress: Callable[[str], None] | None = None,
    modes: Iterable[str] = ("train", "infer"),
) -> list[BlockCost]:
    """Parameters, GFLOPs and (optionally) train/inference ratios of each block against the plain net.

    ``modes`` says which steps are timed (``"train"``, ``"infer"`` or both)."""
    modes = tuple(modes)
    torch.manual_seed(0)
    plain = build_model(arch, "none", num_classes=num_classes)
    x = torch.randn(batch, 3, img_size, img_size)
    y = torch.randint(0, num_classes, (batch,))
    rows: list[BlockCost] = []
    plain_train, plain_infer = _train_step(plain, x, y), _infer_step(plain, x)
    for block in blocks:
        if progress:
            progress(f"{arch} / {block}")
        model = plain if block == "none" else build_model(arch, block, num_classes=num_classes)
        row = BlockCost(arch, block, count_parameters(model), round(count_gflops(model, img_size), 4))
        if time_steps and "train" in modes:
            _, to, row.train_ratio = side_by_side(plain_train, _train_step(model, x, y), repeats, min_run_time)
            row.train_ms = to * 1e3
        if time_steps and "infer" in modes:
            _, io, row.infer_ratio = side_by_side(plain_infer, _infer_step(model, x), repeats, min_run_time)
            row.infer_ms = io * 1e3
        rows.append(row)
    return rows
