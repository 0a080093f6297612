"""mlx eval: metrics equal scikit-learn's, results are kept, every error is clear."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli, small_classification, write_config

import mlx
from mlx.errors import RunError

sklearn_metrics = pytest.importorskip("sklearn.metrics")


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLX_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


@pytest.fixture
def classifier_run(root: Path) -> mlx.experiment.Run:
    return mlx.run_experiment(small_classification(epochs=8), quiet=True)


def _regression_config() -> dict:
    return {
        "name": "reg",
        "dataset": {
            "name": "synthetic_regression",
            "params": {"n_samples": 400, "n_features": 6, "seed": 2},
        },
        "model": {"name": "mlp", "params": {"layer_sizes": [6, 16, 1], "seed": 0}},
        "training": {"epochs": 5, "learning_rate": 0.01},
    }


def _read_predictions(path: Path) -> dict:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def test_classifier_metrics_equal_sklearn_from_predictions_csv(
    root: Path, classifier_run: mlx.experiment.Run
) -> None:
    done = run_cli(
        [
            "eval",
            classifier_run.run_id,
            "--save-predictions",
            "--metrics",
            "accuracy",
            "f1_score",
            "precision_weighted",
            "log_loss",
            "roc_auc",
        ],
        root,
    )
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stdout + done.stderr
    (result_file,) = (classifier_run.directory / "evals").glob("*.json")
    result = json.loads(result_file.read_text())
    cols = _read_predictions(classifier_run.directory / "predictions.csv")
    y, pred = cols["y_true"].astype(int), cols["y_pred"].astype(int)
    proba = np.column_stack([cols[f"proba_{k}"] for k in range(3)])
    expected = {
        "accuracy": sklearn_metrics.accuracy_score(y, pred),
        "f1_score": sklearn_metrics.f1_score(y, pred, average="macro"),
        "precision_weighted": sklearn_metrics.precision_score(
            y, pred, average="weighted"
        ),
        "log_loss": sklearn_metrics.log_loss(y, proba, labels=[0, 1, 2]),
        "roc_auc": sklearn_metrics.roc_auc_score(y, proba, multi_class="ovr"),
    }
    for name, value in expected.items():
        assert result["metrics"][name] == pytest.approx(value, rel=1e-12, abs=1e-12)
        assert name in done.stdout
    assert result["split"] == "test" and result["n_samples"] == len(y) == 60


def test_regression_metrics_equal_sklearn(root: Path) -> None:
    run = mlx.run_experiment(_regression_config(), quiet=True)
    result = mlx.evaluate(run.run_id, save_predictions=True, split="val")
    cols = _read_predictions(run.directory / "predictions.csv")
    y, pred = cols["y_true"], cols["y_pred"]
    assert result["metrics"]["mse"] == pytest.approx(
        sklearn_metrics.mean_squared_error(y, pred), rel=1e-12
    )
    assert result["metrics"]["r2"] == pytest.approx(
        sklearn_metrics.r2_score(y, pred), rel=1e-12
    )
    assert set(result["metrics"]) == {"mse", "rmse", "mae", "r2"}


def test_each_evaluation_is_kept(classifier_run: mlx.experiment.Run) -> None:
    first = mlx.evaluate(classifier_run.run_id)
    second = mlx.evaluate(classifier_run.run_id, checkpoint="epoch-4")
    assert first["path"] != second["path"]
    assert len(list((classifier_run.directory / "evals").glob("*.json"))) == 2
    assert first["metrics"] != second["metrics"]


def test_dry_run_writes_nothing(root: Path, classifier_run: mlx.experiment.Run) -> None:
    before = sorted(p for p in root.rglob("*"))
    done = run_cli(["eval", "--dry-run", classifier_run.run_id], root)
    assert done.returncode == 0, done.stderr
    assert sorted(p for p in root.rglob("*")) == before
    listing = run_cli(["eval", "--dry-run"], root)
    assert listing.returncode == 0 and classifier_run.run_id in listing.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["eval", "no-such-run"], "no-such-run"),
        (["eval", "RUN", "--metrics", "acuracy"], "accuracy"),
        (["eval", "RUN", "--metrics", "mse"], "is a regression metric"),
        (["eval", "RUN", "--split", "holdout"], "invalid choice"),
        (["eval", "RUN", "--checkpoint", "epoch-99"], "epoch-99"),
        (["eval", "RUN", "--checkpoint", "best"], "'final' or 'epoch-N'"),
        (["eval"], "experiment_id"),
    ],
    ids=[
        "unknown-run",
        "unknown-metric",
        "wrong-task-metric",
        "bad-split",
        "missing-checkpoint",
        "bad-checkpoint-name",
        "missing-argument",
    ],
)
def test_eval_errors(
    root: Path, classifier_run: mlx.experiment.Run, args: list, message: str
) -> None:
    args = [classifier_run.run_id if a == "RUN" else a for a in args]
    done = run_cli(args, root)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_eval_refuses_changed_data(root: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    data = root / "data.csv"
    np.savetxt(
        data, np.column_stack([X, y]), delimiter=",", header="a,b,c,target", comments=""
    )
    config = {
        "name": "csv",
        "dataset": {"name": "custom", "path": "data.csv"},
        "model": {"name": "linear_regression"},
    }
    run = mlx.run_experiment(config, quiet=True)
    np.savetxt(
        data,
        np.column_stack([X, y + 1]),
        delimiter=",",
        header="a,b,c,target",
        comments="",
    )
    with pytest.raises(RunError, match="differs from the one it was trained with"):
        mlx.evaluate(run.run_id)


def test_eval_with_corrupt_model(classifier_run: mlx.experiment.Run) -> None:
    from mlx.errors import CheckpointError

    (classifier_run.directory / "model" / "model.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(CheckpointError):
        mlx.evaluate(classifier_run.run_id)


def test_eval_of_a_run_directory_path(
    root: Path, classifier_run: mlx.experiment.Run
) -> None:
    write_config(root / "x.yaml", {})  # unrelated file, ignored
    result = mlx.evaluate(classifier_run.directory, metrics=["accuracy"])
    assert 0.0 <= result["metrics"]["accuracy"] <= 1.0


def test_a_run_is_evaluated_and_resumed_from_another_repository(
    classifier_run: mlx.experiment.Run,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the run's stored paths lie outside this other root; they must still validate
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "pyproject.toml").write_text("")
    monkeypatch.setenv("MLX_ROOT", str(elsewhere))
    monkeypatch.chdir(elsewhere)
    result = mlx.evaluate(classifier_run.directory, metrics=["accuracy"])
    assert result["n_samples"] == 60
    resumed = mlx.run_experiment(
        resume=classifier_run.directory, overrides=["training.epochs=9"], quiet=True
    )
    assert resumed.directory == classifier_run.directory
    assert (
        json.loads((resumed.directory / "summary.json").read_text())["epochs_completed"]
        == 9
    )
