"""``mlx report``: one self-contained HTML file about runs, or about the runs of a
sweep's points."""

from __future__ import annotations

import argparse
from typing import Any

from mlx.cli.options import check_output_file
from mlx.cli.output import EXIT_OK
from mlx.errors import MLXError, RunError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mlx.runs.store import RunDir

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``report`` subparser, run by :func:`run`."""
    parser = commands.add_parser(
        "report",
        help="write a self-contained HTML report of runs",
        description="One HTML file with, per run, the config, metrics and curves, "
        "evaluations, confusion matrix (classification) and environment; for several "
        "runs also a comparison and each varied parameter against --metric. No "
        "network, no JavaScript. Needs the plot extra.",
    )
    parser.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="run IDs or directories, or a sweep (its name or directory) for the "
        "runs of all its points",
    )
    parser.add_argument(
        "--metric",
        metavar="NAME",
        help="the metric to compare runs by (default: val_loss, else the runs' "
        "best-metric name)",
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="HTML file to write"
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Write the report of every run the arguments name."""
    from mlx.outputs.report import write_report

    if not args.output.lower().endswith((".html", ".htm")):
        raise MLXError(f"{args.output}: a report is an HTML file; name it *.html")
    check_output_file(args.output)
    runs: list[RunDir] = []
    sweeps: list[dict[str, Any]] = []
    for ref in args.runs:
        found, sweep = _runs_of(ref)
        runs += found
        sweeps += [sweep] if sweep is not None else []
    path = write_report(runs, args.output, metric=args.metric, sweeps=sweeps)
    print(f"wrote {path}")
    return EXIT_OK


def _runs_of(ref: str) -> tuple[list[RunDir], dict[str, Any] | None]:
    """The run ``ref`` names, or, when it names a sweep (its name or directory),
    the run of each of its points that has one, in the sweep's order, and the
    sweep's results as ``mlx sweep show --json`` gives them."""
    from mlx.runs import find_run
    from mlx.sweeps.show import build_report
    from mlx.sweeps.store import find_sweep

    try:
        return [find_run(ref)], None
    except RunError as not_a_run:
        try:
            sweep = find_sweep(ref)
        except RunError:
            raise not_a_run from None
    record = sweep.read()
    hashes = [p["hash"] for p in record["points"] if isinstance(p, dict)]
    states = sweep.states(hashes)
    runs = [run for h in hashes if (run := states[h].run) is not None]
    if not runs:
        raise RunError(f"sweep {sweep.name!r} has no runs yet: nothing to report")
    return runs, build_report(sweep, record)
