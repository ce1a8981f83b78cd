"""`stylecls models`: parameters, GFLOPs and measured overhead of each block."""

from __future__ import annotations

from typing import Optional

import typer

from stylecls.cli.app import app, console, err_console, flag, registry_option


def _say_timing(what: str) -> None:
    err_console.print(f"timing {what} (plain and block side by side) ...", highlight=False)


@app.command("models")
def models_command(
    arch: list[str] = registry_option(
        ["resnet50"], "--arch", "-a", registry="stylecls.models:ARCHS", help="Backbone(s); repeat for several."
    ),
    block: Optional[list[str]] = registry_option(
        None, "--block", "-b", registry="stylecls.blocks:BLOCKS", help="Block(s); default: all of them."
    ),
    img_size: int = typer.Option(224, min=1, help="Input size for GFLOPs (and timing)."),
    num_classes: int = typer.Option(1000, min=1, help="Classifier size (1000 = ImageNet, the paper's counts)."),
    time: bool = flag("--time", help="Also time train/inference steps against the plain backbone."),
    batch_size: int = typer.Option(16, min=1, help="Batch size for --time."),
    repeats: int = typer.Option(10, min=1, help="Timed repeats per block for --time (the median ratio is shown)."),
) -> None:
    """Parameters, GFLOPs and (with --time) measured overhead of each block, per backbone."""
    from rich.table import Table

    from stylecls.blocks import BLOCKS
    from stylecls.models.overhead import measure_overhead

    blocks = block or list(BLOCKS)
    table = Table(title=f"recalibration overhead ({img_size} px, {num_classes} classes)")
    for col in ("arch", "block", "params", "Δparams", "GFLOPs"):
        table.add_column(col, justify="left" if col in ("arch", "block") else "right")
    if time:
        for col in ("train ms", "train ×", "infer ms", "infer ×"):
            table.add_column(col, justify="right")
    for a in arch:
        rows = measure_overhead(
            a, ["none", *[b for b in blocks if b != "none"]], img_size, batch_size, num_classes,
            time_steps=time, repeats=repeats, progress=_say_timing if time else None,
        )
        plain = rows[0].params
        for r in rows:
            if r.block not in blocks:
                continue
            cells = [a, r.block, f"{r.params:,}", f"{r.params - plain:+,}", f"{r.gflops:.3f}"]
            if time:
                cells += [f"{r.train_ms:.1f}", f"{r.train_ratio:.3f}", f"{r.infer_ms:.1f}", f"{r.infer_ratio:.3f}"]
            table.add_row(*cells)
    console.print(table)
    if time:
        console.print(
            f"batch {batch_size}, median of {repeats} side-by-side repeats; × = time / plain backbone's time"
            + (" (the 'none' row is plain against itself: the noise floor)." if "none" in blocks else ".")
        )
