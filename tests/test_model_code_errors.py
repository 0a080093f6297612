"""An exception from a model's own code is one line naming where it was raised.

A custom model's ``train_step`` or ``forward`` may raise anything. Through the CLI the
user gets ``error: run ID failed: <file>:<line>: <Type>: <message>`` and a hint, exit 1,
no traceback; the run is marked failed and its ``train.log`` holds the traceback;
``--debug`` shows the traceback on the terminal. The same holds in ``mlx eval`` and
for a sweep's points.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import cli_env, run_cli, small_classification, write_config

_MODEL = """\
import os

import numpy as np

from mlx.models.base import BaseModel


class Model(BaseModel):
    task = "classification"

    def __init__(self, **params):
        self.w = np.zeros(3)

    def forward(self, X):
        if os.environ.get("FAIL_IN") == "forward":
            {body}
        return np.full((len(X), 3), 1 / 3)

    def train_step(self, X, y):
        if os.environ.get("FAIL_IN") == "train_step":
            {body}
        return {{"loss": 1.0}}

    def save(self, path):
        with open(os.path.join(path, "w.txt"), "w") as handle:
            handle.write("w")

    def load(self, path):
        pass
"""

# (the failing statement, the line it is on for each method, what the error says)
_BODIES = {
    "value-error": ("raise ValueError('shapes (3,) and (4,)')", "ValueError: shapes"),
    "key-error": ("{}['head']", "KeyError: 'head'"),
    "in-numpy": ("np.concatenate([np.ones(2), np.ones((2, 2))])", "ValueError: all"),
    "no-message": ("raise RuntimeError", "RuntimeError"),
}
_LINES = {"forward": 16, "train_step": 21}


def _project(root: Path, body: str) -> Path:
    package = root / "mine"
    package.mkdir()
    (package / "__init__.py").write_text("")
    module = package / "model.py"
    module.write_text(_MODEL.format(body=body))
    config = small_classification(epochs=1)
    config["model"] = {"name": "custom", "params": {"class_path": "mine.model:Model"}}
    write_config(root / "c.yaml", config)
    return module


def _one_run(root: Path) -> Path:
    runs = [p for p in (root / "outputs").iterdir() if p.is_dir()]
    assert len(runs) == 1
    return runs[0]


@pytest.mark.parametrize("method", ["train_step", "forward"])
@pytest.mark.parametrize("kind", sorted(_BODIES))
def test_a_run_whose_model_raises_fails_in_one_line(
    tmp_path: Path, method: str, kind: str
) -> None:
    body, what = _BODIES[kind]
    module = _project(tmp_path, body)
    env = cli_env(tmp_path, FAIL_IN=method)
    done = run_cli(["run-experiment", "--config", "c.yaml"], tmp_path, env=env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    run = _one_run(tmp_path)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    # one line, naming the line in the model's own file even when numpy raised deeper
    assert len(errors) == 1
    assert errors[0].startswith(
        f"error: run {run.name} failed: {module}:{_LINES[method]}: {what}"
    )
    assert f"hint: the traceback is in {run / 'train.log'}" in done.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed"
    log = (run / "train.log").read_text()
    assert "Traceback (most recent call last)" in log
    assert f'File "{module}", line {_LINES[method]}, in {method}' in log


def test_json_prints_the_failed_run_record_and_debug_the_traceback(
    tmp_path: Path,
) -> None:
    _project(tmp_path, "raise ValueError('bad')")
    env = cli_env(tmp_path, FAIL_IN="train_step")
    done = run_cli(
        ["run-experiment", "--config", "c.yaml", "--json", "--quiet"],
        tmp_path,
        env=env,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "failed"
    assert record["run_id"] == _one_run(tmp_path).name
    debug = run_cli(
        ["--debug", "run-experiment", "--config", "c.yaml", "--quiet"],
        tmp_path,
        env=env,
    )
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "ValueError: bad" in debug.stderr


def test_eval_of_a_model_whose_forward_raises_is_one_line(tmp_path: Path) -> None:
    module = _project(tmp_path, "raise KeyError('head')")
    trained = run_cli(["run-experiment", "--config", "c.yaml", "--quiet"], tmp_path)
    assert trained.returncode == 0, trained.stderr
    run = _one_run(tmp_path)
    env = cli_env(tmp_path, FAIL_IN="forward")
    for extra in ([], ["--json"]):
        done = run_cli(["eval", run.name, *extra], tmp_path, env=env)
        assert done.returncode == 1
        assert done.stdout == ""
        assert done.stderr.splitlines() == [
            f"error: {module}:{_LINES['forward']}: KeyError: 'head'",
            "hint: mlx --debug shows the traceback",
        ]
    assert not (run / "evals").exists() or not any((run / "evals").iterdir())


@pytest.mark.slow
def test_a_sweep_point_whose_model_raises_fails_alone_in_one_line(
    tmp_path: Path,
) -> None:
    module = _project(tmp_path, "raise ValueError('bad step')")
    (tmp_path / "s.yaml").write_text(
        "name: s\nbase: c.yaml\nmethod: grid\n"
        "parameters:\n  training.seed: {values: [1, 2]}\n"
    )
    env = cli_env(tmp_path, FAIL_IN="train_step")
    done = run_cli(["sweep", "--config", "s.yaml", "--jobs", "1"], tmp_path, env=env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert f"{module}:{_LINES['train_step']}: ValueError: bad step" in done.stderr
