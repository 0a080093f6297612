"""Optimizers as small pure update rules (:mod:`mlx.numerics.optim`).

The public home of these names; the code lives in the numerics package.
"""

from __future__ import annotations

from mlx.numerics.optim import (
    OPTIMIZERS,
    AdamState,
    Optimizer,
    RMSpropState,
    SGDState,
    adam,
    adamw,
    get_optimizer,
    resolve_optimizer_config,
    rmsprop,
    sgd,
    state_from_tensors,
    state_to_tensors,
)

__all__ = [
    "OPTIMIZERS",
    "AdamState",
    "Optimizer",
    "RMSpropState",
    "SGDState",
    "adam",
    "adamw",
    "get_optimizer",
    "resolve_optimizer_config",
    "rmsprop",
    "sgd",
    "state_from_tensors",
    "state_to_tensors",
]
