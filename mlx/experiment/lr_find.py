"""The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training
Neural Networks"), as ``mlx lr-find`` runs it.

The config's model is built on its training split exactly as a run builds it, then
trained for ``steps`` steps on the batches a run would draw (epoch 1's order, then
epoch 2's, ...), the learning rate growing geometrically from ``min_lr`` to
``max_lr``: step ``i`` takes ``min_lr * (max_lr / min_lr) ** (i / (steps - 1))``.
Each step's batch loss (computed before its update, the loss ``train_step``
reports) is smoothed by an exponential moving average with bias correction
(``beta = 0.98``, as fastai); the test stops early once the smoothed loss exceeds
four times its lowest value, or at the first loss that is not finite (not
recorded). The suggested learning rate is the one at the steepest descent of the
smoothed loss: the step where ``numpy.gradient`` of the smoothed losses is lowest
(with geometric steps, the slope against ``log(lr)``), among the steps up to the
lowest smoothed loss.

Nothing is written: no run directory, no checkpoint; the trained model is thrown
away. The same config gives the same learning rates and losses, to the bit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any, Generator

import numpy as np

from mlx.config import ExperimentConfig
from mlx.errors import ConfigError, RunError
from mlx.experiment.build import build, decide_backend, install_optimizer
from mlx.experiment.checks import ensure_data, ensure_device
from mlx.experiment.loop import batch_source, training_augmentation
from mlx.models.base import BaseModel

__all__ = [
    "DEFAULT_MAX_LR",
    "DEFAULT_MIN_LR",
    "DEFAULT_STEPS",
    "DIVERGENCE_FACTOR",
    "SMOOTHING",
    "RangeTest",
    "check_range",
    "find_lr",
    "learning_rates",
    "smoothed_losses",
    "steepest_descent",
]

#: the defaults of fastai's ``lr_find``: 100 steps from 1e-7 to 10
DEFAULT_STEPS = 100
DEFAULT_MIN_LR = 1e-7
DEFAULT_MAX_LR = 10.0
#: the weight of the past in the moving average of the loss
SMOOTHING = 0.98
#: the test stops once the smoothed loss exceeds this many times its lowest value
DIVERGENCE_FACTOR = 4.0


@dataclasses.dataclass(frozen=True)
class RangeTest:
    """What a range test found: the learning rate of each step taken, its batch
    loss and smoothed loss, the suggestion, and why it ended early (None when it
    took every step)."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggested_lr: float
    steps: int
    stopped: str | None

    def record(self) -> dict[str, Any]:
        """The JSON document of ``mlx lr-find --json``."""
        return {
            "suggested_lr": self.suggested_lr,
            "lrs": list(self.lrs),
            "losses": list(self.losses),
        }


def check_range(steps: int, min_lr: float, max_lr: float) -> str | None:
    """Why ``steps``, ``min_lr`` and ``max_lr`` make no range test (None when they
    do): at least 2 steps, 0 < min_lr < max_lr, both finite."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        return f"--steps must be an integer >= 2, got {steps!r}"
    for flag, value in (("--min-lr", min_lr), ("--max-lr", max_lr)):
        if not (math.isfinite(value) and value > 0):
            return f"{flag} must be a finite number > 0, got {value!r}"
    if min_lr >= max_lr:
        return f"--min-lr ({min_lr!r}) must be below --max-lr ({max_lr!r})"
    return None


def learning_rates(min_lr: float, max_lr: float, steps: int) -> list[float]:
    """``steps`` learning rates, geometric from ``min_lr`` to ``max_lr``
    (both included)."""
    return [float(lr) for lr in np.geomspace(min_lr, max_lr, steps)]


def smoothed_losses(losses: list[float], beta: float = SMOOTHING) -> list[float]:
    """The exponential moving average of ``losses`` with bias correction:
    ``avg_i = beta * avg_{i-1} + (1 - beta) * loss_i``, divided by
    ``1 - beta ** (i + 1)``."""
    average, smoothed = 0.0, []
    for i, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        smoothed.append(average / (1 - beta ** (i + 1)))
    return smoothed


def steepest_descent(smoothed: list[float]) -> int:
    """The step at which the smoothed loss falls fastest on its way down: the
    argmin of its ``numpy.gradient`` over the steps up to its lowest value (the
    first, on a tie). Past its lowest value the loss is diverging, and a drop there
    is noise, however steep."""
    values = np.asarray(smoothed, dtype=np.float64)
    lowest = int(np.argmin(values))
    return int(np.argmin(np.gradient(values)[: lowest + 1]))


def find_lr(
    config: ExperimentConfig,
    *,
    steps: int = DEFAULT_STEPS,
    min_lr: float = DEFAULT_MIN_LR,
    max_lr: float = DEFAULT_MAX_LR,
) -> RangeTest:
    """Run the range test on ``config``'s model and training split.

    Raises
    ------
    ValueError
        ``steps``, ``min_lr`` or ``max_lr`` make no range test.
    ConfigError
        The model fits in closed form: it takes no learning rate. (And every error
        a run raises before its directory exists: its data, its device, its model.)
    RunError
        The loss was not finite, or diverged, before two steps were taken.
    """
    problem = check_range(steps, min_lr, max_lr)
    if problem is not None:
        raise ValueError(problem)
    ensure_data(config.dataset)
    ensure_device(config)
    built = build(config, decide_backend(config))
    model = built.model
    if getattr(model, "closed_form", False):
        raise _closed_form_error(config)
    lrs = learning_rates(min_lr, max_lr, steps)
    last = steps - 1
    install_optimizer(
        model,
        config,
        len(built.splits.train[1]),
        schedule=lambda step: lrs[min(step, last)],
    )
    losses, stopped = _sweep(model, config, built.splits, steps)
    smoothed = smoothed_losses(losses)
    if len(losses) < 2:
        raise RunError(
            f"the learning-rate range test stopped at step {len(losses) + 1} "
            f"(learning rate {lrs[len(losses)]:.3g}): {stopped}; no suggestion "
            "can be made from fewer than 2 steps",
            hint="lower --min-lr (or --max-lr), or standardize the inputs",
        )
    return RangeTest(
        lrs=lrs[: len(losses)],
        losses=losses,
        smoothed=smoothed,
        suggested_lr=lrs[steepest_descent(smoothed)],
        steps=steps,
        stopped=stopped,
    )


def _closed_form_error(config: ExperimentConfig) -> ConfigError:
    """The model fits in one call: there is no learning rate to test."""
    where = config.source or "<config>"
    message = (
        f"{where}: model.name: {config.model.name} fits in closed form and takes "
        "no learning rate; the learning-rate range test needs a model trained by "
        "gradient descent"
    )
    hint = None
    if config.model.name == "linear_regression":
        hint = "set model.params.use_gradient_descent: true"
    return ConfigError(message, hint=hint)


def _sweep(
    model: BaseModel, config: ExperimentConfig, splits: Any, steps: int
) -> tuple[list[float], str | None]:
    """The batch loss of each step taken, and why the test ended early (None when
    it took all ``steps``). The optimizer's schedule sets each step's rate."""
    training = config.training
    dtype = np.dtype(getattr(model, "dtype", np.float64))
    X, y = splits.train
    augment = training_augmentation(config, splits)
    source = batch_source(
        X, y, training.batch_size, training.seed, augment=augment, dtype=dtype
    )
    losses: list[float] = []
    average, best = 0.0, math.inf
    with contextlib.closing(source), contextlib.closing(
        _batches(source, steps)
    ) as batches:
        for step, (xb, yb) in enumerate(batches):
            loss = float(model.train_step(xb, yb)["loss"])
            if not math.isfinite(loss):
                return losses, f"the loss became {loss}"
            losses.append(loss)
            average = SMOOTHING * average + (1 - SMOOTHING) * loss
            smoothed = average / (1 - SMOOTHING ** (step + 1))
            best = min(best, smoothed)
            diverged = best > 0 and smoothed > DIVERGENCE_FACTOR * best
            if diverged and step + 1 < steps:
                return losses, (
                    f"the smoothed loss exceeded {DIVERGENCE_FACTOR:g} times "
                    "its lowest value"
                )
    return losses, None


def _batches(source: Any, steps: int) -> Generator[tuple[Any, Any], None, None]:
    """The first ``steps`` training batches a run draws: epoch 1's in order, then
    epoch 2's, ..."""
    taken, epoch = 0, 0
    while taken < steps:
        epoch += 1
        before = taken
        with contextlib.closing(source.batches(epoch)) as batches:
            for item in batches:
                yield item
                taken += 1
                if taken == steps:
                    return
        if taken == before:  # no batches at all: nothing more will come
            return
