"""A sweep's results: the report object (``--json``) and its table.

The report is the contract of ``mlx sweep show --json``::

    {"name", "directory", "metric", "goal",
     "points": [{"hash", "run_id", "status", "parameters", "final_metrics", "error"}],
     "best": {"hash", "run_id", "value"}}

``best`` is the completed point whose final ``metric`` is best by ``goal`` (null when
no completed point recorded it).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from typing import Any, Mapping

from mlx.errors import DataWarning, RunError
from mlx.runs import RunDir
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
    best: dict[str, Any] | None = None
    for point in points:
        value = metric_number(point["final_metrics"].get(metric), finite=True)
        if point["status"] != "completed" or value is None:
            continue
        if best is None or (
            value > best["value"] if goal == "max" else value < best["value"]
        ):
            best = {"hash": point["hash"], "run_id": point["run_id"], "value": value}
    return {
        "name": str(record.get("name") or sweep.name),
        "directory": os.fspath(sweep.path),
        "metric": metric,
        "goal": goal,
        "points": points,
        "best": best,
        "_extra": extra,
    }


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


def sort_points(report: Mapping[str, Any], metric: str | None) -> list[int]:
    """Point positions in table order: by ``metric``'s final value (best first,
    missing values last), else as expanded."""
    order = list(range(len(report["points"])))
    if not metric:
        return order
    goal = report["goal"] if metric == report["metric"] else default_goal(metric)

    def key(i: int) -> tuple[int, float]:
        value = metric_number(
            report["points"][i]["final_metrics"].get(metric), finite=True
        )
        if value is None:
            return (1, 0.0)
        return (0, -value if goal == "max" else value)

    return sorted(order, key=key)


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


def format_report(report: Mapping[str, Any], sort: str | None = None) -> str:
    """The table: one row per point (``*`` marks the best), then the errors of the
    points that did not complete, then a count by status."""
    metric = report["metric"]
    paths = varied_paths(report)
    header = ["", "point", "status", *paths, f"final {metric}", f"best {metric}"]
    header += ["duration", "run"]
    best = report["best"]["hash"] if report["best"] else None
    rows: list[list[str]] = []
    for i in sort_points(report, sort):
        point, extra = report["points"][i], report["_extra"][i]
        rows.append(
            [
                "*" if point["hash"] == best else "",
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
    line = f"{len(report['points'])} points: {summary}"
    if best:
        value = report["best"]["value"]
        line += f"; best ({report['goal']} {metric}): {best[:12]} = {value:.6g}"
    lines.append(line)
    return "\n".join(lines)
