"""Overhead study: parameters, GFLOPs and measured step-time ratios of every block against the plain net.

    python benchmarks/block_overhead.py                      # resnet18/50 at 128 px, cifar_resnet56 at 32 px
    python benchmarks/block_overhead.py --arch resnet50 --repeats 20

Each block is timed side by side with the plain backbone (alternating, median of per-repeat ratios),
on the CPU, batch 16. Writes benchmarks/results/block_overhead.json and block_overhead.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import stylecls
from stylecls.blocks import BLOCKS
from stylecls.models.overhead import measure_overhead

RESULTS = Path(__file__).parent / "results"


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        f"CPU ({meta['threads']} threads, torch {meta['torch']}), batch {meta['batch']}, median of "
        f"{meta['repeats']} side-by-side repeats; × = time / plain backbone. The `none` row times the plain "
        "network against itself (the noise floor). GFLOPs count multiply-adds as 2 (torch.utils.flop_counter: "
        "convolutions and matmuls only).",
        "",
        "| arch | px | block | params | Δparams | GFLOPs | train ms | train × | infer ms | infer × |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['arch']} | {r['img_size']} | {r['block']} | {r['params']:,} | {r['delta_params']:+,} "
            f"| {r['gflops']:.3f} | {r['train_ms']:.1f} | {r['train_ratio']:.3f} "
            f"| {r['infer_ms']:.1f} | {r['infer_ratio']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", nargs="+", default=["resnet18", "resnet50", "cifar_resnet56"])
    parser.add_argument("--block", nargs="+", default=list(BLOCKS))
    parser.add_argument("--img-size", type=int, default=128, help="for ImageNet-style nets; CIFAR nets use 32")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    rows = []
    started = time.time()
    for arch in args.arch:
        size = 32 if arch.startswith("cifar_") else args.img_size  # CIFAR nets are built for 32 px
        costs = measure_overhead(
            arch, ["none", *[b for b in args.block if b != "none"]], size, args.batch,
            repeats=args.repeats, progress=lambda msg: print(f"timing {msg}", flush=True),
        )
        plain = costs[0].params
        rows += [dict(c.as_dict(), img_size=size, delta_params=c.params - plain) for c in costs]
    meta = {
        "stylecls": stylecls.__version__, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(), "batch": args.batch, "repeats": args.repeats,
        "seconds": round(time.time() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "block_overhead.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    table = markdown(rows, meta)
    (args.out / "block_overhead.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
