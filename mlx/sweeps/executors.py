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
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any, Callable, Mapping, Protocol, Sequence

from mlx.errors import BackendUnavailableError, RunError, map_os_errors
from mlx.utils.safe_io import check_appendable

__all__ = [
    "THREAD_VARIABLES",
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "Task",
    "cpu_count",
    "default_jobs",
    "point_env",
    "probe_ray",
    "worker_argv",
]

# what a client of an HTTP/2 (gRPC) server sends first: the preface, then SETTINGS
_H2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_H2_SETTINGS = 4  # the frame type a server answers with
#: seconds each step of reaching a Ray cluster may take before it is given up
PROBE_SECONDS = 5.0

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
        with map_os_errors(
            RunError, "Cannot open the point log {path}: {reason}", path=task.log
        ):
            task.log.parent.mkdir(parents=True, exist_ok=True)
            check_appendable(task.log, "the point's log")
            log = open(task.log, "ab")
        try:
            with map_os_errors(
                RunError,
                "Cannot start the process of point {digest} ({program}): {reason}",
                digest=task.digest[:12],
                program=task.argv[0],
            ):
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


def _resolve(host: str, port: int, timeout: float) -> list[Any]:
    """``socket.getaddrinfo`` for a TCP connection, given up after ``timeout``."""
    found: list[Any] = []
    failed: list[OSError] = []

    def look() -> None:
        try:
            found.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            failed.append(exc)

    thread = threading.Thread(target=look, daemon=True)
    thread.start()
    thread.join(timeout)
    if failed:
        raise failed[0]
    if not found:
        raise TimeoutError(f"no answer from the name service within {timeout:g}s")
    return found


def _hello(sockaddr: Any, family: int, timeout: float) -> bytes:
    """Open a TCP connection to ``sockaddr``, greet it as an HTTP/2 client and
    return the first 9 bytes it answers (a frame header, from a gRPC server)."""
    with socket.socket(family, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(sockaddr)
        conn.sendall(_H2_HELLO)
        reply = b""
        while len(reply) < 9:
            chunk = conn.recv(9 - len(reply))
            if not chunk:
                break
            reply += chunk
        return reply


def probe_ray(address: str, timeout: float = PROBE_SECONDS) -> None:
    """RunError unless a server that answers as Ray's GCS (gRPC over HTTP/2) listens
    at ``address`` (``HOST:PORT``), each step given ``timeout`` seconds: ``ray.init``
    would retry a wrong address for minutes, printing as it goes."""
    host, _, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    where = f"cannot reach the Ray cluster at {address}"
    hint = "start it with `ray start --head` and give the address it prints"
    try:
        family, _kind, _proto, _name, sockaddr = _resolve(host, int(port), timeout)[0]
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise RunError(f"{where}: cannot resolve {host!r}: {reason}") from None
    try:
        reply = _hello(sockaddr, family, timeout)
    except (socket.timeout, TimeoutError):
        raise RunError(f"{where}: no answer within {timeout:g}s", hint=hint) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise RunError(f"{where}: {reason}", hint=hint) from None
    if len(reply) < 9 or reply[3] != _H2_SETTINGS:
        raise RunError(
            f"{where}: the server there is not a Ray cluster (it does not answer "
            "as Ray's GCS, a gRPC server, does)",
            hint=hint,
        )


class RayExecutor:
    """One Ray task per point (``max_retries=0``: the sweep owns retries), each
    asking for ``threads`` CPUs and running the same point process."""

    name = "ray"

    def __init__(self, jobs: int, threads: int, address: str | None) -> None:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        if address:
            probe_ray(address)  # before Ray, which retries a wrong one for minutes
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
        try:
            if address:
                ray.init(address=address, **options)
                _check_feasible(ray, address, threads)
            else:
                ray.init(
                    address="local",
                    num_cpus=jobs * threads,
                    _node_ip_address="127.0.0.1",
                    **options,
                )
        except BaseException as exc:
            # a SIGTERM while Ray starts, or Ray refusing: what it started stops
            ray.shutdown()
            if isinstance(exc, Exception) and not isinstance(exc, RunError):
                where = f"the Ray cluster at {address}" if address else "a local Ray"
                raise RunError(f"cannot start {where}: {_first_line(exc)}") from exc
            raise
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


def _check_feasible(ray: Any, address: str, threads: int) -> None:
    """RunError when no node of the cluster has ``threads`` CPUs: Ray would keep
    such a task waiting for ever."""
    cpus = [
        float((node.get("Resources") or {}).get("CPU", 0))
        for node in ray.nodes()
        if node.get("Alive")
    ]
    largest = max(cpus, default=0.0)
    if largest < threads:
        raise RunError(
            f"no node of the Ray cluster at {address} has the {threads} CPU(s) a "
            f"point asks for (--threads-per-point); the largest has {largest:g}"
        )


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
