"""Shared pieces: timing, thread pinning, the machine record, result rows."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

__all__ = [
    "REPO_ROOT",
    "Row",
    "Settings",
    "Timing",
    "environment",
    "paired_medians",
    "pinned_threads",
    "torch_or_none",
]

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Variables that make OpenBLAS pick another kernel or cache size on this kind of
#: machine; the suite records them (``make bench`` unsets both for its command).
OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


@dataclasses.dataclass(frozen=True)
class Settings:
    """How hard to measure: ``quick`` shrinks every size and repeats once."""

    quick: bool = False
    repeats: int = 7
    threads: int = 1

    @property
    def warmups(self) -> int:
        return 1


@dataclasses.dataclass
class Row:
    """One figure: ours against the peer on one setting.

    ``ratio`` is ours / peer in the unit of the row (samples/s: higher is better for
    us; seconds: lower is better): the median of the ratios of adjacent timings
    (``paired_ratio``) when the row has them, else the ratio of the two medians.
    ``target`` reads like ``">= 1.0"`` or ``"<= 0.5"`` and ``meets`` says whether
    the ratio (or, without a peer, ``ours``) satisfies it.
    """

    group: str
    setting: str
    unit: str
    ours: float | None
    peer: float | None = None
    peer_name: str = ""
    target: str = ""
    note: str = ""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    paired_ratio: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.peer:
            return None
        if self.paired_ratio is not None:
            return self.paired_ratio
        return self.ours / self.peer

    @property
    def meets(self) -> bool | None:
        if not self.target:
            return None
        op, bound_text = self.target.split()
        value = self.ratio if self.peer_name else self.ours
        if value is None:
            return None
        bound = float(bound_text)
        return value >= bound if op == ">=" else value <= bound

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["ratio"] = self.ratio
        data["meets"] = self.meets
        return data


class Timing(NamedTuple):
    """Median seconds of each side, and the median of ``ours / peer`` over the
    repetitions (each pair timed back to back, so a slow phase of the machine
    weighs on both halves of a ratio alike)."""

    ours: float
    peer: float | None
    ratio: float | None


#: Untimed idle time before each timed call; longer than OpenBLAS's default spin
#: (THREAD_TIMEOUT, 2**28 cycles: about 0.1 s) before a worker thread sleeps.
SETTLE_SECONDS = 0.25


def paired_medians(
    ours: Callable[[], Any],
    peer: Callable[[], Any] | None,
    settings: Settings,
) -> Timing:
    """Median wall time (s) of each callable, run alternately after warm-ups.

    Alternating the two keeps slow drifts of a shared machine (other processes,
    clock changes) from favouring one side. Between timings the process idles for
    :data:`SETTLE_SECONDS`, untimed: BLAS worker threads busy-wait for a while after
    a call, and threads left spinning by one library (SciPy and NumPy each ship an
    OpenBLAS) would otherwise slow whichever side runs next.
    """
    repeats = 1 if settings.quick else settings.repeats
    settle = 0.0 if settings.quick else SETTLE_SECONDS
    for _ in range(settings.warmups):
        ours()
        if peer is not None:
            peer()
    ours_times: list[float] = []
    peer_times: list[float] = []
    for _ in range(repeats):
        ours_times.append(_timed(ours, settle))
        if peer is not None:
            peer_times.append(_timed(peer, settle))
    if not peer_times:
        return Timing(statistics.median(ours_times), None, None)
    return Timing(
        statistics.median(ours_times),
        statistics.median(peer_times),
        statistics.median(o / p for o, p in zip(ours_times, peer_times)),
    )


def _timed(fn: Callable[[], Any], settle: float = 0.0) -> float:
    time.sleep(settle)
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def torch_or_none() -> Any:
    """The torch module, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


@contextlib.contextmanager
def pinned_threads(n: int) -> Iterator[None]:
    """Pin NumPy's BLAS (threadpoolctl) and torch to ``n`` threads."""
    torch = torch_or_none()
    previous = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        limits: Any = contextlib.nullcontext()
    else:
        limits = threadpool_limits(limits=n)
    try:
        with limits:
            yield
    finally:
        if torch is not None and previous is not None:
            torch.set_num_threads(previous)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def environment(threads: int) -> dict[str, Any]:
    """The machine and libraries the figures were measured with."""
    import numpy as np

    blas: list[dict[str, Any]] = []
    try:
        from threadpoolctl import threadpool_info

        blas = [
            {
                k: info.get(k)
                for k in (
                    "user_api",
                    "internal_api",
                    "version",
                    "architecture",
                    "num_threads",
                    "threading_layer",
                    "prefix",
                )
            }
            for info in threadpool_info()
        ]
    except ImportError:  # pragma: no cover
        pass
    numpy_blas = None
    try:
        config = np.show_config(mode="dicts")
        numpy_blas = config.get("Build Dependencies", {}).get("blas", {}).get("name")
    except Exception:
        pass
    torch = torch_or_none()
    return {
        "cpu": _cpu_model(),
        "cores": cpu_count(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": numpy_blas,
        "torch": None if torch is None else torch.__version__,
        "torch_blas": None if torch is None else _torch_blas(torch),
        "scikit_learn": _version("scikit-learn"),
        "scipy": _version("scipy"),
        "threads": threads,
        "threadpools": blas,
        "openblas_env": {k: os.environ.get(k) for k in OPENBLAS_VARIABLES},
        "executable": sys.executable,
    }


def _torch_blas(torch: Any) -> str:
    config = torch.__config__.show()
    for name in ("MKL", "OpenBLAS", "BLIS"):
        if f"BLAS_INFO={name.lower()}" in config or f"USE_{name.upper()}=ON" in config:
            return name
    return "unknown"
