"""``mlx lr-find``: the learning-rate range test on a config's model, writing no
run; the suggested learning rate, and with ``-o`` the loss-vs-rate plot."""

from __future__ import annotations

import argparse

from mlx.cli.options import add_json, add_overrides, check_output_file
from mlx.cli.output import (
    EXIT_OK,
    err,
    key_value_table,
    print_json,
    usage_error,
    warnings_printed,
)

__all__ = ["add_parser", "run"]

# the defaults of mlx.experiment.lr_find, spelt here so that `mlx --help` does not
# import NumPy (tests/test_lr_find.py checks that they agree)
STEPS, MIN_LR, MAX_LR = 100, 1e-7, 10.0


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``lr-find`` subparser, run by :func:`run`."""
    parser = commands.add_parser(
        "lr-find",
        help="suggest a learning rate by the learning-rate range test",
        description="The learning-rate range test (Smith 2017): train the config's "
        "model on its training split for --steps batches, drawn as a run draws them, "
        "the learning rate growing geometrically from --min-lr to --max-lr (the "
        "config's learning rate and schedule are replaced; its optimizer is kept), "
        "and suggest the rate at which the smoothed loss falls fastest on its way "
        "down to its lowest value. The test "
        "stops early once the smoothed loss exceeds 4 times its lowest value. "
        "Nothing is written but the plot: no run, no checkpoint.",
    )
    parser.add_argument(
        "--config", required=True, metavar="CONFIG", help="JSON or YAML config file"
    )
    add_overrides(
        parser,
        "override a config field by dotted path, e.g. training.batch_size=64 "
        "(repeatable; VALUE is parsed as YAML 1.2)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=STEPS,
        metavar="N",
        help=f"training steps (batches) to take, at least 2 (default: {STEPS})",
    )
    parser.add_argument(
        "--min-lr",
        type=float,
        default=MIN_LR,
        metavar="LR",
        help=f"learning rate of the first step (default: {MIN_LR:g})",
    )
    parser.add_argument(
        "--max-lr",
        type=float,
        default=MAX_LR,
        metavar="LR",
        help=f"learning rate of the last step (default: {MAX_LR:g})",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="also draw the loss against the learning rate to FILE (.png, .svg "
        "or .pdf; needs the plot extra)",
    )
    add_json(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Check the flags, load the config as run-experiment does, run the test and
    show its suggestion (and plot)."""
    from mlx.config import load_config
    from mlx.experiment.checks import check_runnable_for_run
    from mlx.experiment.lr_find import check_range, find_lr

    problem = check_range(args.steps, args.min_lr, args.max_lr)
    if problem is not None:
        usage_error(f"lr-find: {problem}")
    if args.output is not None:
        from mlx.outputs.plots import figure_format, load_matplotlib

        figure_format(args.output)  # an unknown extension fails before any work
        check_output_file(args.output)
        load_matplotlib()  # and so does a missing plot extra
    config = warnings_printed(
        lambda: load_config(
            args.config, args.overrides, runnable=check_runnable_for_run
        )
    )
    found = find_lr(config, steps=args.steps, min_lr=args.min_lr, max_lr=args.max_lr)
    written = None
    if args.output is not None:
        from mlx.outputs.plots import lr_find_figure, save_figure

        figure = lr_find_figure(
            found.lrs, found.losses, found.smoothed, found.suggested_lr
        )
        written = save_figure(figure, args.output)
    if found.stopped is not None:
        err(
            f"note: stopped after {len(found.losses)} of {found.steps} steps "
            f"(learning rate {found.lrs[-1]:.3g}): {found.stopped}"
        )
    if args.json:
        print_json(found.record())
        if written is not None:
            err(f"wrote {written}")
        return EXIT_OK
    rows = [
        ("suggested_lr", f"{found.suggested_lr:.6g}"),
        (
            "steps",
            f"{len(found.losses)} of {found.steps} "
            f"(learning rate {found.lrs[0]:.3g} to {found.lrs[-1]:.3g})",
        ),
    ]
    if written is not None:
        rows.append(("plot", str(written)))
    print(key_value_table(rows))
    return EXIT_OK
