"""What the package makes of finished runs, the top floor below the command line.

- :mod:`mlx.outputs.plots`: figures of runs (matplotlib's object API);
- :mod:`mlx.outputs.report`: one self-contained HTML report of runs;
- :mod:`mlx.outputs.mlflow`: runs exported to an MLflow tracking server or store
  (:mod:`mlx.outputs.mlflow_record` reads a run into what MLflow receives).

Importing this package loads none of them: matplotlib and MLflow are optional.
"""

from __future__ import annotations

__all__: list[str] = []
