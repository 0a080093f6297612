"""The sweep directory: ``sweep.json``, the driver's lock and the points' states.

Layout, under the base config's ``output.directory``::

    <sweep name>/
        sweep.json            the sweep file as given, its hash, the point hashes and
                              their parameters (replaced atomically)
        sweep.lock            flock'ed by the driver working on the sweep; holds its
                              pid and host
        points/<hash>.yaml    each point's resolved experiment config
        points/<hash>.log     what each point's process printed
        <run_id>/             one ordinary run directory per point run

A point's state is read from the run directories alone (each run's ``summary.json``
records ``sweep`` and ``point``, and its ``run.lock`` tells whether a process still
owns it): ``completed``, ``running``, ``interrupted``, ``failed``, ``lost`` (its
process died without a word) or ``not started``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

from mlx.errors import DataWarning, RunError
from mlx.runs import RunDir, effective_status
from mlx.runs.ids import utc_now
from mlx.runs.index import indexed_runs
from mlx.runs.lock import FileLock, lock_state, process_start
from mlx.runs.store import SUMMARY_FILE
from mlx.utils.atomic import write_json_atomic, write_text_atomic
from mlx.utils.paths import repository_root
from mlx.utils.safe_io import (
    DOCUMENT_LIMIT,
    POINTER_LIMIT,
    read_json_guarded,
    read_tail_guarded,
)

__all__ = [
    "NOT_STARTED",
    "PointState",
    "SweepDir",
    "SweepLock",
    "find_sweep",
]

NOT_STARTED = "not started"
SWEEP_FILE = "sweep.json"
LOCK_FILE = "sweep.lock"
FORMAT = 1
# which of a point's runs stands for it: a completed one, a running one, else the
# newest (its last attempt)
_RANK = {"completed": 0, "running": 1}


@dataclasses.dataclass
class PointState:
    """What the run directories say about one point."""

    hash: str
    status: str
    run: RunDir | None = None
    summary: Mapping[str, Any] | None = None
    runs: int = 0  # how many run directories this point has
    error: str | None = None


class SweepLock(FileLock):
    """An exclusive ``flock`` on ``sweep.lock``, which names its owner.

    The kernel drops the lock when the driver dies, however it dies, so a lock file
    whose owner is gone is stale and simply taken over; a held lock is refused with
    the owner's pid, host and start time.
    """

    def __init__(self, directory: Path) -> None:
        super().__init__(directory / LOCK_FILE)
        self.stale_owner: dict[str, Any] | None = None

    def owner(self) -> dict[str, Any] | None:
        """The owner record in the lock file (pid, host, process start, started
        at); None when there is none."""
        try:
            data = read_json_guarded(
                self.path, POINTER_LIMIT, "the sweep lock", missing_ok=True
            )
        except RunError:
            return None  # not a record this driver could use: taken over
        return data if isinstance(data, dict) else None

    def cannot_open(self, exc: OSError) -> str:
        return (
            f"Cannot open the sweep lock {os.fspath(self.path)!r}: "
            f"{exc.strerror or exc}."
        )

    def busy(self) -> RunError:
        owner = self.owner() or {}
        return RunError(
            f"Sweep {self.path.parent.name!r} is being driven by another "
            f"process (pid {owner.get('pid', '?')} on "
            f"{owner.get('host', '?')}, since {owner.get('started_at', '?')}; "
            f"it holds {os.fspath(self.path)}).",
            hint="wait for that driver to finish, or stop it (its points "
            "checkpoint) and then use `mlx sweep --resume`",
        )

    def locked(self, fd: int) -> None:
        """Write this process as the owner (a record left by a driver that died is
        kept in :attr:`stale_owner`)."""
        previous = self.owner()
        if previous and previous.get("pid") not in (None, os.getpid()):
            self.stale_owner = previous
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "process_start": process_start(os.getpid()),
            "started_at": utc_now().isoformat(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)

    def unlocking(self, fd: int) -> None:
        """Clear the owner record first, so one left in the file means its driver
        died (the lock itself the kernel drops either way)."""
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass


class SweepDir:
    """A sweep directory (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def record_path(self) -> Path:
        return self.path / SWEEP_FILE

    @property
    def points_dir(self) -> Path:
        return self.path / "points"

    def config_path(self, digest: str) -> Path:
        return self.points_dir / f"{digest}.yaml"

    def log_path(self, digest: str) -> Path:
        return self.points_dir / f"{digest}.log"

    def exists(self) -> bool:
        """Whether a ``sweep.json`` is there, of whatever kind: one that is not a
        regular file is refused by :meth:`read`, naming what it is."""
        return os.path.lexists(self.record_path)

    def lock(self) -> SweepLock:
        return SweepLock(self.path)

    def read(self) -> dict[str, Any]:
        """``sweep.json``; RunError if missing or corrupt."""
        data = read_json_guarded(
            self.record_path, DOCUMENT_LIMIT, SWEEP_FILE, error=RunError
        )
        if not isinstance(data, dict) or not isinstance(data.get("points"), list):
            raise RunError(
                f"{os.fspath(self.record_path)}: corrupt sweep record, expected a "
                "JSON object with a 'points' list."
            )
        return data

    def write(self, record: Mapping[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.record_path, {"format": FORMAT, **record})

    def write_point_config(self, digest: str, text: str) -> Path:
        self.points_dir.mkdir(parents=True, exist_ok=True)
        return write_text_atomic(self.config_path(digest), text)

    def run_dirs(self) -> list[Path]:
        try:
            entries = list(os.scandir(self.path))
        except OSError:
            return []
        return sorted(
            Path(e.path)
            for e in entries
            if e.is_dir(follow_symlinks=False)
            and not e.name.startswith(".")
            and os.path.lexists(os.path.join(e.path, SUMMARY_FILE))
        )

    def states(self, hashes: Sequence[str]) -> dict[str, PointState]:
        """The state of each point, from the run directories (and, for a point
        that never got a run, the last ``error:`` line of its log)."""
        found: dict[str, list[tuple[str, RunDir, Mapping[str, Any]]]] = {}
        now = utc_now()
        for path in self.run_dirs():
            run = RunDir(path)
            try:
                summary = run.read_summary()
            except RunError as exc:
                warnings.warn(f"Skipped a run: {exc}", DataWarning, stacklevel=2)
                continue
            digest = summary.get("point")
            if not isinstance(digest, str):
                continue
            status = effective_status(summary, now, lock=lock_state(path))
            found.setdefault(digest, []).append((status, run, summary))
        states: dict[str, PointState] = {}
        for digest in hashes:
            runs = found.get(digest, [])
            if not runs:
                error = self.log_error(digest)
                status = "failed" if error else NOT_STARTED
                states[digest] = PointState(digest, status, error=error)
                continue
            # a completed or running run stands for the point; else its newest
            runs.sort(key=lambda r: str(r[2].get("updated_at") or ""), reverse=True)
            runs.sort(key=lambda r: _RANK.get(r[0], 2))
            status, run, found_summary = runs[0]
            summary = dict(found_summary)
            error = summary.get("error") if status != "completed" else None
            if status == "lost":
                error = "its process died without a word (lost)"
            states[digest] = PointState(
                digest,
                status,
                run,
                summary,
                len(runs),
                error if isinstance(error, str) else None,
            )
        return states

    def log_error(self, digest: str) -> str | None:
        """The last ``error:`` line of a point's log, when its process stopped
        before it had a run directory."""
        try:
            raw = read_tail_guarded(
                self.log_path(digest), 65536, "the point's log", missing_ok=True
            )
        except RunError as exc:
            warnings.warn(f"{exc} Its error is not known.", DataWarning, stacklevel=3)
            return None
        tail = (raw or b"").decode("utf-8", "replace")
        # the last attempt only: the driver starts each with a "--- " line
        attempt = tail.split("\n--- ")[-1]
        errors = [
            line[len("error: ") :]
            for line in attempt.splitlines()
            if line.startswith("error: ")
        ]
        return errors[-1] if errors else None

    def log_tail(self, digest: str, lines: int = 5) -> list[str]:
        """The last ``lines`` lines of a point's log that are not blank; a log that
        cannot be read is one line saying why."""
        try:
            raw = read_tail_guarded(
                self.log_path(digest), 16384, "the point's log", missing_ok=True
            )
        except RunError as exc:
            return [str(exc)]
        tail = (raw or b"").decode("utf-8", "replace")
        return [line for line in tail.splitlines() if line.strip()][-lines:]


def _holds_sweep(directory: Path) -> bool:
    """Whether ``directory`` has a ``sweep.json`` entry, whatever its kind: a FIFO
    or a link to a device there is that sweep's broken record, which reading it
    names, not a sign that there is no sweep."""
    try:
        return os.path.lexists(directory / SWEEP_FILE)
    except (OSError, ValueError):
        return False


def find_sweep(ref: str) -> SweepDir:
    """The sweep that ``ref`` names: a sweep directory, or a sweep name looked for
    under ``<repository root>/outputs`` (three levels deep) and beside the runs of
    the run index. RunError listing the candidates when none or several match."""
    candidate = Path(ref).expanduser()
    if _holds_sweep(candidate):
        return SweepDir(candidate.resolve())
    if os.sep in ref or "/" in ref or ref in (".", ".."):
        raise RunError(
            f"No sweep at {ref!r}: it has no {SWEEP_FILE}.",
            hint="give the sweep's directory or its name",
        )
    outputs = repository_root() / "outputs"
    found: dict[str, Path] = {}

    def look(directory: Path, depth: int) -> None:
        if depth > 3:
            return
        try:
            entries = [e for e in os.scandir(directory) if e.is_dir()]
        except OSError:
            return
        for entry in entries:
            path = Path(entry.path)
            if entry.name == ref and _holds_sweep(path):
                found[os.path.realpath(path)] = path
            elif not (path / SUMMARY_FILE).is_file():
                look(path, depth + 1)

    look(outputs, 1)
    for run in indexed_runs():
        parent = run.parent
        if parent.name == ref and _holds_sweep(parent):
            found.setdefault(os.path.realpath(parent), parent)
    if len(found) == 1:
        return SweepDir(next(iter(found.values())).resolve())
    if not found:
        raise RunError(
            f"No sweep {ref!r} under {os.fspath(outputs)!r} nor beside the indexed "
            "runs.",
            hint="give the sweep's directory (<output.directory>/<sweep name>)",
        )
    listing = "\n".join(f"  {os.fspath(p)}" for p in sorted(found.values()))
    raise RunError(
        f"{ref!r} names {len(found)} sweeps:\n{listing}",
        hint="give the sweep's directory",
    )
