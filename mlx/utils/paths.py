"""Where relative paths in a config resolve to.

The repository root is ``$MLX_ROOT`` when set, else the nearest ancestor of the current
directory that holds ``.git`` or ``pyproject.toml``, else the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["repository_root"]

_ROOT_MARKERS = (".git", "pyproject.toml")


def repository_root(start: Path | None = None) -> Path:
    """The directory that relative config paths resolve against (absolute, resolved)."""
    override = os.environ.get("MLX_ROOT")
    if override:
        return Path(override).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if any((candidate / marker).exists() for marker in _ROOT_MARKERS):
            return candidate
    return here
