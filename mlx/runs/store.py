"""One experiment run on disk: :class:`RunDir`.

Layout of a run directory (its name is the run ID)::

    <output_directory>/<run_id>/
        summary.json         status, pid/host, heartbeat, final metrics (replaced
                             atomically on every update)
        run.lock             flock'ed by the process that trains the run, for as
                             long as it does (see mlx.runs.lock)
        config.yaml          the fully resolved configuration
        original_config.*    byte copy of the file the run was started from
        environment.json     versions, platform, BLAS, command line, git commit
        metrics.jsonl        one JSON object per line, appended (one line per epoch)
        train.log            the training log (written by the trainer)
        checkpoints/
            epoch-0001/      one directory per saved epoch, published by one rename
            epoch-0002/
            last -> epoch-0002   symlink (or a text file holding the name)
        model/               the final model, published by one rename (an atomic
                             exchange when it replaces an older one)
        evals/
            20240501T120003.123456Z.json   one file per evaluation, never overwritten

Writers never leave a torn file: whole files are replaced with ``os.replace``, lines
are appended with one ``os.write``, directories are published with one rename
(:mod:`mlx.utils.atomic`). Readers therefore need no lock and never block the writer.

Epoch numbers are 1-based: epoch ``N`` is the state after ``N`` completed epochs.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Union

from mlx.errors import RunError, map_os_errors
from mlx.runs.checkpoints import (
    EPOCH_DIR_RE,
    checkpoint_name,
    epoch_dirs,
    publish_dir,
    remove_leftovers,
)
from mlx.runs.environment import collect_environment
from mlx.runs.evals import eval_files, write_eval_file
from mlx.runs.heartbeat import Heartbeat
from mlx.runs.ids import as_utc, new_run_id, utc_now
from mlx.runs.lock import RunLock, lock_state, process_start
from mlx.runs.metrics_log import kept_records, metrics_line, parse_metrics_log
from mlx.runs.summary import (
    DEFAULT_HEARTBEAT_INTERVAL,
    effective_status,
    error_fields,
    new_summary,
    parse_summary,
    ran_here,
    refuse_if_running,
    timestamp,
)
from mlx.utils.atomic import (
    read_pointer,
    update_symlink_atomic,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from mlx.utils.safe_io import (
    DOCUMENT_LIMIT,
    METRICS_LIMIT,
    SUMMARY_LIMIT,
    append_line_guarded,
    check_appendable,
    check_inside,
    read_bytes_guarded,
    read_text_guarded,
)
from mlx.utils.values import plain

if TYPE_CHECKING:
    from mlx.config.experiment import ExperimentConfig

__all__ = [
    "CHECKPOINTS_DIR",
    "CONFIG_FILE",
    "DATA_FILE",
    "ENVIRONMENT_FILE",
    "EVALS_DIR",
    "LAST_POINTER",
    "LOG_FILE",
    "METRICS_FILE",
    "MODEL_DIR",
    "ORIGINAL_CONFIG_STEM",
    "PREDICTIONS_FILE",
    "SUMMARY_FILE",
    "TRAINER_STATE_FILE",
    "RunDir",
    "open_run",
]

PathLike = Union[str, "os.PathLike[str]"]

#: The run directory's layout: every file and folder name, spelled here alone. Other
#: modules use these constants (or the RunDir properties below), never the literals.
SUMMARY_FILE = "summary.json"
CONFIG_FILE = "config.yaml"
ORIGINAL_CONFIG_STEM = "original_config"
ENVIRONMENT_FILE = "environment.json"
METRICS_FILE = "metrics.jsonl"
LOG_FILE = "train.log"
DATA_FILE = "data.json"
PREDICTIONS_FILE = "predictions.csv"
TRAINER_STATE_FILE = "trainer_state.json"
CHECKPOINTS_DIR = "checkpoints"
LAST_POINTER = "last"
MODEL_DIR = "model"
EVALS_DIR = "evals"

_MAX_CREATE_ATTEMPTS = 64

# One lock per run directory, shared by every RunDir object of this process, so the
# heartbeat thread and the training loop never interleave a read-modify-write.
_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: Path) -> threading.RLock:
    key = os.path.normcase(os.path.abspath(path))
    with _LOCKS_GUARD:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = threading.RLock()
        return lock


class RunDir:
    """A run directory: paths to its parts and crash-safe writers for them.

    Create a new run with :meth:`create`; open an existing one with :func:`open_run`
    or :func:`mlx.runs.find_run`. Constructing ``RunDir(path)`` does no I/O.

    Attributes
    ----------
    path : Path
        The run directory; its name is the run ID.
    run_id : str
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self.run_id = self.path.name
        self._lock = _lock_for(self.path)
        self._ownership = RunLock(self.path)

    def __repr__(self) -> str:
        return f"RunDir({os.fspath(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RunDir):
            return NotImplemented
        return os.path.abspath(self.path) == os.path.abspath(other.path)

    def __hash__(self) -> int:
        return hash(os.path.abspath(self.path))

    # -- creation ------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        output_directory: PathLike,
        name: str,
        *,
        now: _dt.datetime | None = None,
        lock: bool = False,
        fields: Mapping[str, Any] | None = None,
    ) -> RunDir:
        """Create a new run directory ``<output_directory>/<run_id>`` and its summary.

        The directory is claimed with ``os.mkdir`` (never ``exist_ok``): if the ID is
        taken, by another process starting in the same second, a new random suffix is
        drawn, so no two runs ever share a directory. ``output_directory`` is created
        if needed. The new run starts as ``running``, owned by this process; finish it
        with :meth:`mark_completed`, :meth:`mark_failed` or :meth:`mark_interrupted`.

        With ``lock=True`` the run's ``run.lock`` is taken (see :meth:`acquire`)
        before its summary is written, so no reader ever sees the new run unowned;
        :meth:`release` it when done. ``fields`` are extra summary fields written
        with the first summary (``mlx sweep``'s ``sweep`` and ``point``).
        """
        root = Path(output_directory)
        cannot = "Cannot create the output directory {path!r}: {exc}."
        with map_os_errors(RunError, cannot, path=os.fspath(root)):
            root.mkdir(parents=True, exist_ok=True)
        moment = as_utc(now if now is not None else utc_now())
        for _ in range(_MAX_CREATE_ATTEMPTS):
            path = root / new_run_id(name, moment)
            try:
                os.mkdir(path)
            except FileExistsError:
                continue
            except OSError as exc:
                raise RunError(
                    f"Cannot create the run directory {os.fspath(path)!r}: {exc}."
                ) from exc
            run = cls(path)
            if lock:
                try:
                    run._ownership.acquire(run.run_id)
                except BaseException:
                    shutil.rmtree(path, ignore_errors=True)
                    raise
            try:
                summary = new_summary(run.run_id, name, timestamp(moment), fields)
                run._write_summary(summary)
            except BaseException:
                # a disk that is full (or gone) leaves no run without a summary
                run._ownership.release()
                shutil.rmtree(path, ignore_errors=True)
                raise
            return run
        raise RunError(
            f"Could not find a free run ID for {name!r} in {os.fspath(root)!r} after "
            f"{_MAX_CREATE_ATTEMPTS} attempts."
        )

    # -- paths ---------------------------------------------------------------------

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def environment_path(self) -> Path:
        return self.path / ENVIRONMENT_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def log_path(self) -> Path:
        """``train.log``; the trainer writes it (e.g. with a logging.FileHandler)."""
        return self.path / LOG_FILE

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    @property
    def model_dir(self) -> Path:
        """``model/``: the final model, written with :meth:`save_model`."""
        return self.path / MODEL_DIR

    @property
    def evals_dir(self) -> Path:
        return self.path / EVALS_DIR

    @property
    def data_path(self) -> Path:
        """``data.json``: the record of the data the run trained on."""
        return self.path / DATA_FILE

    @property
    def predictions_path(self) -> Path:
        """``predictions.csv``, written by ``mlx eval --save-predictions``."""
        return self.path / PREDICTIONS_FILE

    # -- config and environment ----------------------------------------------------

    def write_config(
        self,
        config: Mapping[str, Any] | ExperimentConfig,
        original_path: PathLike | None = None,
    ) -> Path:
        """Write ``config.yaml`` and, if given, a byte copy of the original file.

        ``config`` is the fully resolved configuration: a mapping, or an object with
        ``to_dict()`` (such as :class:`mlx.config.ExperimentConfig`). Keys keep their
        order. The copy is named ``original_config`` plus the original's suffix
        (``original_config.json``, ``original_config.yaml``). Returns the path of
        ``config.yaml``.
        """
        from mlx.config.documents import dump_yaml  # YAML loads with the config alone

        data = config.to_dict() if hasattr(config, "to_dict") else config
        if not isinstance(data, Mapping):
            raise RunError(
                "write_config expects a mapping or an object with to_dict(); "
                f"got {type(config).__name__}."
            )
        # quoted wherever YAML 1.1 or 1.2 would read a string as something else
        text = dump_yaml(plain(data))
        write_text_atomic(self._inside(self.config_path), text)
        if original_path is not None:
            source = Path(original_path)
            content = read_bytes_guarded(
                source, DOCUMENT_LIMIT, "the original config file"
            )
            assert content is not None
            suffix = source.suffix.lower() or ".txt"
            copy = self._inside(self.path / f"{ORIGINAL_CONFIG_STEM}{suffix}")
            write_bytes_atomic(copy, content)
        return self.config_path

    def read_config(self) -> dict[str, Any]:
        """The resolved configuration from ``config.yaml`` as plain data."""
        import yaml  # loaded here: listing runs never needs YAML

        from mlx.config.documents import load_yaml

        text = read_text_guarded(
            self.config_path, DOCUMENT_LIMIT, "the run's config", missing_ok=True
        )
        if text is None:
            raise RunError(
                f"Run {self.run_id!r} has no config.yaml at "
                f"{os.fspath(self.config_path)!r}."
            )
        try:
            data = load_yaml(text)  # YAML 1.2, as every config mlx reads
        except yaml.YAMLError as exc:
            raise RunError(
                f"{os.fspath(self.config_path)}: not valid YAML: {exc}."
            ) from exc
        except RecursionError as exc:
            raise RunError(
                f"{os.fspath(self.config_path)}: not valid YAML: nested too deeply."
            ) from exc
        if not isinstance(data, dict):
            raise RunError(
                f"{os.fspath(self.config_path)}: expected a mapping at the top level; "
                f"got {type(data).__name__}."
            )
        return data

    def write_environment(self, extra: Mapping[str, Any] | None = None) -> Path:
        """Write ``environment.json`` (see :func:`mlx.runs.collect_environment`)."""
        return write_json_atomic(
            self._inside(self.environment_path), collect_environment(extra)
        )

    # -- metrics -------------------------------------------------------------------

    def append_metrics(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` as one JSON line to ``metrics.jsonl``.

        The keys are the caller's (e.g. ``epoch``, ``step``, ``train_loss``,
        ``val_accuracy``, ``learning_rate``, ``seconds``); NumPy scalars are converted.
        """
        if not isinstance(record, Mapping):
            raise RunError(
                f"append_metrics expects a mapping; got {type(record).__name__}."
            )
        append_line_guarded(
            self._inside(self.metrics_path), metrics_line(record), "the metrics log"
        )

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every record of ``metrics.jsonl``, in order ([] if there is none yet).

        A torn or unparsable line (left by a crash mid-write) is skipped with a
        :class:`~mlx.errors.DataWarning` naming the file and line number.
        """
        raw = read_bytes_guarded(
            self.metrics_path, METRICS_LIMIT, "the metrics log", missing_ok=True
        )
        return [] if raw is None else parse_metrics_log(raw, self.metrics_path)

    def truncate_metrics(self, n_epochs: int, *, key: str = "epoch") -> int:
        """Keep only records with ``record[key] <= n_epochs`` (for resuming after
        epoch ``n_epochs``); records without a numeric ``key`` are kept. Torn lines
        are dropped. ``metrics.jsonl`` is rewritten atomically. Returns the number of
        records kept.
        """
        kept = kept_records(self.read_metrics(), n_epochs, key)
        text = "".join(metrics_line(r) + "\n" for r in kept)
        write_text_atomic(self._inside(self.metrics_path), text)
        return len(kept)

    # -- checkpoints and the final model -------------------------------------------

    def checkpoint_dir(self, epoch: int, step: int | None = None) -> Path:
        """``checkpoints/epoch-NNNN`` for ``epoch`` (it need not exist); with ``step``,
        ``checkpoints/epoch-NNNN-step-SSSSSSSS``, a checkpoint taken mid-epoch."""
        return self.checkpoints_dir / checkpoint_name(epoch, step)

    def save_checkpoint(
        self, epoch: int, write_fn: Callable[[Path], Any], *, step: int | None = None
    ) -> Path:
        """Write the checkpoint of ``epoch`` crash-safely; returns its directory.

        ``step`` names a checkpoint taken inside the epoch after ``epoch`` (on
        interruption), see :meth:`checkpoint_dir`.

        ``write_fn(tmp_path)`` writes the checkpoint's files (weights, optimizer
        state, ``trainer_state.json``, ...) into the empty directory
        ``checkpoints/.tmp-epoch-NNNN-<hex>``. Then that directory is renamed to
        ``checkpoints/epoch-NNNN`` and ``checkpoints/last`` is pointed at it. If
        ``write_fn`` raises, or the process dies inside it, the previous checkpoint
        and ``last`` stay as they were; leftovers are removed by the next save.
        """
        final = self.checkpoint_dir(epoch, step)
        self._inside(self.checkpoints_dir, kind="dir")
        self._inside(final, kind="dir")
        self.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        remove_leftovers(self.checkpoints_dir)
        published = publish_dir(self.checkpoints_dir, final.name, write_fn)
        update_symlink_atomic(self.checkpoints_dir / LAST_POINTER, final.name)
        return published

    def list_checkpoints(self) -> list[tuple[int, Path]]:
        """``(epoch, directory)`` of every complete checkpoint, oldest first (a
        mid-epoch one sorts after its epoch's)."""
        return epoch_dirs(self.checkpoints_dir)

    def latest_checkpoint(self) -> Path | None:
        """The directory ``checkpoints/last`` points at; if that is missing or
        broken, the highest complete ``epoch-NNNN``; None when there is none."""
        target = read_pointer(self.checkpoints_dir / LAST_POINTER)
        if target and EPOCH_DIR_RE.match(target):
            candidate = self.checkpoints_dir / target
            if candidate.is_dir() and not candidate.is_symlink():
                return candidate
        found = self.list_checkpoints()
        return found[-1][1] if found else None

    def save_model(self, write_fn: Callable[[Path], Any]) -> Path:
        """Write the final model into ``model/`` crash-safely; returns ``model_dir``.

        ``write_fn(tmp_path)`` fills the empty directory ``.tmp-model-<hex>``, which
        is then renamed to ``model/`` (replacing an older one).
        """
        self._inside(self.model_dir, kind="dir")
        remove_leftovers(self.path, prefix=".tmp-model-")
        return publish_dir(self.path, self.model_dir.name, write_fn)

    # -- evaluations ---------------------------------------------------------------

    def write_eval(
        self, result: Mapping[str, Any], *, now: _dt.datetime | None = None
    ) -> Path:
        """Write ``result`` to ``evals/<UTC timestamp>.json``; returns the path.

        The name is the UTC time with microseconds (``20240501T120003.123456Z.json``),
        so files sort by time. An existing file is never overwritten: on a clash the
        timestamp moves on by a microsecond.
        """
        self._inside(self.evals_dir, kind="dir")
        self.evals_dir.mkdir(parents=True, exist_ok=True)
        return write_eval_file(self.evals_dir, result, now)

    def list_evals(self) -> list[Path]:
        """Evaluation result files, oldest first."""
        return eval_files(self.evals_dir)

    # -- summary and status --------------------------------------------------------

    def read_summary(self) -> dict[str, Any]:
        """The content of ``summary.json``; RunError if it is missing, not a regular
        file, not UTF-8 JSON, or holds a field of the wrong type or range (see
        :func:`mlx.runs.summary.summary_problems`)."""
        text = read_text_guarded(
            self.summary_path, SUMMARY_LIMIT, "the run summary", missing_ok=True
        )
        if text is None:
            raise RunError(
                f"{os.fspath(self.path)!r} is not a run directory: it has no "
                "summary.json (the run may have failed while being created)."
            )
        return parse_summary(text, os.fspath(self.summary_path))

    def _inside(self, path: Path, kind: str = "file") -> Path:
        """``path``, if it resolves inside the run directory; RunError otherwise
        (see :func:`mlx.utils.safe_io.check_inside`)."""
        return check_inside(self.path, path, kind=kind)

    def check_resume_writes(self, *, log: bool = True) -> None:
        """Refuse now, writing nothing, what a resume of this run would refuse to
        write later (after it had changed the run): ``summary.json``,
        ``config.yaml``, ``metrics.jsonl``, ``checkpoints/`` and its ``epoch-NNNN``,
        ``model/`` resolving outside the run or of the wrong kind, and, with
        ``log``, a ``train.log`` that cannot be appended to (see
        :func:`mlx.utils.safe_io.append_line_guarded`)."""
        for path in (self.summary_path, self.config_path, self.metrics_path):
            self._inside(path)
        for directory in (self.checkpoints_dir, self.model_dir):
            self._inside(directory, kind="dir")
        try:
            entries = sorted(e.name for e in os.scandir(self.checkpoints_dir))
        except OSError:
            entries = []
        for name in entries:
            if EPOCH_DIR_RE.match(name):
                self._inside(self.checkpoints_dir / name, kind="dir")
        if log:
            check_appendable(self.log_path, "the run log")

    @property
    def name(self) -> str:
        """The experiment name the run was created with."""
        return str(self.read_summary().get("name", self.run_id))

    def status(self, now: _dt.datetime | None = None) -> str:
        """``running``, ``completed``, ``failed``, ``interrupted`` or ``lost``
        (see :func:`effective_status`)."""
        return effective_status(self.read_summary(), now, lock=lock_state(self.path))

    # -- ownership -----------------------------------------------------------------

    @property
    def owned(self) -> bool:
        """Whether this object holds the run's ``run.lock``."""
        return self._ownership.held

    def acquire(self) -> RunDir:
        """Take ownership of the run: an exclusive ``flock`` on ``run.lock``, held
        until :meth:`release` or the end of this process. Never waits; RunError if
        another process (or another RunDir of this one) holds it, or if the summary
        shows that a live process without the lock (an older version, another host
        with a fresh heartbeat) still runs it. Changes nothing else."""
        if not os.path.lexists(self._ownership.path):
            # a run from before run.lock: refuse a live one before creating the file
            self._check_unowned(self.read_summary())
        self._ownership.acquire(self.run_id)
        try:
            self._check_unowned(self.read_summary())
        except BaseException:
            self._ownership.release()
            raise
        return self

    def release(self) -> None:
        """Drop the ownership taken by :meth:`acquire` (no-op when not held)."""
        self._ownership.release()

    def _check_unowned(self, summary: Mapping[str, Any]) -> None:
        """RunError unless no other live process appears to run this run."""
        if not ran_here(summary):
            lock = "free" if self.owned else lock_state(self.path)
            refuse_if_running(summary, self.run_id, lock)

    def _write_summary(self, summary: Mapping[str, Any]) -> None:
        with self._lock:
            write_json_atomic(self._inside(self.summary_path), summary)

    def update_summary(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into ``summary.json`` (and set ``updated_at``); returns the
        new summary. Thread-safe within this process."""
        with self._lock:
            summary = self.read_summary()
            summary.update(fields)
            summary["updated_at"] = timestamp()
            self._write_summary(summary)
            return summary

    def heartbeat(self, **fields: Any) -> dict[str, Any]:
        """Record that the run is alive (``heartbeat_at``), plus any ``fields`` such
        as ``epochs_completed=3`` or ``best_metric={...}``. Never changes ``status``."""
        fields.pop("status", None)
        return self.update_summary(heartbeat_at=timestamp(), **fields)

    def mark_running(self, **fields: Any) -> dict[str, Any]:
        """Take the run over in this process (e.g. to resume it): status ``running``,
        this pid and host, ``finished_at``/``error`` cleared. Each takeover of a run
        that had ended is recorded in ``resumed_at``.

        Raises RunError if another live process still runs it (it holds the run's
        lock, or its pid and heartbeat say so); take the lock first with
        :meth:`acquire` to keep others out.
        """
        with self._lock:
            summary = self.read_summary()
            pid, host = os.getpid(), socket.gethostname()
            self._check_unowned(summary)
            if not (ran_here(summary) and summary.get("status") == "running"):
                summary["resumed_at"] = list(summary.get("resumed_at") or []) + [
                    timestamp()
                ]
            stamp = timestamp()
            summary.update(
                status="running",
                pid=pid,
                process_start=process_start(pid),
                host=host,
                heartbeat_at=stamp,
                finished_at=None,
                error=None,
                error_type=None,
            )
            summary.update(fields)
            summary["updated_at"] = stamp
            self._write_summary(summary)
            return summary

    def _finish(self, status: str, fields: dict[str, Any]) -> dict[str, Any]:
        stamp = timestamp()
        return self.update_summary(
            status=status, finished_at=stamp, heartbeat_at=stamp, **fields
        )

    def mark_completed(
        self,
        final_metrics: Mapping[str, Any] | None = None,
        *,
        best_metric: Mapping[str, Any] | None = None,
        epochs_completed: int | None = None,
        timings: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Status ``completed``, with the final metrics (name -> value), the best
        metric (``{"name": ..., "value": ..., "epoch": ...}``), the number of epochs
        and timings (e.g. ``{"total_seconds": 12.3}``); None leaves a field as is."""
        _put(fields, "final_metrics", final_metrics)
        _put(fields, "best_metric", best_metric)
        _put(fields, "epochs_completed", epochs_completed)
        _put(fields, "timings", timings)
        return self._finish("completed", fields)

    def mark_failed(self, error: BaseException | str, **fields: Any) -> dict[str, Any]:
        """Status ``failed``; ``error`` (an exception or a message) is stored as
        ``error`` (``"Type: message"``) and ``error_type``."""
        message, kind = error_fields(error)
        fields.setdefault("error", message)
        fields.setdefault("error_type", kind)
        return self._finish("failed", fields)

    def mark_interrupted(
        self, message: str | None = "interrupted by the user", **fields: Any
    ) -> dict[str, Any]:
        """Status ``interrupted`` (Ctrl-C, SIGTERM); ``message`` goes to ``error``."""
        fields.setdefault("error", message)
        return self._finish("interrupted", fields)

    def heartbeat_thread(
        self, interval: float = DEFAULT_HEARTBEAT_INTERVAL
    ) -> Heartbeat:
        """A :class:`Heartbeat` for this run (use it as a context manager)."""
        return Heartbeat(self, interval)


def _put(fields: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        fields[key] = dict(value) if isinstance(value, Mapping) else value


def open_run(path: PathLike) -> RunDir:
    """The run in directory ``path``; RunError if it is not a readable run."""
    run = RunDir(path)
    if not run.path.is_dir():
        raise RunError(f"No run directory at {os.fspath(run.path)!r}.")
    run.read_summary()
    return run
