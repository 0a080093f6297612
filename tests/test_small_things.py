"""Things a new user tripped on: eval repeating a run's config warnings, the parameter
count a run announces, which value `mlx runs` lists, and the synthetic example with a
custom model."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
import yaml
from helpers import cli_env, run_cli, write_config
from image_data import write_mnist

import mlx
from mlx.errors import ConfigWarning

LR_WARNING = "training.learning_rate is 1.5; values above 1.0 usually make training"
FREQUENCY_WARNING = "output.checkpoint_frequency (5) is larger than training.epochs"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLX_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


def _warned_config(epochs: int = 2) -> dict:
    """A config that trains in a fraction of a second and draws two warnings."""
    return {
        "name": "warned",
        "dataset": {
            "name": "synthetic_classification",
            "params": {"n_samples": 80, "n_features": 4, "n_classes": 2, "seed": 0},
        },
        "model": {
            "name": "mlp",
            "params": {"layer_sizes": [4, 5, 2], "output_activation": "softmax"},
        },
        "training": {"epochs": epochs, "batch_size": 16, "learning_rate": 1.5},
        "output": {"directory": "outputs", "checkpoint_frequency": 5},
    }


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


def _run(root: Path, config: dict, *extra: str) -> str:
    """Run ``config`` through the CLI; its run ID."""
    write_config(root / "exp.yaml", config)
    done = run_cli(["run-experiment", "--config", "exp.yaml", *extra], root)
    assert done.returncode == 0, done.stderr
    (run,) = [
        p for p in (root / "outputs").iterdir() if p.name.startswith(config["name"])
    ]
    return run.name


# --- eval does not repeat the warnings of the run's config -------------------------


def test_eval_does_not_repeat_the_config_warnings_shown_when_the_run_was_made(
    root: Path,
) -> None:
    write_config(root / "exp.yaml", _warned_config())
    made = run_cli(["run-experiment", "--config", "exp.yaml"], root)
    assert made.returncode == 0, made.stderr
    shown = _warnings(made.stderr)
    assert len(shown) == 2
    assert LR_WARNING in shown[0] and FREQUENCY_WARNING in shown[1]
    (run,) = (root / "outputs").iterdir()
    for args in (
        ["eval", run.name],
        ["eval", run.name],  # every evaluation, not only the first
        ["eval", run.name, "--split", "val", "--json"],
        ["eval", run.name, "--dry-run"],
        ["runs", "show", run.name],
    ):
        done = run_cli(args, root)
        assert done.returncode == 0, (args, done.stderr)
        assert "warning" not in done.stderr, (args, done.stderr)
    assert len(list((run / "evals").glob("*.json"))) == 3


def test_the_api_evaluation_issues_no_config_warning(root: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        made = mlx.run_experiment(_warned_config(), quiet=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mlx.evaluate(made.run_id)
    assert not [w for w in caught if issubclass(w.category, ConfigWarning)]


def test_an_error_in_the_stored_config_still_stops_eval(root: Path) -> None:
    run = root / "outputs" / _run(root, _warned_config())
    path = run / "config.yaml"
    stored = yaml.safe_load(path.read_text())
    stored["training"]["learning_rate"] = -1
    path.write_text(yaml.safe_dump(stored))
    done = run_cli(["eval", run.name], root)
    assert done.returncode != 0
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert str(path) in line and "training.learning_rate" in line and "-1" in line
    assert "Traceback" not in done.stderr
    assert not (run / "evals").exists()


def test_resume_shows_only_the_warnings_its_overrides_bring(root: Path) -> None:
    run = _run(root, _warned_config())
    more = run_cli(
        ["run-experiment", "--resume", run, "--set", "training.epochs=3"], root
    )
    assert more.returncode == 0, more.stderr
    # the learning rate was shown when the run was made; the frequency against
    # the new epoch count is news
    (only,) = _warnings(more.stderr)
    assert "output.checkpoint_frequency (5) is larger than training.epochs (3)" in only
    assert str(root / "outputs" / run / "config.yaml") in only
    # a resume that changes nothing repeats nothing
    again = run_cli(["run-experiment", "--resume", run], root)
    assert again.returncode == 0, again.stderr
    assert _warnings(again.stderr) == []


# --- one parameter count everywhere -------------------------------------------------


def _counts(root: Path, config: dict, env: dict[str, str] | None = None) -> list[int]:
    """The parameter count of the dry run, the run's console, mlx eval and mlx runs
    show (text and JSON), and the summary, in that order."""
    write_config(root / "exp.yaml", config)
    plan = run_cli(
        ["run-experiment", "--dry-run", "--config", "exp.yaml"], root, env=env
    )
    made = run_cli(["run-experiment", "--config", "exp.yaml"], root, env=env)
    assert made.returncode == 0, made.stderr
    run = next((root / "outputs").iterdir()).name
    shown = run_cli(["eval", run], root, env=env)
    details = run_cli(["runs", "show", run], root, env=env)
    record = run_cli(["runs", "show", run, "--json"], root, env=env)
    summary = json.loads((root / "outputs" / run / "summary.json").read_text())
    name = config["model"]["name"]

    def number(pattern: str, text: str) -> int:
        found = re.search(pattern, text)
        assert found, (pattern, text)
        return int(found.group(1).replace(",", ""))

    return [
        number(rf"model: +{name}, ([\d,]+) trainable parameters", plan.stdout),
        number(rf"model: {name}, ([\d,]+) parameters", made.stdout + made.stderr),
        number(rf"model +{name}, ([\d,]+) parameters", shown.stdout),
        number(r"Parameters: +([\d,]+)", details.stdout),
        json.loads(record.stdout)["parameters"],
        summary["model"]["parameters"],
    ]


@pytest.mark.parametrize("gradient_descent", [False, True])
def test_linear_regression_reports_one_parameter_count_everywhere(
    root: Path, gradient_descent: bool
) -> None:
    config = {
        "name": "lin",
        "dataset": {
            "name": "synthetic_regression",
            "params": {"n_samples": 60, "n_features": 10, "seed": 0},
        },
        "model": {
            "name": "linear_regression",
            "params": {"use_gradient_descent": gradient_descent},
        },
        "training": {"epochs": 1},
        "output": {"directory": "outputs"},
    }
    assert _counts(root, config) == [11] * 6  # a weight per feature and a bias


def test_an_mlp_reports_one_parameter_count_everywhere(root: Path) -> None:
    config = _warned_config()
    config["training"]["learning_rate"] = 0.01
    assert _counts(root, config) == [(4 + 1) * 5 + (5 + 1) * 2] * 6


@pytest.mark.slow
def test_a_torch_model_reports_one_parameter_count_everywhere(root: Path) -> None:
    pytest.importorskip("torchvision")
    write_mnist(root / "data" / "mnist", n_train=32, n_test=8)
    env = cli_env(
        root,
        MLX_DATA_DIR=str(root / "data"),
        MLX_OFFLINE="1",
        TORCH_HOME=str(root / "torch-home"),
    )
    config = {
        "name": "cnn",
        "dataset": {"name": "mnist", "params": {"validation_split": 0.25}},
        "model": {
            "name": "mobilenet",
            "architecture": "mobilenet_v3_small",
            "params": {"in_channels": 1},
        },
        "training": {"epochs": 1, "batch_size": 16, "device": "cpu"},
        "output": {"directory": "outputs"},
    }
    counts = _counts(root, config, env)
    assert counts[0] > 0 and counts == [counts[0]] * 6


def test_a_model_that_builds_its_parameters_from_the_data_is_counted_for_it() -> None:
    from mlx.models import get_model
    from mlx.models.facts import parameter_count

    model = get_model("linear_regression", {})
    assert parameter_count(model) == 0  # not told the data: what it holds now
    assert parameter_count(model, 10) == 11


# --- which value `mlx runs` lists ---------------------------------------------------


def _drop_best_metric(root: Path, run: str) -> None:
    """The run's summary without its best metric, as one that recorded none."""
    path = root / "outputs" / run / "summary.json"
    summary = json.loads(path.read_text())
    summary.pop("best_metric")
    path.write_text(json.dumps(summary))


def test_runs_header_says_the_metric_is_each_runs_best(root: Path) -> None:
    config = _warned_config()
    config["training"]["learning_rate"] = 0.01
    run = _run(root, config)
    listing = run_cli(["runs"], root)
    header, line = listing.stdout.splitlines()
    assert header.split() == [
        "RUN", "ID", "STATUS", "EPOCHS", "BEST", "METRIC", "STARTED", "(UTC)",
    ]  # fmt: skip
    summary = json.loads((root / "outputs" / run / "summary.json").read_text())
    best = summary["best_metric"]
    assert best["name"] == "val_loss"
    assert f"val_loss={best['value']:.6g}" in line and "(best)" not in line
    (record,) = json.loads(run_cli(["runs", "--json"], root).stdout)
    assert record["metric"] == {
        "name": "val_loss",
        "value": best["value"],
        "kind": "best",
    }


def test_runs_header_says_final_and_mixed_listings_mark_each_value(
    root: Path,
) -> None:
    config = _warned_config()
    config["training"]["learning_rate"] = 0.01
    old = _run(root, config)
    _drop_best_metric(root, old)
    final = json.loads((root / "outputs" / old / "summary.json").read_text())
    accuracy = final["final_metrics"]["val_accuracy"]
    listing = run_cli(["runs"], root).stdout.splitlines()
    assert listing[0].split()[4:6] == ["FINAL", "METRIC"]
    assert f"val_accuracy={accuracy:.6g}" in listing[1]
    (record,) = json.loads(run_cli(["runs", "--json"], root).stdout)
    assert record["metric"]["kind"] == "final"
    assert record["metric"]["name"] == "val_accuracy"
    # a newer run with its best metric: each value says which it is
    config["name"] = "newer"
    newer = _run(root, config)
    listing = run_cli(["runs"], root).stdout.splitlines()
    assert listing[0].split()[4:6] == ["BEST/FINAL", "METRIC"]
    rows = {line.split()[0]: line for line in listing[1:]}
    assert rows[newer].rstrip().split()[-3] == "(best)"
    assert rows[old].rstrip().split()[-3] == "(final)"
    kinds = {
        r["run_id"]: r["metric"]["kind"]
        for r in json.loads(run_cli(["runs", "--json"], root).stdout)
    }
    assert kinds == {newer: "best", old: "final"}
    # the runs eval lists are shown the same way
    assert run_cli(["eval", "--dry-run"], root).stdout.splitlines()[0].split()[4] == (
        "BEST/FINAL"
    )
