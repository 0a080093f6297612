"""Command-line interface: ``mlx run-experiment``, ``mlx eval``.

Only the standard library is imported at module level so that ``mlx --help`` and
``mlx --version`` start fast; each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, Sequence

from mlx import DISTRIBUTION, __version__
from mlx.errors import MLXError

__all__ = ["build_parser", "main"]

EXIT_OK = 0
EXIT_ERROR = 1


class _Parser(argparse.ArgumentParser):
    """argparse with the spec's exit code: usage errors exit 1, not 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run-experiment",
        help="run an experiment from a configuration file",
        description="Run an experiment. With --config, the file defines it; with "
        "only a name, a small built-in experiment (synthetic classification + MLP) "
        "runs under that name.",
    )
    run.add_argument(
        "experiment_name",
        nargs="?",
        help="name of the experiment (required unless --config or --dry-run; "
        "overrides the config's name)",
    )
    run.add_argument("--config", metavar="CONFIG", help="JSON or YAML config file")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the config and print the plan without running anything",
    )
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field by dotted path, e.g. training.epochs=5 "
        "(repeatable; VALUE is parsed as YAML)",
    )

    ev = commands.add_parser(
        "eval",
        help="evaluate a finished experiment run",
        description="Evaluate a run's model on one of its dataset splits.",
    )
    ev.add_argument(
        "experiment_id",
        nargs="?",
        help="run ID or run directory (required unless --dry-run)",
    )
    ev.add_argument("--metrics", nargs="+", metavar="METRIC", help="metrics to compute")
    ev.add_argument(
        "--dry-run",
        action="store_true",
        help="check that the run can be evaluated without computing anything",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        if args.command == "run-experiment":
            return _run_experiment(parser, args)
        return _eval(parser, args)
    except MLXError as exc:
        if args.debug:
            raise
        _print_error(exc)
        return EXIT_ERROR
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("error: interrupted", file=sys.stderr)
        return 130


def _print_error(exc: MLXError) -> None:
    print(f"error: {exc.message}", file=sys.stderr)
    if exc.hint:
        print(f"hint: {exc.hint}", file=sys.stderr)


def _run_experiment(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if not args.experiment_name and not args.config and not args.dry_run:
        _usage_error(
            parser,
            "run-experiment: the following arguments are required: "
            "experiment_name (or --config CONFIG)",
        )
    raise MLXError(
        "running experiments is not available yet; use --dry-run to validate",
    )


def _eval(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if not args.experiment_id and not args.dry_run:
        _usage_error(
            parser, "eval: the following arguments are required: experiment_id"
        )
    raise MLXError("evaluation is not available yet")


def _usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.exit(EXIT_ERROR, f"error: {message}\n")
