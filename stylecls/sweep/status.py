"""``stylecls status``: where each run of a sweep stands, from its folder alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from stylecls.errors import StyleclsError
from stylecls.record import NOT_STARTED
from stylecls.runfolder import RunFolder, find_run_folders
from stylecls.spec import RunSpec
from stylecls.sweep.plan import MANIFEST, SweepPlan

__all__ = ["plan_frame", "run_status", "status_frame", "status_table"]

COLUMNS = ["run", "spec", "status", "epoch", "epochs", "best_val", "test_top1", "note"]
#: a run folder whose files cannot be read (listed, never a reason to stop listing the others)
UNREADABLE = "unreadable"


def run_status(run_dir: Path, spec: RunSpec | None = None) -> dict[str, Any]:
    """One row: run, spec summary, state, epoch reached, best validation accuracy, and the test top-1 of the
    run's selected evaluation (empty, with the reason in ``note``, where there is no usable one)."""
    row: dict[str, Any] = {"run": run_dir.name, "spec": spec.summary() if spec else "", "status": NOT_STARTED,
                           "epoch": None, "epochs": spec.epochs if spec else None, "best_val": None,
                           "test_top1": None, "note": ""}  # fmt: skip
    folder = RunFolder(run_dir, must_exist=False)
    if not folder.config_path.is_file():
        return row
    try:
        spec, status = folder.spec(), folder.status()
    except StyleclsError as e:
        return {**row, "status": UNREADABLE, "note": str(e)}
    row.update(spec=spec.summary(), epochs=spec.epochs, status=status.state, epoch=status.epoch,
               best_val=status.best_val_acc)
    if status.finished:
        try:
            row["test_top1"] = folder.evaluations.selected().top1
        except StyleclsError as e:
            row["note"] = getattr(e, "reason", str(e))
    return row


def plan_frame(plan: SweepPlan) -> pd.DataFrame:
    """The runs of ``plan`` only (folders absent: not started)."""
    return pd.DataFrame([run_status(plan.run_dir(s), s) for s in plan.specs], columns=COLUMNS)


def status_frame(out: str | Path) -> pd.DataFrame:
    """Every run of the sweep in ``out`` (its sweep.json), plus any other run folder found there; ``out``
    may itself be one run folder (one row)."""
    out = Path(out)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    if (out / MANIFEST).is_file():
        plan = SweepPlan.read(out)
        rows = plan_frame(plan).to_dict("records")
        seen = {s.run_name() for s in plan.specs}
    elif not out.is_dir():
        raise StyleclsError(f"{out} does not exist")
    for run_dir in find_run_folders(out):
        if run_dir.name not in seen:
            rows.append(run_status(run_dir))
    return pd.DataFrame(rows, columns=COLUMNS)


def status_table(frame: pd.DataFrame, title: str) -> Table:
    colour = {"done": "green", "running": "cyan", "interrupted": "yellow", "failed": "red", "not started": "dim",
              UNREADABLE: "red"}
    table = Table(title=title)
    notes = frame["note"].fillna("").astype(str) if "note" in frame else pd.Series([""] * len(frame))
    columns = ("run", "spec", "status", "epoch", "best val", "test top-1") + (("note",) if notes.any() else ())
    for column in columns:
        table.add_column(column, justify="right" if column in ("epoch", "best val", "test top-1") else "left")

    def pct(x: Any) -> str:
        return "" if x is None or pd.isna(x) else f"{100 * float(x):.1f}%"

    for r in frame.to_dict("records"):
        epoch = "" if pd.isna(r["epoch"]) else f"{int(r['epoch'])}/{'?' if pd.isna(r['epochs']) else int(r['epochs'])}"
        status = f"[{colour.get(r['status'], 'white')}]{r['status']}[/]"
        cells = [r["run"], r["spec"], status, epoch, pct(r["best_val"]), pct(r["test_top1"])]
        table.add_row(*cells, *([str(r.get("note") or "")] if notes.any() else []))
    counts = frame["status"].value_counts()
    table.caption = ", ".join(f"{n} {s}" for s, n in counts.items())
    return table
