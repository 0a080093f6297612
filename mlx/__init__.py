"""mlx: run machine-learning experiments from one config file and evaluate them.

The distribution is named ``model-harness``; the import package and the command are
``mlx``. Importing this package is cheap: NumPy and the rest load on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
DISTRIBUTION = "model-harness"

__all__ = ["DISTRIBUTION", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy public API: keeps `mlx --help` free of NumPy.
    raise AttributeError(f"module 'mlx' has no attribute {name!r}")
