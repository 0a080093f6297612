"""Command-line interface: ``mlx run-experiment``, ``mlx eval``, ``mlx runs``,
``mlx compare``, ``mlx completion``, ``mlx export``, ``mlx plot``, ``mlx report``,
``mlx sweep``.

:mod:`~mlx.cli.main` runs a command line and turns how it ended into an exit status;
:mod:`~mlx.cli.parser` assembles the parser from the command modules (one per
command: ``run``, ``eval``, ``runs``, ``compare``, ``plot``, ``report``, ``export``,
``sweep``, ``completion``), each with ``add_parser(commands)`` and
``run(args) -> int``; :mod:`~mlx.cli.output` prints.

Only the standard library is imported when the package loads, so that ``mlx --help``
and ``mlx --version`` start fast; each command imports what it needs when it runs.
"""

from __future__ import annotations

from mlx.cli.main import main
from mlx.cli.parser import build_parser

__all__ = ["build_parser", "main"]
