"""Images/s delivered by the stylecls training loader vs torchvision ImageFolder + PIL transforms.

Both loaders read the same images with the same batch size, workers and standard augmentation
(random resized crop + horizontal flip): ours from the prepared cache (uint8 memory map,
transforms.v2 on uint8 tensors, normalisation left to the GPU), the baseline decoding each file
with PIL and applying torchvision.transforms (RandomResizedCrop, RandomHorizontalFlip, ToTensor,
Normalize). Trials alternate and the medians are compared. Each trial draws ``--images`` samples
(several passes over a small set, so worker start-up does not dominate; it is included once).

    python benchmarks/data_throughput.py --dataset pacs --data-root ../shared/data --size 128

The last line printed is one JSON object (ours_img_s, baseline_img_s, ratio, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torchvision
from torch.utils.data import DataLoader, RandomSampler
from torchvision import datasets
from torchvision import transforms as T

from stylecls.data import IMAGENET_MEAN, IMAGENET_STD, ImageDataset, catalog, make_loader, prepare

RESULTS = Path(__file__).parent / "results"


def epoch_rate(loader: DataLoader) -> float:
    """Images per second over one pass of ``loader`` (worker start-up included)."""
    start = time.perf_counter()
    n = 0
    for batch in loader:
        n += len(batch[0]) if isinstance(batch, (list, tuple)) else len(batch.images)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="pacs")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--images", type=int, default=5000, help="Samples drawn per trial.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    prepared = prepare(args.dataset, args.data_root, args.size, workers=args.workers)
    frame = catalog(args.dataset, args.data_root)
    info = frame.attrs["info"]
    ours = ImageDataset(frame, args.size, train=True)
    if ours.cache_hits != len(ours):
        raise SystemExit(f"only {ours.cache_hits} of {len(ours)} images are in the prepared cache")
    wanted = set(frame["path"])
    baseline = datasets.ImageFolder(
        info["root"],
        transform=T.Compose([
            T.RandomResizedCrop(args.size),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]),
        is_valid_file=lambda p: str(Path(p).absolute()) in wanted,
    )
    if len(baseline) != len(ours):
        raise SystemExit(f"ImageFolder found {len(baseline)} images, the catalogue {len(ours)}")

    def sampler(trial: int) -> RandomSampler:
        return RandomSampler(range(len(ours)), num_samples=args.images, generator=torch.Generator().manual_seed(trial))

    def ours_loader(trial: int) -> DataLoader:
        return make_loader(ours, args.batch_size, shuffle=False, workers=args.workers, sampler=sampler(trial),
                           seed=0, epoch=trial)

    def baseline_loader(trial: int) -> DataLoader:
        return DataLoader(baseline, batch_size=args.batch_size, sampler=sampler(trial), num_workers=args.workers)

    epoch_rate(ours_loader(-1))  # warm the page cache for both before timing
    epoch_rate(baseline_loader(-1))
    rates: dict[str, list[float]] = {"ours": [], "baseline": []}
    for trial in range(args.trials):
        rates["ours"].append(epoch_rate(ours_loader(trial)))
        rates["baseline"].append(epoch_rate(baseline_loader(trial)))
        print(f"trial {trial}: ours {rates['ours'][-1]:,.0f} img/s, baseline {rates['baseline'][-1]:,.0f} img/s")
    ours_rate, base_rate = statistics.median(rates["ours"]), statistics.median(rates["baseline"])
    result = {
        "dataset": args.dataset,
        "images": len(ours),
        "size": args.size,
        "stored_size": prepared.stored_size,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "trials": args.trials,
        "images_per_trial": args.images,
        "ours_img_s": round(ours_rate, 1),
        "baseline_img_s": round(base_rate, 1),
        "ratio": round(ours_rate / base_rate, 2),
        "ours_trials": [round(r, 1) for r in rates["ours"]],
        "baseline_trials": [round(r, 1) for r in rates["baseline"]],
        "prepare_s": round(prepared.seconds, 2),
        "prepare_reused": prepared.up_to_date,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "data_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "data_throughput.md").write_text(
        "# Training-loader throughput\n\n"
        f"`python benchmarks/data_throughput.py --dataset {args.dataset}"
        f"{f' --data-root {args.data_root}' if args.data_root else ''} --size {args.size}` "
        f"({len(ours):,} images, {args.images:,} samples per trial, batch {args.batch_size}, {args.workers} workers, "
        f"median of {args.trials} alternating trials, torch {torch.__version__}, "
        f"torchvision {torchvision.__version__}).\n\n"
        "| loader | images/s |\n|---|---:|\n"
        f"| stylecls: prepared cache ({prepared.stored_size} px uint8 memmap) + transforms.v2 on uint8 | "
        f"{ours_rate:,.0f} |\n"
        f"| torchvision ImageFolder + PIL decode + RandomResizedCrop/Flip/ToTensor/Normalize | {base_rate:,.0f} |\n"
        f"| **ratio** | **{ours_rate / base_rate:.2f}x** |\n\n"
        "Both use random resized crop + horizontal flip at the same size; ours leaves the float conversion "
        "and normalisation to the model's device (`stylecls.data.normalize`). "
        f"Machine: {os.cpu_count()} CPUs, 1-min load average {os.getloadavg()[0]:.1f} at the end (other jobs were "
        "running: absolute rates are noisy, the alternating trials keep the ratio fair). "
        f"Preparing the cache took {prepared.seconds:.1f} s"
        f"{' (reused: it was up to date)' if prepared.up_to_date else ''}.\n"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
