"""Datasets: synthetic generators and real file formats, split deterministically.

``load(dataset_config, seed)`` returns :class:`Splits` for every dataset the config
schema knows (mnist, cifar10, cifar100, imagenet, custom, synthetic_regression,
synthetic_classification); ``describe(dataset_config)`` says what it would load
without loading it.
"""

from __future__ import annotations

from mlx.datasets.info import (
    KNOWN_DATASETS,
    MEMORY_LIMIT_BYTES,
    DatasetInfo,
    describe,
)
from mlx.datasets.loader import load
from mlx.datasets.splits import Splits, apply_preprocessing, split_indices
from mlx.datasets.synthetic import SyntheticClassification, SyntheticRegression

__all__ = [
    "KNOWN_DATASETS",
    "MEMORY_LIMIT_BYTES",
    "DatasetInfo",
    "Splits",
    "SyntheticClassification",
    "SyntheticRegression",
    "apply_preprocessing",
    "describe",
    "load",
    "split_indices",
]
