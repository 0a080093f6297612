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
import json
import os
import re
import shutil
import socket
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Union

from mlx.errors import DataWarning, RunError
from mlx.runs.ids import _as_utc, new_run_id, utc_now
from mlx.runs.lock import RunLock, lock_state, process_start
from mlx.utils.atomic import (
    named,
    read_pointer,
    replace_dir_atomic,
    to_json,
    update_symlink_atomic,
    write_bytes_atomic,
    write_bytes_exclusive,
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

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "FINISHED_STATUSES",
    "MIN_STALE_SECONDS",
    "STATUSES",
    "SUMMARY_FIELDS",
    "Heartbeat",
    "RunDir",
    "effective_status",
    "open_run",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Statuses written to ``summary.json``.
STATUSES = ("running", "completed", "failed", "interrupted")
#: Statuses after which a run no longer changes on its own.
FINISHED_STATUSES = ("completed", "failed", "interrupted")
#: Seconds between heartbeats of :class:`Heartbeat` (and assumed when none recorded).
DEFAULT_HEARTBEAT_INTERVAL = 10.0
#: A running run whose heartbeat is older than max(3 x interval, this) is ``lost``.
MIN_STALE_SECONDS = 60.0

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

SUMMARY_FORMAT = 1
#: Fields of ``summary.json`` that the run itself writes; extra ``fields`` given to
#: :meth:`RunDir.create` may not replace them.
SUMMARY_FIELDS = frozenset(
    "format run_id name status pid process_start host started_at updated_at "
    "heartbeat_at heartbeat_interval finished_at epochs_completed final_metrics "
    "best_metric timings error error_type resumed_at segment_start_epoch".split()
)
# `epoch-NNNN` after NNNN complete epochs; `epoch-NNNN-step-SSSSSSSS` when a run was
# stopped inside epoch NNNN+1, after SSSSSSSS optimizer steps in all
_EPOCH_DIR_RE = re.compile(r"^epoch-(\d+)(?:-step-(\d+))?$")
_EVAL_STAMP = "%Y%m%dT%H%M%S.%fZ"
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


def _timestamp(moment: _dt.datetime | None = None) -> str:
    return _as_utc(moment if moment is not None else utc_now()).isoformat()


def parse_timestamp(value: Any) -> _dt.datetime | None:
    """A summary timestamp (ISO 8601) as an aware UTC datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        return _as_utc(_dt.datetime.fromisoformat(text))
    except (ValueError, OverflowError):  # garbage, or a year 1 / 9999 offset
        return None


def _pid_alive(pid: int) -> bool | None:
    """Whether process ``pid`` exists on this host; None when it cannot be told."""
    if sys.platform.startswith("win"):
        # os.kill on Windows terminates the process: never probe with it
        return None
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return None
    return True


def stale_after(summary: Mapping[str, Any]) -> float:
    """Seconds without a heartbeat after which a running run counts as lost."""
    interval = summary.get("heartbeat_interval")
    if not isinstance(interval, (int, float)) or isinstance(interval, bool):
        interval = DEFAULT_HEARTBEAT_INTERVAL
    return max(3.0 * float(interval), MIN_STALE_SECONDS)


def effective_status(
    summary: Mapping[str, Any],
    now: _dt.datetime | None = None,
    *,
    lock: str | None = None,
) -> str:
    """The status to show for ``summary``: its ``status``, or ``lost`` for a run
    that says ``running`` but whose process is gone.

    ``lock`` is the state of the run's ``run.lock`` (``"held"``, ``"free"`` or None
    when unknown, see :func:`mlx.runs.lock.lock_state`). A running run is

    * ``running`` while its lock is held, whatever its heartbeat says;
    * on this host (same ``host``): ``lost`` when its ``pid`` is dead or is now
      another process (``process_start`` differs), ``running`` while that very
      process lives; a free lock with a pid that cannot be checked is ``lost``;
    * otherwise (another host, or nothing to check): ``lost`` when its last sign of
      life (``heartbeat_at`` or ``updated_at``) is older than :func:`stale_after`
      (three heartbeat intervals, at least 60 s).
    """
    status = summary.get("status")
    if status != "running":
        return str(status)
    if lock == "held":
        return "running"
    pid = summary.get("pid")
    if (
        summary.get("host") == socket.gethostname()
        and isinstance(pid, int)
        and not isinstance(pid, bool)
    ):
        alive = _pid_alive(pid)
        if alive is False:
            return "lost"
        recorded = summary.get("process_start")
        current = process_start(pid) if isinstance(recorded, str) else None
        if alive and current is not None:
            return "running" if current == recorded else "lost"
        if lock == "free":
            return "lost"
    # any summary write shows the process was alive then
    beats = [parse_timestamp(summary.get(k)) for k in ("heartbeat_at", "updated_at")]
    beat = max((b for b in beats if b is not None), default=None)
    moment = _as_utc(now) if now is not None else utc_now()
    if beat is None or (moment - beat).total_seconds() > stale_after(summary):
        return "lost"
    return "running"


def _plain(value: Any) -> Any:
    """Config data as plain dicts, lists and scalars (read-only mappings, tuples,
    paths and NumPy scalars are converted) so yaml.safe_dump accepts it."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _plain(value.tolist())
    return value


def _error_message(error: BaseException | str) -> tuple[str, str | None]:
    if isinstance(error, BaseException):
        text = str(error)
        return (f"{type(error).__name__}: {text}" if text else type(error).__name__), (
            type(error).__name__
        )
    return str(error), None


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
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(
                f"Cannot create the output directory {os.fspath(root)!r}: {exc}."
            ) from exc
        moment = _as_utc(now if now is not None else utc_now())
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
            stamp = _timestamp(moment)
            try:
                run._write_summary(
                    {
                        "format": SUMMARY_FORMAT,
                        "run_id": run.run_id,
                        "name": name,
                        "status": "running",
                        "pid": os.getpid(),
                        "process_start": process_start(os.getpid()),
                        "host": socket.gethostname(),
                        "started_at": stamp,
                        "updated_at": stamp,
                        "heartbeat_at": stamp,
                        "heartbeat_interval": DEFAULT_HEARTBEAT_INTERVAL,
                        "finished_at": None,
                        "epochs_completed": 0,
                        "final_metrics": None,
                        "best_metric": None,
                        "timings": {},
                        "error": None,
                        **(fields or {}),
                    }
                )
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

    def write_config(self, config: Any, original_path: PathLike | None = None) -> Path:
        """Write ``config.yaml`` and, if given, a byte copy of the original file.

        ``config`` is the fully resolved configuration: a mapping, or an object with
        ``to_dict()`` (such as :class:`mlx.config.ExperimentConfig`). Keys keep their
        order. The copy is named ``original_config`` plus the original's suffix
        (``original_config.json``, ``original_config.yaml``). Returns the path of
        ``config.yaml``.
        """
        from mlx.config.documents import dump_yaml

        data = config.to_dict() if hasattr(config, "to_dict") else config
        if not isinstance(data, Mapping):
            raise RunError(
                "write_config expects a mapping or an object with to_dict(); "
                f"got {type(config).__name__}."
            )
        # quoted wherever YAML 1.1 or 1.2 would read a string as something else
        text = dump_yaml(_plain(data))
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
        import yaml

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
        from mlx.runs.environment import collect_environment

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
            self._inside(self.metrics_path),
            to_json(dict(record), indent=None),
            "the metrics log",
        )

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every record of ``metrics.jsonl``, in order ([] if there is none yet).

        A torn or unparsable line (left by a crash mid-write) is skipped with a
        :class:`~mlx.errors.DataWarning` naming the file and line number.
        """
        raw = read_bytes_guarded(
            self.metrics_path, METRICS_LIMIT, "the metrics log", missing_ok=True
        )
        if raw is None:
            return []
        records: list[dict[str, Any]] = []
        # split on "\n" only: str.splitlines would also split on U+2028 in strings
        for number, line in enumerate(raw.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8"))
            except (ValueError, RecursionError):  # bad UTF-8 or JSON
                record = None
            if not isinstance(record, dict):
                warnings.warn(
                    f"{os.fspath(self.metrics_path)}:{number}: skipped a torn or "
                    "unparsable line (expected one JSON object).",
                    DataWarning,
                    stacklevel=2,
                )
                continue
            records.append(record)
        return records

    def truncate_metrics(self, n_epochs: int, *, key: str = "epoch") -> int:
        """Keep only records with ``record[key] <= n_epochs`` (for resuming after
        epoch ``n_epochs``); records without a numeric ``key`` are kept. Torn lines
        are dropped. ``metrics.jsonl`` is rewritten atomically. Returns the number of
        records kept.
        """
        kept = []
        for record in self.read_metrics():
            value = record.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if value > n_epochs:
                    continue
            kept.append(record)
        text = "".join(to_json(r, indent=None) + "\n" for r in kept)
        write_text_atomic(self._inside(self.metrics_path), text)
        return len(kept)

    # -- checkpoints and the final model -------------------------------------------

    def checkpoint_dir(self, epoch: int, step: int | None = None) -> Path:
        """``checkpoints/epoch-NNNN`` for ``epoch`` (it need not exist); with ``step``,
        ``checkpoints/epoch-NNNN-step-SSSSSSSS``, a checkpoint taken mid-epoch."""
        name = f"epoch-{_check_epoch(epoch):04d}"
        if step is not None:
            name += f"-step-{step:08d}"
        return self.checkpoints_dir / name

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
        _remove_leftovers(self.checkpoints_dir)
        published = _publish_dir(self.checkpoints_dir, final.name, write_fn)
        update_symlink_atomic(self.checkpoints_dir / LAST_POINTER, final.name)
        return published

    def list_checkpoints(self) -> list[tuple[int, Path]]:
        """``(epoch, directory)`` of every complete checkpoint, oldest first (a
        mid-epoch one sorts after its epoch's)."""
        found = []
        try:
            entries = list(os.scandir(self.checkpoints_dir))
        except (FileNotFoundError, NotADirectoryError):
            return []
        for entry in entries:
            match = _EPOCH_DIR_RE.match(entry.name)
            if match and entry.is_dir(follow_symlinks=False):
                step = int(match.group(2)) if match.group(2) else -1
                found.append((int(match.group(1)), step, Path(entry.path)))
        return [(epoch, path) for epoch, _, path in sorted(found)]

    def latest_checkpoint(self) -> Path | None:
        """The directory ``checkpoints/last`` points at; if that is missing or
        broken, the highest complete ``epoch-NNNN``; None when there is none."""
        target = read_pointer(self.checkpoints_dir / LAST_POINTER)
        if target and _EPOCH_DIR_RE.match(target):
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
        _remove_leftovers(self.path, prefix=".tmp-model-")
        return _publish_dir(self.path, self.model_dir.name, write_fn)

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
        moment = _as_utc(now if now is not None else utc_now())
        data = (to_json(dict(result)) + "\n").encode("utf-8")
        for _ in range(10_000):
            path = self.evals_dir / (moment.strftime(_EVAL_STAMP) + ".json")
            try:
                return write_bytes_exclusive(path, data)
            except FileExistsError:
                moment += _dt.timedelta(microseconds=1)
        raise RunError(
            f"Could not find a free evaluation file name in {self.evals_dir}."
        )

    def list_evals(self) -> list[Path]:
        """Evaluation result files, oldest first."""
        try:
            names = os.listdir(self.evals_dir)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [
            self.evals_dir / n
            for n in sorted(names)
            if n.endswith(".json") and not n.startswith(".")
        ]

    # -- summary and status --------------------------------------------------------

    def read_summary(self) -> dict[str, Any]:
        """The content of ``summary.json``; RunError if it is missing, not a regular
        file, not UTF-8 JSON, or holds a field of the wrong type or range (see
        :func:`summary_problems`)."""
        text = read_text_guarded(
            self.summary_path, SUMMARY_LIMIT, "the run summary", missing_ok=True
        )
        if text is None:
            raise RunError(
                f"{os.fspath(self.path)!r} is not a run directory: it has no "
                "summary.json (the run may have failed while being created)."
            )
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise RunError(
                f"{os.fspath(self.summary_path)}: corrupt summary, not valid JSON "
                f"({exc})."
            ) from exc
        if not isinstance(data, dict) or "status" not in data:
            raise RunError(
                f"{os.fspath(self.summary_path)}: corrupt summary, expected a JSON "
                "object with a 'status' key."
            )
        problems = summary_problems(data)
        if problems:
            key, problem = problems[0]
            raise RunError(
                f"{os.fspath(self.summary_path)}: corrupt summary, {key!r} {problem}."
            )
        return data

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
            if _EPOCH_DIR_RE.match(name):
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
        pid, host = os.getpid(), socket.gethostname()
        if summary.get("pid") == pid and summary.get("host") == host:
            return
        lock = "free" if self.owned else lock_state(self.path)
        if effective_status(summary, lock=lock) == "running":
            held = " (it holds the run's lock)" if lock == "held" else ""
            raise RunError(
                f"Run {self.run_id!r} is still running (pid {summary.get('pid')} "
                f"on {summary.get('host')}{held}, last heartbeat "
                f"{summary.get('heartbeat_at')}).",
                hint="wait for it to finish, or stop that process first",
            )

    def _write_summary(self, summary: Mapping[str, Any]) -> None:
        with self._lock:
            write_json_atomic(self._inside(self.summary_path), summary)

    def update_summary(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into ``summary.json`` (and set ``updated_at``); returns the
        new summary. Thread-safe within this process."""
        with self._lock:
            summary = self.read_summary()
            summary.update(fields)
            summary["updated_at"] = _timestamp()
            self._write_summary(summary)
            return summary

    def heartbeat(self, **fields: Any) -> dict[str, Any]:
        """Record that the run is alive (``heartbeat_at``), plus any ``fields`` such
        as ``epochs_completed=3`` or ``best_metric={...}``. Never changes ``status``."""
        fields.pop("status", None)
        return self.update_summary(heartbeat_at=_timestamp(), **fields)

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
            owned = summary.get("pid") == pid and summary.get("host") == host
            self._check_unowned(summary)
            if not (owned and summary.get("status") == "running"):
                summary["resumed_at"] = list(summary.get("resumed_at") or []) + [
                    _timestamp()
                ]
            stamp = _timestamp()
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
        stamp = _timestamp()
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
        message, kind = _error_message(error)
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


_MAX_COUNT = 2**63 - 1  # epochs and steps beyond int64 are no counts mlx wrote
_MAX_PID = 2**31 - 1  # what os.kill accepts


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_int(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _is_number(value: Any) -> bool:
    # NaN and inf are allowed: a diverged loss is recorded, not lost
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def summary_problems(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(key, what is wrong)`` for each field of ``summary`` that has the wrong type
    or an impossible value; [] for a sound summary. Unknown keys are ignored."""
    problems: list[tuple[str, str]] = []

    def check(key: str, ok: bool, want: str) -> None:
        if key in summary and summary[key] is not None and not ok:
            problems.append((key, f"must be {want}; got {_short(summary[key])}"))

    get = summary.get
    status = get("status")
    if not (isinstance(status, str) and status in STATUSES):
        problems.append(
            ("status", f"must be one of {', '.join(STATUSES)}; got {_short(status)}")
        )
    for key in ("run_id", "name", "host", "error", "error_type"):
        check(key, isinstance(get(key), str), "a string")
    check("pid", _is_int(get("pid"), 0, _MAX_PID), f"an integer in [0, {_MAX_PID}]")
    for key in ("started_at", "updated_at", "heartbeat_at", "finished_at"):
        check(key, parse_timestamp(get(key)) is not None, "an ISO 8601 time")
    interval: Any = get("heartbeat_interval")
    check(
        "heartbeat_interval",
        _is_number(interval) and 0 < interval < float("inf"),
        "a finite number of seconds > 0",
    )
    check(
        "epochs_completed",
        _is_int(get("epochs_completed"), 0, _MAX_COUNT),
        "an integer >= 0",
    )
    for key in ("final_metrics", "timings"):
        check(key, isinstance(get(key), dict), "a JSON object")
    best = get("best_metric")
    check(
        "best_metric",
        isinstance(best, dict)
        and isinstance(best.get("name", ""), (str, type(None)))
        and (best.get("value") is None or _is_number(best.get("value")))
        and (best.get("epoch") is None or _is_int(best.get("epoch"), 0, _MAX_COUNT)),
        'a JSON object {"name": text, "value": number, "epoch": integer}',
    )
    resumed = get("resumed_at")
    check(
        "resumed_at",
        isinstance(resumed, list)
        and all(parse_timestamp(moment) is not None for moment in resumed),
        "a list of ISO 8601 times",
    )
    return problems


def _check_epoch(epoch: Any) -> int:
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise RunError(f"A checkpoint epoch must be an integer >= 0; got {epoch!r}.")
    return epoch


def _remove_leftovers(directory: Path, prefix: str | None = None) -> None:
    """Remove temporary entries a crashed save left behind (``.tmp-*``, ``.old-*``)."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    prefixes = (prefix,) if prefix else (".tmp-", ".old-")
    for entry in entries:
        if entry.name.startswith(prefixes):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                try:
                    os.unlink(entry.path)
                except OSError:
                    pass


def _publish_dir(parent: Path, name: str, write_fn: Callable[[Path], Any]) -> Path:
    tmp = parent / f".tmp-{name}-{os.urandom(4).hex()}"
    try:
        os.mkdir(tmp)
    except OSError as exc:
        raise named(exc, parent / name) from None
    try:
        write_fn(tmp)
        return replace_dir_atomic(tmp, parent / name)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        # a write that failed inside (a full disk) names the directory it was for,
        # never the temporary one, which is gone
        raise _named_for(exc, tmp, parent / name) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _named_for(exc: OSError, tmp: Path, final: Path) -> OSError:
    """``exc`` naming ``final`` (or the file in it) where it named nothing or a
    file in ``tmp``."""
    if exc.filename is None:
        return named(exc, final)
    try:
        inside = Path(os.fsdecode(exc.filename)).relative_to(tmp)
    except ValueError:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), os.fspath(final / inside))


def open_run(path: PathLike) -> RunDir:
    """The run in directory ``path``; RunError if it is not a readable run."""
    run = RunDir(path)
    if not run.path.is_dir():
        raise RunError(f"No run directory at {os.fspath(run.path)!r}.")
    run.read_summary()
    return run


class Heartbeat:
    """Refresh a run's heartbeat from a daemon thread every ``interval`` seconds.

    ::

        with Heartbeat(run, interval=10):
            train(...)

    Records ``heartbeat_interval`` in the summary so readers know when the run is
    stale. Summary writes share the run's lock with the training thread, and every
    write is an atomic replace, so the file is never torn. A failing heartbeat write
    (disk full, ...) never stops training: the exception is kept in ``last_error``.
    """

    def __init__(
        self, run: RunDir, interval: float = DEFAULT_HEARTBEAT_INTERVAL
    ) -> None:
        number = isinstance(interval, (int, float)) and not isinstance(interval, bool)
        if not number or not interval > 0:
            raise RunError(
                "The 'interval' parameter of Heartbeat must be a number of seconds "
                f"> 0; got {interval!r}."
            )
        self.run = run
        self.interval = float(interval)
        self.last_error: BaseException | None = None
        self.beats = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Heartbeat:
        """Beat once now, then start the thread. Returns self."""
        if self._thread is not None:
            return self
        self._stop.clear()
        self._beat(heartbeat_interval=self.interval)
        self._thread = threading.Thread(
            target=self._loop, name=f"heartbeat-{self.run.run_id}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and wait for it (at most one pending write)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _beat(self, **fields: Any) -> None:
        try:
            self.run.heartbeat(**fields)
            self.beats += 1
        except Exception as exc:  # never let bookkeeping kill a training run
            self.last_error = exc

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._beat()

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
