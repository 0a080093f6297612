"""Parquet files of the custom dataset, read like CSV with pyarrow (the ``data``
extra, imported when a Parquet file is read)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any, Mapping, Sequence

import numpy as np

from mlx.datasets.tabular_labels import Table, check_finite_features
from mlx.errors import BackendUnavailableError, DatasetError

__all__ = ["parquet_columns", "parquet_shape", "read_parquet", "read_parquet_columns"]

_DATA_EXTRA = "pip install 'model-harness[data]'"


def import_parquet() -> ModuleType:
    """``pyarrow.parquet``; BackendUnavailableError when pyarrow is not installed."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise BackendUnavailableError(
            "Reading Parquet files needs pyarrow, which is not installed; "
            f"install it with: {_DATA_EXTRA}",
            hint=_DATA_EXTRA,
        ) from None
    return pq


def parquet_shape(file: Path) -> tuple[int, int]:
    """(rows, feature columns) of a Parquet file, from its metadata alone."""
    meta = import_parquet().read_metadata(file)
    return meta.num_rows, meta.num_columns - 1


def read_parquet(
    file: Path, target: str | None, allow_nan: bool, skip: Sequence[str] = ()
) -> Table:
    """Features, labels, feature names and label locator of a Parquet file; the
    ``target`` column (default: the last) holds the labels, the columns named in
    ``skip`` (read by :func:`read_parquet_columns`) are no features."""
    pq = import_parquet()
    import pyarrow as pa

    try:
        table = pq.read_table(file)
    except (OSError, pa.ArrowException) as exc:
        raise DatasetError(f"{file}: cannot read as Parquet ({exc}).") from None
    names = list(table.column_names)
    if target is None:
        target = names[-1] if names else None
    if target is None or target not in names:
        raise DatasetError(
            f"{file}: target column {target!r} not found; the columns are "
            f"{', '.join(repr(n) for n in names)}."
        )
    if len(names) < 2:
        raise DatasetError(f"{file}: at least one feature column is needed.")
    if table.num_rows == 0:
        raise DatasetError(f"{file}: the table has no rows.")
    feature_names = [n for n in names if n != target and n not in skip]
    if not feature_names:
        raise DatasetError(f"{file}: no feature column is left.")
    X = np.empty((table.num_rows, len(feature_names)), dtype=np.float64)
    for j, name in enumerate(feature_names):
        column = _decoded(table.column(name))
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            if not pa.types.is_boolean(column.type):
                raise DatasetError(
                    f"{file}: column {name!r} has type {column.type}; "
                    "feature columns must be numeric."
                )
        X[:, j] = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    label_column = _decoded(table.column(target))
    if label_column.null_count:
        first = label_column.to_pylist().index(None)
        raise DatasetError(f"{file}: row {first}: target {target!r} is missing.")
    if pa.types.is_string(label_column.type) or pa.types.is_large_string(
        label_column.type
    ):
        labels = np.array(label_column.to_pylist(), dtype=str)
    else:
        labels = label_column.to_numpy(zero_copy_only=False)

    def where_x(row: int, column: int) -> str:
        return f"{file}: row {row}: column {feature_names[column]!r}"

    if not allow_nan:
        check_finite_features(X, where_x)
    return X, labels, tuple(feature_names), lambda i: f"{file}: row {i}: {target!r}"


def _decoded(column: Any) -> Any:
    """A dictionary-encoded column (a pandas ``Categorical`` written to Parquet) as
    the plain column of its values, strings or numbers; any other as it is."""
    import pyarrow as pa

    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def parquet_columns(file: Path) -> list[str]:
    """The column names of a Parquet file, from its schema alone."""
    return list(import_parquet().read_schema(file).names)


def read_parquet_columns(
    file: Path, columns: Mapping[str, str]
) -> dict[str, np.ndarray]:
    """The values of named columns as text, one per row. ``columns`` maps the
    parameter that names a column (``id_column``) to the column; the result is
    keyed the same. A missing value is a DatasetError naming the row."""
    pq = import_parquet()
    import pyarrow as pa

    try:
        names = list(pq.read_schema(file).names)
    except (OSError, pa.ArrowException) as exc:
        raise DatasetError(f"{file}: cannot read as Parquet ({exc}).") from None
    found: dict[str, np.ndarray] = {}
    for key, column in columns.items():
        if column not in names:
            raise DatasetError(
                f"{file}: {key} column {column!r} not found; the columns are "
                f"{', '.join(repr(n) for n in names)}."
            )
        values = _decoded(pq.read_table(file, columns=[column]).column(0))
        if values.null_count:
            first = values.to_pylist().index(None)
            raise DatasetError(f"{file}: row {first}: {key} {column!r} is missing.")
        found[key] = np.array([str(v) for v in values.to_pylist()], dtype=str)
    return found
