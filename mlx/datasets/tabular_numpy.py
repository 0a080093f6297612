"""NumPy files of the custom dataset: an ``.npz`` archive of arrays ``X`` and ``y``,
or a pair of ``.npy`` files (``train_X.npy`` beside ``train_y.npy``). Nothing is ever
unpickled, and a truncated or misnamed file is told for what it is."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import IO

import numpy as np

from mlx.datasets._checks import check_regular_file, show_path
from mlx.datasets.tabular_labels import Table, check_finite_features
from mlx.errors import DatasetError, map_os_errors

__all__ = [
    "check_array_shapes",
    "features_path_to_labels",
    "npy_pair_header",
    "npz_header",
    "read_npy_pair",
    "read_npz",
]

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


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


def _npy_file_header(file: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a ``.npy`` file, checked as :func:`_load_npy` checks it,
    without reading the array."""
    with _open_npy(file) as handle:
        return _checked_npy_header(handle, file)[:2]


def _open_npy(file: Path) -> IO[bytes]:
    check_regular_file(file, "custom dataset file")
    unreadable = "{path}: cannot be read ({reason})."
    with map_os_errors(DatasetError, unreadable, path=show_path(file)):
        return open(file, "rb")


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


def npz_header(file: Path) -> tuple[str, tuple[int, ...], np.dtype, str, np.ndarray]:
    """(name, shape and dtype of X, name of y, y) of an ``.npz`` archive: the
    header of X only, the labels whole."""
    _check_npz_magic(file)
    with zipfile.ZipFile(file) as archive:
        x_shape, x_dtype = _npy_header_in_zip(archive, "X", file)
        _npy_header_in_zip(archive, "y", file)
        with archive.open("y.npy") as handle:
            y = np.lib.format.read_array(handle, allow_pickle=False)
    return f"{file}[X]", x_shape, x_dtype, f"{file}[y]", y


def npy_pair_header(
    file: Path,
) -> tuple[str, tuple[int, ...], np.dtype, str, np.ndarray]:
    """(name, shape and dtype of X, name of y, y) of a pair of ``.npy`` files given
    by the features file: the header of X only, the labels whole."""
    x_shape, x_dtype = _npy_file_header(file)
    y_file = _labels_file(file)
    return str(file), x_shape, x_dtype, str(y_file), _load_npy(y_file)


def read_npz(file: Path, allow_nan: bool) -> Table:
    """Features, labels, feature names (``x0``, ``x1``, ...) and label locator of
    an ``.npz`` archive of arrays ``X`` and ``y``."""
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
    return _check_arrays(f"{file}[X]", X, f"{file}[y]", y, allow_nan)


def _check_npz_magic(file: Path) -> None:
    shown = show_path(file)
    with map_os_errors(DatasetError, "{path}: cannot be read ({reason}).", path=shown):
        with open(file, "rb") as handle:
            start = handle.read(len(_NPY_MAGIC))
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


def read_npy_pair(file: Path, allow_nan: bool) -> Table:
    """Features, labels, feature names and label locator of the ``.npy`` features
    ``file`` and the labels file beside it."""
    y_file = _labels_file(file)
    X, y = _load_npy(file), _load_npy(y_file)
    return _check_arrays(str(file), X, str(y_file), y, allow_nan)


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


def check_array_shapes(
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
    x_name: str, X: np.ndarray, y_name: str, y: np.ndarray, allow_nan: bool
) -> Table:
    y = check_array_shapes(x_name, X.shape, X.dtype, y_name, y)
    X = np.asarray(X, dtype=np.float64)
    if not allow_nan:
        check_finite_features(X, lambda r, c: f"{x_name}[{r}, {c}]")
    if y.dtype.kind == "S":
        y = y.astype(str)
    names = tuple(f"x{j}" for j in range(X.shape[1]))
    return X, y, names, lambda i: f"{y_name}[{i}]"
