"""One point's process: ``python -m mlx.sweeps.worker``.

It does what ``mlx run-experiment`` does (:func:`mlx.experiment.run_experiment`,
the same warnings, errors, exit codes and SIGINT/SIGTERM checkpointing), and records
the sweep and the point's hash in the new run's ``summary.json``::

    python -m mlx.sweeps.worker --sweep NAME --point HASH --config POINT.yaml
    python -m mlx.sweeps.worker --sweep NAME --point HASH --resume RUN_DIR
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from typing import Sequence

from mlx.config import load_config
from mlx.errors import MLXError, MLXWarning, RunInterrupted
from mlx.experiment import Run, run_experiment
from mlx.experiment.checks import check_runnable
from mlx.runs.store import RunDir
from mlx.utils.raised import one_line
from mlx.utils.signals import watch

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run (or resume) one point; print its outcome; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m mlx.sweeps.worker")
    parser.add_argument("--sweep", required=True)
    parser.add_argument("--point", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config")
    source.add_argument("--resume")
    args = parser.parse_args(argv)

    warnings.showwarning = _show_warning
    try:
        # SIGINT/SIGTERM handled from before the point's config is read (see
        # mlx.utils.signals): the point ends as a run recorded interrupted, or no run
        with watch(
            f"the point's run was not {'resumed' if args.resume else 'created'}"
        ):
            run = _run_point(args)
    except MLXError as exc:
        if isinstance(exc, RunInterrupted):
            exc.hint = None  # the sweep resumes its points: no run-experiment hint
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        MLXError("interrupted").show()
        return 128 + signal.SIGINT
    except Exception as exc:  # the model's own code raised: its run's log has more
        where = getattr(exc, "run_directory", None)
        if where is None:
            MLXError(one_line(exc)).show()
        else:
            MLXError(
                f"run {where.name} failed: {one_line(exc)}",
                hint=f"the traceback is in {RunDir(where).log_path}",
            ).show()
        return 1
    print(f"run {run.run_id} {run.status}: {run.directory}")
    return 0


def _run_point(args: argparse.Namespace) -> Run:
    """The point's run: resumed from ``args.resume``, or a new one of ``args.config``
    recorded as the point ``args.point`` of the sweep ``args.sweep``."""
    if args.resume:
        return run_experiment(resume=args.resume)
    config = load_config(args.config, runnable=check_runnable)
    return run_experiment(config, record={"sweep": args.sweep, "point": args.point})


def _show_warning(
    message: Warning | str, category: type[Warning], *rest: object, **kw: object
) -> None:
    if issubclass(category, MLXWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        print(f"warning: {category.__name__}: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
