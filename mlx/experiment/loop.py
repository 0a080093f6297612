"""The training loop: shuffled mini-batches, validation, checkpoints, one function.

:func:`train` reads top to bottom. It is called with a model whose optimizer is already
installed and a :class:`TrainerState` (fresh, or restored from a checkpoint), and it
writes everything a run records per epoch (``metrics.jsonl``, checkpoints, log lines)
through the run directory it is given.

Reproducibility: the order of the batches in epoch ``k`` is a permutation drawn from
``(training.seed, k)`` alone, so a run resumed from any checkpoint sees exactly the
batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Generator, Iterator, Mapping

import numpy as np

from mlx.config import ExperimentConfig
from mlx.datasets.augment import augmentation_for
from mlx.datasets.splits import Splits, batch_order
from mlx.errors import DivergenceError
from mlx.experiment.callbacks import Callbacks
from mlx.models.base import BaseModel
from mlx.models.facts import model_logits, model_outputs, model_task
from mlx.numerics.losses import (
    cross_entropy,
    probability_cross_entropy,
    sigmoid,
    softmax,
)
from mlx.numerics.metrics import compute_metrics, mse
from mlx.runs.store import TRAINER_STATE_FILE, RunDir
from mlx.utils.atomic import write_json_atomic

__all__ = [
    "ArrayBatches",
    "TrainerState",
    "TrainingStopped",
    "batch_order",
    "batch_source",
    "epoch_metrics",
    "train",
    "training_augmentation",
    "validation_metrics",
]


@dataclasses.dataclass
class TrainerState:
    """Where training stands; saved as ``trainer_state.json`` in every checkpoint.

    ``batch`` counts the batches already done in epoch ``epoch + 1``: it is 0 at an
    epoch boundary and positive only in a checkpoint written on interruption.
    ``loss_sum``/``loss_count`` carry that unfinished epoch's running training loss so
    the resumed epoch reports the same value an uninterrupted one would.
    ``config_fingerprint`` identifies the configuration that wrote the checkpoint;
    resume refuses a checkpoint whose fingerprint differs from the run's.
    """

    epoch: int = 0
    batch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    best_metric: float | None = None
    best_epoch: int | None = None
    config_fingerprint: str | None = None
    #: each callback's ``state_dict()`` (JSON), user callbacks then early stopping
    callbacks: list[Any] | None = None
    #: the epoch a callback (or early stopping) ended the run at
    stopped_epoch: int | None = None

    def to_dict(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        # fields a run made before them never had stay out while unset
        for name in _LATER_FIELDS:
            if record[name] is None:
                del record[name]
        return record

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainerState:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


_LATER_FIELDS = ("callbacks", "stopped_epoch")


class TrainingStopped(Exception):
    """Raised by :func:`train` once it saved a checkpoint because ``stop()`` said so."""

    def __init__(self, state: TrainerState) -> None:
        super().__init__("training stopped")
        self.state = state


def batch_source(
    X: Any,
    y: np.ndarray,
    batch_size: int,
    seed: int,
    *,
    augment: Callable[[np.ndarray, int, int, int], np.ndarray] | None = None,
    dtype: Any = None,
) -> Any:
    """Where the training loop gets its batches from: an object with ``n_samples``,
    ``n_batches``, ``batches(epoch, start=0)`` (an iterator of ``(X, y)`` batches
    of epoch ``epoch`` from batch ``start`` on, in the order of
    :func:`batch_order`) and ``close()``.

    ``X`` is an array (:class:`ArrayBatches`) or a streamed split that makes its own
    source (``X.batch_source``, e.g. image files decoded by worker processes).
    ``augment(xb, seed, epoch, batch)`` transforms each training batch.
    """
    make = getattr(X, "batch_source", None)
    if make is not None:
        return make(y, batch_size, seed, augment=augment, dtype=dtype)
    return ArrayBatches(X, y, batch_size, seed, augment=augment, dtype=dtype)


class ArrayBatches:
    """Mini-batches gathered from in-memory arrays.

    Without augmentation the features are converted to ``dtype`` once and each
    batch is gathered into a reused buffer (a batch is only valid until the next
    one is drawn). With augmentation, each batch is gathered from the features as
    loaded (float32 pixels), augmented, then converted, one batch ahead on a
    worker thread, so preparing a batch overlaps the step before it.
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        seed: int,
        *,
        augment: Callable[[np.ndarray, int, int, int], np.ndarray] | None = None,
        dtype: Any = None,
    ) -> None:
        self.dtype = np.dtype(dtype if dtype is not None else X.dtype)
        self.augment = augment
        self.seed = seed
        self.X = (
            np.ascontiguousarray(X, dtype=self.dtype)
            if augment is None
            else np.ascontiguousarray(X)
        )
        self.y = np.ascontiguousarray(y)
        self.n_samples = len(self.X)
        self.batch_size = min(batch_size, self.n_samples)
        self.n_batches = math.ceil(self.n_samples / self.batch_size)

    def batches(
        self, epoch: int, start: int = 0
    ) -> Generator[tuple[np.ndarray, np.ndarray], None, None]:
        order = batch_order(self.seed, epoch, self.n_samples)
        if self.augment is None:
            return self._gathered(order, start)
        return _one_ahead(self._augmented(order, epoch, start))

    def _gathered(
        self, order: np.ndarray, start: int
    ) -> Generator[tuple[np.ndarray, np.ndarray], None, None]:
        X, y, batch_size = self.X, self.y, self.batch_size
        # batches are gathered into these buffers, so a step allocates no new arrays
        X_batch = np.empty((batch_size,) + X.shape[1:], dtype=X.dtype)
        y_batch = np.empty((batch_size,) + y.shape[1:], dtype=y.dtype)
        for batch in range(start, self.n_batches):
            index = order[batch * batch_size : (batch + 1) * batch_size]
            xb, yb = X_batch[: len(index)], y_batch[: len(index)]
            np.take(X, index, axis=0, out=xb)
            np.take(y, index, axis=0, out=yb)
            yield xb, yb

    def _augmented(
        self, order: np.ndarray, epoch: int, start: int
    ) -> Generator[tuple[np.ndarray, np.ndarray], None, None]:
        assert self.augment is not None
        batch_size = self.batch_size
        for batch in range(start, self.n_batches):
            index = order[batch * batch_size : (batch + 1) * batch_size]
            xb = self.augment(np.take(self.X, index, axis=0), self.seed, epoch, batch)
            yield np.asarray(xb, dtype=self.dtype), np.take(self.y, index, axis=0)

    def close(self) -> None:
        pass


_END = object()


def _one_ahead(items: Iterator[Any]) -> Generator[Any, None, None]:
    """``items`` with the next one always being computed on a worker thread."""
    with ThreadPoolExecutor(1, thread_name_prefix="mlx-batches") as pool:
        pending = pool.submit(next, items, _END)
        while True:
            item = pending.result()
            if item is _END:
                return
            pending = pool.submit(next, items, _END)
            yield item


def training_augmentation(
    config: ExperimentConfig, splits: Splits
) -> Callable[[np.ndarray, int, int, int], np.ndarray] | None:
    """The dataset's training-batch augmentation, or None."""
    dataset = getattr(config, "dataset", None)
    shape = getattr(splits, "image_shape", None)
    if dataset is None or shape is None:
        return None
    if not (getattr(dataset, "params", None) or {}).get("augmentation"):
        return None
    return augmentation_for(dataset, shape)


def validation_metrics(
    model: BaseModel, X: np.ndarray, y: np.ndarray, task: str | None = None
) -> dict[str, float]:
    """``val_loss`` plus ``val_accuracy`` (classification) or ``val_r2`` (regression).

    ``val_loss`` is the training loss of the model as it is, on the validation split:
    for a classifier the cross-entropy computed from its logits
    (:func:`~mlx.numerics.losses.cross_entropy`: log-sum-exp, no clipping; for a
    model without logits, of its probabilities), for a regressor the mean squared
    error. ``task`` (the data's) applies when the model does not say its own.
    """
    if len(X) == 0:
        return {}
    if model_task(model, task) == "classification":
        y_pred, loss = _classifier_outputs(model, X, y, task)
        values = compute_metrics(["accuracy"], "classification", y, y_pred)
        return {"val_loss": loss, "val_accuracy": values["accuracy"]}
    y_pred, _ = model_outputs(model, X, task)
    values = compute_metrics(["mse", "r2"], "regression", y, y_pred)
    return {"val_loss": values["mse"], "val_r2": values["r2"]}


def _classifier_outputs(
    model: BaseModel, X: Any, y: np.ndarray, task: str | None
) -> tuple[np.ndarray, float]:
    """A classifier's predicted labels on ``X`` and its cross-entropy on ``y``, from
    one pass: from its logits when it gives them, else from its probabilities."""
    logits = model_logits(model, X)
    if logits is None:
        y_pred, proba = model_outputs(model, X, task)
        assert proba is not None  # a classifier's
        return y_pred, probability_cross_entropy(y, proba)
    sigmoid_head = logits.ndim == 1 or (
        getattr(model, "output_activation", None) == "sigmoid"
    )
    proba = sigmoid(logits) if sigmoid_head else softmax(logits)
    # labelled as model_outputs labels the model's own probabilities
    y_pred = proba >= 0.5 if proba.ndim == 1 else np.argmax(proba, axis=1)
    activation = "sigmoid" if sigmoid_head else "softmax"
    return y_pred.astype(np.int64), cross_entropy(logits, y, activation)


def train(
    model: BaseModel,
    splits: Splits,
    config: ExperimentConfig,
    run: RunDir,
    state: TrainerState,
    *,
    learning_rate: Callable[[int], float],
    log: Callable[[str], None],
    stop: Callable[[], bool] = lambda: False,
    progress: Callable[..., Any] | None = None,
    callbacks: Callbacks | None = None,
) -> TrainerState:
    """Train ``model`` on ``splits.train`` from ``state`` to ``config.training.epochs``.

    ``model`` has its optimizer installed (and restored, when resuming); ``state``
    says where to start, is advanced in place and returned. Every epoch is recorded
    through ``run`` (``metrics.jsonl``, checkpoints) and as a line to ``log`` (the
    console and ``train.log``); ``learning_rate`` is the schedule the optimizer
    follows (``step -> value``), for that record. ``progress`` optionally makes a
    bar per epoch: ``(epoch, total_batches) -> bar`` with ``update(n, loss)`` and
    ``close()``. ``stop`` is polled after every step. ``callbacks`` are told of
    each epoch's end (:mod:`mlx.experiment.callbacks`); one that asks to stop ends
    the loop after that epoch, checkpointed, with ``state.stopped_epoch`` set.

    Raises
    ------
    DivergenceError
        The training loss became NaN or infinite; the last good checkpoint is kept.
    TrainingStopped
        ``stop()`` returned True; a checkpoint of the exact current state was written.
    """
    training, output = config.training, config.output
    if state.stopped_epoch is not None:
        return state  # stopped early before it was interrupted: nothing to train
    if getattr(model, "closed_form", False):
        return _fit_closed_form(model, splits, config, run, state, log)

    # the model's dtype end to end: one conversion now, none per step or epoch
    dtype = np.dtype(getattr(model, "dtype", np.float64))
    X, y = splits.train
    augment = training_augmentation(config, splits)
    source = batch_source(
        X, y, training.batch_size, training.seed, augment=augment, dtype=dtype
    )
    X_val, y_val = splits.val
    if isinstance(X_val, np.ndarray):
        X_val = np.ascontiguousarray(X_val, dtype=dtype)

    # epoch checkpoints are written in the background while the next epoch trains
    with _CheckpointWriter(run) as checkpoints, contextlib.closing(source):
        for epoch in range(state.epoch + 1, training.epochs + 1):
            started = time.perf_counter()
            _train_epoch(model, source, epoch, state, checkpoints, stop, progress)
            # end of epoch: record, validate, checkpoint
            val = (X_val, y_val, getattr(splits, "task", None))
            record = _end_epoch(model, epoch, state, started, val, learning_rate)
            run.append_metrics(record)
            stopped = _epoch_end_callbacks(callbacks, epoch, record, state)
            _record_progress(
                run, state, "val_loss" if len(y_val) else "train_loss", record
            )
            log(_epoch_line(record, training.epochs, source.n_samples))
            if output.save_checkpoints and (
                epoch % output.checkpoint_frequency == 0
                or epoch == training.epochs
                or stopped
            ):
                checkpoints.save(model, state)
            if stopped:
                log(f"stopped early after epoch {epoch} (a callback asked)")
                break
    return state


def _epoch_end_callbacks(
    callbacks: Callbacks | None,
    epoch: int,
    record: Mapping[str, Any],
    state: TrainerState,
) -> bool:
    """Tell ``callbacks`` that ``epoch`` ended with ``record``; keep their states
    in ``state`` (so the epoch's checkpoint holds them); whether one asked to
    stop (``state.stopped_epoch`` is then set)."""
    if callbacks is None:
        return False
    stopped = callbacks.epoch_end(epoch, epoch_metrics(record))
    state.callbacks = callbacks.states()
    if stopped:
        state.stopped_epoch = epoch
    return stopped


def _train_epoch(
    model: BaseModel,
    source: Any,
    epoch: int,
    state: TrainerState,
    checkpoints: _CheckpointWriter,
    stop: Callable[[], bool],
    progress: Callable[..., Any] | None,
) -> None:
    """The steps of epoch ``epoch`` from batch ``state.batch`` on, ``state``
    advanced after each."""
    bar = progress(epoch, source.n_batches) if progress else None
    # closed on the way out, so no batch is prepared past the last step
    with contextlib.closing(source.batches(epoch, state.batch)) as batches:
        for batch, (xb, yb) in enumerate(batches, start=state.batch):
            size = len(yb)
            loss = float(model.train_step(xb, yb)["loss"])
            if not math.isfinite(loss):
                if bar:
                    bar.close()
                # leaving the `with` waits for the last good checkpoint
                raise DivergenceError(
                    f"training diverged at epoch {epoch}, "
                    f"step {state.step + 1}: the loss is {loss}",
                    hint="lower training.learning_rate (e.g. by 10x) "
                    "or standardize the inputs",
                )
            state.step += 1
            state.batch = batch + 1
            state.loss_sum += loss * size
            state.loss_count += size
            if bar:
                bar.update(1, loss)

            if stop():
                if bar:
                    bar.close()
                # the exact state now, written before the loop lets go
                checkpoints.save(model, state, partial=True, background=False)
                raise TrainingStopped(state)
    if bar:
        bar.close()


def _end_epoch(
    model: BaseModel,
    epoch: int,
    state: TrainerState,
    started: float,
    val: tuple[Any, Any, str | None],
    learning_rate: Callable[[int], float],
) -> dict[str, Any]:
    """Close epoch ``epoch`` in ``state`` (which keeps the best metric), validate
    on ``val`` (``X``, ``y``, the data's task) and return the epoch's record."""
    train_loss = state.loss_sum / max(state.loss_count, 1)
    seconds = time.perf_counter() - started
    state.epoch, state.batch = epoch, 0
    state.loss_sum, state.loss_count = 0.0, 0
    metrics = validation_metrics(model, *val)
    key = metrics.get("val_loss", train_loss)
    if state.best_metric is None or key < state.best_metric:
        state.best_metric, state.best_epoch = key, epoch
    return {
        "epoch": epoch,
        "step": state.step,
        "train_loss": train_loss,
        **metrics,
        "learning_rate": learning_rate(max(state.step - 1, 0)),
        "seconds": seconds,
    }


def _fit_closed_form(
    model: BaseModel,
    splits: Splits,
    config: ExperimentConfig,
    run: RunDir,
    state: TrainerState,
    log: Callable[[str], None],
) -> TrainerState:
    # a closed-form model has nothing to iterate: epochs and batch_size do not apply
    if state.epoch >= 1:
        return state
    log(
        "closed-form fit on the whole training split "
        "(training.epochs and training.batch_size do not apply)"
    )
    started = time.perf_counter()
    X, y = splits.train
    # a closed-form model (BaseModel.closed_form) fits in one call
    model.fit(X, y)  # type: ignore[attr-defined]
    train_loss = float(mse(y, model_outputs(model, X, splits.task)[0]))
    X_val, y_val = splits.val
    val = validation_metrics(model, X_val, y_val, splits.task)
    state.epoch, state.step = 1, 1
    state.best_metric = val.get("val_loss", train_loss)
    state.best_epoch = 1
    record = {
        "epoch": 1,
        "step": 1,
        "train_loss": train_loss,
        **val,
        "learning_rate": None,
        "seconds": time.perf_counter() - started,
    }
    run.append_metrics(record)
    metric = "val_loss" if len(splits.val[0]) else "train_loss"
    _record_progress(run, state, metric, record)
    log(_epoch_line(record, 1, len(X)))
    if config.output.save_checkpoints:
        _checkpoint_job(run, model, state, partial=False)()
    return state


def epoch_metrics(record: Mapping[str, Any]) -> dict[str, Any]:
    """The model's metrics in an epoch's record of ``metrics.jsonl``: all but its
    epoch, step, learning rate and seconds."""
    return {k: v for k, v in record.items() if k not in _NOT_METRICS}


_NOT_METRICS = ("epoch", "step", "seconds", "learning_rate")


def _record_progress(
    run: RunDir, state: TrainerState, metric: str, record: Mapping[str, Any]
) -> None:
    """Put the epochs done so far, the best metric and the metrics of the epoch
    just ended (``record``) in the run's summary, so a running or lost run shows
    its progress, not only a finished one, and a resumed run never shows the
    metrics of an earlier epoch beside its newer epoch count."""
    heartbeat = getattr(run, "heartbeat", None)
    if heartbeat is None:
        return
    heartbeat(
        epochs_completed=state.epoch,
        final_metrics=epoch_metrics(record),
        best_metric={
            "name": metric,
            "value": state.best_metric,
            "epoch": state.best_epoch,
        },
    )


class _CheckpointWriter:
    """Writes checkpoints on one worker thread, one at a time, as a context manager.

    :meth:`save` copies the model's state and the trainer state on the calling
    thread, then hands the file work (serialising, fsyncing, publishing the
    directory) to the worker, so the next epoch trains meanwhile. A save waits for
    the previous one; leaving the ``with`` block waits for the last, so a finished,
    diverged or stopped run has every checkpoint it announced on disk. A failed
    write raises on the training thread at the next save or on exit. Models that
    replace :meth:`~mlx.models.base.BaseModel.save` without providing
    ``snapshot()`` are saved on the calling thread.
    """

    def __init__(self, run: RunDir) -> None:
        self._run = run
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future[Any] | None = None

    def save(
        self,
        model: BaseModel,
        state: TrainerState,
        *,
        partial: bool = False,
        background: bool = True,
    ) -> None:
        self.wait()
        job = _checkpoint_job(self._run, model, state, partial=partial)
        if not background or not _snapshots(model):
            job()
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="mlx-checkpoint")
        self._pending = self._pool.submit(job)

    def wait(self) -> None:
        """Block until the save in flight (if any) is on disk; raise its error."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> _CheckpointWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        try:
            if exc_type is None:
                self.wait()
            else:
                # the exception already on its way matters more than a failed write
                with contextlib.suppress(Exception):
                    self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)


def _snapshots(model: BaseModel) -> bool:
    """True when ``model.snapshot()`` writes what ``model.save`` would."""
    cls = type(model)
    save = getattr(cls, "save", None)
    snapshot = getattr(cls, "snapshot", None)
    return snapshot is not None and (
        save is BaseModel.save or snapshot is not BaseModel.snapshot
    )


def _checkpoint_job(
    run: RunDir, model: BaseModel, state: TrainerState, *, partial: bool
) -> Callable[[], Any]:
    """The work of saving a checkpoint of ``model`` and ``state`` as they are now."""
    write_model = model.snapshot() if _snapshots(model) else model.save
    state_record = state.to_dict()
    step = state.step if partial else None
    # an interrupted epoch is saved under its own name; `epoch-NNNN` always means
    # "after NNNN complete epochs"
    epoch = state.epoch

    def write(directory: Path) -> None:
        write_model(directory)
        write_json_atomic(directory / TRAINER_STATE_FILE, state_record)

    return lambda: run.save_checkpoint(epoch, write, step=step)


def _epoch_line(record: dict[str, Any], epochs: int, n_samples: int) -> str:
    parts = [
        f"epoch {record['epoch']}/{epochs}",
        f"train_loss {record['train_loss']:.6g}",
    ]
    parts += [
        f"{k} {v:.6g}"
        for k, v in record.items()
        if k.startswith("val_") and isinstance(v, float)
    ]
    seconds = record["seconds"]
    if seconds > 0:
        parts.append(f"{n_samples / seconds:,.0f} samples/s")
    return "  ".join(parts)
