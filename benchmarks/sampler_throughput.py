"""Images/s of the default (random) sampler against ``--sampler domain-balanced``, side by side.

    flock /tmp/stylecls-bench.lock python benchmarks/sampler_throughput.py
    python benchmarks/sampler_throughput.py --dataset pacs --data-root ../shared/data --test-domain sketch \
        --arch cifar_resnet20 --img-size 32 --repeats 3

Two measurements, alternating the samplers within every repeat so that a drifting machine load hits both:
(1) the training loader alone (decode + augment + collate of one epoch, no model): what the sampler itself
costs; (2) whole training epochs through ``stylecls.train.train`` (the epochs' ``img_per_s`` of
metrics.csv): what a user sees. Reports the median and range over repeats and the ratio balanced / random.
Writes benchmarks/results/sampler_throughput.json and .md (``--name`` for other file names).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import stylecls
from stylecls.data import ImageDataset, Pixels, make_loader
from stylecls.runfolder import RunFolder
from stylecls.spec import RunSpec, RuntimeOptions
from stylecls.train import train
from stylecls.train.data import load_data
from stylecls.train.sampler import DomainBalancedSampler

RESULTS = Path(__file__).parent / "results"
SAMPLERS = ("random", "domain-balanced")


def loader_rate(spec: RunSpec, data_root: str | None, workers: int, epoch: int) -> float:
    """Images/s of one epoch of the training loader (no model)."""
    data = load_data(spec, data_root)
    frame = data.part("train")
    size, batch = int(spec.img_size), int(spec.batch_size)  # type: ignore[arg-type]
    dataset = ImageDataset(frame, size, train=True, min_crop=float(spec.min_crop or 1),
                           pixels=Pixels(size, str(spec.pre_resize)), cache_source=data.cache_source)
    steps = len(dataset) // batch
    sampler = (DomainBalancedSampler(frame["domain"].tolist(), batch, steps, spec.seed)
               if spec.sampler == "domain-balanced" else None)
    loader = make_loader(dataset, batch, shuffle=True, workers=workers, sampler=sampler, drop_last=True,
                         seed=spec.seed, epoch=epoch)
    started, seen = time.perf_counter(), 0
    for b in loader:
        seen += len(b.labels)
    return seen / (time.perf_counter() - started)


def train_rate(spec: RunSpec, runtime: RuntimeOptions) -> float:
    """The median ``img_per_s`` of a short training run's epochs."""
    run = train(spec, runtime)
    return float(RunFolder(run).metrics()["img_per_s"].median())


def summary(values: list[float]) -> dict[str, Any]:
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1),
            "max": round(max(values), 1), "runs": [round(v, 1) for v in values]}


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Sampler throughput",
        "",
        f"`python benchmarks/sampler_throughput.py {meta['argv']}`: {meta['dataset']} "
        f"({meta['arch']}, {meta['img_size']} px, batch {meta['batch_size']}, {meta['limit_train']} training "
        f"images), {meta['repeats']} alternating repeats, {meta['cores']} CPUs, {meta['threads']} threads, "
        f"{meta['workers']} loader workers, torch {meta['torch']}. Images/s, median (min–max) over repeats.",
        "",
        "| measured | random | domain-balanced | balanced / random |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        a, b = r["random"], r["domain-balanced"]
        lines.append(f"| {r['what']} | {a['median']:,.1f} ({a['min']:,.1f}–{a['max']:,.1f}) "
                     f"| {b['median']:,.1f} ({b['min']:,.1f}–{b['max']:,.1f}) | {r['ratio']:.3f} |")
    lines += ["", f"1-min load average at the end: {meta['load_avg_end']:.1f}; a busy machine shows there."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="demo")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--test-domain", default=None)
    parser.add_argument("--arch", default="cifar_resnet20")
    parser.add_argument("--block", default="srm")
    parser.add_argument("--img-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit-train", type=int, default=640)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--name", default="sampler_throughput")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    def spec(sampler: str) -> RunSpec:
        return RunSpec(dataset=args.dataset, test_domain=args.test_domain, arch=args.arch, block=args.block,
                       img_size=args.img_size, batch_size=args.batch_size, limit_train=args.limit_train,
                       limit_val=args.batch_size, epochs=args.epochs, sampler=sampler).resolved()

    loader: dict[str, list[float]] = {s: [] for s in SAMPLERS}
    training: dict[str, list[float]] = {s: [] for s in SAMPLERS}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for sampler in SAMPLERS if repeat % 2 == 0 else SAMPLERS[::-1]:
                loader[sampler].append(loader_rate(spec(sampler), args.data_root, args.workers, repeat + 1))
                runtime = RuntimeOptions(out=tmp, name=f"{sampler}-{repeat}", data_root=args.data_root,
                                         workers=args.workers, threads=args.threads, progress=False)
                training[sampler].append(train_rate(spec(sampler), runtime))
                print(f"repeat {repeat + 1} {sampler}: loader {loader[sampler][-1]:,.0f} img/s, "
                      f"training {training[sampler][-1]:,.0f} img/s", flush=True)
    rows = []
    for what, values in (("training loader alone (no model)", loader), ("training epochs", training)):
        row: dict[str, Any] = {"what": what, **{s: summary(values[s]) for s in SAMPLERS}}
        row["ratio"] = round(row["domain-balanced"]["median"] / row["random"]["median"], 3)
        rows.append(row)
    meta = {**{k: v for k, v in vars(args).items() if k != "name"}, "cores": len(os.sched_getaffinity(0)),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "stylecls": stylecls.__version__,
            "python": platform.python_version(), "load_avg_end": os.getloadavg()[0],
            "argv": " ".join(sys.argv[1:])}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    text = markdown(rows, meta)
    (RESULTS / f"{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
