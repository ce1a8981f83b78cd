"""Is a copy complete and readable? ``stylecls data list`` and ``stylecls data check``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from torch.utils.data import DataLoader, Dataset

from stylecls.data.catalog import CatalogInfo, catalog, dataset_dir
from stylecls.data.decode import decode, reason
from stylecls.data.registry import DATASETS
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
    folder: str  # the dataset's folder that was checked
    ok: bool
    info: CatalogInfo
    lines: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)

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
            if not self.info.complete:
                found, expected = self.info.found.images, self.info.expected
                why.append(f"incomplete ({found:,} of {expected.images:,} images)" if expected else "incomplete")
            if self.bad:
                why.append(f"{len(self.bad)} undecodable files")
            verdict = f"[red]NOT OK: {', '.join(why)}[/]"
        console.print(f"{self.dataset} at {self.folder}: {verdict}", highlight=False, soft_wrap=True)


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
    data = catalog(name, root, **options)
    frame, info = data.frame, data.info
    expected = info.expected
    domains = list(info.domains)
    # only the splits the catalog has: multi-domain sets get their test part from the protocol
    parts = [p for p in ("train", "val", "test") if (frame["split"] == p).any()] or ["train", "val", "test"]
    by_split = pd.crosstab(frame["domain"], frame["split"]).reindex(index=domains, columns=parts, fill_value=0)
    rows = [
        [d, info.found.domains.get(d, 0), expected.domains.get(d, "-") if expected else "-", *map(int, by_split.loc[d])]
        for d in domains
    ]
    rows.append(["total", info.found.images, expected.images if expected else "-", *map(int, by_split.sum())])
    tables = [
        Table(f"{name}: images per domain (split: {info.split_source})", ["domain", "found", "expected", *parts], rows)
    ]
    by_class = pd.crosstab(frame["class_name"], frame["domain"]).reindex(
        index=list(info.classes), columns=domains, fill_value=0
    )
    tables.append(
        Table(
            f"{name}: images per class ({info.found.classes} of {len(info.classes)} classes present)",
            ["class", *domains, "total"],
            [[c, *map(int, counts), int(counts.sum())] for c, counts in by_class.iterrows()],
        )
    )
    lines = []
    if expected is None:
        lines.append("no reference counts for a plain folder: checked for readable images only")
    if info.missing_domains:
        lines.append(f"[red]missing domains:[/] {', '.join(info.missing_domains)}")
    if info.missing_classes:
        lines.append(f"[red]missing classes ({len(info.missing_classes)}):[/] {', '.join(info.missing_classes)}")
    if len(domains) > 1 and not (frame["split"] == "test").any():
        lines.append("test images come from the protocol: the held-out domain (lodo) or the val rows (multi-domain)")
    lines.extend(f"[yellow]warning:[/] {w}" for w in info.warnings)
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
    ok = info.complete and not bad
    return CheckReport(name, str(info.folder), ok, info, lines, tables, bad)


def list_datasets(root: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per dataset: where it is looked for, whether it is there, found vs expected images.

    Datasets at a place of their own come first (by name), then those whose place is the data root
    itself (``folder``: any folder you name).
    """
    out = []
    anywhere = {n for n, d in DATASETS.items() if d.folder is None and d.home is None}
    for name in sorted(DATASETS, key=lambda n: (n in anywhere, n)):
        d = DATASETS[name]
        row: dict[str, Any] = {"dataset": name, "where": "", "status": "missing", "images": "-",
                               "expected": "-", "classes": "-", "domains": "-", "source": d.source, "help": d.help}
        if d.downloadable:  # `data list` prints "get it from <source>" for a missing dataset
            row["source"] = f"`stylecls data download --dataset {name}` (or {d.source})"
        if name in anywhere:
            row.update(where="--data-root <folder>", status="any folder of class folders")
            out.append(row)
            continue
        where = dataset_dir(name, root)
        row["where"] = str(where)
        if d.generated is not None and not d.generated(where):
            row.update(status="generated on first use")
        else:
            try:
                info = catalog(name, root).info
            except StyleclsError:
                out.append(row)
                continue
            row.update(
                status="complete" if info.complete else "incomplete",
                images=info.found.images,
                expected=info.expected.images if info.expected else "-",
                classes=f"{info.found.classes}/{len(info.classes)}",
                domains=len(info.domains),
            )
        out.append(row)
    return out
