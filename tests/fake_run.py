"""Hand-made results for the compare/report tests: ``write_result`` (no checkpoint, no images).

The fake-run builder itself (``make_run``, ``fake_run``) is a fixture of tests/conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from stylecls.atomic import write_json
from stylecls.record import EvaluationRecord
from stylecls.runfolder import RunFolder

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
