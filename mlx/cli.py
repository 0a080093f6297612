"""Command-line interface: ``mlx run-experiment``, ``mlx eval``, ``mlx runs``,
``mlx compare``, ``mlx completion``, ``mlx export``, ``mlx plot``, ``mlx report``,
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

_JSON_HELP = "print one JSON document on stdout instead of text (messages on stderr)"


class _Parser(argparse.ArgumentParser):
    """argparse with the spec's exit code: usage errors exit 1, not 2."""

    def print_help(self, file: Any = None) -> None:
        # a stream the command was started without (`>&-`) is None: nothing to print
        if file is not None or sys.stdout is not None:
            super().print_help(file)

    def _print_message(self, message: str, file: Any = None) -> None:
        # argparse swallows a failed write; a closed stdout must reach main()
        stream = file if file is not None else sys.stderr
        if message and stream is not None:
            stream.write(message)

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
        "(repeatable; VALUE is parsed as YAML 1.2)",
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
    run.add_argument("--json", action="store_true", help=_JSON_HELP)

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
    ev.add_argument("--json", action="store_true", help=_JSON_HELP)

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
    runs.add_argument("--json", action="store_true", help=_JSON_HELP)
    _add_compare_parser(commands)
    _add_completion_parser(commands)
    _add_export_parser(commands)
    _add_plot_parser(commands)
    _add_report_parser(commands)

    from mlx.sweeps.command import add_parser as add_sweep_parser

    add_sweep_parser(commands)
    return parser


def _add_plot_parser(commands: Any) -> None:
    plot = commands.add_parser(
        "plot",
        help="draw learning curves of runs to a PNG, SVG or PDF file",
        description="Learning curves: one panel per metric, one line per run, epochs "
        "on x. The output file's extension (.png, .svg, .pdf) picks the format. A "
        "run still training plots the epochs it has finished. Needs the plot extra "
        "(pip install 'model-harness[plot]').",
    )
    plot.add_argument("runs", nargs="+", metavar="RUN", help="run IDs or directories")
    plot.add_argument(
        "--metric",
        dest="metrics",
        action="append",
        nargs="+",
        metavar="NAME",
        help="metrics to plot, one panel each (default: train_loss val_loss)",
    )
    plot.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="image file to write"
    )


def _add_report_parser(commands: Any) -> None:
    report = commands.add_parser(
        "report",
        help="write a self-contained HTML report of runs",
        description="One HTML file with, per run, the config, metrics and curves, "
        "evaluations, confusion matrix (classification) and environment; for several "
        "runs also a comparison and each varied parameter against --metric. No "
        "network, no JavaScript. Needs the plot extra.",
    )
    report.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="run IDs or directories, or a sweep (its name or directory) for the "
        "runs of all its points",
    )
    report.add_argument(
        "--metric",
        metavar="NAME",
        help="the metric to compare runs by (default: val_loss, else the runs' "
        "best-metric name)",
    )
    report.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="HTML file to write"
    )


def _add_export_parser(commands: Any) -> None:
    export = commands.add_parser(
        "export",
        help="log runs to an MLflow tracking server or store",
        description="Log each run to MLflow: params (the resolved config), per-epoch "
        "metrics (step = epoch), eval metrics, tags and artifacts. Exporting again "
        "updates the same MLflow run.",
    )
    export.add_argument("runs", nargs="+", metavar="RUN", help="run ID or directory")
    export.add_argument(
        "--mlflow",
        metavar="URI",
        help="tracking server (http://host:port) or store (sqlite:///mlflow.db, a "
        "directory); default: $MLFLOW_TRACKING_URI",
    )
    export.add_argument(
        "--experiment",
        metavar="NAME",
        help="MLflow experiment to log to (default: each run's name)",
    )
    export.add_argument(
        "--root",
        metavar="DIR",
        help="where to look for runs (default: <repository root>/outputs)",
    )


def _add_compare_parser(commands: Any) -> None:
    compare = commands.add_parser(
        "compare",
        help="compare two or more runs side by side",
        description="Show runs side by side: the config fields that differ, final "
        "and best metrics, the latest evaluation, epochs, duration and status.",
    )
    compare.add_argument(
        "compare_runs", nargs="*", metavar="RUN", help="run IDs or directories"
    )
    compare.add_argument(
        "--root",
        metavar="DIR",
        help="where to look for runs (default: <repository root>/outputs)",
    )
    compare.add_argument("--json", action="store_true", help=_JSON_HELP)


def _add_completion_parser(commands: Any) -> None:
    completion = commands.add_parser(
        "completion",
        help="print a shell completion script (bash or zsh)",
        description="Print a completion script for bash or zsh on stdout; see the "
        "README for where to put it.",
    )
    completion.add_argument("shell", choices=("bash", "zsh"), help="the shell")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _main(argv)
        finally:
            # here, not at exit: a closed pipe is found while it can be handled (also
            # after --help and --version, whose SystemExit passes through); stdout is
            # None when the command was started with it closed (`mlx runs >&-`)
            if sys.stdout is not None:
                sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (`mlx runs | head -1`): stop quietly, as a Unix tool
        # killed by SIGPIPE does, with the status a shell reports for one
        _detach_closed_streams()
        return EXIT_BROKEN_PIPE


EXIT_BROKEN_PIPE = 128 + 13  # 128 + SIGPIPE


def _detach_closed_streams() -> None:
    """Point stdout (and a closed stderr) at /dev/null, so that the interpreter's
    final flush finds nothing to complain about."""
    import os

    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            continue
        try:
            stream.flush()
        except (OSError, ValueError):
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
                os.close(devnull)
            except (OSError, ValueError):
                pass


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        if sys.stderr is not None:
            parser.print_help(sys.stderr)
        return EXIT_ERROR
    warnings.showwarning = _show_warning
    try:
        _check_path_arguments(parser, args)
        if args.command == "run-experiment":
            return _run_experiment(parser, args)
        if args.command == "runs":
            return _runs(parser, args)
        if args.command == "sweep":
            from mlx.sweeps.command import run as run_sweep

            return run_sweep(parser, args)
        if args.command == "plot":
            return _plot(args)
        if args.command == "report":
            return _report(args)
        if args.command == "export":
            return _export(parser, args)
        if args.command == "compare":
            return _compare(parser, args)
        if args.command == "completion":
            from mlx.completion import completion_script

            _write_stdout(completion_script(parser, args.shell))
            return EXIT_OK
        return _eval(parser, args)
    except MLXError as exc:
        if args.debug:
            raise
        _print_error(exc)
        return EXIT_ERROR
    except BrokenPipeError:
        raise
    except OSError as exc:
        # the environment said no somewhere no clearer message was made: still one
        # line that names the path, never a traceback
        if args.debug:
            raise
        from mlx.utils.atomic import os_error_text

        _print_error(MLXError(os_error_text(exc)))
        return EXIT_ERROR
    except KeyboardInterrupt:
        if args.debug:
            raise
        _err("error: interrupted")
        return 130
    except Exception as exc:
        # raised where no clearer message was made (a custom model's own code): one
        # line that says where, never a traceback
        if args.debug:
            raise
        from mlx.utils.raised import one_line

        _print_error(MLXError(one_line(exc), hint="mlx --debug shows the traceback"))
        return EXIT_ERROR


# the arguments that name files or runs, and how usage errors call them
_PATH_ARGUMENTS = (
    ("config", "--config"),
    ("resume", "--resume"),
    ("experiment_id", "RUN"),
    ("run", "RUN"),
    ("root", "--root"),
    ("output", "-o"),
    ("sweep", "SWEEP"),
)
_PATH_LISTS = (("compare_runs", "RUN"), ("runs", "RUN"))


def _check_path_arguments(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> None:
    from mlx.utils.paths import unprintable

    pairs = [(getattr(args, a, None), f) for a, f in _PATH_ARGUMENTS]
    for attribute, flag in _PATH_LISTS:
        pairs += [(value, flag) for value in getattr(args, attribute, None) or ()]
    for value, flag in pairs:
        problem = (
            unprintable(value, flag, "a path or run ID")
            if isinstance(value, str)
            else None
        )
        if problem is not None:
            _usage_error(parser, problem)


def _err(text: str) -> None:
    """One line on stderr; a closed stderr loses the line, never the command."""
    if sys.stderr is None:  # started with stderr closed (`2>&-`)
        return
    try:
        print(text, file=sys.stderr)
    except (OSError, ValueError):
        pass


_default_showwarning = warnings.showwarning


def _show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    # our own warnings read like our errors; anything else keeps Python's format
    if issubclass(category, MLXWarning):
        _err(f"warning: {message}")
    else:
        try:
            _default_showwarning(message, category, *args, **kwargs)
        except (OSError, ValueError):
            pass


def _print_error(exc: MLXError) -> None:
    # a ConfigError's message holds one problem per line
    for line in exc.message.splitlines() or [""]:
        _err(f"error: {line}")
    if exc.hint:
        _err(f"hint: {exc.hint}")


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
        if args.json:
            from mlx.plan import plan_record

            _print_json(plan_record(config))
            return EXIT_OK
        from mlx.plan import render_dry_run

        _write_stdout(render_dry_run(config))
        return EXIT_OK
    return _execute(config, args)


def _print_json(document: Any) -> None:
    """``document`` as strict JSON (NaN and infinities as null) on stdout."""
    from mlx.utils.atomic import to_json

    _write_stdout(to_json(document) + "\n")


def _write_stdout(text: str) -> None:
    """``text`` on stdout; a command started with stdout closed (``>&-``) has none,
    and loses the text as ``print`` does, never the command."""
    if sys.stdout is not None:
        sys.stdout.write(text)


def _stopped_run_record(exc: BaseException) -> dict[str, Any] | None:
    """The run record of a run that stopped with ``exc`` (failed or interrupted),
    read back from its summary; None when no run directory was made."""
    from mlx.runs.store import RunDir

    directory = getattr(exc, "run_directory", None)
    if directory is None:
        return None
    try:
        summary = RunDir(directory).read_summary()
    except MLXError:
        summary = {}
    final = summary.get("final_metrics")
    return {
        "run_id": summary.get("run_id") or directory.name,
        "directory": str(directory),
        "status": summary.get("status", "unknown"),
        "final_metrics": final if isinstance(final, dict) else {},
    }


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
    _err(
        f"note: no --config given; using the built-in default experiment "
        f"(synthetic classification + MLP) named {name!r}"
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
                    _err(f"warning: {text}")


def _execute(config: ExperimentConfig | None, args: argparse.Namespace) -> int:
    """Run the fully resolved experiment ``config``, or resume ``args.resume``."""

    with _log_to_stderr(not args.quiet):
        return _execute_logged(config, args)


def _log_to_stderr(enabled: bool) -> Any:
    """The run's lines on stderr, as plain text: a handler on the ``mlx`` logger
    for as long as the command runs (none with --quiet)."""
    import contextlib
    import logging

    from mlx.console import StreamLineHandler

    @contextlib.contextmanager
    def attached() -> Any:
        logger = logging.getLogger("mlx")
        handler = StreamLineHandler()
        if enabled:
            logger.addHandler(handler)
        try:
            yield
        finally:
            logger.removeHandler(handler)

    return attached()


def _execute_logged(config: ExperimentConfig | None, args: argparse.Namespace) -> int:
    from mlx.errors import RunInterrupted
    from mlx.experiment import run_experiment

    try:
        if config is None:
            run = run_experiment(
                resume=args.resume, overrides=args.overrides, quiet=args.quiet
            )
        else:
            run = run_experiment(config, quiet=args.quiet)
    except MLXError as exc:
        record = _stopped_run_record(exc) if args.json else None
        if record is not None:
            _print_json(record)
        if isinstance(exc, RunInterrupted):
            _print_error(exc)
            return exc.exit_code
        raise
    except Exception as exc:
        # raised by the model's own code (a custom forward or train_step) or a
        # defect: the run is marked failed and its train.log holds the traceback
        directory = getattr(exc, "run_directory", None)
        if directory is None:
            raise
        record = _stopped_run_record(exc)
        if args.json and record is not None:
            _print_json(record)
        from mlx.errors import RunError
        from mlx.utils.raised import one_line

        raise RunError(
            f"run {directory.name} failed: {one_line(exc)}",
            hint=f"the traceback is in {directory / 'train.log'}; "
            "mlx --debug shows it here",
        ) from exc
    if args.json:
        _print_json(
            {
                "run_id": run.run_id,
                "directory": str(run.directory),
                "status": run.status,
                "final_metrics": dict(run.final_metrics),
            }
        )
        return EXIT_OK
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
    from mlx.evaluation import EvaluationNotSaved, evaluate

    if args.dry_run and not args.experiment_id:
        return _list_evaluable(args.json)
    try:
        result = evaluate(
            args.experiment_id,
            metrics=args.metrics,
            split=args.split,
            checkpoint=args.checkpoint,
            save_predictions=args.save_predictions,
            dry_run=args.dry_run,
        )
    except EvaluationNotSaved as exc:
        # what was computed is shown; that it was not recorded is an error
        if args.json:
            _print_json({**exc.result, "path": None})
        else:
            print(_eval_table(exc.result, saved="no (see the error below)"))
        if sys.stdout is not None:
            sys.stdout.flush()
        raise
    if args.json:
        if args.dry_run:
            result = {k: v for k, v in result.items() if k != "metrics"}
            result["can_evaluate"] = True
        _print_json(result)
        return EXIT_OK
    if args.dry_run:
        print(
            f"run {result['run_id']} can be evaluated: checkpoint "
            f"{result['checkpoint']!r} loads; metrics on the {result['split']} "
            f"split: {', '.join(result['metric_names'])}"
        )
        return EXIT_OK
    print(_eval_table(result, saved=result["path"]))
    return EXIT_OK


def _eval_table(result: dict[str, Any], saved: str) -> str:
    rows = [
        ("run", result["run_id"]),
        ("split", f"{result['split']} ({result['n_samples']} samples)"),
        ("checkpoint", result["checkpoint"]),
        ("model", _model_text(result["model"])),
    ]
    rows += [(k, _format_value(v)) for k, v in result["metrics"].items()]
    rows.append(("saved", saved))
    if "predictions" in result:
        rows.append(("predictions", result["predictions"]))
    return _table(rows)


def _model_text(model: dict) -> str:
    count = model.get("parameters")
    return f"{model['name']}, " + (
        "parameter count unknown" if count is None else f"{count:,} parameters"
    )


def _list_evaluable(as_json: bool = False) -> int:
    from mlx.runs import format_runs_table, list_runs

    runs = [r for r in list_runs() if (r.path / "model").is_dir()]
    if as_json:
        from mlx.runs.listing import run_record

        _print_json([run_record(info) for info in runs])
        return EXIT_OK
    if not runs:
        print("no runs with a final model to evaluate")
        return EXIT_OK
    print(format_runs_table(runs))
    return EXIT_OK


def _runs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    import os

    from mlx.runs import find_run, format_run, format_runs_table, list_runs

    root = _root_argument(args)
    if args.action == "show":
        if not args.run:
            _usage_error(parser, "runs show: the following arguments are required: RUN")
        if args.json:
            from mlx.runs.listing import run_details

            _print_json(run_details(find_run(args.run, root)))
            return EXIT_OK
        print(format_run(find_run(args.run, root)))
        return EXIT_OK
    if args.run:
        _usage_error(parser, "runs: did you mean `mlx runs show RUN`?")
    runs = list_runs(root)
    if args.json:
        from mlx.runs.listing import run_record

        _print_json([run_record(info) for info in runs])
        return EXIT_OK
    if not runs and root is not None and not root.is_dir():
        print(f"no runs yet ({os.fspath(root)} does not exist)")
        return EXIT_OK
    print(format_runs_table(runs) if runs else "no runs yet")
    return EXIT_OK


def _root_argument(args: argparse.Namespace) -> Any:
    """``--root`` as a Path (None when not given); RunError for a non-directory."""
    import os
    from pathlib import Path

    root = Path(args.root) if args.root else None
    if root is not None and os.path.lexists(root) and not root.is_dir():
        from mlx.errors import RunError

        raise RunError(f"--root {os.fspath(root)!r} is not a directory")
    return root


def _compare(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from mlx.runs.compare import compare_runs, format_comparison

    if len(args.compare_runs) < 2:
        _usage_error(
            parser,
            "compare: give two or more runs: mlx compare RUN RUN... [--json]"
            + (f" (got only {args.compare_runs[0]!r})" if args.compare_runs else ""),
        )
    comparison = compare_runs(args.compare_runs, _root_argument(args))
    if args.json:
        _print_json(comparison)
    else:
        print(format_comparison(comparison))
    return EXIT_OK


def _plot(args: argparse.Namespace) -> int:
    from mlx.plots import DEFAULT_METRICS, figure_format, learning_curves, save_figure
    from mlx.report import labelled_runs, read_run_metrics
    from mlx.runs import find_run

    figure_format(args.output)  # an unknown extension fails before any work
    _check_output_file(args.output)
    metrics = [m for group in args.metrics for m in group] if args.metrics else None
    found = labelled_runs([find_run(ref) for ref in args.runs])
    runs = {label: read_run_metrics(run) for label, run in found}
    figure = learning_curves(runs, list(dict.fromkeys(metrics or DEFAULT_METRICS)))
    path = save_figure(figure, args.output)
    print(f"wrote {path}")
    return EXIT_OK


def _check_output_file(path: str) -> None:
    """``path`` can take a new file: not a directory, its directory exists."""
    import os

    if os.path.isdir(path):
        raise MLXError(f"{path}: is a directory; name the file to write")
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise MLXError(f"{path}: the directory {parent} does not exist")


def _report(args: argparse.Namespace) -> int:
    from mlx.report import write_report
    from mlx.runs import find_run

    if not args.output.lower().endswith((".html", ".htm")):
        raise MLXError(f"{args.output}: a report is an HTML file; name it *.html")
    _check_output_file(args.output)
    runs = [run for ref in args.runs for run in _runs_of(ref, find_run)]
    path = write_report(runs, args.output, metric=args.metric)
    print(f"wrote {path}")
    return EXIT_OK


def _runs_of(ref: str, find_run: Any) -> list[Any]:
    """The run ``ref`` names, or, when it names a sweep (its name or directory),
    the run of each of its points that has one, in the sweep's order."""
    from mlx.errors import RunError

    try:
        return [find_run(ref)]
    except RunError as not_a_run:
        from mlx.sweeps.store import find_sweep

        try:
            sweep = find_sweep(ref)
        except RunError:
            raise not_a_run from None
    hashes = [p["hash"] for p in sweep.read()["points"] if isinstance(p, dict)]
    states = sweep.states(hashes)
    runs = [states[h].run for h in hashes if states[h].run is not None]
    if not runs:
        raise RunError(f"sweep {sweep.name!r} has no runs yet: nothing to report")
    return runs


def _export(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    import os

    from mlx.runs import find_run

    uri = args.mlflow or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        _usage_error(
            parser,
            "export: --mlflow URI is required (or set MLFLOW_TRACKING_URI)",
        )
    from mlx.export_mlflow import export_runs

    # every run resolves before anything is sent
    runs = [find_run(ref, args.root) for ref in args.runs]

    def report(outcome: Any) -> None:
        for note in outcome.notes:
            _err(f"note: {outcome.run_id}: {note}")
        verb = "created" if outcome.created else "updated"
        print(
            f"{outcome.run_id}: {verb} MLflow run {outcome.mlflow_run_id} in "
            f"experiment {outcome.experiment!r} (ID {outcome.experiment_id}): "
            f"{outcome.params_logged} params, {outcome.metrics_logged} metric "
            f"values logged ({outcome.metrics_present} already there), artifacts "
            f"{', '.join(outcome.artifacts) or 'none'}"
            + (f"\n  {outcome.url}" if outcome.url else "")
        )
        if sys.stdout is not None:
            sys.stdout.flush()

    export_runs(runs, uri, experiment=args.experiment, report=report)
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
