from __future__ import annotations

import os

import numpy as np
import pytest

# The files that take longest (seconds of one worker, measured on two cores): they
# start first, so that no worker is left with a long file while the other is idle.
# The many quick files come after them and fill the gaps. See
# docs/design/test-suite.md.
LONGEST_FIRST = (
    "test_interrupted_export.py",
    "test_export_mlflow.py",
    "test_docs.py",
    "test_benchmarks.py",
    "test_sweep_run.py",
    "test_experiment.py",
    "test_sweep_failures.py",
    "test_export_onnx.py",
    "test_torch_backend.py",
    "test_lr_find.py",
    "test_streaming.py",
    "test_environment_errors.py",
    "test_sweep_ray.py",
    "test_ownership.py",
    "test_sweep_cv.py",
    "test_report_browser.py",
    "test_interrupted_work.py",
)

# the thread counts BLAS/OpenMP libraries (and mlx, for torch) read when they load
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each worker is one of several streams sharing the
    machine's cores: its BLAS and OpenMP pools (and those of the processes its tests
    start) get its share of the cores, as a sweep's points do, instead of each
    spinning up a thread per core and all of them waiting on each other. A thread
    count set in the environment is kept."""
    # xdist's own order (most tests first) would start the long files of few tests
    # last: the order of LONGEST_FIRST is kept instead
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first (each file's tests keep their order), then the rest
    in collection order."""
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: tests are deterministic."""
    return np.random.default_rng(0)
