"""Sweeps: many runs of one experiment over a grid or a random space (``mlx sweep``).

A sweep file names a base experiment config and the parameters to vary::

    name: lr-width
    base: quickstart.yaml          # resolved against the sweep file
    method: grid                   # grid | random
    parameters:
      training.learning_rate: {values: [0.01, 0.003]}
    metric: val_accuracy
    goal: max

Modules, one job each: :mod:`~mlx.sweeps.spec` reads and validates the file,
:mod:`~mlx.sweeps.points` expands it into points named by content hash,
:mod:`~mlx.sweeps.store` keeps ``sweep.json``, the sweep lock and the point states read
from the run directories, :mod:`~mlx.sweeps.executors` runs point processes (a local
pool or Ray), :mod:`~mlx.sweeps.show` renders the results,
:mod:`~mlx.sweeps.runner` keeps the executor busy and reports each point,
:mod:`~mlx.sweeps.outcome` decides and records how a point's process ended,
:mod:`~mlx.sweeps.driver` ties them together and :mod:`~mlx.sweeps.worker` is the
process of one point. The command's arguments live in :mod:`mlx.cli.sweep`; only
``mlx sweep`` imports this package.
"""

from __future__ import annotations

__all__: list[str] = []
