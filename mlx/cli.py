"""Command-line interface: ``mlx run-experiment``, ``mlx eval``, ``mlx runs``,
``mlx sweep``.

Only the standard library is imported at module level so that ``mlx --help`` and
``mlx --version`` start fast; each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from mlx import DISTRIBUTION, __version__
from mlx.errors import MLXError, MLXWarning

# typing costs a few milliseconds of start-up, and the config package imports YAML:
# both are for type checkers only here
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, NoReturn, Sequence

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
    run.add_argument(
        "--resume",
        metavar="RUN",
        help="continue a stopped run (ID or directory) from its last checkpoint; "
        "only training.epochs and output options may change with --set",
    )
    run.add_argument(
        "--quiet",
        action="store_true",
        help="no progress output on stderr (train.log is still written)",
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
    ev.add_argument(
        "--metrics",
        nargs="+",
        metavar="METRIC",
        help="metrics to compute (default: the task's standard set)",
    )
    ev.add_argument(
        "--split",
        choices=("test", "val", "train"),
        default="test",
        help="which split to evaluate on (default: test)",
    )
    ev.add_argument(
        "--checkpoint",
        default="final",
        metavar="final|epoch-N",
        help="which weights to evaluate (default: final)",
    )
    ev.add_argument(
        "--save-predictions",
        action="store_true",
        help="also write predictions.csv in the run directory",
    )
    ev.add_argument(
        "--dry-run",
        action="store_true",
        help="check that the run can be evaluated, without computing or writing; "
        "without a run, list the runs that can be evaluated",
    )

    runs = commands.add_parser(
        "runs",
        help="list runs, newest first, or show one",
        description="List the runs under the outputs directory, newest first "
        "(`mlx runs`), or show one run (`mlx runs show RUN`).",
    )
    runs.add_argument("action", nargs="?", choices=("show",), help="show one run")
    runs.add_argument("run", nargs="?", metavar="RUN", help="run ID or directory")
    runs.add_argument(
        "--root",
        metavar="DIR",
        help="where to look for runs (default: <repository root>/outputs)",
    )

    from mlx.sweeps.command import add_parser as add_sweep_parser

    add_sweep_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    warnings.showwarning = _show_warning
    try:
        if args.command == "run-experiment":
            return _run_experiment(parser, args)
        if args.command == "runs":
            return _runs(parser, args)
        if args.command == "sweep":
            from mlx.sweeps.command import run as run_sweep

            return run_sweep(parser, args)
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


_default_showwarning = warnings.showwarning


def _show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    # our own warnings read like our errors; anything else keeps Python's format
    if issubclass(category, MLXWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        _default_showwarning(message, category, *args, **kwargs)


def _print_error(exc: MLXError) -> None:
    # a ConfigError's message holds one problem per line
    for line in exc.message.splitlines() or [""]:
        print(f"error: {line}", file=sys.stderr)
    if exc.hint:
        print(f"hint: {exc.hint}", file=sys.stderr)


def _run_experiment(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.resume:
        if args.config or args.experiment_name or args.dry_run:
            _usage_error(
                parser,
                "run-experiment: --resume takes the run's own config; it cannot be "
                "combined with --config, a name or --dry-run",
            )
        return _execute(None, args)
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


def _execute(config: ExperimentConfig | None, args: argparse.Namespace) -> int:
    """Run the fully resolved experiment ``config``, or resume ``args.resume``."""
    from mlx.errors import RunInterrupted
    from mlx.experiment import run_experiment

    try:
        if config is None:
            run = run_experiment(
                resume=args.resume, overrides=args.overrides, quiet=args.quiet
            )
        else:
            run = run_experiment(config, quiet=args.quiet)
    except RunInterrupted as exc:
        _print_error(exc)
        return exc.exit_code
    rows = [("run", run.run_id), ("directory", str(run.directory))]
    rows += [("status", run.status)]
    rows += [(k, _format_value(v)) for k, v in run.final_metrics.items()]
    print(_table(rows))
    return EXIT_OK


def _eval(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if not args.experiment_id and not args.dry_run:
        _usage_error(
            parser, "eval: the following arguments are required: experiment_id"
        )
    from mlx.evaluation import evaluate

    if args.dry_run and not args.experiment_id:
        return _list_evaluable()
    result = evaluate(
        args.experiment_id,
        metrics=args.metrics,
        split=args.split,
        checkpoint=args.checkpoint,
        save_predictions=args.save_predictions,
        dry_run=args.dry_run,
    )
    if args.dry_run:
        print(
            f"run {result['run_id']} can be evaluated: checkpoint "
            f"{result['checkpoint']!r} loads; metrics on the {result['split']} "
            f"split: {', '.join(result['metric_names'])}"
        )
        return EXIT_OK
    rows = [
        ("run", result["run_id"]),
        ("split", f"{result['split']} ({result['n_samples']} samples)"),
        ("checkpoint", result["checkpoint"]),
        ("model", _model_text(result["model"])),
    ]
    rows += [(k, _format_value(v)) for k, v in result["metrics"].items()]
    rows.append(("saved", result["path"]))
    if "predictions" in result:
        rows.append(("predictions", result["predictions"]))
    print(_table(rows))
    return EXIT_OK


def _model_text(model: dict) -> str:
    count = model.get("parameters")
    return f"{model['name']}, " + (
        "parameter count unknown" if count is None else f"{count:,} parameters"
    )


def _list_evaluable() -> int:
    from mlx.runs import format_runs_table, list_runs

    runs = [r for r in list_runs() if (r.path / "model").is_dir()]
    if not runs:
        print("no runs with a final model to evaluate")
        return EXIT_OK
    print(format_runs_table(runs))
    return EXIT_OK


def _runs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from pathlib import Path

    from mlx.runs import find_run, format_run, format_runs_table, list_runs

    root = Path(args.root) if args.root else None
    if args.action == "show":
        if not args.run:
            _usage_error(parser, "runs show: the following arguments are required: RUN")
        print(format_run(find_run(args.run, root)))
        return EXIT_OK
    if args.run:
        _usage_error(parser, "runs: did you mean `mlx runs show RUN`?")
    runs = list_runs(root)
    print(format_runs_table(runs) if runs else "no runs yet")
    return EXIT_OK


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):  # a confusion matrix: one row per line
        return "\n".join(" ".join(str(v) for v in row) for row in value)
    return str(value)


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    lines = []
    for key, value in rows:
        first, *rest = value.splitlines() or [""]
        lines.append(f"{key.ljust(width)}  {first}")
        lines += [f"{' ' * width}  {line}" for line in rest]
    return "\n".join(lines)


def _usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.exit(EXIT_ERROR, f"error: {message}\n")
