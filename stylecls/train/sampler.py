"""Domain-balanced batches (``--sampler domain-balanced``): every batch holds equal numbers of images of
each training domain, as DomainBed's per-domain loaders and Dassl's ``RandomDomainSampler``.

It matters for SRM and SE: their gates (SRM's gate BatchNorm in particular) pool style statistics over
the batch, and a random batch of an unbalanced lodo split is mostly its largest domain.

The sampler yields ``steps x batch_size`` indices whose consecutive runs of ``batch_size`` are the
batches (the DataLoader chunks them in order; ``drop_last`` keeps the chunks aligned), so an epoch has
the same number of steps as with the random sampler. Each domain is drawn from a seeded permutation of
its images, restarted with a new permutation when used up (small domains repeat within an epoch, large
ones are partly seen). When ``batch_size`` is not a multiple of the number of domains, every domain gets
``batch_size // D`` images and the ``batch_size % D`` left over go to domains drawn at random for that
batch (counts differ by at most one). Everything depends only on (seed, epoch, rank), so a resumed run
draws exactly the batches of the uninterrupted one. Under torchrun each rank takes its own share of each
domain's permutation (disjoint within a pass).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from stylecls.errors import StyleclsError

__all__ = ["SAMPLERS", "DomainBalancedSampler"]

SAMPLERS = ("random", "domain-balanced")


class DomainBalancedSampler(Sampler[int]):
    """Indices of a training part in domain-balanced batches; ``set_epoch`` picks the epoch's draw."""

    def __init__(self, domains: Sequence[str], batch_size: int, steps: int, seed: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        labels = np.asarray([str(d) for d in domains])
        self.domains = sorted(set(labels.tolist()))
        if len(self.domains) < 2:
            raise StyleclsError(
                f"--sampler domain-balanced needs at least two training domains; this training part has "
                f"{len(self.domains)} ({', '.join(self.domains) or 'none'}): use the default --sampler random"
            )
        self.members = [np.flatnonzero(labels == d) for d in self.domains]
        self.batch_size, self.steps, self.seed = int(batch_size), int(steps), int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.steps * self.batch_size

    def per_batch(self) -> str:
        """How a batch is made, in words (for the start-of-run lines)."""
        k, extra = divmod(self.batch_size, len(self.domains))
        rest = f", the {extra} left over from domains drawn at random" if extra else ""
        return f"{len(self.domains)} domains x {k} images per batch{rest}"

    def _rng(self, *keys: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, *keys])

    def _stream(self, d: int, count: int) -> np.ndarray:
        """The first ``count`` draws of domain ``d`` for this rank: successive seeded permutations of it,
        shared by the ranks, each rank taking every ``world_size``-th draw."""
        members, need = self.members[d], count * self.world_size
        passes = [self._rng(1, d, p).permutation(members) for p in range(max(1, -(-need // len(members))))]
        return np.concatenate(passes)[self.rank : need : self.world_size]

    def batches(self) -> np.ndarray:
        """``[steps, batch_size]`` indices: this epoch's batches on this rank."""
        n_domains = len(self.domains)
        k, extra = divmod(self.batch_size, n_domains)
        counts = np.full((self.steps, n_domains), k, dtype=np.int64)
        rng = self._rng(2, self.rank)
        for step in range(self.steps if extra else 0):
            counts[step, rng.choice(n_domains, size=extra, replace=False)] += 1
        streams = [self._stream(d, int(counts[:, d].sum())) for d in range(n_domains)]
        starts = np.vstack([np.zeros((1, n_domains), dtype=np.int64), np.cumsum(counts, axis=0)])
        rows = [np.concatenate([streams[d][starts[s, d] : starts[s + 1, d]] for d in range(n_domains)])
                for s in range(self.steps)]
        return np.stack(rows) if rows else np.zeros((0, self.batch_size), dtype=np.int64)

    def __iter__(self) -> Iterator[int]:
        return iter(self.batches().reshape(-1).tolist())
