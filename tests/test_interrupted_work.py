"""Interrupted work leaves nothing unusable: a SIGINT/SIGTERM at any moment of a
run's start or of a sweep point's leaves either nothing or a run that the next command
resumes (an export's: tests/test_interrupted_export.py).

The process tests stop a real `python -m mlx` at one step exactly: the private hook
``_MLX_PAUSE_AT=<point>`` (mlx.utils.signals.pause_point) makes it say ``paused at
<point>`` and wait for the signal there. Others send the signal after a range of
delays, for the moments no hook names (inside the directory's creation, the data
loading, the imports).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from helpers import run_cli, small_classification, write_config
from processes import check_invariant, mlx_args, paused, run_dirs, start, stopped

from mlx.errors import RunInterrupted
from mlx.utils.signals import StopSignals


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    write_config(tmp_path / "exp.yaml", small_classification(epochs=3))
    return tmp_path


SIGNALS = [(signal.SIGTERM, 143), (signal.SIGINT, 130)]
SIGNAL_IDS = ["sigterm", "sigint"]


# -- the handlers' modes, in this process ----------------------------------------


def test_a_signal_before_anything_exists_stops_at_once() -> None:
    with pytest.raises(RunInterrupted) as raised:
        with StopSignals("nothing was made"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the signal ends this at once
            raise AssertionError("not interrupted")
    assert raised.value.exit_code == 143
    assert raised.value.message == "interrupted by SIGTERM: nothing was made"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_held_step_finishes_and_the_signal_is_told_after() -> None:
    steps = []
    with pytest.raises(RunInterrupted) as raised:
        with StopSignals() as signals:
            with signals.holding():
                os.kill(os.getpid(), signal.SIGINT)
                steps.append("finished")
            steps.append("after")  # never: the held signal stops here
    assert steps == ["finished"]
    assert raised.value.exit_code == 130


def test_polling_notes_the_first_signal_and_a_second_stops_at_once() -> None:
    with StopSignals() as signals, signals.recording():
        with signals.polling():
            os.kill(os.getpid(), signal.SIGTERM)
            assert signals.requested() and signals.signal_name == "SIGTERM"
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
        os.kill(os.getpid(), signal.SIGTERM)  # recording: only noted
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_one_command_installs_one_set_of_handlers() -> None:
    with StopSignals("outer") as outer:
        assert StopSignals.active() is outer
        with StopSignals("inner"):  # not installed: the outer one stays
            assert StopSignals.active() is outer
        assert StopSignals.active() is outer
    assert StopSignals.active() is None


# -- a run's start, point by point -----------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", SIGNALS, ids=SIGNAL_IDS)
@pytest.mark.parametrize(
    "point", ["before-create", "created", "config-written", "set-up"]
)
def test_a_signal_before_training_leaves_no_run(
    root: Path, point: str, sig: int, code: int
) -> None:
    proc = start(
        root, mlx_args("run-experiment", "--config", "exp.yaml"), _MLX_PAUSE_AT=point
    )
    paused(proc, point)
    status, err = stopped(proc, sig)
    name = signal.Signals(sig).name
    assert status == code, err
    assert run_dirs(root) == []
    if point == "before-create":
        assert f"error: interrupted by {name}: no run was created" in err
    else:
        assert f"error: interrupted by {name} before training began: the new run" in err
        assert "was removed" in err


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", SIGNALS, ids=SIGNAL_IDS)
def test_a_signal_as_training_starts_is_a_resumable_interruption(
    root: Path, sig: int, code: int
) -> None:
    proc = start(
        root,
        mlx_args("run-experiment", "--config", "exp.yaml"),
        _MLX_PAUSE_AT="lifecycle",
    )
    paused(proc, "lifecycle")
    status, err = stopped(proc, sig)
    assert status == code, err
    assert "resume with: mlx run-experiment --resume" in err
    (run,) = check_invariant(root)
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "completed" and summary["epochs_completed"] == 3


@pytest.mark.slow
@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_while_the_first_is_handled(root: Path, second: int) -> None:
    proc = start(
        root,
        mlx_args("run-experiment", "--config", "exp.yaml"),
        _MLX_PAUSE_AT="lifecycle",
    )
    paused(proc, "lifecycle")
    proc.send_signal(signal.SIGTERM)
    status, err = stopped(proc, second)
    assert status in (130, 143), err
    check_invariant(root)


@pytest.mark.slow
def test_sigterm_at_many_moments_after_the_directory_appears(root: Path) -> None:
    """The ~50 ms after the run directory appears: every moment leaves no run or an
    interrupted one."""
    for delay in (0.0, 0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.08, 0.12, 0.2):
        proc = start(root, mlx_args("run-experiment", "--config", "exp.yaml"))
        while not run_dirs(root) and proc.poll() is None:
            time.sleep(0.0005)
        time.sleep(delay)
        status, err = stopped(proc, signal.SIGTERM)
        assert status in (0, 143, -signal.SIGTERM), (delay, err)
        for run in check_invariant(root):
            os.rename(run, root / f"done-{delay}-{run.name}")


@pytest.mark.slow
def test_sigterm_at_many_moments_of_the_start(root: Path) -> None:
    """From the process's start (imports, config, data) to training: no run, or an
    interrupted one; a process killed before its handlers exist leaves no run."""
    began = time.monotonic()
    probe = run_cli(["run-experiment", "--config", "exp.yaml", "--quiet"], root)
    assert probe.returncode == 0, probe.stderr
    full = time.monotonic() - began
    for run in run_dirs(root):
        os.rename(run, root / f"probe-{run.name}")
    for fraction in (0.05, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0):
        proc = start(root, mlx_args("run-experiment", "--config", "exp.yaml"))
        time.sleep(full * fraction)
        status, err = stopped(proc, signal.SIGTERM)
        assert status in (0, 143, -signal.SIGTERM), (fraction, err)
        for run in check_invariant(root):
            os.rename(run, root / f"done-{fraction}-{run.name}")


# -- a sweep point's process -----------------------------------------------------


def worker_args(*extra: str) -> list[str]:
    return [sys.executable, "-m", "mlx.sweeps.worker", "--sweep", "s", *extra]


@pytest.mark.slow
@pytest.mark.parametrize("point", ["before-create", "created", "set-up", "lifecycle"])
def test_a_sweep_point_stopped_at_each_step(root: Path, point: str) -> None:
    proc = start(
        root,
        worker_args("--point", "p1", "--config", "exp.yaml"),
        _MLX_PAUSE_AT=point,
    )
    paused(proc, point)
    status, err = stopped(proc, signal.SIGTERM)
    assert status == 143, err
    runs = check_invariant(root)
    assert len(runs) == (1 if point == "lifecycle" else 0)


@pytest.mark.slow
def test_a_sweep_point_stopped_before_its_handlers_leaves_no_run(root: Path) -> None:
    proc = start(root, worker_args("--point", "p1", "--config", "exp.yaml"))
    status, err = stopped(proc, signal.SIGTERM)
    assert status in (143, -signal.SIGTERM), err
    assert run_dirs(root) == []


def test_a_signal_lost_in_a_finalizer_is_raised_again() -> None:
    """A handler that runs inside a finalizer cannot stop the work there (Python
    prints "Exception ignored" and goes on): the signal comes again."""

    class Finalized:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(RunInterrupted):
        with StopSignals():
            Finalized()  # its __del__ runs the handler, whose raise is lost
            time.sleep(5)
            raise AssertionError("not interrupted")
