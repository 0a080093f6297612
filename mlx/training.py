"""The training loop, now :mod:`mlx.experiment.loop`."""

from __future__ import annotations

# transitional re-export: removed when the layout branches merge
from mlx.experiment.loop import (
    ArrayBatches,
    TrainerState,
    TrainingStopped,
    batch_order,
    batch_source,
    train,
    validation_metrics,
)

__all__ = [
    "ArrayBatches",
    "TrainerState",
    "TrainingStopped",
    "batch_order",
    "batch_source",
    "train",
    "validation_metrics",
]
