"""One segment of a run: one process's share of it, from the epoch the run stands
at to the last one (or to the signal that stops it).

:func:`train_segment` is the same for a new run and a resumed one: the run's lines
go to the console and ``train.log``, the loop runs inside the
:class:`~mlx.experiment.lifecycle.RunLifecycle`, and the final model is saved.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any, Callable, Mapping

from mlx.config import ExperimentConfig
from mlx.experiment.build import Built
from mlx.experiment.callbacks import Callbacks, RunInfo
from mlx.experiment.console import Console
from mlx.experiment.lifecycle import RunLifecycle, Timing
from mlx.experiment.loop import TrainerState, TrainingStopped, epoch_metrics, train
from mlx.models import BaseModel
from mlx.models.facts import architecture, n_features, parameter_count
from mlx.runs.store import TRAINER_STATE_FILE, RunDir
from mlx.utils.atomic import write_json_atomic

__all__ = ["Run", "model_facts", "train_segment"]


@dataclasses.dataclass(frozen=True)
class Run:
    """A finished (or stopped) run: where it lives and how it ended."""

    run_id: str
    directory: Path
    status: str
    final_metrics: Mapping[str, Any]
    config: ExperimentConfig


def train_segment(
    config: ExperimentConfig,
    run: RunDir,
    built: Built,
    state: TrainerState,
    timing: Timing,
    *,
    checkpoint: Path | None = None,
    quiet: bool,
) -> Run:
    """Train ``run`` from ``state`` (restored from ``checkpoint`` on resume) to
    ``training.epochs``, save its model and mark it completed."""
    model, splits = built.model, built.splits
    timing.loaded = built.loaded
    console = Console(
        quiet=quiet, log_file=run.log_path if config.output.save_logs else None
    )
    with console:  # the run's log handlers, attached for the whole run
        with RunLifecycle(run, console, state, timing) as lifecycle:
            # inside the lifecycle: a log or summary the disk refuses fails the run
            # truthfully
            # the data's width: a model that builds its parameters from it counts them
            facts = model_facts(config, model, splits.n_features)
            _announce(console, config, run, built, facts, state, checkpoint)
            lifecycle.start(model=facts)
            callbacks = Callbacks(config, built.callbacks)
            callbacks.load(state.callbacks)
            info = RunInfo(run.run_id, run.path, config)
            with _told_of_failure(callbacks, info):
                callbacks.start(info)
                train(
                    model,
                    splits,
                    config,
                    run,
                    state,
                    learning_rate=built.learning_rate,
                    log=console,
                    stop=lifecycle.stop_requested,
                    progress=console.progress,
                    callbacks=callbacks,
                )
                run.save_model(_final_model_writer(model, state))
                callbacks.end(info, "completed")
        metrics = run.read_metrics()
        final = epoch_metrics(metrics[-1] if metrics else {})
        lifecycle.complete(
            final_metrics=final,
            metric="val_loss" if splits.val[0].shape[0] else "train_loss",
            model=model_facts(config, model),
            stopped=_end_fields(state, callbacks),
        )
    return Run(
        run_id=run.run_id,
        directory=run.path,
        status="completed",
        final_metrics=final,
        config=config,
    )


@contextlib.contextmanager
def _told_of_failure(callbacks: Callbacks, info: RunInfo) -> Any:
    """Around the loop: a segment that ends by an exception tells the callbacks
    (``interrupted`` for a signal, ``failed`` otherwise); an exception from their
    ``on_train_end`` then gives way to the one that ended the segment."""
    try:
        yield
    except BaseException as exc:
        stopped = isinstance(exc, (TrainingStopped, KeyboardInterrupt))
        with contextlib.suppress(Exception):
            callbacks.end(info, "interrupted" if stopped else "failed")
        raise


def _end_fields(state: TrainerState, callbacks: Callbacks) -> dict[str, Any]:
    """``summary.json``'s ``best_epoch`` (the best epoch of the monitored metric)
    and, for a run a callback stopped, ``stopped_early``, ``stopped_epoch`` and,
    with early stopping, the best of its monitor."""
    fields: dict[str, Any] = {"best_epoch": state.best_epoch}
    if state.stopped_epoch is None:
        return fields
    fields.update(stopped_early=True, stopped_epoch=state.stopped_epoch)
    stopping = callbacks.early_stopping
    if stopping is not None and stopping.best_epoch is not None:
        fields["early_stopping"] = {
            "monitor": stopping.monitor,
            "mode": stopping.mode,
            "best": stopping.best,
            "best_epoch": stopping.best_epoch,
        }
    return fields


def _final_model_writer(
    model: BaseModel, state: TrainerState
) -> Callable[[Path], None]:
    """What fills ``model/``: the model's own files, and the trainer state that
    says after which epoch and step they were taken (as an epoch checkpoint's), so
    an evaluation of ``final`` records which weights it scored."""
    record = state.to_dict()

    def write(directory: Path) -> None:
        model.save(directory)
        write_json_atomic(directory / TRAINER_STATE_FILE, record)

    return write


def _announce(
    console: Console,
    config: ExperimentConfig,
    run: RunDir,
    built: Built,
    facts: Mapping[str, Any],
    state: TrainerState,
    checkpoint: Path | None,
) -> None:
    """The lines that open a segment: the run, where it resumes, data, model."""
    splits = built.splits
    console(f"run {run.run_id}: {run.path}")
    if checkpoint is not None:
        console(
            f"resuming from {checkpoint.name} (epoch {state.epoch}, step {state.step})"
        )
    streamed = hasattr(splits.train[0], "chunks")  # see mlx.datasets.streaming
    console(
        f"data: {config.dataset.name}, train {len(splits.train[0])} / "
        f"val {len(splits.val[0])} / test {len(splits.test[0])} samples, "
        f"{splits.n_features} features ({splits.task})"
        + (", streamed from disk" if streamed else "")
    )
    count = facts["parameters"]
    console(
        f"model: {config.model.name}, "
        + ("parameter count unknown" if count is None else f"{count:,} parameters")
    )
    placement = getattr(built.model, "placement_", None)
    if placement is not None:
        console(f"device: {placement.device}, precision {placement.precision}")


def model_facts(
    config: ExperimentConfig, model: BaseModel, n_data_features: int | None = None
) -> dict[str, Any]:
    """``summary.json``'s ``model``: what the harness knows of the model, None for
    what a model does not tell (a custom model need not count its parameters).
    ``n_data_features``, the width of the run's data, counts the parameters of a
    model that builds them from the data before it has (see
    :func:`mlx.models.facts.parameter_count`)."""
    facts: dict[str, Any] = {"name": config.model.name}
    class_path = config.model.params.get("class_path")
    if isinstance(class_path, str):
        facts["class_path"] = class_path
    facts.update(
        parameters=parameter_count(model, n_data_features),
        n_features=n_features(model),
        architecture=architecture(model),
    )
    return facts
