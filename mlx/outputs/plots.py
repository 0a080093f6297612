"""Figures of runs, built with matplotlib's object API.

One function per kind of figure, each returning a ``matplotlib.figure.Figure``; the
caller saves it (:func:`save_figure`). No ``pyplot``: no global state and no display,
so this works on a headless machine and inside a notebook alike. matplotlib is the
``plot`` extra (``pip install 'model-harness[plot]'``) and is imported only when a
function here is called.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from mlx.errors import DataWarning, MLXError
from mlx.utils.atomic import write_bytes_atomic
from mlx.utils.values import is_int, is_number, metric_number

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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
    "lr_find_figure",
    "parameter_figure",
    "save_figure",
]

DEFAULT_METRICS = ("train_loss", "val_loss")
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
INSTALL_HINT = "pip install 'model-harness[plot]'"


class PlotError(MLXError, ValueError):
    """A figure that cannot be drawn: unknown metric, unknown file type, no
    matplotlib."""


def load_matplotlib() -> ModuleType:
    """matplotlib, set to draw without a display; PlotError when it is not
    installed. (It is imported here, on first use, not with this module.)"""
    try:
        import matplotlib
    except ImportError as exc:
        raise PlotError(
            f"plotting needs matplotlib, which is not installed: {INSTALL_HINT}"
        ) from exc
    matplotlib.use("Agg")  # never a display, even where one is available
    return matplotlib


def _figure(width: float, height: float) -> Figure:
    load_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _literal(text: object) -> str:
    """``text`` as matplotlib shows it literally: a ``$`` would start mathtext."""
    return str(text).replace("$", r"\$")


def _value_or_nan(value: object) -> float:
    """A metric value as a float; NaN for null (stored for NaN) or a non-number."""
    number = metric_number(value)
    return math.nan if number is None else number


def curve_points(
    records: Sequence[Mapping[str, Any]], metric: str
) -> tuple[list[int], list[float]]:
    """The (epochs, values) of ``metric`` in ``records`` (``metrics.jsonl``'s lines),
    in file order; records without an integer ``epoch`` or without the metric are
    left out, a null value (how NaN is stored) stays as NaN."""
    epochs: list[int] = []
    values: list[float] = []
    for record in records:
        epoch = record.get("epoch")
        if not is_int(epoch):
            continue
        if metric not in record:
            continue
        epochs.append(epoch)
        values.append(_value_or_nan(record[metric]))
    return epochs, values


def available_metrics(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The per-epoch numeric metrics ``records`` hold, in first-seen order."""
    skip = {"epoch", "step", "seconds"}
    names: dict[str, None] = {}
    for record in records:
        for key, value in record.items():
            if key in skip or isinstance(value, bool):
                continue
            if value is None or isinstance(value, (int, float)):
                names.setdefault(key, None)
    return list(names)


def learning_curves(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> Figure:
    """Learning curves: one panel per metric, one line per run, epochs on x.

    Parameters
    ----------
    runs : run label -> that run's ``metrics.jsonl`` records (a run still training
        gives the records written so far).
    metrics : metric names; each must occur in at least one run's records, or a
        :class:`PlotError` names the metrics available.

    Each line's ``gid`` is ``"<metric>:<run label>"``, which is also its ``id`` in SVG
    output.
    """
    if not runs:
        raise PlotError("nothing to plot: no runs given")
    if not metrics:
        raise PlotError("nothing to plot: no metrics given")
    available: dict[str, None] = {}
    for records in runs.values():
        available.update(dict.fromkeys(available_metrics(records)))
    unknown = [m for m in metrics if m not in available]
    if unknown:
        names = ", ".join(available) if available else "none yet"
        raise PlotError(
            f"unknown metric {unknown[0]!r}: the runs record {names}"
            if len(unknown) == 1
            else f"unknown metrics {', '.join(map(repr, unknown))}: the runs "
            f"record {names}"
        )
    figure = _figure(6.4, 2.6 * len(metrics) + 0.4)
    axes = figure.subplots(len(metrics), 1, squeeze=False, sharex=True)[:, 0]
    for ax, metric in zip(axes, metrics):
        drawn, panel_epochs = False, []
        for label, records in runs.items():
            epochs, values = curve_points(records, metric)
            panel_epochs += epochs
            finite = any(math.isfinite(v) for v in values)
            drawn = drawn or finite
            text = _literal(label) + ("" if finite else " (no finite value)")
            (line,) = ax.plot(epochs, values, marker="o", markersize=3, label=text)
            line.set_gid(f"{metric}:{label}")
        if not drawn:
            # a panel left blank would look like a plotting bug: say why it is
            warnings.warn(
                f"{metric} has no finite value in any run (every one is NaN or "
                "infinite): its panel is empty",
                DataWarning,
                stacklevel=2,
            )
            ax.text(
                0.5,
                0.5,
                f"no finite value of {_literal(metric)} (NaN or infinite)",
                transform=ax.transAxes,
                ha="center",
                va="center",
            )
            if panel_epochs:  # the epochs still span the x axis (shared by all)
                ax.update_datalim([(min(panel_epochs), 0), (max(panel_epochs), 0)])
                ax.autoscale_view()
        ax.set_ylabel(_literal(metric))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[-1].set_xlabel("epoch")
    return figure


def confusion_matrix_figure(
    matrix: Sequence[Sequence[int]], labels: Sequence[Any], title: str = ""
) -> Figure:
    """A confusion matrix as a heat map, counts written in the cells; rows are the
    true classes, columns the predicted ones."""
    counts = np.asarray(matrix)
    size = max(2.8, 0.5 * len(labels) + 2.0)
    figure = _figure(size + 0.8, size)
    ax = figure.subplots()
    image = ax.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=ax, shrink=0.8)
    ticks = list(range(len(labels)))
    ax.set_xticks(ticks, [_literal(v) for v in labels])
    ax.set_yticks(ticks, [_literal(v) for v in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(_literal(title))
    threshold = counts.max() / 2 if counts.size else 0
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(
                j,
                i,
                str(int(counts[i, j])),
                ha="center",
                va="center",
                color="white" if counts[i, j] > threshold else "black",
            )
    return figure


def parameter_figure(
    parameter: str, values: Sequence[Any], metric: str, scores: Sequence[Any]
) -> Figure:
    """One config parameter (x) against one metric (y), a point per run. Numeric
    parameters get a numeric axis (points joined in order of the parameter);
    anything else one category per distinct value."""
    figure = _figure(4.8, 3.2)
    ax = figure.subplots()
    ys = [_value_or_nan(s) for s in scores]
    numeric = all(is_number(v) for v in values)
    if numeric:
        pairs = sorted(zip(values, ys))
        ax.plot([p[0] for p in pairs], [p[1] for p in pairs], marker="o")
    else:
        categories = list(dict.fromkeys(str(v) for v in values))
        xs = [categories.index(str(v)) for v in values]
        ax.plot(xs, ys, marker="o", linestyle="none")
        ax.set_xticks(range(len(categories)), [_literal(c) for c in categories])
    if not any(math.isfinite(y) for y in ys):
        ax.text(
            0.5,
            0.5,
            f"no finite value of {_literal(metric)} (NaN, infinite or missing)",
            transform=ax.transAxes,
            ha="center",
            va="center",
        )
    ax.set_xlabel(_literal(parameter))
    ax.set_ylabel(_literal(metric))
    ax.grid(True, alpha=0.3)
    return figure


def lr_find_figure(
    lrs: Sequence[float],
    losses: Sequence[float],
    smoothed: Sequence[float],
    suggested_lr: float,
) -> Figure:
    """The learning-rate range test: each step's batch loss (faint) and its
    smoothed loss against the learning rate on a log axis, the suggested rate
    marked. The y axis spans the losses up to the smoothed minimum, so the
    divergence at the end does not flatten the curve."""
    figure = _figure(6.4, 4.0)
    ax = figure.subplots()
    ax.plot(lrs, losses, color="C0", alpha=0.3, linewidth=1, label="batch loss")
    ax.plot(lrs, smoothed, color="C0", label="smoothed loss")
    ax.axvline(
        suggested_lr,
        color="C3",
        linestyle="--",
        label=f"suggested {suggested_lr:.3g}",
    )
    ax.set_xscale("log")
    # from the lowest batch loss to the highest smoothed loss before its minimum,
    # with room above: the divergence at the end leaves the top of the axes
    lowest = int(np.argmin(smoothed))
    low = min(min(losses), smoothed[lowest])
    high = max(smoothed[: lowest + 1])
    span = high - low or abs(high) or 1.0
    ax.set_ylim(low - 0.05 * span, high + 0.5 * span)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return figure


def figure_format(path: str | Path) -> str:
    """The file format ``path``'s extension names; PlotError for any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise PlotError(
            f"{path}: unknown image type {suffix or '(no extension)'!r}; "
            "use .png, .svg or .pdf"
        )
    return FORMATS[suffix]


def figure_bytes(figure: Figure, fmt: str, **savefig: Any) -> bytes:
    """``figure`` rendered as ``fmt`` (png, svg or pdf), reproducibly: no creation
    date in the file."""
    metadata: dict[str, Any] = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}
    metadata["png"] = {}
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, metadata=metadata[fmt], **savefig)
    return buffer.getvalue()


def save_figure(figure: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write ``figure`` to ``path`` in the format its extension names, atomically
    (a reader sees the old file or the new one, never a partial one)."""
    fmt = figure_format(path)
    return write_bytes_atomic(path, figure_bytes(figure, fmt, dpi=dpi))
