"""The run store: where each experiment run lives on disk, written crash-safely.

A run is a directory named by its run ID (``<name>-<YYYYmmdd-HHMMSS>-<4 hex>``)::

    run = RunDir.create("outputs/mnist", "mnist")      # claims a fresh directory
    run.write_config(config, original_path="mnist.json")
    run.write_environment()
    with Heartbeat(run):
        for epoch in range(1, epochs + 1):
            ...
            run.append_metrics({"epoch": epoch, "train_loss": loss})
            run.save_checkpoint(epoch, write_fn)
            run.heartbeat(epochs_completed=epoch)
    run.mark_completed({"accuracy": 0.97}, epochs_completed=epochs)

Reading (``find_run``, ``list_runs``, ``open_run``) needs no lock. This package does
not import NumPy or YAML at import time.
"""

from __future__ import annotations

from mlx.runs.environment import collect_environment, git_state
from mlx.runs.heartbeat import Heartbeat
from mlx.runs.ids import new_run_id, parse_run_id
from mlx.runs.listing import (
    RunInfo,
    default_runs_root,
    find_run,
    format_run,
    format_runs_table,
    list_runs,
)
from mlx.runs.store import RunDir, open_run
from mlx.runs.summary import (
    DEFAULT_HEARTBEAT_INTERVAL,
    FINISHED_STATUSES,
    MIN_STALE_SECONDS,
    STATUSES,
    effective_status,
)

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "FINISHED_STATUSES",
    "MIN_STALE_SECONDS",
    "STATUSES",
    "Heartbeat",
    "RunDir",
    "RunInfo",
    "collect_environment",
    "default_runs_root",
    "effective_status",
    "find_run",
    "format_run",
    "format_runs_table",
    "git_state",
    "list_runs",
    "new_run_id",
    "open_run",
    "parse_run_id",
]
