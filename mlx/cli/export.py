"""``mlx export``: log runs to an MLflow tracking server or store."""

from __future__ import annotations

import argparse
import os

from mlx.cli.options import add_root
from mlx.cli.output import EXIT_OK, err, flush_stdout, usage_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mlx.outputs.mlflow import ExportOutcome

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``export`` subparser, run by :func:`run`."""
    parser = commands.add_parser(
        "export",
        help="log runs to an MLflow tracking server or store",
        description="Log each run to MLflow: params (the resolved config), per-epoch "
        "metrics (step = epoch), eval metrics, tags and artifacts. Exporting again "
        "updates the same MLflow run.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run ID or directory")
    parser.add_argument(
        "--mlflow",
        metavar="URI",
        help="tracking server (http://host:port) or store (sqlite:///mlflow.db, a "
        "directory); default: $MLFLOW_TRACKING_URI",
    )
    parser.add_argument(
        "--experiment",
        metavar="NAME",
        help="MLflow experiment to log to (default: each run's name)",
    )
    add_root(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Export every run the arguments name, one line (and its notes) per run."""
    uri = args.mlflow or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        usage_error("export: --mlflow URI is required (or set MLFLOW_TRACKING_URI)")
    from mlx.outputs.mlflow import export_runs
    from mlx.runs import find_run
    from mlx.utils.signals import watch

    # every run resolves before anything is sent
    runs = [find_run(ref, args.root) for ref in args.runs]
    # SIGINT/SIGTERM stop the export where nothing is left half-made (see
    # mlx.utils.signals): a new store is made whole first, an MLflow run is
    # created with its tags at once
    with watch(_STOPPED):
        export_runs(runs, uri, experiment=args.experiment, report=_report)
    return EXIT_OK


_STOPPED = (
    "the export stopped part-way; export again to finish it (each run's MLflow run "
    "is found again and updated, never made twice)"
)


def _report(outcome: ExportOutcome) -> None:
    """What the export did to one run: its notes on stderr, a line on stdout."""
    for note in outcome.notes:
        err(f"note: {outcome.run_id}: {note}")
    verb = "created" if outcome.created else "updated"
    print(
        f"{outcome.run_id}: {verb} MLflow run {outcome.mlflow_run_id} in "
        f"experiment {outcome.experiment!r} (ID {outcome.experiment_id}): "
        f"{outcome.params_logged} params, {outcome.metrics_logged} metric "
        f"values logged ({outcome.metrics_present} already there), artifacts "
        f"{', '.join(outcome.artifacts) or 'none'}"
        + (f"\n  {outcome.url}" if outcome.url else "")
    )
    flush_stdout()
