"""The old name of :mod:`mlx.models.facts`."""

# transitional re-export: removed when the layout branches merge

from __future__ import annotations

from mlx.models.facts import (
    architecture,
    model_outputs,
    model_task,
    n_features,
    parameter_count,
    predictions,
)

__all__ = [
    "architecture",
    "model_outputs",
    "model_task",
    "n_features",
    "parameter_count",
    "predictions",
]
