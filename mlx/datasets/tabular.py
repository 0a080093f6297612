"""The ``custom`` dataset: features and labels from CSV, NPZ, NPY or Parquet files.

Formats, chosen by the file suffix of ``dataset.path``:

``.csv``
    A header row, then one sample per row. The ``target`` parameter names the label
    column (default: the last column); every other column is a numeric feature.
``.npz``
    Arrays ``X`` (n_samples, n_features) and ``y`` (n_samples,), read with
    ``allow_pickle=False``.
``.npy``
    ``dataset.path`` is the features file, whose name ends in ``X`` (``X.npy``,
    ``train_X.npy``); the labels are the file beside it with that final ``X``
    replaced by ``y`` (``y.npy``, ``train_y.npy``).
``.parquet`` / ``.pq``
    Like CSV, read with pyarrow (``pip install 'model-harness[data]'``).

Labels become model targets as :mod:`mlx.datasets.tabular_labels` says (strings are
classes; numbers are classes or regression targets by the ``task`` parameter, the
model, or what they look like). Features are float64; NaN and infinite features are
rejected unless ``allow_nan`` is true; labels must always be finite. Each format has
its reader: :mod:`~mlx.datasets.tabular_csv`, :mod:`~mlx.datasets.tabular_numpy`,
:mod:`~mlx.datasets.tabular_parquet`.
"""

from __future__ import annotations

import csv
import dataclasses
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mlx.datasets._checks import check_bool, check_regular_file, param, show_path
from mlx.datasets.tabular_csv import (
    csv_columns,
    csv_shape,
    read_csv,
    read_csv_columns,
)
from mlx.datasets.tabular_labels import (
    TASKS,
    Table,
    encode_labels,
    infer_task,
    label_problems,
    task_param,
)
from mlx.datasets.tabular_numpy import (
    check_array_shapes,
    features_path_to_labels,
    npy_pair_header,
    npz_header,
    read_npy_pair,
    read_npz,
)
from mlx.datasets.tabular_parquet import (
    parquet_columns,
    parquet_shape,
    read_parquet,
    read_parquet_columns,
)
from mlx.errors import BackendUnavailableError, DatasetError, map_os_errors

__all__ = [
    "CustomShape",
    "TabularData",
    "custom_shape",
    "features_path_to_labels",
    "load_custom",
    "provenance",
    "read_data_file",
]


_SUFFIXES = (".csv", ".npz", ".npy", ".parquet", ".pq")


@dataclasses.dataclass(frozen=True)
class TabularData:
    """A custom dataset after reading and label encoding.

    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), int64 (classification) or float64 (regression)
    """

    X: np.ndarray
    y: np.ndarray
    task: str
    n_classes: int | None
    class_names: tuple[Any, ...] | None
    feature_names: tuple[str, ...]
    #: the ``group_column`` and ``id_column`` value of each row (text), if named
    groups: np.ndarray | None = None
    ids: np.ndarray | None = None


# -- entry points -------------------------------------------------------------------


def load_custom(
    path: str | None, params: Mapping[str, Any], model_task: str | None = None
) -> TabularData:
    """Read the custom dataset at ``path`` according to ``params``.

    ``model_task`` is the task of the model the data is for: when the ``task``
    parameter is absent, the labels are read for that task (see
    :func:`encode_labels`).
    """
    task = task_param(params)
    file, (X, labels, names, where), keys = read_data_file(path, params)
    y, task, n_classes, class_names = encode_labels(
        labels, task, where, source=str(file), model_task=model_task
    )
    return TabularData(
        X,
        y,
        task,
        n_classes,
        class_names,
        names,
        groups=keys.get("group_column"),
        ids=keys.get("id_column"),
    )


def read_data_file(
    path: str | None, params: Mapping[str, Any]
) -> tuple[Path, Table, dict[str, np.ndarray]]:
    """The file at ``path``, what its format's reader found in it (features, raw
    labels not encoded yet, feature names and where each label is) and the values
    of its ``group_column`` and ``id_column``, by parameter name, when named (those
    columns are no features)."""
    file = _existing_file(path)
    allow_nan = check_bool("custom", "allow_nan", param(params, "allow_nan", False))
    target = _target_param(params)
    suffix = file.suffix.lower()
    columns = _key_columns(file, params)
    skip = tuple(columns.values())
    unreadable = "{path}: cannot be read ({reason})."
    with map_os_errors(DatasetError, unreadable, path=show_path(file)):
        keys = _read_key_columns(file, columns)
        if suffix == ".csv":
            table = read_csv(file, target, allow_nan, skip)
        elif suffix == ".npz":
            table = read_npz(file, allow_nan)
        elif suffix == ".npy":
            table = read_npy_pair(file, allow_nan)
        else:
            table = read_parquet(file, target, allow_nan, skip)
    return file, table, keys


def provenance(
    params: Mapping[str, Any],
    task: str,
    class_names: tuple[Any, ...] | None,
    model_task: str | None,
) -> dict[str, Any]:
    """What a custom dataset's preprocessing records of its task (and who set
    it) and of its classes."""
    if params.get("task") is not None:
        set_by = "dataset.params.task"
    elif model_task is not None:
        set_by = "model"
    else:
        set_by = "labels"
    record: dict[str, Any] = {"task": {"value": task, "set_by": set_by}}
    if class_names is not None:
        record["labels"] = {"classes": list(class_names)}
    return record


@dataclasses.dataclass(frozen=True)
class CustomShape:
    """What :func:`custom_shape` found; ``None`` where unknown.

    ``task`` is the ``task`` parameter; ``label_task`` the task the labels suggest
    on their own (read from .npy/.npz labels), which the model's task overrides.
    ``problem`` says what would make loading fail; ``label_problems`` what the
    labels would fail on, by the model's task ("" for a model whose task is not
    known: the labels decide).
    """

    n_samples: int | None = None
    n_features: int | None = None
    task: str | None = None
    label_task: str | None = None
    notes: tuple[str, ...] = ()
    problem: str | None = None
    label_problems: Mapping[str, str] = dataclasses.field(default_factory=dict)


def custom_shape(path: str | None, params: Mapping[str, Any]) -> CustomShape:
    """Cheap shape, task and problems of a custom dataset.

    Reads headers only (plus the label array of .npy and .npz data), never raises:
    ``problem`` says what would make loading fail (a missing file or target
    column, a pickled, truncated or misnamed array, X and y of different lengths).
    """
    task = params.get("task") if params.get("task") in TASKS else None
    try:
        file = _existing_file(path)
        suffix = file.suffix.lower()
        if suffix == ".csv":
            n_rows, n_features, notes = csv_shape(file, _target_param(params))
            n_features -= _check_key_columns(file, params, csv_columns(file))
            return CustomShape(n_rows, n_features, task, notes=notes)
        if suffix in (".parquet", ".pq"):
            n_rows, n_features = parquet_shape(file)
            n_features -= _check_key_columns(file, params, parquet_columns(file))
            return CustomShape(n_rows, n_features, task)
        header = npz_header(file) if suffix == ".npz" else npy_pair_header(file)
        x_name, x_shape, x_dtype, y_name, y = header
        y = check_array_shapes(x_name, x_shape, x_dtype, y_name, y)
        if y.dtype.kind == "S":
            y = y.astype(str)
        label_task = infer_task(np.asarray(y).ravel())
        problems = label_problems(np.asarray(y).ravel(), params, file, y_name)
        return CustomShape(
            x_shape[0], x_shape[1], task, label_task, label_problems=problems
        )
    except (
        DatasetError,
        BackendUnavailableError,
        OSError,
        ValueError,
        KeyError,
        EOFError,
        csv.Error,
        zipfile.BadZipFile,
    ) as exc:
        return CustomShape(task=task, notes=(str(exc),), problem=str(exc))


# -- parameters and paths -----------------------------------------------------------


def _existing_file(path: str | None) -> Path:
    if not path:
        raise DatasetError(
            "The custom dataset needs 'dataset.path': a .csv, .npz, X .npy or "
            ".parquet file."
        )
    file = Path(path)
    check_regular_file(file, "custom dataset file")
    if file.suffix.lower() not in _SUFFIXES:
        raise DatasetError(
            f"custom dataset file {show_path(file)} has an unsupported suffix "
            f"{file.suffix!r}; expected one of {', '.join(_SUFFIXES)}."
        )
    return file


def _key_columns(file: Path, params: Mapping[str, Any]) -> dict[str, str]:
    """The ``group_column`` and ``id_column`` parameters that are set, by name;
    DatasetError for a file format without named columns."""
    columns = {}
    for key in ("group_column", "id_column"):
        column = params.get(key)
        if column is None:
            continue
        if not isinstance(column, str):
            raise DatasetError(
                f"The {key!r} parameter of custom must be a column name; got "
                f"{column!r}."
            )
        if file.suffix.lower() not in (".csv", ".parquet", ".pq"):
            raise DatasetError(
                f"dataset.params.{key} names a column, but {show_path(file)} has "
                "no named columns; it needs CSV or Parquet data."
            )
        columns[key] = column
    return columns


def _check_key_columns(
    file: Path, params: Mapping[str, Any], names: Sequence[str]
) -> int:
    """How many of ``names`` (a file's columns) the key columns take from the
    features; DatasetError naming the one the file lacks."""
    columns = _key_columns(file, params)
    for key, column in columns.items():
        if column not in names:
            raise DatasetError(
                f"{file}: {key} column {column!r} not found; the columns are "
                f"{', '.join(repr(n) for n in names)}."
            )
    return len(columns)


def _read_key_columns(file: Path, columns: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The group and id of each row (:func:`_key_columns`): no group or id may be
    empty, and no id may repeat (predictions are joined back by it)."""
    if not columns:
        return {}
    if file.suffix.lower() == ".csv":
        found = read_csv_columns(file, columns)
    else:
        found = read_parquet_columns(file, columns)
    for key, values in found.items():
        empty = np.flatnonzero(values == "")
        if len(empty):
            raise DatasetError(
                f"{show_path(file)}: data row {int(empty[0])}: {key} "
                f"{columns[key]!r} is empty; every row needs one."
            )
    ids = found.get("id_column")
    if ids is not None:
        unique, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            value = unique[np.argmax(counts > 1)]
            rows = np.flatnonzero(ids == value)[:2].tolist()
            raise DatasetError(
                f"{show_path(file)}: id_column {columns['id_column']!r} holds "
                f"{str(value)!r} twice (data rows {rows[0]} and {rows[1]}); ids must "
                "be unique to join predictions back to their rows."
            )
    return found


def _target_param(params: Mapping[str, Any]) -> str | None:
    target = params.get("target")
    if target is not None and not isinstance(target, str):
        raise DatasetError(
            f"The 'target' parameter of custom must be a column name; got {target!r}."
        )
    return target
