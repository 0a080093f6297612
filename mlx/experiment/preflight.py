"""Whether a run directory can be made where a config puts it, asked before any is.

Both the run (:func:`check_output`, which refuses) and the dry run (which reports)
ask :func:`output_blocker`, so they never disagree; nothing here creates anything.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlx.config.experiment import ExperimentConfig
from mlx.errors import RunError
from mlx.runs.ids import safe_run_name

__all__ = ["check_output", "output_blocker"]

# a run ID is the name plus "-YYYYMMDD-HHMMSS-xxxx"
_RUN_ID_EXTRA = len("-20240501-120003-abcd")
# bytes of the longest path mlx writes inside a run directory, with room to spare
# (checkpoints/.tmp-epoch-NNNN-step-SSSSSSSS-xxxxxxxx/.optimizer.safetensors.*.tmp)
_DEEPEST_IN_RUN = 160


def check_output(config: ExperimentConfig) -> None:
    """RunError, before anything is created, when no run directory can be made
    where the config puts it (the dry run reports the same)."""
    problem = output_blocker(config.output.directory, config.name)
    if problem is not None:
        raise RunError(f"cannot create the run: {problem}")


def output_blocker(directory: str, name: str) -> str | None:
    """Why no run directory could be made for ``name`` under the absolute
    ``directory``, or None: a part of it that is a file, a name longer than the file
    system allows (``PC_NAME_MAX``), paths longer than it allows (``PC_PATH_MAX``),
    or a nearest existing parent that is not writable. Nothing is created."""
    path = Path(directory)
    existing = path
    while not os.path.exists(existing) and existing != existing.parent:
        existing = existing.parent
    if not os.path.isdir(existing):
        return f"output.directory: {existing} is a file, not a directory"
    name_max, path_max = (
        _limit(existing, "PC_NAME_MAX", 255),
        _limit(existing, "PC_PATH_MAX", 4096),
    )
    run_id = len(os.fsencode(safe_run_name(name))) + _RUN_ID_EXTRA
    below = path.relative_to(existing).parts
    for part in below:
        size = len(os.fsencode(part))
        if size > name_max:
            return (
                f"output.directory: the name {part[:24]!r}... is {size} bytes long; "
                f"the file system at {existing} allows {name_max}"
            )
    if run_id > name_max:
        return (
            f"name: run directory names would be {run_id} bytes long; the file "
            f"system at {existing} allows {name_max}"
        )
    total = len(os.fsencode(str(path))) + 1 + run_id + _DEEPEST_IN_RUN
    if total > path_max:
        return (
            f"output.directory: the run's files would have paths of up to {total} "
            f"bytes; the file system at {existing} allows {path_max}"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"output.directory: {existing} is not writable"
    return None


def _limit(path: Path, name: str, default: int) -> int:
    try:
        value = os.pathconf(path, name)
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows)
        return default
    return value if value > 0 else default
