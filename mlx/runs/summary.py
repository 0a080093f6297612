"""What ``summary.json`` holds and what it means: a run's status, its heartbeat, the
checks every field must pass, and the status to show (``lost`` for a run whose
process is gone). Pure functions over the summary's data; :mod:`mlx.runs.store`
reads and writes the file.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import sys
from typing import Any, Mapping

from mlx.errors import RunError
from mlx.runs.ids import as_utc, utc_now
from mlx.runs.lock import process_start
from mlx.utils.values import is_number

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "FINISHED_STATUSES",
    "MIN_STALE_SECONDS",
    "STATUSES",
    "SUMMARY_FIELDS",
    "SUMMARY_FORMAT",
    "effective_status",
    "error_fields",
    "new_summary",
    "parse_summary",
    "parse_timestamp",
    "ran_here",
    "refuse_if_running",
    "stale_after",
    "summary_problems",
    "timestamp",
]

#: Statuses written to ``summary.json``.
STATUSES = ("running", "completed", "failed", "interrupted")
#: Statuses after which a run no longer changes on its own.
FINISHED_STATUSES = ("completed", "failed", "interrupted")
#: Seconds between heartbeats of :class:`Heartbeat` (and assumed when none recorded).
DEFAULT_HEARTBEAT_INTERVAL = 10.0
#: A running run whose heartbeat is older than max(3 x interval, this) is ``lost``.
MIN_STALE_SECONDS = 60.0

#: The ``format`` of the summaries this version writes.
SUMMARY_FORMAT = 1
#: Fields of ``summary.json`` that the run itself writes; extra ``fields`` given to
#: :meth:`RunDir.create` may not replace them.
SUMMARY_FIELDS = frozenset(
    "format run_id name status pid process_start host started_at updated_at "
    "heartbeat_at heartbeat_interval finished_at epochs_completed final_metrics "
    "best_metric timings error error_type resumed_at segment_start_epoch "
    "stopped_early stopped_epoch early_stopping best_epoch".split()
)

_MAX_COUNT = 2**63 - 1  # epochs and steps beyond int64 are no counts mlx wrote
_MAX_PID = 2**31 - 1  # what os.kill accepts


def timestamp(moment: _dt.datetime | None = None) -> str:
    """``moment`` (default: now) as a summary writes times: ISO 8601, UTC."""
    return as_utc(moment if moment is not None else utc_now()).isoformat()


def parse_timestamp(value: object) -> _dt.datetime | None:
    """A summary timestamp (ISO 8601) as an aware UTC datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        return as_utc(_dt.datetime.fromisoformat(text))
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
    if not is_number(interval):
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
    moment = as_utc(now) if now is not None else utc_now()
    if beat is None or (moment - beat).total_seconds() > stale_after(summary):
        return "lost"
    return "running"


def new_summary(
    run_id: str,
    name: str,
    stamp: str,
    fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The first summary of a new run, started at ``stamp`` by this process and
    running; ``fields`` are added (a sweep's ``sweep`` and ``point``)."""
    return {
        "format": SUMMARY_FORMAT,
        "run_id": run_id,
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


def error_fields(error: BaseException | str) -> tuple[str, str | None]:
    """``(error, error_type)`` as a failed run's summary records them: an exception
    as ``"Type: message"`` and its type's name, a message as itself and None."""
    if isinstance(error, BaseException):
        text = str(error)
        return (f"{type(error).__name__}: {text}" if text else type(error).__name__), (
            type(error).__name__
        )
    return str(error), None


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_int(value: object, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


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
        is_number(interval) and 0 < interval < float("inf"),
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
        and (best.get("value") is None or is_number(best.get("value")))
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


def parse_summary(text: str, path: str) -> dict[str, Any]:
    """The summary in ``text`` (read from ``path``, which messages name); RunError
    when it is not a JSON object with a ``status``, or a field has the wrong type or
    range (see :func:`summary_problems`)."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise RunError(f"{path}: corrupt summary, not valid JSON ({exc}).") from exc
    if not isinstance(data, dict) or "status" not in data:
        raise RunError(
            f"{path}: corrupt summary, expected a JSON object with a 'status' key."
        )
    problems = summary_problems(data)
    if problems:
        key, problem = problems[0]
        raise RunError(f"{path}: corrupt summary, {key!r} {problem}.")
    return data


def ran_here(summary: Mapping[str, Any]) -> bool:
    """Whether this very process (pid and host) wrote ``summary`` as its own."""
    pid, host = os.getpid(), socket.gethostname()
    return summary.get("pid") == pid and summary.get("host") == host


def refuse_if_running(
    summary: Mapping[str, Any], run_id: str, lock: str | None
) -> None:
    """RunError when ``summary`` (with its run's ``lock`` state) shows a live
    process still running the run."""
    if effective_status(summary, lock=lock) == "running":
        held = " (it holds the run's lock)" if lock == "held" else ""
        raise RunError(
            f"Run {run_id!r} is still running (pid {summary.get('pid')} "
            f"on {summary.get('host')}{held}, last heartbeat "
            f"{summary.get('heartbeat_at')}).",
            hint="wait for it to finish, or stop that process first",
        )
