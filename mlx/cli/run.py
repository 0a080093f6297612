"""``mlx run-experiment``: run an experiment from a config file (or the built-in
default), resume a stopped one, or only show its plan (``--dry-run``)."""

from __future__ import annotations

import argparse
import logging

from mlx.cli.options import add_json, add_overrides
from mlx.cli.output import (
    EXIT_OK,
    err,
    flush_stdout,
    format_value,
    key_value_table,
    print_json,
    usage_error,
    warnings_printed,
    write_stdout,
)
from mlx.errors import CannotRunHere, MLXError, RunError
from mlx.utils.raised import one_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from mlx.config import ExperimentConfig
    from mlx.config.loader import OverrideLike
    from mlx.experiment import Run

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``run-experiment`` subparser, run by :func:`run`."""
    parser = commands.add_parser(
        "run-experiment",
        help="run an experiment from a configuration file",
        description="Run an experiment. With --config, the file defines it; with "
        "only a name, a small built-in experiment (synthetic classification + MLP) "
        "runs under that name.",
    )
    parser.add_argument(
        "experiment_name",
        nargs="?",
        help="name of the experiment (required unless --config or --dry-run; "
        "overrides the config's name)",
    )
    parser.add_argument("--config", metavar="CONFIG", help="JSON or YAML config file")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the config and print the plan without running anything: "
        "the data (every file the run reads, or the source a download would "
        "fetch from), the model, the outputs; exit status 0: valid and can run "
        "here, 1: invalid config, 3: valid but cannot run here (the reason on "
        "stderr, and in --json as can_run and reason)",
    )
    add_overrides(
        parser,
        "override a config field by dotted path, e.g. training.epochs=5 "
        "(repeatable; VALUE is parsed as YAML 1.2)",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN",
        help="continue a stopped run (ID or directory) from its last checkpoint; "
        "only training.epochs and output options may change with --set",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress output on stderr (train.log is still written)",
    )
    add_json(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Check the combination of arguments, then dry-run, run or resume."""
    given_name = args.experiment_name is not None  # "" is a name, and refused
    if args.resume:
        if args.config or given_name or args.dry_run:
            usage_error(
                "run-experiment: --resume takes the run's own config; it cannot be "
                "combined with --config, a name or --dry-run"
            )
        return _execute(None, args)
    if not given_name and not args.config and not args.dry_run:
        usage_error(
            "run-experiment: the following arguments are required: "
            "experiment_name (or --config CONFIG)"
        )
    config = warnings_printed(lambda: _resolve_config(args))
    if args.dry_run:
        return _dry_run(config, args.json)
    return _execute(config, args)


def _resolve_config(args: argparse.Namespace) -> ExperimentConfig:
    """The config the command line asks for: file or built-in default, overridden."""
    from mlx.config import Override, default_config, load_config
    from mlx.experiment.checks import check_runnable, check_runnable_for_run

    # a run looks at its data before anything imports torch: its device check waits
    runnable = check_runnable if args.dry_run else check_runnable_for_run

    overrides: list[OverrideLike] = []
    if args.experiment_name is not None and args.config:
        name = args.experiment_name
        overrides.append(Override("name", name, f"experiment name {name!r}"))
    overrides += args.overrides
    if args.config:
        return load_config(args.config, overrides, runnable=runnable)
    name = "default" if args.experiment_name is None else args.experiment_name
    err(
        f"note: no --config given; using the built-in default experiment "
        f"(synthetic classification + MLP) named {name!r}"
    )
    return default_config(name, overrides=overrides, runnable=runnable)


def _dry_run(config: ExperimentConfig, as_json: bool) -> int:
    """The resolved config and the plan, as text or as one JSON document; exit
    status 3 (the reason on stderr) when the plan says the run cannot go ahead
    here."""
    from mlx.experiment.plan import make_plan, plan_record, render_dry_run

    plan = make_plan(config)
    if as_json:
        print_json(plan_record(config, plan))
    else:
        write_stdout(render_dry_run(config, plan))
    if plan.blocker is not None:
        flush_stdout()  # the plan first, then the verdict
        raise CannotRunHere(f"cannot run here: {plan.blocker}")
    return EXIT_OK


def _execute(config: ExperimentConfig | None, args: argparse.Namespace) -> int:
    """Run the fully resolved experiment ``config``, or resume ``args.resume``, the
    run's lines on stderr as plain text (none with --quiet) while it runs."""
    from mlx.experiment.console import StreamLineHandler

    logger = logging.getLogger("mlx")
    handler = StreamLineHandler()
    if not args.quiet:
        logger.addHandler(handler)
    try:
        finished = _run_or_resume(config, args)
    finally:
        logger.removeHandler(handler)
    if args.json:
        print_json(_run_record(finished))
        return EXIT_OK
    rows = [("run", finished.run_id), ("directory", str(finished.directory))]
    rows += [("status", finished.status)]
    rows += [(k, format_value(v)) for k, v in finished.final_metrics.items()]
    print(key_value_table(rows))
    return EXIT_OK


def _run_or_resume(config: ExperimentConfig | None, args: argparse.Namespace) -> Run:
    """The finished run. A run that stopped is reported (with --json, its record on
    stdout) and its error raised: a failure of the model's own code as a RunError
    that points at the traceback in ``train.log``."""
    from mlx.experiment import run_experiment
    from mlx.runs.store import RunDir

    try:
        if config is None:
            return run_experiment(
                resume=args.resume, overrides=args.overrides, quiet=args.quiet
            )
        return run_experiment(config, quiet=args.quiet)
    except MLXError as exc:
        if args.json:
            _print_stopped_run(exc)
        raise
    except Exception as exc:
        # raised by the model's own code (a custom forward or train_step) or a
        # defect: the run is marked failed and its train.log holds the traceback
        directory = getattr(exc, "run_directory", None)
        if directory is None:
            raise
        if args.json:
            _print_stopped_run(exc)
        raise RunError(
            f"run {directory.name} failed: {one_line(exc)}",
            hint=f"the traceback is in {RunDir(directory).log_path}; "
            "mlx --debug shows it here",
        ) from exc


def _run_record(finished: Run) -> dict[str, Any]:
    """A finished run as the JSON document of ``--json``."""
    return {
        "run_id": finished.run_id,
        "directory": str(finished.directory),
        "status": finished.status,
        "final_metrics": dict(finished.final_metrics),
    }


def _print_stopped_run(exc: BaseException) -> None:
    """The run record of a run that stopped with ``exc`` (failed or interrupted),
    read back from its summary, on stdout; nothing when no run directory was made."""
    from mlx.runs.store import RunDir

    directory = getattr(exc, "run_directory", None)
    if directory is None:
        return
    try:
        summary = RunDir(directory).read_summary()
    except MLXError:
        summary = {}
    final = summary.get("final_metrics")
    print_json(
        {
            "run_id": summary.get("run_id") or directory.name,
            "directory": str(directory),
            "status": summary.get("status", "unknown"),
            "final_metrics": final if isinstance(final, dict) else {},
        }
    )
