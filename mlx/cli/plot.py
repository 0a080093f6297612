"""``mlx plot``: learning curves of runs to a PNG, SVG or PDF file."""

from __future__ import annotations

import argparse

from mlx.cli.options import check_output_file
from mlx.cli.output import EXIT_OK

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``plot`` subparser, run by :func:`run`."""
    parser = commands.add_parser(
        "plot",
        help="draw learning curves of runs to a PNG, SVG or PDF file",
        description="Learning curves: one panel per metric, one line per run, epochs "
        "on x. The output file's extension (.png, .svg, .pdf) picks the format. A "
        "run still training plots the epochs it has finished. Needs the plot extra "
        "(pip install 'model-harness[plot]').",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run IDs or directories")
    parser.add_argument(
        "--metric",
        dest="metrics",
        action="append",
        nargs="+",
        metavar="NAME",
        help="metrics to plot, one panel each (default: train_loss val_loss)",
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="image file to write"
    )
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Draw one panel per metric, one line per run, and save the figure."""
    from mlx.outputs.plots import (
        DEFAULT_METRICS,
        figure_format,
        learning_curves,
        save_figure,
    )
    from mlx.outputs.report import labelled_runs, read_run_metrics
    from mlx.runs import find_run

    figure_format(args.output)  # an unknown extension fails before any work
    check_output_file(args.output)
    metrics = [m for group in args.metrics for m in group] if args.metrics else None
    found = labelled_runs([find_run(ref) for ref in args.runs])
    runs = {label: read_run_metrics(run) for label, run in found}
    figure = learning_curves(runs, list(dict.fromkeys(metrics or DEFAULT_METRICS)))
    path = save_figure(figure, args.output)
    print(f"wrote {path}")
    return EXIT_OK
