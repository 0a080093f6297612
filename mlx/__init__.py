"""mlx: run machine-learning experiments from one config file and evaluate them.

The distribution is named ``model-harness``; the import package and the command are
``mlx``. Importing this package is cheap: NumPy and the rest load on first use.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time; only type checkers need it here
    from typing import Any

    from mlx.evaluation import evaluate
    from mlx.experiment import run_experiment

__version__ = "0.1.0"
DISTRIBUTION = "model-harness"

__all__ = ["DISTRIBUTION", "__version__", "evaluate", "run_experiment"]

_LAZY = {
    "run_experiment": "mlx.experiment",
    "evaluate": "mlx.evaluation",
}


def __getattr__(name: str) -> Any:
    # the public API loads on first use, which keeps `mlx --help` free of NumPy
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlx' has no attribute {name!r}")


def __dir__() -> list:
    return sorted([*globals(), *_LAZY])
