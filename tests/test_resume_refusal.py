"""A refused `--resume` changes nothing: ownership and every check come first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_cli, run_cli_process, small_classification, write_config

from mlx.runs.lock import process_start

_WATCHED = ("metrics.jsonl", "config.yaml", "summary.json", "data.json")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


def _finished_run(root: Path, **training: object) -> Path:
    config = small_classification(**{"epochs": 5, **training})
    config["output"]["checkpoint_frequency"] = 3
    write_config(root / "exp.yaml", config)
    done = run_cli(["run-experiment", "--config", "exp.yaml", "--quiet"], root)
    assert done.returncode == 0, done.stderr
    (run_dir,) = (root / "outputs").iterdir()
    return run_dir


def _snapshot(run_dir: Path) -> dict:
    files = {name: (run_dir / name).read_bytes() for name in _WATCHED}
    files["model"] = (run_dir / "model" / "model.safetensors").read_bytes()
    files["entries"] = sorted(p.name for p in run_dir.iterdir())
    return files


def _refused(root: Path, run_dir: Path, extra: list, message: str) -> None:
    before = _snapshot(run_dir)
    done = run_cli(["run-experiment", "--resume", run_dir.name, *extra], root)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors and message in errors[0], done.stderr
    assert _snapshot(run_dir) == before


def _pretend_running(run_dir: Path, pid: int) -> None:
    """What a live run's summary looks like: running, epoch 5 of its 5."""
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.update(
        status="running",
        pid=pid,
        process_start=process_start(pid),
        finished_at=None,
    )
    (run_dir / "summary.json").write_text(json.dumps(summary))


@pytest.mark.parametrize("extra", [[], ["--set", "training.epochs=9"]], ids=str)
def test_a_run_whose_lock_is_held_is_refused_and_untouched(
    root: Path, extra: list
) -> None:
    run_dir = _finished_run(root)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(run_dir / 'run.lock')!r}, os.O_RDWR)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        _pretend_running(run_dir, holder.pid)
        _refused(root, run_dir, extra, "is still running")
        listing = run_cli(["runs"], root)
        assert " running " in listing.stdout
    finally:
        holder.kill()
        holder.communicate(timeout=30)
    # the lock went with its process: the run is lost now and resumes
    assert " lost " in run_cli(["runs"], root).stdout
    done = run_cli(["run-experiment", "--resume", run_dir.name, "--quiet"], root)
    assert done.returncode == 0, done.stderr


def test_a_live_pid_without_a_lock_file_is_refused(root: Path) -> None:
    # a run written by a version without run.lock: its live process still counts
    run_dir = _finished_run(root)
    (run_dir / "run.lock").unlink()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _pretend_running(run_dir, sleeper.pid)
        _refused(root, run_dir, ["--set", "training.epochs=9"], "is still running")
    finally:
        sleeper.kill()
        sleeper.wait(timeout=30)


def _state_file(run_dir: Path) -> Path:
    return (run_dir / "checkpoints" / "last").resolve() / "trainer_state.json"


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "missing or corrupt"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"epoch": "five"}', "field 'epoch' must be an integer"),
        ('{"epoch": 5, "step": -1}', "field 'step' must be an integer"),
        ('{"epoch": 5, "loss_sum": NaN}', "field 'loss_sum' must be a finite"),
        ('{"epoch": 2}', "not the checkpoint it lies in"),
    ],
    ids=["not-json", "a-list", "epoch-text", "negative-step", "nan", "wrong-epoch"],
)
def test_a_bad_trainer_state_changes_nothing(
    root: Path, content: str, message: str
) -> None:
    run_dir = _finished_run(root)
    state = _state_file(run_dir)
    if content.startswith('{"epoch"'):
        # keep the rest of the real state, so only the field under test is wrong
        real = json.loads(state.read_text())
        real.update(json.loads(content.replace("NaN", '"nan"')))
        if "NaN" in content:
            text = json.dumps(real).replace('"nan"', "NaN")
        else:
            text = json.dumps(real)
        state.write_text(text)
    else:
        state.write_text(content)
    _refused(root, run_dir, ["--set", "training.epochs=9"], message)


def test_a_corrupt_checkpoint_changes_nothing(root: Path) -> None:
    run_dir = _finished_run(root)
    weights = (run_dir / "checkpoints" / "last").resolve() / "model.safetensors"
    weights.write_bytes(b"not a tensor file")
    _refused(root, run_dir, ["--set", "training.epochs=9"], "error")


def test_changed_data_changes_nothing(root: Path) -> None:
    run_dir = _finished_run(root)
    record = json.loads((run_dir / "data.json").read_text())
    record["train"]["sha256"] = "0" * 64
    (run_dir / "data.json").write_text(json.dumps(record))
    _refused(root, run_dir, ["--set", "training.epochs=9"], "differs from the one")


def test_a_changed_config_changes_nothing(root: Path) -> None:
    run_dir = _finished_run(root)
    _refused(
        root, run_dir, ["--set", "training.learning_rate=0.5"], "configuration changed"
    )


@pytest.mark.parametrize("epochs", [1, 4], ids=["far-below", "one-below"])
def test_lowering_epochs_below_those_done_is_refused(root: Path, epochs: int) -> None:
    run_dir = _finished_run(root)
    _refused(
        root,
        run_dir,
        ["--set", f"training.epochs={epochs}"],
        f"training.epochs {epochs} is below the 5 epochs",
    )


def test_lowering_epochs_of_a_lost_run_past_its_checkpoint_is_refused(
    root: Path,
) -> None:
    # lost at epoch 5 with its checkpoint at 3: the metrics show 5 epochs done
    run_dir = _finished_run(root)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=30)
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.update(status="running", pid=dead.pid, finished_at=None)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    shutil_target = run_dir / "checkpoints" / "epoch-0005"
    import shutil

    shutil.rmtree(shutil_target)
    (run_dir / "checkpoints" / "last").unlink()
    _refused(root, run_dir, ["--set", "training.epochs=4"], "below the 5 epochs")
    # resuming to the same length retrains epochs 4 and 5 and ends completed
    done = run_cli(["run-experiment", "--resume", run_dir.name, "--quiet"], root)
    assert done.returncode == 0, done.stderr
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4, 5]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 5
    segments = summary["timings"]["segments"]
    assert [s["status"] for s in segments] == ["completed", "lost", "completed"]
    assert summary["timings"]["total_seconds"] == pytest.approx(
        sum(s.get("total_seconds", 0.0) for s in segments)
    )
    assert not [p for p in run_dir.iterdir() if p.name.startswith((".tmp", ".old"))]


def _stopped_inside_epoch_5(root: Path) -> Path:
    """A run as SIGTERM leaves it 3 batches into epoch 5 (of 15): its newest
    checkpoint epoch-0004-step-00000063, epoch-0004 before it, 4 epochs of metrics."""
    config = small_classification(epochs=5)
    write_config(root / "exp.yaml", config)
    done = run_cli(["run-experiment", "--config", "exp.yaml", "--quiet"], root)
    assert done.returncode == 0, done.stderr
    (run_dir,) = (root / "outputs").iterdir()
    checkpoints = run_dir / "checkpoints"
    inside = checkpoints / "epoch-0004-step-00000063"
    (checkpoints / "epoch-0005").rename(inside)
    state = json.loads((inside / "trainer_state.json").read_text())
    state.update(epoch=4, batch=3, step=63, loss_sum=0.3, loss_count=96)
    (inside / "trainer_state.json").write_text(json.dumps(state))
    (checkpoints / "last").unlink()
    (checkpoints / "last").symlink_to(inside.name)
    metrics = run_dir / "metrics.jsonl"
    metrics.write_text("".join(metrics.read_text().splitlines(True)[:4]))
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.update(status="interrupted", epochs_completed=4)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


def test_finishing_at_the_epoch_done_publishes_that_epoch_not_the_batches_after(
    root: Path,
) -> None:
    run_dir = _stopped_inside_epoch_5(root)
    done = run_cli(
        ["run-experiment", "--resume", run_dir.name, "--set", "training.epochs=4"],
        root,
    )
    assert done.returncode == 0, done.stderr
    model = (run_dir / "model" / "model.safetensors").read_bytes()
    epoch_4 = run_dir / "checkpoints" / "epoch-0004" / "model.safetensors"
    assert model == epoch_4.read_bytes()
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["status"], summary["epochs_completed"], last["epoch"]) == (
        "completed",
        4,
        4,
    )
    assert summary["final_metrics"]["val_loss"] == last["val_loss"]
    # the batches into epoch 5 are still there to continue from
    longer = ["--resume", run_dir.name, "--set", "training.epochs=5", "--quiet"]
    assert run_cli(["run-experiment", *longer], root).returncode == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["status"], summary["epochs_completed"]) == ("completed", 5)


@pytest.mark.parametrize("damage", ["removed", "not-a-boundary"])
def test_finishing_at_the_epoch_done_without_its_checkpoint_is_refused(
    root: Path, damage: str
) -> None:
    run_dir = _stopped_inside_epoch_5(root)
    epoch_4 = run_dir / "checkpoints" / "epoch-0004"
    if damage == "removed":
        import shutil

        shutil.rmtree(epoch_4)
    else:
        state = json.loads((epoch_4 / "trainer_state.json").read_text())
        state.update(batch=2)
        (epoch_4 / "trainer_state.json").write_text(json.dumps(state))
    _refused(
        root,
        run_dir,
        ["--set", "training.epochs=4"],
        "training.epochs 4 ends at epoch 4, but its newest checkpoint "
        "epoch-0004-step-00000063 is 3 batch(es) into epoch 5",
    )


_DIES = '''
import os
import signal
from pathlib import Path

from mlx.models import MLP


class Dies(MLP):
    """An MLP whose process is killed (SIGKILL) after the number of training steps
    written in the file ``after``, while that file exists: a machine that dies."""

    def __init__(self, after="", **params):
        self.after = after
        self._steps = 0
        super().__init__(**params)

    def train_step(self, X, y):
        self._steps += 1
        if self.after and Path(self.after).exists():
            if self._steps > int(Path(self.after).read_text()):
                os.kill(os.getpid(), signal.SIGKILL)
        return super().train_step(X, y)
'''


@pytest.mark.slow
def test_two_lost_processes_both_keep_their_segment(root: Path) -> None:
    # 480 training samples in batches of 32: 15 steps an epoch
    (root / "dies.py").write_text(_DIES)
    after = root / "after"
    config = small_classification(epochs=5)
    config["model"] = {
        "name": "custom",
        "params": {
            "class_path": "dies:Dies",
            "after": str(after),
            "layer_sizes": [8, 16, 3],
            "output_activation": "softmax",
            "seed": 1,
        },
    }
    write_config(root / "exp.yaml", config)
    after.write_text("40")  # killed 10 steps into epoch 3
    first = run_cli_process(["run-experiment", "--config", "exp.yaml", "--quiet"], root)
    assert first.returncode == -9, first.stderr
    (run_dir,) = (root / "outputs").iterdir()
    after.write_text("20")  # from epoch 2: killed 5 steps into epoch 4
    second = run_cli_process(
        ["run-experiment", "--resume", run_dir.name, "--quiet"], root
    )
    assert second.returncode == -9, second.stderr
    after.unlink()
    third = run_cli(["run-experiment", "--resume", run_dir.name, "--quiet"], root)
    assert third.returncode == 0, third.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    segments = summary["timings"]["segments"]
    assert [s["status"] for s in segments] == ["lost", "lost", "completed"]
    # a process resumes from the newest checkpoint, which may lag the epochs done
    # while its writer was still at work when the process was killed
    (a, b), (c, d), (e, f) = (s["epochs"] for s in segments)
    assert (a, b) == (0, 2) and c in (1, 2) and d == c + 1 and e <= d and f == 5
    assert summary["timings"]["total_seconds"] == pytest.approx(
        sum(s["total_seconds"] for s in segments)
    )
    shown = run_cli(["runs", "show", run_dir.name], root).stdout
    assert "over 3 segments" in shown and f"lost, epochs {c} -> {d}" in shown


def _every_entry(run_dir: Path) -> dict:
    """Bytes and modification time of every file and folder of the run."""
    entries = {}
    for path in sorted([run_dir, *run_dir.rglob("*")]):
        stat = path.stat()
        content = path.read_bytes() if path.is_file() else None
        entries[str(path.relative_to(run_dir))] = (content, stat.st_mtime_ns)
    return entries


@pytest.mark.parametrize(
    "extra",
    [[], ["--set", "training.epochs=5"], ["--set", "output.save_logs=false"]],
    ids=["plain", "same-epochs", "output-option"],
)
def test_resuming_a_completed_run_with_nothing_to_train_changes_nothing(
    root: Path, extra: list
) -> None:
    run_dir = _finished_run(root)
    before = _every_entry(run_dir)
    for json_flag in ([], ["--json"]):
        done = run_cli(
            ["run-experiment", "--resume", run_dir.name, *extra, *json_flag], root
        )
        assert done.returncode == 0, done.stderr
        assert (
            f"run {run_dir.name} already completed its 5 epochs; nothing changed"
            in done.stderr
        )
        if json_flag:
            record = json.loads(done.stdout)
            assert record["status"] == "completed"
            summary = json.loads((run_dir / "summary.json").read_text())
            assert record["final_metrics"] == summary["final_metrics"]
    assert _every_entry(run_dir) == before
    # raising the epochs still trains on from the last checkpoint
    more = run_cli(
        ["run-experiment", "--resume", run_dir.name, "--set", "training.epochs=6"],
        root,
    )
    assert more.returncode == 0, more.stderr
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4, 5, 6]
