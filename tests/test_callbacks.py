"""training.callbacks: the user's hooks, called in order, their state resumed, their
errors located (at the dry run for a class that does not load, at the line it
raised for one that raises)."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import cli_env, run_cli, small_classification, write_config

_CALLBACK = """\
import json
import os


class Recorder:
    def __init__(self, stop_at=None):
        self.stop_at = stop_at
        self.epochs = []

    def on_train_start(self, run):
        self._note(["start", run.run_id, str(run.directory), run.config.name])

    def on_epoch_end(self, epoch, metrics):
        if os.environ.get("CALLBACK_FAILS") == "epoch":
            raise ValueError("no good")
        self.epochs.append(epoch)
        self._note(["epoch", epoch, sorted(metrics), list(self.epochs)])
        return epoch == self.stop_at

    def on_train_end(self, run, status):
        self._note(["end", status])

    def state_dict(self):
        return {"epochs": self.epochs}

    def load_state_dict(self, state):
        self.epochs = list(state["epochs"])

    def _note(self, line):
        with open(os.environ["CALLBACK_LOG"], "a") as handle:
            handle.write(json.dumps(line) + "\\n")
"""
_RAISE_LINE = 15


def _project(root: Path, **training: object) -> Path:
    (root / "mine").mkdir()
    (root / "mine" / "__init__.py").write_text("")
    module = root / "mine" / "cb.py"
    module.write_text(_CALLBACK)
    config = small_classification(epochs=3, **training)
    write_config(root / "c.yaml", config)
    return module


def _notes(path: Path) -> list[list[object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_hooks_run_in_order_stop_the_run_and_resume_their_state(tmp_path: Path) -> None:
    _project(
        tmp_path,
        callbacks=[{"class_path": "mine.cb:Recorder", "params": {"stop_at": 2}}],
    )
    log = tmp_path / "calls.jsonl"
    env = cli_env(tmp_path, CALLBACK_LOG=str(log))
    done = run_cli(
        ["run-experiment", "--config", "c.yaml", "--quiet"], tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr
    (run,) = (tmp_path / "outputs").iterdir()
    metrics = ["train_loss", "val_accuracy", "val_loss"]
    assert _notes(log) == [
        ["start", run.name, str(run), "small"],
        ["epoch", 1, metrics, [1]],
        ["epoch", 2, metrics, [1, 2]],
        ["end", "completed"],
    ]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["stopped_early"] is True and summary["stopped_epoch"] == 2
    assert summary["epochs_completed"] == 2
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    state = json.loads(
        (run / "checkpoints" / "last" / "trainer_state.json").read_text()
    )
    assert state["callbacks"] == [{"epochs": [1, 2]}]
    assert state["stopped_epoch"] == 2
    # a run that stopped early is complete: resuming it changes nothing
    before = (run / "summary.json").read_bytes()
    again = run_cli(["run-experiment", "--resume", run.name], tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert (run / "summary.json").read_bytes() == before
    # the callback's state comes back from the checkpoint on resume
    (run / "checkpoints" / "epoch-0002").rename(run / "gone")
    (run / "checkpoints" / "last").unlink()
    log.unlink()
    resumed = run_cli(
        ["run-experiment", "--resume", run.name, "--quiet"], tmp_path, env=env
    )
    assert resumed.returncode == 0, resumed.stderr
    assert _notes(log) == [
        ["start", run.name, str(run), "small"],
        ["epoch", 2, metrics, [1, 2]],
        ["end", "completed"],
    ]


def test_a_callback_that_raises_fails_the_run_in_one_line(tmp_path: Path) -> None:
    module = _project(tmp_path, callbacks=[{"class_path": "mine.cb:Recorder"}])
    log = tmp_path / "calls.jsonl"
    env = cli_env(tmp_path, CALLBACK_LOG=str(log), CALLBACK_FAILS="epoch")
    done = run_cli(
        ["run-experiment", "--config", "c.yaml", "--quiet"], tmp_path, env=env
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    (run,) = (tmp_path / "outputs").iterdir()
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: run {run.name} failed: {module}:{_RAISE_LINE}: ValueError: no good"
    ]
    assert json.loads((run / "summary.json").read_text())["status"] == "failed"
    assert _notes(log)[-1] == ["end", "failed"]


def test_a_callback_that_does_not_load_is_a_located_error_before_any_run(
    tmp_path: Path,
) -> None:
    _project(tmp_path)
    cases = {
        "mine.nothing:Recorder": "there is no module 'mine.nothing'",
        "mine.cb:Missing": "has no attribute 'Missing'",
        "mine.cb:json": "which is no class",
        "json:JSONDecoder": "defines none of the callback methods",
    }
    for class_path, expected in cases.items():
        config = small_classification(epochs=1, callbacks=[{"class_path": class_path}])
        write_config(tmp_path / "c.yaml", config)
        for extra in (["--dry-run"], []):
            done = run_cli(["run-experiment", "--config", "c.yaml", *extra], tmp_path)
            assert done.returncode != 0, (class_path, extra)
            assert "training.callbacks[0].class_path" in done.stderr, done.stderr
            assert expected in done.stderr, done.stderr
            assert "Traceback" not in done.stderr
        assert not (tmp_path / "outputs").exists()
    bad_params = small_classification(
        epochs=1,
        callbacks=[{"class_path": "mine.cb:Recorder", "params": {"stop": 1}}],
    )
    write_config(tmp_path / "c.yaml", bad_params)
    done = run_cli(["run-experiment", "--config", "c.yaml"], tmp_path)
    assert done.returncode == 1
    assert "training.callbacks[0].class_path" in done.stderr
    assert "unexpected keyword argument 'stop'" in done.stderr
    assert not (tmp_path / "outputs").exists()
