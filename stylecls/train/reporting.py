"""What a run prints: the settings at the start, a progress bar per epoch, one line per epoch."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from stylecls.spec import RunSpec

_WIDE = not sys.stdout.isatty() and "COLUMNS" not in os.environ  # piped or logged: 160 columns, not rich's 80
console = Console(highlight=False, soft_wrap=True, width=160 if _WIDE else None)
PLAIN_LOG_SECONDS = 60.0  # without a terminal, a progress line at most this often within an epoch


def print_settings(spec: RunSpec, info: dict[str, Any], counts: dict[str, int], run_dir: Path,
                   runtime: dict[str, Any], pixels: str) -> None:
    """The resolved recipe, the data and the device, before the first step (also in the run record)."""
    console.print(f"[bold]stylecls train[/] -> {run_dir}")
    console.print(
        f"  data     {spec.dataset} ({info.get('data_root')}), protocol {info.get('protocol')}"
        + (f", test domain {info.get('test_domain')}" if info.get("test_domain") else "")
        + (f", split {spec.split}" if spec.split else "")
        + f"; {len(info.get('classes', []))} classes; train {counts['train']:,} / val {counts['val']:,}"
        f" / test {counts['test']:,} images"
    )
    console.print(f"  pixels   {pixels}")
    console.print(
        f"  model    {spec.arch} + {spec.block}"
        + (f" {dict(spec.block_options)}" if spec.block_options else "")
        + (f", pretrained {spec.pretrained}" if spec.pretrained else "")
        + f", {runtime['parameters']:,} parameters"
    )
    epochs = f"{spec.epochs} epoch{'' if spec.epochs == 1 else 's'}"
    warmup = f"{spec.warmup_epochs} warmup epoch{'' if spec.warmup_epochs == 1 else 's'}"
    console.print(
        f"  recipe   {epochs}, {spec.img_size} px, batch {spec.batch_size}, {spec.optimizer} lr {spec.lr:g}"
        f" wd {spec.weight_decay:g} ({'no decay for SRM' if spec.norm_bias_decay else 'no decay for SRM/BN/bias'}),"
        f" {spec.schedule} with {warmup}, label smoothing {spec.label_smoothing:g},"
        f" crops >= {spec.min_crop:g} of the area, seed {spec.seed}"
        + (f", {spec.sampler} batches" if spec.sampler != "random" else "")
    )
    console.print(
        f"  device   {runtime['device']}{' x' + str(runtime['world_size']) if runtime['world_size'] > 1 else ''},"
        f" amp {runtime['amp']}, channels_last {runtime['channels_last']}, compile {runtime['requested']['compile']},"
        f" workers {runtime['workers']}, threads {runtime['threads']}"
    )
    if not info.get("complete", True):
        found, expected = info.get("found", {}), info.get("expected") or {}
        console.print(
            f"  [yellow]incomplete copy of {spec.dataset}: found {found.get('images', '?'):,} of "
            f"{expected.get('images', '?'):,} images, {found.get('classes', '?')} of {expected.get('classes', '?')} "
            "classes (recorded in the run record)[/]"
        )
    warnings = [w for w in info.get("warnings", []) if not w.startswith("incomplete copy")]
    for w in warnings[:5]:
        console.print(f"  [yellow]warning:[/] {w}")
    if len(warnings) > 5:
        console.print(f"  [yellow]... {len(warnings) - 5} more warnings in the run record[/]")


def print_epoch(row: dict[str, Any], epochs: int, best: bool) -> None:
    test = f"  test acc {100 * row['test_acc']:5.1f}%" if row.get("test_acc") not in (None, "") else ""
    console.print(
        f"epoch {row['epoch']:>{len(str(epochs))}}/{epochs}  train loss {row['train_loss']:.4f} "
        f"acc {100 * row['train_acc']:5.1f}%  val loss {row['val_loss']:.4f} acc {100 * row['val_acc']:5.1f}%{test}"
        f"  lr {row['lr']:.3g}  {row['img_per_s']:,.0f} img/s  {row['seconds']:.1f}s"
        + ("  [green]best[/]" if best else "")
        + (f"  [yellow]{row['skipped']} unreadable images skipped[/]" if row["skipped"] else "")
    )


@contextmanager
def epoch_progress(epoch: int, epochs: int, steps: int, show: bool) -> Iterator[Callable[[int, str], None]]:
    """``advance(step, text)``: a rich bar on a terminal; without one, a plain line now and then."""
    if not show:
        import time

        last = [time.perf_counter()]

        def plain(step: int, text: str) -> None:
            if time.perf_counter() - last[0] > PLAIN_LOG_SECONDS:
                last[0] = time.perf_counter()
                console.print(f"  epoch {epoch}/{epochs} step {step}/{steps}: {text}")

        yield plain
        return
    progress = Progress(
        TextColumn(f"epoch {epoch}/{epochs}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[text]}"),
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console, transient=True,
    )  # fmt: skip
    with progress:
        task = progress.add_task("train", total=steps, text="")
        yield lambda step, text: progress.update(task, completed=step, text=text)
