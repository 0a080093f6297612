"""Run ownership: the run lock decides on this host, the heartbeat elsewhere."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import run_cli, small_classification, start_cli, write_config

from mlx.errors import RunError
from mlx.runs import RunDir, effective_status
from mlx.runs.lock import LOCK_NAME, RunLock, lock_state, process_start

UTC = dt.timezone.utc
OLD = "2000-01-01T00:00:00+00:00"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def test_lock_state_is_unknown_without_a_lock_file_and_creates_none(tmp_path):
    assert lock_state(tmp_path) is None
    assert list(tmp_path.iterdir()) == []


def test_lock_is_held_then_free_and_never_inherited(tmp_path):
    lock = RunLock(tmp_path).acquire()
    try:
        assert lock_state(tmp_path) == "held"
        assert lock._fd is not None and not os.get_inheritable(lock._fd)
        # a second owner, even in this process, is refused at once
        with pytest.raises(RunError, match="is still running"):
            RunLock(tmp_path).acquire()
        # a child process started now does not hold it
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                "import fcntl, os\n"
                f"fd = os.open({str(tmp_path / LOCK_NAME)!r}, os.O_RDONLY)\n"
                "try:\n"
                "    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)\n"
                "    print('free')\n"
                "except OSError:\n"
                "    print('held')\n",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert child.stdout.strip() == "held"
    finally:
        lock.release()
    assert lock_state(tmp_path) == "free"


def test_a_lock_file_that_is_not_a_file_is_unknown_and_never_blocks(tmp_path):
    os.mkfifo(tmp_path / LOCK_NAME)
    assert lock_state(tmp_path) is None  # a FIFO opened for reading would block
    with pytest.raises(RunError, match="not a regular file"):
        RunLock(tmp_path).acquire()


def _summary(**fields) -> dict:
    now = dt.datetime.now(UTC).isoformat()
    base = {"status": "running", "pid": os.getpid(), "host": socket.gethostname()}
    base.update(heartbeat_at=now, heartbeat_interval=10.0)
    base.update(fields)
    return base


def test_a_held_lock_is_running_whatever_the_heartbeat():
    stale = _summary(heartbeat_at=OLD, updated_at=OLD, pid=_dead_pid())
    assert effective_status(stale, lock="held") == "running"
    assert effective_status({**stale, "host": "elsewhere"}, lock="held") == "running"


def test_a_live_process_of_its_own_is_never_lost():
    me = process_start(os.getpid())
    assert me is not None
    stale = _summary(heartbeat_at=OLD, updated_at=OLD, process_start=me)
    assert effective_status(stale) == "running"
    assert effective_status(stale, lock="free") == "running"


def test_a_reused_pid_is_lost():
    # the pid is alive, but it is another process than the one that ran the run
    reused = _summary(process_start="another-boot/12345")
    assert effective_status(reused) == "lost"
    assert effective_status(reused, lock="free") == "lost"


def test_a_free_lock_with_a_dead_pid_is_lost():
    summary = _summary(pid=_dead_pid(), process_start="x/1")
    assert effective_status(summary, lock="free") == "lost"


def test_summaries_without_the_new_fields_keep_the_pid_and_heartbeat_rules():
    assert effective_status(_summary()) == "running"
    assert effective_status(_summary(pid=_dead_pid())) == "lost"
    stale = _summary(heartbeat_at=OLD, updated_at=OLD)
    assert effective_status(stale) == "lost"
    # other hosts: only the heartbeat counts
    assert effective_status(_summary(host="elsewhere", pid=_dead_pid())) == "running"
    assert effective_status({**stale, "host": "elsewhere"}) == "lost"


def test_run_status_uses_the_lock(tmp_path):
    run = RunDir.create(tmp_path, "x", lock=True)
    try:
        run.update_summary(heartbeat_at=OLD, updated_at=OLD, pid=_dead_pid())
        assert run.status() == "running"
    finally:
        run.release()
    assert run.status() == "lost"
    run.acquire()  # lost: free to take over
    run.release()


def test_a_fresh_heartbeat_from_another_host_is_not_taken_over(tmp_path):
    run = RunDir.create(tmp_path, "x")
    run.update_summary(host="elsewhere", pid=1)
    with pytest.raises(RunError, match="is still running"):
        run.acquire()
    # refused before anything was created, the lock file included
    assert not run.owned and lock_state(tmp_path / run.run_id) is None
    assert not (tmp_path / run.run_id / LOCK_NAME).exists()


def _slow_config() -> dict:
    config = small_classification(epochs=40, batch_size=8)
    config["dataset"]["params"]["n_samples"] = 6000
    config["model"]["params"]["layer_sizes"] = [8, 128, 128, 3]
    return config


@pytest.mark.slow
def test_a_stopped_process_stays_running_and_is_never_taken_over(
    tmp_path: Path,
) -> None:
    root = tmp_path
    (root / "pyproject.toml").write_text("")
    write_config(root / "exp.yaml", _slow_config())
    proc = start_cli(["run-experiment", "--config", "exp.yaml", "--quiet"], root)
    try:
        deadline = time.monotonic() + 120
        run_dir = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            found = list((root / "outputs").glob("small-*/metrics.jsonl"))
            if found and len(found[0].read_text().splitlines()) >= 2:
                run_dir = found[0].parent
                break
            time.sleep(0.02)
        assert run_dir is not None, "the run never reached epoch 2"
        proc.send_signal(signal.SIGSTOP)
        time.sleep(0.2)  # let a write in flight land
        # the heartbeat says the process is long gone
        summary = json.loads((run_dir / "summary.json").read_text())
        # progress shows while running (the summary follows each metrics line)
        done_lines = len((run_dir / "metrics.jsonl").read_text().splitlines())
        assert summary["epochs_completed"] >= max(done_lines - 1, 1)
        summary.update(heartbeat_at=OLD, updated_at=OLD)
        (run_dir / "summary.json").write_text(json.dumps(summary))
        listing = run_cli(["runs"], root)
        assert f"{run_dir.name}  running" in listing.stdout, listing.stdout
        shown = run_cli(["runs", "show", run_dir.name], root)
        assert "running" in shown.stdout and "holds the run lock" in shown.stdout
        before = {
            n: (run_dir / n).read_bytes()
            for n in ("metrics.jsonl", "config.yaml", "summary.json")
        }
        for extra in ([], ["--set", "training.epochs=50"]):
            done = run_cli(["run-experiment", "--resume", run_dir.name, *extra], root)
            assert done.returncode == 1
            assert "is still running" in done.stderr, done.stderr
            assert "Traceback" not in done.stderr
            after = {n: (run_dir / n).read_bytes() for n in before}
            assert after == before
    except BaseException:
        proc.kill()
        proc.communicate(timeout=60)
        raise
    finally:
        proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 40
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(1, 41))


def test_a_lost_runs_duration_stops_at_its_last_heartbeat(tmp_path):
    from mlx.runs import format_run

    now = dt.datetime(2024, 5, 1, 13, 0, 0, tzinfo=UTC)
    run = RunDir.create(tmp_path, "x", now=now - dt.timedelta(hours=1))
    last = (now - dt.timedelta(minutes=50)).isoformat()
    run.update_summary(pid=_dead_pid(), epochs_completed=7)
    summary = {**run.read_summary(), "heartbeat_at": last, "updated_at": last}
    run.summary_path.write_text(json.dumps(summary))
    text = format_run(run, now=now)
    assert "Status:" in text and "lost" in text
    assert "Duration:    10m 00s (until its last heartbeat)" in text
    assert "Epochs:      7" in text


def test_a_file_system_without_locks_falls_back_to_pid_and_heartbeat(
    tmp_path, monkeypatch
):
    import errno

    from mlx.runs import lock as lock_module

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock_module._fcntl, "flock", no_locks)
    run = RunDir.create(tmp_path, "x", lock=True)  # created all the same
    assert not run.owned
    assert lock_state(run.path) is None
    assert run.status() == "running"  # this live process, by pid
