"""The dataset names and the memory limit, shared by the config schema and the
dataset loaders (which sit above the config layer and import these from here)."""

from __future__ import annotations

__all__ = ["KNOWN_DATASETS", "MEMORY_LIMIT_BYTES"]

KNOWN_DATASETS = (
    "mnist",
    "cifar10",
    "cifar100",
    "imagenet",
    "custom",
    "synthetic_regression",
    "synthetic_classification",
)

#: Datasets whose arrays would exceed this many bytes are refused (1 GiB).
MEMORY_LIMIT_BYTES = 1024**3
