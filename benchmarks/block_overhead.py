"""Overhead study: parameters, GFLOPs and measured step-time ratios of every block against the plain net.

    python benchmarks/block_overhead.py                      # resnet18/50 at 128 px, cifar_resnet56 at 32 px
    python benchmarks/block_overhead.py --arch resnet50 --repeats 20
    python benchmarks/block_overhead.py --arch resnet50 --block none se srm --modes infer --runs 5
                                                             # issue 20's check: SRM inference ≤ 1.05× and ≤ SE

Each block is timed side by side with the plain backbone (alternating, median of per-repeat ratios),
on the CPU, batch 16. ``--runs N`` repeats the whole side-by-side measurement N times (fresh models
each run) and reports every run's ratio, so a reader sees the spread and not one lucky run. Writes
benchmarks/results/block_overhead.json and block_overhead.md (``--name`` for other file names).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

import stylecls
from stylecls.blocks import BLOCKS
from stylecls.models.overhead import measure_overhead

RESULTS = Path(__file__).parent / "results"
TARGET = 1.05  # issue 20: SRM-ResNet-50 inference at most 1.05x the plain network, and at most SE's ratio


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


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
            f"| {r['gflops']:.3f} | {_num(r['train_ms'], '.1f')} | {_num(r['train_ratio'], '.3f')} "
            f"| {_num(r['infer_ms'], '.1f')} | {_num(r['infer_ratio'], '.3f')} |"
        )
    return "\n".join(lines) + "\n"


def runs_markdown(runs: list[list[dict]], modes: list[str]) -> str:
    """One row per (arch, block, mode) with every run's ratio, their median and range; then, per arch
    with both SE and SRM timed for inference, in how many runs SRM met ≤ TARGET and ≤ SE."""
    n = len(runs)
    head = " | ".join(f"run {i + 1}" for i in range(n))
    lines = ["", f"Every run ({n} runs of the side-by-side measurement, fresh models each run):", "",
             f"| arch | block | step | {head} | median | min–max |", "|---|---|---|" + "---:|" * (n + 2)]
    for k, row in enumerate(runs[0]):
        for mode in modes:
            ratios = [run[k][f"{mode}_ratio"] for run in runs]
            cells = " | ".join(f"{r:.3f}" for r in ratios)
            lines.append(f"| {row['arch']} | {row['block']} | {mode} | {cells} | {statistics.median(ratios):.3f} "
                         f"| {min(ratios):.3f}–{max(ratios):.3f} |")
    if "infer" in modes:
        for arch in dict.fromkeys(r["arch"] for r in runs[0]):
            by_block = {r["block"]: i for i, r in enumerate(runs[0]) if r["arch"] == arch}
            if "srm" in by_block and "se" in by_block:
                srm = [run[by_block["srm"]]["infer_ratio"] for run in runs]
                se = [run[by_block["se"]]["infer_ratio"] for run in runs]
                met = sum(a <= TARGET and a <= b for a, b in zip(srm, se, strict=True))
                lines.append(f"\n{arch}: SRM inference ≤ {TARGET}× and ≤ SE in {met} of {n} runs.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", nargs="+", default=["resnet18", "resnet50", "cifar_resnet56"])
    parser.add_argument("--block", nargs="+", default=list(BLOCKS))
    parser.add_argument("--img-size", type=int, default=128, help="for ImageNet-style nets; CIFAR nets use 32")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=10, help="side-by-side repeats within one run")
    parser.add_argument("--runs", type=int, default=1, help="whole measurements, each reported (issue 20: 5)")
    parser.add_argument("--modes", nargs="+", choices=["train", "infer"], default=["train", "infer"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default="block_overhead", help="file name stem of the JSON and markdown")
    args = parser.parse_args()

    runs: list[list[dict]] = []
    started = time.time()
    for run in range(args.runs):
        rows = []
        for arch in args.arch:
            size = 32 if arch.startswith("cifar_") else args.img_size  # CIFAR nets are built for 32 px
            def say(msg: str, run: int = run) -> None:
                print(f"run {run + 1}/{args.runs}: timing {msg}", flush=True)

            blocks = ["none", *[b for b in args.block if b != "none"]]
            costs = measure_overhead(
                arch, blocks, size, args.batch, repeats=args.repeats, progress=say, modes=args.modes
            )
            plain = costs[0].params
            rows += [dict(c.as_dict(), img_size=size, delta_params=c.params - plain) for c in costs]
        runs.append(rows)
    # the headline table: per row, the run with the median inference (else training) ratio
    key = "infer_ratio" if "infer" in args.modes else "train_ratio"
    median_rows = [sorted((run[k] for run in runs), key=lambda r: r[key])[len(runs) // 2] for k in range(len(runs[0]))]
    meta = {
        "stylecls": stylecls.__version__, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(), "batch": args.batch, "repeats": args.repeats,
        "runs": args.runs, "modes": args.modes, "seconds": round(time.time() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "rows": median_rows, "runs": runs}
    (args.out / f"{args.name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    table = markdown(median_rows, meta) + (runs_markdown(runs, args.modes) if args.runs > 1 else "")
    (args.out / f"{args.name}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
