"""``mlx sweep``: run every point of a sweep file, resume a stopped sweep, or show
its results (``mlx sweep show SWEEP``)."""

from __future__ import annotations

import argparse

from mlx.cli.options import add_overrides
from mlx.cli.output import usage_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

__all__ = ["MAX_PARALLEL", "add_parser", "parse_address", "run"]

#: The most points at once (--jobs) and threads per point (--threads-per-point), as
#: MLX_NUM_THREADS: far inside what Ray accepts as CPUs (1e14) and what a process
#: pool or torch (2^31 - 1 threads) would take.
MAX_PARALLEL = 4096


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


def _parallel(text: str) -> int:
    value = _positive(text)
    if value > MAX_PARALLEL:
        raise argparse.ArgumentTypeError(
            f"expected an integer in [1, {MAX_PARALLEL}], got {text!r}"
        )
    return value


def parse_address(text: str) -> tuple[str, int]:
    """``(host, port)`` of a Ray cluster's address ``HOST:PORT`` (``[IPv6]:PORT``);
    ValueError saying what is wrong."""
    if "://" in text:
        scheme = text.split("://", 1)[0]
        kind = "a Ray Client" if scheme == "ray" else f"a {scheme}://"
        raise ValueError(
            f"{text!r} is {kind} address; "
            "give the cluster's address HOST:PORT (as `ray start --head` prints it) "
            "and run mlx sweep on a node of the cluster, which shares its files"
        )
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or any(c.isspace() for c in host):
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"the port must be a number in [1, 65535], got {port!r}")
    return host, int(port)


def _address(text: str) -> str:
    try:
        parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``sweep`` subparser, run by :func:`run`."""
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
    add_overrides(
        sweep,
        "override a field of the base config, as run-experiment --set",
    )
    sweep.add_argument(
        "--dry-run",
        action="store_true",
        help="list every point and validate its config, running nothing; exit "
        "status 1: an invalid config, 3: valid, but a point cannot run here",
    )
    sweep.add_argument(
        "--resume",
        metavar="SWEEP",
        help="continue a sweep (name or directory): skip completed points, resume "
        "interrupted ones, re-run failed and lost ones",
    )
    _add_execution_options(sweep)
    sweep.add_argument(
        "--json",
        action="store_true",
        help="print the results as one JSON object instead of the table",
    )
    sweep.add_argument(
        "--sort",
        metavar="METRIC",
        help="order the table by this final metric, best first (in a "
        "cross-validation, by its mean over each group's folds)",
    )
    sweep.add_argument(
        "--quiet", action="store_true", help="no progress lines on stderr"
    )
    sweep.set_defaults(run=run)
    return sweep


def _add_execution_options(sweep: argparse.ArgumentParser) -> None:
    """How the points run: failures, executor, parallelism."""
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
        type=_parallel,
        metavar="N",
        help="points run at once (default: cores / --threads-per-point)",
    )
    sweep.add_argument(
        "--threads-per-point",
        type=_parallel,
        default=1,
        metavar="T",
        help="BLAS/OpenMP/torch threads of each point (default 1); with Ray, the "
        "CPUs each point's task asks for",
    )
    sweep.add_argument(
        "--address",
        metavar="HOST:PORT",
        type=_address,
        help="with --executor ray: join this Ray cluster, from one of its nodes "
        "(default: start a local one)",
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


def run(args: argparse.Namespace) -> int:
    """Check the combination of arguments, then show or drive the sweep."""
    if args.action == "show":
        _check_show(args)
        from mlx.sweeps.driver import show_sweep

        return show_sweep(args)
    _check_drive(args)
    from mlx.sweeps.driver import run_sweep

    return run_sweep(args)


def _usage(message: str) -> NoReturn:
    usage_error(f"sweep: {message}")


def _check_show(args: argparse.Namespace) -> None:
    """``mlx sweep show`` takes a sweep, --json and --sort, nothing else."""
    if not args.sweep:
        _usage("show: the following arguments are required: SWEEP")
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
        _usage(f"show takes only SWEEP, --json and --sort, not {extra[0]}")


def _check_drive(args: argparse.Namespace) -> None:
    """A new sweep (--config) or a resumed one (--resume), and options that fit."""
    if args.sweep:
        _usage(
            f"unexpected argument {args.sweep!r}; did you mean `mlx sweep show "
            f"{args.sweep}` or `mlx sweep --resume {args.sweep}`?"
        )
    if bool(args.config) == bool(args.resume):
        _usage("give either --config FILE (a new sweep) or --resume SWEEP")
    if args.resume and (args.overrides or args.dry_run):
        _usage(
            "--resume takes the sweep's own file and --set values; it cannot be "
            "combined with --set or --dry-run"
        )
    if args.address and args.executor != "ray":
        _usage("--address needs --executor ray")
    if args.fail_fast and args.max_failures is not None:
        _usage(
            "--fail-fast stops at the first failure; give it or --max-failures N, "
            "not both"
        )
    if not args.retry_failed and not args.resume:
        _usage("--skip-failed applies to --resume: a new sweep has no failures")
