"""Learning-rate schedules: pure functions from the optimizer step to a rate.

A schedule is any ``Callable[[int], float]``; the optimizers in :mod:`mlx.optim`
evaluate it at their step count (the number of updates already taken), so a resumed
optimizer state continues the schedule exactly. Steps count optimizer updates, not
epochs; :func:`get_schedule` converts the epoch-based config keys.

>>> from mlx.schedules import cosine, linear_warmup
>>> schedule = linear_warmup(cosine(0.1, total_steps=100), warmup_steps=10)
>>> schedule(0), schedule(9), round(schedule(100), 12)
(0.01, 0.1, 0.0)
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

from mlx.errors import ConfigError

__all__ = [
    "Schedule",
    "constant",
    "cosine",
    "get_schedule",
    "linear_warmup",
    "step_decay",
]

Schedule = Callable[[int], float]


def constant(learning_rate: float) -> Schedule:
    """The same rate at every step."""
    lr = float(learning_rate)

    def schedule(step: int) -> float:
        return lr

    return schedule


def step_decay(learning_rate: float, step_size: int, gamma: float = 0.1) -> Schedule:
    """``learning_rate * gamma ** (step // step_size)``, like torch's ``StepLR``."""
    lr, size, factor = float(learning_rate), int(step_size), float(gamma)
    if size < 1:
        raise ConfigError(f"step_decay needs step_size >= 1; got {step_size}.")

    def schedule(step: int) -> float:
        return lr * factor ** (step // size)

    return schedule


def cosine(learning_rate: float, total_steps: int, final_lr: float = 0.0) -> Schedule:
    """Cosine annealing from ``learning_rate`` at step 0 to ``final_lr`` at
    ``total_steps`` (and after), like torch's ``CosineAnnealingLR`` with
    ``eta_min=final_lr``."""
    lr, total, final = float(learning_rate), int(total_steps), float(final_lr)
    if total < 1:
        raise ConfigError(f"cosine needs total_steps >= 1; got {total_steps}.")

    def schedule(step: int) -> float:
        progress = min(step, total) / total
        return final + (lr - final) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return schedule


def linear_warmup(schedule: Schedule, warmup_steps: int) -> Schedule:
    """Ramp linearly up to ``schedule`` during the first ``warmup_steps`` steps.

    Step ``s < warmup_steps`` gets ``schedule(s) * (s + 1) / warmup_steps`` (never a
    zero rate); later steps get ``schedule(s)`` unchanged.
    """
    warmup = int(warmup_steps)
    if warmup < 0:
        raise ConfigError(f"linear_warmup needs warmup_steps >= 0; got {warmup_steps}.")

    def warmed(step: int) -> float:
        if step < warmup:
            return schedule(step) * (step + 1) / warmup
        return schedule(step)

    return warmed


def get_schedule(
    training_params: Mapping[str, Any],
    learning_rate: float,
    steps_per_epoch: int,
    total_epochs: int,
) -> Schedule:
    """Build the schedule that ``training.params`` asks for.

    Keys read: ``lr_schedule`` (``constant`` (default), ``step`` or ``cosine``),
    ``step_size`` (epochs between decays, default 1), ``gamma`` (decay factor,
    default 0.1), ``warmup_epochs`` (default 0). Epochs are turned into optimizer
    steps with ``steps_per_epoch``.
    """
    kind = training_params.get("lr_schedule", "constant")
    if kind is None:
        kind = "constant"
    per_epoch = max(int(steps_per_epoch), 1)
    if kind == "constant":
        schedule = constant(learning_rate)
    elif kind == "step":
        step_size = training_params.get("step_size", 1)
        if (
            not isinstance(step_size, int)
            or isinstance(step_size, bool)
            or step_size < 1
        ):
            raise ConfigError(
                f"training.params.step_size must be an integer >= 1; got {step_size!r}."
            )
        gamma = training_params.get("gamma", 0.1)
        schedule = step_decay(learning_rate, step_size * per_epoch, float(gamma))
    elif kind == "cosine":
        schedule = cosine(learning_rate, max(int(total_epochs), 1) * per_epoch)
    else:
        raise ConfigError(
            "training.params.lr_schedule must be one of 'constant', 'step', 'cosine'; "
            f"got {kind!r}."
        )
    warmup_epochs = training_params.get("warmup_epochs", 0) or 0
    if warmup_epochs:
        schedule = linear_warmup(schedule, int(warmup_epochs) * per_epoch)
    return schedule
