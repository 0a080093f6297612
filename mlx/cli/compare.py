"""``mlx compare``: two or more runs side by side."""

from __future__ import annotations

import argparse

from mlx.cli.options import add_json, add_root, root_path
from mlx.cli.output import EXIT_OK, print_json, usage_error

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``compare`` subparser, run by :func:`run`."""
    parser = commands.add_parser(
        "compare",
        help="compare two or more runs side by side",
        description="Show runs side by side: the config fields that differ, final "
        "and best metrics, the latest evaluation, epochs, duration and status.",
    )
    parser.add_argument(
        "compare_runs", nargs="*", metavar="RUN", help="run IDs or directories"
    )
    add_root(parser)
    add_json(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """The comparison of ``args.compare_runs``, as a table or one JSON document."""
    from mlx.runs.compare import compare_runs, format_comparison

    if len(args.compare_runs) < 2:
        usage_error(
            "compare: give two or more runs: mlx compare RUN RUN... [--json]"
            + (f" (got only {args.compare_runs[0]!r})" if args.compare_runs else "")
        )
    comparison = compare_runs(args.compare_runs, root_path(args))
    if args.json:
        print_json(comparison)
    else:
        print(format_comparison(comparison))
    return EXIT_OK
