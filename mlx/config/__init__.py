"""Experiment configuration: load, validate and resolve JSON/YAML files."""

from __future__ import annotations

from mlx.config.experiment import (
    DatasetConfig,
    ExperimentConfig,
    ModelConfig,
    OutputConfig,
    TrainingConfig,
)
from mlx.errors import ConfigError

__all__ = [
    "ConfigError",
    "DatasetConfig",
    "ExperimentConfig",
    "ModelConfig",
    "OutputConfig",
    "TrainingConfig",
]
