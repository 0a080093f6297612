"""What one mlx run becomes in MLflow: :func:`collect` reads a run directory into an
:class:`MlflowRecord` (params, metric points, tags, times, artifacts), every key one
MLflow accepts. No MLflow needed here; :mod:`mlx.outputs.mlflow` writes the records.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import posixpath
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Tuple

from mlx.errors import DataWarning, MLXError
from mlx.runs.store import RunDir
from mlx.runs.summary import effective_status, parse_timestamp
from mlx.utils.safe_io import DOCUMENT_LIMIT, read_text_guarded
from mlx.utils.values import flatten, is_int, metric_number

__all__ = [
    "DEFAULT_KEY_LIMIT",
    "DEFAULT_PARAM_LIMIT",
    "MlflowRecord",
    "collect",
    "config_hash",
    "mlflow_keys",
    "mlflow_status",
    "param_text",
]

#: MLflow's limit on a param value (mlflow.utils.validation.MAX_PARAM_VAL_LENGTH);
#: the installed client's own figure is used when it has one.
DEFAULT_PARAM_LIMIT = 6000
#: MLflow's limit on a param, metric or tag key (MAX_ENTITY_KEY_LENGTH), likewise.
DEFAULT_KEY_LIMIT = 250
_ELLIPSIS = "..."

#: mlx status -> MLflow RunStatus. ``lost`` (the process died unrecorded) is FAILED.
_STATUS = {
    "running": "RUNNING",
    "completed": "FINISHED",
    "failed": "FAILED",
    "interrupted": "KILLED",
    "lost": "FAILED",
}

# what MLflow accepts in a param or metric name (mlflow.utils.validation)
_NAME_UNSAFE = re.compile(r"[^/\w.\- :]")
_TIME_FIELDS = ("timestamp", "time")

#: A metric point: (key, value, timestamp in ms, step).
Point = Tuple[str, float, int, int]


@dataclass
class MlflowRecord:
    """What one mlx run becomes in MLflow.

    ``metrics`` are ``(key, value, timestamp in ms, step)`` points; ``artifacts``
    ``(local path, artifact directory or None for the root)``.
    """

    run_id: str
    experiment: str
    status: str
    start_time: int | None
    end_time: int | None
    params: dict[str, str]
    metrics: list[Point]
    tags: dict[str, str]
    artifacts: list[tuple[Path, str | None]]
    notes: list[str] = field(default_factory=list)


def mlflow_status(status: str) -> str:
    """The MLflow run status for an mlx status (``completed`` -> ``FINISHED``)."""
    return _STATUS.get(status, "FAILED")


def param_text(value: Any) -> str:
    """A config value as MLflow param text: scalars as ``str()`` does (MLflow's own
    ``log_param`` convention: ``None``, ``True``, ``0.01``), lists and mappings as
    JSON."""
    if isinstance(value, (list, tuple, Mapping)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def config_hash(config: Mapping[str, Any]) -> str:
    """SHA-256 of the resolved config as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(
        config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _safe_name(name: str) -> str:
    """``name`` in the characters MLflow takes, and with a ``/`` only between two
    parts: MLflow refuses a name that would resolve to another as a file path
    (``a//b``, ``a/./b``, ``a/``)."""
    key = _NAME_UNSAFE.sub("_", name)
    if posixpath.normpath(key) != key or key.startswith("/"):
        key = key.replace("/", "_")
    if key in ("", ".") or key.startswith(".."):
        key = "_" + key
    return key


def mlflow_keys(
    names: Iterable[str], limit: int = DEFAULT_KEY_LIMIT
) -> tuple[dict[str, str], dict[str, str]]:
    """An MLflow key for each of ``names``, no two alike, and why each one that is
    not the name itself was changed: ``({name: key}, {name: reason})``.

    A name MLflow takes as it is keeps it. Any other is written in the characters
    MLflow allows (:func:`_safe_name`); one that is then over ``limit`` characters,
    or equal to another's key, is cut and ends in ``-`` and 8 hex digits of its
    SHA-256, so the same name gets the same key on every export.
    """
    unique = list(dict.fromkeys(names))
    keys = {n: n for n in unique if _safe_name(n) == n and len(n) <= limit}
    taken = set(keys.values())
    reasons: dict[str, str] = {}
    for name in unique:
        if name in keys:
            continue
        key = _safe_name(name)
        why = []
        if key != name:
            why.append(
                "MLflow names allow letters, digits and _ - . / : space, a / only "
                "between two parts"
            )
        if len(key) > limit or key in taken:
            why.append(
                f"over MLflow's limit of {limit} characters"
                if len(key) > limit
                else f"{key!r} is another name's key"
            )
            digest = hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()[:8]
            key = f"{key[: limit - len(digest) - 1]}-{digest}"
        keys[name] = key
        taken.add(key)
        reasons[name] = "; ".join(why)
    return keys, reasons


def _millis(value: object) -> int | None:
    moment = parse_timestamp(value)
    return None if moment is None else int(round(moment.timestamp() * 1000))


def _epoch(value: object) -> int | None:
    return value if is_int(value) and value >= 0 else None


def _epoch_times(
    records: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]
) -> dict[int, int]:
    """The wall-clock time (ms) at which each epoch ended.

    A record's own ``timestamp`` (ISO 8601) when it has one; otherwise estimated from
    the run's records: the start of the process segment that trained the epoch
    (``timings.segments``), plus its data-loading time, plus the ``seconds`` of each
    epoch of that segment up to this one.
    """
    timings = summary.get("timings")
    segments = timings.get("segments") if isinstance(timings, Mapping) else None
    spans: list[tuple[int, int, float]] = []  # (first, last epoch], start in ms
    for segment in segments if isinstance(segments, list) else []:
        if not isinstance(segment, Mapping):
            continue
        epochs = segment.get("epochs")
        start = _millis(segment.get("started_at"))
        if not (isinstance(epochs, list) and len(epochs) == 2) or start is None:
            continue
        first, last = (_epoch(e) for e in epochs)
        if first is None or last is None:
            continue
        data = metric_number(segment.get("data_seconds")) or 0.0
        spans.append((first, last, start + 1000.0 * data))
    fallback = _millis(summary.get("started_at"))
    times: dict[int, int] = {}
    clock: float | None = None
    span: tuple[int, int, float] | None = None
    for record in records:
        epoch = _epoch(record.get("epoch"))
        if epoch is None:
            continue
        own = next(
            (t for t in (_millis(record.get(k)) for k in _TIME_FIELDS) if t), None
        )
        covering = next((s for s in spans if s[0] < epoch <= s[1]), None)
        if covering is not None and covering != span:
            span, clock = covering, covering[2]
        if clock is None:
            clock = float(fallback) if fallback is not None else None
        seconds = metric_number(record.get("seconds"))
        if clock is not None and seconds is not None and math.isfinite(seconds):
            clock += 1000.0 * max(seconds, 0.0)
        if own is not None:
            times[epoch] = own
        elif clock is not None:
            times[epoch] = int(round(clock))
    return times


def _eval_step(created: int | None, checkpoint: Any, summary: Mapping[str, Any]) -> int:
    """The epoch of the weights an evaluation used: N for ``epoch-N``; for ``final``
    the epochs completed by the last process segment that ended before it."""
    if isinstance(checkpoint, str):
        match = re.match(r"^epoch-(\d+)$", checkpoint)
        if match:
            return int(match.group(1))
    completed = _epoch(summary.get("epochs_completed")) or 0
    timings = summary.get("timings")
    segments = timings.get("segments") if isinstance(timings, Mapping) else None
    if created is None or not isinstance(segments, list):
        return completed
    ended = [
        _epoch(s["epochs"][1])
        for s in segments
        if isinstance(s, Mapping)
        and isinstance(s.get("epochs"), list)
        and len(s["epochs"]) == 2
        and (_millis(s.get("finished_at")) or math.inf) <= created
    ]
    ended_epochs = [e for e in ended if e is not None]
    return max(ended_epochs) if ended_epochs else completed


def _eval_points(run: RunDir, summary: Mapping[str, Any]) -> list[Point]:
    """``eval/<split>/<metric>`` points, one per evaluation file; the step is the
    epoch of the evaluated weights, the time the evaluation's ``created_at``."""
    latest: dict[tuple[str, int], Point] = {}
    for path in run.list_evals():
        try:
            text = read_text_guarded(path, DOCUMENT_LIMIT, "an evaluation file")
            data = json.loads(text or "null")
        except (ValueError, OSError, MLXError):
            warnings.warn(
                f"{os.fspath(path)}: skipped, not a readable evaluation",
                DataWarning,
                stacklevel=2,
            )
            continue
        if not isinstance(data, Mapping) or not isinstance(
            data.get("metrics"), Mapping
        ):
            continue
        split = str(data.get("split") or "unknown")
        created = _millis(data.get("created_at"))
        stamp = created if created is not None else int(path.stat().st_mtime * 1000)
        # the epoch the evaluation recorded of its weights; inferred for older ones
        step = _epoch(data.get("epoch"))
        if step is None:
            step = _eval_step(created, data.get("checkpoint"), summary)
        for name, value in data["metrics"].items():
            number = metric_number(value)
            if number is None:
                continue
            key = f"eval/{split}/{name}"
            # files are oldest first: a later evaluation of the same weights wins
            latest[(key, step)] = (key, number, stamp, step)
    return list(latest.values())


def _params(
    config: Mapping[str, Any], param_limit: int, key_limit: int, notes: list[str]
) -> dict[str, str]:
    """The config's leaves as MLflow params, keys made safe and long values cut (each
    change told in ``notes``)."""
    params: dict[str, str] = {}
    flat = flatten(config)
    param_keys, renamed = mlflow_keys(flat, key_limit)
    for path, value in flat.items():
        key = param_keys[path]
        if path in renamed:
            notes.append(f"param {path!r} is logged as {key!r} ({renamed[path]})")
        text = param_text(value)
        if len(text) > param_limit:
            notes.append(
                f"param {key!r} is {len(text)} characters, over MLflow's limit of "
                f"{param_limit}: truncated (config.yaml in the artifacts has it whole)"
            )
            text = text[: param_limit - len(_ELLIPSIS)] + _ELLIPSIS
        params[key] = text
    return params


def _epoch_points(run: RunDir, summary: Mapping[str, Any]) -> list[Point]:
    """A point per numeric value of each epoch's record in ``metrics.jsonl``, the
    step its epoch; the last record of an epoch wins."""
    records = run.read_metrics()
    times = _epoch_times(records, summary)
    fallback = _millis(summary.get("updated_at"))
    points: dict[tuple[str, int], Point] = {}
    for record in records:
        epoch = _epoch(record.get("epoch"))
        if epoch is None:
            continue
        stamp = times.get(epoch, fallback)
        if stamp is None:
            stamp = int(run.metrics_path.stat().st_mtime * 1000)
        for name, value in record.items():
            number = metric_number(value)
            if name == "epoch" or number is None:
                continue
            key = str(name)
            points[(key, epoch)] = (key, number, stamp, epoch)
    return list(points.values())


def _metrics(
    run: RunDir, summary: Mapping[str, Any], key_limit: int, notes: list[str]
) -> list[Point]:
    """The run's epoch and evaluation points under MLflow-safe keys, sorted by key
    and step."""
    named = _epoch_points(run, summary) + _eval_points(run, summary)
    metric_keys, renamed = mlflow_keys((p[0] for p in named), key_limit)
    for name, why in renamed.items():
        notes.append(f"metric {name!r} is logged as {metric_keys[name]!r} ({why})")
    metrics = [(metric_keys[n], value, stamp, step) for n, value, stamp, step in named]
    return sorted(metrics, key=lambda p: (p[0], p[3]))


def collect(
    run: RunDir,
    experiment: str | None = None,
    *,
    param_limit: int = DEFAULT_PARAM_LIMIT,
    key_limit: int = DEFAULT_KEY_LIMIT,
) -> MlflowRecord:
    """Read ``run`` into what its MLflow run holds (see :class:`MlflowRecord`).
    Every key is one MLflow accepts (:func:`mlflow_keys`), so nothing is refused
    once the export has begun."""
    summary = run.read_summary()
    config = run.read_config()
    notes: list[str] = []
    params = _params(config, param_limit, key_limit, notes)
    metrics = _metrics(run, summary, key_limit, notes)
    status = effective_status(summary)
    tags = {
        "mlx.run_id": run.run_id,
        "mlx.status": status,
        "mlx.config_hash": config_hash(config),
        "mlx.name": str(summary.get("name") or config.get("name") or ""),
        "mlx.epochs_completed": str(summary.get("epochs_completed")),
        "mlx.directory": os.fspath(run.path.resolve()),
    }
    artifacts: list[tuple[Path, str | None]] = [
        (run.config_path, None),
        (run.summary_path, None),
    ]
    if run.model_dir.is_dir():
        artifacts.append((run.model_dir, "model"))
    else:
        notes.append("no model/ yet: not uploaded")
    name = experiment or str(summary.get("name") or config.get("name") or "Default")
    return MlflowRecord(
        run_id=run.run_id,
        experiment=name,
        status=mlflow_status(status),
        start_time=_millis(summary.get("started_at")),
        end_time=_millis(summary.get("finished_at")) if status != "running" else None,
        params=params,
        metrics=metrics,
        tags=tags,
        artifacts=artifacts,
        notes=notes,
    )
