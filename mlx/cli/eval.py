"""``mlx eval``: evaluate a finished run on one of its splits, check that it can be
(``--dry-run``), or list the runs that can be."""

from __future__ import annotations

import argparse

from mlx.cli.options import add_json
from mlx.cli.output import (
    EXIT_OK,
    flush_stdout,
    format_value,
    key_value_table,
    print_json,
    usage_error,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The ``eval`` subparser, run by :func:`run`."""
    parser = commands.add_parser(
        "eval",
        help="evaluate a finished experiment run",
        description="Evaluate a run's model on one of its dataset splits.",
    )
    parser.add_argument(
        "experiment_id",
        nargs="?",
        help="run ID or run directory (required unless --dry-run)",
    )
    parser.add_argument(
        "--metrics",
        nargs="+",
        metavar="METRIC",
        help="metrics to compute (default: the task's standard set)",
    )
    parser.add_argument(
        "--split",
        choices=("test", "val", "train"),
        default="test",
        help="which split to evaluate on (default: test)",
    )
    parser.add_argument(
        "--checkpoint",
        default="final",
        metavar="final|epoch-N",
        help="which weights to evaluate (default: final)",
    )
    parser.add_argument(
        "--save-predictions",
        action="store_true",
        help="also write predictions.csv in the run directory",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check that the run can be evaluated, without computing or writing; "
        "without a run, list the runs that can be evaluated",
    )
    add_json(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Evaluate ``args.experiment_id`` and show the metrics (and where they were
    saved); with --dry-run, only check; without a run, list the candidates."""
    if not args.experiment_id and not args.dry_run:
        usage_error("eval: the following arguments are required: experiment_id")
    if args.dry_run and not args.experiment_id:
        return _list_evaluable(args.json)
    from mlx.experiment.evaluate import EvaluationNotSaved, evaluate

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
            print_json({**exc.result, "path": None})
        else:
            print(_eval_table(exc.result, saved="no (see the error below)"))
        flush_stdout()
        raise
    if args.json:
        if args.dry_run:
            result = {k: v for k, v in result.items() if k != "metrics"}
            result["can_evaluate"] = True
        print_json(result)
    elif args.dry_run:
        print(
            f"run {result['run_id']} can be evaluated: checkpoint "
            f"{result['checkpoint']!r} loads; metrics on the {result['split']} "
            f"split: {', '.join(result['metric_names'])}"
        )
    else:
        print(_eval_table(result, saved=result["path"]))
    return EXIT_OK


def _eval_table(result: dict[str, Any], saved: str) -> str:
    rows = [
        ("run", result["run_id"]),
        ("split", f"{result['split']} ({result['n_samples']} samples)"),
        ("checkpoint", _checkpoint_text(result)),
        ("model", _model_text(result["model"])),
    ]
    rows += [(k, format_value(v)) for k, v in result["metrics"].items()]
    rows.append(("saved", saved))
    if "predictions" in result:
        rows.append(("predictions", result["predictions"]))
    return key_value_table(rows)


def _checkpoint_text(result: dict[str, Any]) -> str:
    """The checkpoint and the epoch of its weights: ``final (epoch 4, step 76)``."""
    epoch, step = result.get("epoch"), result.get("step")
    if epoch is None:
        return str(result["checkpoint"])
    return f"{result['checkpoint']} (epoch {epoch}" + (
        f", step {step})" if step is not None else ")"
    )


def _model_text(model: dict[str, Any]) -> str:
    count = model.get("parameters")
    return f"{model['name']}, " + (
        "parameter count unknown" if count is None else f"{count:,} parameters"
    )


def _list_evaluable(as_json: bool) -> int:
    """The runs that have a final model, as ``mlx runs`` lists them."""
    from mlx.runs import format_runs_table, list_runs
    from mlx.runs.listing import run_record
    from mlx.runs.store import RunDir

    runs = [r for r in list_runs() if RunDir(r.path).model_dir.is_dir()]
    if as_json:
        print_json([run_record(info) for info in runs])
    elif not runs:
        print("no runs with a final model to evaluate")
    else:
        print(format_runs_table(runs))
    return EXIT_OK
