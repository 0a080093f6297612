"""The old home of :mod:`mlx.outputs.plots`."""

# transitional re-export: removed when the layout branches merge

from __future__ import annotations

from mlx.outputs.plots import (
    DEFAULT_METRICS,
    FORMATS,
    INSTALL_HINT,
    PlotError,
    available_metrics,
    confusion_matrix_figure,
    curve_points,
    figure_bytes,
    figure_format,
    learning_curves,
    load_matplotlib,
    parameter_figure,
    save_figure,
)

__all__ = [
    "DEFAULT_METRICS",
    "FORMATS",
    "INSTALL_HINT",
    "PlotError",
    "available_metrics",
    "confusion_matrix_figure",
    "curve_points",
    "figure_bytes",
    "figure_format",
    "learning_curves",
    "load_matplotlib",
    "parameter_figure",
    "save_figure",
]
