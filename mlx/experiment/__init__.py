"""Experiments: run one from its config, resume it, evaluate it, plan it dry.

The modules, in the order a run passes through them::

    run.py        run_experiment(): checks the arguments, decides the backend once,
                  creates the run directory and runs it (a new run)
    resume.py     resume_run(): prepare, check, load the checkpoint, continue
    build.py      what a run trains: the backend, the data, the model, its optimizer
    segment.py    one process's share of a run: the loop inside the lifecycle
    lifecycle.py  RunLifecycle, the context manager around the loop: the summary's
                  running -> completed/failed/interrupted, heartbeats, signals,
                  failure records
    loop.py       the training loop
    evaluate.py   evaluate(): score a finished run on one split
    plan.py       the dry run: what a run would do, worked out without doing it
    preflight.py  whether a run directory can be made, asked by the run and the plan
    console.py    the lines a run prints and keeps in train.log

Importing this package is cheap (the dry run imports :mod:`mlx.experiment.plan`
without NumPy); :func:`run_experiment` and :class:`Run` load on first use.
"""

from __future__ import annotations

from mlx.utils.lazy import lazy_attributes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mlx.experiment.run import Run, run_experiment

__all__ = ["Run", "run_experiment"]

__getattr__, __dir__ = lazy_attributes(
    globals(), {"Run": "mlx.experiment.run", "run_experiment": "mlx.experiment.run"}
)
