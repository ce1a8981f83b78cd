"""Images/s of ``stylecls predict`` (the ``Run.predict`` API) vs a plain torchvision loop, and ONNX vs eager.

1. Prediction over a folder of real images: ``load_run(run).predict(files)`` against the loop a user
   would write by hand -- torchvision ``ImageFolder`` (PIL decode, Resize, CenterCrop, ToTensor,
   Normalize) + DataLoader + ``softmax(model(x))`` -- same model, files, batch size and workers,
   alternating trials, medians compared. Both include decoding; neither uses a prepared cache.
2. The exported ONNX model on onnxruntime (CPU) vs the eager PyTorch model on the same normalised
   batch of real images, same thread count, median of repeated forward passes.
3. The cost of the pixel-limit check prediction makes for every file (PIL reads the header before
   torchvision decodes): microseconds per file for the check and for the decode, medians over the files.

Without ``--run`` a throw-away run is trained for one epoch on 32 images (its accuracy is irrelevant;
only the network's shape matters)::

    python benchmarks/predict_throughput.py --data-root ../shared/data --arch cifar_resnet20 --img-size 64

The last line printed is one JSON object; JSON + markdown go to benchmarks/results/predict_throughput.*.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision import transforms as T

from stylecls import load_run
from stylecls.data import IMAGENET_MEAN, IMAGENET_STD
from stylecls.data.pixels import Pixels
from stylecls.predict import Run, expand_paths

RESULTS = Path(__file__).parent / "results"


def train_throwaway(out: Path, args: argparse.Namespace) -> Path:
    cmd = [sys.executable, "-m", "stylecls", "train", "--dataset", "pacs", "--data-root", str(args.data_root),
           "--protocol", "multi-domain", "--arch", args.arch, "--block", args.block, "--img-size", str(args.img_size),
           "--epochs", "1", "--limit-train", "32", "--limit-val", "16", "--batch-size", "16", "--workers", "0",
           "--out", str(out), "--name", "bench", "--no-progress"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out / "bench"


def api_rate(run: Run, files: list[Path], args: argparse.Namespace) -> float:
    start = time.perf_counter()
    frame = run.predict(files, top_k=5, batch_size=args.batch_size, workers=args.workers)
    assert len(frame) == len(files) and (frame["error"] == "").all()
    return len(files) / (time.perf_counter() - start)


@torch.no_grad()
def baseline_rate(model: torch.nn.Module, folder: datasets.ImageFolder, args: argparse.Namespace) -> float:
    start = time.perf_counter()
    n = 0
    for images, _ in DataLoader(folder, batch_size=args.batch_size, num_workers=args.workers):
        probs = torch.softmax(model(images), dim=1)
        probs.topk(5, dim=1)
        n += len(images)
    return n / (time.perf_counter() - start)


def decode_costs(files: list[Path], trials: int) -> tuple[float, float]:
    """Median microseconds per file of the pixel-limit header check and of the whole decode (which includes it)."""
    from stylecls.data.decode import decode
    from stylecls.evaluate.predict import check_pixel_count

    check, full = [], []
    for _ in range(trials):
        start = time.perf_counter()
        for p in files:
            check_pixel_count(str(p))
        check.append((time.perf_counter() - start) / len(files) * 1e6)
        start = time.perf_counter()
        for p in files:
            decode(str(p))
        full.append((time.perf_counter() - start) / len(files) * 1e6)
    return statistics.median(check), statistics.median(full)


def median_forward(fn, repeats: int) -> float:  # noqa: ANN001 - a no-argument callable
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=None, help="A run folder (default: train a throw-away one).")
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--arch", default="cifar_resnet20")
    parser.add_argument("--block", default="srm")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads (1: a shared "
                        "machine's other jobs make spinning OpenMP threads erratic).")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10, help="Timed forward passes for ONNX vs eager.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    folder = args.data_root / "pacs"
    with tempfile.TemporaryDirectory() as tmp:
        run = load_run(args.run or train_throwaway(Path(tmp) / "runs", args))
        files = expand_paths([folder])
        model = run.model()
        size = run.img_size
        baseline = datasets.ImageFolder(str(folder), transform=T.Compose([
            T.Resize(Pixels(size).eval_side), T.CenterCrop(size), T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]))
        if len(baseline) != len(files):
            raise SystemExit(f"ImageFolder found {len(baseline)} images, stylecls {len(files)}")

        api_rate(run, files[: args.batch_size * 2], args)  # warm the page cache and the model
        baseline_rate(model, baseline, args)
        rates: dict[str, list[float]] = {"api": [], "baseline": []}
        for trial in range(args.trials):
            rates["api"].append(api_rate(run, files, args))
            rates["baseline"].append(baseline_rate(model, baseline, args))
            print(f"trial {trial}: stylecls {rates['api'][-1]:,.1f} img/s, ImageFolder loop "
                  f"{rates['baseline'][-1]:,.1f} img/s", flush=True)

        import onnxruntime as ort

        from stylecls.export import export_run

        exported = export_run(run, "onnx", out=Path(tmp) / "model.onnx", dynamic_batch=True)
        transform = run.transform()
        from PIL import Image

        x = torch.stack([transform(Image.open(p)) for p in files[: args.batch_size]])
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(exported.path), options, providers=["CPUExecutionProvider"])
        feed = {"images": x.numpy()}
        eager_s, onnx_s = [], []
        for _ in range(args.trials):  # alternate the two so load changes hit both
            with torch.no_grad():
                eager_s.append(median_forward(lambda: model(x), args.repeats))
            onnx_s.append(median_forward(lambda: session.run(None, feed), args.repeats))
        eager_rate, onnx_rate = len(x) / statistics.median(eager_s), len(x) / statistics.median(onnx_s)

    api, base = statistics.median(rates["api"]), statistics.median(rates["baseline"])
    check_us, decode_us = decode_costs(files[:500], args.trials)
    command = (f"python benchmarks/predict_throughput.py --data-root {args.data_root} --arch {args.arch} "
               f"--block {args.block} --img-size {args.img_size} --batch-size {args.batch_size} "
               f"--workers {args.workers} --threads {args.threads}")
    result = {
        "command": command,
        "images": len(files),
        "arch": run.settings.arch,
        "block": run.settings.block,
        "img_size": size,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "threads": torch.get_num_threads(),
        "trials": args.trials,
        "api_img_s": round(api, 1),
        "imagefolder_img_s": round(base, 1),
        "api_ratio": round(api / base, 2),
        "api_trials": [round(r, 1) for r in rates["api"]],
        "imagefolder_trials": [round(r, 1) for r in rates["baseline"]],
        "onnx_img_s": round(onnx_rate, 1),
        "eager_img_s": round(eager_rate, 1),
        "onnx_ratio": round(onnx_rate / eager_rate, 2),
        "onnx_max_abs_diff": exported.max_abs_diff,
        "pixel_check_us_per_file": round(check_us, 1),
        "decode_us_per_file": round(decode_us, 1),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "onnxruntime": ort.__version__,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "predict_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "predict_throughput.md").write_text(
        "# Prediction throughput\n\n"
        f"`{command}` ({len(files):,} PACS images, {run.settings.arch} + {run.settings.block} at {size} px, "
        f"batch {args.batch_size}, {args.workers} workers, {torch.get_num_threads()} threads, "
        f"median of {args.trials} alternating trials; torch {torch.__version__}, onnxruntime {ort.__version__}).\n\n"
        "| pipeline | images/s |\n|---|---:|\n"
        f"| `Run.predict` (what `stylecls predict` runs): torchvision decode + v2 resize/crop on uint8 | {api:,.1f} |\n"
        f"| torchvision ImageFolder + PIL + Resize/CenterCrop/ToTensor/Normalize + model loop | {base:,.1f} |\n"
        f"| **ratio** | **{api / base:.2f}x** |\n\n"
        "| model on one batch of real images (CPU) | images/s |\n|---|---:|\n"
        f"| eager PyTorch | {eager_rate:,.1f} |\n"
        f"| exported ONNX on onnxruntime | {onnx_rate:,.1f} |\n"
        f"| **ratio** | **{onnx_rate / eager_rate:.2f}x** |\n\n"
        f"Max abs difference of the ONNX logits vs PyTorch: {exported.max_abs_diff:.2e}. "
        f"The pixel-limit check (PIL header read) costs {check_us:,.0f} µs per file of a {decode_us:,.0f} µs "
        f"decode ({check_us / decode_us:.1%}; first {min(len(files), 500)} files). "
        f"Machine: {os.cpu_count()} CPUs (1-min load average {os.getloadavg()[0]:.1f} at "
        "the end): absolute rates are noisy, the alternating trials keep the ratios fair.\n"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
