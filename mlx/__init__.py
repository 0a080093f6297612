"""mlx: run machine-learning experiments from one config file and evaluate them.

The distribution is named ``model-harness``; the import package and the command are
``mlx``. Importing this package is cheap: NumPy and the rest load on first use.
"""

from __future__ import annotations

import logging

from mlx._version import __version__
from mlx.utils.lazy import lazy_attributes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mlx.experiment.evaluate import evaluate
    from mlx.experiment.run import run_experiment

DISTRIBUTION = "model-harness"

__all__ = ["DISTRIBUTION", "__version__", "evaluate", "run_experiment"]

# the public API loads on first use, which keeps `mlx --help` free of NumPy
__getattr__, __dir__ = lazy_attributes(
    globals(),
    {"run_experiment": "mlx.experiment.run", "evaluate": "mlx.experiment.evaluate"},
)

# a library's logger: silent until someone attaches a handler (the `mlx` command does,
# for stderr; a run adds train.log's), at INFO so a run's lines reach them
logging.getLogger(__name__).addHandler(logging.NullHandler())
if logging.getLogger(__name__).level == logging.NOTSET:
    logging.getLogger(__name__).setLevel(logging.INFO)
