"""Export runs to MLflow: what ``mlx export RUN... --mlflow URI`` does.

Two halves: :func:`collect` reads a run directory into an :class:`MlflowRecord`
(params, metric points, tags, times, artifacts; no MLflow needed), and
:func:`export_runs` writes records to a tracking server or store with MLflow's own
client (``mlflow-skinny`` or ``mlflow``, the ``mlflow`` extra), imported only here.

Exporting is idempotent: the MLflow run of an mlx run is the one tagged
``mlx.run_id = <run ID>`` in the target experiment; it is created once and updated
after that. Metric points are logged only for steps the MLflow run does not have yet
(MLflow appends a second point when the same step is logged twice), and params only
when missing (MLflow refuses to change a param).
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
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from mlx.errors import BackendUnavailableError, MLXError, RunError

if TYPE_CHECKING:
    from mlx.runs import RunDir

__all__ = [
    "MLFLOW_HINT",
    "ExportOutcome",
    "MlflowRecord",
    "collect",
    "config_hash",
    "export_runs",
    "flatten_config",
    "check_sqlite_store",
    "mlflow_keys",
    "mlflow_status",
]

MLFLOW_HINT = "pip install 'model-harness[mlflow]'"

#: MLflow's limit on a param value (mlflow.utils.validation.MAX_PARAM_VAL_LENGTH);
#: the installed client's own figure is used when it has one.
DEFAULT_PARAM_LIMIT = 6000
#: MLflow's limit on a param, metric or tag key (MAX_ENTITY_KEY_LENGTH), likewise.
DEFAULT_KEY_LIMIT = 250
_ELLIPSIS = "..."

#: How this command bounds MLflow's HTTP retries (its defaults retry for minutes on a
#: refused connection); a value already in the environment wins.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    # MLflow prints "View run ... at ..." on stdout when a run ends; we say it ourselves
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}

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

# MLflow's limits per log_batch request
_BATCH_METRICS = 1000
_BATCH_PARAMS_TAGS = 100


# -- reading a run ---------------------------------------------------------------


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
    metrics: list[tuple[str, float, int, int]]
    tags: dict[str, str]
    artifacts: list[tuple[Path, str | None]]
    notes: list[str] = field(default_factory=list)


def mlflow_status(status: str) -> str:
    """The MLflow run status for an mlx status (``completed`` -> ``FINISHED``)."""
    return _STATUS.get(status, "FAILED")


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted paths to the leaves of ``config`` (``training.epochs``); an empty
    mapping is a leaf of its own, lists are leaves."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_config(value, path + "."))
        else:
            flat[path] = value
    return flat


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


def _millis(value: Any) -> int | None:
    from mlx.runs.store import parse_timestamp

    moment = parse_timestamp(value)
    return None if moment is None else int(round(moment.timestamp() * 1000))


def _number(value: Any) -> float | None:
    """``value`` as a metric value, or None when it is not a number (None, a string,
    a bool, a list: a confusion matrix)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:  # an int too large for a float
        return math.inf if value > 0 else -math.inf


def _epoch(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


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
        data = _number(segment.get("data_seconds")) or 0.0
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
        seconds = _number(record.get("seconds"))
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


def _eval_points(
    run: RunDir, summary: Mapping[str, Any]
) -> list[tuple[str, float, int, int]]:
    """``eval/<split>/<metric>`` points, one per evaluation file; the step is the
    epoch of the evaluated weights, the time the evaluation's ``created_at``."""
    from mlx.errors import DataWarning
    from mlx.utils.safe_io import DOCUMENT_LIMIT, read_text_guarded

    latest: dict[tuple[str, int], tuple[str, float, int, int]] = {}
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
        step = _eval_step(created, data.get("checkpoint"), summary)
        for name, value in data["metrics"].items():
            number = _number(value)
            if number is None:
                continue
            key = f"eval/{split}/{name}"
            # files are oldest first: a later evaluation of the same weights wins
            latest[(key, step)] = (key, number, stamp, step)
    return list(latest.values())


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
    from mlx.runs.store import effective_status

    summary = run.read_summary()
    config = run.read_config()
    notes: list[str] = []

    params: dict[str, str] = {}
    flat = flatten_config(config)
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

    records = run.read_metrics()
    times = _epoch_times(records, summary)
    fallback = _millis(summary.get("updated_at"))
    points: dict[tuple[str, int], tuple[str, float, int, int]] = {}
    for record in records:
        epoch = _epoch(record.get("epoch"))
        if epoch is None:
            continue
        stamp = times.get(epoch, fallback)
        if stamp is None:
            stamp = int(run.metrics_path.stat().st_mtime * 1000)
        for name, value in record.items():
            number = _number(value)
            if name == "epoch" or number is None:
                continue
            key = str(name)
            points[(key, epoch)] = (key, number, stamp, epoch)
    named = list(points.values()) + _eval_points(run, summary)
    metric_keys, renamed = mlflow_keys((p[0] for p in named), key_limit)
    for name, why in renamed.items():
        notes.append(f"metric {name!r} is logged as {metric_keys[name]!r} ({why})")
    metrics = [(metric_keys[n], value, stamp, step) for n, value, stamp, step in named]

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
        metrics=sorted(metrics, key=lambda p: (p[0], p[3])),
        tags=tags,
        artifacts=artifacts,
        notes=notes,
    )


# -- writing to MLflow -----------------------------------------------------------


@dataclass
class ExportOutcome:
    """What one export did to one MLflow run."""

    run_id: str
    experiment: str
    experiment_id: str
    mlflow_run_id: str
    created: bool
    params_logged: int
    metrics_logged: int
    metrics_present: int
    artifacts: list[str]
    url: str | None
    notes: list[str]


def _import_mlflow() -> Any:
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import mlflow.tracking
    except ImportError as exc:
        if (getattr(exc, "name", None) or "").split(".")[0] == "mlflow":
            raise BackendUnavailableError(
                "exporting to MLflow needs the MLflow client, which is not "
                f"installed; install it with: {MLFLOW_HINT}",
                hint=MLFLOW_HINT,
            ) from None
        raise MLXError(f"the mlflow package failed to import: {exc}") from None
    import logging

    # "Creating initial MLflow database tables..." and the like are not ours to show
    for logger in ("mlflow", "alembic"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    return mlflow


def _param_limit(mlflow: Any) -> int:
    try:
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
    except ImportError:
        return DEFAULT_PARAM_LIMIT
    return int(MAX_PARAM_VAL_LENGTH)


def _key_limit(mlflow: Any) -> int:
    try:
        from mlflow.utils.validation import MAX_ENTITY_KEY_LENGTH
    except ImportError:
        return DEFAULT_KEY_LIMIT
    return int(MAX_ENTITY_KEY_LENGTH)


# how urllib3 and the C library say that a host name has no address; checked before
# "Failed to establish a new connection", which urllib3 1.x also says then
_UNRESOLVED = (
    "Failed to resolve",
    "NameResolutionError",
    "Name or service not known",
    "nodename nor servname",
    "Temporary failure in name resolution",
    "No address associated with hostname",
)


def _failure(uri: str, exc: BaseException) -> MLXError:
    """One readable error for anything the MLflow client raised."""
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    text = " ".join(str(text).split())
    if any(sign in text for sign in _UNRESOLVED):
        return RunError(
            f"cannot reach the MLflow tracking server at {uri}: its host name does "
            "not resolve",
            hint="check the host in the --mlflow URI",
        )
    if "Connection refused" in text or "Failed to establish a new connection" in text:
        return RunError(
            f"cannot reach the MLflow tracking server at {uri} (connection refused)",
            hint="start it (`mlflow server --host 127.0.0.1 --port PORT`) or check "
            "the --mlflow URI",
        )
    if "Max retries exceeded" in text or "timed out" in text.lower():
        return RunError(f"cannot reach the MLflow tracking server at {uri}: {text}")
    if len(text) > 600:
        text = text[:600] + " ..."
    return RunError(f"MLflow ({uri}): {text}")


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Exporter:
    def __init__(self, mlflow: Any, uri: str) -> None:
        from mlflow.tracking import MlflowClient

        self.mlflow = mlflow
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        self.experiments: dict[str, str] = {}

    def experiment_id(self, name: str) -> str:
        if name in self.experiments:
            return self.experiments[name]
        found = self.client.get_experiment_by_name(name)
        if found is None:
            ident = str(self.client.create_experiment(name))
        elif found.lifecycle_stage == "deleted":
            raise RunError(
                f"the MLflow experiment {name!r} (ID {found.experiment_id}) is deleted",
                hint=f"restore it (`mlflow experiments restore --experiment-id "
                f"{found.experiment_id}`) or export with --experiment OTHER_NAME",
            )
        else:
            ident = str(found.experiment_id)
        self.experiments[name] = ident
        return ident

    def find_run(self, experiment_id: str, run_id: str, notes: list[str]) -> Any:
        from mlflow.entities import ViewType

        if "'" in run_id or "\\" in run_id:
            raise RunError(f"run ID {run_id!r} cannot be searched for in MLflow")
        found = self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.`mlx.run_id` = '{run_id}'",
            run_view_type=ViewType.ALL,
            max_results=10,
            order_by=["attributes.start_time ASC"],
        )
        if not found:
            return None
        if len(found) > 1:
            notes.append(
                f"{len(found)} MLflow runs carry mlx.run_id {run_id}; updating the "
                f"oldest, {found[0].info.run_id}"
            )
        match = found[0]
        if match.info.lifecycle_stage == "deleted":
            self.client.restore_run(match.info.run_id)
            notes.append(f"restored the deleted MLflow run {match.info.run_id}")
        return match

    def export(self, record: MlflowRecord) -> ExportOutcome:
        from mlflow.entities import Metric, Param, RunTag

        notes = list(record.notes)
        experiment_id = self.experiment_id(record.experiment)
        existing = self.find_run(experiment_id, record.run_id, notes)
        created = existing is None
        if existing is None:
            run = self.client.create_run(
                experiment_id,
                start_time=record.start_time,
                tags=record.tags,
                run_name=record.run_id,
            )
            mlflow_id = run.info.run_id
            logged_params: dict[str, str] = {}
        else:
            mlflow_id = existing.info.run_id
            logged_params = dict(existing.data.params)

        # params: MLflow refuses to change one, so only the missing ones are logged
        params = []
        for key, value in record.params.items():
            before = logged_params.get(key)
            if before is None:
                params.append(Param(key, value))
            elif before != value:
                notes.append(
                    f"param {key!r} is {_short(before)} in MLflow and "
                    f"{_short(value)} now; MLflow keeps a param's first value "
                    "(config.yaml in the artifacts is current)"
                )
        tags = [RunTag(k, v) for k, v in record.tags.items()]

        # metrics: only the steps MLflow does not have yet, so histories never double
        present: dict[str, set[int]] = {}
        if existing is not None:
            for key in {p[0] for p in record.metrics} & set(existing.data.metrics):
                history = self.client.get_metric_history(mlflow_id, key)
                present[key] = {m.step for m in history}
        new = [
            Metric(key, value, stamp, step)
            for key, value, stamp, step in record.metrics
            if step not in present.get(key, ())
        ]
        for batch in _chunks(params, _BATCH_PARAMS_TAGS):
            self.client.log_batch(mlflow_id, params=batch)
        for batch in _chunks(tags, _BATCH_PARAMS_TAGS):
            self.client.log_batch(mlflow_id, tags=batch)
        for batch in _chunks(new, _BATCH_METRICS):
            self.client.log_batch(mlflow_id, metrics=batch)

        uploaded = []
        for path, directory in record.artifacts:
            if path.is_dir():
                self.client.log_artifacts(mlflow_id, os.fspath(path), directory)
                uploaded.append(f"{directory or path.name}/")
            elif path.is_file():
                self.client.log_artifact(mlflow_id, os.fspath(path), directory)
                uploaded.append(path.name if directory is None else f"{directory}/")

        if record.status == "RUNNING":
            self.client.update_run(mlflow_id, status="RUNNING")
        else:
            self.client.set_terminated(
                mlflow_id, status=record.status, end_time=record.end_time
            )
        url = None
        if self.uri.startswith(("http://", "https://")):
            base = self.uri.rstrip("/")
            url = f"{base}/#/experiments/{experiment_id}/runs/{mlflow_id}"
        return ExportOutcome(
            run_id=record.run_id,
            experiment=record.experiment,
            experiment_id=experiment_id,
            mlflow_run_id=mlflow_id,
            created=created,
            params_logged=len(params),
            metrics_logged=len(new),
            metrics_present=len(record.metrics) - len(new),
            artifacts=uploaded,
            url=url,
            notes=notes,
        )


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


_SQLITE_HEADER = b"SQLite format 3\x00"


def check_sqlite_store(uri: str) -> None:
    """For a ``sqlite:///PATH`` store, RunError unless PATH is an SQLite database
    (or an empty file) that can be written, or can be created: MLflow itself retries
    a database it cannot open for minutes, then fails with a traceback."""
    if not uri.startswith("sqlite:///"):
        return
    text = uri[len("sqlite:///") :].split("?", 1)[0]
    if text in ("", ":memory:"):
        return
    path = Path(text)

    def refuse(why: str) -> RunError:
        return RunError(
            f"the MLflow store {uri} cannot be used: {why}",
            hint="name an SQLite database file (sqlite:///mlflow.db), new or "
            "made by MLflow",
        )

    if os.path.lexists(path):
        if path.is_dir():
            raise refuse(f"{text} is a directory")
        if not path.is_file():
            raise refuse(f"{text} is not a regular file")
        try:
            with open(path, "rb") as handle:
                header = handle.read(len(_SQLITE_HEADER))
        except OSError as exc:
            raise refuse(f"{text}: {exc.strerror or exc}") from None
        if header and header != _SQLITE_HEADER:
            raise refuse(f"{text} is not an SQLite database")
        if not os.access(path, os.W_OK):
            raise refuse(f"{text} cannot be written (permission denied)")
        return
    parent = path.absolute().parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise refuse(f"{os.fspath(parent)} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise refuse(f"{os.fspath(parent)} cannot be written (permission denied)")


def _no_sqlite_retries() -> None:
    """MLflow retries opening a database ten times over about 100 s, for a server
    that is starting; a local SQLite file that does not open now never will."""
    try:
        from mlflow.store.db import utils as db_utils
    except ImportError:  # mlflow-skinny: no database stores at all
        return
    if isinstance(getattr(db_utils, "MAX_RETRY_COUNT", None), int):
        db_utils.MAX_RETRY_COUNT = 1


def export_runs(
    runs: Sequence[RunDir],
    uri: str,
    *,
    experiment: str | None = None,
    report: Callable[[ExportOutcome], None] | None = None,
) -> list[ExportOutcome]:
    """Log each of ``runs`` to the MLflow tracking server or store at ``uri``
    (``http://host:port``, ``sqlite:///path.db``, a directory); returns what each
    export did, and calls ``report`` after each one."""
    check_sqlite_store(uri)
    mlflow = _import_mlflow()
    if uri.startswith("sqlite:"):
        _no_sqlite_retries()
    limit, key_limit = _param_limit(mlflow), _key_limit(mlflow)
    records = [
        collect(run, experiment, param_limit=limit, key_limit=key_limit) for run in runs
    ]
    from mlflow.exceptions import MlflowException

    outcomes = []
    try:
        with warnings.catch_warnings():
            # MLflow's dependencies' deprecation notices say nothing to our user
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            exporter = _Exporter(mlflow, uri)
            for record in records:
                outcome = exporter.export(record)
                outcomes.append(outcome)
                if report is not None:
                    report(outcome)
    except MLXError:
        raise
    except (MlflowException, ValueError) as exc:  # ValueError: a bad MLFLOW_* value
        raise _failure(uri, exc) from None
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the MLflow store at {uri} needs a package that is not installed "
            f"({exc}); a sqlite:// or database store needs the full `mlflow` "
            "package: pip install mlflow",
            hint="pip install mlflow",
        ) from None
    except OSError as exc:  # requests' connection errors are OSErrors too
        if getattr(exc, "filename", None):
            raise  # a local file: the CLI names it
        raise _failure(uri, exc) from None
    except Exception as exc:
        # a database store's own errors (SQLAlchemy's) are not MLflow's
        if type(exc).__module__.split(".")[0] != "sqlalchemy":
            raise
        raise _failure(uri, getattr(exc, "orig", None) or exc) from None
    return outcomes
