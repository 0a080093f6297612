"""Cheap facts about a configured dataset, known without loading it."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from mlx.config.experiment import DatasetConfig

__all__ = ["DatasetInfo", "describe"]

# (n_samples, n_features, n_classes) of the standard image sets, flattened.
_IMAGE_SETS = {
    "mnist": (70_000, 784, 10),
    "cifar10": (60_000, 3072, 10),
    "cifar100": (60_000, 3072, 100),
}
_FLOAT64 = 8


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Shape, task and memory estimate of a dataset; ``None`` where unknown."""

    name: str
    task: str | None
    n_samples: int | None
    n_features: int | None
    n_classes: int | None
    memory_bytes: int | None
    notes: tuple[str, ...] = ()


def describe(dataset: DatasetConfig) -> DatasetInfo:
    """Describe ``dataset`` from its configuration alone: no file is read."""
    params: Mapping[str, Any] = dataset.params
    if dataset.name in ("synthetic_regression", "synthetic_classification"):
        n_samples = int(params.get("n_samples", 1000))
        n_features = int(params.get("n_features", 10))
        regression = dataset.name == "synthetic_regression"
        return DatasetInfo(
            name=dataset.name,
            task="regression" if regression else "classification",
            n_samples=n_samples,
            n_features=n_features,
            n_classes=None if regression else int(params.get("n_classes", 2)),
            # X plus y, both 8 bytes per value
            memory_bytes=n_samples * (n_features + 1) * _FLOAT64,
        )
    if dataset.name in _IMAGE_SETS:
        n_samples, n_features, n_classes = _IMAGE_SETS[dataset.name]
        return DatasetInfo(
            name=dataset.name,
            task="classification",
            n_samples=n_samples,
            n_features=n_features,
            n_classes=n_classes,
            memory_bytes=n_samples * (n_features + 1) * _FLOAT64,
        )
    return DatasetInfo(
        name=dataset.name,
        task=params.get("task"),
        n_samples=None,
        n_features=None,
        n_classes=None,
        memory_bytes=None,
        notes=("shape is known once the files are read",),
    )
