"""The old home of :mod:`mlx.outputs.report`."""

# transitional re-export: removed when the layout branches merge

from __future__ import annotations

from mlx.outputs.report import (
    build_report,
    labelled_runs,
    read_run_metrics,
    write_report,
)

__all__ = [
    "build_report",
    "labelled_runs",
    "read_run_metrics",
    "write_report",
]
