"""What a run trains, made ready before anything is written.

:func:`decide_backend` answers once per run which backend runs the model (and with
which parameters); :func:`build` then loads the data for that model, builds the
model and installs its optimizer. Everything that can fail on bad input fails here,
before a run directory exists (or, on resume, before anything in it changes).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable

from mlx.config import ExperimentConfig
from mlx.datasets import image_shape
from mlx.datasets.loader import load
from mlx.datasets.splits import Splits
from mlx.errors import DatasetError
from mlx.experiment.callbacks import load_callbacks
from mlx.models import BaseModel, get_model, uses_torch
from mlx.models.facts import model_task
from mlx.numerics.optim import get_optimizer, resolve_optimizer_config
from mlx.numerics.schedules import get_schedule
from mlx.runs.records import data_task, feature_dtype, split_rule
from mlx.runs.store import RunDir

__all__ = ["Backend", "Built", "build", "decide_backend", "install_optimizer"]

#: a learning-rate schedule: step -> value
Schedule = Callable[[int], float]


@dataclasses.dataclass(frozen=True)
class Backend:
    """Which backend runs a config's model, decided once per run and passed on."""

    #: PyTorch (an image model, a custom ``torch.nn.Module``); else NumPy
    torch: bool
    #: ``model.params`` as the model is built with them
    params: dict[str, Any]


def decide_backend(config: ExperimentConfig) -> Backend:
    """The backend of ``config``'s model; a custom model's module is imported."""
    params = dict(config.model.params)
    if config.model.name in ("mlp", "linear_regression") and params.get("seed") is None:
        # a model without a seed of its own draws from training.seed, so every random
        # number of a run derives from the config and runs repeat to the bit
        params["seed"] = config.training.seed
    return Backend(torch=uses_torch(config.model.name, params), params=params)


@dataclasses.dataclass(frozen=True)
class Built:
    """A run's data, its model (optimizer installed) and the schedule it follows."""

    splits: Splits
    model: BaseModel
    learning_rate: Schedule
    #: when the data was in memory (``time.perf_counter``)
    loaded: float
    #: the user's callbacks (training.callbacks), built
    callbacks: list[Any] = dataclasses.field(default_factory=list)


def build(
    config: ExperimentConfig, backend: Backend, run: RunDir | None = None
) -> Built:
    """The data, model and optimizer of ``config`` on ``backend``; for an existing
    ``run``, the data rebuilt as the run recorded it (its feature dtype, its task).

    Raises ConfigError, DatasetError, ModelError (and BackendUnavailableError).
    """
    model = None if backend.torch else get_model(config.model.name, backend.params)
    # the model decides the task: the data's labels are read for it (see data_task);
    # a torch model takes the data's
    splits = load(
        config.dataset,
        config.training.seed,
        feature_dtype(config, run, torch=backend.torch),
        model_task=None if model is None else data_task(model_task(model), run),
        split_rule=split_rule(run),
    )
    loaded = time.perf_counter()
    if model is None:
        # a torch model is built for the loaded data: its classes, channels, size
        model = _torch_model(config, splits)
    check_outputs_hold_classes(config, splits)
    learning_rate = install_optimizer(model, config, len(splits.train[0]))
    return Built(splits, model, learning_rate, loaded, load_callbacks(config))


def _torch_model(config: ExperimentConfig, splits: Splits) -> BaseModel:
    """The torch model the config asks for, built for the loaded data."""
    # torch loads only for a model that runs on it
    from mlx.models.torch import require_torch

    require_torch()
    from mlx.models.torch.model import model_from_config

    return model_from_config(config, splits.task, splits.n_classes, image_shape(splits))


def check_outputs_hold_classes(config: ExperimentConfig, splits: Splits) -> None:
    """DatasetError, before any run exists, when an MLP has fewer outputs than the
    data has classes (training would stop at the first batch)."""
    if config.model.name != "mlp" or splits.n_classes is None:
        return
    params = config.model.params
    activation = params.get("output_activation")
    outputs = int(params["layer_sizes"][-1])
    room = 2 if activation == "sigmoid" else outputs
    if activation not in ("sigmoid", "softmax") or splits.n_classes <= room:
        return
    source = splits.preprocessing.get("source") or config.dataset.name
    names = splits.class_names or ()
    shown = ", ".join(str(c) for c in names[:5]) + (", ..." if len(names) > 5 else "")
    raise DatasetError(
        f"{source}: the data has {splits.n_classes} classes ({shown}), but the "
        f"model's {activation} output has room for {room}",
        hint=f"set model.params.layer_sizes[-1] to {splits.n_classes} with "
        "output_activation: softmax",
    )


def install_optimizer(
    model: BaseModel,
    config: ExperimentConfig,
    n_train: int,
    *,
    schedule: Schedule | None = None,
) -> Schedule:
    """Give the model the optimizer the config asks for, with its schedule; the
    schedule is returned (a closed-form model has none: 0.0 at every step).
    ``schedule`` replaces the config's learning rate and schedule (the
    learning-rate range test sweeps its own)."""
    if getattr(model, "closed_form", False):
        return lambda step: 0.0
    training = config.training
    resolved = resolve_optimizer_config(training, config.model.params)
    if schedule is None:
        steps = math.ceil(n_train / min(training.batch_size, max(n_train, 1)))
        schedule = get_schedule(
            training.params, resolved["learning_rate"], steps, training.epochs
        )
    model.set_optimizer(get_optimizer({**resolved, "learning_rate": schedule}))
    configure = getattr(model, "configure_training", None)
    if callable(configure):
        configure(schedule, training.params.get("grad_clip_norm"))
    return schedule
