"""Is a copy complete and readable? ``stylecls data list`` and ``stylecls data check``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from torch.utils.data import DataLoader, Dataset

from stylecls.data import demo
from stylecls.data.catalog import DATASETS, card, catalog, dataset_dir
from stylecls.data.decode import decode, reason
from stylecls.data.records import DOWNLOADABLE
from stylecls.errors import StyleclsError


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class CheckReport:
    """The outcome of :func:`check`: ``ok`` only for a complete, readable copy."""

    dataset: str
    root: str
    ok: bool
    lines: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def render(self, console: Any) -> None:
        """Print the report with rich (tables, then findings, then the verdict)."""
        from rich.table import Table as RichTable

        for t in self.tables:
            table = RichTable(title=t.title, title_justify="left")
            for i, col in enumerate(t.columns):
                table.add_column(col, justify="left" if i == 0 else "right")
            for row in t.rows:
                table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row))
            console.print(table)
        for line in self.lines:
            console.print(line, highlight=False, soft_wrap=True)
        if self.ok:
            verdict = "[green]OK: complete and readable[/]"
        else:
            why = []
            if not self.info.get("complete", True):
                found, expected = self.info["found"]["images"], (self.info.get("expected") or {}).get("images")
                why.append(f"incomplete ({found:,} of {expected:,} images)" if expected else "incomplete")
            if self.bad:
                why.append(f"{len(self.bad)} undecodable files")
            verdict = f"[red]NOT OK: {', '.join(why)}[/]"
        console.print(f"{self.dataset} at {self.root}: {verdict}", highlight=False, soft_wrap=True)


class _Decodes(Dataset):
    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> str:
        try:
            decode(self.paths[i])
            return ""
        except Exception as e:  # noqa: BLE001 - any failure to decode is what we report
            return f"{self.paths[i]}: {reason(e)}"


def find_undecodable(paths: list[str], workers: int = 2, progress: bool = True) -> list[str]:
    """``path: reason`` for every file that does not decode (in parallel, with a progress bar)."""
    if workers < 0:
        raise StyleclsError(f"--workers must be 0 (decode in this process) or more, not {workers}")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    loader = DataLoader(_Decodes(paths), batch_size=32, num_workers=workers, collate_fn=list)
    bad: list[str] = []
    with Progress(
        TextColumn("decoding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), disable=not progress
    ) as bar:
        task = bar.add_task("decode", total=len(paths))
        for batch in loader:
            bad.extend(b for b in batch if b)
            bar.advance(task, len(batch))
    return bad


def check(
    name: str,
    root: str | Path | None = None,
    deep: bool = False,
    *,
    workers: int = 2,
    progress: bool = True,
    **options: Any,
) -> CheckReport:
    """Compare a copy with the counts of a complete one; with ``deep``, decode every image."""
    frame = catalog(name, root, **options)
    info = frame.attrs["info"]
    expected = info["expected"] or {}
    # only the splits the catalogue has: multi-domain sets get their test part from the protocol
    parts = [p for p in ("train", "val", "test") if (frame["split"] == p).any()] or ["train", "val", "test"]
    by_split = pd.crosstab(frame["domain"], frame["split"]).reindex(
        index=info["domains"], columns=parts, fill_value=0
    )
    rows = [
        [d, info["found"]["domains"].get(d, 0), expected.get("domains", {}).get(d, "-"), *map(int, by_split.loc[d])]
        for d in info["domains"]
    ]
    rows.append(["total", info["found"]["images"], expected.get("images", "-"), *map(int, by_split.sum())])
    tables = [
        Table(f"{name}: images per domain (split: {info['split_source']})",
              ["domain", "found", "expected", *parts], rows)
    ]
    by_class = pd.crosstab(frame["class_name"], frame["domain"]).reindex(
        index=info["classes"], columns=info["domains"], fill_value=0
    )
    tables.append(
        Table(
            f"{name}: images per class ({info['found']['classes']} of {len(info['classes'])} classes present)",
            ["class", *info["domains"], "total"],
            [[c, *map(int, counts), int(counts.sum())] for c, counts in by_class.iterrows()],
        )
    )
    lines = []
    if info["expected"] is None:
        lines.append("no reference counts for a plain folder: checked for readable images only")
    if info["missing_domains"]:
        lines.append(f"[red]missing domains:[/] {', '.join(info['missing_domains'])}")
    if info["missing_classes"]:
        lines.append(f"[red]missing classes ({len(info['missing_classes'])}):[/] {', '.join(info['missing_classes'])}")
    if len(info["domains"]) > 1 and not (frame["split"] == "test").any():
        lines.append("test images come from the protocol: the held-out domain (lodo) or the val rows (multi-domain)")
    lines.extend(f"[yellow]warning:[/] {w}" for w in info["warnings"])
    bad: list[str] = []
    if deep:
        bad = find_undecodable(sorted(set(frame["path"])), workers=workers, progress=progress)
        if bad:
            lines.append(f"[red]{len(bad)} files cannot be decoded:[/]")
            lines.extend(f"  {b}" for b in bad)
        else:
            lines.append(f"all {frame['path'].nunique():,} images decode")
    else:
        lines.append("(not decoded: add --deep to decode every image)")
    ok = bool(info["complete"]) and not bad
    return CheckReport(name, info["root"], ok, lines, tables, bad, info)


def list_datasets(root: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per dataset: where it is looked for, whether it is there, found vs expected images."""
    out = []
    for name in DATASETS:
        c = card(name)
        where = dataset_dir(name, root)
        row: dict[str, Any] = {"dataset": name, "where": str(where), "status": "missing", "images": "-",
                               "expected": "-", "classes": "-", "domains": "-", "source": c.source}
        if name in DOWNLOADABLE:  # `data list` prints "get it from <source>" for a missing dataset
            row["source"] = f"`stylecls data download --dataset {name}` (or {c.source})"
        if name == "folder":
            row.update(where="--data-root <folder>", status="any folder of class folders")
        elif name == "demo" and not demo.is_generated(where):
            row.update(status="generated on first use")
        else:
            try:
                info = catalog(name, root).attrs["info"]
            except StyleclsError:
                out.append(row)
                continue
            exp = info["expected"] or {}
            row.update(
                status="complete" if info["complete"] else "incomplete",
                images=info["found"]["images"],
                expected=exp.get("images", "-"),
                classes=f"{info['found']['classes']}/{len(info['classes'])}",
                domains=len(info["domains"]),
            )
        out.append(row)
    return out


