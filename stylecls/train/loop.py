"""The epoch loop: one :class:`Trainer` holds a run's model, optimizer and datasets; ``fit`` runs epochs.

Batches arrive as uint8 and are normalised on the device. Every epoch ends with validation (and,
every ``eval_test_every`` epochs, the held-out part, recorded but never used for selection), a
``metrics.csv`` row and an atomic ``last.pt`` (``best.pt`` when validation accuracy improves). The
loader's order and augmentation depend only on (seed, epoch), so a resumed run retraces the
uninterrupted one exactly on the CPU. Under torchrun every decision that changes the collective
calls (skip a step, stop for a signal) is all-reduced, so no rank waits for one that left.
"""

from __future__ import annotations

import errno
import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

from stylecls.atomic import load_model_state, save_checkpoint
from stylecls.errors import StyleclsError
from stylecls.record import RUNNING
from stylecls.runfolder import RunFolder
from stylecls.spec import RunSpec
from stylecls.train.data import RunData
from stylecls.train.optim import build_optimizer, build_scheduler
from stylecls.train.reporting import epoch_progress, print_epoch
from stylecls.train.runtime import Dist, StopFlag, default_workers, rng_state, set_rng_state

LOG_EVERY = 10  # steps between host syncs (progress text, non-finite loss check)


class NonFiniteLoss(StyleclsError):
    """The loss became NaN or infinite; the run stops and keeps its last good checkpoint."""


class Trainer:
    """One run's model, optimizer, schedule and datasets; rank 0 owns the run folder."""

    def __init__(self, spec: RunSpec, runtime: Any, data: RunData, folder: RunFolder, ddp: Dist,
                 device: torch.device) -> None:
        from stylecls.data import ImageDataset, Pixels
        from stylecls.models import build_model_for_spec, count_parameters

        self.spec, self.data, self.folder, self.ddp, self.device = spec, data, folder, ddp, device
        cuda = device.type == "cuda"
        self.amp = runtime.amp if runtime.amp is not None else cuda
        self.amp_dtype = torch.bfloat16 if (not cuda or torch.cuda.is_bf16_supported()) else torch.float16
        self.channels_last = runtime.channels_last if runtime.channels_last is not None else cuda
        self.workers = runtime.workers if runtime.workers is not None else default_workers(device)
        if runtime.sync_bn and spec.bn == "frozen":  # SyncBatchNorm would replace the frozen layers with training ones
            raise StyleclsError("--sync-bn and --bn frozen do not go together: frozen BatchNorm has nothing to sync")
        if runtime.sync_bn and ddp.enabled and not cuda:
            raise StyleclsError("--sync-bn needs CUDA devices: SyncBatchNorm does not run on the CPU")
        if cuda:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        self.net = build_model_for_spec(spec, len(data.classes), pretrained=spec.pretrained)
        self.parameters = count_parameters(self.net)
        # a BatchNorm over (N, C) (SRM's) needs two images per step; convolution BatchNorms see H x W values
        self.min_batch = 2 if any(isinstance(m, nn.BatchNorm1d) for m in self.net.modules()) else 1
        if spec.batch_size < self.min_batch:  # type: ignore[operator]
            raise StyleclsError(
                f"--batch-size {spec.batch_size}: {spec.block}'s BatchNorm over channels needs at least "
                f"{self.min_batch} images per step"
            )
        if runtime.sync_bn and ddp.enabled:
            self.net = nn.SyncBatchNorm.convert_sync_batchnorm(self.net)
        self.net.to(device)
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)
        model: nn.Module = self.net
        if ddp.enabled:
            model = nn.parallel.DistributedDataParallel(self.net, device_ids=[device.index] if cuda else None)
        self.model: nn.Module = torch.compile(model) if runtime.compile else model  # type: ignore[assignment]

        size, skip = int(spec.img_size), spec.skip_bad  # type: ignore[arg-type]
        pixels, source = Pixels(size, str(spec.pre_resize)), data.cache_source
        self.batch_size = int(spec.batch_size or 1)
        self.train_set = ImageDataset(data.part("train"), size, train=True, skip_bad=skip,
                                      min_crop=float(spec.min_crop or 1), pixels=pixels, cache_source=source)
        self.val_set = ImageDataset(data.part("val"), size, train=False, skip_bad=skip, pixels=pixels,
                                    cache_source=source)
        self.test_set = ImageDataset(data.part("test"), size, train=False, skip_bad=skip, pixels=pixels,
                                     cache_source=source)
        if len(self.val_set) == 0:
            raise StyleclsError(f"protocol {data.info.get('protocol')} leaves no validation images; "
                                "model selection needs some")
        if spec.eval_test_every and len(self.test_set) == 0:
            raise StyleclsError("--eval-test-every needs a test part, and this protocol leaves none")
        per_rank = len(self.train_set) // ddp.world_size
        self.steps_per_epoch = per_rank // spec.batch_size  # type: ignore[operator]
        if self.steps_per_epoch == 0:
            raise StyleclsError(
                f"the training part has {per_rank} images per process, fewer than one batch of {spec.batch_size} "
                "(the last incomplete batch of an epoch is dropped); lower --batch-size"
            )
        self.train_sampler: Sampler | None = None
        if spec.sampler == "domain-balanced":
            from stylecls.train.sampler import DomainBalancedSampler

            self.train_sampler = DomainBalancedSampler(data.part("train")["domain"].tolist(), self.batch_size,
                                                       self.steps_per_epoch, spec.seed, ddp.rank, ddp.world_size)
        elif ddp.enabled:
            from torch.utils.data.distributed import DistributedSampler

            self.train_sampler = DistributedSampler(
                self.train_set, ddp.world_size, ddp.rank, shuffle=True, seed=spec.seed, drop_last=True
            )
        self.criterion = nn.CrossEntropyLoss(label_smoothing=float(spec.label_smoothing or 0.0))
        self.optimizer = build_optimizer(self.net, spec)
        self.scheduler = build_scheduler(self.optimizer, spec, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp and self.amp_dtype == torch.float16)
        self.epoch = 0  # completed epochs
        self.saved_epoch = 0  # the epoch last.pt holds (what a failed run's status reports)
        self.best_val_acc = -1.0
        self.best_epoch = 0

    # -- state -----------------------------------------------------------------------------------

    def runtime_record(self, runtime: Any, threads: int) -> dict[str, Any]:
        """The runtime as asked for and as resolved, for the run record."""
        return {
            "requested": runtime.to_dict(),
            "device": str(self.device),
            "amp": self.amp,
            "amp_dtype": str(self.amp_dtype).removeprefix("torch.") if self.amp else None,
            "channels_last": self.channels_last,
            "workers": self.workers,
            "threads": threads,
            "world_size": self.ddp.world_size,
            "parameters": self.parameters,
        }

    def state(self) -> dict[str, Any]:
        return {
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "epoch": self.epoch,
            "best_val_acc": self.best_val_acc,
            "best_epoch": self.best_epoch,
            "rng": rng_state(),
            "arch": self.spec.arch,
            "block": self.spec.block,
            "num_classes": len(self.data.classes),
            "block_options": dict(self.spec.block_options),
        }

    def load_state(self, state: dict[str, Any], path: Path) -> None:
        """Continue from a checkpoint of this run; one line names the file when it is another model's."""
        ours, theirs = f"{self.spec.arch} + {self.spec.block}", f"{state.get('arch')} + {state.get('block')}"
        saved = "" if theirs == ours or "None" in theirs else f"; it was saved by a {theirs} run"
        load_model_state(self.net, state.get("model"), path, f"this run's model ({ours}){saved}")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler") is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.best_val_acc = float(state["best_val_acc"])
        self.best_epoch = int(state.get("best_epoch", 0))
        self.saved_epoch = self.epoch
        set_rng_state(state["rng"])

    def save(self, which: str) -> None:
        if self.ddp.main:
            save_checkpoint(self.state(), self.folder.checkpoint_path(which))
        if which == "last":
            self.saved_epoch = self.epoch

    # -- helpers for the steps -------------------------------------------------------------------

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        from stylecls.data import normalize

        x = normalize(images.to(self.device, non_blocking=True))
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp else nullcontext()

    def reduce(self, *values: torch.Tensor | float, op: Any = None) -> list[float]:
        """Sum (or ``op``) over ranks, as Python floats."""
        t = torch.stack([torch.as_tensor(v, dtype=torch.float64).detach().to(self.device) for v in values])
        if self.ddp.enabled:
            dist.all_reduce(t, op=op or dist.ReduceOp.SUM)
        return t.tolist()


def train_epoch(t: Trainer, epoch: int, stop: StopFlag, show_progress: bool) -> dict[str, float]:
    """One pass over the training part; returns plain-CE loss, the smoothed objective, accuracy, speed."""
    from stylecls.data import make_loader

    spec = t.spec
    loader = make_loader(
        t.train_set, t.batch_size, shuffle=True, workers=t.workers, sampler=t.train_sampler,
        drop_last=True, pin_memory=t.device.type == "cuda", seed=spec.seed, epoch=epoch,
    )  # fmt: skip
    t.model.train()
    zero = torch.zeros((), device=t.device, dtype=torch.float64)
    loss_sum, objective_sum, correct, seen = zero.clone(), zero.clone(), zero.clone(), zero.clone()
    skipped = 0
    start = time.perf_counter()
    smoothing = float(spec.label_smoothing or 0.0) > 0
    with epoch_progress(epoch, int(spec.epochs), t.steps_per_epoch, show_progress) as advance:  # type: ignore[arg-type]
        for step, batch in enumerate(loader, 1):
            skipped += batch.skipped
            skip, stopping = float(len(batch.labels) < t.min_batch), float(stop.signum is not None)
            if t.ddp.enabled:  # every rank takes the same decision, or the all-reduce of gradients hangs
                skip, stopping = t.reduce(skip, stopping, op=dist.ReduceOp.MAX)
            if stopping:
                stop.signum = stop.signum or 15
                stop.check()
            if skip:  # too few readable images in this batch (``skip_bad``) for BatchNorm
                t.scheduler.step()
                continue
            x = t.inputs(batch.images)
            y = batch.labels.to(t.device, non_blocking=True)
            with t.autocast():
                logits = t.model(x)
                objective = t.criterion(logits, y)
            t.optimizer.zero_grad(set_to_none=True)
            t.scaler.scale(objective).backward()
            t.scaler.step(t.optimizer)
            t.scaler.update()
            t.scheduler.step()
            n = y.numel()
            plain = nn.functional.cross_entropy(logits.detach().float(), y) if smoothing else objective.detach()
            loss_sum += plain.double() * n
            objective_sum += objective.detach().double() * n
            correct += (logits.detach().argmax(1) == y).sum()
            seen += n
            if step % LOG_EVERY == 0 or step == t.steps_per_epoch:
                total_loss, total_correct, total_seen = t.reduce(loss_sum, correct, seen)
                if not math.isfinite(total_loss):
                    why = f"the training loss became {total_loss} by step {step}"
                    raise NonFiniteLoss(nonfinite_message(t, epoch, why))
                n_seen = max(total_seen, 1)
                text = (f"loss {total_loss / n_seen:.4f} acc {100 * total_correct / n_seen:5.1f}% "
                        f"{total_seen / (time.perf_counter() - start):,.0f} img/s")
                advance(step, text)
    seconds = time.perf_counter() - start
    total_loss, total_objective, total_correct, total_seen, total_skipped = t.reduce(
        loss_sum, objective_sum, correct, seen, float(skipped)
    )
    if total_seen == 0:
        raise StyleclsError(f"epoch {epoch}: every batch had fewer than {t.min_batch} readable images")
    if not math.isfinite(total_loss):
        raise NonFiniteLoss(nonfinite_message(t, epoch, f"the training loss became {total_loss}"))
    return {
        "train_loss": total_loss / total_seen,
        "train_objective": total_objective / total_seen,
        "train_acc": total_correct / total_seen,
        "img_per_s": total_seen / seconds,
        "skipped": int(total_skipped),
    }


@torch.inference_mode()
def evaluate_part(t: Trainer, dataset: Any, what: str, collect: list[torch.Tensor] | None = None) -> dict[str, float]:
    """Plain cross-entropy and accuracy on a part, each rank a disjoint shard (exact when reduced).

    ``collect`` receives this rank's (labels, predictions) batches (the end-of-run confusion matrix).
    """
    from stylecls.data import make_loader

    # a disjoint shard per rank; any iterable of indices serves as a sampler
    indices: Sampler = list(range(t.ddp.rank, len(dataset), t.ddp.world_size))  # type: ignore[assignment]
    loader = make_loader(dataset, int(t.spec.batch_size), shuffle=False, workers=t.workers,  # type: ignore[arg-type]
                         sampler=indices, pin_memory=t.device.type == "cuda")
    net = t.net  # not the DDP wrapper: shards may differ in length, and evaluation needs no sync
    if t.ddp.enabled:  # every rank evaluates with rank 0's BatchNorm statistics: the ones its checkpoint holds
        for buffer in net.buffers():
            dist.broadcast(buffer, src=0)
    net.eval()
    zero = torch.zeros((), device=t.device, dtype=torch.float64)
    loss_sum, correct, seen = zero.clone(), zero.clone(), zero.clone()
    skipped = 0
    for batch in loader:
        skipped += batch.skipped
        if len(batch.labels) == 0:
            continue
        y = batch.labels.to(t.device, non_blocking=True)
        with t.autocast():
            logits = net(t.inputs(batch.images)).float()
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").double()
        if collect is not None:
            collect.append(torch.stack([y, logits.argmax(1)]).cpu())
        correct += (logits.argmax(1) == y).sum()
        seen += y.numel()
    total_loss, total_correct, total_seen, total_skipped = t.reduce(loss_sum, correct, seen, float(skipped))
    if total_seen == 0:
        raise StyleclsError(f"no {what} image could be read (see --skip-bad)")
    return {f"{what}_loss": total_loss / total_seen, f"{what}_acc": total_correct / total_seen,
            "skipped": int(total_skipped)}


def log_confusion(t: Trainer, loggers: list[Any]) -> None:
    """The validation confusion matrix of the final weights, as a figure for the loggers (rank 0's shard
    is the whole part outside torchrun)."""
    if not loggers:
        return
    from stylecls.evaluate.metrics import confusion_table
    from stylecls.plotting import confusion_figure

    batches: list[torch.Tensor] = []
    evaluate_part(t, t.val_set, "val", collect=batches)
    pairs = torch.cat(batches, dim=1).numpy()
    figure = confusion_figure(confusion_table(pairs[0], pairs[1], t.data.classes), f"validation, epoch {t.epoch}")
    for logger in loggers:
        logger.log_figure("confusion/val", figure, t.epoch)


def nonfinite_message(t: Trainer, epoch: int, what: str) -> str:
    """One line: what diverged, where, which checkpoint is kept, and what to change."""
    kept = f"epoch {t.saved_epoch}" if t.saved_epoch else "the initial weights"
    return (
        f"training diverged in epoch {epoch}: {what}; stopped. The last good checkpoint is kept: "
        f"{t.folder.checkpoint_path('last')} ({kept}). "
        f"Lower --lr (now {t.spec.lr:g})" + (" or train without --amp" if t.amp else "") + " and start again"
    )


def check_finite(t: Trainer, epoch: int, val_loss: float) -> None:
    """Stop before an epoch's checkpoint when the weights or the validation loss are NaN or infinite.

    The training loss can stay finite while the last steps' updates overflow the weights (``--lr 1e9``);
    a checkpoint of such weights would evaluate to NaN outputs, so it is never written.
    """
    tensors = [p.detach() for p in t.net.parameters()] + [b for b in t.net.buffers() if b.is_floating_point()]
    if not bool(torch.stack([torch.isfinite(x).all() for x in tensors]).all()):
        raise NonFiniteLoss(nonfinite_message(t, epoch, "the model's weights became NaN or infinite"))
    if not math.isfinite(val_loss):
        raise NonFiniteLoss(nonfinite_message(t, epoch, f"the validation loss became {val_loss}"))


def write_epoch(t: Trainer, row: dict[str, Any], best: bool) -> None:
    """The epoch's row, then its checkpoints, then the status: the status names only a checkpoint that is
    safely in place, and a full disk is one line (the previous checkpoints are kept by the atomic writes)."""
    try:
        t.folder.append_metrics(row)  # before the checkpoints: resume trims extras
        if best:
            t.save("best")
        t.save("last")
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise StyleclsError(f"no space left on the device to write {e.filename or t.folder.path} after epoch "
                            f"{t.epoch}; last.pt keeps epoch {t.saved_epoch}") from None
    t.folder.set_status(RUNNING, epoch=t.epoch, best_epoch=t.best_epoch, best_val_acc=t.best_val_acc)


def fit(t: Trainer, stop: StopFlag, show_progress: bool, loggers: list[Any]) -> None:
    """Epochs from the one after ``t.epoch`` to the last; a row, checkpoints and a line after each."""
    spec = t.spec
    epochs = int(spec.epochs)  # type: ignore[arg-type]
    for epoch in range(t.epoch + 1, epochs + 1):
        start = time.perf_counter()
        train_metrics = train_epoch(t, epoch, stop, show_progress and t.ddp.main)
        val = evaluate_part(t, t.val_set, "val")
        check_finite(t, epoch, val["val_loss"])
        every = spec.eval_test_every
        test = evaluate_part(t, t.test_set, "test") if every and (epoch % every == 0 or epoch == epochs) else {}
        t.epoch = epoch
        best = val["val_acc"] > t.best_val_acc  # selection reads validation only, never the test part
        if best:
            t.best_val_acc, t.best_epoch = val["val_acc"], epoch
        row = {
            "epoch": epoch,
            **{k: train_metrics[k] for k in ("train_loss", "train_acc", "train_objective")},
            "val_loss": val["val_loss"],
            "val_acc": val["val_acc"],
            "test_loss": test.get("test_loss", ""),
            "test_acc": test.get("test_acc", ""),
            "lr": t.optimizer.param_groups[0]["lr"],
            "img_per_s": train_metrics["img_per_s"],
            "seconds": time.perf_counter() - start,
            "skipped": train_metrics["skipped"] + val["skipped"] + test.get("skipped", 0),
        }
        if t.ddp.main:
            write_epoch(t, row, best)
            print_epoch(row, epochs, best)
            for logger in loggers:
                logger.log_epoch(epoch, row)
                logger.log_model(epoch, t.net)
