"""``--sampler domain-balanced``: equal images per training domain in every batch, seeded, resumable."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import stylecls.data
from stylecls.errors import StyleclsError
from stylecls.runfolder import RunFolder
from stylecls.spec import RunSpec, RuntimeOptions
from stylecls.train import loop as train_loop
from stylecls.train import resume, train
from stylecls.train.sampler import DomainBalancedSampler

DOMAINS = ["a"] * 10 + ["b"] * 50 + ["c"] * 3 + ["d"] * 17


def domain_counts(sampler: DomainBalancedSampler, labels: list[str] = DOMAINS) -> list[Counter]:
    return [Counter(labels[i] for i in batch) for batch in sampler.batches()]


def test_every_batch_holds_equal_numbers_of_each_domain() -> None:
    sampler = DomainBalancedSampler(DOMAINS, batch_size=8, steps=9, seed=3)
    assert len(sampler) == 72 and len(list(sampler)) == 72
    assert all(c == {"a": 2, "b": 2, "c": 2, "d": 2} for c in domain_counts(sampler))
    assert sampler.per_batch() == "4 domains x 2 images per batch"
    # a small domain (c, 3 images) is drawn through successive permutations: each pass uses every image once
    draws = [i for batch in sampler.batches() for i in batch if DOMAINS[i] == "c"]
    assert Counter(draws[:3]) == Counter(draws[3:6]) == Counter([60, 61, 62])


def test_a_remainder_goes_to_domains_drawn_at_random() -> None:
    sampler = DomainBalancedSampler(DOMAINS, batch_size=10, steps=40, seed=0)
    counts = domain_counts(sampler)
    assert all(sum(c.values()) == 10 and sorted(c.values()) == [2, 2, 3, 3] for c in counts)
    assert {d for c in counts for d, n in c.items() if n == 3} == {"a", "b", "c", "d"}  # not always the same ones
    assert "the 2 left over from domains drawn at random" in sampler.per_batch()
    fewer = DomainBalancedSampler(DOMAINS, batch_size=3, steps=5, seed=0)  # fewer images than domains
    assert all(sorted(c.values()) == [1, 1, 1] for c in domain_counts(fewer))


def test_the_draw_depends_only_on_seed_and_epoch() -> None:
    a, b = DomainBalancedSampler(DOMAINS, 8, 5, seed=1), DomainBalancedSampler(DOMAINS, 8, 5, seed=1)
    b.set_epoch(4)
    a.set_epoch(2)
    a.batches()
    a.set_epoch(4)  # a sampler at epoch 4 draws the same whatever epochs it went through before
    assert np.array_equal(a.batches(), b.batches())
    b.set_epoch(5)
    assert not np.array_equal(a.batches(), b.batches())
    assert not np.array_equal(a.batches(), DomainBalancedSampler(DOMAINS, 8, 5, seed=2).batches())


def test_ranks_share_each_domain_without_overlap_within_a_pass() -> None:
    ranks = [DomainBalancedSampler(DOMAINS, 4, 5, seed=0, rank=r, world_size=2).batches() for r in (0, 1)]
    b_draws = [[i for i in batches.ravel() if DOMAINS[i] == "b"] for batches in ranks]
    assert len(b_draws[0]) == len(b_draws[1]) == 5 and not set(b_draws[0]) & set(b_draws[1])


def test_one_training_domain_is_refused() -> None:
    with pytest.raises(StyleclsError, match="needs at least two training domains; this training part has 1 \\(a\\)"):
        DomainBalancedSampler(["a"] * 5, 4, 1)
    with pytest.raises(StyleclsError, match="unknown sampler 'balanced'"):
        RunSpec(sampler="balanced").resolved()


# --- in training ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(out: Path, name: str) -> tuple[RunSpec, RuntimeOptions]:
    spec = RunSpec(img_size=16, batch_size=32, limit_train=96, limit_val=48, epochs=3, warmup_epochs=1,
                   block="srm", sampler="domain-balanced")
    return spec, RuntimeOptions(out=str(out), name=name, workers=0, progress=False)


@pytest.mark.slow
def test_training_batches_are_balanced_and_resume_is_exact(demo_env: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []  # the paths of every training batch
    make_loader = stylecls.data.make_loader

    def recording(dataset: Any, loader: Any) -> Iterator[Any]:
        for batch in loader:
            seen.append([dataset.paths[i] for i in batch.indices.tolist()])
            yield batch

    def recording_loader(dataset: Any, *args: Any, **kwargs: Any) -> Any:
        loader = make_loader(dataset, *args, **kwargs)
        return recording(dataset, loader) if dataset.train else loader

    monkeypatch.setattr(stylecls.data, "make_loader", recording_loader)
    straight = train(*tiny(tmp_path, "straight"))
    rows = RunFolder(straight).rows()
    domain_of = dict(zip(rows["path"].astype(str), rows["domain"], strict=True))
    train_rows = rows[rows["part"] == "train"]
    assert train_rows["domain"].nunique() == 4 and train_rows["domain"].value_counts().nunique() > 1  # unbalanced
    assert len(seen) == 3 * 3  # 96 images // 32 = 3 steps in each of 3 epochs
    for batch in seen:
        assert sorted(Counter(domain_of[p] for p in batch).values()) == [8, 8, 8, 8]
    assert RunFolder(straight).spec().sampler == "domain-balanced"

    original = train_loop.train_epoch

    def interrupt_in_epoch_3(t: Any, epoch: int, *args: Any) -> Any:
        if epoch == 3:
            raise KeyboardInterrupt
        return original(t, epoch, *args)

    monkeypatch.setattr(train_loop, "train_epoch", interrupt_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train(*tiny(tmp_path, "stopped"))
    monkeypatch.setattr(train_loop, "train_epoch", original)
    stopped = resume(tmp_path / "stopped")
    columns = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"]
    a, b = RunFolder(straight).metrics(), RunFolder(stopped).metrics()
    pd.testing.assert_frame_equal(a[columns], b[columns])
    wa, wb = RunFolder(straight).load_checkpoint("last")["model"], RunFolder(stopped).load_checkpoint("last")["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert seen[-3:] == seen[6:9]  # the resumed epoch 3 drew the uninterrupted run's batches
