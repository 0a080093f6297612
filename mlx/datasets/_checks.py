"""Checks shared by the dataset classes and loaders: their parameters, and the
files they read (:func:`check_regular_file`).

Every message follows one template: ``The 'NAME' parameter of OWNER must be WHAT; got
VALUE.`` Booleans are rejected where integers or floats are expected, because
``True`` silently meaning ``1`` hides configuration mistakes.
"""

from __future__ import annotations

import math
import numbers
import os
import stat
from pathlib import Path
from typing import Any, Mapping

from mlx.errors import DatasetError

__all__: list[str] = []


def _fail(owner: str, name: str, expected: str, value: Any) -> DatasetError:
    return DatasetError(
        f"The '{name}' parameter of {owner} must be {expected}; got {value!r}."
    )


def check_int(
    owner: str,
    name: str,
    value: Any,
    *,
    minimum: int,
    maximum: int | None = None,
    maximum_name: str | None = None,
) -> int:
    """Return ``value`` as an int within ``[minimum, maximum]``, else DatasetError."""
    if maximum is None:
        expected = f"an integer >= {minimum}"
    else:
        bound = f"{maximum_name} ({maximum})" if maximum_name else str(maximum)
        expected = f"an integer in the range [{minimum}, {bound}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _fail(owner, name, expected, value)
    result = int(value)
    if result < minimum or (maximum is not None and result > maximum):
        raise _fail(owner, name, expected, value)
    return result


def check_float(
    owner: str,
    name: str,
    value: Any,
    *,
    minimum: float,
    strict: bool = False,
    below: float | None = None,
) -> float:
    """Return ``value`` as a finite float ``>= minimum`` (``>`` when ``strict``).

    ``below``, when given, is an exclusive upper bound.
    """
    low = f"> {minimum}" if strict else f">= {minimum}"
    expected = f"a finite number {low}"
    if below is not None:
        expected = f"a number in the range {'(' if strict else '['}{minimum}, {below})"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(owner, name, expected, value)
    result = float(value)
    if not math.isfinite(result):
        raise _fail(owner, name, expected, value)
    if result < minimum or (strict and result == minimum):
        raise _fail(owner, name, expected, value)
    if below is not None and result >= below:
        raise _fail(owner, name, expected, value)
    return result


def check_bool(owner: str, name: str, value: Any) -> bool:
    """Return ``value`` if it is a real bool, else DatasetError."""
    if not isinstance(value, bool):
        raise _fail(owner, name, "true or false", value)
    return value


def check_seed(owner: str, name: str, value: Any) -> int:
    """A seed: an integer >= 0 (what numpy's PCG64 accepts)."""
    return check_int(owner, name, value, minimum=0)


def param(params: Mapping[str, Any], name: str, default: Any) -> Any:
    """``params[name]``, or ``default`` when absent or null."""
    value = params.get(name, default)
    return default if value is None else value


def format_bytes(n_bytes: float) -> str:
    """Human-readable size with binary units: ``1.5 GiB``."""
    size = float(n_bytes)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{size:.0f} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


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
