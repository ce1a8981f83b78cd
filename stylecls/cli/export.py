"""`stylecls export`: a run's model as an ONNX or TorchScript file, checked against PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from stylecls.cli.app import CheckpointOpt, app, console, flag


@app.command("export")
def export_cmd(
    run: Path = typer.Argument(..., help="Run folder (made by `stylecls train`)."),
    fmt: str = typer.Option(..., "--format", help="onnx (needs the export extra) or torchscript."),
    out: Optional[Path] = typer.Option(None, "--out", help="File to write (default: RUN/export/<checkpoint>.onnx "
                                       "or .torchscript.pt); never a file of a run folder."),
    img_size: Optional[int] = typer.Option(None, "--img-size", help="Input size (default: the run's)."),
    dynamic_batch: bool = flag("--dynamic-batch", help="Any batch size (default: batches of one)."),
    checkpoint: str = CheckpointOpt,
) -> None:
    """Export the eval-mode model with class names and normalisation in its metadata.

    The file is run on a few of the run's images and kept only if its logits are within 1e-4 of PyTorch's.
    """
    from stylecls.export import TOLERANCE, export_run, require_format

    require_format(fmt)
    result = export_run(run, fmt, out, img_size, dynamic_batch, checkpoint)
    sizes = ", ".join(map(str, result.batch_sizes))
    console.print(
        f"max abs diff vs PyTorch: {result.max_abs_diff:.2e} (tolerance {TOLERANCE:g}; {result.checked_on}, "
        f"batch size {sizes})", highlight=False,
    )
    console.print(f"wrote {result.path}", highlight=False)
