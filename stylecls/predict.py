"""Using a trained run: ``load_run(path)`` -> model, evaluation transform, class names, predictions.

``Run.predict`` streams images (files or in-memory PIL images / arrays / tensors) through the one
prediction path of :mod:`stylecls.evaluate.predict` -- the decoder, pre-resize and centre crop of
``stylecls evaluate`` -- so a folder of 100k images runs in constant memory and gives the same
probabilities ``evaluate`` writes to its predictions table. Unreadable files are skipped and
rows of their own with the reason in ``error`` (and no prediction), never raised mid-stream.
"""

from __future__ import annotations

import glob
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torchvision.transforms import v2

from stylecls.data.pixels import Pixels
from stylecls.errors import StyleclsError
from stylecls.runfolder import RunFolder

__all__ = ["Run", "RunSettings", "expand_paths", "load_run", "refuse_run_files", "run_settings"]


@dataclass(frozen=True)
class RunSettings:
    """What prediction and export need from a run's record."""

    name: str
    arch: str
    block: str
    img_size: int
    pixels: Pixels
    classes: list[str] = field(default_factory=list)
    dataset: str = ""


def run_settings(run: RunFolder) -> RunSettings:
    """What prediction and export need, from the run's typed record."""

    record = run.record()
    pixels = run.pixels()
    return RunSettings(name=record.name or run.path.name, arch=str(record.spec.arch), block=record.spec.block,
                       img_size=pixels.img_size, pixels=pixels, classes=list(record.data.classes),
                       dataset=record.spec.dataset)


# --- inputs ----------------------------------------------------------------------------------------


def _is_image_file(path: Path) -> bool:
    from stylecls.data.scan import is_image

    return is_image(path.name)


def expand_paths(specs: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders recursively (image extensions only, sorted), globs (``**`` recursive).

    A spec that matches no image is an error: a typo should not silently predict nothing.
    """
    out: list[Path] = []
    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_file():
            out.append(path)
            continue
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _is_image_file(p))
        elif glob.has_magic(str(spec)):
            matches = sorted(Path(p) for p in glob.glob(os.path.expanduser(str(spec)), recursive=True))
            found = [p for p in matches if p.is_file() and _is_image_file(p)]
            for folder in (p for p in matches if p.is_dir()):
                found += sorted(p for p in folder.rglob("*") if p.is_file() and _is_image_file(p))
        else:
            raise StyleclsError(f"{spec} does not exist")
        if not found:
            raise StyleclsError(f"{spec} matches no image files")
        out.extend(found)
    return list(dict.fromkeys(out))  # a file named twice is predicted once


def _name(item: Any) -> str | None:
    return str(item) if isinstance(item, (str, Path)) else None


def refuse_run_files(path: Path) -> None:
    """``--out`` of export and predict may not replace a file of a run folder (its checkpoints, record, tables):
    only a new file, or an earlier export under ``RUN/export/``. Symlinks are followed; a folder is no file name."""
    target = path.expanduser().resolve()
    if target.is_dir():
        raise StyleclsError(f"--out {path} is a folder; name the file to write in it")
    if not target.exists():
        return
    for folder in target.parents:
        try:
            run = RunFolder(folder)
        except StyleclsError:
            continue
        if folder / "export" not in target.parents:
            raise StyleclsError(
                f"--out {path} would overwrite {target.relative_to(folder)} of the run folder {run.path}; "
                f"write to a new file, or under {folder / 'export'}/"
            )
        return


# --- the run ---------------------------------------------------------------------------------------


class Run:
    """A trained run folder, ready to predict: ``run.model()``, ``run.transform()``, ``run.classes``."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder
        self.settings = run_settings(folder)
        self._models: dict[tuple[str, str], nn.Module] = {}

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def classes(self) -> list[str]:
        return list(self.settings.classes)

    @property
    def img_size(self) -> int:
        return self.settings.img_size

    def model(self, checkpoint: str = "best", device: str | torch.device = "cpu") -> nn.Module:
        """The run's network with ``checkpoint``'s weights, in eval mode on ``device`` (loaded once)."""
        from stylecls.device import select_device

        dev = select_device(str(device))
        key = (checkpoint, str(dev))
        if key not in self._models:
            self._models[key] = self.folder.build_model(checkpoint, dev)[0]
        return self._models[key]

    def transform(self) -> v2.Transform:
        """Image -> normalised float (3, S, S): exactly what ``stylecls evaluate`` feeds the model."""
        from stylecls.data import IMAGENET_MEAN, IMAGENET_STD
        from stylecls.evaluate.predict import image_transform

        return v2.Compose([
            image_transform(self.settings.pixels),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            v2.ToPureTensor(),
        ])

    @torch.no_grad()
    def predict(
        self,
        images_or_paths: Iterable[Any],
        top_k: int = 5,
        batch_size: int = 64,
        tta: str | None = None,
        checkpoint: str = "best",
        device: str | torch.device = "cpu",
        workers: int = 0,
        progress: Callable[[int, int], None] | None = None,
    ) -> pd.DataFrame:
        """One row per item: ``path``, ``pred_class``, ``confidence``, ``class_1..k``, ``prob_1..k``, ``error``.

        Items are file paths (str / Path) or images (PIL, HWC uint8 arrays, CHW tensors); ``path`` is
        empty for in-memory images and the index is each item's position in the input. ``top_k``
        above the class count is clamped (with a warning). ``tta="flip"`` averages the probabilities
        of the image and its mirror. An unreadable file keeps its row, with no prediction and the reason
        in ``error`` (empty for every image that was read): ``frame[frame["error"] == ""]`` are the
        predictions. ``progress(done, total)`` follows each batch.
        """
        from stylecls.evaluate.predict import TTA, NonFiniteOutputs, predict_loader, probabilities

        items = list(images_or_paths)
        k = self._top_k(top_k)
        if tta is not None and tta not in TTA:  # said before the model loads
            raise StyleclsError(f"unknown --tta {tta!r}; choose one of: {', '.join(TTA)}")
        model = self.model(checkpoint, device)
        dev = next(model.parameters()).device
        loader = predict_loader(items, self.settings.pixels, batch_size, workers, pin_memory=dev.type == "cuda")
        kept: list[int] = []
        probs_k: list[np.ndarray] = []
        labels_k: list[np.ndarray] = []
        skipped: dict[int, str] = {}
        done = 0
        try:
            for batch, p in probabilities(model, loader, dev, tta):
                skipped.update(batch.failed)
                if len(p):
                    top = p.topk(k, dim=1)
                    probs_k.append(top.values.numpy())
                    labels_k.append(top.indices.numpy())
                    kept += batch.positions.tolist()
                done += len(batch.positions) + len(batch.failed)
                if progress is not None:
                    progress(done, len(items))
        except NonFiniteOutputs as e:
            raise NonFiniteOutputs(f"{self.folder.checkpoint_path(checkpoint)}: {e}") from None
        return self._frame(items, kept, probs_k, labels_k, k, skipped)

    def _top_k(self, top_k: int) -> int:
        if top_k < 1:
            raise StyleclsError(f"--top-k must be at least 1, got {top_k}")
        if top_k > len(self.classes):
            warnings.warn(f"top-k {top_k} > {len(self.classes)} classes: showing all {len(self.classes)}", stacklevel=4)
        return min(top_k, len(self.classes))

    def _frame(
        self, items: list[Any], kept: list[int], probs_k: list[np.ndarray], labels_k: list[np.ndarray], k: int,
        skipped: dict[int, str],
    ) -> pd.DataFrame:
        probs = np.concatenate(probs_k) if probs_k else np.empty((0, k), np.float32)
        labels = np.concatenate(labels_k) if labels_k else np.empty((0, k), np.int64)
        names = np.asarray(self.classes, dtype=object)
        columns: dict[str, Any] = {
            "path": pd.Series([_name(items[i]) for i in kept], index=kept, dtype=object),  # None: in-memory
            "pred_class": names[labels[:, 0]] if len(kept) else [],
            "confidence": probs[:, 0],
        }
        for j in range(k):
            columns[f"class_{j + 1}"] = names[labels[:, j]] if len(kept) else []
            columns[f"prob_{j + 1}"] = probs[:, j]
        frame = pd.DataFrame(columns, index=pd.Index(kept, name="index"))
        frame["error"] = ""
        if skipped:  # unreadable items keep their place in the input order, with the reason
            failed = pd.DataFrame({"path": [_name(items[i]) for i in skipped], "error": list(skipped.values())},
                                  index=pd.Index(list(skipped), name="index"))
            frame = pd.concat([frame, failed]).sort_index()
        return frame

    def __repr__(self) -> str:
        s = self.settings
        return f"Run({str(self.path)!r}: {s.arch} + {s.block}, {len(s.classes)} classes, {s.img_size} px)"


def load_run(path: str | Path) -> Run:
    """Open a run folder made by ``stylecls train`` (raises :class:`StyleclsError` if it is not one)."""
    return Run(RunFolder(path))
