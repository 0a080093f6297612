"""Checks of the arguments of the public API: a wrong type is a TypeError that names
the parameter, the type expected and the value given, never a confusing failure later
(a string iterated character by character, a truthy ``"no"``)."""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

__all__ = ["check_bool", "check_fields", "check_path_or_id", "check_strings"]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_bool(function: str, name: str, value: Any) -> bool:
    """``value`` if it is a bool; TypeError otherwise."""
    if not isinstance(value, bool):
        raise TypeError(
            f"The {name!r} parameter of {function} must be True or False; got "
            f"{_shown(value)} ({type(value).__name__})."
        )
    return value


def check_path_or_id(function: str, name: str, value: Any) -> str:
    """``value`` (a str or os.PathLike) as text; TypeError otherwise."""
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        text = os.fspath(value)
        if isinstance(text, str):
            return text
    raise TypeError(
        f"The {name!r} parameter of {function} must be a run ID or a path (str or "
        f"os.PathLike); got {_shown(value)} ({type(value).__name__})."
    )


def check_strings(
    function: str, name: str, value: Any, what: str, *, allow: tuple = ()
) -> list[Any]:
    """A list from ``value``: one str is a one-element list; a list, tuple or other
    ordered iterable of str (or of the ``allow`` types) is copied. A mapping, a
    set (no order), bytes or a lone non-string is a TypeError."""
    if isinstance(value, str):
        return [value]
    unordered = isinstance(value, (set, frozenset, Mapping))
    if unordered or isinstance(value, (bytes, bytearray)) or not _iterable(value):
        raise TypeError(
            f"The {name!r} parameter of {function} must be a {what} or a list of "
            f"them; got {_shown(value)} ({type(value).__name__})."
        )
    items = list(value)
    for index, item in enumerate(items):
        if not isinstance(item, (str, *allow)):
            raise TypeError(
                f"The {name!r} parameter of {function} must hold only {what}s; item "
                f"{index} is {_shown(item)} ({type(item).__name__})."
            )
    return items


def _iterable(value: Any) -> bool:
    try:
        iter(value)
    except TypeError:
        return False
    return True


def check_fields(
    function: str, name: str, value: Any, reserved: frozenset[str]
) -> dict[str, Any]:
    """``value`` as a dict of extra JSON fields: a mapping whose keys are str, none of
    them in ``reserved``, and whose values JSON can write; TypeError otherwise."""
    if not isinstance(value, Mapping):
        raise TypeError(
            f"The {name!r} parameter of {function} must be a mapping of field names "
            f"to JSON values; got {_shown(value)} ({type(value).__name__})."
        )
    fields = dict(value)
    for key, item in fields.items():
        if not isinstance(key, str):
            raise TypeError(
                f"The {name!r} parameter of {function} must have str keys; got "
                f"{_shown(key)} ({type(key).__name__})."
            )
        if key in reserved:
            raise TypeError(
                f"The {name!r} parameter of {function} may not set {key!r}, which "
                "the run writes itself."
            )
        try:
            json.dumps(item, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"The {name!r} parameter of {function} must hold JSON values; "
                f"{key!r} is {_shown(item)} ({type(item).__name__}): {exc}."
            ) from None
    return fields
