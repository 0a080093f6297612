"""Learning-rate schedules: pure functions from the optimizer step to a rate
(:mod:`mlx.numerics.schedules`).

The public home of these names; the code lives in the numerics package.
"""

from __future__ import annotations

from mlx.numerics.schedules import (
    Schedule,
    constant,
    cosine,
    get_schedule,
    linear_warmup,
    step_decay,
)

__all__ = [
    "Schedule",
    "constant",
    "cosine",
    "get_schedule",
    "linear_warmup",
    "step_decay",
]
