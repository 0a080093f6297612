"""What a run prints and keeps in train.log, now :mod:`mlx.experiment.console`."""

from __future__ import annotations

# transitional re-export: removed when the layout branches merge
from mlx.experiment.console import (
    LOGGER_NAME,
    RUN_LOGGER,
    Console,
    StreamLineHandler,
    someone_prints,
    utc_stamp,
)

__all__ = [
    "LOGGER_NAME",
    "RUN_LOGGER",
    "Console",
    "StreamLineHandler",
    "someone_prints",
    "utc_stamp",
]
