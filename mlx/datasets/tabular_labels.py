"""Labels and features of the custom dataset, whatever file they came from: raw labels
become model targets (:func:`encode_labels`), features are checked finite.

Labels: strings always mean classification; numbers are classification when the
``task`` parameter says so, or when it is absent and the labels are integers with at
most 20 distinct values and at most half as many distinct values as rows. Class
labels are mapped to 0..n_classes-1 in sorted order; the originals are kept as
``class_names``. Labels must always be finite.
"""

from __future__ import annotations

import dataclasses
import decimal
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Tuple

import numpy as np

from mlx.errors import DatasetError, DataWarning

__all__ = [
    "TASKS",
    "Locator",
    "Table",
    "check_finite_features",
    "encode_labels",
    "infer_task",
    "label_problems",
    "task_param",
]

TASKS = ("classification", "regression")
_MAX_CLASSES_INFERRED = 20

# Describes where a label is, for error messages: index -> "file:line" etc.
Locator = Callable[[int], str]

#: What each file format's reader returns: features X of shape (n_samples,
#: n_features), raw labels of shape (n_samples,), feature names, and where each
#: label is.
Table = Tuple[np.ndarray, np.ndarray, Tuple[str, ...], Locator]


def task_param(params: Mapping[str, Any]) -> str | None:
    """The custom dataset's ``task`` parameter: None, or one of :data:`TASKS`."""
    task = params.get("task")
    if task is not None and task not in TASKS:
        raise DatasetError(
            "The 'task' parameter of custom must be 'classification' or "
            f"'regression'; got {task!r}."
        )
    return task


def check_finite_features(X: np.ndarray, where: Callable[[int, int], str]) -> None:
    """DatasetError naming the first NaN or infinite feature of X (``where(row,
    column)`` says where it is in the file)."""
    finite = np.isfinite(X)
    if finite.all():
        return
    row, column = np.argwhere(~finite)[0]
    raise DatasetError(
        f"{where(int(row), int(column))} is {X[row, column]}; NaN and infinite "
        "features are rejected unless the dataset parameter 'allow_nan' is true."
    )


# What a model of each task is, for messages about a task the labels cannot follow.
_MODEL_KINDS = {
    "regression": "a regression model (an MLP without output_activation, "
    "linear_regression)",
    "classification": "a classifier (an MLP with output_activation sigmoid or softmax)",
}
# Below 2**53 every integer is exactly a float64, so float parsing merges nothing.
_EXACT_FLOAT = 2.0**53


@dataclasses.dataclass(frozen=True)
class _Labels:
    """Raw labels, read once: ``floats`` (None when some label is text) and
    ``exact``, values whose ``np.unique`` never merges two different numbers
    (an int, float or object array of Python ints; None for text)."""

    raw: np.ndarray
    floats: np.ndarray | None
    exact: np.ndarray | None
    fractional: int | None  # index of the first non-integer number, if any


def _read_labels(labels: np.ndarray, where: Locator) -> _Labels:
    kind = labels.dtype.kind
    if kind not in "biufUS":
        raise DatasetError(
            f"{where(0)}: labels of dtype {labels.dtype} are not supported; "
            "labels must be numbers or strings."
        )
    if kind in "US":
        empty = np.flatnonzero(labels == "" if kind == "U" else labels == b"")
        if empty.size:
            raise DatasetError(f"{where(int(empty[0]))}: the label is empty.")
        floats = _try_numeric(labels)
        if floats is None:
            return _Labels(labels, None, None, None)
        if bool(np.all(np.abs(floats) < _EXACT_FLOAT)):
            read = _exact_floats(labels, floats, where)
            hidden = _hidden_fraction(labels, floats)
            if hidden is not None and (
                read.fractional is None or hidden < read.fractional
            ):
                read = dataclasses.replace(read, fractional=hidden)
            return read
        return _exact_texts(labels, floats, where)
    if kind in "biu":
        # integers stay integers: uint64 and int64 labels beyond 2**53 stay distinct
        return _Labels(labels, labels.astype(np.float64), labels, None)
    if labels.dtype.itemsize > 8:
        # long double: more digits than float64, so whole and distinct are decided
        # in its own precision (1 + 2**-63 is no integer, though its float64 is)
        read = _exact_floats(labels, labels, where)
        return dataclasses.replace(read, floats=labels.astype(np.float64))
    return _exact_floats(labels, labels.astype(np.float64), where)


def _exact_floats(raw: np.ndarray, floats: np.ndarray, where: Locator) -> _Labels:
    bad = np.flatnonzero(~np.isfinite(floats))
    if bad.size:
        shown = raw[bad[0]] if raw.dtype.kind in "US" else floats[bad[0]]
        raise DatasetError(
            f"{where(int(bad[0]))}: label is {shown}; labels must be finite."
        )
    fractional = np.flatnonzero(floats != np.round(floats))
    first = int(fractional[0]) if fractional.size else None
    return _Labels(raw, floats, floats, first)


def _hidden_fraction(raw: np.ndarray, floats: np.ndarray) -> int | None:
    """The index of the first text label that is no integer although its float64
    is one, having more digits than a float64 holds (``1.0000000000000000001``,
    ``0.99999999999999999999``, ``1e-400``); None when there is none. Only labels
    written with a point or an exponent can be such, and only those are parsed
    exactly."""
    text = raw if raw.dtype.kind == "U" else np.char.decode(raw, "latin-1")
    marked = np.zeros(text.shape, dtype=bool)
    for mark in (".", "e", "E"):
        marked |= np.char.find(text, mark) >= 0
    for i in np.flatnonzero(marked & (floats == np.round(floats))):
        try:
            number = decimal.Decimal(str(text[i]).strip())
        except decimal.InvalidOperation:
            continue  # float parsing took it; the float decides, as before
        if number.is_finite() and number != number.to_integral_value():
            return int(i)
    return None


# Digits of the largest integer label read exactly (Python's own limit for turning
# text into an int): beyond it a label is refused rather than built in memory.
_MAX_LABEL_DIGITS = 4300


def _exact_texts(raw: np.ndarray, floats: np.ndarray, where: Locator) -> _Labels:
    """Numeric text with values of 2**53 or more: each label parsed exactly, as a
    decimal number (``1e19`` and ``10000000000000000001`` stay apart)."""
    values: list[Any] = []
    fractional = None
    for i, text in enumerate(raw.tolist()):
        text = text.decode() if isinstance(text, bytes) else text
        try:
            number = decimal.Decimal(text.strip())
        except decimal.InvalidOperation:
            raise DatasetError(
                f"{where(i)}: label {text!r} is not a decimal number."
            ) from None
        if not number.is_finite():
            raise DatasetError(f"{where(i)}: label is {text}; labels must be finite.")
        if number.adjusted() >= _MAX_LABEL_DIGITS:
            raise DatasetError(
                f"{where(i)}: label {text} has more than {_MAX_LABEL_DIGITS} digits."
            )
        if number == number.to_integral_value():
            values.append(int(number))
        else:
            fractional = i if fractional is None else fractional
            values.append(float(number))
    exact = np.empty(len(values), dtype=object)
    exact[:] = values
    return _Labels(raw, floats, exact, fractional)


def _infer(labels: _Labels) -> tuple[str, str]:
    """The task the labels suggest on their own, and why, for messages."""
    if labels.exact is None:
        return "classification", "labels that are not numbers"
    if labels.raw.dtype.kind == "b":
        return "classification", "true/false labels"
    if labels.fractional is not None:
        example = labels.raw[labels.fractional]
        return "regression", f"a fractional value such as {example}"
    n_rows = labels.exact.size
    n_distinct = np.unique(labels.exact).size
    counts = f"{n_distinct} distinct integers in {n_rows} rows"
    if n_distinct <= _MAX_CLASSES_INFERRED and 2 * n_distinct <= n_rows:
        return "classification", counts
    return "regression", counts


def label_problems(
    y: np.ndarray, params: Mapping[str, Any], file: Path, y_name: str
) -> dict[str, str]:
    """What :func:`encode_labels` refuses in labels ``y`` (read from ``y_name``),
    keyed by the model's task, "" for a model whose task is not known."""
    task = task_param(params)
    found = {}
    for model_task in ("classification", "regression", None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            try:
                encode_labels(
                    y,
                    task,
                    lambda i: f"{y_name}[{i}]",
                    source=str(file),
                    model_task=model_task,
                )
            except DatasetError as exc:
                found[model_task or ""] = str(exc)
    return found


def infer_task(y: np.ndarray) -> str | None:
    """The inferred task of raw labels, or None when they cannot be read."""
    try:
        return _infer(_read_labels(np.asarray(y).ravel(), lambda i: "y"))[0]
    except (DatasetError, ValueError, TypeError):
        return None


def encode_labels(
    labels: np.ndarray,
    task: str | None,
    where: Locator,
    *,
    source: str = "the dataset",
    model_task: str | None = None,
) -> tuple[np.ndarray, str, int | None, tuple[Any, ...] | None]:
    """Turn raw labels into model targets.

    labels : ndarray of shape (n_samples,), numbers or strings.
    task : the dataset's ``task`` parameter; None infers it from the labels.
    model_task : the task of the model the labels are for; when ``task`` is None it
        decides (a DataWarning names ``source`` when the labels suggested the other
        task), and a ``task`` that contradicts it is an error.

    Returns ``(y, task, n_classes, class_names)``: ``y`` is int64 in
    [0, n_classes) for classification (sorted original labels are ``class_names``)
    and float64 for regression. Distinct labels always stay distinct classes.
    """
    read = _read_labels(labels, where)
    inferred, why = _infer(read)
    if task is not None:
        if model_task is not None and task != model_task:
            raise DatasetError(
                f"{source}: dataset.params.task is {task!r}, but the model is "
                f"{_MODEL_KINDS[model_task]}; make them agree",
                hint=f"set dataset.params.task: {model_task}, or use "
                f"{_MODEL_KINDS[task]}",
            )
        chosen, reason = task, f"dataset.params.task is {task!r}"
    elif model_task is not None:
        chosen, reason = model_task, f"the model is {_MODEL_KINDS[model_task]}"
    else:
        chosen, reason = inferred, f"the labels hold {why}"
    if chosen == "regression":
        result = _regression_targets(read, where, reason)
    else:
        result = _classes(read, where, reason, source)
    if task is None and model_task is not None and chosen != inferred:
        treated = "numeric targets" if chosen == "regression" else "class labels"
        warnings.warn(
            f"{source}: the labels look like {inferred} ({why}), but the model is "
            f"{_MODEL_KINDS[model_task]}; the run follows the model and treats them "
            f"as {treated}. Set dataset.params.task: {chosen} to say so and "
            "silence this warning.",
            DataWarning,
            stacklevel=2,
        )
    return result


def _regression_targets(
    labels: _Labels, where: Locator, reason: str
) -> tuple[np.ndarray, str, int | None, tuple[Any, ...] | None]:
    if labels.floats is None:
        first = _first_non_numeric(labels.raw)
        raise DatasetError(
            f"{where(first)}: label {str(labels.raw[first])!r} is not a number, but "
            f"{reason}, which needs numeric targets.",
            hint="set dataset.params.task: classification and use a classifier "
            "(an MLP with output_activation sigmoid or softmax)",
        )
    bad = np.flatnonzero(~np.isfinite(labels.floats))
    if bad.size:
        raise DatasetError(
            f"{where(int(bad[0]))}: label {labels.raw[bad[0]]} is beyond the float64 "
            f"range, but {reason}, which needs finite float64 targets."
        )
    return labels.floats, "regression", None, None


def _classes(
    labels: _Labels, where: Locator, reason: str, source: str
) -> tuple[np.ndarray, str, int | None, tuple[Any, ...] | None]:
    if labels.fractional is not None:
        i = labels.fractional
        raise DatasetError(
            f"{where(i)}: label {str(labels.raw[i])} is not an integer, but {reason}; "
            "classes need integer or string labels.",
            hint="for continuous targets set dataset.params.task: regression and "
            "use a regression model (an MLP with one output and no "
            "output_activation, or linear_regression)",
        )
    values = labels.raw if labels.exact is None else labels.exact
    classes, y = np.unique(values, return_inverse=True)
    if classes.size < 2:
        only = classes[0]
        shown = repr(str(only)) if labels.exact is None else str(_exact_int(only))
        raise DatasetError(
            f"{source}: classification needs at least 2 classes; every label is "
            f"{shown}."
        )
    if labels.exact is None:
        names: tuple[Any, ...] = tuple(str(c) for c in classes)
    else:
        names = tuple(_exact_int(c) for c in classes)
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    return y, "classification", len(names), names


def _exact_int(value: Any) -> Any:
    """A class label as a Python int (exact, whatever its size)."""
    return int(value)


def _try_numeric(labels: np.ndarray) -> np.ndarray | None:
    try:
        return labels.astype(np.float64)
    except (ValueError, OverflowError):
        return None


def _first_non_numeric(labels: np.ndarray) -> int:
    for i, value in enumerate(labels):
        try:
            float(value)
        except ValueError:
            return i
    return 0
