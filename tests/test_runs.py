from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest
import yaml

from mlx.errors import DataWarning, MLXWarning, RunError
from mlx.runs import (
    Heartbeat,
    RunDir,
    effective_status,
    git_state,
    new_run_id,
    open_run,
    parse_run_id,
)
from mlx.runs import store as store_module
from mlx.runs.lock import process_start

REPO_ROOT = Path(__file__).resolve().parents[1]
UTC = dt.timezone.utc


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


@pytest.fixture
def run(tmp_path) -> RunDir:
    return RunDir.create(tmp_path / "outputs", "exp")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- run IDs -------------------------------------------------------------------------


def test_new_run_id_format_and_parse():
    now = dt.datetime(2024, 5, 1, 12, 0, 3, tzinfo=UTC)
    run_id = new_run_id("mnist", now)
    assert run_id.startswith("mnist-20240501-120003-")
    parsed = parse_run_id(run_id)
    assert parsed is not None
    assert parsed.name == "mnist"
    assert parsed.started == now
    assert len(parsed.suffix) == 4 and int(parsed.suffix, 16) >= 0


def test_new_run_id_uses_utc_and_sanitises_names():
    local = dt.datetime(2024, 5, 1, 14, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with pytest.warns(MLXWarning, match="the run ID starts with 'my-exp-v2'"):
        assert new_run_id("my exp/v2", local).startswith("my-exp-v2-20240501-120000-")
    with pytest.warns(MLXWarning, match="starts with 'run'"):
        assert new_run_id("../..", local).startswith("run-20240501-120000-")


def test_run_ids_sort_by_time():
    times = [dt.datetime(2024, 1, d, h, tzinfo=UTC) for d in (1, 2) for h in (9, 10)]
    ids = [new_run_id("exp", t) for t in times]
    assert sorted(ids) == ids


def test_parse_run_id_rejects_other_names():
    assert parse_run_id("mnist-experiment") is None
    assert parse_run_id("exp-20241399-000000-abcd") is None


# -- creation ------------------------------------------------------------------------


def test_create_makes_directory_and_running_summary(tmp_path):
    run = RunDir.create(tmp_path / "a" / "b", "exp")
    assert run.path.parent == tmp_path / "a" / "b"
    assert run.path.name == run.run_id
    summary = run.read_summary()
    assert summary["status"] == "running"
    assert summary["run_id"] == run.run_id
    assert summary["name"] == "exp"
    assert summary["pid"] == os.getpid()
    assert summary["host"] == socket.gethostname()
    assert summary["epochs_completed"] == 0
    assert run.status() == "running"
    assert run.name == "exp"


def test_create_retries_on_collision(tmp_path, monkeypatch):
    real = os.urandom
    calls = []

    def same_suffix_twice(n):
        calls.append(n)
        return b"\x00" * n if len(calls) <= 2 else real(n)

    monkeypatch.setattr(os, "urandom", same_suffix_twice)
    now = dt.datetime(2024, 1, 1, tzinfo=UTC)
    first = RunDir.create(tmp_path, "exp", now=now)
    second = RunDir.create(tmp_path, "exp", now=now)
    assert first.run_id == "exp-20240101-000000-0000"
    assert second.run_id != first.run_id
    assert second.run_id.startswith("exp-20240101-000000-")
    assert first.read_summary()["pid"] == os.getpid()


_CREATE_SCRIPT = textwrap.dedent(
    """
    import datetime, os, sys, time
    from mlx.runs import RunDir
    real = os.urandom
    calls = []
    def first_suffix_fixed(n):
        # every process first tries the same ID, so all but one must retry
        calls.append(n)
        return b"\\0" * n if len(calls) == 1 else real(n)
    os.urandom = first_suffix_fixed
    go = sys.argv[2]
    while not os.path.exists(go):
        time.sleep(0.001)
    now = datetime.datetime(2024, 1, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
    print(RunDir.create(sys.argv[1], "same", now=now).run_id)
    """
)


def test_concurrent_creation_gives_distinct_directories(tmp_path):
    root = tmp_path / "outputs"
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CREATE_SCRIPT, str(root), str(go)],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    # released together; the fixed time and first suffix force collisions anyway
    go.touch()
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err for _, err in outputs]
    ids = [out.strip() for out, _ in outputs]
    assert len(set(ids)) == 6
    assert sorted(os.listdir(root)) == sorted(ids)
    assert "same-20240101-120000-0000" in ids
    pids = {RunDir(root / i).read_summary()["pid"] for i in ids}
    assert pids == {p.pid for p in procs}


def test_create_reports_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RunError, match="Cannot create the output directory"):
        RunDir.create(blocker / "sub", "exp")


# -- config and environment ----------------------------------------------------------


def test_write_config_keeps_order_and_copies_original(run, tmp_path):
    original = tmp_path / "exp.json"
    original.write_text('{"name": "exp"}')
    config = MappingProxyType(
        {"name": "exp", "dataset": MappingProxyType({"name": "mnist"}), "sizes": (1, 2)}
    )
    path = run.write_config(config, original_path=original)
    assert path == run.path / "config.yaml"
    text = path.read_text()
    assert text.index("name: exp") < text.index("dataset:") < text.index("sizes:")
    assert yaml.safe_load(text) == {
        "name": "exp",
        "dataset": {"name": "mnist"},
        "sizes": [1, 2],
    }
    assert (run.path / "original_config.json").read_bytes() == original.read_bytes()
    assert run.read_config()["dataset"] == {"name": "mnist"}


def test_write_config_accepts_to_dict_objects(run):
    class Config:
        def to_dict(self):
            return {"b": 1, "a": 2}

    run.write_config(Config())
    assert run.config_path.read_text() == "b: 1\na: 2\n"


def test_write_config_errors(run, tmp_path):
    with pytest.raises(RunError, match="mapping"):
        run.write_config([1, 2])
    with pytest.raises(RunError, match="original config"):
        run.write_config({}, original_path=tmp_path / "missing.yaml")


def test_write_environment(run):
    path = run.write_environment(extra={"seed": 42})
    env = json.loads(path.read_text())
    assert env["numpy"] == np.__version__
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["argv"] == sys.argv
    assert env["cwd"] == os.getcwd()
    assert env["seed"] == 42
    for key in ("mlx", "platform", "blas", "threadpools", "git"):
        assert key in env


def test_git_state(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    assert git_state(tmp_path) is None
    git = [
        "git",
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@e",
        "-c",
        "commit.gpgsign=false",
    ]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "f.txt").write_text("1")
    subprocess.run([*git, "add", "f.txt"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=tmp_path, check=True)
    state = git_state(tmp_path)
    assert state is not None and len(state["commit"]) == 40
    assert state["dirty"] is False
    (tmp_path / "f.txt").write_text("2")
    assert git_state(tmp_path)["dirty"] is True


# -- metrics log ---------------------------------------------------------------------


def test_metrics_round_trip(run):
    assert run.read_metrics() == []
    run.append_metrics({"epoch": 1, "train_loss": np.float32(0.5), "note": "a\u2028b"})
    run.append_metrics({"epoch": 2, "train_loss": 0.25})
    assert run.read_metrics() == [
        {"epoch": 1, "train_loss": 0.5, "note": "a\u2028b"},
        {"epoch": 2, "train_loss": 0.25},
    ]


def test_torn_metrics_line_is_skipped_with_warning(run):
    run.append_metrics({"epoch": 1})
    with open(run.metrics_path, "ab") as handle:
        handle.write(b'{"epoch": 2, "train_lo')  # the crash cut this line short
    with pytest.warns(DataWarning, match=r"metrics\.jsonl:2: skipped a torn"):
        assert run.read_metrics() == [{"epoch": 1}]
    run.append_metrics({"epoch": 2})  # resuming writes on a fresh line
    with pytest.warns(DataWarning, match=r"metrics\.jsonl:2:"):
        assert run.read_metrics() == [{"epoch": 1}, {"epoch": 2}]


def test_non_object_metrics_line_is_skipped(run):
    run.metrics_path.write_text('{"epoch": 1}\n[1, 2]\n{"epoch": 2}\n')
    with pytest.warns(DataWarning, match=":2:"):
        assert [r["epoch"] for r in run.read_metrics()] == [1, 2]


def test_truncate_metrics_keeps_first_epochs(run):
    for epoch in (1, 2, 3, 4):
        run.append_metrics({"epoch": epoch, "loss": 1.0 / epoch})
    run.append_metrics({"phase": "test"})
    assert run.truncate_metrics(2) == 3
    assert run.read_metrics() == [
        {"epoch": 1, "loss": 1.0},
        {"epoch": 2, "loss": 0.5},
        {"phase": "test"},
    ]


def test_append_metrics_rejects_non_mappings(run):
    with pytest.raises(RunError, match="mapping"):
        run.append_metrics([1, 2])


# -- checkpoints ---------------------------------------------------------------------


def _writer(text: str):
    def write(path: Path) -> None:
        (path / "weights.bin").write_text(text)
        (path / "trainer_state.json").write_text(json.dumps({"epoch": text}))

    return write


def test_save_checkpoint_publishes_and_points_last(run):
    assert run.latest_checkpoint() is None
    first = run.save_checkpoint(1, _writer("1"))
    assert first == run.checkpoint_dir(1) == run.path / "checkpoints" / "epoch-0001"
    second = run.save_checkpoint(2, _writer("2"))
    assert os.readlink(run.checkpoints_dir / "last") == "epoch-0002"
    assert run.latest_checkpoint() == second
    assert (second / "weights.bin").read_text() == "2"
    assert [e for e, _ in run.list_checkpoints()] == [1, 2]
    assert sorted(os.listdir(run.checkpoints_dir)) == [
        "epoch-0001",
        "epoch-0002",
        "last",
    ]


def test_crash_inside_write_fn_keeps_previous_checkpoint(run):
    run.save_checkpoint(1, _writer("1"))

    def crash(path: Path) -> None:
        (path / "weights.bin").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run.save_checkpoint(2, crash)
    assert run.latest_checkpoint() == run.checkpoint_dir(1)
    assert (run.checkpoint_dir(1) / "weights.bin").read_text() == "1"
    assert sorted(os.listdir(run.checkpoints_dir)) == ["epoch-0001", "last"]


def test_killed_process_leftovers_are_ignored_then_cleaned(run):
    run.save_checkpoint(1, _writer("1"))
    stale = run.checkpoints_dir / ".tmp-epoch-0002-deadbeef"
    stale.mkdir()
    (stale / "weights.bin").write_text("partial")
    assert run.latest_checkpoint() == run.checkpoint_dir(1)
    assert [e for e, _ in run.list_checkpoints()] == [1]
    run.save_checkpoint(2, _writer("2"))
    assert not stale.exists()
    assert run.latest_checkpoint() == run.checkpoint_dir(2)


def test_latest_checkpoint_falls_back_to_highest_epoch(run):
    run.save_checkpoint(1, _writer("1"))
    run.save_checkpoint(12, _writer("12"))
    run.save_checkpoint(3, _writer("3"))
    assert run.latest_checkpoint() == run.checkpoint_dir(3)  # `last` is the newest save
    os.unlink(run.checkpoints_dir / "last")
    assert run.latest_checkpoint() == run.checkpoint_dir(12)
    os.symlink("epoch-0099", run.checkpoints_dir / "last")  # dangling
    assert run.latest_checkpoint() == run.checkpoint_dir(12)


def test_checkpoints_without_symlinks(run, monkeypatch):
    def no_symlinks(*_args):
        raise OSError("no symlinks here")

    monkeypatch.setattr(os, "symlink", no_symlinks)
    run.save_checkpoint(1, _writer("1"))
    run.save_checkpoint(2, _writer("2"))
    assert (run.checkpoints_dir / "last").read_text().strip() == "epoch-0002"
    assert run.latest_checkpoint() == run.checkpoint_dir(2)


def test_resaving_an_epoch_replaces_it(run):
    run.save_checkpoint(1, _writer("a"))
    run.save_checkpoint(1, _writer("b"))
    assert (run.checkpoint_dir(1) / "weights.bin").read_text() == "b"
    assert sorted(os.listdir(run.checkpoints_dir)) == ["epoch-0001", "last"]


@pytest.mark.parametrize(
    "epoch", [-1, 1.5, True, "3"], ids=["neg", "float", "bool", "str"]
)
def test_checkpoint_epoch_must_be_a_non_negative_int(run, epoch):
    with pytest.raises(RunError, match="integer >= 0"):
        run.checkpoint_dir(epoch)


def test_save_model_via_temp_dir(run):
    assert run.save_model(_writer("final")) == run.model_dir
    with pytest.raises(ValueError):
        run.save_model(lambda p: (_ for _ in ()).throw(ValueError("bad")))
    assert (run.model_dir / "weights.bin").read_text() == "final"
    assert not [n for n in os.listdir(run.path) if n.startswith(".tmp-")]


# -- evaluations ---------------------------------------------------------------------


def test_write_eval_never_overwrites(run):
    now = dt.datetime(2024, 5, 1, 12, 0, 3, 123456, tzinfo=UTC)
    paths = [run.write_eval({"accuracy": i / 10}, now=now) for i in range(3)]
    assert [p.name for p in paths] == [
        "20240501T120003.123456Z.json",
        "20240501T120003.123457Z.json",
        "20240501T120003.123458Z.json",
    ]
    assert [json.loads(p.read_text())["accuracy"] for p in paths] == [0.0, 0.1, 0.2]
    assert run.list_evals() == paths
    assert sorted(os.listdir(run.evals_dir)) == [p.name for p in paths]


# -- summary and status --------------------------------------------------------------


def test_mark_completed(run):
    run.heartbeat(epochs_completed=3)
    summary = run.mark_completed(
        {"accuracy": 0.9},
        best_metric={"name": "accuracy", "value": 0.91, "epoch": 2},
        epochs_completed=3,
        timings={"total_seconds": 1.5},
    )
    assert summary == run.read_summary()
    assert summary["status"] == "completed"
    assert summary["final_metrics"] == {"accuracy": 0.9}
    assert summary["best_metric"]["epoch"] == 2
    assert summary["timings"] == {"total_seconds": 1.5}
    assert summary["finished_at"] is not None
    assert run.status() == "completed"


def test_mark_failed_and_interrupted(tmp_path):
    failed = RunDir.create(tmp_path, "a")
    summary = failed.mark_failed(ValueError("loss is nan"))
    assert summary["status"] == "failed"
    assert summary["error"] == "ValueError: loss is nan"
    assert summary["error_type"] == "ValueError"
    stopped = RunDir.create(tmp_path, "b")
    assert stopped.mark_interrupted()["status"] == "interrupted"
    assert stopped.status() == "interrupted"


def test_heartbeat_never_changes_status(run):
    run.mark_completed({})
    run.heartbeat(status="running", epochs_completed=2)
    assert run.read_summary()["status"] == "completed"
    assert run.read_summary()["epochs_completed"] == 2


def _summary(**fields) -> dict:
    now = dt.datetime.now(UTC).isoformat()
    base = {"status": "running", "pid": os.getpid(), "host": socket.gethostname()}
    base.update(heartbeat_at=now, heartbeat_interval=10.0)
    base.update(fields)
    return base


def test_effective_status_dead_pid_is_lost():
    assert effective_status(_summary()) == "running"
    assert effective_status(_summary(pid=_dead_pid())) == "lost"
    # a pid on another host cannot be checked: only the heartbeat counts there
    assert effective_status(_summary(pid=_dead_pid(), host="elsewhere")) == "running"


def test_effective_status_stale_heartbeat_is_lost():
    now = dt.datetime.now(UTC)
    old = (now - dt.timedelta(seconds=61)).isoformat()
    assert effective_status(_summary(heartbeat_at=old, host="elsewhere")) == "lost"
    recent = (now - dt.timedelta(seconds=59)).isoformat()
    assert effective_status(_summary(heartbeat_at=recent)) == "running"
    # with a 30 s interval, three missed beats (90 s) make it stale
    slow = _summary(heartbeat_at=old, heartbeat_interval=30)
    assert effective_status(slow) == "running"
    assert effective_status(slow, now + dt.timedelta(seconds=30)) == "lost"
    assert effective_status(_summary(heartbeat_at=None, updated_at=None)) == "lost"
    # any later summary write counts as a sign of life
    assert effective_status(_summary(heartbeat_at=old, updated_at=recent)) == "running"


def test_finished_runs_are_never_lost():
    old = "2000-01-01T00:00:00+00:00"
    for status in ("completed", "failed", "interrupted"):
        summary = _summary(status=status, pid=_dead_pid(), heartbeat_at=old)
        assert effective_status(summary) == status


def test_run_with_dead_pid_reports_lost(run):
    run.update_summary(pid=_dead_pid())
    assert run.status() == "lost"


def test_mark_running_takes_over_a_lost_run(run):
    run.update_summary(pid=_dead_pid())
    summary = run.mark_running()
    assert summary["pid"] == os.getpid()
    assert len(summary["resumed_at"]) == 1
    assert run.status() == "running"


def test_mark_running_refuses_a_live_run_of_another_process(run):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        # a live process of its own: the pid and that process's start time
        run.update_summary(pid=proc.pid, process_start=process_start(proc.pid))
        with pytest.raises(RunError, match="is still running"):
            run.mark_running()
    finally:
        proc.kill()
        proc.wait()


def test_mark_running_resumes_a_finished_run(run):
    run.mark_interrupted()
    summary = run.mark_running(epochs_completed=4)
    assert summary["status"] == "running"
    assert summary["finished_at"] is None and summary["error"] is None
    assert summary["epochs_completed"] == 4
    assert len(summary["resumed_at"]) == 1


def test_open_run_errors(tmp_path):
    with pytest.raises(RunError, match="No run directory"):
        open_run(tmp_path / "missing")
    empty = tmp_path / "exp-20240101-000000-abcd"
    empty.mkdir()
    with pytest.raises(RunError, match="no summary.json"):
        open_run(empty)
    (empty / "summary.json").write_text('{"status": "runn')
    with pytest.raises(RunError, match="corrupt summary"):
        open_run(empty)


def test_heartbeat_thread_refreshes_and_stops(run):
    old = "2000-01-01T00:00:00+00:00"
    # on this host the live pid would decide; on another only the heartbeat counts
    summary = {**run.read_summary(), "heartbeat_at": old, "updated_at": old}
    summary["host"] = "elsewhere"
    run.summary_path.write_text(json.dumps(summary))
    assert run.status() == "lost"
    with Heartbeat(run, interval=0.01) as beat:
        assert run.status() == "running"  # the first beat happens on start
        assert run.read_summary()["heartbeat_interval"] == 0.01
        deadline = time.monotonic() + 30
        while beat.beats < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert beat.beats >= 3
    assert not beat.running
    count = beat.beats
    time.sleep(0.05)
    assert beat.beats == count
    assert beat.last_error is None


@pytest.mark.parametrize(
    "interval", [0, -1, "10", True], ids=["zero", "neg", "str", "bool"]
)
def test_heartbeat_interval_must_be_positive(run, interval):
    with pytest.raises(RunError, match="'interval' parameter of Heartbeat"):
        Heartbeat(run, interval)


def test_heartbeat_and_summary_writes_never_tear(run):
    """The heartbeat thread and the training thread update the summary at the same
    time; a reader polling the file always sees complete JSON and no update is lost."""
    errors = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                json.loads(run.summary_path.read_text())
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    watcher = threading.Thread(target=reader)
    watcher.start()
    try:
        with Heartbeat(run, interval=0.001) as beat:
            for epoch in range(1, 101):
                run.heartbeat(epochs_completed=epoch)
    finally:
        stop.set()
        watcher.join()
    assert errors == []
    assert beat.last_error is None
    summary = run.read_summary()
    assert summary["epochs_completed"] == 100
    assert summary["heartbeat_interval"] == 0.001
    assert not [n for n in os.listdir(run.path) if n.endswith(".tmp")]


def test_heartbeat_errors_do_not_stop_training(run, monkeypatch):
    def broken(**_fields):
        raise OSError("disk full")

    monkeypatch.setattr(run, "heartbeat", broken)
    with Heartbeat(run, interval=0.01) as beat:
        pass
    assert isinstance(beat.last_error, OSError)


def test_import_does_not_load_numpy_or_yaml():
    code = (
        "import sys, mlx.runs, mlx.utils.atomic; "
        "print('numpy' in sys.modules, 'yaml' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["False", "False"]


def test_locks_are_shared_per_directory(run):
    assert store_module._lock_for(run.path) is RunDir(run.path)._lock
