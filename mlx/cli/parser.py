"""The ``mlx`` argument parser, assembled from the commands' own parts.

Each command module adds its subparser (``add_parser(commands)``) and names the
function that runs it (``set_defaults(run=...)``); :func:`mlx.cli.main.main` calls
that function. The order of :data:`COMMANDS` is the order of ``mlx --help``.
"""

from __future__ import annotations

import argparse
import os
import sys

from mlx import DISTRIBUTION, __version__
from mlx.cli import compare, completion, export, lr_find, plot, report, runs, sweep
from mlx.cli import eval as eval_command
from mlx.cli import run as run_command
from mlx.cli.output import EXIT_USAGE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from _typeshed import SupportsWrite

__all__ = [
    "COMMANDS",
    "CommandParser",
    "HelpFormatter",
    "build_parser",
    "terminal_columns",
]

#: the command modules, each with ``add_parser(commands)`` and ``run(args) -> int``
COMMANDS = (
    run_command,
    eval_command,
    runs,
    compare,
    completion,
    export,
    lr_find,
    plot,
    report,
    sweep,
)


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help layout, told the terminal's width up front: argparse would
    import ``shutil`` to ask, which costs ``mlx --help`` more than all the command
    modules together."""

    def __init__(self, prog: str, *, width: int | None = None, **kwargs: Any) -> None:
        if width is None:
            width = terminal_columns() - 2  # as argparse does
        super().__init__(prog, width=width, **kwargs)


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: ``$COLUMNS`` when a positive number,
    else the width of the terminal on stdout, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0  # closed, detached, or not a terminal
    return columns or 80


class CommandParser(argparse.ArgumentParser):
    """argparse with the spec's exit code (usage errors exit 1, not 2) and
    :class:`HelpFormatter`, for every command's parser too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def print_help(self, file: SupportsWrite[str] | None = None) -> None:
        # a stream the command was started without (`>&-`) is None: nothing to print
        if file is not None or sys.stdout is not None:
            super().print_help(file)

    def _print_message(
        self, message: str, file: SupportsWrite[str] | None = None
    ) -> None:
        # argparse swallows a failed write; a closed stdout must reach main()
        stream = file if file is not None else sys.stderr
        if message and stream is not None:
            stream.write(message)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"error: {message}\n")


def build_parser() -> CommandParser:
    """The parser of the ``mlx`` command line, every command included."""
    parser = CommandParser(
        prog="mlx",
        description="Run machine-learning experiments from a JSON/YAML config "
        "and evaluate them.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"mlx {__version__} ({DISTRIBUTION})",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback when an error occurs",
    )
    # `mlx completion` describes the parser it was parsed by
    parser.set_defaults(parser=parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser
