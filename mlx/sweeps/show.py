"""A sweep's results: the report object (``--json``) and its table.

The report is the contract of ``mlx sweep show --json``::

    {"name", "directory", "metric", "goal",
     "points": [{"hash", "run_id", "status", "parameters", "final_metrics", "error"}],
     "best": {"hash", "run_id", "value"},
     "cv": [{"parameters", "folds", "mean", "std", "points"}]}

``best`` is the completed point whose final ``metric`` is best by ``goal`` (null when
no completed point recorded it). A sweep that varies ``dataset.params.fold`` is a
cross-validation (:mod:`mlx.sweeps.cv`): ``cv`` holds its groups of points that
differ only in the fold (an empty list in any other sweep), and ``best`` is the
complete group with the best mean, that group's entry with its mean also as
``value``: ``{"parameters", "folds", "mean", "std", "points", "value"}``.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from typing import Any, Mapping

from mlx.errors import DataWarning, RunError
from mlx.runs import RunDir
from mlx.sweeps.cv import (
    FOLD,
    best_group,
    complete,
    cross_validation,
    group_order,
)
from mlx.sweeps.spec import default_goal
from mlx.sweeps.store import SweepDir
from mlx.utils.values import metric_number, table

__all__ = ["build_report", "format_report", "report_json"]

_MAX_TEXT = 160


def _clean(value: Any) -> Any:
    """Strict JSON: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def build_report(
    sweep: SweepDir, record: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The report object of ``sweep`` and, under ``"_extra"`` (dropped from the
    JSON), what the table shows besides: per point the best value of the metric
    over its epochs, its duration and which parameters vary."""
    record = record if record is not None else sweep.read()
    metric = str(record.get("metric") or "val_loss")
    goal = str(record.get("goal") or default_goal(metric))
    entries = [p for p in record["points"] if isinstance(p, Mapping)]
    hashes = [str(p.get("hash")) for p in entries]
    states = sweep.states(hashes)
    points: list[dict[str, Any]] = []
    extra: list[dict[str, Any]] = []
    for entry, digest in zip(entries, hashes):
        state = states[digest]
        summary = state.summary or {}
        final = summary.get("final_metrics") if state.status == "completed" else None
        parameters = entry.get("parameters")
        points.append(
            {
                "hash": digest,
                "run_id": state.run.run_id if state.run is not None else None,
                "status": state.status,
                "parameters": dict(parameters)
                if isinstance(parameters, Mapping)
                else {},
                "final_metrics": dict(final) if isinstance(final, Mapping) else {},
                "error": state.error,
            }
        )
        timings = summary.get("timings")
        seconds = timings.get("total_seconds") if isinstance(timings, Mapping) else None
        extra.append(
            {
                "best_value": _best_over_epochs(state.run, metric, goal),
                "seconds": metric_number(seconds, finite=True),
                "index": entry.get("index"),
            }
        )
    groups = cross_validation(points, metric)
    if groups:
        i = best_group(groups, goal)
        best = None if i is None else {**groups[i], "value": groups[i]["mean"]}
    else:
        best = _best_point(points, metric, goal)
    return {
        "name": str(record.get("name") or sweep.name),
        "directory": os.fspath(sweep.path),
        "metric": metric,
        "goal": goal,
        "points": points,
        "best": best,
        "cv": groups,
        "_extra": extra,
    }


def _best_point(
    points: list[dict[str, Any]], metric: str, goal: str
) -> dict[str, Any] | None:
    """The completed point whose final ``metric`` is best by ``goal``."""
    best: dict[str, Any] | None = None
    for point in points:
        value = metric_number(point["final_metrics"].get(metric), finite=True)
        if point["status"] != "completed" or value is None:
            continue
        if best is None or (
            value > best["value"] if goal == "max" else value < best["value"]
        ):
            best = {"hash": point["hash"], "run_id": point["run_id"], "value": value}
    return best


def _best_over_epochs(run: RunDir | None, metric: str, goal: str) -> float | None:
    if run is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            records = run.read_metrics()
    except (RunError, OSError):
        return None
    values = [
        v
        for v in (metric_number(r.get(metric), finite=True) for r in records)
        if v is not None
    ]
    if not values:
        return None
    return max(values) if goal == "max" else min(values)


def report_json(report: Mapping[str, Any]) -> str:
    """The report as one strict JSON object (the contract's keys only)."""
    data = {k: v for k, v in report.items() if not k.startswith("_")}
    return json.dumps(_clean(data), indent=2, allow_nan=False)


def _goal(report: Mapping[str, Any], metric: str) -> str:
    return str(report["goal"]) if metric == report["metric"] else default_goal(metric)


def sort_points(report: Mapping[str, Any], metric: str | None) -> list[int]:
    """Point positions in table order: by ``metric``'s final value (best first,
    missing values last), else as expanded. In a cross-validation, by group, the
    groups by their mean of ``metric`` (:func:`sort_groups`), each by fold."""
    order = list(range(len(report["points"])))
    if not metric:
        return order
    goal = _goal(report, metric)
    if report["cv"]:
        groups = report["cv"]
        if metric != report["metric"]:
            groups = cross_validation(report["points"], metric)
        where: dict[str, list[int]] = {}
        for i in order:
            where.setdefault(report["points"][i]["hash"], []).append(i)
        ordered = [
            where[digest].pop(0)
            for g in group_order(groups, goal)
            for digest in groups[g]["points"]
        ]
        used = set(ordered)
        return ordered + [i for i in order if i not in used]

    def key(i: int) -> tuple[int, float]:
        value = metric_number(
            report["points"][i]["final_metrics"].get(metric), finite=True
        )
        if value is None:
            return (1, 0.0)
        return (0, -value if goal == "max" else value)

    return sorted(order, key=key)


def sort_groups(report: Mapping[str, Any], metric: str | None) -> list[int]:
    """Cross-validation group positions in table order: by the mean of
    ``metric`` (the complete groups first, best first), else as in the sweep."""
    groups = report["cv"]
    if not metric:
        return list(range(len(groups)))
    if metric != report["metric"]:
        groups = cross_validation(report["points"], metric)
    return group_order(groups, _goal(report, metric))


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value)
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s"


def varied_paths(report: Mapping[str, Any]) -> list[str]:
    paths: list[str] = []
    for point in report["points"]:
        for path in point["parameters"]:
            if path not in paths:
                paths.append(path)
    return [
        p
        for p in paths
        if len({json.dumps(pt["parameters"].get(p)) for pt in report["points"]}) > 1
    ] or paths[:1]


def _parameters_text(parameters: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_text(v)}" for k, v in parameters.items()) or "-"


def _best_text(report: Mapping[str, Any]) -> str:
    """What the summary line says of the best point or group; empty when none."""
    best, metric = report["best"], report["metric"]
    if not best:
        return ""
    if "points" not in best:
        return f"; best ({report['goal']} {metric}): {best['hash'][:12]} = " + (
            f"{best['value']:.6g}"
        )
    return (
        f"; best ({report['goal']} mean {metric} over {best['folds']} folds): "
        f"{_parameters_text(best['parameters'])} = {best['mean']:.6g} "
        f"(std {best['std']:.6g})"
    )


def _cv_lines(report: Mapping[str, Any], sort: str | None) -> list[str]:
    """The cross-validation table: one row per group (``*`` marks the best), its
    folds done out of its points, and the mean and std of the metric over them."""
    metric, groups = report["metric"], report["cv"]
    paths = [p for p in varied_paths(report) if p != FOLD]
    best = report["best"]["points"] if report["best"] else None
    header = ["", *paths, "folds", f"mean {metric}", f"std {metric}"]
    rows = [
        [
            "*" if groups[g]["points"] == best else "",
            *(_text(groups[g]["parameters"].get(p)) for p in paths),
            f"{groups[g]['folds']}/{len(groups[g]['points'])}",
            _text(groups[g]["mean"]),
            _text(groups[g]["std"]),
        ]
        for g in sort_groups(report, sort)
    ]
    incomplete = sum(not complete(group) for group in groups)
    lines = [
        "",
        f"cross-validation over {FOLD}: {metric} over the completed folds "
        "(std with ddof 0)",
        *table(header, rows).split("\n"),
    ]
    if incomplete:
        lines.append(
            f"{incomplete} of {len(groups)} groups have folds not completed: "
            "only groups with every fold completed can be best"
        )
    return lines


def format_report(report: Mapping[str, Any], sort: str | None = None) -> str:
    """The table: one row per point (``*`` marks the best, or the points of the
    best cross-validation group), then, in a cross-validation, one row per group,
    then the errors of the points that did not complete, then a count by status."""
    metric = report["metric"]
    paths = varied_paths(report)
    header = ["", "point", "status", *paths, f"final {metric}", f"best {metric}"]
    header += ["duration", "run"]
    best = report["best"]
    marked = set(best["points"] if "points" in best else [best["hash"]]) if best else ()
    rows: list[list[str]] = []
    for i in sort_points(report, sort):
        point, extra = report["points"][i], report["_extra"][i]
        rows.append(
            [
                "*" if point["hash"] in marked else "",
                point["hash"][:12],
                point["status"],
                *(_text(point["parameters"].get(p)) for p in paths),
                _text(metric_number(point["final_metrics"].get(metric), finite=True)),
                _text(extra["best_value"]),
                _duration(extra["seconds"]),
                point["run_id"] or "-",
            ]
        )
    lines = [f"sweep {report['name']}: {report['directory']}"]
    lines += table(header, rows).split("\n")
    if report["cv"]:
        lines += _cv_lines(report, sort)
    errors = [p for p in report["points"] if p["error"]]
    if errors:
        lines.append("")
        for point in errors:
            lines.append(
                f"{point['hash'][:12]} {point['status']}: {_text(point['error'])}"
            )
    counts: dict[str, int] = {}
    for point in report["points"]:
        counts[point["status"]] = counts.get(point["status"], 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    lines.append("")
    lines.append(f"{len(report['points'])} points: {summary}{_best_text(report)}")
    return "\n".join(lines)
