"""Options several commands share (``--json``, ``--root``, ``-o FILE``), and the
checks of their values that argparse cannot make."""

from __future__ import annotations

import argparse
import os

from mlx.errors import MLXError, RunError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "JSON_HELP",
    "add_json",
    "add_overrides",
    "add_root",
    "check_output_file",
    "root_path",
]

JSON_HELP = "print one JSON document on stdout instead of text (messages on stderr)"


def add_json(parser: argparse.ArgumentParser) -> None:
    """``--json``: one JSON document on stdout instead of text."""
    parser.add_argument("--json", action="store_true", help=JSON_HELP)


def add_overrides(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE`` (repeatable): config overrides, in ``args.overrides``."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=help,
    )


def add_root(parser: argparse.ArgumentParser) -> None:
    """``--root DIR``: where to look for runs."""
    parser.add_argument(
        "--root",
        metavar="DIR",
        help="where to look for runs (default: <repository root>/outputs)",
    )


def root_path(args: argparse.Namespace) -> Path | None:
    """``--root`` as a Path (None when not given); RunError for a non-directory."""
    # pathlib is for the commands that look for runs, not for every start
    from pathlib import Path

    root = Path(args.root) if args.root else None
    if root is not None and os.path.lexists(root) and not root.is_dir():
        raise RunError(f"--root {os.fspath(root)!r} is not a directory")
    return root


def check_output_file(path: str) -> None:
    """``path`` can take a new file: not a directory, its directory exists."""
    if os.path.isdir(path):
        raise MLXError(f"{path}: is a directory; name the file to write")
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise MLXError(f"{path}: the directory {parent} does not exist")
