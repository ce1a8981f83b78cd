"""The style tests' numbers: decisions -> one table per kind, the figure, and a run's summary for reports.

Columns (every table): ``kind``, ``part``, what was measured as an evaluation record says it (``checkpoint``,
``epoch``, ``run_state``: :data:`PROVENANCE`), ``seed``, ``strength``, ``n`` (pairs), ``accuracy`` (decisions that
follow the content image A's label), and per kind:

- amplitude-phase: ``follows_phase`` (= accuracy), ``follows_amplitude`` (B's label), ``phase_fraction``
  (follows_phase among decisions that follow either: a shape-bias-style number in the dataset's labels);
- feature-stats: ``stage``, ``keeps_content`` (= accuracy), ``switches_to_style`` (B's label), ``content_fraction``;
- style-shift: ``shift`` (greyscale, histogram, domain), ``domain``, ``agreement`` with the clean decision; the
  ``domain`` rows are per-domain accuracy, strength 1 for a domain the model never trained on, 0 for one it did.

Readers of results (the report's style-reliance section, :func:`style_summary`) use only the tables of the finished
run's selected checkpoint on its reported part (:meth:`~stylecls.runfolder.Evaluations.check_selected`, the rule of
``stylecls evaluate``'s results); a table of another checkpoint or epoch — say, one a rerun with another ``--kind``
left behind — is left out and named (:func:`selected_tables`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from stylecls.atomic import atomic_write_bytes
from stylecls.data.cache import CacheSource
from stylecls.plotting import figure
from stylecls.record import EvaluationRecord
from stylecls.runfolder import RunFolder, UnusableEvaluation

__all__ = [
    "FIGURE", "PROVENANCE", "SUMMARY_COLUMNS", "domain_rows", "kind_tables", "read_tables", "selected_tables",
    "style_summary", "with_provenance", "write_outputs",
]  # fmt: skip

FIGURE = "style_test.png"
PAIRS = "pairs.csv"
#: the figures' and summary's order of kinds
KIND_FILES = {"amplitude-phase": "amplitude-phase.csv", "feature-stats": "feature-stats.csv",
              "style-shift": "style-shift.csv"}  # fmt: skip
SUMMARY_COLUMNS = ("kind", "test", "strength", "n", "accuracy", "content_fraction", "follows_style", "agreement")
#: what a table measured, beside ``part``: as in an evaluation record
PROVENANCE = ("checkpoint", "epoch", "run_state")


def _rate(hits: np.ndarray) -> float:
    return float(hits.mean()) if len(hits) else float("nan")


def _fraction(content: float, style: float) -> float:
    return content / (content + style) if content + style > 0 else float("nan")


def kind_tables(
    preds: dict[tuple[str, str, float], np.ndarray], rows: pd.DataFrame, pairs: pd.DataFrame, part: str, seed: int
) -> dict[str, pd.DataFrame]:
    """One table per kind from every pair's decisions (keys: kind, test, strength)."""
    labels = rows["label"].to_numpy()
    a, b = labels[pairs["a"].to_numpy()], labels[pairs["b"].to_numpy()]
    clean = preds.get(next((k for k in preds if k[2] == 0), ("", "", 0.0)))
    out: dict[str, list[dict[str, Any]]] = {}
    for (kind, test, strength), pred in preds.items():
        base = {"kind": kind, "part": part, "seed": seed}
        content, style = _rate(pred == a), _rate(pred == b)
        if kind == "amplitude-phase":
            row = {**base, "strength": strength, "n": len(pred), "accuracy": content, "follows_phase": content,
                   "follows_amplitude": style, "phase_fraction": _fraction(content, style)}  # fmt: skip
        elif kind == "feature-stats":
            row = {**base, "stage": test, "strength": strength, "n": len(pred), "accuracy": content,
                   "keeps_content": content, "switches_to_style": style, "content_fraction": _fraction(content, style)}
        else:
            row = {**base, "shift": test, "strength": strength, "domain": "", "n": len(pred), "accuracy": content,
                   "agreement": _rate(pred == clean)}  # fmt: skip
        out.setdefault(kind, []).append(row)
    return {kind: pd.DataFrame(r) for kind, r in out.items()}


def domain_rows(
    rows: pd.DataFrame,
    pairs: pd.DataFrame,
    clean: np.ndarray,
    part: str,
    seed: int,
    model: torch.nn.Module,
    run: RunFolder,
    device: torch.device,
    batch_size: int,
    workers: int,
    source: CacheSource | None,
) -> pd.DataFrame:
    """The domain shift itself: accuracy per domain of the tested part (its clean decisions) and of the train
    domains' val part (predicted here), strength 1 for a held-out domain, 0 for a train domain."""
    from stylecls.evaluate.predict import predict

    train = set(rows.loc[rows["part"] == "train", "domain"])
    tested = rows.loc[pairs["a"].to_numpy()]
    frames = [tested.assign(pred=clean, part=part)]
    val = rows[(rows["part"] == "val") & rows["domain"].isin(train)] if part != "val" else rows.iloc[:0]
    if not val.empty:
        probs = predict(model, val, run.pixels().img_size, device, batch_size, workers, skip_bad=run.spec().skip_bad,
                        pixels=run.pixels(), cache_source=source)
        read = ~np.isnan(probs).any(axis=1)
        frames.append(val[read].assign(pred=probs[read].argmax(axis=1)))
    both = pd.concat(frames, ignore_index=True)
    out = []
    for (where, domain), g in both.groupby(["part", "domain"], sort=True):
        out.append({"kind": "style-shift", "part": where, "seed": seed, "shift": "domain",
                    "strength": 0.0 if domain in train else 1.0, "domain": domain, "n": len(g),
                    "accuracy": _rate(g["pred"].to_numpy() == g["label"].to_numpy()), "agreement": float("nan")})
    return pd.DataFrame(out)


def with_provenance(table: pd.DataFrame, measured: EvaluationRecord) -> pd.DataFrame:
    """``table`` with :data:`PROVENANCE` (checkpoint, epoch, run state of ``measured``) after its ``part``."""
    out = table.drop(columns=[c for c in PROVENANCE if c in table])
    at = list(out.columns).index("part") + 1
    for i, (name, value) in enumerate(zip(PROVENANCE, (measured.checkpoint, measured.epoch, measured.run_state),
                                          strict=True)):
        out.insert(at + i, name, value)
    return out


def _measured(table: pd.DataFrame) -> EvaluationRecord | None:
    """What a table measured (the tested part: its rows other than the domain shift's), None if it does not say."""
    if any(c not in table for c in PROVENANCE):
        return None
    tested = table[table["shift"] != "domain"] if "shift" in table else table
    values = tested[["part", *PROVENANCE]].drop_duplicates()
    if len(values) != 1:
        return None
    part, checkpoint, epoch, state = values.iloc[0]
    epoch = None if pd.isna(epoch) else int(epoch)
    return EvaluationRecord(str(part), str(checkpoint), epoch, "" if pd.isna(state) else str(state), metrics={})


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    data = frame.to_csv(index=False, float_format="%.6g").encode()
    atomic_write_bytes(path, lambda f: f.write(data))


def write_outputs(tables: dict[str, pd.DataFrame], pairs: pd.DataFrame, out_dir: Path, title: str = "") -> list[Path]:
    """A CSV per kind, the pairs (row numbers of the run's split), one figure; written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for name, frame in [*((KIND_FILES[kind], t) for kind, t in tables.items()), (PAIRS, pairs)]:
        _write_csv(out_dir / name, frame)
        files.append(out_dir / name)
    fig = style_figure(tables, title)

    def save(f: Any) -> None:
        fig.savefig(f, format="png", metadata={"Software": None})

    atomic_write_bytes(out_dir / FIGURE, save)
    files.append(out_dir / FIGURE)
    return files


def style_figure(tables: dict[str, pd.DataFrame], title: str = "") -> Any:
    """One panel per kind: what the decisions follow as the strength grows."""
    fig = figure(4.2 * len(tables), 3.4)
    axes = fig.subplots(1, len(tables), squeeze=False)[0]
    for ax, (kind, t) in zip(axes, tables.items(), strict=True):
        if kind == "amplitude-phase":
            for col in ("follows_phase", "follows_amplitude", "phase_fraction"):
                ax.plot(t["strength"], t[col], marker="o", label=col)
            ax.set_xlabel("β (swapped low band; 1 = whole amplitude)")
        elif kind == "feature-stats":
            for stage, g in t.groupby("stage", sort=True):
                line = ax.plot(g["strength"], g["keeps_content"], marker="o", label=f"{stage} keeps")
                ax.plot(g["strength"], g["switches_to_style"], ls="--", marker="x", color=line[0].get_color(),
                        label=f"{stage} switches")
            ax.set_xlabel("α (AdaIN towards B's statistics)")
        else:
            for shift, g in t[t["shift"] != "domain"].groupby("shift", sort=True):
                ax.plot(g["strength"], g["accuracy"], marker="o", label=f"{shift} accuracy")
                ax.plot(g["strength"], g["agreement"], ls="--", marker="x", label=f"{shift} agreement")
            for d in t[t["shift"] == "domain"].itertuples():
                ax.scatter([d.strength], [d.accuracy], marker="s", label=f"{d.domain} ({d.part})")
            ax.set_xlabel("strength (blend with the shifted image)")
        ax.set_title(kind, fontsize=10)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def read_tables(run: str | Path | RunFolder) -> dict[str, pd.DataFrame]:
    """The style-test tables a run holds (kinds not tested are absent)."""
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    out = {}
    for kind, name in KIND_FILES.items():
        path = run.style_test_dir / name
        if path.is_file():
            out[kind] = pd.read_csv(path, keep_default_na=False, na_values=[""])
    return out


def selected_tables(run: str | Path | RunFolder) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The style-test tables results may use (of the finished run's best.pt at its best epoch, on its reported part,
    made after training), and one line per other table: which file, why, and the command that fixes it."""
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    usable, left_out = {}, []
    for kind, table in read_tables(run).items():
        path = run.style_test_dir / KIND_FILES[kind]
        fix = f"re-run `stylecls style-test {run.path} --kind {kind}`"
        measured = _measured(table)
        if measured is None:
            left_out.append(f"{path}: it does not say which checkpoint and epoch it measured (an older stylecls); "
                            f"{fix}")
            continue
        try:
            run.evaluations.check_selected(measured, fix, what="style test")
        except UnusableEvaluation as e:
            left_out.append(f"{path}: {e.reason}")
            continue
        usable[kind] = table
    return usable, left_out


def style_summary(run: str | Path | RunFolder, tables: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """A run's style-test numbers, one row per (kind, test, strength) in :data:`SUMMARY_COLUMNS`, from ``tables``
    (default: the run's usable ones, :func:`selected_tables`; empty when it has none): ``test`` is ``amplitude``,
    ``stage<k>``, a shift, or ``domain <d> (<part>)``; ``content_fraction`` is the phase/content fraction,
    ``follows_style`` the rate of B's label (NaN where a kind has no such number). For reports: pair runs over seeds
    on (kind, test, strength) as on accuracy."""
    out = []
    for kind, t in (selected_tables(run)[0] if tables is None else tables).items():
        if kind == "amplitude-phase":
            f = t.assign(test="amplitude", content_fraction=t["phase_fraction"], follows_style=t["follows_amplitude"])
        elif kind == "feature-stats":
            f = t.assign(test=t["stage"], follows_style=t["switches_to_style"])
        else:
            where = zip(t["shift"], t["domain"], t["part"], strict=True)
            test = [s if s != "domain" else f"domain {d} ({p})" for s, d, p in where]
            f = t.assign(test=test)
        out.append(f.reindex(columns=list(SUMMARY_COLUMNS)))
    if not out:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    return pd.concat(out, ignore_index=True)
