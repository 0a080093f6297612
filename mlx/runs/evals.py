"""A run's evaluation files: ``evals/<UTC time>.json``, one per evaluation, named
by the time with microseconds so that they sort by time, and never overwritten."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any, Mapping

from mlx.errors import RunError
from mlx.runs.ids import as_utc, utc_now
from mlx.utils.atomic import to_json, write_bytes_exclusive

__all__ = ["eval_files", "write_eval_file"]

_EVAL_STAMP = "%Y%m%dT%H%M%S.%fZ"


def write_eval_file(
    directory: Path, result: Mapping[str, Any], now: _dt.datetime | None = None
) -> Path:
    """Write ``result`` as a new file in ``directory`` named by ``now`` (default:
    the current time); on a clash the time moves on by a microsecond."""
    moment = as_utc(now if now is not None else utc_now())
    data = (to_json(dict(result)) + "\n").encode("utf-8")
    for _ in range(10_000):
        path = directory / (moment.strftime(_EVAL_STAMP) + ".json")
        try:
            return write_bytes_exclusive(path, data)
        except FileExistsError:
            moment += _dt.timedelta(microseconds=1)
    raise RunError(f"Could not find a free evaluation file name in {directory}.")


def eval_files(directory: Path) -> list[Path]:
    """The evaluation files in ``directory``, oldest first ([] when there is none)."""
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [
        directory / n
        for n in sorted(names)
        if n.endswith(".json") and not n.startswith(".")
    ]
