"""Evaluating a run, now :mod:`mlx.experiment.evaluate`."""

from __future__ import annotations

# transitional re-export: removed when the layout branches merge
from mlx.experiment.evaluate import (
    SPLITS,
    EvaluationNotSaved,
    evaluate,
    model_outputs,
    split_predictions,
)

__all__ = [
    "SPLITS",
    "EvaluationNotSaved",
    "evaluate",
    "model_outputs",
    "split_predictions",
]
