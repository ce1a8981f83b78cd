"""Training curves, figures and SRM's style weights in TensorBoard (``RUN/tb/``).

``metrics.csv`` stays the source of truth; this is a live view of the same numbers. The training
loop owns one :class:`TensorBoardLogger` when ``--tensorboard`` (or ``STYLECLS_TENSORBOARD=1``) is on::

    logger = TensorBoardLogger(run_dir)
    logger.log_epoch(epoch, row)        # each metrics.csv row
    logger.log_model(epoch, model)      # SRM's style weights as histograms
    logger.log_figure("eval/confusion", fig, epoch)
    logger.close()

Scalar tags group a split's numbers under the metric: ``train_loss`` -> ``loss/train``,
``val_acc`` -> ``acc/val``; other keys (``lr``, ``img_per_s``) keep their name. Accuracies are in
percent, as the console prints them (metrics.csv keeps fractions).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from torch import nn

from stylecls.errors import StyleclsError

__all__ = ["ENV", "TB_DIR", "TensorBoardLogger", "scalar_tag", "scalar_value", "tensorboard_default"]

ENV = "STYLECLS_TENSORBOARD"
TB_DIR = "tb"
SPLITS = ("train", "val", "test")
NOT_SCALARS = frozenset({"epoch"})  # the step, not a value


def tensorboard_default() -> bool:
    """Whether ``STYLECLS_TENSORBOARD`` asks for TensorBoard logging (1 / true / yes)."""
    return os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on")


def require_tensorboard() -> None:
    """A clear message (exit 2) where the tensorboard package is missing; called before a run starts."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise StyleclsError(
            'TensorBoard logging needs the tensorboard package: pip install "stylecls[tensorboard]" (from a clone: '
            f'pip install -e ".[tensorboard]"), or turn it off (no --tensorboard, {ENV} unset)'
        ) from None


def scalar_tag(key: str) -> str:
    """``train_loss`` -> ``loss/train`` (curves of one metric side by side); other keys unchanged."""
    split, _, metric = key.partition("_")
    return f"{metric}/{split}" if split in SPLITS and metric else key


def scalar_value(key: str, value: float) -> float:
    """Accuracies (``*_acc``) in percent, like the console; everything else as it is."""
    return 100.0 * float(value) if key.endswith("_acc") else float(value)


def _style_weights(model: nn.Module) -> dict[str, Any]:
    """Per SRM layer, its effective (BatchNorm-folded) CFC weights, one tensor per style feature."""
    from stylecls.blocks import StyleRecalibration

    out: dict[str, Any] = {}
    for name, module in model.named_modules():
        if isinstance(module, StyleRecalibration) and module.integration == "cfc":
            weights = module.effective_weights().detach().float().cpu()
            features = ("mean", "std") if module.pooling == "mean+std" else (module.pooling,)
            for j, feature in enumerate(features):
                out[f"style_weights/{name}/{feature}"] = weights[:, j]
    return out


class TensorBoardLogger:
    """Writes a run's scalars, figures and SRM style-weight histograms under ``RUN/tb/``."""

    def __init__(self, run_dir: Path) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(run_dir) / TB_DIR
        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def describe(self) -> str:
        """Where the event files go and how to look at them (a sweep's folder shows every run)."""
        return f"events in {self.log_dir}/; view with: tensorboard --logdir {self.log_dir.parent.parent}"

    def log_epoch(self, epoch: int, row: dict[str, float]) -> None:
        """Every finite number of a metrics.csv row (losses, accuracies, lr, images/s, ...) at step ``epoch``."""
        for key, value in row.items():
            if key in NOT_SCALARS or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                self.writer.add_scalar(scalar_tag(key), scalar_value(key, value), epoch)
        self.writer.flush()

    def log_model(self, epoch: int, model: nn.Module) -> None:
        """SRM's style weights per layer as histograms; nothing for models without SRM (CFC) blocks."""
        model = getattr(model, "module", model)  # DDP / compiled wrappers
        model = getattr(model, "_orig_mod", model)
        weights = _style_weights(model)
        for tag, values in weights.items():
            self.writer.add_histogram(tag, values, epoch)
        if weights:
            self.writer.flush()

    def log_figure(self, tag: str, figure: Any, epoch: int) -> None:
        """A matplotlib figure (e.g. the confusion matrix at the end); the figure stays open for the caller."""
        self.writer.add_figure(tag, figure, epoch, close=False)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> TensorBoardLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
