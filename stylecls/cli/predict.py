"""`stylecls predict`: class names and probabilities for any images, from a trained run (the Python API's CLI)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Optional

import typer

from stylecls.cli.app import CheckpointOpt, DeviceOpt, WorkersOpt, app, console, err_console
from stylecls.errors import StyleclsError

OUT_FORMATS = (".csv", ".json", ".parquet")
SHOWN = 20  # rows of the printed table; the --out file has all of them


def _check_out(out: Optional[Path]) -> None:
    from stylecls.predict import refuse_run_files

    if out is None:
        return
    refuse_run_files(out)
    if out.suffix.lower() not in OUT_FORMATS:
        raise StyleclsError(f"--out {out}: unknown file type {out.suffix!r}; use one of: {', '.join(OUT_FORMATS)}")
    if out.suffix.lower() == ".parquet":
        import importlib.util

        if importlib.util.find_spec("pyarrow") is None:
            raise StyleclsError("--out .parquet needs pyarrow: pip install pyarrow (or write .csv / .json)")


def _write(frame, out: Path) -> None:  # noqa: ANN001 - a pandas DataFrame
    from stylecls.atomic import atomic_write_bytes

    table = frame.reset_index()
    suffix = out.suffix.lower()
    if suffix == ".csv":
        atomic_write_bytes(out, lambda f: table.to_csv(f, index=False))
    elif suffix == ".json":
        records = json.loads(table.to_json(orient="records"))  # pandas' JSON: NaN -> null, numpy -> numbers
        atomic_write_bytes(out, lambda f: f.write(json.dumps(records, indent=2).encode()))
    else:
        atomic_write_bytes(out, lambda f: table.to_parquet(f, index=False))


@app.command("predict")
def predict_cmd(
    run: Path = typer.Argument(..., help="Run folder (made by `stylecls train`)."),
    paths: list[str] = typer.Argument(..., help="Image files, folders (searched recursively) and globs, in any mix."),
    checkpoint: str = CheckpointOpt,
    top_k: int = typer.Option(5, "--top-k", help="Classes per image in --out; above the class count it is "
                              "clamped to it (with a note). Must be >= 1."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write every prediction to FILE.csv, .json or .parquet."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Images per forward pass."),
    device: str = DeviceOpt,
    workers: int = WorkersOpt,
    tta: Optional[str] = typer.Option(None, "--tta", help="Test-time augmentation: flip (mean of image and mirror)."),
) -> None:
    """Predict the class of images with a trained run: a table of top-1 classes, all top-k in --out.

    Unreadable files are listed and skipped; the exit code is then 1.
    """
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from stylecls.predict import expand_paths, load_run

    _check_out(out)
    if top_k < 1:
        raise StyleclsError(f"--top-k must be at least 1, got {top_k}")
    predictor = load_run(run)
    if not predictor.folder.checkpoint_path(checkpoint).is_file():
        raise StyleclsError(f"{run} has no {checkpoint}.pt checkpoint (has training finished an epoch?)")
    files = expand_paths(paths)
    if top_k > len(predictor.classes):
        err_console.print(f"note: --top-k {top_k} > the run's {len(predictor.classes)} classes; "
                          f"writing all {len(predictor.classes)}")
    columns = (TextColumn("predicting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the top-k clamp, said above
        task = bar.add_task("predicting", total=len(files))
        frame = predictor.predict(
            files, top_k, batch_size, tta, checkpoint, device, workers,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    table = Table(title=f"{run} ({checkpoint} checkpoint{', flip TTA' if tta else ''})")
    table.add_column("path", overflow="fold")
    table.add_column("class")
    table.add_column("probability", justify="right")
    read = frame[frame["error"] == ""]
    for row in read.head(SHOWN).itertuples():
        table.add_row(escape(str(row.path)), escape(str(row.pred_class)), f"{row.confidence:.3f}")
    if len(read) > SHOWN:
        rest = f"; all in {out}" if out else "; --out FILE for all"
        table.caption = f"first {SHOWN} of {len(read):,} images{rest}"
    console.print(table)
    if out is not None:
        _write(frame, out)
        err_console.print(f"wrote {len(frame):,} rows ({len(read):,} predictions) to {out}")
    skipped = frame[frame["error"] != ""]
    if len(skipped):
        for row in skipped.itertuples():
            err_console.print(f"[yellow]unreadable:[/] {escape(str(row.path))}: {escape(str(row.error))}",
                              highlight=False, soft_wrap=True)
        err_console.print(f"[yellow]{len(skipped)} of {len(files):,} files could not be read and were skipped[/]")
        raise typer.Exit(1)
