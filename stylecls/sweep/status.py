"""``stylecls status``: where each run of a sweep stands, from its folder alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from stylecls.errors import StyleclsError
from stylecls.runfolder import CONFIG, INCOMPLETE, RunFolder
from stylecls.spec import RunSpec
from stylecls.sweep.plan import MANIFEST, SweepPlan

__all__ = ["plan_frame", "run_status", "status_frame", "status_table"]

COLUMNS = ["run", "spec", "status", "epoch", "epochs", "best_val", "test_top1"]


def _test_top1(run_dir: Path) -> float | None:
    """Top-1 of the evaluated part, from eval/metrics.json (the one place this key is read)."""
    try:
        return float(json.loads((run_dir / "eval" / "metrics.json").read_text())["top1"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_status(run_dir: Path, spec: RunSpec | None = None) -> dict[str, Any]:
    """One row: run, spec summary, status (``running`` while a trainer holds its lock), epoch
    reached, best validation accuracy, test top-1."""
    folder = RunFolder(run_dir, must_exist=False)
    status = folder.status() if run_dir.is_dir() else "not started"
    row: dict[str, Any] = {"run": run_dir.name, "spec": spec.summary() if spec else "", "status": status,
                           "epoch": None, "epochs": spec.epochs if spec else None, "best_val": None,
                           "test_top1": None}
    if folder.config_path.is_file():
        spec = folder.spec()
        state = folder.state()
        row.update(spec=spec.summary(), epochs=spec.epochs, epoch=state.get("epoch"),
                   best_val=state.get("best_val_acc"), test_top1=_test_top1(run_dir))
        if status == INCOMPLETE and folder.is_locked():
            row["status"] = "running"
    return row


def plan_frame(plan: SweepPlan) -> pd.DataFrame:
    """The runs of ``plan`` only (folders absent: not started)."""
    return pd.DataFrame([run_status(plan.run_dir(s), s) for s in plan.specs], columns=COLUMNS)


def status_frame(out: str | Path) -> pd.DataFrame:
    """Every run of the sweep in ``out`` (its sweep.json), plus any other run folder found there."""
    out = Path(out)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    if (out / MANIFEST).is_file():
        plan = SweepPlan.read(out)
        rows = plan_frame(plan).to_dict("records")
        seen = {s.run_name() for s in plan.specs}
    elif not out.is_dir():
        raise StyleclsError(f"{out} does not exist")
    for config in sorted(out.glob(f"*/{CONFIG}")):
        if config.parent.name not in seen:
            rows.append(run_status(config.parent))
    return pd.DataFrame(rows, columns=COLUMNS)


def status_table(frame: pd.DataFrame, title: str) -> Table:
    colour = {"done": "green", "running": "cyan", "incomplete": "yellow", "not started": "dim"}
    table = Table(title=title)
    for column in ("run", "spec", "status", "epoch", "best val", "test top-1"):
        table.add_column(column, justify="right" if column in ("epoch", "best val", "test top-1") else "left")

    def pct(x: Any) -> str:
        return "" if x is None or pd.isna(x) else f"{100 * float(x):.1f}%"

    for r in frame.to_dict("records"):
        epoch = "" if r["epoch"] is None or pd.isna(r["epoch"]) else f"{int(r['epoch'])}/{r['epochs']}"
        status = f"[{colour.get(r['status'], 'white')}]{r['status']}[/]"
        table.add_row(r["run"], r["spec"], status, epoch, pct(r["best_val"]), pct(r["test_top1"]))
    counts = frame["status"].value_counts()
    table.caption = ", ".join(f"{n} {s}" for s, n in counts.items())
    return table
