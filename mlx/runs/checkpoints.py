"""Directories of a run published whole: each checkpoint (``epoch-NNNN``) and the
final model are written into a temporary directory and published by one rename, so a
crash leaves the old one or the new one, never a part. :class:`mlx.runs.store.RunDir`
decides where they go; the functions here name, find and publish them."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable

from mlx.errors import RunError
from mlx.utils.atomic import named, replace_dir_atomic
from mlx.utils.values import is_int

__all__ = [
    "EPOCH_DIR_RE",
    "checkpoint_name",
    "epoch_dirs",
    "publish_dir",
    "remove_leftovers",
]

# `epoch-NNNN` after NNNN complete epochs; `epoch-NNNN-step-SSSSSSSS` when a run was
# stopped inside epoch NNNN+1, after SSSSSSSS optimizer steps in all
EPOCH_DIR_RE = re.compile(r"^epoch-(\d+)(?:-step-(\d+))?$")


def checkpoint_name(epoch: int, step: int | None = None) -> str:
    """``epoch-NNNN`` for ``epoch``; with ``step``, ``epoch-NNNN-step-SSSSSSSS``, a
    checkpoint taken mid-epoch. RunError for an epoch that is no integer >= 0."""
    if not is_int(epoch) or epoch < 0:
        raise RunError(f"A checkpoint epoch must be an integer >= 0; got {epoch!r}.")
    name = f"epoch-{epoch:04d}"
    if step is not None:
        name += f"-step-{step:08d}"
    return name


def epoch_dirs(directory: Path) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of every ``epoch-NNNN`` directory in ``directory``, oldest
    first (a mid-epoch one sorts after its epoch's); [] when there is none."""
    found = []
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        match = EPOCH_DIR_RE.match(entry.name)
        if match and entry.is_dir(follow_symlinks=False):
            step = int(match.group(2)) if match.group(2) else -1
            found.append((int(match.group(1)), step, Path(entry.path)))
    return [(epoch, path) for epoch, _, path in sorted(found)]


def remove_leftovers(directory: Path, prefix: str | None = None) -> None:
    """Remove temporary entries a crashed save left behind (``.tmp-*``, ``.old-*``)."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    prefixes = (prefix,) if prefix else (".tmp-", ".old-")
    for entry in entries:
        if entry.name.startswith(prefixes):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                try:
                    os.unlink(entry.path)
                except OSError:
                    pass


def publish_dir(parent: Path, name: str, write_fn: Callable[[Path], Any]) -> Path:
    """``parent/name`` filled by ``write_fn(tmp)`` in a temporary sibling, then put
    in place by one rename (replacing an older one); the temporary directory is
    removed when ``write_fn`` fails, and an ``OSError`` names ``parent/name``."""
    tmp = parent / f".tmp-{name}-{os.urandom(4).hex()}"
    try:
        os.mkdir(tmp)
    except OSError as exc:
        raise named(exc, parent / name) from None
    try:
        write_fn(tmp)
        return replace_dir_atomic(tmp, parent / name)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        # a write that failed inside (a full disk) names the directory it was for,
        # never the temporary one, which is gone
        raise _named_for(exc, tmp, parent / name) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _named_for(exc: OSError, tmp: Path, final: Path) -> OSError:
    """``exc`` naming ``final`` (or the file in it) where it named nothing or a
    file in ``tmp``."""
    if exc.filename is None:
        return named(exc, final)
    try:
        inside = Path(os.fsdecode(exc.filename)).relative_to(tmp)
    except ValueError:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), os.fspath(final / inside))
