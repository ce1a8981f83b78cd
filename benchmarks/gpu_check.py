"""GPU check: training throughput of ResNet-50 with none / SE / SRM, and one demo run end to end.

Runs the training path exactly as ``stylecls train`` does on a GPU: uint8 batches normalised on the
device, channels_last, automatic mixed precision (bf16 where supported, else fp16 with a grad
scaler), SGD with the SRM/BN/bias parameter groups, cudnn benchmark. Throughput uses random data
already on the GPU, so it measures the model, not the loader. Then ``stylecls.train.train`` trains
the demo recipe on the GPU and reports its time and validation accuracy.

    python benchmarks/gpu_check.py                 # ~3-5 minutes on one H100
    python benchmarks/gpu_check.py --steps 50 --no-demo

Writes benchmarks/results/gpu_check.json and .md. On a machine without CUDA it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def sgd_like_train(model: torch.nn.Module, lr: float = 0.1, weight_decay: float = 1e-4) -> torch.optim.SGD:
    """SGD (momentum 0.9) with ``stylecls train``'s default groups: no weight decay on SRM's parameters
    (:func:`stylecls.blocks.no_weight_decay_names`, as in the paper), decay on all the others."""
    from stylecls.blocks import no_weight_decay_names

    exempt = no_weight_decay_names(model)
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, p in model.named_parameters():
        (no_decay if name in exempt else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=lr, momentum=0.9)


def throughput(block: str, steps: int, batch_size: int, img_size: int, warmup: int) -> dict:
    """Images/s of ResNet-50 + ``block`` training on random uint8 batches already on the GPU."""
    from stylecls.data import normalize
    from stylecls.models import build_model, count_parameters

    device = torch.device("cuda")
    model = build_model("resnet50", block, num_classes=1000).to(device).to(memory_format=torch.channels_last)
    optimizer = sgd_like_train(model)
    amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    criterion = torch.nn.CrossEntropyLoss()
    images = torch.randint(0, 256, (batch_size, 3, img_size, img_size), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 1000, (batch_size,), device=device)
    model.train()

    def step() -> None:
        x = normalize(images).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=amp_dtype):
            loss = criterion(model(x), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {
        "block": block,
        "params": count_parameters(model),
        "img_per_s": steps * batch_size / seconds,
        "ms_per_step": 1000 * seconds / steps,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30,
        "amp_dtype": str(amp_dtype).removeprefix("torch."),
    }


def demo_command(block: str, out: Path, device: str = "cuda") -> list[str]:
    """The short demo training, as the user would type it (the CLI's flags are the stable interface)."""
    return [
        sys.executable, "-m", "stylecls", "train", "--dataset", "demo", "--block", block, "--device", device,
        "--out", str(out), "--name", f"gpu-check-{block}", "--no-progress",
    ]


def run_summary(config: dict) -> dict:
    """The few facts the report quotes from a run's config.json (the one place that reads its keys)."""
    train = config.get("train", {})
    return {
        "epochs": train.get("epochs"),
        "best_val_acc": (config.get("best") or {}).get("val_acc"),
        "amp": train.get("amp"),
        "amp_dtype": train.get("amp_dtype"),
        "workers": train.get("workers"),
    }


def demo_run(block: str) -> dict:
    """Train the demo recipe on the GPU through ``stylecls train`` and report its time and accuracy."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, STYLECLS_CACHE=str(Path(tmp) / "cache"))
        from stylecls.data.datasets import demo

        demo.generate(Path(tmp) / "cache" / "demo")  # generation is not part of the training time
        start = time.perf_counter()
        subprocess.run(demo_command(block, Path(tmp) / "runs"), env=env, check=True)
        seconds = time.perf_counter() - start
        config = json.loads((Path(tmp) / "runs" / f"gpu-check-{block}" / "config.json").read_text())
    return {"block": block, "seconds": seconds, **run_summary(config)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--blocks", default="none,se,srm")
    parser.add_argument("--demo-block", default="srm")
    parser.add_argument("--no-demo", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    if not torch.cuda.is_available():
        print(f"gpu_check: no CUDA GPU visible to PyTorch {torch.__version__}; nothing to measure here. "
              "Run it on a machine with a GPU.")  # fmt: skip
        return 0
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    report: dict = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "batch_size": args.batch_size,
        "img_size": args.img_size,
        "steps": args.steps,
        "throughput": [],
    }
    for block in args.blocks.split(","):
        r = throughput(block, args.steps, args.batch_size, args.img_size, args.warmup)
        torch.cuda.empty_cache()
        report["throughput"].append(r)
        print(f"resnet50 + {block:4s}: {r['img_per_s']:8.1f} img/s  {r['ms_per_step']:6.1f} ms/step  "
              f"{r['peak_mem_gib']:.1f} GiB  ({r['amp_dtype']}, channels_last)", flush=True)  # fmt: skip
    if not args.no_demo:
        report["demo"] = demo_run(args.demo_block)
        d = report["demo"]
        print(f"demo run ({d['block']}, {d['epochs']} epochs): {d['seconds']:.1f} s, best val acc "
              f"{100 * d['best_val_acc']:.1f}%", flush=True)  # fmt: skip

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    base = report["throughput"][0]["img_per_s"] if report["throughput"] else None
    lines = [
        f"# GPU check: {report['device']} (torch {report['torch']})",
        "",
        f"ResNet-50 training, batch {args.batch_size}, {args.img_size} px, AMP + channels_last, {args.steps} steps",
        "",
        "| block | params | img/s | ms/step | vs first | peak GiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["throughput"]:
        lines.append(
            f"| {r['block']} | {r['params'] / 1e6:.3f}M | {r['img_per_s']:.1f} | {r['ms_per_step']:.1f} | "
            f"{r['img_per_s'] / base:.3f} | {r['peak_mem_gib']:.1f} |"
        )
    if "demo" in report:
        d = report["demo"]
        lines += ["", f"Demo run (`stylecls train --block {d['block']}` on the GPU): {d['seconds']:.1f} s, "
                  f"{d['epochs']} epochs, best val acc {100 * d['best_val_acc']:.1f}%"]  # fmt: skip
    (args.out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out / 'gpu_check.json'} and {args.out / 'gpu_check.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
