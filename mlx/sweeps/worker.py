"""One point's process: ``python -m mlx.sweeps.worker``.

It does what ``mlx run-experiment`` does (:func:`mlx.experiment.run_experiment`,
the same warnings, errors, exit codes and SIGINT/SIGTERM checkpointing), and records
the sweep and the point's hash in the new run's ``summary.json``::

    python -m mlx.sweeps.worker --sweep NAME --point HASH --config POINT.yaml
    python -m mlx.sweeps.worker --sweep NAME --point HASH --resume RUN_DIR
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any, Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlx.sweeps.worker")
    parser.add_argument("--sweep", required=True)
    parser.add_argument("--point", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config")
    source.add_argument("--resume")
    args = parser.parse_args(argv)

    from mlx.errors import MLXError, MLXWarning, RunInterrupted

    def show(message: Any, category: Any, *rest: Any, **kw: Any) -> None:
        if issubclass(category, MLXWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            print(f"warning: {category.__name__}: {message}", file=sys.stderr)

    warnings.showwarning = show
    try:
        from mlx.experiment import run_experiment

        if args.resume:
            run = run_experiment(resume=args.resume)
        else:
            from mlx.config import load_config

            config = load_config(args.config)
            run = run_experiment(
                config, record={"sweep": args.sweep, "point": args.point}
            )
    except RunInterrupted as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except MLXError as exc:
        for line in exc.message.splitlines() or [""]:
            print(f"error: {line}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the model's own code raised: its run's log has more
        from mlx.utils.raised import one_line

        where = getattr(exc, "run_directory", None)
        prefix = f"run {where.name} failed: " if where is not None else ""
        print(f"error: {prefix}{one_line(exc)}", file=sys.stderr)
        if where is not None:
            print(f"hint: the traceback is in {where / 'train.log'}", file=sys.stderr)
        return 1
    print(f"run {run.run_id} {run.status}: {run.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
