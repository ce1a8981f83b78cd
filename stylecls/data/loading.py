"""Images from a catalogue to uint8 batches: decoding, the prepared cache, determinism, bad files."""

from __future__ import annotations

import re
import warnings
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2 import functional as F

from stylecls.data import cache
from stylecls.data.transforms import eval_transform, train_transform
from stylecls.errors import StyleclsError

# torchvision 0.29 announces that torchvision.io decoding will move to TorchCodec; until it does,
# these decoders are the fastest on uint8 tensors and the notice would repeat for every image.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                        category=DeprecationWarning)


def decode(path: str) -> torch.Tensor:
    """Decode any image to uint8 RGB (3, H, W): torchvision's decoders, PIL for other formats."""
    try:
        image = decode_image(path, mode=ImageReadMode.RGB, apply_exif_orientation=True)
    except RuntimeError as e:
        if "Unsupported image file" not in str(e):
            raise
        with Image.open(path) as im:
            image = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1).contiguous()
    if image.dtype != torch.uint8:  # 16-bit PNG
        image = F.to_dtype(image, torch.uint8, scale=True)
    return image


def _reason(e: BaseException) -> str:
    """A decoder's message without its C++ source location."""
    return re.sub(r"^[\w_]+, \S+\.cpp:\d+, ", "", str(e)).strip() or type(e).__name__


def decode_or_error(path: str) -> torch.Tensor:
    try:
        return decode(path)
    except (RuntimeError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise StyleclsError(
            f"cannot decode {path}: {_reason(e)}. Replace or delete the file, or train with --skip-bad "
            "to drop undecodable images (they are counted in the log)"
        ) from None


def _sample_seed(seed: int, epoch: int, index: int) -> int:
    return ((seed * 1_000_003 + epoch) * 1_000_003 + index) % (2**63)


class ImageDataset(Dataset):
    """Rows of a catalogue as ``(uint8 [3, S, S], label, row position)``.

    Reads the prepared cache for (dataset, ``img_size``) when one holds an up-to-date copy of a
    file (same size and mtime), else decodes the file. Augmentation randomness comes from
    (seed, epoch, row) -- set by :func:`make_loader` -- so batches do not depend on the number of
    workers and a resumed run sees the same images.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        img_size: int,
        train: bool,
        skip_bad: bool = False,
        use_cache: bool = True,
        min_crop: float = 0.08,
    ) -> None:
        self.paths: list[str] = frame["path"].astype(str).tolist()
        self.labels = frame["label"].to_numpy(dtype=np.int64)
        self.img_size = int(img_size)
        self.train = train
        self.skip_bad = skip_bad
        self.transform = train_transform(img_size, min_crop) if train else eval_transform(img_size)
        self.seed, self.epoch = 0, 0
        found = cache.lookup(frame.attrs.get("info"), img_size, self.paths) if use_cache else None
        self.cache_file, self.cache_rows = found if found is not None else (None, None)
        self._images: np.ndarray | None = None

    @property
    def cache_hits(self) -> int:
        """How many rows are served from the prepared cache."""
        return 0 if self.cache_rows is None else int((self.cache_rows >= 0).sum())

    def set_epoch(self, epoch: int, seed: int = 0) -> None:
        self.seed, self.epoch = int(seed), int(epoch)

    def __len__(self) -> int:
        return len(self.paths)

    def __getstate__(self) -> dict[str, Any]:  # workers open their own memory map
        return {**self.__dict__, "_images": None}

    def load(self, i: int) -> torch.Tensor | None:
        """The untransformed uint8 image of row ``i`` (None for a bad file with ``skip_bad``)."""
        if self.cache_rows is not None and self.cache_rows[i] >= 0:
            if self._images is None:
                self._images = np.load(self.cache_file, mmap_mode="r")
            # HWC in the cache: the CHW view is channels-last, which torch resizes ~2x faster in uint8
            return torch.from_numpy(np.array(self._images[self.cache_rows[i]])).permute(2, 0, 1)
        if self.skip_bad:
            try:
                return decode(self.paths[i])
            except (RuntimeError, OSError, ValueError, Image.DecompressionBombError):
                return None
        return decode_or_error(self.paths[i])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int] | None:
        image = self.load(i)
        if image is None:
            return None
        # v2 transforms draw from the default CPU generator: seed it per sample, then restore it
        # (cheaper than torch.manual_seed/fork_rng, which also visit every accelerator backend).
        generator = torch.default_generator
        state = generator.get_state()
        generator.manual_seed(_sample_seed(self.seed, self.epoch, i))
        try:
            image = self.transform(image)
        finally:
            generator.set_state(state)
        return image, int(self.labels[i]), i


class Batch(NamedTuple):
    images: torch.Tensor  # uint8 (N, 3, S, S)
    labels: torch.Tensor  # int64 (N,)
    indices: torch.Tensor  # int64 (N,) row positions in the dataset's frame
    skipped: int  # undecodable images dropped from this batch (``skip_bad``)


def collate(samples: list[tuple[torch.Tensor, int, int] | None]) -> Batch:
    """Stack samples, dropping (and counting) the ``None`` of skipped bad files."""
    kept = [s for s in samples if s is not None]
    skipped = len(samples) - len(kept)
    if not kept:
        empty = torch.empty(0, dtype=torch.int64)
        return Batch(torch.empty(0, 3, 0, 0, dtype=torch.uint8), empty, empty.clone(), skipped)
    images, labels, indices = default_collate(kept)  # in a worker it stacks straight into shared memory
    return Batch(images, labels, indices, skipped)


class _CleanErrors:
    """Re-raise a worker's StyleclsError with its message only (no worker traceback)."""

    def __init__(self, it: Any) -> None:
        self._it = it

    def __iter__(self) -> _CleanErrors:
        return self

    def __len__(self) -> int:
        return len(self._it)

    def __next__(self) -> Batch:
        try:
            return next(self._it)
        except StyleclsError as e:
            text = str(e)
            marker = "StyleclsError: "
            if "Original Traceback" in text and marker in text:
                text = text[text.rindex(marker) + len(marker) :].strip()
            raise StyleclsError(text) from None


class StyleLoader(DataLoader):
    """A DataLoader whose bad-file errors read as one line, as everything else in stylecls."""

    def __iter__(self) -> _CleanErrors:  # type: ignore[override]
        return _CleanErrors(super().__iter__())


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    workers: int,
    sampler: Sampler | None = None,
    drop_last: bool = False,
    pin_memory: bool = False,
    seed: int = 0,
    epoch: int = 0,
) -> DataLoader:
    """A deterministic loader: order and augmentation depend only on (seed, epoch).

    The shuffle order comes from a generator seeded with (seed, epoch); augmentation from
    (seed, epoch, row) inside :class:`ImageDataset`; a sampler with ``set_epoch`` (e.g.
    DistributedSampler) gets the epoch too. Workers are not persistent, so each epoch's loader
    starts from its own state.
    """
    generator = torch.Generator()
    generator.manual_seed(_sample_seed(seed, epoch, 0))
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch, seed)
    if sampler is not None and hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    return StyleLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        drop_last=drop_last,
        generator=generator,
        persistent_workers=False,
    )


