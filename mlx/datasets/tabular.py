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

Labels: strings always mean classification; numbers are classification when the
``task`` parameter says so, or when it is absent and the labels are integers with at
most 20 distinct values and at most half as many distinct values as rows. Class
labels are mapped to 0..n_classes-1 in sorted order; the originals are kept as
``class_names``. Features are float64; NaN and infinite features are rejected unless
``allow_nan`` is true; labels must always be finite.
"""

from __future__ import annotations

import csv
import dataclasses
import decimal
import os
import stat
import warnings
import zipfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Mapping

import numpy as np

from mlx.datasets._checks import check_bool, param
from mlx.errors import BackendUnavailableError, DatasetError, DataWarning

__all__ = [
    "CustomShape",
    "TabularData",
    "custom_shape",
    "features_path_to_labels",
    "load_custom",
]

_MAX_CLASSES_INFERRED = 20
_CSV_BLOCK_ROWS = 8192
_EXACT_COUNT_LIMIT = 256 * 1024 * 1024
# The longest line of a CSV read, in characters: a file without line breaks (a
# sparse file of NUL bytes, a binary file) fails here instead of being read whole.
_CSV_LINE_LIMIT = 64 * 1024 * 1024
_SUFFIXES = (".csv", ".npz", ".npy", ".parquet", ".pq")
_TASKS = ("classification", "regression")
_DATA_EXTRA = "pip install 'model-harness[data]'"

# Describes where a label is, for error messages: index -> "file:line" etc.
Locator = Callable[[int], str]


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


# -- entry points -------------------------------------------------------------------


def load_custom(
    path: str | None, params: Mapping[str, Any], model_task: str | None = None
) -> TabularData:
    """Read the custom dataset at ``path`` according to ``params``.

    ``model_task`` is the task of the model the data is for: when the ``task``
    parameter is absent, the labels are read for that task (see
    :func:`encode_labels`).
    """
    file = _existing_file(path)
    task = _task_param(params)
    allow_nan = check_bool("custom", "allow_nan", param(params, "allow_nan", False))
    target = _target_param(params)
    suffix = file.suffix.lower()
    try:
        if suffix == ".csv":
            X, labels, names, where = _read_csv(file, target, allow_nan)
        elif suffix == ".npz":
            X, labels, names, where = _read_npz(file, allow_nan)
        elif suffix == ".npy":
            X, labels, names, where = _read_npy_pair(file, allow_nan)
        else:
            X, labels, names, where = _read_parquet(file, target, allow_nan)
    except OSError as exc:
        raise DatasetError(
            f"{show_path(file)}: cannot be read ({exc.strerror or exc})."
        ) from None
    y, task, n_classes, class_names = encode_labels(
        labels, task, where, source=str(file), model_task=model_task
    )
    return TabularData(X, y, task, n_classes, class_names, names)


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
    task = params.get("task") if params.get("task") in _TASKS else None
    try:
        file = _existing_file(path)
        suffix = file.suffix.lower()
        if suffix == ".csv":
            n_rows, n_features, notes = _csv_shape(file, params)
            return CustomShape(n_rows, n_features, task, notes=notes)
        if suffix == ".npz":
            _check_npz_magic(file)
            with zipfile.ZipFile(file) as archive:
                x_shape, x_dtype = _npy_header_in_zip(archive, "X", file)
                _npy_header_in_zip(archive, "y", file)
                with archive.open("y.npy") as handle:
                    y = np.lib.format.read_array(handle, allow_pickle=False)
            x_name, y_name = f"{file}[X]", f"{file}[y]"
        elif suffix == ".npy":
            x_shape, x_dtype = _npy_file_header(file)
            y_file = _labels_file(file)
            y = _load_npy(y_file)
            x_name, y_name = str(file), str(y_file)
        else:
            pq = _import_parquet()
            meta = pq.read_metadata(file)
            return CustomShape(meta.num_rows, meta.num_columns - 1, task)
        y = _check_array_shapes(x_name, x_shape, x_dtype, y_name, y)
        if y.dtype.kind == "S":
            y = y.astype(str)
        label_task = _infer_task(np.asarray(y).ravel())
        problems = _label_problems(np.asarray(y).ravel(), params, file, y_name)
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


def show_path(path: Path | str) -> str:
    """``path`` for a message: as is, or quoted with escapes when it holds control
    characters (which a terminal would otherwise act on or hide)."""
    text = str(path)
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        return repr(text)
    return text


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def check_regular_file(file: Path, what: str) -> None:
    """DatasetError unless ``file`` is a regular file (links followed), saying what
    it is instead. Only ``stat`` is called: a FIFO is never opened, so never
    waited on."""
    shown = show_path(file)
    if "\0" in str(file):
        raise DatasetError(f"{what} {shown}: the path contains a NUL byte.")
    try:
        mode = os.stat(file).st_mode
    except FileNotFoundError:
        raise DatasetError(f"{what} not found: {shown}") from None
    except NotADirectoryError:
        parent = next(
            (p for p in file.parents if p.exists() and not p.is_dir()), file.parent
        )
        raise DatasetError(
            f"{what} not found: {shown} ({show_path(parent)} is a file, not a "
            "directory)"
        ) from None
    except OSError as exc:
        raise DatasetError(
            f"{what} {shown}: cannot be read ({exc.strerror})."
        ) from None
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a file")
    raise DatasetError(
        f"{what} {shown} is {kind}, not a regular file; give the path of a "
        ".csv, .npz, X .npy or .parquet file."
    )


def _task_param(params: Mapping[str, Any]) -> str | None:
    task = params.get("task")
    if task is not None and task not in _TASKS:
        raise DatasetError(
            "The 'task' parameter of custom must be 'classification' or "
            f"'regression'; got {task!r}."
        )
    return task


def _target_param(params: Mapping[str, Any]) -> str | None:
    target = params.get("target")
    if target is not None and not isinstance(target, str):
        raise DatasetError(
            f"The 'target' parameter of custom must be a column name; got {target!r}."
        )
    return target


def features_path_to_labels(x_file: Path) -> Path:
    """The labels file of a ``.npy`` features file: final ``X`` of the name -> ``y``."""
    stem = x_file.stem
    if not stem or stem[-1] not in "Xx":
        raise DatasetError(
            f"{x_file}: a .npy custom dataset is given by its features file, whose "
            "name ends in 'X' (X.npy, train_X.npy); the labels are read from the "
            "same name ending in 'y' beside it."
        )
    return x_file.with_name(stem[:-1] + "y" + x_file.suffix)


# -- CSV ----------------------------------------------------------------------------


def _open_csv(file: Path) -> IO[str]:
    # utf-8-sig: spreadsheets often write a byte-order mark before the header
    return open(file, newline="", encoding="utf-8-sig")


def _csv_lines(file: Path, handle: IO[str]) -> Iterator[str]:
    """The lines of ``handle``, each read with a bounded ``readline``; DatasetError
    naming the line that is longer than :data:`_CSV_LINE_LIMIT` characters."""
    number = 0
    while True:
        line = handle.readline(_CSV_LINE_LIMIT + 1)
        if not line:
            return
        number += 1
        if len(line) > _CSV_LINE_LIMIT:
            raise DatasetError(
                f"{file}:{number}: the line is longer than {_CSV_LINE_LIMIT} "
                "characters; this does not look like a CSV file."
            )
        yield line


def _csv_header(file: Path, reader: Any, target: str | None) -> tuple[list[str], int]:
    try:
        header = next(reader)
    except StopIteration:
        raise DatasetError(
            f"{file}: the file is empty; expected a header row."
        ) from None
    names = [cell.strip() for cell in header]
    if not any(names):
        raise DatasetError(f"{file}:1: the header row is empty.")
    seen = set()
    for column, name in enumerate(names, start=1):
        if not name:
            raise DatasetError(f"{file}:1: column {column} has an empty header name.")
        if name in seen:
            raise DatasetError(f"{file}:1: column name {name!r} appears twice.")
        seen.add(name)
    if target is None:
        target_index = len(names) - 1
    elif target in names:
        target_index = names.index(target)
    else:
        raise DatasetError(
            f"{file}: target column {target!r} not found; the header has "
            f"{', '.join(repr(n) for n in names)}."
        )
    if len(names) < 2:
        raise DatasetError(
            f"{file}:1: the header has only the target column {names[0]!r}; "
            "at least one feature column is needed."
        )
    return names, target_index


def _read_csv(
    file: Path, target: str | None, allow_nan: bool
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], Locator]:
    with _open_csv(file) as handle:
        reader = csv.reader(_csv_lines(file, handle), strict=True)
        row_start = 1  # the line the row being read starts on
        try:
            names, target_index = _csv_header(file, reader, target)
            row_start = reader.line_num + 1
            feature_names = [n for i, n in enumerate(names) if i != target_index]
            feature_columns = [i for i in range(len(names)) if i != target_index]
            blocks: list[np.ndarray] = []
            block: list[list[str]] = []
            block_lines: list[int] = []
            labels: list[str] = []
            lines: list[int] = []
            for row in reader:
                line = reader.line_num
                row_start = line + 1  # where the next row starts
                if not any(cell.strip() for cell in row):
                    continue  # blank line
                if len(row) != len(names):
                    raise DatasetError(
                        f"{file}:{line}: expected {len(names)} fields as in the "
                        f"header, got {len(row)}."
                    )
                block.append([row[i] for i in feature_columns])
                block_lines.append(line)
                labels.append(row[target_index].strip())
                lines.append(line)
                if len(block) == _CSV_BLOCK_ROWS:
                    blocks.append(
                        _csv_block(
                            file, block, block_lines, feature_names, feature_columns
                        )
                    )
                    block, block_lines = [], []
        except csv.Error as exc:
            raise _csv_error(file, exc, row_start, reader.line_num) from None
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{file}: not UTF-8 text ({exc}).") from None
    if block:
        blocks.append(
            _csv_block(file, block, block_lines, feature_names, feature_columns)
        )
    if not labels:
        raise DatasetError(f"{file}: the file has a header but no data rows.")
    X = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]

    def where(index: int) -> str:
        return f"{file}:{lines[index]}: column {names[target_index]!r}"

    def where_x(row: int, column: int) -> str:
        return (
            f"{file}:{lines[row]}: column {feature_names[column]!r} "
            f"(column {feature_columns[column] + 1})"
        )

    if not allow_nan:
        _check_finite_features(X, where_x)
    return X, np.array(labels), tuple(feature_names), where


def _csv_error(file: Path, exc: csv.Error, row_start: int, line: int) -> DatasetError:
    if "unexpected end of data" in str(exc):
        return DatasetError(
            f"{file}:{row_start}: unterminated quote: a quoted field opened in the "
            f"row starting on line {row_start} is never closed (the file ends at "
            f"line {line})."
        )
    return DatasetError(f"{file}:{line}: malformed CSV: {exc}.")


def _csv_block(
    file: Path,
    block: list[list[str]],
    lines: list[int],
    names: list[str],
    columns: list[int],
) -> np.ndarray:
    try:
        return np.array(block, dtype=np.float64)
    except ValueError:
        pass
    # slow path, only to say exactly which cell is wrong
    for row, line in zip(block, lines):
        for column, cell in enumerate(row):
            try:
                float(cell)
            except ValueError:
                shown = "an empty cell" if not cell.strip() else repr(cell)
                raise DatasetError(
                    f"{file}:{line}: column {names[column]!r} (column "
                    f"{columns[column] + 1}) holds {shown}; expected a number."
                ) from None
    raise AssertionError("a cell failed to convert but none was found")


def _csv_shape(
    file: Path, params: Mapping[str, Any]
) -> tuple[int, int, tuple[str, ...]]:
    target = _target_param(params)
    with _open_csv(file) as handle:
        reader = csv.reader(_csv_lines(file, handle), strict=True)
        try:
            names, _ = _csv_header(file, reader, target)
        except csv.Error as exc:
            raise _csv_error(file, exc, 1, reader.line_num) from None
    size = file.stat().st_size
    notes: tuple[str, ...] = ()
    if size <= _EXACT_COUNT_LIMIT:
        n_rows = _count_data_lines(file)
        if n_rows == 0:
            raise DatasetError(f"{file}: the file has a header but no data rows.")
    else:
        n_rows = _estimate_data_lines(file, size)
        notes = ("n_samples estimated from the file size",)
    return (n_rows, len(names) - 1, notes)


def _count_data_lines(file: Path) -> int:
    newlines = 0
    last = b"\n"
    with open(file, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    lines = newlines + (0 if last == b"\n" else 1)
    return max(lines - 1, 0)


def _estimate_data_lines(file: Path, size: int) -> int:
    with open(file, "rb") as handle:
        sample = handle.read(1 << 20)
    per_line = len(sample) / max(sample.count(b"\n"), 1)
    return max(int(size / per_line) - 1, 0)


# -- NumPy files --------------------------------------------------------------------


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def _npy_file_header(file: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a ``.npy`` file, checked as :func:`_load_npy` checks it,
    without reading the array."""
    with _open_npy(file) as handle:
        return _checked_npy_header(handle, file)[:2]


def _open_npy(file: Path) -> IO[bytes]:
    check_regular_file(file, "custom dataset file")
    try:
        return open(file, "rb")
    except OSError as exc:
        raise DatasetError(
            f"{show_path(file)}: cannot be read ({exc.strerror})."
        ) from None


def _checked_npy_header(
    handle: IO[bytes], file: Path
) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data bytes expected) of an open ``.npy``; DatasetError saying
    what the file is when it is not a whole, pickle-free ``.npy`` array."""
    shown = show_path(file)
    start = handle.read(len(_NPY_MAGIC))
    if not start:
        raise DatasetError(
            f"{shown}: the file is empty (0 bytes); expected a .npy array."
        )
    if start.startswith(_ZIP_MAGIC):
        raise DatasetError(
            f"{shown}: this is a .npz archive (zip), not a .npy array; rename it "
            "to .npz and set dataset.path to it."
        )
    if start != _NPY_MAGIC:
        raise DatasetError(
            f"{shown}: not a .npy array (it does not start with the .npy magic bytes)."
        )
    handle.seek(0)
    shape, dtype = _npy_header(handle, shown)
    if dtype.hasobject:
        raise DatasetError(
            f"{shown}: the array holds Python objects (dtype {dtype}), which only "
            "unpickling could read; mlx never unpickles data files. Save it with a "
            "numeric or string dtype."
        )
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
    size = os.fstat(handle.fileno()).st_size
    available = size - handle.tell()
    if available < expected:
        raise DatasetError(
            f"{shown}: the file is truncated: its header says shape {shape} of "
            f"{dtype}, {expected:,} bytes of data, but only {available:,} follow."
        )
    return shape, dtype, expected


def _load_npy(file: Path) -> np.ndarray:
    with _open_npy(file) as handle:
        _checked_npy_header(handle, file)
        handle.seek(0)
        try:
            return np.lib.format.read_array(handle, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DatasetError(
                f"{show_path(file)}: cannot read as .npy ({exc})."
            ) from None


def _npy_header(handle: IO[bytes], name: str) -> tuple[tuple[int, ...], np.dtype]:
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    except ValueError as exc:
        raise DatasetError(f"{name}: not a valid .npy array ({exc}).") from None
    return tuple(shape), dtype


def _npy_header_in_zip(
    archive: zipfile.ZipFile, key: str, file: Path
) -> tuple[tuple[int, ...], np.dtype]:
    try:
        handle = archive.open(key + ".npy")
    except KeyError:
        raise DatasetError(
            f"{file}: no array {key!r}; a .npz custom dataset holds arrays 'X' and 'y'."
        ) from None
    with handle:
        shape, dtype = _npy_header(handle, f"{file}[{key}]")
    if dtype.hasobject:
        raise DatasetError(
            f"{file}[{key}]: the array holds Python objects (dtype {dtype}), which "
            "only unpickling could read; mlx never unpickles data files."
        )
    return shape, dtype


def _read_npz(
    file: Path, allow_nan: bool
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], Locator]:
    _check_npz_magic(file)
    try:
        with np.load(file, allow_pickle=False) as archive:
            missing = [k for k in ("X", "y") if k not in archive.files]
            if missing:
                raise DatasetError(
                    f"{file}: missing array {missing[0]!r}; a .npz custom dataset "
                    f"holds arrays 'X' and 'y' (found: {', '.join(archive.files)})."
                )
            X = archive["X"]
            y = archive["y"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"{file}: cannot read as .npz ({exc}).") from None
    return _check_arrays(file, f"{file}[X]", X, f"{file}[y]", y, allow_nan)


def _check_npz_magic(file: Path) -> None:
    shown = show_path(file)
    try:
        with open(file, "rb") as handle:
            start = handle.read(len(_NPY_MAGIC))
    except OSError as exc:
        raise DatasetError(f"{shown}: cannot be read ({exc.strerror}).") from None
    if not start:
        raise DatasetError(
            f"{shown}: the file is empty (0 bytes); expected a .npz archive."
        )
    if start == _NPY_MAGIC:
        raise DatasetError(
            f"{shown}: this is a single .npy array, not a .npz archive; a .npz "
            "custom dataset holds arrays 'X' and 'y' (np.savez(path, X=X, y=y))."
        )
    if not start.startswith(_ZIP_MAGIC):
        raise DatasetError(f"{shown}: not a .npz archive (not a zip file).")


def _read_npy_pair(
    file: Path, allow_nan: bool
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], Locator]:
    y_file = _labels_file(file)
    X, y = _load_npy(file), _load_npy(y_file)
    return _check_arrays(file, str(file), X, str(y_file), y, allow_nan)


def _labels_file(file: Path) -> Path:
    y_file = features_path_to_labels(file)
    try:
        os.stat(y_file)
    except FileNotFoundError:
        raise DatasetError(
            f"{show_path(file)}: the labels file {y_file.name} is missing beside it "
            f"(expected {show_path(y_file)})."
        ) from None
    except OSError:
        pass  # check_regular_file says what is wrong
    check_regular_file(y_file, "custom dataset labels file")
    return y_file


def _check_array_shapes(
    x_name: str,
    x_shape: tuple[int, ...],
    x_dtype: np.dtype,
    y_name: str,
    y: np.ndarray,
) -> np.ndarray:
    """DatasetError unless X (by its shape and dtype) and y fit together; returns
    y as 1-D."""
    if len(x_shape) != 2:
        raise DatasetError(
            f"{x_name} must have shape (n_samples, n_features); got shape {x_shape}."
        )
    if x_dtype.kind not in "biuf":
        raise DatasetError(f"{x_name} must be numeric; got dtype {x_dtype}.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DatasetError(f"{y_name} must have shape (n_samples,); got {y.shape}.")
    if y.shape[0] != x_shape[0]:
        raise DatasetError(
            f"{y_name} has {y.shape[0]} labels but {x_name} has {x_shape[0]} rows."
        )
    if x_shape[0] == 0 or x_shape[1] == 0:
        raise DatasetError(f"{x_name} is empty (shape {x_shape}).")
    if y.dtype.kind not in "biufUS":
        raise DatasetError(
            f"{y_name} must hold numbers or strings; got dtype {y.dtype}."
        )
    return y


def _check_arrays(
    file: Path,
    x_name: str,
    X: np.ndarray,
    y_name: str,
    y: np.ndarray,
    allow_nan: bool,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], Locator]:
    y = _check_array_shapes(x_name, X.shape, X.dtype, y_name, y)
    X = np.asarray(X, dtype=np.float64)
    if not allow_nan:
        _check_finite_features(X, lambda r, c: f"{x_name}[{r}, {c}]")
    if y.dtype.kind == "S":
        y = y.astype(str)
    names = tuple(f"x{j}" for j in range(X.shape[1]))
    return X, y, names, lambda i: f"{y_name}[{i}]"


# -- Parquet ------------------------------------------------------------------------


def _import_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise BackendUnavailableError(
            "Reading Parquet files needs pyarrow, which is not installed; "
            f"install it with: {_DATA_EXTRA}",
            hint=_DATA_EXTRA,
        ) from None
    return pq


def _read_parquet(
    file: Path, target: str | None, allow_nan: bool
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], Locator]:
    pq = _import_parquet()
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
    feature_names = [n for n in names if n != target]
    X = np.empty((table.num_rows, len(feature_names)), dtype=np.float64)
    for j, name in enumerate(feature_names):
        column = table.column(name)
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            if not pa.types.is_boolean(column.type):
                raise DatasetError(
                    f"{file}: column {name!r} has type {column.type}; "
                    "feature columns must be numeric."
                )
        X[:, j] = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    label_column = table.column(target)
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
        _check_finite_features(X, where_x)
    return X, labels, tuple(feature_names), lambda i: f"{file}: row {i}: {target!r}"


# -- labels and checks --------------------------------------------------------------


def _check_finite_features(X: np.ndarray, where: Callable[[int, int], str]) -> None:
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


def _label_problems(
    y: np.ndarray, params: Mapping[str, Any], file: Path, y_name: str
) -> dict[str, str]:
    """What :func:`encode_labels` refuses in labels ``y`` (read from ``y_name``),
    keyed by the model's task, "" for a model whose task is not known."""
    task = _task_param(params)
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


def _infer_task(y: np.ndarray) -> str | None:
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
        shown = repr(str(only)) if labels.exact is None else str(_plain(only))
        raise DatasetError(
            f"{source}: classification needs at least 2 classes; every label is "
            f"{shown}."
        )
    if labels.exact is None:
        names: tuple[Any, ...] = tuple(str(c) for c in classes)
    else:
        names = tuple(_plain(c) for c in classes)
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    return y, "classification", len(names), names


def _plain(value: Any) -> Any:
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
