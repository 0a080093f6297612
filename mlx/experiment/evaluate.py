"""Evaluate a run: rebuild its split, load its model, compute metrics, record them.

The split is rebuilt from the run's stored config, deterministically, and checked
against the fingerprint the run recorded in ``data.json``, so an evaluation never
silently scores a different dataset. Each evaluation is kept as its own
``evals/<timestamp>.json``; earlier ones are never overwritten.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import re
import warnings
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from mlx.config import ExperimentConfig
from mlx.datasets.loader import load
from mlx.errors import CheckpointError, DataWarning, MLXError, RunError
from mlx.experiment.checks import check_runnable
from mlx.models import BaseModel, get_model, load_model, uses_torch
from mlx.models.facts import (  # model_outputs is re-exported: part of this API
    model_outputs,
    model_task,
    parameter_count,
)
from mlx.numerics.metrics import DEFAULT_METRICS, compute_metrics, validate_metric_names
from mlx.runs import find_run
from mlx.runs.records import (
    check_data_record,
    data_task,
    feature_dtype,
    recorded_task,
    split_rule,
    stored_config,
)
from mlx.runs.store import RunDir
from mlx.runs.weights import weights_state
from mlx.utils.arguments import check_bool, check_path_or_id, check_strings
from mlx.utils.atomic import os_error_text, write_bytes_atomic
from mlx.utils.safe_io import check_inside

__all__ = [
    "SPLITS",
    "EvaluationNotSaved",
    "evaluate",
    "export_inputs",
    "model_outputs",
    "split_predictions",
]

SPLITS = ("test", "val", "train")

_WHERE = "mlx.evaluate"


class EvaluationNotSaved(RunError):
    """The metrics were computed but could not be recorded in the run (a read-only
    run directory, a full disk). ``result`` holds them, as :func:`evaluate` would
    have returned them, without ``path``."""

    def __init__(self, message: str, *, result: dict[str, Any]) -> None:
        super().__init__(
            message,
            hint="the metrics above were computed but not recorded; make the run "
            "directory writable (or free some space) and evaluate again",
        )
        self.result = result


def evaluate(
    run: str | Path | RunDir,
    metrics: Sequence[str] | None = None,
    split: str = "test",
    *,
    checkpoint: str = "final",
    save_predictions: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Evaluate a run's model on one split and return the result.

    Parameters
    ----------
    run : a run ID, a run directory, or a RunDir.
    metrics : metric names (see :mod:`mlx.metrics`), or one name; default (None):
        the task's default set.
    split : ``"test"`` (default), ``"val"`` or ``"train"``.
    checkpoint : ``"final"`` (the run's ``model/``) or ``"epoch-N"``.
    save_predictions : also write ``predictions.csv`` in the run directory.
    dry_run : check that the run, checkpoint and metrics fit; compute and write nothing.

    Returns
    -------
    dict with ``run_id``, ``split``, ``checkpoint``, ``n_samples``, ``metrics`` and,
    unless ``dry_run``, ``path`` (the ``evals/*.json`` written).

    Raises
    ------
    TypeError, ValueError
        An argument of the wrong type (``save_predictions="no"``, ``metrics=3``) or
        an empty ``metrics`` list.
    EvaluationNotSaved
        The metrics were computed but could not be written into the run (read-only
        directory, full disk); its ``result`` holds them.
    """
    requested = _checked_arguments(
        metrics, split, checkpoint, save_predictions, dry_run
    )
    if not (hasattr(run, "run_id") and hasattr(run, "path")):
        run = check_path_or_id(_WHERE, "run", run)
    run, config, model, task = _opened(run, checkpoint)
    names = requested if requested else list(DEFAULT_METRICS[task])
    validate_metric_names(names, task)
    result = _described(run, config, model, split, checkpoint)
    # which weights these are, so nothing later shows them as newer ones
    weights = weights_state(_checkpoint_path(run, checkpoint)) or {}
    result.update(epoch=weights.get("epoch"), step=weights.get("step"))
    if dry_run:
        result["metric_names"] = names
        return result

    X, y, keys = _split_data(run, config, task, split)
    y_pred, proba = model_outputs(model, X, task)
    values = compute_metrics(names, task, y, y_pred, proba=proba)
    result.update(
        n_samples=int(len(X)),
        metrics=values,
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(),
    )
    predictions = (keys, y, y_pred, proba) if save_predictions else None
    return _save(run, result, predictions)


def _described(
    run: RunDir, config: ExperimentConfig, model: BaseModel, split: str, checkpoint: str
) -> dict[str, Any]:
    """The head of an evaluation's result: what was scored, not yet the metrics."""
    return {
        "run_id": run.run_id,
        "split": split,
        "checkpoint": checkpoint,
        "model": {"name": config.model.name, "parameters": parameter_count(model)},
        "metrics": {},
    }


def _checked_arguments(
    metrics: Any, split: Any, checkpoint: Any, save_predictions: Any, dry_run: Any
) -> list[str] | None:
    """The metric names asked for (None: the task's default set), once every
    argument of :func:`evaluate` but the run checks out."""
    requested = (
        None
        if metrics is None
        else check_strings(_WHERE, "metrics", metrics, "metric name")
    )
    if requested == []:
        raise ValueError(
            "The 'metrics' parameter of mlx.evaluate is empty; pass None for the "
            "task's default metrics."
        )
    for name, value in (("split", split), ("checkpoint", checkpoint)):
        if not isinstance(value, str):
            raise TypeError(
                f"The {name!r} parameter of mlx.evaluate must be a str; got "
                f"{value!r} ({type(value).__name__})."
            )
    check_bool(_WHERE, "save_predictions", save_predictions)
    check_bool(_WHERE, "dry_run", dry_run)
    _check_split(split)
    return requested


def _save(
    run: RunDir,
    result: dict[str, Any],
    predictions: tuple[dict[str, Any], Any, Any, Any | None] | None,
) -> dict[str, Any]:
    """``result`` recorded in the run's ``evals/`` (and ``predictions``, when
    given, in ``predictions.csv``), with ``path`` added; EvaluationNotSaved when the
    run refuses either."""
    try:
        # both destinations are checked before either is written: a refused
        # evaluation leaves no predictions.csv behind
        check_inside(run.path, run.evals_dir, kind="dir")
        if predictions is not None:
            check_inside(run.path, run.predictions_path)
            path, digest = _write_predictions(run, *predictions)
            result.update(predictions=str(path), predictions_sha256=digest)
        result["path"] = str(run.write_eval(result))
    except (OSError, RunError) as exc:
        reason = os_error_text(exc) if isinstance(exc, OSError) else str(exc)
        raise EvaluationNotSaved(
            f"could not save the evaluation of run {run.run_id}: {reason}",
            result={k: v for k, v in result.items() if k != "path"},
        ) from exc
    return result


def split_predictions(
    run: str | Path | RunDir, split: str = "test", checkpoint: str = "final"
) -> tuple[str, Any, Any, Any | None]:
    """The task, true targets, predictions and probabilities (None where the model
    has none) of a run's model on one split, computed as :func:`evaluate` computes
    them, but recording nothing in the run.

    Returns ``(task, y_true, y_pred, proba)``; arrays of shape ``(n_samples, ...)``.
    """
    _check_split(split)
    opened, config, model, task = _opened(run, checkpoint)
    X, y, _ = _split_data(opened, config, task, split)
    y_pred, proba = model_outputs(model, X, task)
    return task, y, y_pred, proba


class ExportInputs(NamedTuple):
    """What an export of a run checks its file against: the run, its model at
    one checkpoint, the task, and the features of the first non-empty split of
    ``splits`` (named ``split``) as eval rebuilds them, preprocessed; ``epoch``
    and ``step`` of the weights (None where the checkpoint does not say)."""

    run: RunDir
    model: BaseModel
    task: str
    split: str
    X: Any
    epoch: int | None
    step: int | None


def export_inputs(
    run: str | Path | RunDir,
    checkpoint: str = "final",
    splits: Sequence[str] = ("val", "test", "train"),
) -> ExportInputs:
    """The run's model at ``checkpoint`` and the first of ``splits`` that holds
    samples, rebuilt and checked against ``data.json`` as :func:`evaluate` does."""
    opened, config, model, task = _opened(run, checkpoint)
    weights = weights_state(_checkpoint_path(opened, checkpoint)) or {}
    for split in splits:
        _check_split(split)
        X, _, _ = _split_data(opened, config, task, split, allow_empty=True)
        if len(X):
            return ExportInputs(
                opened, model, task, split, X, weights.get("epoch"), weights.get("step")
            )
    raise RunError(
        f"run {opened.run_id} has no samples in its {', '.join(splits)} splits"
    )


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise RunError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")


def _opened(
    run: str | Path | RunDir, checkpoint: str
) -> tuple[RunDir, ExperimentConfig, BaseModel, str]:
    """The run, its config, its model at ``checkpoint`` and the task the model
    predicts for."""
    opened = _open(run)
    config = stored_config(opened, runnable=check_runnable)
    model = _load_model(opened, config, _checkpoint_path(opened, checkpoint))
    task = model_task(model, recorded_task(opened))
    if task is None:
        raise RunError(f"{opened.data_path} is missing or corrupt")
    return opened, config, model, task


def _split_data(
    run: RunDir,
    config: ExperimentConfig,
    task: str,
    split: str,
    *,
    allow_empty: bool = False,
) -> tuple[Any, Any, dict[str, Any]]:
    """``(X, y, keys)`` of one split, rebuilt from the run's config by the split
    rule it recorded and checked against its ``data.json`` fingerprint; RunError
    when the split is empty. ``keys`` holds what joins each sample back to its
    source row: ``source_row`` and, with an ``id_column``, ``id``."""

    with warnings.catch_warnings():
        # the run said so when it trained, and data.json records it
        warnings.filterwarnings(
            "ignore", message=r".*: the labels look like", category=DataWarning
        )
        warnings.filterwarnings(
            "ignore", message=r".*: the splits are not stratified", category=DataWarning
        )
        splits = load(
            config.dataset,
            config.training.seed,
            feature_dtype(config, run),
            model_task=data_task(task, run),
            split_rule=split_rule(run),
        )
    check_data_record(run, splits, (split,))
    X, y = getattr(splits, split)
    if len(X) == 0 and not allow_empty:
        raise RunError(
            f"the {split} split of run {run.run_id} is empty",
            hint="choose another --split, or set a non-zero split fraction",
        )
    keys: dict[str, Any] = {}
    if splits.source_rows is not None:
        keys["source_row"] = splits.source_rows[split]
    if splits.ids is not None:
        keys["id"] = splits.ids[split]
    return X, y, keys


def _load_model(run: RunDir, config: ExperimentConfig, path: Path) -> BaseModel:
    """The model saved at ``path``. A built-in model is rebuilt from the checkpoint
    alone; a custom one from the run's config, then its own ``load`` reads the files
    its own ``save`` wrote (which need not be mlx's format)."""
    params = dict(config.model.params)
    if config.model.name != "custom" or uses_torch(config.model.name, params):
        # a torch module's checkpoint records what rebuilds it (its input shape...)
        return load_model(path)
    model = get_model(config.model.name, params)
    try:
        model.load(path)
    except MLXError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"the checkpoint {path} of run {run.run_id} does not load ({exc})"
        ) from exc
    return model


def _open(run: str | Path | RunDir) -> RunDir:
    if hasattr(run, "run_id") and hasattr(run, "path"):
        return run  # type: ignore[return-value]
    return find_run(str(run))


def _checkpoint_path(run: RunDir, checkpoint: str) -> Path:
    """The directory of ``checkpoint`` (``final`` or ``epoch-N``) in ``run``."""
    if checkpoint == "final":
        path = run.model_dir
    elif re.fullmatch(r"epoch-[0-9]{1,18}", checkpoint):
        path = run.checkpoint_dir(int(checkpoint[6:]))
    else:
        raise RunError(f"unknown checkpoint {checkpoint!r}; use 'final' or 'epoch-N'")
    if not path.is_dir() or path.is_symlink():
        available = _available_checkpoints(run)
        raise RunError(
            f"run {run.run_id} has no checkpoint {checkpoint!r} ({path} is missing)",
            hint="available: " + (", ".join(available) if available else "none"),
        )
    return path


def _available_checkpoints(run: RunDir) -> list[str]:
    """``final`` (if saved), then ``epoch-N`` of every epoch checkpoint, in epoch
    order (``epoch-9`` before ``epoch-10``)."""
    names = ["final"] if run.model_dir.is_dir() else []
    names += [
        f"epoch-{epoch}"
        for epoch, path in run.list_checkpoints()
        if "-step-" not in path.name  # mid-epoch ones cannot be named on the CLI
    ]
    return names


def _write_predictions(
    run: RunDir, keys: dict[str, Any], y: Any, y_pred: Any, proba: Any | None
) -> tuple[Path, str]:
    """``predictions.csv``: the index (the sample within the split), the columns of
    ``keys`` that join it back to the user's data (``source_row``, the 0-based
    data row of the source file; ``id``, the ``id_column`` value), the true and
    predicted targets and, for a classifier, each class's probability. Returns its
    path and the SHA-256 of its bytes, which the evaluation records: a reader knows
    which evaluation wrote it."""
    buffer = io.StringIO()
    y2 = np.asarray(y).reshape(len(y), -1)
    p2 = np.asarray(y_pred).reshape(len(y_pred), -1)
    true_cols = (
        ["y_true"] if y2.shape[1] == 1 else [f"y_true_{i}" for i in range(y2.shape[1])]
    )
    pred_cols = (
        ["y_pred"] if p2.shape[1] == 1 else [f"y_pred_{i}" for i in range(p2.shape[1])]
    )
    columns = ["index", *keys, *true_cols, *pred_cols]
    blocks = [np.arange(len(y)).reshape(-1, 1)]
    blocks += [np.asarray(v).reshape(-1, 1) for v in keys.values()]
    blocks += [y2, p2]
    if proba is not None:
        p = np.asarray(proba)
        if p.ndim == 1:
            p = np.column_stack([1.0 - p, p])
        columns += [f"proba_{k}" for k in range(p.shape[1])]
        blocks.append(p)
    buffer.write(",".join(columns) + "\n")
    for row in zip(*(b.tolist() for b in blocks)):
        buffer.write(",".join(_csv_cell(v) for part in row for v in part) + "\n")
    path = check_inside(run.path, run.predictions_path)
    data = buffer.getvalue().encode("utf-8")
    write_bytes_atomic(path, data)
    return path, hashlib.sha256(data).hexdigest()


def _csv_cell(value: Any) -> str:
    # repr keeps full float precision, so metrics recomputed from the file match
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):  # an id, quoted as CSV quotes it where needed
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow([value])
        return out.getvalue()
    return str(value)
