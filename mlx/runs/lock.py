"""Run ownership: an OS lock on ``<run>/run.lock``, held by the training process.

The process that trains a run (a new one, or one resuming it) opens ``run.lock`` in the
run directory and takes an exclusive ``fcntl.flock`` on it for as long as it works on
the run. The kernel drops the lock when that process ends, however it ends (SIGKILL
included), and keeps it while the process merely stops (SIGSTOP, a paused VM, a closed
laptop lid). So on this host:

* lock held: the run is owned, whatever its heartbeat says; it cannot be resumed;
* lock free: no process works on the run; a ``running`` summary is then stale.

Readers (``mlx runs``) test the lock without blocking (``LOCK_NB``) on a read-only
descriptor and never create the file: a run without ``run.lock`` (made by an older
version, or on a platform without ``fcntl``) falls back to the pid and heartbeat.
The descriptor is close-on-exec, so a program the run starts does not inherit the lock
(a child made by a bare ``fork`` does, and keeps the run owned while it lives).

``flock`` is local to one kernel on most network file systems (or emulated with byte
range locks on NFS); a run written from another host is judged by its heartbeat.

:class:`FileLock` is the one ``flock`` of the package: :class:`RunLock` and the sweep
driver's lock (:class:`mlx.sweeps.store.SweepLock`) are made of it.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from pathlib import Path
from typing import TypeVar, Union

from mlx.errors import RunError, map_os_errors

__all__ = ["LOCK_NAME", "FileLock", "RunLock", "lock_state", "process_start"]

PathLike = Union[str, "os.PathLike[str]"]
_Lock = TypeVar("_Lock", bound="FileLock")

#: The lock file in every run directory.
LOCK_NAME = "run.lock"

try:
    import fcntl as _fcntl
except ImportError:  # Windows: no flock; ownership falls back to pid and heartbeat
    _fcntl = None  # type: ignore[assignment]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_BUSY = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
_ATTEMPTS = 20
# the file system cannot lock (some FUSE and network mounts): go on without the lock
_NO_LOCKS = tuple(
    getattr(errno, name)
    for name in ("ENOLCK", "EOPNOTSUPP", "ENOTSUP", "ENOSYS")
    if hasattr(errno, name)
)


def _lock_exclusive(fd: int, attempts: int) -> None:
    # a reader's probe holds a shared lock for a few microseconds: with attempts > 1,
    # try again a few times before calling the file locked
    assert _fcntl is not None
    for attempt in range(attempts):
        try:
            _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in _BUSY or attempt == attempts - 1:
                raise
        time.sleep(0.01)


class FileLock:
    """An exclusive ``flock`` on one file, taken without waiting and held until
    :meth:`release` (or the end of the process, however it ends).

    :meth:`acquire` opens the file (created if missing, never through a symlink,
    close-on-exec), refuses anything but a regular file, and takes the lock; a lock
    held by another process (or another descriptor of this one) is a
    :class:`~mlx.errors.RunError` at once. Without ``fcntl`` it does nothing.
    Subclasses say what the file is in their messages (:meth:`cannot_open`,
    :meth:`not_regular`, :meth:`busy`) and may write into it once locked
    (:meth:`locked`, :meth:`unlocking`).
    """

    #: tries before a lock held by someone else counts as held, 10 ms apart
    attempts = 1
    #: whether a file system that cannot lock (some FUSE and network mounts) means
    #: going on without the lock, instead of an error
    lockless_ok = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def cannot_open(self, exc: OSError) -> str:
        """The message when the file cannot be opened."""
        return f"Cannot open {os.fspath(self.path)!r}: {exc.strerror or exc}."

    def not_regular(self) -> str:
        """The message when the file is not a regular file."""
        return f"{os.fspath(self.path)} is not a regular file."

    def busy(self) -> RunError:
        """The error when another process holds the lock."""
        return RunError(f"{os.fspath(self.path)} is locked by another process.")

    def locked(self, fd: int) -> None:
        """Called with the descriptor once the lock is taken; an exception here
        gives the lock up again."""

    def unlocking(self, fd: int) -> None:
        """Called with the descriptor just before the lock is dropped."""

    def acquire(self: _Lock) -> _Lock:
        """Take the lock (no-op when held); RunError when it cannot be taken."""
        if self._fd is not None or _fcntl is None:
            return self
        flags = os.O_RDWR | os.O_CREAT | _CLOEXEC | _NOFOLLOW | _NONBLOCK
        with map_os_errors(RunError, self.cannot_open):
            fd = os.open(self.path, flags, 0o644)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise RunError(self.not_regular())
            try:
                _lock_exclusive(fd, self.attempts)
            except OSError as exc:
                if self.lockless_ok and exc.errno in _NO_LOCKS:
                    os.close(fd)
                    return self  # readers fall back to the pid and heartbeat too
                if exc.errno in _BUSY:
                    raise self.busy() from None
                raise RunError(
                    f"Cannot lock {os.fspath(self.path)!r}: {exc.strerror or exc}."
                ) from exc
            # a full disk refuses the owner record: say which file
            with map_os_errors(
                RunError, "Cannot write {path!r}: {reason}.", path=os.fspath(self.path)
            ):
                self.locked(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (closing the descriptor drops it). The file stays: removing
        it would let two processes lock two different files of the same name."""
        fd, self._fd = self._fd, None
        if fd is not None:
            self.unlocking(fd)
            os.close(fd)

    def __enter__(self: _Lock) -> _Lock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class RunLock(FileLock):
    """The exclusive lock on one run directory's ``run.lock``, held until
    :meth:`release`; the run's name is in every message."""

    attempts = _ATTEMPTS
    lockless_ok = True

    def __init__(self, run_path: PathLike) -> None:
        super().__init__(Path(run_path) / LOCK_NAME)
        self.run_name = self.path.parent.name

    def acquire(self, run_id: str | None = None) -> RunLock:
        """Take the lock; RunError naming the run if another process holds it."""
        self.run_name = run_id or self.path.parent.name
        return super().acquire()

    def cannot_open(self, exc: OSError) -> str:
        return (
            f"Cannot open the lock file {os.fspath(self.path)!r} of run "
            f"{self.run_name!r}: {exc.strerror or exc}."
        )

    def not_regular(self) -> str:
        return (
            f"{os.fspath(self.path)} is not a regular file; a run's lock file must "
            "be one."
        )

    def busy(self) -> RunError:
        return RunError(
            f"Run {self.run_name!r} is still running: another process holds its "
            f"lock {os.fspath(self.path)!r}.",
            hint="wait for it to finish, or stop that process first",
        )


def lock_state(run_path: PathLike) -> str | None:
    """``"held"`` or ``"free"`` for the lock of the run in ``run_path``; None when it
    cannot be told (no ``run.lock``, not a regular file, no ``fcntl``).

    Never blocks and never creates or changes a file. A lock held by this very
    process (another descriptor) also counts as held.
    """
    if _fcntl is None:
        return None
    path = Path(run_path) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | _CLOEXEC | _NOFOLLOW | _NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        try:
            _fcntl.flock(fd, _fcntl.LOCK_SH | _fcntl.LOCK_NB)
        except OSError as exc:
            return "held" if exc.errno in _BUSY else None
        # closing the descriptor below drops this shared lock again
        return "free"
    finally:
        os.close(fd)


def process_start(pid: int) -> str | None:
    """An identity of process ``pid`` that a reused pid does not share: the boot ID
    and the start time in clock ticks (``/proc/<pid>/stat`` field 22). None where
    ``/proc`` is not available or the process does not exist."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as handle:
            text = handle.read(4096).decode("ascii", "replace")
    except (OSError, ValueError):
        return None
    # the command name (field 2) may hold spaces and parentheses: skip past it
    fields = text.rpartition(")")[2].split()
    if len(fields) < 20 or not fields[19].isdigit():
        return None
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            boot = handle.read(64).strip()
    except OSError:
        boot = ""
    return f"{boot}/{fields[19]}" if boot else fields[19]
