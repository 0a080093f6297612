"""Evaluation metrics, equal to scikit-learn's (:mod:`mlx.numerics.metrics`).

The public home of these names; the code lives in the numerics package.
"""

from __future__ import annotations

from mlx.numerics.metrics import (
    AVERAGES,
    DEFAULT_METRICS,
    METRICS,
    TASKS,
    MetricInfo,
    accuracy,
    available_metrics,
    compute_metrics,
    confusion_matrix,
    f1_score,
    log_loss,
    mae,
    mse,
    precision,
    r2,
    recall,
    rmse,
    roc_auc,
    validate_metric_names,
)

__all__ = [
    "AVERAGES",
    "DEFAULT_METRICS",
    "METRICS",
    "TASKS",
    "MetricInfo",
    "accuracy",
    "available_metrics",
    "compute_metrics",
    "confusion_matrix",
    "f1_score",
    "log_loss",
    "mae",
    "mse",
    "precision",
    "r2",
    "recall",
    "rmse",
    "roc_auc",
    "validate_metric_names",
]
