"""Run IDs: ``<name>-<YYYYmmdd-HHMMSS>-<4 hex>``, readable and sortable by time.

The timestamp is UTC; the 4 hex digits come from ``os.urandom`` so runs of the same
name started in the same second still get distinct IDs (and the run store retries on
the rare collision).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import warnings
from typing import NamedTuple

from mlx.errors import MLXWarning

__all__ = [
    "ParsedRunId",
    "as_utc",
    "new_run_id",
    "parse_run_id",
    "safe_run_name",
    "utc_now",
]

_ID_RE = re.compile(r"^(?P<name>.+)-(?P<stamp>\d{8}-\d{6})-(?P<suffix>[0-9a-f]{4})$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_STAMP_FORMAT = "%Y%m%d-%H%M%S"


class ParsedRunId(NamedTuple):
    """The parts of a run ID. ``started`` is timezone-aware UTC."""

    name: str
    started: _dt.datetime
    suffix: str


def utc_now() -> _dt.datetime:
    """The current time, timezone-aware UTC."""
    return _dt.datetime.now(_dt.timezone.utc)


def as_utc(moment: _dt.datetime) -> _dt.datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=_dt.timezone.utc)
    return moment.astimezone(_dt.timezone.utc)


def safe_run_name(name: str) -> str:
    """``name`` made safe as a directory name. A name the config accepts (see
    ``mlx.config.rules.DIRECTORY_NAME``) is kept as it is, so a run ID is always
    ``<name>-<stamp>-<hex>``. Any other (from code that skipped validation) is
    changed, with a warning that names both: runs of characters other than ASCII
    letters, digits, ``.``, ``_`` and ``-`` become ``-``, dots and dashes at the
    start are dropped, an empty result becomes ``run``, and it is cut at 100."""
    text = str(name)
    cleaned = _UNSAFE.sub("-", text).lstrip("-.")[:100] or "run"
    if cleaned != text:
        warnings.warn(
            f"run name {text!r} cannot name a directory as it is; the run ID "
            f"starts with {cleaned!r} instead",
            MLXWarning,
            stacklevel=2,
        )
    return cleaned


def new_run_id(name: str, now: _dt.datetime | None = None) -> str:
    """A fresh run ID for ``name`` at ``now`` (default: the current UTC time).

    >>> import datetime
    >>> new_run_id("mnist", datetime.datetime(2024, 5, 1, 12, 0, 3))[:-4]
    'mnist-20240501-120003-'
    """
    moment = as_utc(now if now is not None else utc_now())
    return (
        f"{safe_run_name(name)}-{moment.strftime(_STAMP_FORMAT)}-{os.urandom(2).hex()}"
    )


def parse_run_id(run_id: str) -> ParsedRunId | None:
    """Split a run ID into its parts, or None if ``run_id`` is not one."""
    match = _ID_RE.match(run_id)
    if match is None:
        return None
    try:
        started = _dt.datetime.strptime(match.group("stamp"), _STAMP_FORMAT)
    except ValueError:
        return None
    return ParsedRunId(
        match.group("name"),
        started.replace(tzinfo=_dt.timezone.utc),
        match.group("suffix"),
    )
