"""Experiment configuration: load, validate and resolve JSON/YAML files.

>>> from mlx.config import load_config
>>> config = load_config("examples/quickstart.yaml", ["training.epochs=3"])
>>> config.model.params["layer_sizes"]
(20, 64, 3)

Everything is checked in one pass and every problem is reported at once, with its
``file:line:column`` (:class:`ConfigIssue`). Errors raise :class:`ConfigError`;
warnings are issued as :class:`~mlx.errors.ConfigWarning` and kept on
``config.warnings``.
"""

from __future__ import annotations

from mlx.config.experiment import (
    DatasetConfig,
    ExperimentConfig,
    ModelConfig,
    OutputConfig,
    TrainingConfig,
)
from mlx.config.issues import ConfigIssue
from mlx.config.loader import Override, default_config, load_config, parse_config
from mlx.config.names import KNOWN_DATASETS, KNOWN_MODELS
from mlx.errors import ConfigError, ConfigWarning

__all__ = [
    "KNOWN_DATASETS",
    "KNOWN_MODELS",
    "ConfigError",
    "ConfigIssue",
    "ConfigWarning",
    "DatasetConfig",
    "ExperimentConfig",
    "ModelConfig",
    "OutputConfig",
    "Override",
    "TrainingConfig",
    "default_config",
    "load_config",
    "parse_config",
]
