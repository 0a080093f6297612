"""Small helpers for plain values, shared by every module that checks, shows or tables
them: the config and sweep validators, the optimizer and metric registries, the run
listing, plots and exports.

Standard library only, so that any floor of the package may import it.
"""

from __future__ import annotations

import difflib
import math
import os
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

if TYPE_CHECKING:
    from typing import TypeGuard

__all__ = [
    "close_matches",
    "did_you_mean",
    "flatten",
    "is_int",
    "is_number",
    "metric_number",
    "nearest",
    "plain",
    "show",
    "table",
]


def is_int(value: object) -> TypeGuard[int]:
    """An integer that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[int | float]:
    """An int or a float that is not a bool (NaN and infinities included)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metric_number(value: Any, *, finite: bool = False) -> float | None:
    """``value`` as a metric value, or None when it is not a number (None, a string,
    a bool, a list: a confusion matrix). An integer beyond any float is signed
    infinity; with ``finite``, NaN and infinities are None too."""
    if not is_number(value):
        return None
    try:
        number = float(value)
    except OverflowError:
        number = math.inf if value > 0 else -math.inf
    if finite and not math.isfinite(number):
        return None
    return number


def show(value: Any) -> str:
    """A value as it would be written in a config file, short."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if value.bit_length() <= 128 else "a huge integer"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return repr(text)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def close_matches(
    word: str, options: Iterable[str], n: int = 1, cutoff: float = 0.6
) -> list[str]:
    """Up to ``n`` options closest to ``word`` (difflib's ratio >= ``cutoff``),
    best first."""
    return difflib.get_close_matches(word, list(options), n=n, cutoff=cutoff)


def nearest(word: str, options: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The option closest to ``word`` (difflib's ratio >= ``cutoff``), or None."""
    found = close_matches(word, options, cutoff=cutoff)
    return found[0] if found else None


def did_you_mean(word: str, options: Iterable[str], cutoff: float = 0.6) -> str:
    """``"; did you mean NAME?"`` for the closest option, else ``""``."""
    near = nearest(word, options, cutoff)
    return f"; did you mean {near}?" if near else ""


def flatten(data: object, prefix: str = "") -> dict[str, Any]:
    """``{"training.epochs": 5, ...}``: every leaf of nested mappings by its dotted
    path. Lists are leaves; an empty mapping inside is a leaf of its own (``{}``);
    anything but a mapping is one leaf, named ``prefix``."""
    if not isinstance(data, Mapping) or (prefix and not data):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def plain(value: Any) -> Any:
    """Data as plain dicts, lists and scalars (read-only mappings, tuples, paths and
    NumPy arrays and scalars are converted), so that JSON and yaml.safe_dump take it."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return plain(value.tolist())
    return value


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, a header line first; no trailing
    spaces."""
    lines = [list(header), *[list(r) for r in rows]]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
        for line in lines
    )
