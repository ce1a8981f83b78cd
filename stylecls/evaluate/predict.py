"""The one prediction path: images -> the run's evaluation pixels -> softmax probabilities.

``stylecls evaluate``, ``stylecls predict`` (``Run.predict``), ``inspect`` and the style tests read their
images through :class:`PredictDataset` / :func:`predict_loader` and run the model with
:func:`probabilities`: a file is decoded and pre-resized by the one pixel function of the run
(:func:`stylecls.data.decode.decode_pixels`, served by a prepared cache where one holds it), an
in-memory image (PIL, HWC array, CHW tensor) is made RGB as a file would be and goes through the same
pre-resize, then both are centre-cropped by the evaluation transform. So a file and the same image in
memory give the same probabilities, and ``predict`` reproduces ``evaluate``'s predictions.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Optional

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from stylecls.data.cache import CacheSource
from stylecls.data.decode import DECODE_ERRORS, decode_pixels, pre_resize, reason
from stylecls.data.pixels import Pixels
from stylecls.data.transforms import eval_transform
from stylecls.errors import StyleclsError

__all__ = [
    "TTA", "NonFiniteOutputs", "PredictBatch", "PredictDataset", "check_pixel_count", "image_transform", "predict",
    "predict_loader", "predictions_frame", "probabilities", "to_rgb",
]  # fmt: skip

TTA = ("flip",)

Sample = tuple[Optional[torch.Tensor], int, str]  # (uint8 image or None, position, why it is None)


class NonFiniteOutputs(StyleclsError):
    """The model gave NaN or infinite outputs: the checkpoint is unusable (never "unreadable images")."""


def to_rgb(image: Image.Image) -> Image.Image:
    """A PIL image as 8-bit RGB, the way a file of it decodes: alpha dropped (RGBA, LA, a palette with
    transparency), CMYK converted, 16-bit greyscale scaled to 8 bits (not clipped), first frame of an animation."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16"):
        image = Image.fromarray((np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8))
    return image.convert("RGB")


def image_transform(pixels: Pixels) -> v2.Transform:
    """Any in-memory image (PIL, HWC array, CHW tensor) -> uint8 (3, S, S): RGB, the run's pre-resize,
    then the evaluation resize + centre crop (the pixels ``stylecls evaluate`` sees for a file)."""

    def pil_rgb(image: Any) -> Any:
        return to_rgb(image) if isinstance(image, Image.Image) else image

    return v2.Compose([
        v2.Lambda(pil_rgb), v2.ToImage(), v2.RGB(), v2.ToDtype(torch.uint8, scale=True), v2.ToPureTensor(),
        v2.Lambda(lambda image: pre_resize(image, pixels)), eval_transform(pixels),
    ])  # fmt: skip


def check_pixel_count(path: str) -> None:
    """Refuse an image with more pixels than Pillow's ``Image.MAX_IMAGE_PIXELS`` before decoding it.

    torchvision's decoders have no decompression-bomb check: a 20000x20000 PNG of a few kB would
    allocate 1.2 GB. The header alone (read by PIL, lazily) gives the size; files PIL cannot identify
    are left to the decoder. Raise the limit as for Pillow: ``PIL.Image.MAX_IMAGE_PIXELS = N``. Prediction
    checks every file it decodes (any file may come in); training data, catalogued by its owner, is not
    (the check costs about a tenth of a JPEG decode).
    """
    limit = Image.MAX_IMAGE_PIXELS
    if limit is None:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
        size = f"{width}x{height} = {width * height:,} pixels"
        too_large = width * height > limit
    except Image.DecompressionBombError:  # more than twice the limit: Pillow refuses to open it at all
        size, too_large = f"more than {2 * limit:,} pixels", True
    except (OSError, ValueError, SyntaxError):
        return  # not a format PIL reads (or not an image): the decoder says why
    if too_large:
        raise Image.DecompressionBombError(
            f"the image is too large to decode safely ({size}; the limit is {limit:,}, Pillow's "
            "MAX_IMAGE_PIXELS); downscale it first"
        )


def _is_path(item: Any) -> bool:
    return isinstance(item, (str, Path))


class PredictDataset(Dataset):
    """Items (file paths and/or in-memory images, or rows with a ``path``) -> ``(uint8 (3, S, S) or None,
    position, why it is None)``.

    An unreadable file is not an exception but a sample without an image and with the reason, so one
    bad file never stops a stream; the caller decides (``predict`` lists it, ``evaluate`` refuses
    unless the run skips bad images). ``cache_source`` (:class:`~stylecls.data.CacheSource`) lets a prepared cache
    of exactly this pixel pipeline serve the files it holds.
    """

    def __init__(
        self, items: Sequence[Any] | pd.DataFrame, pixels: Pixels, cache_source: CacheSource | None = None
    ) -> None:
        self.items = items["path"].astype(str).tolist() if isinstance(items, pd.DataFrame) else list(items)
        self.pixels = pixels
        self.transform = image_transform(pixels)  # in-memory images
        self.crop = eval_transform(pixels)  # files: decoded and pre-resized by the one shared function
        self._cached: Any = None
        self._cache_row: dict[int, int] = {}
        if cache_source is not None:
            from stylecls.data import ImageDataset

            files = [i for i, item in enumerate(self.items) if _is_path(item)]
            frame = pd.DataFrame({"path": [str(self.items[i]) for i in files], "label": 0})
            cached = ImageDataset(frame, pixels.img_size, train=False, skip_bad=True, pixels=pixels,
                                  cache_source=cache_source)
            if cached.cache_hits:
                self._cached, self._cache_row = cached, {i: row for row, i in enumerate(files)}

    def __len__(self) -> int:
        return len(self.items)

    @property
    def cache_hits(self) -> int:
        """How many files a prepared cache serves (the others are decoded on the fly, to the same pixels)."""
        return 0 if self._cached is None else int(self._cached.cache_hits)

    def _decode(self, i: int, path: str) -> torch.Tensor:
        if self._cached is not None:
            image = self._cached.load(self._cache_row[i])  # the cache's pixels, or None for an unreadable file
            if image is not None:
                return image
        check_pixel_count(path)
        return decode_pixels(path, self.pixels)  # raises with the reason

    def __getitem__(self, i: int) -> Sample:
        item = self.items[i]
        if _is_path(item):
            try:
                image = self._decode(i, str(item))
            except DECODE_ERRORS as e:
                return None, i, reason(e)
            return self.crop(image).as_subclass(torch.Tensor), i, ""
        return self.transform(item).as_subclass(torch.Tensor), i, ""


class PredictBatch(NamedTuple):
    images: torch.Tensor  # uint8 (N, 3, S, S), the readable items of the batch
    positions: torch.Tensor  # int64 (N,), their positions in the input
    failed: list[tuple[int, str]]  # (position, why) of the unreadable items


def collate(samples: list[Sample]) -> PredictBatch:
    """Stack the readable samples; keep the position and reason of the others."""
    kept = [(image, i) for image, i, _ in samples if image is not None]
    failed = [(i, why) for image, i, why in samples if image is None]
    images = torch.stack([image for image, _ in kept]) if kept else torch.empty(0, 3, 0, 0, dtype=torch.uint8)
    return PredictBatch(images, torch.tensor([i for _, i in kept], dtype=torch.int64), failed)


def predict_loader(
    items: Sequence[Any] | pd.DataFrame,
    pixels: Pixels,
    batch_size: int = 64,
    workers: int = 0,
    cache_source: CacheSource | None = None,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader of :class:`PredictBatch` over ``items`` in input order (see :class:`PredictDataset`).

    ``items``: file paths and/or in-memory images, or a frame of rows (its ``path`` column); a batch's
    ``positions`` index into them.
    """
    dataset = PredictDataset(items, pixels, cache_source)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=collate,
                      pin_memory=pin_memory)


@torch.no_grad()
def probabilities(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device | str | None = None,
    tta: str | None = None,
    on_batch: Callable[[torch.Tensor], None] | None = None,
) -> Iterator[tuple[PredictBatch, torch.Tensor]]:
    """Each batch of ``loader`` and the model's softmax probabilities of its readable images (float32, CPU).

    ``tta="flip"`` averages each image with its mirror. ``on_batch`` sees each batch's positions before
    the forward pass (inspect's forward hooks attribute gates to rows with it). Non-finite outputs
    raise :class:`NonFiniteOutputs`: a diverged model is not a set of unreadable images.
    """
    from stylecls.data import normalize

    if tta is not None and tta not in TTA:
        raise StyleclsError(f"unknown --tta {tta!r}; choose one of: {', '.join(TTA)}")
    model.eval()
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    for batch in loader:
        if len(batch.positions) == 0:
            yield batch, torch.empty(0, 0)
            continue
        if on_batch is not None:
            on_batch(batch.positions)
        x = normalize(batch.images.to(dev, non_blocking=True))
        logits = model(x).float()
        if tta == "flip":
            logits = torch.stack([logits, model(x.flip(-1)).float()])
        if not bool(torch.isfinite(logits).all()):
            raise NonFiniteOutputs("the model's outputs are not finite (NaN or inf): the checkpoint is unusable "
                                   "(did its training diverge? retrain it, e.g. with a lower --lr)")
        p = torch.softmax(logits, dim=-1)
        yield batch, (p.mean(0) if tta == "flip" else p).cpu()


def predict(
    model: nn.Module,
    frame: pd.DataFrame,
    img_size: int,
    device: torch.device | str = "cpu",
    batch_size: int = 128,
    workers: int = 0,
    on_batch: Callable[[torch.Tensor], None] | None = None,
    progress: Callable[[int], None] | None = None,
    skip_bad: bool = False,
    pixels: Pixels | None = None,
    cache_source: CacheSource | None = None,
) -> np.ndarray:
    """Softmax probabilities (N, K) for the images of ``frame`` (a ``path`` column), in its row order.

    ``pixels`` is the run's pixel pipeline (default: today's at ``img_size``). With ``skip_bad`` an
    unreadable or missing image leaves its row NaN (the caller counts and drops it); without, the
    first one stops with its path. ``progress(n)`` follows each batch with its number of rows.
    """
    pixels = pixels if pixels is not None else Pixels(img_size)
    device = torch.device(device)
    paths = frame["path"].astype(str).tolist()
    loader = predict_loader(paths, pixels, batch_size, workers, cache_source, pin_memory=device.type == "cuda")
    probs: np.ndarray | None = None
    for batch, p in probabilities(model, loader, device, on_batch=on_batch):
        if batch.failed and not skip_bad:
            i, why = batch.failed[0]
            raise StyleclsError(
                f"cannot decode {paths[i]}: {why}. Replace or delete the file, or train with --skip-bad "
                "to drop undecodable images (they are counted in the log)"
            )
        if progress is not None:
            progress(len(batch.positions) + len(batch.failed))
        if len(p):
            if probs is None:
                probs = np.full((len(paths), p.shape[1]), np.nan, dtype=np.float32)
            probs[batch.positions.numpy()] = p.numpy()
    if probs is None:
        raise StyleclsError(f"none of the {len(paths):,} images could be read")
    return probs


def predictions_frame(rows: pd.DataFrame, probs: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """One row per image: where it came from, its true and predicted class, the top probability."""
    pred = probs.argmax(axis=1)
    labels = rows["label"].to_numpy()
    return pd.DataFrame(
        {
            "path": rows["path"].to_numpy(),
            "domain": rows["domain"].to_numpy(),
            "part": rows["part"].to_numpy(),
            "label": labels,
            "true_class": [classes[i] for i in labels],
            "pred": pred,
            "pred_class": [classes[i] for i in pred],
            "confidence": probs.max(axis=1),
            "prob_true": probs[np.arange(len(labels)), labels],
            "correct": pred == labels,
        }
    )
