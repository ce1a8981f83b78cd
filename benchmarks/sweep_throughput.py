"""Wall time of 4 demo runs (1 epoch each): one after another by hand vs ``stylecls sweep``.

    flock /tmp/stylecls-bench.lock python benchmarks/sweep_throughput.py [--limit-train 640]

Three ways to train and evaluate the same 4 runs (blocks none/se x seeds 0/1), in one call, each in
a fresh folder: (1) ``stylecls train`` then ``stylecls evaluate`` per run, one after another (every
run takes all the cores); (2) ``stylecls sweep --jobs 1``; (3) ``stylecls sweep --jobs 2`` (each run
gets cores // 2 threads). Writes benchmarks/results/sweep_throughput.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
RUNS = [("none", 0), ("none", 1), ("se", 0), ("se", 1)]


def stylecls(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "stylecls", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def sequential(out: Path, common: list[str]) -> None:
    for block, seed in RUNS:
        name = f"{block}-s{seed}"
        stylecls("train", "--block", block, "--seed", str(seed), "--out", str(out), "--name", name, *common,
                 "--no-progress")
        stylecls("evaluate", str(out / name), "--workers", "0")


def sweep(out: Path, common: list[str], jobs: int) -> None:
    grid = ["--block", "none", "--block", "se", "--seed", "0", "--seed", "1"]
    stylecls("sweep", "--out", str(out), *grid, *common, "--jobs", str(jobs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit-train", type=int, default=640, help="training images per run")
    args = parser.parse_args()
    common = ["--epochs", "1", "--limit-train", str(args.limit_train)]
    ways = {
        "train + evaluate, one after another": lambda out: sequential(out, common),
        "stylecls sweep --jobs 1": lambda out: sweep(out, common, 1),
        "stylecls sweep --jobs 2": lambda out: sweep(out, common, 2),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (way, run) in enumerate(ways.items()):
            started = time.perf_counter()
            run(Path(tmp) / f"way{i}")
            rows.append({"way": way, "seconds": round(time.perf_counter() - started, 1)})
            print(f"{way}: {rows[-1]['seconds']} s", flush=True)
    base = rows[0]["seconds"]
    for r in rows:
        r["speedup"] = round(base / r["seconds"], 2)
    meta = {"cores": len(os.sched_getaffinity(0)), "torch": torch.__version__, "python": platform.python_version(),
            "runs": len(RUNS), "epochs": 1, "limit_train": args.limit_train, "load_avg_end": os.getloadavg()[0]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sweep_throughput.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [
        "# Sweep throughput",
        "",
        f"`python benchmarks/sweep_throughput.py --limit-train {args.limit_train}`: {len(RUNS)} demo runs "
        f"(none/se x seeds 0/1, 1 epoch, {args.limit_train} training images, each evaluated), "
        f"{meta['cores']} CPUs, torch {meta['torch']}; one measurement each, in this order.",
        "",
        "| way | wall s | speed-up vs one after another |",
        "|---|---:|---:|",
        *[f"| {r['way']} | {r['seconds']} | {r['speedup']}x |" for r in rows],
        "",
        f"1-min load average at the end: {meta['load_avg_end']:.1f}; a busy machine shows there.",
    ]
    (RESULTS / "sweep_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
