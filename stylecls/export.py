"""Export a run's eval-mode network to ONNX or TorchScript, checked against PyTorch before it is kept.

The exported graph takes float32 images (N, 3, S, S), RGB scaled to [0, 1] and normalised with the
ImageNet mean/std, and returns logits (N, K). The file carries what a user needs to feed it and read it:
the class names, arch, block and the whole preprocessing of ``stylecls predict`` (decoder, pre-resize
rule and side, the shorter-side resize with its interpolation, the centre crop, mean, std) in ONNX
``metadata_props`` or TorchScript ``_extra_files`` (``stylecls.json``); :func:`read_metadata` reads
either and :func:`preprocess` applies it with torchvision. An export never overwrites a run's own
files (only earlier exports under ``RUN/export/``). SRM exports in its inference form: its
BatchNorm folded into the CFC weights and the style pooling in the centred two-pass form.

A file is written to a temporary name, run on a few real images of the run (random inputs when its
data is not on this machine) with onnxruntime / ``torch.jit.load``, compared with the PyTorch model,
and moved into place only when the largest absolute difference of the logits is within ``tolerance``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from stylecls.data.pixels import Pixels
from stylecls.errors import StyleclsError, unknown_name
from stylecls.predict import Run, load_run, refuse_run_files

__all__ = [
    "FORMATS", "TOLERANCE", "ExportResult", "export_model", "export_run", "metadata_of", "preprocess", "read_metadata",
]  # fmt: skip

FORMATS = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
TOLERANCE = 1e-4
METADATA_FILE = "stylecls.json"  # TorchScript _extra_files entry
CHECK_IMAGES = 4
#: metadata values stored as JSON text (the rest are plain strings)
JSON_KEYS = ("classes", "mean", "std", "img_size", "preprocessing")


@dataclass
class ExportResult:
    """Where the file went and how closely it reproduces PyTorch."""

    path: Path
    format: str
    max_abs_diff: float
    checked_on: str  # "4 real images" / "4 random inputs"
    batch_sizes: tuple[int, ...]


def require_format(fmt: str) -> None:
    """Unknown formats and a missing ONNX toolchain are user errors, said before any work."""
    if fmt not in FORMATS:
        raise unknown_name("export format", fmt, FORMATS)
    if fmt == "onnx" and any(importlib.util.find_spec(m) is None for m in ("onnx", "onnxruntime")):
        raise StyleclsError('ONNX export needs onnx and onnxruntime: pip install "stylecls[export]" '
                            '(from a clone: pip install -e ".[export]")')


def metadata_of(run: Run, img_size: int, checkpoint: str) -> dict[str, str]:
    """String key/values stored in the exported file: the model, its classes and (``preprocessing``, JSON)
    everything between an image file and the model's input."""
    from stylecls import __version__
    from stylecls.data import IMAGENET_MEAN, IMAGENET_STD

    s = run.settings
    pixels = _pixels_at(run, img_size).to_dict()
    preprocessing = {
        "decoder": pixels["decoder"],
        "pre_resize": pixels["pre_resize"],  # the run's rule: a factor of img_size, or "original"
        "pre_resize_side": pixels["side"],  # the shorter side the rule gives (None: full resolution)
        "resize_shorter_side": pixels["eval_side"],  # the one resize an image sees before the crop
        "interpolation": pixels["interpolation"],
        "antialias": pixels["antialias"],
        "center_crop": img_size,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "steps": (
            f"decode to RGB uint8; resize the shorter side to {pixels['eval_side']} px ({pixels['interpolation']}, "
            f"antialiased, on uint8); centre-crop {img_size}x{img_size}; divide by 255; subtract mean and divide by "
            "std per channel; float32 NCHW"
        ),
    }
    return {
        "stylecls_version": __version__,
        "run": s.name,
        "checkpoint": checkpoint,
        "arch": s.arch,
        "block": s.block,
        "classes": json.dumps(s.classes),
        "img_size": str(img_size),
        "mean": json.dumps(list(IMAGENET_MEAN)),
        "std": json.dumps(list(IMAGENET_STD)),
        "preprocessing": json.dumps(preprocessing),
        "input": "float32 images (N, 3, img_size, img_size), RGB in [0, 1], normalised: (x - mean) / std",
        "output": "logits (N, len(classes)); softmax for probabilities",
    }


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of an exported file (ONNX or TorchScript), decoded: ``classes`` a list of names,
    ``mean``/``std`` lists of floats, ``img_size`` an int, ``preprocessing`` a dict (stored as JSON text)."""
    path = Path(path)
    if path.suffix == ".onnx":
        import onnx

        raw = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    else:
        extra = {METADATA_FILE: ""}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit's deprecation notice
            torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        raw = json.loads(extra[METADATA_FILE])
    return {k: json.loads(v) if k in JSON_KEYS else v for k, v in raw.items()}


def preprocess(image: torch.Tensor, metadata: dict[str, Any]) -> torch.Tensor:
    """A decoded uint8 RGB image (3, H, W) -> the exported model's input (1, 3, S, S), from the metadata alone.

    The reference for applying ``metadata["preprocessing"]`` anywhere else (README, "Export"): the same
    torchvision calls ``stylecls predict`` makes, so the probabilities agree.
    """
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    pre = metadata["preprocessing"]
    image = F.resize(image, [pre["resize_shorter_side"]], interpolation=InterpolationMode(pre["interpolation"]),
                     antialias=pre["antialias"])
    image = F.center_crop(image, [pre["center_crop"]])
    return F.normalize(F.to_dtype(image, torch.float32, scale=True), pre["mean"], pre["std"])[None]


# --- export + check ----------------------------------------------------------------------------


def _write_onnx(model: nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, str], dynamic: bool) -> None:
    import onnx

    axes = {"images": {0: "batch"}, "logits": {0: "batch"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
        # dynamo=False: the TorchScript-based exporter, which needs no onnxscript and handles every block here
        torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=["images"],
                          output_names=["logits"], dynamic_axes=axes, opset_version=17)
    proto = onnx.load(str(path))
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _write_torchscript(model: nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice
        traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={METADATA_FILE: json.dumps(metadata)})


def _run_exported(path: Path, fmt: str, x: torch.Tensor) -> np.ndarray:
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(["logits"], {"images": x.numpy()})[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(path), map_location="cpu")
    return loaded(x).numpy()


@torch.no_grad()
def export_model(
    model: nn.Module,
    path: str | Path,
    fmt: str,
    check_inputs: torch.Tensor,
    metadata: dict[str, str] | None = None,
    dynamic_batch: bool = False,
    tolerance: float = TOLERANCE,
) -> tuple[float, tuple[int, ...]]:
    """Export ``model`` (eval mode, CPU) to ``path``; return (max |exported - PyTorch|, batch sizes checked).

    Without ``dynamic_batch`` the graph takes batches of one and each input is checked alone; with it,
    it is exported at batch 2 and checked at batch 1 and at ``len(check_inputs)``. Nothing is left at
    ``path`` unless the difference is within ``tolerance``.
    """
    require_format(fmt)
    path = Path(path)
    refuse_run_files(path)
    model = model.eval().cpu()
    example = check_inputs[:2] if dynamic_batch else check_inputs[:1]
    if dynamic_batch and len(example) < 2:
        example = torch.cat([example, example])
    sizes = (1, len(check_inputs)) if dynamic_batch else (1,)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        if fmt == "onnx":
            _write_onnx(model, example, tmp, metadata or {}, dynamic_batch)
        else:
            _write_torchscript(model, example, tmp, metadata or {})
        batches = [check_inputs[:1], check_inputs] if dynamic_batch else list(check_inputs.split(1))
        diff = max(float(np.abs(_run_exported(tmp, fmt, x) - model(x).numpy()).max()) for x in batches)
        if not diff <= tolerance:
            raise StyleclsError(
                f"the exported {fmt} model differs from PyTorch by up to {diff:.3g} (> {tolerance:g}); not written"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return diff, tuple(sorted(set(sizes)))


def _pixels_at(run: Run, img_size: int) -> Pixels:
    """The run's pixel pipeline at another input size (the same pre-resize rule)."""
    pixels = run.settings.pixels
    return pixels if img_size == pixels.img_size else Pixels(img_size, pixels.pre_resize)


def check_inputs_of(run: Run, img_size: int, count: int = CHECK_IMAGES) -> tuple[torch.Tensor, str]:
    """Up to ``count`` normalised images of the run's own data (one per class first), else random inputs."""
    from stylecls.data import normalize
    from stylecls.evaluate import predict_loader

    try:
        rows = run.folder.rows()
    except StyleclsError:
        rows = None
    if rows is not None:
        rows = rows.sort_values("part", key=lambda p: p != "test", kind="stable")  # test images first
        picked = rows.groupby("label", sort=False).head(1).head(count)
        batch = next(iter(predict_loader(picked["path"].tolist(), _pixels_at(run, img_size), batch_size=count)))
        if len(batch.images):
            return normalize(batch.images), f"{len(batch.images)} real images"
    generator = torch.Generator().manual_seed(0)
    return torch.randn(count, 3, img_size, img_size, generator=generator), f"{count} random inputs"


def export_run(
    run: str | Path | Run,
    fmt: str,
    out: str | Path | None = None,
    img_size: int | None = None,
    dynamic_batch: bool = False,
    checkpoint: str = "best",
    tolerance: float = TOLERANCE,
) -> ExportResult:
    """Export a run's model to ``out`` (default ``RUN/export/<checkpoint><ext>``), checked against PyTorch."""
    require_format(fmt)
    run = run if isinstance(run, Run) else load_run(run)
    size = int(img_size or run.img_size)
    if size < 8:
        raise StyleclsError(f"--img-size must be at least 8, got {size}")
    path = Path(out) if out is not None else run.path / "export" / f"{checkpoint}{FORMATS[fmt]}"
    refuse_run_files(path)  # before any work
    model = run.model(checkpoint, "cpu")
    inputs, what = check_inputs_of(run, size)
    diff, sizes = export_model(model, path, fmt, inputs, metadata_of(run, size, checkpoint), dynamic_batch, tolerance)
    return ExportResult(path, fmt, diff, what, sizes)

