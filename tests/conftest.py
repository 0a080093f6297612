from __future__ import annotations

import os

import numpy as np
import pytest

# the thread counts BLAS/OpenMP libraries (and mlx, for torch) read when they load
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each worker is one of several streams sharing the
    machine's cores: its BLAS and OpenMP pools (and those of the processes its tests
    start) get its share of the cores, as a sweep's points do, instead of each
    spinning up a thread per core and all of them waiting on each other. A thread
    count set in the environment is kept."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 0)
    if not os.environ.get("PYTEST_XDIST_WORKER") or workers < 2:
        return
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    share = str(max(1, cores // workers))
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, share)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=int(os.environ["OPENBLAS_NUM_THREADS"]), user_api="blas")
    threadpool_limits(limits=int(os.environ["OMP_NUM_THREADS"]), user_api="openmp")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: tests are deterministic."""
    return np.random.default_rng(0)
