"""Where a recalibration block's time goes, per ResNet-50 stage: the residual join alone vs SE vs SRM.

    python benchmarks/srm_profile.py                     # 128 px, batch 16: the shapes `stylecls models --time` uses
    python benchmarks/srm_profile.py --profile srm       # + torch.profiler's operator table for SRM

Each row times, with torch.utils.benchmark, ``relu(identity + block(x))`` forward+backward (train) and
forward under inference_mode (infer) on one stage's feature shape; ``plain`` is the join without a
block, so ``block - plain`` is what the block adds to that stage (multiply by the stage's unit count,
3/4/6/3, for ResNet-50's total). Prints a markdown table; nothing is written.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from torch.utils import benchmark

from stylecls.blocks import add_recalibrated, create_block

STAGES = (("layer1", 256, 4, 3), ("layer2", 512, 8, 4), ("layer3", 1024, 16, 6), ("layer4", 2048, 32, 3))


def steps(block: str, shape: tuple[int, ...]) -> tuple[Callable[[], None], Callable[[], None]]:
    """(train step, inference step) of ``relu(identity + block(x))`` on tensors of ``shape``."""
    torch.manual_seed(0)
    module = create_block(block, shape[1]).train()
    x = torch.randn(shape).requires_grad_()
    identity = torch.randn(shape).requires_grad_()
    grad = torch.randn(shape)

    def train() -> None:
        module.train()
        x.grad = identity.grad = None
        torch.relu(add_recalibrated(module, x, identity)).backward(grad)

    def infer() -> None:
        module.eval()
        with torch.inference_mode():
            torch.relu(add_recalibrated(module, x, identity))

    return train, infer


def median_us(fn: Callable[[], None], min_run_time: float) -> float:
    timer = benchmark.Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--img-size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--blocks", nargs="+", default=["none", "se", "srm"])
    parser.add_argument("--min-run-time", type=float, default=0.5)
    parser.add_argument("--profile", default=None, help="also print torch.profiler's table for this block")
    args = parser.parse_args()

    print(f"batch {args.batch}, {args.img_size} px input, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("| stage | shape | block | train µs | infer µs | train − plain µs | infer − plain µs |")
    print("|---|---|---|---:|---:|---:|---:|")
    totals = {b: [0.0, 0.0] for b in args.blocks}
    for name, channels, stride, units in STAGES:
        side = max(1, args.img_size // stride)
        shape = (args.batch, channels, side, side)
        base = None
        for block in args.blocks:
            train, infer = steps(block, shape)
            t, i = median_us(train, args.min_run_time), median_us(infer, args.min_run_time)
            base = base or (t, i)
            totals[block][0] += units * (t - base[0])
            totals[block][1] += units * (i - base[1])
            added = f"{t - base[0]:+.0f} | {i - base[1]:+.0f}"
            print(f"| {name} | {tuple(shape)} | {block} | {t:.0f} | {i:.0f} | {added} |")
    for block, (t, i) in totals.items():
        print(f"ResNet-50 total added by {block}: train {t / 1e3:+.1f} ms, inference {i / 1e3:+.1f} ms per step")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        for name, channels, stride, _ in STAGES:
            side = max(1, args.img_size // stride)
            train, _ = steps(args.profile, (args.batch, channels, side, side))
            train()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(10):
                    train()
            print(f"\n{args.profile} {name} ({channels} ch, {side}x{side}), 10 train steps:")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))


if __name__ == "__main__":
    main()
