"""``mlx runs``: list the runs under the outputs directory, newest first, or show one
(``mlx runs show RUN``)."""

from __future__ import annotations

import argparse
import os

from mlx.cli.options import add_json, add_root, root_path
from mlx.cli.output import EXIT_OK, print_json, usage_error

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``runs`` subparser, run by :func:`run`."""
    parser = commands.add_parser(
        "runs",
        help="list runs, newest first, or show one",
        description="List the runs under the outputs directory, newest first "
        "(`mlx runs`), or show one run (`mlx runs show RUN`).",
    )
    parser.add_argument("action", nargs="?", choices=("show",), help="show one run")
    # `run` would clash with the function that runs the command (set_defaults)
    parser.add_argument("run_ref", nargs="?", metavar="RUN", help="run ID or directory")
    add_root(parser)
    add_json(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """The table of runs (or their JSON records), or one run's details."""
    from mlx.runs import find_run, format_run, format_runs_table, list_runs
    from mlx.runs.listing import run_details, run_record

    root = root_path(args)
    if args.action == "show":
        if not args.run_ref:
            usage_error("runs show: the following arguments are required: RUN")
        if args.json:
            print_json(run_details(find_run(args.run_ref, root)))
        else:
            print(format_run(find_run(args.run_ref, root)))
        return EXIT_OK
    if args.run_ref:
        usage_error("runs: did you mean `mlx runs show RUN`?")
    runs = list_runs(root)
    if args.json:
        print_json([run_record(info) for info in runs])
    elif not runs and root is not None and not root.is_dir():
        print(f"no runs yet ({os.fspath(root)} does not exist)")
    else:
        print(format_runs_table(runs) if runs else "no runs yet")
    return EXIT_OK
