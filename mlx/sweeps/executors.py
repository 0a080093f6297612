"""Run point processes: a local process pool, or one Ray task per point.

Either way each point is its own OS process (``python -m mlx.sweeps.worker``), so a
crash, a segfault or an out-of-memory kill takes down that point only. The driver
asks an executor to :meth:`start` tasks up to its ``slots``, :meth:`wait` for the
next to finish, and :meth:`interrupt` the running ones (SIGINT: they checkpoint and
end as interrupted, as a single run does). Ray is imported only by
:class:`RayExecutor`.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any, Callable, Mapping, Protocol, Sequence

from mlx.errors import BackendUnavailableError

__all__ = [
    "THREAD_VARIABLES",
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "Task",
    "cpu_count",
    "default_jobs",
    "point_env",
    "worker_argv",
]

#: Environment variables that cap the threads of BLAS, OpenMP and torch.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "BLIS_NUM_THREADS",
)


@dataclasses.dataclass
class Task:
    """One point process to run."""

    digest: str
    argv: list[str]
    log: Path
    env: dict[str, str]
    started: float = 0.0
    #: how it ended, when the executor knows more than an exit code tells
    reason: str | None = None


class Executor(Protocol):
    """What the driver asks of an executor: :meth:`start` tasks up to ``slots``,
    :meth:`wait` for those that finish, :meth:`interrupt` the running ones,
    :meth:`close` (killing what still runs)."""

    name: str
    slots: int

    @property
    def running(self) -> int:
        """How many tasks run now."""
        ...

    def start(self, task: Task) -> None:
        """Start ``task``."""
        ...

    def wait(self, timeout: float) -> list[tuple[Task, int]]:
        """The tasks that finished within ``timeout`` seconds, with exit codes."""
        ...

    def interrupt(self) -> None:
        """SIGINT to every running task: they checkpoint and end."""
        ...

    def close(self) -> None:
        """Stop everything still running and release the executor."""
        ...


def cpu_count() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_jobs(threads_per_point: int) -> int:
    """Cores divided by the threads each point uses, at least 1."""
    return max(1, cpu_count() // max(1, threads_per_point))


def point_env(threads: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a point process: this one's, with the thread caps set."""
    env = dict(os.environ if base is None else base)
    for name in THREAD_VARIABLES:
        env[name] = str(threads)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def worker_argv(
    sweep: str, digest: str, *, config: Path | None = None, resume: Path | None = None
) -> list[str]:
    """The command line of a point process: a new run from ``config``, or the
    resumption of the run directory ``resume``."""
    argv = [sys.executable, "-m", "mlx.sweeps.worker", "--sweep", sweep]
    argv += ["--point", digest]
    if resume is not None:
        return [*argv, "--resume", os.fspath(resume)]
    assert config is not None
    return [*argv, "--config", os.fspath(config)]


def _parent_death_signal(parent: int) -> Callable[[], None] | None:
    """Linux: what the child runs before ``exec`` so that it gets SIGTERM (and
    checkpoints) when the driver ``parent`` dies, even by SIGKILL, instead of running
    on unowned; None elsewhere. libc is loaded here, in the parent: the child only
    calls it."""
    if sys.platform != "linux":
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def arm() -> None:  # pragma: no cover - runs in the child
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            # the driver died between the fork and prctl: no signal will ever come,
            # and a resumed sweep may already be running this point
            os._exit(128 + signal.SIGTERM)

    return arm


class LocalExecutor:
    """A pool of ``jobs`` point processes on this machine."""

    name = "local"

    def __init__(self, jobs: int) -> None:
        self.slots = jobs
        self._running: dict[int, tuple[subprocess.Popen[bytes], Task, IO[bytes]]] = {}

    @property
    def running(self) -> int:
        return len(self._running)

    def start(self, task: Task) -> None:
        task.log.parent.mkdir(parents=True, exist_ok=True)
        log = open(task.log, "ab")
        try:
            process = subprocess.Popen(
                task.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=task.env,
                # its own session: a Ctrl-C on the terminal reaches the driver,
                # which interrupts each point exactly once
                start_new_session=True,
                preexec_fn=_parent_death_signal(os.getpid()),
            )
        except BaseException:
            log.close()
            raise
        task.started = time.monotonic()
        self._running[process.pid] = (process, task, log)

    def wait(self, timeout: float) -> list[tuple[Task, int]]:
        """The tasks that finished within ``timeout`` seconds, with exit codes."""
        deadline = time.monotonic() + timeout
        while True:
            done = []
            for pid, (process, task, log) in list(self._running.items()):
                code = process.poll()
                if code is not None:
                    log.close()
                    del self._running[pid]
                    done.append((task, code))
            if done or not self._running or time.monotonic() >= deadline:
                return done
            time.sleep(0.01)

    def interrupt(self) -> None:
        for process, _task, _log in self._running.values():
            try:
                process.send_signal(signal.SIGINT)
            except OSError:
                pass

    def close(self) -> None:
        for process, _task, log in self._running.values():
            try:
                process.kill()
                process.wait()
            except OSError:
                pass
            log.close()
        self._running.clear()


def _remote_point(argv: Sequence[str], log: str, env: Mapping[str, str]) -> int:
    """The body of a Ray task: run one point process, return its exit code. On
    cancellation (KeyboardInterrupt) the point is interrupted and waited for."""
    import ctypes as _ctypes
    import os as _os
    import signal as _signal
    import subprocess as _subprocess
    import sys as _sys

    arm = None
    if _sys.platform == "linux":  # as _parent_death_signal, inlined: run remotely
        parent = _os.getpid()
        prctl = _ctypes.CDLL(None, use_errno=True).prctl

        def arm() -> None:  # pragma: no cover - runs in the child
            prctl(1, _signal.SIGTERM)  # PR_SET_PDEATHSIG
            if _os.getppid() != parent:
                _os._exit(128 + _signal.SIGTERM)

    _os.makedirs(_os.path.dirname(log), exist_ok=True)
    with open(log, "ab") as handle:
        process = _subprocess.Popen(
            list(argv),
            stdin=_subprocess.DEVNULL,
            stdout=handle,
            stderr=_subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
            # a Ray worker that dies (Ray's memory monitor kills it) takes its point
            # along: SIGTERM, it checkpoints, instead of running on unwatched
            preexec_fn=arm,
        )
        try:
            return process.wait()
        except BaseException:
            process.send_signal(_signal.SIGINT)
            process.wait()
            raise


def _by_value(function: Callable[..., Any]) -> Callable[..., Any]:
    # a closure is pickled by value, so Ray workers need not import mlx to run it
    def run_point(argv: Sequence[str], log: str, env: Mapping[str, str]) -> int:
        return function(argv, log, env)

    return run_point


class RayExecutor:
    """One Ray task per point (``max_retries=0``: the sweep owns retries), each
    asking for ``threads`` CPUs and running the same point process."""

    name = "ray"

    def __init__(self, jobs: int, threads: int, address: str | None) -> None:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        try:
            import ray  # the optional dependency: imported by this executor only
        except ImportError as exc:
            raise BackendUnavailableError(
                "--executor ray needs Ray, which is not installed",
                hint="pip install 'model-harness[ray]'",
            ) from exc
        self._ray = ray
        started = time.perf_counter()
        options: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "configure_logging": False,
        }
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(
                address="local",
                num_cpus=jobs * threads,
                _node_ip_address="127.0.0.1",
                **options,
            )
        self.startup_seconds = time.perf_counter() - started
        self.shutdown_seconds = 0.0
        self.slots = jobs
        self._task = ray.remote(num_cpus=threads, max_retries=0)(
            _by_value(_remote_point)
        )
        self._refs: dict[Any, Task] = {}

    @property
    def running(self) -> int:
        return len(self._refs)

    def start(self, task: Task) -> None:
        task.started = time.monotonic()
        ref = self._task.remote(task.argv, os.fspath(task.log), task.env)
        self._refs[ref] = task

    def wait(self, timeout: float) -> list[tuple[Task, int]]:
        if not self._refs:
            return []
        ready, _ = self._ray.wait(
            list(self._refs), num_returns=1, timeout=max(timeout, 0.0)
        )
        done = []
        for ref in ready:
            task = self._refs.pop(ref)
            try:
                code = int(self._ray.get(ref))
            except Exception as exc:  # cancelled, or the Ray worker died
                code = 130 if _cancelled(self._ray, ref) else 1
                if code == 1:
                    task.reason = f"its Ray task failed: {_first_line(exc)}"
            done.append((task, code))
        return done

    def interrupt(self) -> None:
        for ref in list(self._refs):
            try:
                self._ray.cancel(ref)
            except Exception:
                pass

    def close(self) -> None:
        for ref in list(self._refs):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:
                pass
        self._refs.clear()
        started = time.perf_counter()
        self._ray.shutdown()
        self.shutdown_seconds = time.perf_counter() - started


def _first_line(exc: BaseException, limit: int = 200) -> str:
    """``Type: the first line of the message``, at most ``limit`` characters: Ray's
    own messages run to pages."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cancelled(ray: Any, ref: Any) -> bool:
    try:
        ray.get(ref, timeout=0)
    except ray.exceptions.TaskCancelledError:
        return True
    except Exception:
        return False
    return False
