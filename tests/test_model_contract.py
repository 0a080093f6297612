"""The BaseModel contract is forward, train_step, save and load, and nothing more.

A user's subclass that implements only those (no BaseModel.__init__, no params_, no
hooks) trains, checkpoints, resumes and evaluates through the CLI; what the harness
cannot know about it is reported as unknown, never a traceback.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import run_cli, small_classification, write_config

from mlx.config import parse_config

USER_MODELS = '''
"""Models that implement only what the README documents."""

import json
from pathlib import Path

import numpy as np

from mlx.models import BaseModel


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class BareClassifier(BaseModel):
    """No __init__: weights appear on the first step; saved as JSON."""

    classes = 3
    rate = 0.1

    def forward(self, X):
        return softmax(X @ self.w + self.b)

    def train_step(self, X, y):
        if not hasattr(self, "w"):
            self.w = np.zeros((X.shape[1], self.classes))
            self.b = np.zeros(self.classes)
        p = self.forward(X)
        n = len(y)
        loss = float(-np.log(p[np.arange(n), y]).mean())
        p[np.arange(n), y] -= 1.0
        self.w -= self.rate * X.T @ p / n
        self.b -= self.rate * p.sum(axis=0) / n
        return {"loss": loss}

    def save(self, path):
        text = json.dumps({"w": self.w.tolist(), "b": self.b.tolist()})
        (Path(path) / "weights.json").write_text(text)

    def load(self, path):
        data = json.loads((Path(path) / "weights.json").read_text())
        self.w, self.b = np.array(data["w"]), np.array(data["b"])


class ConfiguredClassifier(BareClassifier):
    """An __init__ that takes params and keeps them its own way."""

    def __init__(self, step_size, n_classes=3):
        self.settings = (step_size, n_classes)
        self.rate, self.classes = step_size, n_classes


class BareRegressor(BaseModel):
    """Regression values from forward; saved with np.save (no pickle)."""

    def __init__(self, step_size=0.05):
        self._step = step_size

    def forward(self, X):
        return X @ self.coef[:-1] + self.coef[-1]

    def train_step(self, X, y):
        if not hasattr(self, "coef"):
            self.coef = np.zeros(X.shape[1] + 1)
        err = self.forward(X) - y
        loss = float((err**2).mean())
        self.coef[:-1] -= self._step * 2 * X.T @ err / len(y)
        self.coef[-1] -= self._step * 2 * err.mean()
        return {"loss": loss}

    def save(self, path):
        np.save(Path(path) / "coef.npy", self.coef, allow_pickle=False)

    def load(self, path):
        self.coef = np.load(Path(path) / "coef.npy", allow_pickle=False)
'''

CLASSIFICATION = {
    "name": "synthetic_classification",
    "params": {"n_samples": 400, "n_features": 5, "n_classes": 3, "seed": 4},
}
REGRESSION = {
    "name": "synthetic_regression",
    "params": {"n_samples": 400, "n_features": 5, "noise_std": 0.1, "seed": 4},
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "user_models.py").write_text(USER_MODELS)
    return tmp_path


def _config(
    class_name: str, dataset: dict[str, Any], epochs: int = 3, **params: Any
) -> dict[str, Any]:
    return {
        "name": class_name.lower(),
        "dataset": dataset,
        "model": {
            "name": "custom",
            "params": {"class_path": f"user_models:{class_name}", **params},
        },
        "training": {"epochs": epochs, "batch_size": 32, "seed": 7},
        "output": {
            "directory": "outputs",
            "save_checkpoints": True,
            "checkpoint_frequency": 1,
        },
    }


def _train(root: Path, config: dict[str, Any], *extra: str) -> Path:
    write_config(root / "exp.yaml", config)
    done = run_cli(["run-experiment", "--config", "exp.yaml", *extra], root)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "parameter count unknown" in done.stderr + done.stdout
    (run,) = (root / "outputs").iterdir()
    return run


def _test_split(config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    from mlx import datasets

    parsed = parse_config(config)
    return datasets.load(parsed.dataset, parsed.training.seed).test


def _predictions(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(
    "class_name, params",
    [("BareClassifier", {}), ("ConfiguredClassifier", {"step_size": 0.2})],
    ids=["no-init", "init-with-params"],
)
def test_a_four_method_classifier_runs_and_evaluates(
    root: Path, class_name: str, params: dict[str, Any]
) -> None:
    config = _config(class_name, CLASSIFICATION, **params)
    run = _train(root, config)

    # its own file format, and mlx's trainer state saying which epoch it is of
    assert sorted(p.name for p in (run / "model").iterdir()) == [
        "trainer_state.json",
        "weights.json",
    ]
    assert (run / "checkpoints" / "epoch-0003" / "weights.json").is_file()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["model"] == {
        "name": "custom",
        "class_path": f"user_models:{class_name}",
        "parameters": None,
        "n_features": None,
        "architecture": None,
    }
    shown = run_cli(["runs", "show", str(run)], root)
    assert shown.returncode == 0, shown.stderr
    assert "Parameters:  unknown" in shown.stdout

    done = run_cli(["eval", str(run), "--save-predictions"], root)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "custom, parameter count unknown" in done.stdout
    (result_file,) = (run / "evals").glob("*.json")
    result = json.loads(result_file.read_text())
    assert result["model"] == {"name": "custom", "parameters": None}

    # oracle: the saved weights applied to the test split by hand
    weights = json.loads((run / "model" / "weights.json").read_text())
    X, y = _test_split(config)
    proba = _softmax(X @ np.array(weights["w"]) + np.array(weights["b"]))
    cols = _predictions(run / "predictions.csv")
    saved = np.column_stack([cols[f"proba_{k}"] for k in range(3)])
    np.testing.assert_allclose(saved, proba, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(cols["y_pred"], proba.argmax(axis=1))
    # the data's task (classification) applied: a classifier's metrics
    accuracy = float(np.mean(proba.argmax(axis=1) == y))
    assert result["metrics"]["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert accuracy > 0.6  # it learned: chance is 1/3
    log_loss = float(-np.log(proba[np.arange(len(y)), y]).mean())
    assert result["metrics"]["log_loss"] == pytest.approx(log_loss, rel=1e-9)


def test_a_four_method_regressor_runs_and_evaluates(root: Path) -> None:
    config = _config("BareRegressor", REGRESSION, step_size=0.05)
    run = _train(root, config)
    assert sorted(p.name for p in (run / "model").iterdir()) == [
        "coef.npy",
        "trainer_state.json",
    ]
    metrics = [
        json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
    ]
    assert "val_r2" in metrics[-1] and "val_accuracy" not in metrics[-1]

    done = run_cli(["eval", str(run), "--metrics", "mse", "r2"], root)
    assert done.returncode == 0, done.stderr
    assert "custom, parameter count unknown" in done.stdout
    (result_file,) = (run / "evals").glob("*.json")
    result = json.loads(result_file.read_text())
    coef = np.load(run / "model" / "coef.npy", allow_pickle=False)
    X, y = _test_split(config)
    pred = X @ coef[:-1] + coef[-1]
    mse = float(np.mean((pred - y) ** 2))
    r2 = 1.0 - float(np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))
    assert result["metrics"]["mse"] == pytest.approx(mse, rel=1e-9)
    assert result["metrics"]["r2"] == pytest.approx(r2, rel=1e-9)
    assert r2 > 0.5


def test_a_resumed_four_method_model_ends_where_an_uninterrupted_one_does(
    tmp_path: Path,
) -> None:
    finals = []
    for name, steps in (("straight", [4]), ("resumed", [2, 4])):
        root = tmp_path / name
        root.mkdir()
        (root / "pyproject.toml").write_text("")
        (root / "user_models.py").write_text(USER_MODELS)
        run = _train(root, _config("BareClassifier", CLASSIFICATION, epochs=steps[0]))
        for epochs in steps[1:]:
            done = run_cli(
                [
                    "run-experiment",
                    "--resume",
                    str(run),
                    "--set",
                    f"training.epochs={epochs}",
                ],
                root,
            )
            assert done.returncode == 0, done.stderr
            assert "resuming from epoch-0002" in done.stderr
        lines = [
            {k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (run / "metrics.jsonl").read_text().splitlines()
        ]
        finals.append(((run / "model" / "weights.json").read_bytes(), lines))
    assert finals[0] == finals[1]
    assert len(finals[0][1]) == 4


@pytest.mark.parametrize(
    "class_name, params, message",
    [
        ("BareClassifier", {"step_size": 0.1}, "accepts no parameters"),
        ("ConfiguredClassifier", {}, "missing a required argument: 'step_size'"),
        (
            "ConfiguredClassifier",
            {"step_size": 0.1, "nope": 1},
            "Unknown parameter 'nope'",
        ),
    ],
    ids=["params-without-init", "missing-argument", "unknown-argument"],
)
def test_params_that_do_not_fit_the_constructor_are_one_clear_error(
    root: Path, class_name: str, params: dict[str, Any], message: str
) -> None:
    write_config(root / "exp.yaml", _config(class_name, CLASSIFICATION, **params))
    done = run_cli(["run-experiment", "--config", "exp.yaml"], root)
    assert done.returncode == 1
    assert message in done.stderr
    assert done.stderr.startswith("error: ")
    assert "Traceback" not in done.stderr
    assert not (root / "outputs").exists()


def test_a_built_in_model_reports_what_it_knows(root: Path) -> None:
    write_config(root / "exp.yaml", small_classification(epochs=1))
    done = run_cli(["run-experiment", "--config", "exp.yaml"], root)
    assert done.returncode == 0, done.stderr
    (run,) = (root / "outputs").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    count = (8 + 1) * 16 + (16 + 1) * 3  # weights and biases of layers 8-16-3
    assert summary["model"]["parameters"] == count
    assert summary["model"]["n_features"] == 8
    assert summary["model"]["architecture"]["layer_sizes"] == [8, 16, 3]
    assert f"{count:,} parameters" in done.stderr
    shown = run_cli(["runs", "show", str(run)], root)
    assert f"Parameters:  {count:,}" in shown.stdout
    evaluated = run_cli(["eval", str(run)], root)
    assert f"mlp, {count:,} parameters" in evaluated.stdout


def test_the_accessors_answer_unknown_for_a_bare_model(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlx.models import MLP
    from mlx.models.facts import (
        architecture,
        model_outputs,
        model_task,
        n_features,
        parameter_count,
    )

    monkeypatch.syspath_prepend(str(root))
    import user_models

    bare = user_models.BareClassifier()
    assert parameter_count(bare) is None
    assert n_features(bare) is None
    assert architecture(bare) is None
    assert model_task(bare) is None  # BaseModel's placeholder says nothing
    assert model_task(bare, "classification") == "classification"
    bare.w, bare.b = np.eye(3), np.zeros(3)
    X = np.array([[3.0, 0.0, 1.0], [0.0, 0.0, 2.0]])
    labels, proba = model_outputs(bare, X, "classification")
    np.testing.assert_array_equal(labels, [0, 2])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    values, none = model_outputs(bare, X, "regression")
    assert none is None and values.shape == (2, 3)

    mlp = MLP(layer_sizes=[3, 2], output_activation="softmax", seed=0)
    assert parameter_count(mlp) == 8
    assert model_task(mlp, "regression") == "classification"  # its own word wins
