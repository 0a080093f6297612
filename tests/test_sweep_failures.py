"""How ``mlx sweep`` names a point that fails: one name in the progress line,
``sweep show``, the JSON and the resume policy, whatever way its process ended.

A point whose process died while the driver watched (a signal, ``os._exit``, exit
code 0 without a finished run) is ``failed``, with the exit code and signal; ``lost``
is only for what no living driver saw end.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from helpers import (
    cli_env,
    run_cli,
    run_cli_process,
    small_classification,
    write_config,
)

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="ray is not installed"
)

_DYING = '''
import os
import signal

from mlx.models import MLP


class Dying(MLP):
    """An MLP whose process ends on purpose at its third training step, while the
    file ``flag`` exists (always when ``flag`` is empty): by a signal, os._exit or
    in its constructor, before its run exists."""

    def __init__(self, how="", flag="", early=False, **params):
        self.how, self.flag, self.early, self.steps = how, flag, early, 0
        if early:
            self._die()
        super().__init__(**params)

    def _die(self):
        if self.how and (not self.flag or os.path.exists(self.flag)):
            if self.how.startswith("exit"):
                os._exit(int(self.how[4:]))
            os.kill(os.getpid(), getattr(signal, self.how))

    def train_step(self, X, y):
        self.steps += 1
        if self.steps == 40:  # in the third epoch: two checkpoints are written
            self._die()
        return super().train_step(X, y)
'''


def _setup(root: Path, how: str, **params: Any) -> None:
    (root / "pyproject.toml").write_text("")
    (root / "dying.py").write_text(_DYING)
    base = small_classification(epochs=4)
    base["model"] = {
        "name": "custom",
        "params": {
            "class_path": "dying:Dying",
            "layer_sizes": [8, 16, 3],
            "output_activation": "softmax",
            "seed": 1,
            "how": how,
            **params,
        },
    }
    write_config(root / "base.yaml", base)
    write_config(
        root / "sweep.yaml",
        {
            "name": "sw",
            "base": "base.yaml",
            "parameters": {"training.seed": {"values": [1]}},
            "metric": "val_accuracy",
        },
    )


def _runs(root: Path) -> dict[str, dict[str, Any]]:
    sweep = root / "outputs" / "sw"
    return {
        path.name: json.loads((path / "summary.json").read_text())
        for path in sorted(sweep.iterdir())
        if (path / "summary.json").is_file()
    }


def _show(root: Path, code: int = 1) -> dict[str, Any]:
    done = run_cli(["sweep", "show", "sw", "--json"], root)
    assert done.returncode == code and "Traceback" not in done.stderr
    return json.loads(done.stdout)


def _ray_env(root: Path) -> dict[str, str]:
    # Ray's memory monitor would kill points when the machine is busy elsewhere
    return cli_env(root, RAY_AUTH_MODE="disabled", RAY_memory_monitor_refresh_ms="0")


def _failed_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if " FAILED " in line]
    assert len(lines) == 1, stderr
    return lines[0]


_DEATHS = [
    (
        "SIGSEGV",
        "exit code -11, killed by SIGSEGV",
        "was killed by SIGSEGV (exit code -11)",
    ),
    (
        "SIGKILL",
        "exit code -9, killed by SIGKILL",
        "was killed by SIGKILL (exit code -9)",
    ),
    (
        "SIGABRT",
        "exit code -6, killed by SIGABRT",
        "was killed by SIGABRT (exit code -6)",
    ),
    ("exit3", "exit code 3", "exited with code 3"),
    ("exit0", "exit code 0", "exited with code 0"),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "shown", "words"), _DEATHS, ids=[d[0] for d in _DEATHS]
)
def test_a_point_that_dies_is_failed_everywhere_and_skip_failed_leaves_it(
    tmp_path: Path, how: str, shown: str, words: str
) -> None:
    _setup(tmp_path, how)
    done = run_cli(["sweep", "--config", "sweep.yaml", "--json"], tmp_path)
    assert done.returncode == 1
    assert f"({shown}); log: " in _failed_line(done.stderr)
    message = f"its process {words} before its run finished"
    assert f"error: {message}" in done.stderr
    [point] = json.loads(done.stdout)["points"]
    assert point["status"] == "failed" and point["error"] == message
    assert _show(tmp_path)["points"] == [point]
    [(run_id, summary)] = _runs(tmp_path).items()
    assert point["run_id"] == run_id
    assert summary["status"] == "failed" and summary["error"] == message
    assert summary["error_type"] == "ProcessDied"
    listed = run_cli(["runs", "--json"], tmp_path)
    assert '"status": "failed"' in listed.stdout and "lost" not in listed.stdout
    # --skip-failed leaves it, once and again: no new run directory
    for _ in range(2):
        again = run_cli(["sweep", "--resume", "sw", "--skip-failed"], tmp_path)
        assert again.returncode == 1
        assert "1 failed point(s) left (--skip-failed)" in again.stderr
        assert "running " not in again.stderr
        assert list(_runs(tmp_path)) == [run_id]
        assert _runs(tmp_path)[run_id] == summary


@pytest.mark.slow
def test_a_point_killed_before_its_run_exists_is_failed_and_left_by_skip_failed(
    tmp_path: Path,
) -> None:
    _setup(tmp_path, "SIGSEGV", early=True)
    done = run_cli(["sweep", "--config", "sweep.yaml"], tmp_path)
    assert done.returncode == 1
    assert "(exit code -11, killed by SIGSEGV); log: " in _failed_line(done.stderr)
    message = "its process was killed by SIGSEGV (exit code -11) before its run began"
    [point] = _show(tmp_path)["points"]
    assert point["status"] == "failed" and point["run_id"] is None
    assert point["error"] == message
    again = run_cli(["sweep", "--resume", "sw", "--skip-failed"], tmp_path)
    assert again.returncode == 1
    assert "1 failed point(s) left (--skip-failed)" in again.stderr
    assert _runs(tmp_path) == {}
    assert _show(tmp_path)["points"] == [point]


@pytest.mark.slow
def test_retrying_a_point_that_died_resumes_its_run_from_the_checkpoint(
    tmp_path: Path,
) -> None:
    flag = tmp_path / "die"
    flag.write_text("")
    _setup(tmp_path, "SIGKILL", flag=str(flag))
    assert run_cli(["sweep", "--config", "sweep.yaml"], tmp_path).returncode == 1
    [run_id] = _runs(tmp_path)
    flag.unlink()
    done = run_cli(["sweep", "--resume", "sw"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "(1 resumed from checkpoints)" in done.stderr
    runs = _runs(tmp_path)
    assert list(runs) == [run_id]  # the same run went on: no new directory
    assert runs[run_id]["status"] == "completed"
    assert runs[run_id]["epochs_completed"] == 4
    assert runs[run_id]["error"] is None and runs[run_id]["error_type"] is None


@pytest.mark.slow
def test_a_point_stopped_by_a_signal_from_outside_is_interrupted_everywhere(
    tmp_path: Path,
) -> None:
    # SIGTERM from outside the sweep: the run checkpoints and says interrupted, and
    # so do the progress line and show; --skip-failed resumes it, as interrupted
    flag = tmp_path / "stop"
    flag.write_text("")
    _setup(tmp_path, "SIGTERM", flag=str(flag))
    done = run_cli(["sweep", "--config", "sweep.yaml"], tmp_path)
    assert done.returncode == 1
    assert " FAILED " not in done.stderr
    assert "(exit code 143; it checkpointed, --resume continues it)" in done.stderr
    [point] = _show(tmp_path, 0)["points"]
    assert point["status"] == "interrupted"
    flag.unlink()
    again = run_cli(["sweep", "--resume", "sw", "--skip-failed"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert "(1 resumed from checkpoints)" in again.stderr
    assert [s["status"] for s in _runs(tmp_path).values()] == ["completed"]


@pytest.mark.slow
@needs_ray
def test_on_ray_a_point_killed_by_a_signal_is_failed_and_left_by_skip_failed(
    tmp_path: Path,
) -> None:
    _setup(tmp_path, "SIGSEGV")
    env = _ray_env(tmp_path)
    args = ["sweep", "--config", "sweep.yaml", "--executor", "ray", "--jobs", "1"]
    done = run_cli_process(args, tmp_path, env=env, timeout=600)
    assert done.returncode == 1, done.stderr
    assert "(exit code -11, killed by SIGSEGV); log: " in _failed_line(done.stderr)
    [point] = _show(tmp_path)["points"]
    assert point["status"] == "failed"
    assert "killed by SIGSEGV" in point["error"]
    [run_id] = _runs(tmp_path)
    again = run_cli_process(
        ["sweep", "--resume", "sw", "--skip-failed", "--executor", "ray"],
        tmp_path,
        env=env,
        timeout=600,
    )
    assert again.returncode == 1
    assert "1 failed point(s) left (--skip-failed)" in again.stderr
    assert "ray: started" not in again.stderr  # nothing to run: Ray never starts
    assert list(_runs(tmp_path)) == [run_id]


# ---------------------------------------------------------------- engines


def _plain_sweep(root: Path) -> None:
    (root / "pyproject.toml").write_text("")
    write_config(root / "base.yaml", small_classification(epochs=1))
    write_config(
        root / "sweep.yaml",
        {
            "name": "sw",
            "base": "base.yaml",
            "parameters": {"training.seed": {"values": [1]}},
        },
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--jobs", "99999999999999999999"],
            "argument --jobs: expected an integer in [1, 4096], "
            "got '99999999999999999999'",
        ),
        (
            ["--executor", "ray", "--jobs", "99999999999999999999"],
            "argument --jobs: expected an integer in [1, 4096]",
        ),
        (
            ["--threads-per-point", "5000"],
            "argument --threads-per-point: expected an integer in [1, 4096], "
            "got '5000'",
        ),
        (
            ["--executor", "ray", "--address", "127.0.0.1:0"],
            "argument --address: the port must be a number in [1, 65535], got '0'",
        ),
        (["--executor", "ray", "--address", "127.0.0.1:70000"], "got '70000'"),
        (
            ["--executor", "ray", "--address", "127.0.0.1"],
            "argument --address: expected HOST:PORT, got '127.0.0.1'",
        ),
        (
            ["--executor", "ray", "--address", "ray://127.0.0.1:10001"],
            "'ray://127.0.0.1:10001' is a Ray Client address",
        ),
    ],
    ids=[
        "jobs",
        "jobs-ray",
        "threads",
        "port-0",
        "port-70000",
        "no-port",
        "ray-client",
    ],
)
def test_arguments_an_engine_would_refuse_are_refused_first(
    tmp_path: Path, args: list[str], message: str
) -> None:
    _plain_sweep(tmp_path)
    done = run_cli(["sweep", "--config", "sweep.yaml", *args], tmp_path)
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "outputs").exists()


def _refusing_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again: nothing listens there


@contextlib.contextmanager
def _server(answer: bytes | None) -> Iterator[int]:
    """A TCP server on 127.0.0.1 that is no Ray: it answers ``answer`` to whatever
    comes, or stays silent (None)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            if answer is not None:
                conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()
        for conn in held:
            conn.close()


@needs_ray
@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("refused", "Connection refused"),
        (
            "http",
            "the server there is not a Ray cluster (it does not answer as Ray's GCS",
        ),
        ("no-such-host.invalid:6379", "cannot resolve 'no-such-host.invalid'"),
    ],
    ids=["refused", "not-ray", "bad-host"],
)
def test_an_unreachable_cluster_is_one_error_line_and_nothing_is_written(
    tmp_path: Path, address: str, message: str
) -> None:
    _plain_sweep(tmp_path)
    with _server(b"HTTP/1.1 400 Bad Request\r\n\r\n") as http:
        address = {
            "refused": f"127.0.0.1:{_refusing_port()}",
            "http": f"127.0.0.1:{http}",
        }.get(address, address)
        args = ["sweep", "--config", "sweep.yaml", "--executor", "ray"]
        done = run_cli([*args, "--address", address], tmp_path)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert (
        lines[0]
        == f"error: cannot reach the Ray cluster at {address}: "
        + lines[0].split(": ", 2)[2]
    )
    assert message in lines[0]
    assert all(line.startswith("hint: ") for line in lines[1:]) and len(lines) <= 2
    assert not (tmp_path / "outputs").exists()


@needs_ray
@pytest.mark.slow
def test_a_silent_server_is_given_up_after_the_probe_time(tmp_path: Path) -> None:
    _plain_sweep(tmp_path)
    with _server(None) as port:
        args = ["sweep", "--config", "sweep.yaml", "--executor", "ray"]
        done = run_cli([*args, "--address", f"127.0.0.1:{port}"], tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"error: cannot reach the Ray cluster at 127.0.0.1:{port}: "
        "no answer within 5s\n"
    )
    assert not (tmp_path / "outputs").exists()


@needs_ray
@pytest.mark.slow
def test_sigterm_while_ray_starts_stops_it_and_releases_the_lock(
    tmp_path: Path,
) -> None:
    _plain_sweep(tmp_path)
    env = _ray_env(tmp_path)
    driver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlx",
            "sweep",
            "--config",
            "sweep.yaml",
            "--executor",
            "ray",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lock = tmp_path / "outputs" / "sw" / "sweep.lock"
    try:
        assert driver.stderr is not None
        for line in driver.stderr:  # announced right before Ray starts
            if "running 1 point(s) on ray" in line:
                break
        driver.send_signal(signal.SIGTERM)
        out, err = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130, err
    assert "error: interrupted" in err and "Traceback" not in err
    assert lock.read_text() == ""  # released: no owner left in it
    again = run_cli_process(
        ["sweep", "--resume", "sw", "--executor", "ray"], tmp_path, env=env, timeout=600
    )
    assert again.returncode == 0, again.stderr
    assert "took over" not in again.stderr


# ---------------------------------------------------------------- the disk


@contextlib.contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _one_error_naming_a_path(stderr: str, under: Path, reason: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert str(under) in lines[0] and lines[0].rstrip(".").endswith(reason), lines
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("free_kib", [0, 4, 8, 12, 16])
def test_a_full_disk_names_the_path_and_leaves_no_owner_in_the_lock(
    tmp_path: Path, free_kib: int
) -> None:
    _plain_sweep(tmp_path)
    with _tmpfs(tmp_path / "outputs", "2m") as outputs:
        filler = outputs / "filler"
        try:
            filler.write_bytes(bytes((2048 - free_kib) * 1024))
        except OSError:
            pass  # as full as it gets
        done = run_cli(["sweep", "--config", "sweep.yaml"], tmp_path)
        assert done.returncode == 1
        if " FAILED " not in done.stderr:  # the driver's own write was refused
            _one_error_naming_a_path(
                done.stderr, outputs / "sw", "No space left on device"
            )
        lock = outputs / "sw" / "sweep.lock"
        assert not lock.exists() or lock.read_text() == ""  # released
        sweep_json = outputs / "sw" / "sweep.json"
        if sweep_json.exists():
            json.loads(sweep_json.read_text())  # whole, never half-written
        filler.unlink(missing_ok=True)
        args = ["--resume", "sw"] if sweep_json.exists() else ["--config", "sweep.yaml"]
        again = run_cli(["sweep", *args], tmp_path)
        assert again.returncode == 0, again.stderr
        assert "took over" not in again.stderr


@pytest.mark.slow
def test_a_read_only_disk_names_the_path(tmp_path: Path) -> None:
    _plain_sweep(tmp_path)
    with _tmpfs(tmp_path / "outputs", "1m") as outputs:
        subprocess.run(["mount", "-o", "remount,ro", str(outputs)], check=True)
        done = run_cli(["sweep", "--config", "sweep.yaml"], tmp_path)
        assert done.returncode == 1
        line = _one_error_naming_a_path(done.stderr, outputs, "is not writable")
        assert line == (
            "error: no point of sweep 'sw' can run here: output.directory: "
            f"{outputs} is not writable"
        )
        # a sweep that exists, on a disk that turned read-only: its lock says so
        subprocess.run(["mount", "-o", "remount,rw", str(outputs)], check=True)
        assert run_cli(["sweep", "--config", "sweep.yaml"], tmp_path).returncode == 0
        (outputs / "sw" / "sweep.lock").unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(outputs)], check=True)
        done = run_cli(["sweep", "--resume", "sw"], tmp_path)
        assert done.returncode == 1
        _one_error_naming_a_path(
            done.stderr, outputs / "sw" / "sweep.lock", "Read-only file system"
        )
