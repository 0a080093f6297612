"""Where runs live that the default search would not find: ``.mlx/runs.jsonl``.

``mlx runs``, ``mlx eval ID`` and ``--resume ID`` look under ``<repository
root>/outputs`` (depth 1 and 2). A run whose ``output.directory`` puts it elsewhere
inside the repository (``results/``, ``/abs/path/in/repo/exp``) is recorded, when it is
created, as one JSON line ``{"run_id": ..., "path": ...}`` appended to
``<repository root>/.mlx/runs.jsonl`` (one ``O_APPEND`` write, so concurrent runs
never tear a line). Reading is tolerant: unparsable lines and entries whose directory
no longer holds that run are ignored, so moving or deleting a run needs no clean-up.
``.mlx/`` holds a ``.gitignore`` of its own so the index stays out of version control.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Union

from mlx.errors import DataWarning, RunError
from mlx.runs.store import SUMMARY_FILE
from mlx.utils.atomic import append_line
from mlx.utils.paths import repository_root
from mlx.utils.safe_io import open_regular, read_fd

__all__ = ["index_path", "indexed_runs", "record_run"]

PathLike = Union[str, "os.PathLike[str]"]

_INDEX_DIR = ".mlx"
_INDEX_FILE = "runs.jsonl"
_MAX_INDEX_BYTES = 64 * 1024 * 1024


def index_path(root: PathLike | None = None) -> Path:
    """``<root>/.mlx/runs.jsonl`` (``root`` defaults to the repository root)."""
    base = Path(root) if root is not None else repository_root()
    return base / _INDEX_DIR / _INDEX_FILE


def _default_search_finds(path: Path, root: Path) -> bool:
    outputs = root / "outputs"
    parent = path.parent
    return parent == outputs or parent.parent == outputs


def record_run(run_path: PathLike, root: PathLike | None = None) -> bool:
    """Add the run in ``run_path`` to the index unless the default search already
    finds it. Returns whether a line was written. A failure to write (read-only
    repository, ...) is a :class:`~mlx.errors.DataWarning`, never an error: the run
    itself is fine, it is only harder to find by ID."""
    base = Path(root).resolve() if root is not None else repository_root()
    path = Path(os.path.realpath(run_path))
    if _default_search_finds(path, base) or path in indexed_runs(base):
        return False
    index = index_path(base)
    line = json.dumps({"run_id": path.name, "path": os.fspath(path)})
    try:
        index.parent.mkdir(exist_ok=True)
        ignore = index.parent / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n", encoding="utf-8")
        append_line(index, line)
    except (OSError, ValueError) as exc:
        warnings.warn(
            f"could not record run {path.name} in the run index {index}: {exc}; "
            f"open it by its path ({path})",
            DataWarning,
            stacklevel=2,
        )
        return False
    return True


def _read_index(index: Path) -> bytes:
    """The first ``_MAX_INDEX_BYTES`` of the index, through the guarded opener; an
    index that is not a regular file (a FIFO, a device) is a warning that names
    it, and reads as empty."""
    try:
        fd = open_regular(index, "the run index", missing_ok=True)
    except RunError as exc:
        warnings.warn(
            f"{exc} Runs recorded only there are not found by ID.",
            DataWarning,
            stacklevel=3,
        )
        return b""
    if fd is None:
        return b""
    try:
        return read_fd(fd, _MAX_INDEX_BYTES)
    except OSError:
        return b""
    finally:
        os.close(fd)


def indexed_runs(root: PathLike | None = None) -> list[Path]:
    """The run directories the index names that still hold that run, in the order
    they were recorded, each once. Never raises for a missing or damaged index."""
    raw = _read_index(index_path(root))
    seen: set[str] = set()
    found: list[Path] = []
    for line in raw.decode("utf-8", "replace").split("\n"):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        run_id, text = entry.get("run_id"), entry.get("path")
        if not isinstance(run_id, str) or not isinstance(text, str) or "\0" in text:
            continue
        path = Path(text)
        key = os.path.normcase(os.path.abspath(path))
        if key in seen or path.name != run_id:
            continue
        try:
            if not (path / SUMMARY_FILE).is_file():
                continue  # moved or deleted since: a stale entry
        except OSError:
            continue
        seen.add(key)
        found.append(path)
    return found
