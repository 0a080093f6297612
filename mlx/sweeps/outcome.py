"""What a point's ended process means, decided once, from its exit status and the
run it left, and recorded where every reader of the sweep looks.

The driver watched the point's process end, so it knows more than the run directory
does: a process killed by a signal (SIGSEGV, SIGKILL from the out-of-memory killer),
one that called ``os._exit`` or one that exited 0 without finishing its run leaves a
run that says ``running`` and would be taken for ``lost``. The driver records such a
run as ``failed``, its error naming the exit code and signal, its ``error_type``
:data:`DIED` (a resumed run clears both), so that the progress line, ``mlx sweep
show``, the JSON and ``--resume --skip-failed`` call it by one name. ``lost`` stays
what no living driver saw end. A point that ended before it had a run gets the same
words as an ``error:`` line in its log, which is where its state is read from.
"""

from __future__ import annotations

import dataclasses
import signal
import time
from pathlib import Path
from typing import AbstractSet

from mlx.errors import RunError
from mlx.runs import RunDir
from mlx.runs.lock import lock_state
from mlx.sweeps.store import SweepDir
from mlx.utils.atomic import os_error_text
from mlx.utils.safe_io import append_line_guarded

__all__ = [
    "DIED",
    "INTERRUPTED_CODES",
    "Outcome",
    "died",
    "exit_text",
    "settle",
]

#: how a point stopped by a SIGINT or SIGTERM ends: 128 + the signal, or the signal
INTERRUPTED_CODES = (130, 143, -signal.SIGINT, -signal.SIGTERM)
#: the ``error_type`` of a run whose process the driver saw die
DIED = "ProcessDied"
# how long a run still held when its point's process ended may take to be let go
_RELEASE_SECONDS = 60.0


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How one point's process ended: its ``status`` as the sweep now records it
    (``completed``, ``failed``, ``interrupted``, ``not started`` or, when another
    process still holds its run, ``running``) and why, in words, when not
    completed."""

    status: str
    error: str | None = None


def exit_text(code: int) -> str:
    """``exit code -11, killed by SIGSEGV`` or ``exit code 3``."""
    text = f"exit code {code}"
    name = _signal_name(code)
    return f"{text}, killed by {name}" if name else text


def _signal_name(code: int) -> str | None:
    if code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _death(code: int, reason: str | None, where: str) -> str:
    """Why a point's process ended without a word, as its error records it."""
    if reason:
        return f"{reason} ({exit_text(code)}) {where}"
    name = _signal_name(code)
    if name:
        return f"its process was killed by {name} (exit code {code}) {where}"
    return f"its process exited with code {code} {where}"


def died(run: RunDir) -> bool:
    """Whether ``run`` failed because the driver saw its process die (and not by an
    error the run recorded itself)."""
    try:
        summary = run.read_summary()
    except RunError:
        return False
    return summary.get("status") == "failed" and summary.get("error_type") == DIED


def settle(
    sweep: SweepDir,
    digest: str,
    code: int,
    *,
    before: AbstractSet[Path],
    resumed: Path | None,
    stopped: bool,
    reason: str | None = None,
) -> Outcome:
    """The outcome of point ``digest``, whose process ended with ``code``.

    ``before`` are the sweep's run directories when the process started (a new
    run is one not among them), ``resumed`` the run it resumed, ``stopped``
    whether the driver interrupted it, ``reason`` what the executor knows about
    an end without an exit code of its own (a Ray worker that died).
    """
    if resumed is not None:
        runs = [RunDir(resumed)]
    else:
        runs = _new_runs(sweep, digest, before)
    if not runs:
        return _without_run(sweep, digest, code, stopped=stopped, reason=reason)
    run = runs[-1]
    _wait_for_release(run)
    try:
        summary = run.read_summary()
    except RunError as exc:
        return Outcome("failed", str(exc))
    status = summary.get("status")
    if status in ("completed", "failed", "interrupted"):
        error = summary.get("error") if status != "completed" else None
        return Outcome(str(status), error if isinstance(error, str) else None)
    if lock_state(run.path) == "held":
        return Outcome("running", "another process still holds its run")
    message = _death(code, reason, "before its run finished")
    try:
        run.mark_failed(message, error_type=DIED)
    except (OSError, RunError) as exc:
        text = os_error_text(exc) if isinstance(exc, OSError) else str(exc)
        return Outcome("failed", f"{message}; recording it failed: {text}")
    return Outcome("failed", message)


def _wait_for_release(run: RunDir) -> None:
    """Give the point's process, which a Ray worker's death stopped with SIGTERM,
    or a child that inherited its run's lock, time to finish with the run."""
    deadline = time.monotonic() + _RELEASE_SECONDS
    while lock_state(run.path) == "held" and time.monotonic() < deadline:
        time.sleep(0.1)


def _new_runs(sweep: SweepDir, digest: str, before: AbstractSet[Path]) -> list[RunDir]:
    found = []
    for path in sweep.run_dirs():
        if path in before:
            continue
        run = RunDir(path)
        try:
            if run.read_summary().get("point") == digest:
                found.append(run)
        except RunError:
            continue
    return found


def _without_run(
    sweep: SweepDir, digest: str, code: int, *, stopped: bool, reason: str | None
) -> Outcome:
    """A point whose process ended before it made a run directory: its state is its
    log's last attempt, which this completes when the process said nothing."""
    if stopped and code in INTERRUPTED_CODES:
        # nothing ran: the point is as it was before this attempt
        _note(sweep, digest, "--- interrupted before its run began")
        return Outcome("not started")
    error = sweep.log_error(digest)
    if error is not None and code != 0:
        return Outcome("failed", error)
    message = _death(code, reason, "before its run began")
    _note(sweep, digest, f"error: {message}")
    return Outcome("failed", message)


def _note(sweep: SweepDir, digest: str, line: str) -> None:
    append_line_guarded(sweep.log_path(digest), line, "the point's log")
