"""Loss functions with their gradients (:mod:`mlx.numerics.losses`).

The public home of these names; the code lives in the numerics package.
"""

from __future__ import annotations

from mlx.numerics.losses import (
    Loss,
    binary_cross_entropy,
    mse,
    softmax_cross_entropy,
)

__all__ = [
    "Loss",
    "binary_cross_entropy",
    "mse",
    "softmax_cross_entropy",
]
