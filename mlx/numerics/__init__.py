"""The numerical floor beside the models: pure NumPy, no I/O.

- :mod:`mlx.numerics.losses`: loss functions with their gradients;
- :mod:`mlx.numerics.metrics`: evaluation metrics, equal to scikit-learn's;
- :mod:`mlx.numerics.optim`: optimizers as small pure update rules;
- :mod:`mlx.numerics.schedules`: learning-rate schedules.

Their public names are also importable from ``mlx.losses``, ``mlx.metrics``,
``mlx.optim`` and ``mlx.schedules``. Importing this package loads none of them.
"""

from __future__ import annotations

__all__: list[str] = []
