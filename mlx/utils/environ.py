"""The ``MLX_*`` environment variables, each read and checked in one place.

A variable is validated like a config field: a value that is set but not what the
variable takes is a :class:`~mlx.errors.ConfigError` naming the variable and the value
(``MLX_NUM_THREADS must be a whole number in [1, 4096], got 'abc'``), never silently
ignored. An empty value means "not set", as in most Unix tools. Numbers are ASCII
digits only: no sign, no spaces, no ``1e3``, ``0x10`` or ``１２`` (which Python's
``int`` would take). :func:`check_environment` checks every variable at once; the
``mlx`` command calls it before any command runs, so nothing is created with a bad
one. The table :data:`VARIABLES` is the reference (see docs/design/environment.md).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, NamedTuple
from urllib.parse import urlsplit

from mlx.errors import ConfigError
from mlx.utils.paths import repository_root, unprintable
from mlx.utils.values import nearest

__all__ = [
    "DATA_DIR",
    "DATA_URL",
    "DATA_WORKERS",
    "MAX_DATA_WORKERS",
    "MAX_THREADS",
    "MEMORY_LIMIT",
    "NUM_THREADS",
    "OFFLINE",
    "ROOT",
    "VARIABLES",
    "check_environment",
    "data_dir",
    "data_url",
    "data_workers",
    "memory_limit",
    "num_threads",
    "offline",
    "root",
]

ROOT = "MLX_ROOT"
NUM_THREADS = "MLX_NUM_THREADS"
OFFLINE = "MLX_OFFLINE"
DATA_DIR = "MLX_DATA_DIR"
DATA_URL = "MLX_DATA_URL"
DATA_WORKERS = "MLX_DATA_WORKERS"
MEMORY_LIMIT = "MLX_MEMORY_LIMIT"

#: The most CPU threads MLX_NUM_THREADS may ask for (torch's own limit is 2^31 - 1;
#: more threads than this are a typo, not a machine).
MAX_THREADS = 4096
#: The most decoding worker processes MLX_DATA_WORKERS may start.
MAX_DATA_WORKERS = 256
_INT64_MAX = 2**63 - 1
_DIGITS = re.compile(r"[0-9]+")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_URL_SCHEMES = ("http", "https", "ftp")


def _raw(name: str) -> str | None:
    """The variable's value, None when unset or empty."""
    value = os.environ.get(name)
    return value if value else None


def _bad(name: str, value: str, expected: str) -> ConfigError:
    return ConfigError(f"{name} must be {expected}, got {value!r}")


def _whole(name: str, lo: int, hi: int, what: str) -> int | None:
    value = _raw(name)
    if value is None:
        return None
    number = int(value) if _DIGITS.fullmatch(value) else None
    if number is None or not lo <= number <= hi:
        raise _bad(name, value, f"{what} in [{lo}, {hi}] (ASCII digits only)")
    return number


def num_threads() -> int | None:
    """``$MLX_NUM_THREADS``: torch's CPU threads, 1 to :data:`MAX_THREADS`; None
    when unset."""
    return _whole(NUM_THREADS, 1, MAX_THREADS, "a whole number of threads")


def data_workers() -> int | None:
    """``$MLX_DATA_WORKERS``: image-decoding worker processes, 0 (decode in the
    main process) to :data:`MAX_DATA_WORKERS`; None when unset."""
    return _whole(
        DATA_WORKERS, 0, MAX_DATA_WORKERS, "a whole number of worker processes"
    )


def memory_limit() -> int | None:
    """``$MLX_MEMORY_LIMIT``: the in-memory dataset limit, a number of bytes >= 1
    that fits in 64 bits; None when unset."""
    return _whole(MEMORY_LIMIT, 1, _INT64_MAX, "a whole number of bytes")


def offline() -> bool:
    """``$MLX_OFFLINE``: true for 1/true/yes/on, false for 0/false/no/off or unset
    (any case); anything else is an error."""
    value = _raw(OFFLINE)
    if value is None:
        return False
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise _bad(OFFLINE, value, "one of 1, true, yes, on, 0, false, no, off")


def _printable_path(name: str) -> str | None:
    value = _raw(name)
    if value is None:
        return None
    problem = unprintable(value, name)
    if problem is not None:
        raise ConfigError(problem)
    return value


def root() -> Path | None:
    """``$MLX_ROOT``, resolved and checked by :func:`mlx.utils.paths.repository_root`
    (an existing directory: it is never created); None when unset."""
    return repository_root() if _raw(ROOT) is not None else None


def data_dir() -> Path | None:
    """``$MLX_DATA_DIR``: where datasets are cached (created when a download needs
    it); None when unset."""
    value = _printable_path(DATA_DIR)
    return None if value is None else Path(value).expanduser()


def data_url() -> str | None:
    """``$MLX_DATA_URL``: the base URL of the dataset archives (an http, https or
    ftp URL with a host), ending in ``/``; None when unset."""
    value = _printable_path(DATA_URL)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme.lower() not in _URL_SCHEMES or not parts.netloc:
        raise _bad(DATA_URL, value, "an http://, https:// or ftp:// URL with a host")
    return value if value.endswith("/") else value + "/"


class _Variable(NamedTuple):
    name: str
    read: Callable[[], object]
    meaning: str


#: Every variable mlx reads, with its reader and what it sets.
VARIABLES = (
    _Variable(ROOT, root, "the repository root (an existing directory)"),
    _Variable(NUM_THREADS, num_threads, f"torch's CPU threads, 1 to {MAX_THREADS}"),
    _Variable(OFFLINE, offline, "never download pretrained weights (a boolean)"),
    _Variable(DATA_DIR, data_dir, "the dataset cache directory"),
    _Variable(DATA_URL, data_url, "the base URL of dataset downloads"),
    _Variable(
        DATA_WORKERS, data_workers, f"image-decoding workers, 0 to {MAX_DATA_WORKERS}"
    ),
    _Variable(MEMORY_LIMIT, memory_limit, "the in-memory dataset limit in bytes"),
)


def check_environment() -> list[str]:
    """Check every ``MLX_*`` variable; ConfigError for the first bad one. Returns
    warnings for set variables mlx does not know that are close to one it does
    (``MLX_NUM_THREAD``: did you mean MLX_NUM_THREADS?)."""
    for variable in VARIABLES:
        variable.read()
    known = [v.name for v in VARIABLES]
    notes = []
    for name in sorted(os.environ):
        if name.startswith("MLX_") and name not in known:
            near = nearest(name, known, 0.85)
            if near is not None:
                notes.append(
                    f"environment variable {name} is not one mlx reads; did you "
                    f"mean {near}?"
                )
    return notes
