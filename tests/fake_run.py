"""Hand-made run folders for the evaluate/compare/inspect tests (no training needed).

A run is what ``stylecls train`` leaves behind: its record, status, split rows, metrics and checkpoints,
written through :class:`~stylecls.runfolder.RunFolder` as training writes them.
The images are tiny generated PNGs under ``tmp_path``; the model is a randomly initialised
cifar_resnet20, so the tests check the bookkeeping, not the accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from stylecls.atomic import save_checkpoint, write_json
from stylecls.models import build_model
from stylecls.record import DataSummary, EvaluationRecord, RunRecord
from stylecls.runfolder import RunFolder
from stylecls.spec import RunSpec

CLASSES = ["dots", "stripes", "waves"]
DOMAINS = ["photo", "sketch"]
README_RUN = "demo-cifar_resnet20-srm-s0"  # the run the README's snippets name (its quick start's run)


def make_images(root: Path, per_cell: int = 4, size: int = 20) -> pd.DataFrame:
    """``root/<domain>/<class>/NN.png`` with random pixels; a LODO split holding out ``sketch``."""
    rng = np.random.default_rng(0)
    rows = []
    for domain in DOMAINS:
        for label, cls in enumerate(CLASSES):
            folder = root / domain / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_cell):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:02d}.png")
                part = "test" if domain == "sketch" else ("train" if i < per_cell // 2 else "val")
                split = "train" if i < per_cell // 2 else "val"
                rows.append((f"{domain}/{cls}/{i:02d}.png", label, cls, domain, split, part))
    return pd.DataFrame(rows, columns=["path", "label", "class_name", "domain", "split", "part"])


def make_run(
    run: Path,
    data_root: Path,
    block: str = "srm",
    seed: int = 0,
    img_size: int = 16,
    per_cell: int = 4,
) -> Path:
    """A finished leave-one-domain-out run (test domain ``sketch``) with random weights."""
    split = make_images(data_root, per_cell) if not (data_root / "photo").is_dir() else _split(data_root, per_cell)
    torch.manual_seed(seed)
    model = build_model("cifar_resnet20", block, num_classes=len(CLASSES))
    with torch.no_grad():  # non-trivial SRM weights and BN statistics, so effective weights are not all 0
        for name, p in model.named_parameters():
            if name.endswith("cfc"):
                p.normal_(0, 0.5)
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_var.uniform_(0.5, 2.0)
    run.mkdir(parents=True, exist_ok=True)
    spec = RunSpec(
        dataset="folder", protocol="lodo", test_domain="sketch", arch="cifar_resnet20", block=block, img_size=img_size,
        epochs=1, batch_size=4, optimizer="sgd", lr=0.1, weight_decay=5e-4, schedule="cosine", warmup_epochs=0,
        label_smoothing=0.0, min_crop=0.08, seed=seed,
    )  # fmt: skip
    data = DataSummary(
        dataset="folder", root=str(data_root), classes=CLASSES, protocol="lodo", domains=DOMAINS,
        counts=split["part"].value_counts().to_dict(), pixels={"pre_resize": spec.pre_resize},
    )  # fmt: skip
    config = RunRecord(
        name=run.name, spec=spec, data=data, runtime={"device": "cpu", "world_size": 1},
        versions={"stylecls": "0.1.0", "torch": torch.__version__}, created="2025-01-01T00:00:00",
    ).to_dict()
    folder = RunFolder(run, must_exist=False)
    folder.write_record(RunRecord.from_dict(config))
    folder.set_status("done", epoch=1, best_epoch=1, best_val_acc=0.5)
    folder.write_rows(split.assign(path=[str(data_root / p) for p in split["path"]]), data_root)
    pd.DataFrame([{"epoch": 1, "train_loss": 1.1, "train_acc": 0.3, "val_loss": 1.0, "val_acc": 0.5, "lr": 0.1,
                   "img_per_s": 10.0, "seconds": 1.0, "skipped": 0}]).to_csv(run / "metrics.csv", index=False)
    state = {"model": model.state_dict(), "epoch": 1, "best_val_acc": 0.5, "arch": "cifar_resnet20", "block": block,
             "num_classes": len(CLASSES), "block_options": {}}
    save_checkpoint(state, run / "best.pt")
    save_checkpoint(state, run / "last.pt")
    return run


def _split(root: Path, per_cell: int) -> pd.DataFrame:
    rows = []
    for domain in DOMAINS:
        for label, cls in enumerate(CLASSES):
            for i in range(per_cell):
                part = "test" if domain == "sketch" else ("train" if i < per_cell // 2 else "val")
                split = "train" if i < per_cell // 2 else "val"
                rows.append((f"{domain}/{cls}/{i:02d}.png", label, cls, domain, split, part))
    return pd.DataFrame(rows, columns=["path", "label", "class_name", "domain", "split", "part"])


def write_result(run: Path, config: dict, metrics: dict) -> Path:
    """A finished, evaluated run folder holding only what compare reads: its record, status and the selected
    evaluation (of best.pt at ``metrics["epoch"]``, default 1, made after training)."""
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(config))  # as written, also records a reader must refuse
    folder = RunFolder(run)
    epoch = int(metrics.get("epoch", 1))
    if config.get("schema_version"):
        folder.set_status("done", epoch=epoch, best_epoch=epoch, best_val_acc=0.5)
    evaluation = EvaluationRecord(part=metrics.get("part", "test"), checkpoint="best", epoch=epoch, run_state="done",
                                  metrics={k: v for k, v in metrics.items() if k not in ("epoch", "part")})
    write_json(run / "eval" / "metrics.json", evaluation.to_dict())
    return run
