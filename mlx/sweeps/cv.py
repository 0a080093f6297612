"""A sweep that varies ``dataset.params.fold`` is a cross-validation: its points
that differ only in the fold form one group, scored by the mean of the metric over
the group's folds.

:func:`cross_validation` is a pure function of the point records of ``mlx sweep show
--json`` (``hash``, ``status``, ``parameters``, ``final_metrics``). Each group is::

    {"parameters": the points' parameters without the fold,
     "folds": how many of its folds are done,
     "mean": the metric's mean over those folds (null when none is),
     "std": its standard deviation, ddof 0 as NumPy's default (null when none is),
     "points": the hashes of the group's points, by fold}

A fold is done when its point completed with a finite final value of the metric;
the mean and std are over the done folds only. A group is complete when every one
of its points is done: only complete groups can be the best
(:func:`best_group`), so that a mean over some folds is never preferred to a mean
over all of them. Groups come in the order of their first point in the sweep.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from mlx.sweeps.points import canonical
from mlx.utils.values import metric_number

__all__ = [
    "FOLD",
    "best_group",
    "complete",
    "cross_validation",
    "group_order",
    "is_cross_validation",
]

#: the parameter whose values are the folds of one cross-validation
FOLD = "dataset.params.fold"


def is_cross_validation(points: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the sweep of ``points`` varies the fold."""
    return any(FOLD in _parameters(point) for point in points)


def _parameters(point: Mapping[str, Any]) -> Mapping[str, Any]:
    parameters = point.get("parameters")
    return parameters if isinstance(parameters, Mapping) else {}


def _fold_key(item: tuple[int, Mapping[str, Any]]) -> tuple[int, Any, int]:
    """Points by fold number; a fold that is not an integer after them, as
    listed."""
    position, point = item
    fold = _parameters(point).get(FOLD)
    if isinstance(fold, int) and not isinstance(fold, bool):
        return (0, fold, position)
    return (1, 0, position)


def cross_validation(
    points: Sequence[Mapping[str, Any]], metric: str
) -> list[dict[str, Any]]:
    """The groups of ``points`` (see the module's docstring) scored by ``metric``;
    an empty list when the sweep does not vary the fold."""
    if not is_cross_validation(points):
        return []
    members: dict[str, list[tuple[int, Mapping[str, Any]]]] = {}
    for position, point in enumerate(points):
        others = {k: v for k, v in _parameters(point).items() if k != FOLD}
        members.setdefault(canonical(others), []).append((position, point))
    groups = []
    for group in members.values():
        ordered = [point for _, point in sorted(group, key=_fold_key)]
        values = [v for v in (_value(p, metric) for p in ordered) if v is not None]
        mean, std = _mean_std(values)
        groups.append(
            {
                "parameters": {
                    k: v for k, v in _parameters(ordered[0]).items() if k != FOLD
                },
                "folds": len(values),
                "mean": mean,
                "std": std,
                "points": [str(p.get("hash")) for p in ordered],
            }
        )
    return groups


def _value(point: Mapping[str, Any], metric: str) -> float | None:
    """The fold's final value of ``metric``; None when the fold is not done."""
    if point.get("status") != "completed":
        return None
    final = point.get("final_metrics")
    if not isinstance(final, Mapping):
        return None
    return metric_number(final.get(metric), finite=True)


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """NumPy's mean and standard deviation (ddof 0) of ``values``."""
    if not values:
        return None, None
    import numpy as np

    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std())


def complete(group: Mapping[str, Any]) -> bool:
    """Whether every fold of ``group`` is done."""
    return group["mean"] is not None and group["folds"] == len(group["points"])


def best_group(groups: Sequence[Mapping[str, Any]], goal: str) -> int | None:
    """The position of the complete group with the best mean by ``goal`` (the first
    of equal means); None when no group is complete."""
    best: int | None = None
    for i, group in enumerate(groups):
        if not complete(group):
            continue
        if best is None or (
            group["mean"] > groups[best]["mean"]
            if goal == "max"
            else group["mean"] < groups[best]["mean"]
        ):
            best = i
    return best


def group_order(groups: Sequence[Mapping[str, Any]], goal: str) -> list[int]:
    """Group positions best first: the complete groups by mean, then the others
    by the mean of their done folds, then those with no fold done; ties keep the
    sweep's order."""

    def key(i: int) -> tuple[int, float]:
        mean = groups[i]["mean"]
        if mean is None:
            return (2, 0.0)
        return (0 if complete(groups[i]) else 1, -mean if goal == "max" else mean)

    return sorted(range(len(groups)), key=key)
