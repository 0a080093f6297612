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
    image_shape,
    memory_limit,
)
from mlx.utils.lazy import lazy_attributes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mlx.datasets.loader import load
    from mlx.datasets.splits import Splits, apply_preprocessing, split_indices
    from mlx.datasets.synthetic import SyntheticClassification, SyntheticRegression

# Loading data needs NumPy; describing it does not. The loaders are imported on
# first use, so a dry run (which only describes) starts without NumPy.
__getattr__, __dir__ = lazy_attributes(
    globals(),
    {
        "load": "mlx.datasets.loader",
        "Splits": "mlx.datasets.splits",
        "apply_preprocessing": "mlx.datasets.splits",
        "split_indices": "mlx.datasets.splits",
        "SyntheticClassification": "mlx.datasets.synthetic",
        "SyntheticRegression": "mlx.datasets.synthetic",
    },
)

__all__ = [
    "KNOWN_DATASETS",
    "MEMORY_LIMIT_BYTES",
    "DatasetInfo",
    "Splits",
    "SyntheticClassification",
    "SyntheticRegression",
    "apply_preprocessing",
    "describe",
    "image_shape",
    "load",
    "memory_limit",
    "split_indices",
]
