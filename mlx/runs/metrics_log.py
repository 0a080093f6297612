"""A run's metrics log, ``metrics.jsonl``: one JSON object per line, appended (one
line per epoch). A line torn by a crash mid-write is skipped with a warning, never
fatal."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

from mlx.errors import DataWarning
from mlx.utils.atomic import to_json
from mlx.utils.values import is_number

__all__ = ["kept_records", "metrics_line", "parse_metrics_log"]


def metrics_line(record: Mapping[str, Any]) -> str:
    """``record`` as one line of the log, without its newline (NumPy scalars
    converted)."""
    return to_json(dict(record), indent=None)


def parse_metrics_log(raw: bytes, path: Path) -> list[dict[str, Any]]:
    """Every record of the log's bytes ``raw``, in order; a torn or unparsable line
    is skipped with a :class:`~mlx.errors.DataWarning` naming ``path`` and the line
    number."""
    records: list[dict[str, Any]] = []
    # split on "\n" only: str.splitlines would also split on U+2028 in strings
    for number, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError):  # bad UTF-8 or JSON
            record = None
        if not isinstance(record, dict):
            warnings.warn(
                f"{os.fspath(path)}:{number}: skipped a torn or unparsable line "
                "(expected one JSON object).",
                DataWarning,
                stacklevel=3,
            )
            continue
        records.append(record)
    return records


def kept_records(
    records: Iterable[dict[str, Any]], n_epochs: int, key: str = "epoch"
) -> list[dict[str, Any]]:
    """The records with ``record[key] <= n_epochs``, and those without a numeric
    ``key``."""
    kept = []
    for record in records:
        value = record.get(key)
        if is_number(value) and value > n_epochs:
            continue
        kept.append(record)
    return kept
