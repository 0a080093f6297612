"""The public API checks its arguments: a wrong type is a TypeError naming the
parameter, never a confusing failure later (a string iterated character by
character, a truthy "no")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import small_classification

import mlx
from mlx.config import ConfigError, load_config, parse_config


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.setenv("MLX_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def run(root: Path) -> mlx.experiment.Run:
    return mlx.run_experiment(small_classification(epochs=2), quiet=True)


def _runs(root: Path) -> list[Path]:
    outputs = root / "outputs"
    return sorted(outputs.iterdir()) if outputs.is_dir() else []


# -- evaluate --------------------------------------------------------------------------


@pytest.mark.parametrize("as_text", [str, Path], ids=["id", "path"])
def test_one_metric_name_is_one_metric(run: mlx.experiment.Run, as_text: type) -> None:
    ref = run.run_id if as_text is str else run.directory
    one = mlx.evaluate(ref, metrics="accuracy")
    listed = mlx.evaluate(ref, metrics=["accuracy"])
    assert list(one["metrics"]) == ["accuracy"]
    assert one["metrics"] == listed["metrics"]


def test_a_tuple_and_a_generator_of_metrics(run: mlx.experiment.Run) -> None:
    names = ("accuracy", "f1_score")
    assert list(mlx.evaluate(run.run_id, metrics=names)["metrics"]) == list(names)
    given = (n for n in names)
    assert list(mlx.evaluate(run.run_id, metrics=given)["metrics"]) == list(names)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"metrics": 3}, TypeError, r"'metrics' parameter of mlx\.evaluate must be"),
        ({"metrics": {"accuracy"}}, TypeError, r"'metrics' .* got \{'accuracy'\}"),
        ({"metrics": {"accuracy": 1}}, TypeError, r"'metrics' .*\(dict\)"),
        ({"metrics": b"accuracy"}, TypeError, r"'metrics' .*\(bytes\)"),
        ({"metrics": ["accuracy", 3]}, TypeError, r"item 1 is 3 \(int\)"),
        ({"metrics": []}, ValueError, r"'metrics' parameter of mlx\.evaluate is empty"),
        ({"split": 1}, TypeError, r"'split' parameter .* must be a str; got 1"),
        ({"split": ["test"]}, TypeError, r"'split' parameter .* \(list\)"),
        ({"checkpoint": 3}, TypeError, r"'checkpoint' parameter .* must be a str"),
        ({"save_predictions": "no"}, TypeError, r"'save_predictions' .* True or"),
        ({"save_predictions": 1}, TypeError, r"'save_predictions' .*\(int\)"),
        ({"dry_run": "yes"}, TypeError, r"'dry_run' parameter .* True or False"),
    ],
    ids=lambda v: str(v) if not isinstance(v, dict) else ",".join(map(str, v.items())),
)
def test_evaluate_refuses_arguments_of_the_wrong_type(
    run: mlx.experiment.Run, kwargs: dict, error: type, message: str
) -> None:
    before = sorted((run.directory / "evals").glob("*")) if kwargs else []
    with pytest.raises(error, match=message):
        mlx.evaluate(run.run_id, **kwargs)
    assert sorted((run.directory / "evals").glob("*")) == before


@pytest.mark.parametrize("bad", [3, None, ["a"], b"run"], ids=repr)
def test_evaluate_refuses_a_run_that_is_no_id_or_path(root: Path, bad: object) -> None:
    with pytest.raises(TypeError, match=r"'run' parameter of mlx\.evaluate must be"):
        mlx.evaluate(bad)  # type: ignore[arg-type]


def test_an_unknown_metric_is_still_named(run: mlx.experiment.Run) -> None:
    with pytest.raises(ConfigError, match=r"unknown metric 'acuracy'.*'accuracy'"):
        mlx.evaluate(run.run_id, metrics="acuracy")


# -- run_experiment --------------------------------------------------------------------


def test_one_override_string_is_one_override(root: Path) -> None:
    result = mlx.run_experiment(
        small_classification(), overrides="training.epochs=1", quiet=True
    )
    assert result.config.training.epochs == 1
    assert len(result.config.to_dict()["training"]) > 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"overrides": 5}, r"'overrides' parameter of mlx\.run_experiment must be"),
        ({"overrides": 0}, r"'overrides' .* got 0 \(int\)"),
        ({"overrides": False}, r"'overrides' .*\(bool\)"),
        ({"overrides": {"training.epochs": 1}}, r"'overrides' .*\(dict\)"),
        ({"overrides": {"training.epochs=1"}}, r"'overrides' .*\(set\)"),
        ({"overrides": ["training.epochs=1", 2]}, r"item 1 is 2 \(int\)"),
        ({"overrides": [("training.epochs", 1)]}, r"item 0 is \('training"),
        ({"quiet": "no"}, r"'quiet' parameter of mlx\.run_experiment must be True"),
        ({"quiet": None}, r"'quiet' .*\(NoneType\)"),
    ],
    ids=lambda v: str(v) if not isinstance(v, dict) else ",".join(map(str, v.items())),
)
def test_run_experiment_refuses_arguments_of_the_wrong_type(
    root: Path, kwargs: dict, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        mlx.run_experiment(small_classification(), **kwargs)
    assert _runs(root) == []


@pytest.mark.parametrize("bad", [3, ["c.yaml"], b"c.yaml", 1.5], ids=repr)
def test_run_experiment_refuses_a_config_of_the_wrong_type(
    root: Path, bad: object
) -> None:
    with pytest.raises(TypeError, match=r"'config_or_path' parameter .* must be"):
        mlx.run_experiment(bad)  # type: ignore[arg-type]
    assert _runs(root) == []


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (5, r"'record' parameter of mlx\.run_experiment must be a mapping"),
        ([("sweep", "s")], r"'record' .* got \[\('sweep', 's'\)\] \(list\)"),
        ({1: "x"}, r"'record' .* must have str keys; got 1 \(int\)"),
        ({"sweep": object()}, r"'record' .* JSON values; 'sweep' is <object"),
        ({"point": float("nan")}, r"'record' .* JSON values; 'point' is nan"),
        ({"status": "completed"}, r"'record' .* may not set 'status'"),
        ({"run_id": "other"}, r"'record' .* may not set 'run_id'"),
        ({"epochs_completed": 9}, r"'record' .* may not set 'epochs_completed'"),
    ],
    ids=["int", "list", "int-key", "object", "nan", "status", "run_id", "epochs"],
)
def test_run_experiment_refuses_a_record_it_cannot_keep(
    root: Path, record: object, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        mlx.run_experiment(small_classification(), record=record)  # type: ignore[arg-type]
    assert _runs(root) == []


def test_a_record_adds_its_fields_to_the_summary(root: Path) -> None:
    done = mlx.run_experiment(
        small_classification(epochs=1), record={"sweep": "s", "point": "p"}, quiet=True
    )
    summary = json.loads((done.directory / "summary.json").read_text())
    assert (summary["sweep"], summary["point"], summary["status"]) == (
        "s",
        "p",
        "completed",
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("c\0.yaml", r"^'c\\x00\.yaml': the path contains the control character"),
        ("c\n.yaml", r"^'c\\n\.yaml': the path contains the control character"),
        ("c\x1b.yaml", r"^'c\\x1b\.yaml': the path contains the control character"),
        ("", r"^'': the config path is empty"),
    ],
    ids=["nul", "newline", "escape", "empty"],
)
def test_a_config_path_that_cannot_be_shown_or_used(
    root: Path, path: str, message: str
) -> None:
    for call in (mlx.run_experiment, load_config):
        with pytest.raises(ConfigError, match=message):
            call(path)
    assert _runs(root) == []


@pytest.mark.parametrize("bad", [3, ["run"], b"run"], ids=repr)
def test_run_experiment_refuses_a_resume_of_the_wrong_type(
    root: Path, bad: object
) -> None:
    with pytest.raises(TypeError, match=r"'resume' parameter .* must be a run ID"):
        mlx.run_experiment(resume=bad)  # type: ignore[arg-type]


def test_a_config_and_resume_together_are_refused(run: mlx.experiment.Run) -> None:
    before = (run.directory / "config.yaml").read_bytes()
    with pytest.raises(TypeError, match="not both"):
        mlx.run_experiment(small_classification(), resume=run.run_id)
    assert (run.directory / "config.yaml").read_bytes() == before


def test_resume_with_one_override_string(run: mlx.experiment.Run) -> None:
    resumed = mlx.run_experiment(
        resume=run.directory, overrides="training.epochs=3", quiet=True
    )
    assert resumed.config.training.epochs == 3 and resumed.status == "completed"


def test_load_config_takes_one_override_string(root: Path) -> None:
    path = root / "c.json"
    path.write_text(__import__("json").dumps(small_classification()))
    assert load_config(path, "training.epochs=7").training.epochs == 7
    with pytest.raises(TypeError, match=r"'overrides' parameter of load_config"):
        load_config(path, 7)  # type: ignore[arg-type]


def test_no_overrides_may_be_given_as_none(root: Path) -> None:
    result = mlx.run_experiment(
        small_classification(epochs=1), overrides=None, quiet=True
    )
    assert result.status == "completed"


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda x: np.int64(x) if type(x) is int else x, id="int64"),
        pytest.param(lambda x: np.int32(x) if type(x) is int else x, id="int32"),
        pytest.param(lambda x: np.uint16(x) if type(x) is int else x, id="uint16"),
        pytest.param(lambda x: np.float64(x) if type(x) is float else x, id="float64"),
        pytest.param(lambda x: np.array(x) if type(x) is list else x, id="ndarray"),
    ],
)
def test_numpy_values_in_a_config_are_the_numbers_they_hold(
    root: Path, convert: Any
) -> None:
    # np.int64(2) epochs used to be refused: "must be an integer >= 1, got int64"
    def deep(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: deep(v) for k, v in value.items()}
        if isinstance(value, list):
            return convert([deep(v) for v in value])
        return convert(value)

    plain = small_classification(epochs=2)
    numpy_config = deep(plain)
    assert parse_config(numpy_config).to_dict() == parse_config(plain).to_dict()
    ours = mlx.run_experiment(numpy_config, quiet=True)
    theirs = mlx.run_experiment(plain, quiet=True)
    assert ours.final_metrics == theirs.final_metrics
