"""Hand-made results for the compare/report tests: ``write_result``, ``result_run`` and ``sweep`` (no
checkpoint, no images).

The fake-run builder itself (``make_run``, ``fake_run``) is a fixture of tests/conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from stylecls.atomic import write_json
from stylecls.record import DataSummary, EvaluationRecord, RunRecord
from stylecls.runfolder import RunFolder
from stylecls.spec import RunSpec

CLASSES = ["dots", "stripes", "waves"]
DOMAINS = ["photo", "sketch"]


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


def result_run(root: Path, block: str, seed: int, top1: float, test_domain: str | None = "sketch",
               oracle: list[float] | None = None, lr: float = 0.1) -> Path:
    """An evaluated run folder with the files a report reads (no checkpoint, no images)."""
    run = root / f"{block}-s{seed}-{test_domain}"
    spec = RunSpec(dataset="folder", protocol="lodo" if test_domain else "multi-domain", test_domain=test_domain,
                   arch="cifar_resnet20", block=block, img_size=16, epochs=2, lr=lr, batch_size=4, seed=seed).resolved()
    data = DataSummary("folder", "/data", classes=CLASSES, protocol="lodo" if test_domain else "multi-domain")
    config = RunRecord(name=run.name, spec=spec, data=data, runtime={"workers": 0, "device": "cpu"},
                       versions={"stylecls": "0.1.0", "torch": "2.x"}).to_dict()
    write_result(run, config, {"top1": top1, "top5": 1.0, "epoch": 2, "part": "test"})
    if test_domain is None:  # a multi-domain run: accuracy per domain of the test part (and of val, not reported)
        pd.DataFrame({"part": ["test", "test", "val"], "domain": ["photo", "sketch", "photo"], "held_out": False,
                      "count": 6, "accuracy": [top1 + 0.1, top1 - 0.1, 0.99]}).to_csv(
            run / "eval" / "per_domain.csv", index=False)
    rng = np.random.default_rng(seed + 17 * len(block))
    acc = rng.uniform(0.2, 0.9, len(CLASSES))
    pd.DataFrame({"class_name": CLASSES, "accuracy": acc, "precision": acc, "f1": acc, "support": 4}).to_csv(
        run / "eval" / "per_class.csv", index=False)
    counts = rng.integers(0, 5, (len(CLASSES), len(CLASSES)))
    pd.DataFrame(counts, index=pd.Index(CLASSES, name="true"), columns=CLASSES).to_csv(run / "eval" / "confusion.csv")
    epochs = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.2, 1.0], "train_acc": [0.3, 0.4],
                           "val_loss": [1.1, 1.0], "val_acc": [0.35, 0.45]})
    if oracle is not None:
        epochs["test_loss"], epochs["test_acc"] = [1.3, 1.2], oracle
    epochs.to_csv(run / "metrics.csv", index=False)
    return run


def sweep(root: Path, blocks=("none", "se", "srm"), seeds=(0, 1), domains=("sketch", "photo"), **kw) -> Path:
    for i, b in enumerate(blocks):
        for s in seeds:
            for j, d in enumerate(domains):
                result_run(root, b, s, 0.4 + 0.05 * i + 0.01 * s + 0.02 * j, d, **kw)
    return root
