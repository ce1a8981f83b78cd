"""Images from a catalog to uint8 batches: the pixel pipeline, the prepared cache, determinism, bad files."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from stylecls.data import cache
from stylecls.data.decode import DECODE_ERRORS, decode_pixels, decode_pixels_or_error
from stylecls.data.pixels import Pixels
from stylecls.data.transforms import eval_transform, train_transform
from stylecls.errors import StyleclsError


def _sample_seed(seed: int, epoch: int, index: int) -> int:
    return ((seed * 1_000_003 + epoch) * 1_000_003 + index) % (2**63)


class ImageDataset(Dataset):
    """Rows of a catalog as ``(uint8 [3, S, S], label, row position)``.

    Every image is ``decode_pixels(path, pixels)`` (decode + pre-resize, see :mod:`stylecls.data.pixels`)
    followed by the train or eval transform. A prepared cache of exactly this pipeline (of the copy named
    by ``cache_source``, :class:`~stylecls.data.cache.CacheSource`) serves the
    files it holds unchanged (same size and mtime); the others are decoded on the fly by the same
    function, so the source never changes a tensor. ``cache_key`` names the cache that served it
    (None: on the fly), ``cache_note`` says once why a prepared cache was not (fully) used.
    Augmentation randomness comes from (seed, epoch, row) -- set by :func:`make_loader` -- so batches
    do not depend on the number of workers or the source, and a resumed run sees the same images.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        img_size: int,
        train: bool,
        skip_bad: bool = False,
        use_cache: bool = True,
        min_crop: float = 0.08,
        pixels: Pixels | None = None,
        cache_source: cache.CacheSource | None = None,
    ) -> None:
        self.pixels = pixels if pixels is not None else Pixels(img_size)
        if self.pixels.img_size != int(img_size):
            raise ValueError(f"img_size {img_size} differs from the pixel pipeline's {self.pixels.img_size}")
        self.paths: list[str] = frame["path"].astype(str).tolist()
        self.labels = frame["label"].to_numpy(dtype=np.int64)
        self.img_size = int(img_size)
        self.train = train
        self.skip_bad = skip_bad
        self.transform = train_transform(img_size, min_crop) if train else eval_transform(self.pixels)
        self.seed, self.epoch = 0, 0
        # which prepared cache may serve these rows: the dataset and the folder they come from
        found = cache.lookup(cache_source, self.pixels, self.paths) if use_cache else cache.CacheLookup()
        self.cache_key: str | None = found.key
        self.cache_note: str | None = found.note
        self._cache = found
        self._buffer: np.ndarray | None = None

    @property
    def cache_hits(self) -> int:
        """How many rows are served from the prepared cache."""
        return self._cache.hits

    def describe(self) -> str:
        """The start-of-run line naming the pixels and their source (see :meth:`Pixels.describe`)."""
        return self.pixels.describe(self.cache_key)

    def set_epoch(self, epoch: int, seed: int = 0) -> None:
        self.seed, self.epoch = int(seed), int(epoch)

    def __len__(self) -> int:
        return len(self.paths)

    def __getstate__(self) -> dict[str, Any]:  # workers open their own memory map
        return {**self.__dict__, "_buffer": None}

    def load(self, i: int) -> torch.Tensor | None:
        """The pre-resized uint8 image of row ``i`` (None for a bad file with ``skip_bad``)."""
        offsets, shapes, file = self._cache.offsets, self._cache.shapes, self._cache.file
        if offsets is not None and shapes is not None and file is not None and offsets[i] >= 0:
            if self._buffer is None:
                self._buffer = np.memmap(file, dtype=np.uint8, mode="r")
            height, width = (int(v) for v in shapes[i])
            start = int(offsets[i])
            pixels = np.array(self._buffer[start : start + height * width * 3]).reshape(height, width, 3)
            return torch.from_numpy(pixels).permute(2, 0, 1)  # the layout decode_pixels returns
        if self.skip_bad:
            try:
                return decode_pixels(self.paths[i], self.pixels)
            except DECODE_ERRORS:
                return None
        return decode_pixels_or_error(self.paths[i], self.pixels)

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


