"""``mlx export``: log runs to an MLflow tracking server or store, or write one
run's model as an ONNX or TorchScript file, parity-checked against the run."""

from __future__ import annotations

import argparse
import os

from mlx.cli.options import add_root
from mlx.cli.output import EXIT_OK, err, flush_stdout, usage_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mlx.outputs.mlflow import ExportOutcome
    from mlx.outputs.onnx import ExportedFile

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``export`` subparser, run by :func:`run`."""
    parser = commands.add_parser(
        "export",
        help="log runs to MLflow, or write a run's model as ONNX or TorchScript",
        description="Log each run to MLflow: params (the resolved config), per-epoch "
        "metrics (step = epoch), eval metrics, tags and artifacts. Exporting again "
        "updates the same MLflow run. With --onnx and/or --torchscript, write one "
        "run's model as a file instead: it takes the raw features (preprocessing "
        "inside) and gives what predict gives; it is written only when its outputs "
        "on the run's validation split are within 1e-4 of the run's model, and the "
        "check is recorded beside it in FILE.parity.json.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run ID or directory")
    parser.add_argument(
        "--mlflow",
        metavar="URI",
        help="tracking server (http://host:port) or store (sqlite:///mlflow.db, a "
        "directory); default: $MLFLOW_TRACKING_URI",
    )
    parser.add_argument(
        "--onnx",
        metavar="FILE",
        help="write the run's model as ONNX (mlp, linear_regression and torch "
        "models; needs the export extra)",
    )
    parser.add_argument(
        "--torchscript",
        metavar="FILE",
        help="write the run's torch model as TorchScript",
    )
    parser.add_argument(
        "--checkpoint",
        default="final",
        metavar="final|epoch-N",
        help="which weights --onnx/--torchscript export (default: final)",
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
    if args.onnx or args.torchscript:
        return _export_files(args)
    if args.checkpoint != "final":
        usage_error("export: --checkpoint goes with --onnx or --torchscript")
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


def _export_files(args: argparse.Namespace) -> int:
    """``--onnx``/``--torchscript``: one run, each file parity-checked; none is
    written unless every one passes."""
    if args.mlflow or args.experiment:
        usage_error(
            "export: --mlflow/--experiment and --onnx/--torchscript are separate "
            "exports; run them one at a time"
        )
    if len(args.runs) != 1:
        usage_error("export: --onnx and --torchscript export one run at a time")
    from mlx.outputs.onnx import export_files
    from mlx.runs import find_run

    run = find_run(args.runs[0], args.root)
    targets = {"onnx": args.onnx, "torchscript": args.torchscript}
    made = export_files(
        run,
        {fmt: path for fmt, path in targets.items() if path},
        checkpoint=args.checkpoint,
    )
    for exported in made:
        _report_file(exported)
    return EXIT_OK


def _report_file(exported: ExportedFile) -> None:
    """What one file export wrote, and its parity check."""
    parity = exported.parity
    epoch = parity.get("epoch")
    weights = parity["checkpoint"] + (f" (epoch {epoch})" if epoch is not None else "")
    print(
        f"{exported.path}: {exported.format} of run {parity['run_id']}, checkpoint "
        f"{weights}; parity on the {parity['split']} split ({parity['n_samples']} "
        f"samples, {parity['runtime']}): max abs diff {parity['max_abs_diff']:.3g} "
        f"<= {parity['tolerance']:.0e}; recorded in {exported.parity_path}"
    )
    flush_stdout()


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
