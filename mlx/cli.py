"""Command-line interface: ``mlx run-experiment``, ``mlx eval``.

Only the standard library is imported at module level so that ``mlx --help`` and
``mlx --version`` start fast; each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Sequence

from mlx import DISTRIBUTION, __version__
from mlx.errors import MLXError, MLXWarning

if TYPE_CHECKING:  # the config package imports YAML: load it only when a command runs
    from mlx.config import ExperimentConfig

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
    # a ConfigError's message holds one problem per line
    for line in exc.message.splitlines() or [""]:
        print(f"error: {line}", file=sys.stderr)
    if exc.hint:
        print(f"hint: {exc.hint}", file=sys.stderr)


def _run_experiment(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if not args.experiment_name and not args.config and not args.dry_run:
        _usage_error(
            parser,
            "run-experiment: the following arguments are required: "
            "experiment_name (or --config CONFIG)",
        )
    config = _with_warnings_printed(lambda: _resolve_config(args))
    if args.dry_run:
        from mlx.plan import render_dry_run

        sys.stdout.write(render_dry_run(config))
        return EXIT_OK
    return _execute(config, args)


def _resolve_config(args: argparse.Namespace) -> ExperimentConfig:
    """The config the command line asks for: file or built-in default, overridden."""
    from mlx.config import Override, default_config, load_config

    overrides: list[Any] = []
    if args.experiment_name and args.config:
        name = args.experiment_name
        overrides.append(Override("name", name, f"experiment name {name!r}"))
    overrides += args.overrides
    if args.config:
        return load_config(args.config, overrides)
    name = args.experiment_name or "default"
    print(
        f"note: no --config given; using the built-in default experiment "
        f"(synthetic classification + MLP) named {name!r}",
        file=sys.stderr,
    )
    return default_config(name, overrides=overrides)


def _with_warnings_printed(load: Callable[[], ExperimentConfig]) -> ExperimentConfig:
    """Run ``load``, printing each mlx warning it issues once, as ``warning: ...``.

    Warnings are printed even when ``load`` fails, before its error.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MLXWarning)
        try:
            return load()
        finally:
            seen = set()
            for record in caught:
                text = str(record.message)
                if issubclass(record.category, MLXWarning) and text not in seen:
                    seen.add(text)
                    print(f"warning: {text}", file=sys.stderr)


def _execute(config: ExperimentConfig, args: argparse.Namespace) -> int:
    """Run the fully resolved experiment ``config``: the single call point of runs."""
    raise MLXError(
        "running experiments is not available in this build yet; use --dry-run"
    )


def _eval(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if not args.experiment_id and not args.dry_run:
        _usage_error(
            parser, "eval: the following arguments are required: experiment_id"
        )
    raise MLXError("evaluation is not available yet")


def _usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.exit(EXIT_ERROR, f"error: {message}\n")
