"""The ``mlx sweep`` command line: its arguments (standard library only, so that
``mlx --help`` stays light) and its entry point, which imports the rest lazily."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 1, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    sweep = commands.add_parser(
        "sweep",
        help="run an experiment over a grid or random space of parameters",
        description="Run every point of a sweep file (a base experiment config and "
        "the parameters to vary), each as its own process; resume a stopped sweep "
        "(`--resume SWEEP`), or show its results (`mlx sweep show SWEEP`).",
    )
    sweep.add_argument("action", nargs="?", choices=("show",), help="show a sweep")
    sweep.add_argument(
        "sweep", nargs="?", metavar="SWEEP", help="sweep name or directory"
    )
    sweep.add_argument("--config", metavar="FILE", help="the sweep file (YAML or JSON)")
    sweep.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field of the base config, as run-experiment --set",
    )
    sweep.add_argument(
        "--dry-run",
        action="store_true",
        help="list every point and validate its config, running nothing",
    )
    sweep.add_argument(
        "--resume",
        metavar="SWEEP",
        help="continue a sweep (name or directory): skip completed points, resume "
        "interrupted ones, re-run failed and lost ones",
    )
    failed = sweep.add_mutually_exclusive_group()
    failed.add_argument(
        "--retry-failed",
        dest="retry_failed",
        action="store_true",
        default=True,
        help="on --resume, run failed points again (the default)",
    )
    failed.add_argument(
        "--skip-failed",
        dest="retry_failed",
        action="store_false",
        help="on --resume, leave failed points as they are",
    )
    sweep.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local process pool (default) or Ray (the ray extra)",
    )
    sweep.add_argument(
        "--jobs",
        type=_positive,
        metavar="N",
        help="points run at once (default: cores / --threads-per-point)",
    )
    sweep.add_argument(
        "--threads-per-point",
        type=_positive,
        default=1,
        metavar="T",
        help="BLAS/OpenMP/torch threads of each point (default 1); with Ray, the "
        "CPUs each point's task asks for",
    )
    sweep.add_argument(
        "--address",
        metavar="ADDRESS",
        help="with --executor ray: join this Ray cluster (default: start a local one)",
    )
    sweep.add_argument(
        "--fail-fast", action="store_true", help="stop at the first failed point"
    )
    sweep.add_argument(
        "--max-failures",
        type=_positive,
        metavar="N",
        help="stop after N failed points",
    )
    sweep.add_argument(
        "--json",
        action="store_true",
        help="print the results as one JSON object instead of the table",
    )
    sweep.add_argument(
        "--sort", metavar="METRIC", help="order the table by this final metric"
    )
    sweep.add_argument(
        "--quiet", action="store_true", help="no progress lines on stderr"
    )
    return sweep


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Check the combination of arguments, then show or drive the sweep."""

    def usage(message: str) -> int:
        parser.exit(1, f"error: sweep: {message}\n")
        return 1  # pragma: no cover

    if args.action == "show":
        if not args.sweep:
            return usage("show: the following arguments are required: SWEEP")
        extra = [
            flag
            for flag, given in (
                ("--config", args.config),
                ("--resume", args.resume),
                ("--dry-run", args.dry_run),
                ("--set", args.overrides),
            )
            if given
        ]
        if extra:
            return usage(f"show takes only SWEEP, --json and --sort, not {extra[0]}")
        from mlx.sweeps.driver import show_sweep

        return show_sweep(args)
    if args.sweep:
        return usage(
            f"unexpected argument {args.sweep!r}; did you mean `mlx sweep show "
            f"{args.sweep}` or `mlx sweep --resume {args.sweep}`?"
        )
    if bool(args.config) == bool(args.resume):
        return usage("give either --config FILE (a new sweep) or --resume SWEEP")
    if args.resume and (args.overrides or args.dry_run):
        return usage(
            "--resume takes the sweep's own file and --set values; it cannot be "
            "combined with --set or --dry-run"
        )
    if args.address and args.executor != "ray":
        return usage("--address needs --executor ray")
    if args.fail_fast and args.max_failures is not None:
        return usage(
            "--fail-fast stops at the first failure; give it or --max-failures N, "
            "not both"
        )
    if not args.retry_failed and not args.resume:
        return usage("--skip-failed applies to --resume: a new sweep has no failures")
    from mlx.sweeps.driver import run_sweep

    return run_sweep(args)
