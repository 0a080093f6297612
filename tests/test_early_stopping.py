"""training.early_stopping: the run stops at the epoch the rule computes by hand from
metrics.jsonl, and says so in summary.json; patience may change on resume, the
monitor may not."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import run_cli, small_classification, write_config


def _stop_epoch(values: list[float], patience: int, min_delta: float) -> int | None:
    """The epoch (from 1) a 'min' early stopping stops at, by hand."""
    best, wait = None, 0
    for epoch, value in enumerate(values, start=1):
        if best is None or value < best - min_delta:
            best, wait = value, 0
        else:
            wait += 1
            if wait >= patience:
                return epoch
    return None


def test_the_run_stops_where_the_rule_says_and_records_it(tmp_path: Path) -> None:
    # a learning rate high enough that val_loss stops improving within a few epochs
    free = small_classification(epochs=12, learning_rate=0.3)
    write_config(tmp_path / "free.yaml", free)
    assert (
        run_cli(
            ["run-experiment", "--config", "free.yaml", "--quiet"], tmp_path
        ).returncode
        == 0
    )
    (free_run,) = (tmp_path / "outputs").iterdir()
    lines = (free_run / "metrics.jsonl").read_text().splitlines()
    values = [json.loads(line)["val_loss"] for line in lines]
    patience, min_delta = 2, 0.001
    expected = _stop_epoch(values, patience, min_delta)
    assert expected is not None and expected < 12, values
    best = min(range(expected), key=lambda i: values[i]) + 1

    stopping = {"monitor": "val_loss", "patience": patience, "min_delta": min_delta}
    config = {**small_classification(epochs=12, learning_rate=0.3), "name": "es"}
    config["training"]["early_stopping"] = stopping
    write_config(tmp_path / "es.yaml", config)
    done = run_cli(["run-experiment", "--config", "es.yaml", "--quiet"], tmp_path)
    assert done.returncode == 0, done.stderr
    (run,) = (tmp_path / "outputs").glob("es-*")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["stopped_early"] is True
    assert summary["stopped_epoch"] == expected == summary["epochs_completed"]
    assert summary["early_stopping"]["best_epoch"] == best
    assert summary["early_stopping"]["mode"] == "min"
    # the same epochs, bit for bit, as the run without early stopping
    mine = (run / "metrics.jsonl").read_text().splitlines()
    strip = lambda line: {k: v for k, v in json.loads(line).items() if k != "seconds"}  # noqa: E731
    assert [strip(x) for x in mine] == [strip(x) for x in lines[:expected]]
    state = json.loads(
        (run / "checkpoints" / "last" / "trainer_state.json").read_text()
    )
    assert state["callbacks"][-1]["wait"] == patience

    # the monitor may not change on resume; patience may
    refused = run_cli(
        [
            "run-experiment",
            "--resume",
            run.name,
            "--set",
            "training.early_stopping.monitor=val_accuracy",
        ],
        tmp_path,
    )
    assert refused.returncode == 1
    assert (
        "training.early_stopping.monitor: 'val_loss' -> 'val_accuracy'"
        in refused.stderr
    )
    allowed = run_cli(
        [
            "run-experiment",
            "--resume",
            run.name,
            "--set",
            "training.early_stopping.patience=4",
            "--quiet",
        ],
        tmp_path,
    )
    assert allowed.returncode == 0, allowed.stderr


def test_mode_defaults_from_the_metric(tmp_path: Path) -> None:
    config = small_classification(epochs=1)
    config["training"]["early_stopping"] = {"monitor": "val_accuracy"}
    write_config(tmp_path / "c.yaml", config)
    done = run_cli(["run-experiment", "--config", "c.yaml", "--quiet"], tmp_path)
    assert done.returncode == 0, done.stderr
    (run,) = (tmp_path / "outputs").iterdir()
    text = (run / "config.yaml").read_text()
    assert "mode: max" in text and "patience: 5" in text
    bad = small_classification(epochs=1)
    bad["training"]["early_stopping"] = {"monitor": "val_f9", "patience": 0}
    write_config(tmp_path / "bad.yaml", bad)
    failed = run_cli(["run-experiment", "--config", "bad.yaml", "--quiet"], tmp_path)
    assert failed.returncode == 1
    assert "training.early_stopping.monitor: 'val_f9' is not a metric" in failed.stderr
