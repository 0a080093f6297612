"""Model facts (task, parameter count, inputs, architecture, outputs), asked in one
place and so that the documented contract suffices.

The contract of a :class:`~mlx.models.BaseModel` subclass is four methods:
``forward``, ``train_step``, ``save`` and ``load``. A subclass need not call
``BaseModel.__init__`` or ``_setup``, keep ``params_``, or define ``task``,
``n_parameters``, ``architecture`` or ``n_features_in_``. The training loop, the run
store and eval read everything beyond the four methods through these helpers, which
fall back to ``forward`` or answer ``None`` (reported as unknown) when a model does not
provide it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlx.models.base import BaseModel, jsonable

__all__ = [
    "architecture",
    "model_logits",
    "model_outputs",
    "model_task",
    "n_features",
    "parameter_count",
    "predictions",
]

_TASKS = ("classification", "regression")


def model_task(model: BaseModel, default: str | None = None) -> str | None:
    """The model's own ``task`` when its class or the instance sets one, else
    ``default`` (the data's task): BaseModel's class-level ``"regression"`` is only a
    placeholder and says nothing about a subclass that never set it."""
    if "task" in getattr(model, "__dict__", {}):
        task = model.__dict__["task"]
    else:
        owner = next((c for c in type(model).__mro__ if "task" in vars(c)), None)
        if owner is None or owner is BaseModel:
            return default
        task = getattr(model, "task", None)
    return task if task in _TASKS else default


def predictions(model: BaseModel, X: Any) -> np.ndarray:
    """``model.predict(X)``; ``forward`` on the raw array for a model that never ran
    BaseModel's set-up (which the inherited ``predict`` would need)."""
    if hasattr(model, "is_trained") or type(model).predict is not BaseModel.predict:
        return np.asarray(model.predict(X))
    return np.asarray(model.forward(np.ascontiguousarray(X)))


def model_outputs(
    model: BaseModel, X: Any, task: str | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(y_pred, proba)``: labels and class probabilities, or values and None.

    For a softmax classifier ``proba`` has shape (n_samples, n_classes); for a sigmoid
    (binary) classifier it is the positive-class probability, shape (n_samples,).
    ``task`` (the data's) applies when the model does not say its own. ``X`` may be
    a streamed split (image files, see :mod:`mlx.datasets.streaming`): it is then
    predicted batch by batch as workers decode it.
    """
    chunks = getattr(X, "chunks", None)
    if chunks is not None:
        parts = [predictions(model, chunk) for chunk in chunks()]
        output = np.concatenate(parts) if parts else predictions(model, X[:0])
    else:
        output = predictions(model, X)
    if model_task(model, task) != "classification":
        return output, None
    if output.ndim == 1:
        return (output >= 0.5).astype(np.int64), output
    return np.argmax(output, axis=1).astype(np.int64), output


def model_logits(model: BaseModel, X: Any) -> np.ndarray | None:
    """``model.predict_logits(X)`` (a streamed split batch by batch, as
    :func:`model_outputs`), or None when the model gives no logits (it has no such
    method, or BaseModel's default says so)."""
    method = getattr(model, "predict_logits", None)
    if method is None:
        return None
    chunks = getattr(X, "chunks", None)
    if chunks is None:
        output = method(X)
        return None if output is None else np.asarray(output)
    parts = [method(chunk) for chunk in chunks()]
    if not parts or any(part is None for part in parts):
        return None
    return np.concatenate([np.asarray(part) for part in parts])


def _optional(model: BaseModel, name: str) -> Any:
    # an informational read: a model without the attribute (or whose inherited
    # default needs state it never built) is unknown, not a failed run
    try:
        return getattr(model, name)
    except Exception:
        return None


def parameter_count(model: BaseModel, n_features: int | None = None) -> int | None:
    """Number of learned scalars, or None when the model does not say.

    A model that builds its parameters from the data counts none before it has
    seen any (a closed-form linear regression before its fit); given the width of
    the data it will see, ``n_features``, such a model is asked what it will have
    (its ``parameters_for(n_features)``), so a run announces the count that its
    summary, ``mlx eval`` and the dry run report.
    """
    value = _optional(model, "n_parameters")
    if value == 0 and n_features is not None:
        planned = _optional(model, "parameters_for")
        if callable(planned):
            try:
                value = planned(n_features)
            except Exception:
                return None  # informational, as _optional
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def n_features(model: BaseModel) -> int | None:
    """Number of input features the model was built or trained for, or None."""
    value = _optional(model, "n_features_in_")
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def architecture(model: BaseModel) -> dict[str, Any] | None:
    """The model's ``architecture()`` as JSON-ready values, or None when it has none
    to tell (BaseModel's empty default says nothing about a model that never ran
    BaseModel's set-up)."""
    method = getattr(type(model), "architecture", None)
    if method is None or (
        method is BaseModel.architecture and not hasattr(model, "is_trained")
    ):
        return None
    try:
        value = model.architecture()
    except Exception:
        return None
    if not isinstance(value, dict):
        return None
    return dict(jsonable(value))
