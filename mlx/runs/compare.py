"""Runs side by side (``mlx compare RUN RUN...``).

For each run: status, epochs, duration, final metrics, the best value of each metric
over its epochs (``metrics.jsonl``), the recorded best metric and the latest
evaluation; across runs, only the config fields (dotted paths) whose values differ.
Nothing is written; reading needs no lock.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from mlx.errors import RunError
from mlx.runs.ids import utc_now
from mlx.runs.listing import (
    RunInfo,
    duration_seconds,
    find_run,
    format_duration,
    format_value,
    safe_text,
    sound_fields,
)
from mlx.runs.lock import lock_state
from mlx.runs.store import RunDir
from mlx.runs.weights import brief_text, evaluated_epoch, trained_since
from mlx.utils.safe_io import SUMMARY_LIMIT, read_json_guarded
from mlx.utils.values import flatten, table

__all__ = ["compare_runs", "format_comparison"]

# per-epoch columns that are bookkeeping, not metrics
_NOT_METRICS = ("epoch", "step", "seconds", "learning_rate")
# how a metric's name tells whether lower or higher is better
_LOWER = ("loss", "mse", "rmse", "mae", "error")
_HIGHER = ("accuracy", "f1", "precision", "recall", "r2", "auc")


def _better(name: str) -> str | None:
    """``"min"`` or ``"max"``: which way ``name`` improves; None when unknown."""
    base = name.lower()
    for prefix in ("train_", "val_", "test_"):
        if base.startswith(prefix):
            base = base[len(prefix) :]
    if any(base == word or base.endswith(word) for word in _LOWER):
        return "min"
    if any(base == word or base.startswith(word) for word in _HIGHER):
        return "max"
    return None


def _finite(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def best_metrics(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{metric: {"value", "epoch"}}``: the best finite value of each per-epoch metric
    whose direction is known (losses and errors lowest, scores highest)."""
    best: dict[str, dict[str, Any]] = {}
    for record in records:
        for name, value in record.items():
            direction = _better(name)
            if name in _NOT_METRICS or direction is None or not _finite(value):
                continue
            current = best.get(name)
            if (
                current is None
                or (direction == "min" and value < current["value"])
                or (direction == "max" and value > current["value"])
            ):
                best[name] = {"value": value, "epoch": record.get("epoch")}
    return best


def _latest_eval(run: RunDir, summary: Mapping[str, Any]) -> dict[str, Any] | None:
    """The run's latest readable evaluation: its file, split, checkpoint, the epoch
    of the weights it scored (None if not recorded), the epochs the run has
    completed since when it has trained past them (else None), and its metrics."""
    for path in reversed(run.list_evals()):
        try:
            data = read_json_guarded(path, SUMMARY_LIMIT, "an evaluation")
        except (RunError, OSError):
            continue
        if isinstance(data, dict) and isinstance(data.get("metrics"), dict):
            return {
                "path": os.fspath(path),
                "split": data.get("split"),
                "checkpoint": data.get("checkpoint"),
                "epoch": evaluated_epoch(data),
                "trained_since": trained_since(data, summary),
                "metrics": data["metrics"],
            }
    return None


def _run_facts(
    run: RunDir, now: _dt.datetime
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(run ID, flattened config, metrics entry) of one run."""
    summary = sound_fields(run.read_summary())
    info = RunInfo.from_summary(run.path, summary, now, lock=lock_state(run.path))
    duration = duration_seconds(summary, info, now)
    recorded = summary.get("best_metric")
    entry = {
        "status": info.status,
        "directory": os.fspath(run.path),
        "epochs_completed": info.epochs_completed,
        "duration_seconds": None if duration is None else duration[0],
        "final_metrics": dict(info.final_metrics),
        "best_metric": dict(recorded) if isinstance(recorded, Mapping) else None,
        "best_metrics": best_metrics(run.read_metrics()),
        "latest_eval": _latest_eval(run, summary),
    }
    return info.run_id, flatten(run.read_config()), entry


def compare_runs(
    refs: Sequence[str | os.PathLike[str]], root: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """``{"runs": [run_id, ...], "config_differences": {path: [value per run]},
    "metrics": {run_id: {...}}}`` for two or more runs (IDs, unique ID prefixes or
    directories). A config field a run lacks counts as ``None``. RunError for an
    unknown run, or for a run named twice."""
    if len(refs) < 2:
        raise RunError("comparing runs needs two or more runs")
    runs = [find_run(ref, root) for ref in refs]
    seen: dict[Path, str] = {}
    for ref, run in zip(refs, runs):
        key = run.path.resolve()
        if key in seen:
            raise RunError(
                f"run {run.run_id} is named twice ({seen[key]!r} and "
                f"{os.fspath(ref)!r}); compare different runs"
            )
        seen[key] = os.fspath(ref)
    now = utc_now()
    facts = [_run_facts(run, now) for run in runs]
    ids = [run_id for run_id, _config, _entry in facts]
    if len(set(ids)) < len(ids):
        # two directories whose summaries claim the same ID: tell them apart
        ids = [os.fspath(run.path) for run in runs]
    configs = [config for _id, config, _entry in facts]
    paths = sorted({path for config in configs for path in config})
    differences = {}
    for path in paths:
        # a field a run lacks is null: null in one run and absent in another agree
        values = [config.get(path) for config in configs]
        texts = {json.dumps(v, sort_keys=True, default=str) for v in values}
        if len(texts) > 1:
            differences[path] = values
    return {
        "runs": ids,
        "config_differences": differences,
        "metrics": {run_id: entry for run_id, (_i, _c, entry) in zip(ids, facts)},
    }


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, dict)):
        return safe_text(json.dumps(value, default=str))
    return format_value(value)


def format_comparison(comparison: Mapping[str, Any]) -> str:
    """The comparison as a table: one column per run, one row per field."""
    ids = list(comparison["runs"])
    entries = [comparison["metrics"][run_id] for run_id in ids]
    rows: list[list[str]] = []

    def row(label: str, values: Sequence[Any]) -> None:
        rows.append([label, *(_cell(v) for v in values)])

    row("status", [e["status"] for e in entries])
    row("epochs", [e["epochs_completed"] for e in entries])
    row(
        "duration",
        [
            None
            if e["duration_seconds"] is None
            else format_duration(e["duration_seconds"])
            for e in entries
        ],
    )
    for path, values in comparison["config_differences"].items():
        row(path, values)
    if not comparison["config_differences"]:
        row("(config)", ["same"] * len(ids))

    def names(key: str) -> list[str]:
        found: list[str] = []
        for entry in entries:
            found += [n for n in (entry[key] or {}) if n not in found]
        return found

    for name in names("final_metrics"):
        row(f"final {name}", [e["final_metrics"].get(name) for e in entries])
    for name in names("best_metrics"):
        best = [e["best_metrics"].get(name) for e in entries]
        row(
            f"best {name}",
            [
                None
                if b is None
                else f"{format_value(b['value'])} (epoch {b['epoch']})"
                for b in best
            ],
        )
    evals = [e["latest_eval"] or {} for e in entries]
    eval_names: list[str] = []
    for latest in evals:
        eval_names += [n for n in latest.get("metrics", {}) if n not in eval_names]
    if eval_names:
        # which split and which weights: evaluations of different models are never
        # shown as if alike
        row(
            "eval of",
            [
                brief_text(
                    e.get("split"),
                    e.get("checkpoint"),
                    e.get("epoch"),
                    e.get("trained_since"),
                )
                if e
                else None
                for e in evals
            ],
        )
    for name in eval_names:
        row(f"eval {name}", [latest.get("metrics", {}).get(name) for latest in evals])
    text = table(["", *ids], rows)
    return "\n".join(line.rstrip() for line in text.splitlines())
