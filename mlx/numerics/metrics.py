"""Evaluation metrics, equal to scikit-learn's (to 1e-12) without depending on it.

Classification
    :func:`accuracy`, :func:`precision`, :func:`recall`, :func:`f1_score`
    (``average="macro"`` by default; also ``"micro"``, ``"weighted"``, ``"binary"``),
    :func:`log_loss`, :func:`roc_auc`, :func:`confusion_matrix`.
Regression
    :func:`mse`, :func:`rmse`, :func:`mae`, :func:`r2` (multi-output targets are
    averaged uniformly over outputs, as scikit-learn's default does).

Conventions
    * Class labels are the sorted union of ``y_true`` and ``y_pred``, or
      ``0 .. n_classes - 1`` when ``n_classes`` is given (labels outside that range are
      an error).
    * Probability columns are classes ``0 .. k - 1``; a 1-D probability vector is the
      probability of class 1 of a binary problem.
    * An undefined ratio (precision of a class never predicted, recall of a class never
      present) counts as 0.0, which is scikit-learn's default ``zero_division``
      result; unlike scikit-learn, no warning is issued.
    * :func:`r2` of a constant target is 1.0 for a perfect prediction, else 0.0
      (scikit-learn's ``force_finite``); with fewer than two samples it is NaN.

:data:`METRICS` maps every metric name (including the variants ``precision_micro``,
``f1_score_weighted``, ...) to a :class:`MetricInfo`; :func:`compute_metrics` computes a
list of them into a JSON-serialisable dict.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from mlx.errors import ConfigError, ModelError
from mlx.utils.values import nearest

__all__ = [
    "AVERAGES",
    "DEFAULT_METRICS",
    "METRICS",
    "TASKS",
    "MetricInfo",
    "accuracy",
    "available_metrics",
    "compute_metrics",
    "confusion_matrix",
    "f1_score",
    "log_loss",
    "mae",
    "mse",
    "precision",
    "r2",
    "recall",
    "rmse",
    "roc_auc",
    "validate_metric_names",
]

TASKS = ("classification", "regression")
AVERAGES = ("macro", "micro", "weighted", "binary")
_MULTIOUTPUT = ("uniform_average", "raw_values")

# -- input checks --------------------------------------------------------------------


def _as_labels(y: Any, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise ModelError(
            f"{name} must be a 1-D array of class labels of shape (n_samples,); "
            f"got shape {arr.shape}."
        )
    if arr.size == 0:
        raise ModelError(f"{name} must hold at least one sample; got an empty array.")
    return arr


def _check_same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ModelError(
            f"{name_a} and {name_b} must have the same number of samples; got "
            f"{a.shape[0]} and {b.shape[0]}."
        )


def _check_n_classes(n_classes: Any) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise ModelError(f"n_classes must be an integer >= 1; got {n_classes!r}.")
    if n_classes < 1:
        raise ModelError(f"n_classes must be an integer >= 1; got {n_classes}.")
    return int(n_classes)


def _encode(
    y_true: Any, y_pred: Any, n_classes: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, true_index, pred_index)``: the class labels and each sample's
    position in them. ``labels`` is of shape (n_labels,)."""
    t = _as_labels(y_true, "y_true")
    p = _as_labels(y_pred, "y_pred")
    _check_same_length(t, p, "y_true", "y_pred")
    if n_classes is None:
        try:
            labels = np.unique(np.concatenate([t, p]))
        except TypeError as exc:
            raise ModelError(
                f"y_true and y_pred must hold labels of one comparable type: {exc}."
            ) from exc
    else:
        labels = np.arange(_check_n_classes(n_classes))
    indices = []
    for arr, name in ((t, "y_true"), (p, "y_pred")):
        idx = np.clip(np.searchsorted(labels, arr), 0, labels.size - 1)
        outside = labels[idx] != arr
        if np.any(outside):
            raise ModelError(
                f"{name} must hold class labels in 0..{labels.size - 1} "
                f"(n_classes={labels.size}); got {arr[outside][0].item()!r}."
            )
        indices.append(idx)
    return labels, indices[0], indices[1]


def _counts(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class: true positives, predicted count, true count (support)."""
    return np.diag(cm).astype(np.float64), cm.sum(axis=0), cm.sum(axis=1)


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # 0/0 is scikit-learn's zero_division default: 0.0 (here without the warning)
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _check_average(average: str) -> str:
    if average not in AVERAGES:
        raise ModelError(
            f"average must be one of {', '.join(map(repr, AVERAGES))}; got {average!r}."
        )
    return average


# -- classification ------------------------------------------------------------------


def confusion_matrix(
    y_true: Any, y_pred: Any, n_classes: int | None = None
) -> np.ndarray:
    """Counts of (true class, predicted class) pairs.

    y_true, y_pred : array-like of shape (n_samples,)

    Returns an int64 ndarray of shape (n_labels, n_labels): rows are true classes,
    columns predicted classes, both in label order (see the module conventions).
    """
    labels, t, p = _encode(y_true, y_pred, n_classes)
    k = labels.size
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


def accuracy(y_true: Any, y_pred: Any, n_classes: int | None = None) -> float:
    """Fraction of samples whose predicted label equals the true one.

    y_true, y_pred : array-like of shape (n_samples,)
    """
    _, t, p = _encode(y_true, y_pred, n_classes)
    return float(np.mean(t == p))


def _prf(
    kind: str,
    y_true: Any,
    y_pred: Any,
    average: str,
    n_classes: int | None,
    pos_label: Any,
) -> float:
    _check_average(average)
    labels, t, p = _encode(y_true, y_pred, n_classes)
    k = labels.size
    cm = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    tp, predicted, support = _counts(cm)
    if average == "micro":
        tp, predicted, support = tp.sum(), predicted.sum(), support.sum()
    if kind == "precision":
        scores = _divide(tp, predicted)
    elif kind == "recall":
        scores = _divide(tp, support)
    else:
        # F1 from counts, as scikit-learn computes it: 2 tp / (2 tp + fp + fn)
        scores = _divide(2.0 * tp, support + predicted)
    if average == "micro":
        return float(scores)
    if average == "macro":
        return float(np.mean(scores))
    if average == "weighted":
        if support.sum() == 0:
            return 0.0
        return float(np.average(scores, weights=support))
    # binary: the score of the positive class
    if k > 2:
        raise ModelError(
            f"average='binary' needs at most two classes; got {k} "
            f"({', '.join(map(str, labels.tolist()))}). Use 'macro', 'micro' or "
            "'weighted'."
        )
    where = [i for i, label in enumerate(labels.tolist()) if label == pos_label]
    if not where and k == 2:
        raise ModelError(
            f"pos_label={pos_label!r} is not one of the labels "
            f"{', '.join(map(repr, labels.tolist()))}."
        )
    # a positive class that never occurs scores 0 (zero_division)
    return float(scores[where[0]]) if where else 0.0


def precision(
    y_true: Any,
    y_pred: Any,
    average: str = "macro",
    n_classes: int | None = None,
    pos_label: Any = 1,
) -> float:
    """Precision ``tp / (tp + fp)``, averaged over classes.

    y_true, y_pred : array-like of shape (n_samples,)
    average : ``"macro"`` (unweighted mean over classes), ``"micro"`` (from global
        counts), ``"weighted"`` (mean weighted by support) or ``"binary"`` (the class
        ``pos_label`` only).
    """
    return _prf("precision", y_true, y_pred, average, n_classes, pos_label)


def recall(
    y_true: Any,
    y_pred: Any,
    average: str = "macro",
    n_classes: int | None = None,
    pos_label: Any = 1,
) -> float:
    """Recall ``tp / (tp + fn)``, averaged over classes (see :func:`precision`)."""
    return _prf("recall", y_true, y_pred, average, n_classes, pos_label)


def f1_score(
    y_true: Any,
    y_pred: Any,
    average: str = "macro",
    n_classes: int | None = None,
    pos_label: Any = 1,
) -> float:
    """F1 ``2 tp / (2 tp + fp + fn)`` per class, averaged over classes (see
    :func:`precision`); the macro F1 is the mean of per-class F1 scores."""
    return _prf("f1", y_true, y_pred, average, n_classes, pos_label)


def _as_proba(proba: Any, name: str, n_samples: int) -> np.ndarray:
    """Class scores as a float array of shape (n_samples, n_columns); a 1-D input
    becomes the two columns ``[1 - p, p]``."""
    arr = np.asarray(proba)
    if arr.dtype != np.float32:
        arr = arr.astype(np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()
    if arr.ndim == 1:
        arr = np.stack([1 - arr, arr], axis=1)
    if arr.ndim != 2:
        raise ModelError(
            f"{name} must be of shape (n_samples,) or (n_samples, n_classes); "
            f"got shape {np.shape(proba)}."
        )
    if arr.shape[0] != n_samples:
        raise ModelError(
            f"y_true and {name} must have the same number of samples; got "
            f"{n_samples} and {arr.shape[0]}."
        )
    if not np.all(np.isfinite(arr)):
        raise ModelError(f"{name} must be finite; it contains NaN or infinity.")
    return arr


def _class_index(y_true: Any, n_columns: int, n_classes: int | None) -> np.ndarray:
    t = _as_labels(y_true, "y_true")
    k = n_columns if n_classes is None else _check_n_classes(n_classes)
    if k != n_columns:
        raise ModelError(
            f"The probabilities have {n_columns} columns but n_classes is {k}."
        )
    if t.dtype.kind not in "iub" and not (
        t.dtype.kind == "f" and np.all(np.mod(t, 1) == 0)
    ):
        raise ModelError(
            f"y_true must hold integer class labels 0..{k - 1}; got dtype {t.dtype}."
        )
    idx = t.astype(np.int64)
    bad = (idx < 0) | (idx >= k)
    if np.any(bad):
        raise ModelError(
            f"y_true must hold class labels in 0..{k - 1} (one per probability "
            f"column); got {t[bad][0].item()!r}."
        )
    return idx


def log_loss(y_true: Any, proba: Any, n_classes: int | None = None) -> float:
    """Mean negative log-likelihood of the true classes (natural log).

    y_true : array-like of shape (n_samples,), integer labels 0..k-1
    proba : array-like of shape (n_samples, k), or (n_samples,) holding the
        probability of class 1 of a binary problem

    Probabilities are clipped to ``[eps, 1 - eps]`` (``eps`` of their float type), as
    in scikit-learn, so a confident mistake gives a large finite loss.
    """
    n = _as_labels(y_true, "y_true").shape[0]
    p = _as_proba(proba, "proba", n)
    if np.any(p < 0) or np.any(p > 1):
        raise ModelError("proba must hold probabilities in [0, 1].")
    idx = _class_index(y_true, p.shape[1], n_classes)
    eps = np.finfo(p.dtype).eps
    clipped = np.clip(p, eps, 1 - eps)
    return float(-np.mean(np.log(clipped[np.arange(n), idx])))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``; tied values share the mean of their ranks."""
    n = values.shape[0]
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts_group = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    group = np.cumsum(starts_group) - 1
    starts = np.flatnonzero(starts_group)
    sizes = np.diff(np.append(starts, n))
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = (starts + (sizes + 1) / 2.0)[group]
    return ranks


def _binary_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    # Mann-Whitney U: with average ranks a tie counts one half, exactly like the
    # trapezoids under scikit-learn's ROC curve
    n_pos = int(positive.sum())
    n_neg = positive.shape[0] - n_pos
    ranks = _average_ranks(scores)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_auc(y_true: Any, scores: Any, n_classes: int | None = None) -> float:
    """Area under the ROC curve.

    y_true : array-like of shape (n_samples,)
    scores : array-like of shape (n_samples,) or (n_samples, 2) for a binary problem
        (the score of the greater label, i.e. column 1), or (n_samples, k) with k >= 3
        class probabilities, for the one-vs-rest macro average over classes 0..k-1.

    Every class scored must be present in ``y_true`` (otherwise the AUC is undefined,
    and ModelError is raised, as scikit-learn raises ValueError).
    """
    t = _as_labels(y_true, "y_true")
    raw = np.asarray(scores)
    if raw.ndim == 1 or (raw.ndim == 2 and raw.shape[1] <= 2):
        s = _as_proba(scores, "scores", t.shape[0])[:, 1]
        if n_classes is not None and _check_n_classes(n_classes) != 2:
            raise ModelError(
                f"Binary scores of shape {raw.shape} need n_classes=2; got {n_classes}."
            )
        present = np.unique(t)
        if present.size != 2:
            raise ModelError(
                "roc_auc needs both classes in y_true; got only "
                f"{', '.join(map(str, present.tolist()))}."
            )
        return _binary_auc(t == present[1], s)
    s = _as_proba(scores, "scores", t.shape[0])
    idx = _class_index(t, s.shape[1], n_classes)
    aucs = []
    for c in range(s.shape[1]):
        positive = idx == c
        if positive.all() or not positive.any():
            state = "the only one" if positive.any() else "absent"
            raise ModelError(
                f"roc_auc (one-vs-rest) needs every class 0..{s.shape[1] - 1} in "
                f"y_true; class {c} is {state}."
            )
        aucs.append(_binary_auc(positive, s[:, c]))
    return float(np.mean(aucs))


# -- regression ----------------------------------------------------------------------


def _targets(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both as float arrays of shape (n_samples, n_outputs)."""
    arrays = []
    for y, name in ((y_true, "y_true"), (y_pred, "y_pred")):
        arr = np.asarray(y, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ModelError(
                f"{name} must be of shape (n_samples,) or (n_samples, n_outputs); "
                f"got shape {arr.shape}."
            )
        if arr.shape[0] == 0:
            raise ModelError(f"{name} must hold at least one sample; got none.")
        if not np.all(np.isfinite(arr)):
            raise ModelError(f"{name} must be finite; it contains NaN or infinity.")
        arrays.append(arr)
    t, p = arrays
    if t.shape != p.shape:
        raise ModelError(
            f"y_true and y_pred must have the same shape; got {np.shape(y_true)} and "
            f"{np.shape(y_pred)}."
        )
    return t, p


def _reduce(per_output: np.ndarray, multioutput: str) -> float | np.ndarray:
    if multioutput == "raw_values":
        return per_output
    if multioutput != "uniform_average":
        raise ModelError(
            "multioutput must be 'uniform_average' or 'raw_values'; got "
            f"{multioutput!r}."
        )
    return float(np.mean(per_output))


def mse(
    y_true: Any, y_pred: Any, multioutput: str = "uniform_average"
) -> float | np.ndarray:
    """Mean squared error.

    y_true, y_pred : array-like of shape (n_samples,) or (n_samples, n_outputs)
    multioutput : ``"uniform_average"`` (a float: the mean over outputs) or
        ``"raw_values"`` (an ndarray of shape (n_outputs,)).
    """
    t, p = _targets(y_true, y_pred)
    return _reduce(np.mean((t - p) ** 2, axis=0), multioutput)


def rmse(
    y_true: Any, y_pred: Any, multioutput: str = "uniform_average"
) -> float | np.ndarray:
    """Root mean squared error, per output, then averaged (see :func:`mse`)."""
    t, p = _targets(y_true, y_pred)
    return _reduce(np.sqrt(np.mean((t - p) ** 2, axis=0)), multioutput)


def mae(
    y_true: Any, y_pred: Any, multioutput: str = "uniform_average"
) -> float | np.ndarray:
    """Mean absolute error (see :func:`mse` for shapes)."""
    t, p = _targets(y_true, y_pred)
    return _reduce(np.mean(np.abs(p - t), axis=0), multioutput)


def r2(
    y_true: Any, y_pred: Any, multioutput: str = "uniform_average"
) -> float | np.ndarray:
    """Coefficient of determination ``1 - SS_res / SS_tot``, per output, then
    averaged (see :func:`mse` for shapes and the module notes for constant targets)."""
    t, p = _targets(y_true, y_pred)
    if t.shape[0] < 2:
        return _reduce(np.full(t.shape[1], math.nan), multioutput)
    numerator = ((t - p) ** 2).sum(axis=0)
    denominator = ((t - np.mean(t, axis=0)) ** 2).sum(axis=0)
    scores = np.ones(t.shape[1])
    defined = denominator != 0
    scores[defined] = 1 - numerator[defined] / denominator[defined]
    scores[~defined & (numerator != 0)] = 0.0
    return _reduce(scores, multioutput)


# -- registry ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    """What :data:`METRICS` knows about a metric.

    ``func(y_true, y)`` computes it, where ``y`` is the predicted labels/values, or the
    class probabilities when ``needs_proba``. ``greater_is_better`` is None for
    :func:`confusion_matrix`, which is not a score (``scalar`` False).
    """

    name: str
    func: Callable[..., Any]
    task: str
    needs_proba: bool = False
    greater_is_better: bool | None = True
    scalar: bool = True
    description: str = ""


def _registry() -> dict[str, MetricInfo]:
    entries = [
        MetricInfo("accuracy", accuracy, "classification", description="accuracy"),
    ]
    for base, func, label in (
        ("precision", precision, "precision"),
        ("recall", recall, "recall"),
        ("f1_score", f1_score, "F1 score"),
    ):
        entries.append(
            MetricInfo(base, func, "classification", description=f"macro {label}")
        )
        for average in ("macro", "micro", "weighted"):
            entries.append(
                MetricInfo(
                    f"{base}_{average}",
                    functools.partial(func, average=average),
                    "classification",
                    description=f"{average} {label}",
                )
            )
    entries += [
        MetricInfo(
            "log_loss",
            log_loss,
            "classification",
            needs_proba=True,
            greater_is_better=False,
            description="cross-entropy of the predicted probabilities",
        ),
        MetricInfo(
            "roc_auc",
            roc_auc,
            "classification",
            needs_proba=True,
            description="ROC AUC (one-vs-rest macro for more than two classes)",
        ),
        MetricInfo(
            "confusion_matrix",
            confusion_matrix,
            "classification",
            greater_is_better=None,
            scalar=False,
            description="confusion matrix, rows true and columns predicted classes",
        ),
        MetricInfo("mse", mse, "regression", greater_is_better=False,
                   description="mean squared error"),
        MetricInfo("rmse", rmse, "regression", greater_is_better=False,
                   description="root mean squared error"),
        MetricInfo("mae", mae, "regression", greater_is_better=False,
                   description="mean absolute error"),
        MetricInfo("r2", r2, "regression", description="coefficient of determination"),
    ]  # fmt: skip
    return {info.name: info for info in entries}


#: Every metric by name.
METRICS: dict[str, MetricInfo] = _registry()

#: What ``mlx eval`` computes when no metrics are named.
DEFAULT_METRICS: dict[str, list[str]] = {
    "classification": ["accuracy", "precision", "recall", "f1_score", "log_loss"],
    "regression": ["mse", "rmse", "mae", "r2"],
}


def _check_task(task: Any) -> str:
    if task not in TASKS:
        raise ConfigError(
            f"The task must be one of {', '.join(map(repr, TASKS))}; got {task!r}."
        )
    return str(task)


def available_metrics(task: str) -> list[str]:
    """Names of the metrics that fit ``task`` (``classification`` or ``regression``)."""
    _check_task(task)
    return [name for name, info in METRICS.items() if info.task == task]


def validate_metric_names(names: str | Iterable[str], task: str) -> list[str]:
    """``names`` as a list without duplicates, checked against ``task``.

    Raises ConfigError naming every unknown metric (with the nearest valid name) and
    every metric of the other task, followed by the valid metrics for ``task``.
    """
    _check_task(task)
    requested = [names] if isinstance(names, str) else list(names)
    valid = available_metrics(task)
    problems = []
    result: list[str] = []
    for name in requested:
        if not isinstance(name, str):
            problems.append(f"a metric name must be a string; got {name!r}")
        elif name not in METRICS:
            near = nearest(name, valid) or next(
                (v for v in valid if v.startswith(name.lower())), None
            )
            hint = f" (did you mean {near!r}?)" if near else ""
            problems.append(f"unknown metric {name!r}{hint}")
        elif METRICS[name].task != task:
            problems.append(
                f"{name!r} is a {METRICS[name].task} metric; this is a {task} task"
            )
        elif name not in result:
            result.append(name)
    if not requested:
        problems.append("no metric named")
    if problems:
        raise ConfigError(
            "Invalid metrics: "
            + "; ".join(problems)
            + f". Valid {task} metrics: {', '.join(valid)}."
        )
    return result


def _json_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    return float(value)


def compute_metrics(
    names: Sequence[str] | None,
    task: str,
    y_true: Any,
    y_pred: Any = None,
    proba: Any = None,
    *,
    n_classes: int | None = None,
) -> dict[str, Any]:
    """Compute the metrics ``names`` (default: ``DEFAULT_METRICS[task]``).

    y_true : array-like of shape (n_samples,) (or (n_samples, n_outputs) for
        regression)
    y_pred : predicted labels or values, same shape as ``y_true``. For classification
        it may be None when ``proba`` is given: the most probable class is used.
    proba : array-like of shape (n_samples, n_classes), or (n_samples,) for a binary
        problem; needed by ``log_loss`` and ``roc_auc``. With the default metrics and
        no ``proba``, those are skipped; named explicitly, they raise ModelError.
    n_classes : classification labels are ``0..n_classes-1`` rather than the union of
        ``y_true`` and ``y_pred``.

    Returns ``{name: value}`` in the order asked, with plain Python floats, and the
    confusion matrix as a nested list of ints: ready for ``json.dump``.
    """
    _check_task(task)
    defaults = names is None
    chosen = list(DEFAULT_METRICS[task]) if names is None else names
    selected = validate_metric_names(chosen, task)
    if task == "classification" and y_pred is None:
        if proba is None:
            raise ModelError("compute_metrics needs y_pred or proba; got neither.")
        p = np.asarray(proba, dtype=np.float64)
        y_pred = (
            np.argmax(p, axis=1)
            if p.ndim == 2 and p.shape[1] > 1
            else (p.ravel() > 0.5).astype(np.int64)
        )
    if task == "regression" and y_pred is None:
        raise ModelError("compute_metrics needs y_pred for a regression task.")
    results: dict[str, Any] = {}
    for name in selected:
        info = METRICS[name]
        if info.needs_proba:
            if proba is None:
                if defaults:
                    continue
                raise ModelError(
                    f"The metric {name!r} needs class probabilities (proba); none "
                    "were given."
                )
            value = info.func(y_true, proba, n_classes=n_classes)
        elif task == "classification":
            value = info.func(y_true, y_pred, n_classes=n_classes)
        else:
            value = info.func(y_true, y_pred)
        results[name] = _json_value(value)
    return results
