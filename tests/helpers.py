"""Shared helpers for tests that drive the real CLI.

``run_cli`` runs a command in this process (:func:`invoke`): argv in, exit code,
stdout and stderr out, as a :class:`subprocess.CompletedProcess`, with the process
state a command may change put back afterwards. ``run_cli_process`` and
``start_cli`` start ``python -m mlx`` as a real process, for the tests whose
subject is the process itself (signals, kill and resume, closed streams, locks
between processes, start-up imports, thread settings read at start-up).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import linecache
import logging
import os
import signal
import subprocess
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
# what `python -m mlx` puts in sys.argv[0]
MAIN_SCRIPT = str(REPO_ROOT / "mlx" / "__main__.py")


def cli_env(root: Path, **extra: str) -> dict[str, str]:
    """Environment for a CLI run: this checkout's mlx, ``root`` as MLX_ROOT."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MLX_ROOT": str(root)}
    env.pop("MLX_DATA_DIR", None)
    env.update(extra)
    return env


def run_cli(
    args: Sequence[str],
    root: Path,
    *,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``mlx ARGS`` in ``root`` and capture its output: in this process
    (:func:`invoke`), or as a new one when ``env`` asks for what only a starting
    process honours (a ``sitecustomize`` on its PYTHONPATH, a thread count read when
    a library loads; see :func:`needs_process`).

    ``timeout`` bounds the new process only.
    """
    env = env or cli_env(root)
    if needs_process(env):
        return run_cli_process(args, root, timeout=timeout, env=env)
    return invoke(args, root, env=env)


def run_cli_process(
    args: Sequence[str],
    root: Path,
    *,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``python -m mlx ARGS`` in ``root`` as a new process, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "mlx", *args],
        cwd=root,
        env=env or cli_env(root),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(args: Sequence[str], root: Path) -> subprocess.Popen:
    """Start ``python -m mlx ARGS`` in ``root`` in the background, output piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "mlx", *args],
        cwd=root,
        env=cli_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# -- the in-process runner -----------------------------------------------------------

# read once, when a process starts: a run that sets one differently needs a process
STARTUP_VARIABLES = (
    "OPENBLAS_CORETYPE",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "MPLBACKEND",
)
# start-up settings the in-process runner honours itself
HONOURED = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
# thread counts, honoured here as limits on the thread pools for the run
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "MLX_NUM_THREADS",
)
# what a fresh interpreter's warning filters are (no -W, no PYTHONWARNINGS)
DEFAULT_WARNING_FILTERS: tuple[tuple[str, type[Warning], str], ...] = (
    ("ignore", ResourceWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", DeprecationWarning, ""),
    ("default", DeprecationWarning, "__main__"),
)


def invoke(
    args: Sequence[str], root: Path, *, env: dict[str, str]
) -> subprocess.CompletedProcess:
    """``mlx.cli.main(ARGS)`` in this process, as ``python -m mlx ARGS`` would run in
    ``root`` with environment ``env``.

    stdout and stderr are captured (text streams like pipes: not terminals, UTF-8),
    stdin is empty; the environment, working directory, ``sys.argv``, ``sys.path``,
    warning filters, the ``mlx`` and root loggers, signal handlers and thread pools
    are what a new process would see, and are put back afterwards, as are the
    modules the run imported from outside the interpreter and this checkout (a
    custom model's package). An exception that escapes ``main`` prints its traceback
    on stderr and exits 1, as the interpreter does.
    """
    reason = needs_process(env)
    if reason:
        raise AssertionError(f"{reason}: use run_cli_process")
    extra_paths = _extra_python_paths(env)
    stdout = _Capture("<stdout>", "surrogateescape")
    stderr = _Capture("<stderr>", "backslashreplace")
    with contextlib.ExitStack() as stack:
        stack.enter_context(_environment(env))
        stack.enter_context(_working_directory(root))
        stack.enter_context(_imports([str(root), *extra_paths], env))
        stack.enter_context(_thread_pools(_thread_limits(env)))
        stack.enter_context(_signal_handlers())
        stack.enter_context(_loggers())
        stack.enter_context(_standard_streams(args, stdout, stderr))
        stack.enter_context(_fresh_warnings())
        code = _call_main(args)
    return subprocess.CompletedProcess(
        [sys.executable, "-m", "mlx", *args], code, stdout.text(), stderr.text()
    )


def _call_main(args: Sequence[str]) -> int:
    """The exit status of ``python -m mlx ARGS``: main's return value or SystemExit
    code, or 1 (traceback on stderr) for any other exception."""
    try:
        from mlx.cli import main

        status: Any = main(list(args))
    except SystemExit as exc:
        status = exc.code
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        traceback.print_exception(type(exc), exc, exc.__traceback__)
        status = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.flush()
    return _exit_status(status)


def _exit_status(status: Any) -> int:
    """What ``sys.exit(status)`` makes a process's exit status."""
    if status is None:
        return 0
    if isinstance(status, int):
        return status & 0xFF
    print(status, file=sys.stderr)
    return 1


class _Pipe(io.BytesIO):
    """The bytes written to a captured stream, kept when the stream is closed."""

    kept = b""

    def close(self) -> None:
        if not self.closed:
            self.kept = self.getvalue()
        super().close()

    def value(self) -> bytes:
        return self.kept if self.closed else self.getvalue()


class _Capture(io.TextIOWrapper):
    """A standard stream that reads like a pipe: UTF-8, not a terminal, no file
    descriptor; its text decoded as ``subprocess.run(text=True)`` decodes."""

    def __init__(self, name: str, errors: str, data: bytes = b"") -> None:
        super().__init__(_Pipe(data), encoding="utf-8", errors=errors)
        self._stream_name = name

    @property
    def name(self) -> str:
        return self._stream_name

    def text(self) -> str:
        with contextlib.suppress(ValueError):
            self.flush()
        pipe = self.buffer
        assert isinstance(pipe, _Pipe)
        return pipe.value().decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


def _extra_python_paths(env: dict[str, str]) -> list[str]:
    """The entries of ``env``'s PYTHONPATH besides this checkout."""
    entries = env.get("PYTHONPATH", "").split(os.pathsep)
    return [e for e in entries if e and Path(e).resolve() != REPO_ROOT]


def needs_process(env: dict[str, str]) -> str | None:
    """Why a run with environment ``env`` cannot happen in this process, if so: its
    PYTHONPATH holds a ``sitecustomize`` or a module this process already imported
    (a stand-in for torch), or it sets a variable read when a process starts (a
    thread count, a PYTHON... setting) differently from this process."""
    for entry in _extra_python_paths(env):
        for name in _top_level_names(Path(entry)):
            if name in ("sitecustomize", "usercustomize"):
                return f"{entry} holds {name}, which runs when a process starts"
            if name in sys.modules:
                return f"{entry} holds {name}, which this process already imported"
    for name in (*STARTUP_VARIABLES, *(v for v in env if v.startswith("PYTHON"))):
        if name not in HONOURED and env.get(name) != os.environ.get(name):
            return f"{name} is read when a process starts"
    for name in THREAD_VARIABLES:
        value = env.get(name)
        if value != os.environ.get(name) and not (value or "").isdigit():
            return f"{name} unset or not a count is read when a process starts"
    return None


def _top_level_names(entry: Path) -> list[str]:
    """The modules and packages directly in the directory ``entry``."""
    try:
        children = list(entry.iterdir())
    except OSError:
        return []
    return [c.stem if c.suffix == ".py" else c.name for c in children]


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _working_directory(root: Path) -> Iterator[None]:
    saved = os.getcwd()
    os.chdir(root)
    try:
        yield
    finally:
        os.chdir(saved)


def _kept_places() -> tuple[str, ...]:
    """Where the modules a run may keep imported live: the interpreter's and this
    checkout's package (not its examples or benchmarks)."""
    places = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(REPO_ROOT / "mlx")}
    return tuple(os.path.join(os.path.realpath(p), "") for p in places)


def _foreign(module: Any, kept: tuple[str, ...]) -> bool:
    """Whether ``module`` was loaded from outside the interpreter and this
    checkout (a namespace package counts by its first directory)."""
    location = getattr(module, "__file__", None)
    if location is None:
        paths = list(getattr(module, "__path__", None) or [])
        location = paths[0] if paths else None
    if location is None:
        return False
    return not os.path.realpath(location).startswith(kept)


@contextlib.contextmanager
def _imports(front: list[str], env: dict[str, str]) -> Iterator[None]:
    """sys.path as ``python -m`` starts it (the working directory, then PYTHONPATH),
    bytecode written unless PYTHONDONTWRITEBYTECODE; modules imported from elsewhere
    (``root``'s own packages) forgotten after."""
    saved_path, saved_bytecode = sys.path[:], sys.dont_write_bytecode
    before = set(sys.modules)
    sys.path[:0] = front
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    importlib.invalidate_caches()
    linecache.clearcache()
    try:
        yield
    finally:
        sys.path[:] = saved_path
        sys.dont_write_bytecode = saved_bytecode
        kept = _kept_places()
        for name in set(sys.modules) - before:
            if _foreign(sys.modules[name], kept):
                del sys.modules[name]
        for entry in front:
            sys.path_importer_cache.pop(entry, None)


def _thread_limits(env: dict[str, str]) -> dict[str, int]:
    """The thread counts ``env`` sets differently from this process, per pool
    (``openblas``, ``mkl``, other ``blas``, ``openmp``, ``torch``), as each library
    (and mlx, for torch) reads them when it loads."""
    given = {
        name: int(env[name])
        for name in THREAD_VARIABLES
        if env.get(name) != os.environ.get(name) and env.get(name, "").isdigit()
    }
    omp = given.get("OMP_NUM_THREADS")
    limits = {
        "openblas": given.get("OPENBLAS_NUM_THREADS", omp),
        "mkl": given.get("MKL_NUM_THREADS", omp),
        "blas": omp,
        "openmp": omp,
        "torch": given.get("MLX_NUM_THREADS", omp),
    }
    return {pool: count for pool, count in limits.items() if count}


@contextlib.contextmanager
def _thread_pools(limits: dict[str, int]) -> Iterator[None]:
    """BLAS/OpenMP thread counts (threadpoolctl) and torch's threads and
    determinism: ``limits`` for the run, then put back as they were (torch's
    defaults if the run imported it)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        pools: list[tuple[Any, int]] = []
    else:
        pools = [(p, p.num_threads) for p in ThreadpoolController().lib_controllers]
    torch_before = _torch_state()
    for pool, _threads in pools:
        count = limits.get(pool.internal_api, limits.get(pool.user_api))
        if count:
            pool.set_num_threads(count)
    if torch_before is not None and limits.get("torch"):
        sys.modules["torch"].set_num_threads(limits["torch"])
    try:
        yield
    finally:
        for pool, threads in pools:
            if pool.num_threads != threads:
                pool.set_num_threads(threads)
        if sys.modules.get("torch") is not None:
            threads, deterministic, warn_only = torch_before or (None, False, False)
            torch = sys.modules["torch"]
            with contextlib.suppress(AttributeError, RuntimeError):
                if threads is not None and torch.get_num_threads() != threads:
                    torch.set_num_threads(threads)
                torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def _torch_state() -> tuple[int, bool, bool] | None:
    torch = sys.modules.get("torch")
    try:
        return (
            torch.get_num_threads(),
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
        )
    except AttributeError:  # not imported (or not imported all the way)
        return None


@contextlib.contextmanager
def _signal_handlers() -> Iterator[None]:
    saved: dict[int, Any] = {}
    for signum in signal.valid_signals():
        with contextlib.suppress(ValueError, OSError):
            handler = signal.getsignal(signum)
            if handler is not None:
                saved[signum] = handler
    try:
        yield
    finally:
        for signum, handler in saved.items():
            if signal.getsignal(signum) is not handler:
                with contextlib.suppress(ValueError, OSError):
                    signal.signal(signum, handler)


@contextlib.contextmanager
def _loggers() -> Iterator[None]:
    """The root logger's and the ``mlx`` loggers' handlers, levels and switches as
    they were (the package sets up its logger when imported: that is the
    baseline)."""
    importlib.import_module("mlx")
    loggers = [logging.getLogger()] + [
        logger
        for name, logger in list(logging.root.manager.loggerDict.items())
        if (name == "mlx" or name.startswith("mlx."))
        and isinstance(logger, logging.Logger)
    ]
    saved = [
        (lg, lg.handlers[:], lg.level, lg.propagate, lg.disabled) for lg in loggers
    ]
    disabled = logging.root.manager.disable
    try:
        yield
    finally:
        logging.disable(disabled)
        for logger, handlers, level, propagate, off in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate, logger.disabled = propagate, off


@contextlib.contextmanager
def _standard_streams(
    args: Sequence[str], stdout: io.TextIOBase, stderr: io.TextIOBase
) -> Iterator[None]:
    saved = sys.stdin, sys.stdout, sys.stderr, sys.argv
    sys.stdin = _Capture("<stdin>", "surrogateescape")
    sys.stdout, sys.stderr = stdout, stderr
    sys.argv = [MAIN_SCRIPT, *args]
    try:
        yield
    finally:
        sys.stdin, sys.stdout, sys.stderr, sys.argv = saved


def _write_warning(message: Any) -> None:
    """The interpreter's own way of showing a warning: formatted, on stderr."""
    file = message.file if message.file is not None else sys.stderr
    if file is None:
        return
    with contextlib.suppress(OSError):
        file.write(warnings._formatwarnmsg(message))


@contextlib.contextmanager
def _fresh_warnings() -> Iterator[None]:
    """A new process's warning filters and display (not pytest's, which turn
    warnings into errors or record them)."""
    module: Any = warnings
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for action, category, where in DEFAULT_WARNING_FILTERS:
            warnings.filterwarnings(action, category=category, module=where)
        module._showwarnmsg_impl = _write_warning
        module.showwarning = module._showwarning_orig
        yield


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def small_classification(**training: Any) -> dict[str, Any]:
    """A config that trains in well under a second."""
    return {
        "name": "small",
        "dataset": {
            "name": "synthetic_classification",
            "params": {"n_samples": 600, "n_features": 8, "n_classes": 3, "seed": 3},
        },
        "model": {
            "name": "mlp",
            "params": {
                "layer_sizes": [8, 16, 3],
                "output_activation": "softmax",
            },
        },
        "training": {
            "epochs": 4,
            "batch_size": 32,
            "learning_rate": 0.01,
            "optimizer": "adam",
            "seed": 5,
            **training,
        },
        "output": {"directory": "outputs"},
    }
