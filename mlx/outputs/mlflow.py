"""Export runs to MLflow: what ``mlx export RUN... --mlflow URI`` does.

Two halves: :func:`~mlx.outputs.mlflow_record.collect` reads a run directory into an
:class:`~mlx.outputs.mlflow_record.MlflowRecord` (params, metric points, tags, times,
artifacts; no MLflow needed), and :func:`export_runs` here writes records to a
tracking server or store with MLflow's own client (``mlflow-skinny`` or ``mlflow``,
the ``mlflow`` extra), imported only when an export starts.

Exporting is idempotent: the MLflow run of an mlx run is the one tagged
``mlx.run_id = <run ID>`` in the target experiment; it is created once and updated
after that. Metric points are logged only for steps the MLflow run does not have yet
(MLflow appends a second point when the same step is logged twice), and params only
when missing (MLflow refuses to change a param).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
import urllib.parse
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Callable, Iterable, Sequence, TypeVar

from mlx.errors import BackendUnavailableError, MLXError, RunError, map_os_errors
from mlx.outputs.mlflow_record import (
    DEFAULT_KEY_LIMIT,
    DEFAULT_PARAM_LIMIT,
    MlflowRecord,
    collect,
    config_hash,
    mlflow_keys,
    mlflow_status,
)
from mlx.runs.store import RunDir
from mlx.utils.atomic import publish_file
from mlx.utils.signals import StopSignals, pause_point, watch

if TYPE_CHECKING:
    from mlflow.entities import Metric, Param, Run

__all__ = [
    "MLFLOW_HINT",
    "ExportOutcome",
    "MlflowRecord",
    "check_sqlite_store",
    "collect",
    "config_hash",
    "export_runs",
    "mlflow_keys",
    "mlflow_status",
]

MLFLOW_HINT = "pip install 'model-harness[mlflow]'"

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

# MLflow's limits per log_batch request
_BATCH_METRICS = 1000
_BATCH_PARAMS_TAGS = 100

_Item = TypeVar("_Item")


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


def _import_mlflow() -> ModuleType:
    """The MLflow client, its HTTP retries bounded and its loggers quiet;
    BackendUnavailableError when it is not installed."""
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
    # "Creating initial MLflow database tables..." and the like are not ours to show
    for logger in ("mlflow", "alembic"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    return mlflow


def _param_limit(mlflow: ModuleType) -> int:
    try:
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH
    except ImportError:
        return DEFAULT_PARAM_LIMIT
    return int(MAX_PARAM_VAL_LENGTH)


def _key_limit(mlflow: ModuleType) -> int:
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


def _chunks(items: list[_Item], size: int) -> Iterable[list[_Item]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Exporter:
    """Writes records to one tracking server or store, an experiment looked up
    once per name."""

    def __init__(self, mlflow: ModuleType, uri: str) -> None:
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

    def find_run(self, experiment_id: str, run_id: str, notes: list[str]) -> Run | None:
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
        """Create or update the MLflow run of ``record``: params, tags, the metric
        points it lacks, artifacts, then its status."""
        from mlflow.entities import RunTag

        notes = list(record.notes)
        experiment_id = self.experiment_id(record.experiment)
        existing = self.find_run(experiment_id, record.run_id, notes)
        if existing is None:
            # one step no signal cuts: a file store writes the run, then its tags,
            # and a run without its mlx.run_id would be made again by the next export
            signals = StopSignals.active()
            with contextlib.nullcontext() if signals is None else signals.holding():
                pause_point("mlflow-run")
                run = self.client.create_run(
                    experiment_id,
                    start_time=record.start_time,
                    tags=record.tags,
                    run_name=record.run_id,
                )
            mlflow_id = run.info.run_id
        else:
            mlflow_id = existing.info.run_id
        params = _missing_params(record, existing, notes)
        tags = [RunTag(k, v) for k, v in record.tags.items()]
        new = self.new_metrics(record, existing)
        for some_params in _chunks(params, _BATCH_PARAMS_TAGS):
            self.client.log_batch(mlflow_id, params=some_params)
        for some_tags in _chunks(tags, _BATCH_PARAMS_TAGS):
            self.client.log_batch(mlflow_id, tags=some_tags)
        for some_metrics in _chunks(new, _BATCH_METRICS):
            self.client.log_batch(mlflow_id, metrics=some_metrics)
        uploaded = self.upload(mlflow_id, record.artifacts)
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
            created=existing is None,
            params_logged=len(params),
            metrics_logged=len(new),
            metrics_present=len(record.metrics) - len(new),
            artifacts=uploaded,
            url=url,
            notes=notes,
        )

    def new_metrics(self, record: MlflowRecord, existing: Run | None) -> list[Metric]:
        """The points of ``record`` at steps the MLflow run does not have yet, so
        that histories never double."""
        from mlflow.entities import Metric

        present: dict[str, set[int]] = {}
        if existing is not None:
            for key in {p[0] for p in record.metrics} & set(existing.data.metrics):
                history = self.client.get_metric_history(existing.info.run_id, key)
                present[key] = {m.step for m in history}
        return [
            Metric(key, value, stamp, step)
            for key, value, stamp, step in record.metrics
            if step not in present.get(key, ())
        ]

    def upload(
        self, mlflow_id: str, artifacts: Sequence[tuple[Path, str | None]]
    ) -> list[str]:
        """Log each artifact that exists; returns their names as the export tells
        them (``config.yaml``, ``model/``)."""
        uploaded = []
        for path, directory in artifacts:
            if path.is_dir():
                self.client.log_artifacts(mlflow_id, os.fspath(path), directory)
                uploaded.append(f"{directory or path.name}/")
            elif path.is_file():
                self.client.log_artifact(mlflow_id, os.fspath(path), directory)
                uploaded.append(path.name if directory is None else f"{directory}/")
        return uploaded


def _missing_params(
    record: MlflowRecord, existing: Run | None, notes: list[str]
) -> list[Param]:
    """The params of ``record`` that the MLflow run lacks: MLflow refuses to change
    one, so a changed value is told in ``notes`` and left as it is."""
    from mlflow.entities import Param

    logged = {} if existing is None else dict(existing.data.params)
    params = []
    for key, value in record.params.items():
        before = logged.get(key)
        if before is None:
            params.append(Param(key, value))
        elif before != value:
            notes.append(
                f"param {key!r} is {_short(before)} in MLflow and "
                f"{_short(value)} now; MLflow keeps a param's first value "
                "(config.yaml in the artifacts is current)"
            )
    return params


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


_SQLITE_HEADER = b"SQLite format 3\x00"
_SQLITE_HINT = (
    "name an SQLite database file (sqlite:///mlflow.db), new or made by MLflow"
)


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` store (None for any other store,
    and for one in memory)."""
    if not uri.startswith("sqlite:///"):
        return None
    text = uri[len("sqlite:///") :].split("?", 1)[0]
    return None if text in ("", ":memory:") else Path(text)


def check_sqlite_store(uri: str) -> None:
    """For a ``sqlite:///PATH`` store, RunError unless PATH is an SQLite database
    (or an empty file) that can be written, or can be created: MLflow itself retries
    a database it cannot open for minutes, then fails with a traceback."""
    path = _sqlite_file(uri)
    if path is None:
        return
    text = os.fspath(path)

    def refuse(why: str) -> RunError:
        return RunError(
            f"the MLflow store {uri} cannot be used: {why}", hint=_SQLITE_HINT
        )

    if os.path.lexists(path):
        if path.is_dir():
            raise refuse(f"{text} is a directory")
        if not path.is_file():
            raise refuse(f"{text} is not a regular file")
        unreadable = "the MLflow store {uri} cannot be used: {text}: {reason}"
        with map_os_errors(RunError, unreadable, hint=_SQLITE_HINT, uri=uri, text=text):
            with open(path, "rb") as handle:
                header = handle.read(len(_SQLITE_HEADER))
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


def _is_new(path: Path) -> bool:
    """Whether ``path`` names no file yet, or an empty one."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return True
    return stat.S_ISREG(info.st_mode) and info.st_size == 0


def _create_sqlite_store(uri: str, path: Path) -> None:
    """A new SQLite store is made whole before it has its name: MLflow creates its
    schema (some seconds, dozens of migrations) in a temporary file beside ``path``,
    which is then moved into place (:func:`~mlx.utils.atomic.publish_file`). An
    export stopped meanwhile leaves no store, never one that every later export
    refuses; one made by another export meanwhile is kept and used."""
    if not _is_new(path) or not path.parent.is_dir():
        return
    from mlflow.tracking import MlflowClient

    name = ""
    temporary = ""
    try:
        # no signal between the file's creation and its name known here, where
        # the finally below removes it (one that came is raised after the block)
        with watch().holding():
            fd, name = tempfile.mkstemp(
                prefix=f".{path.name}.", suffix=".partial", dir=path.parent
            )
            os.close(fd)
        query = uri.partition("?")[2]
        temporary = f"sqlite:///{name}" + (f"?{query}" if query else "")
        pause_point("mlflow-schema")
        MlflowClient(tracking_uri=temporary).search_experiments(max_results=1)
        _close_engine(temporary)
        publish_file(name, path)
    finally:
        if temporary:
            _close_engine(temporary)
        leftovers = (name, f"{name}-journal", f"{name}-wal", f"{name}-shm")
        for leftover in leftovers if name else ():
            with contextlib.suppress(OSError):
                os.unlink(leftover)


def _close_engine(uri: str) -> None:
    """Close the connections MLflow keeps open to the database of ``uri``."""
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    except ImportError:
        return
    engines = getattr(SqlAlchemyStore, "_engine_map", None)
    engine = engines.pop(uri, None) if isinstance(engines, dict) else None
    if engine is not None:
        engine.dispose()


def _runs_held(path: Path) -> int | None:
    """How many runs the SQLite store at ``path`` holds (0 without a runs table);
    None when it cannot be read."""
    import sqlite3

    try:
        address = f"file:{urllib.parse.quote(os.fspath(path.absolute()))}?mode=ro"
        with contextlib.closing(sqlite3.connect(address, uri=True)) as database:
            tables = database.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            ).fetchall()
            if ("runs",) not in tables:
                return 0
            return int(database.execute("SELECT count(*) FROM runs").fetchone()[0])
    except sqlite3.Error:
        return None


def _store_failure(uri: str, exc: BaseException) -> MLXError:
    """:func:`_failure`, and for an SQLite store that holds no runs, what to do:
    MLflow refuses a store whose creation was stopped part-way (by an older
    version of this command, or by MLflow's own tools) on every later open."""
    error = _failure(uri, exc)
    path = _sqlite_file(uri)
    if path is None or not path.is_file() or _runs_held(path) != 0:
        return error
    prefix = f"MLflow ({uri}): "
    detail = error.message[len(prefix) :] if error.message.startswith(prefix) else ""
    return RunError(
        f"the MLflow store {uri} cannot be used"
        + (f" ({detail})" if detail else "")
        + " and holds no runs: it looks like a store whose creation was stopped "
        "part-way",
        hint=f"remove {os.fspath(path)} and export again (a new store is made whole "
        "before it takes its name)",
    )


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
            sqlite_file = _sqlite_file(uri)
            if sqlite_file is not None:
                _create_sqlite_store(uri, sqlite_file)
            exporter = _Exporter(mlflow, uri)
            for record in records:
                outcome = exporter.export(record)
                outcomes.append(outcome)
                if report is not None:
                    report(outcome)
    except MLXError:
        raise
    except (MlflowException, ValueError) as exc:  # ValueError: a bad MLFLOW_* value
        raise _store_failure(uri, exc) from None
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
        raise _store_failure(uri, getattr(exc, "orig", None) or exc) from None
    return outcomes
