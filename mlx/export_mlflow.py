"""The old home of :mod:`mlx.outputs.mlflow`."""

# transitional re-export: removed when the layout branches merge

from __future__ import annotations

from mlx.outputs.mlflow import (
    MLFLOW_HINT,
    ExportOutcome,
    MlflowRecord,
    check_sqlite_store,
    collect,
    config_hash,
    export_runs,
    mlflow_keys,
    mlflow_status,
)

__all__ = [
    "ExportOutcome",
    "MLFLOW_HINT",
    "MlflowRecord",
    "check_sqlite_store",
    "collect",
    "config_hash",
    "export_runs",
    "mlflow_keys",
    "mlflow_status",
]
