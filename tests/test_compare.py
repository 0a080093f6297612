"""``mlx compare RUN RUN... [--json]`` through the real CLI; the oracle is each run's
own files (config.yaml, summary.json, metrics.jsonl, evals/*.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import run_cli, small_classification, write_config


def _refuse(constant: str) -> Any:
    raise ValueError(f"not strict JSON: {constant}")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


def _train(root: Path, *sets: str, name: str = "cmp") -> Path:
    write_config(root / "exp.yaml", small_classification(epochs=2))
    args = ["run-experiment", name, "--config", "exp.yaml", "--json", "--quiet"]
    for item in sets:
        args += ["--set", item]
    done = run_cli(args, root)
    assert done.returncode == 0, done.stderr
    return Path(json.loads(done.stdout)["directory"])


def _compare(root: Path, *refs: str) -> dict:
    done = run_cli(["compare", *refs, "--json"], root)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout, parse_constant=_refuse)


def _leaves(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        found: dict[str, Any] = {}
        for key, value in data.items():
            found.update(_leaves(value, f"{prefix}.{key}" if prefix else key))
        return found
    return {prefix: data}


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("compare")
    (root / "pyproject.toml").write_text("")
    runs = [
        _train(root),
        _train(root, "training.epochs=3", "training.learning_rate=0.02"),
        _train(root, "model.params.layer_sizes=[8, 32, 3]", name="wide"),
    ]
    done = run_cli(["eval", runs[1].name, "--split", "val"], root)
    assert done.returncode == 0, done.stderr
    return root, runs


def test_compare_json_has_the_contract_and_only_differing_config(
    three: tuple[Path, list[Path]],
) -> None:
    root, runs = three
    ids = [run.name for run in runs]
    result = _compare(root, *ids)
    assert set(result) == {"runs", "config_differences", "metrics"}
    assert result["runs"] == ids
    assert result["config_differences"] == {
        "name": ["cmp", "cmp", "wide"],
        "training.epochs": [2, 3, 2],
        "training.learning_rate": [0.01, 0.02, 0.01],
        "model.params.layer_sizes": [[8, 16, 3], [8, 16, 3], [8, 32, 3]],
    }
    # the oracle: the dotted leaves of each config.yaml that are not all equal
    configs = [
        _leaves(yaml.safe_load((run / "config.yaml").read_text())) for run in runs
    ]
    differing = {
        key for key in configs[0] if len({json.dumps(c[key]) for c in configs}) > 1
    }
    assert differing == set(result["config_differences"])


def test_compare_metrics_equal_the_runs_files(
    three: tuple[Path, list[Path]],
) -> None:
    root, runs = three
    result = _compare(root, *(run.name for run in runs))
    for run in runs:
        entry = result["metrics"][run.name]
        summary = json.loads((run / "summary.json").read_text())
        records = [
            json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()
        ]
        assert entry["status"] == summary["status"] == "completed"
        assert entry["epochs_completed"] == summary["epochs_completed"]
        assert entry["final_metrics"] == summary["final_metrics"]
        assert entry["best_metric"] == summary["best_metric"]
        assert entry["duration_seconds"] == pytest.approx(
            summary["timings"]["total_seconds"]
        )
        assert entry["directory"] == str(run)
        best_loss = min(records, key=lambda r: r["val_loss"])
        assert entry["best_metrics"]["val_loss"] == {
            "value": best_loss["val_loss"],
            "epoch": best_loss["epoch"],
        }
        best_accuracy = max(r["val_accuracy"] for r in records)
        assert entry["best_metrics"]["val_accuracy"]["value"] == best_accuracy
        assert entry["best_metrics"]["train_loss"]["value"] == min(
            r["train_loss"] for r in records
        )
        assert "learning_rate" not in entry["best_metrics"]
    evaluated = result["metrics"][runs[1].name]["latest_eval"]
    (saved,) = sorted((runs[1] / "evals").iterdir())
    on_disk = json.loads(saved.read_text())
    assert evaluated == {
        "path": str(saved),
        "split": "val",
        "checkpoint": "final",
        "epoch": on_disk["epoch"],
        "trained_since": None,
        "metrics": on_disk["metrics"],
    }
    assert (
        on_disk["epoch"]
        == json.loads((runs[1] / "summary.json").read_text())["epochs_completed"]
    )
    assert result["metrics"][runs[0].name]["latest_eval"] is None


def test_compare_latest_eval_is_the_newest(root: Path) -> None:
    first, second = _train(root), _train(root, "training.epochs=1")
    for args in (
        ["--metrics", "accuracy"],
        ["--metrics", "f1_score", "--split", "train"],
    ):
        done = run_cli(["eval", first.name, *args], root)
        assert done.returncode == 0, done.stderr
    result = _compare(root, first.name, second.name)
    latest = result["metrics"][first.name]["latest_eval"]
    assert latest["split"] == "train" and set(latest["metrics"]) == {"f1_score"}
    assert latest["path"] == str(sorted((first / "evals").iterdir())[-1])
    assert result["metrics"][second.name]["latest_eval"] is None


def test_compare_text_shows_the_differences_side_by_side(
    three: tuple[Path, list[Path]],
) -> None:
    root, runs = three
    done = run_cli(["compare", runs[0].name, str(runs[1])], root)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == [runs[0].name, runs[1].name]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["training.epochs"] == ["2", "3"]
    assert rows["training.learning_rate"] == ["0.01", "0.02"]
    assert rows["status"] == ["completed", "completed"]
    assert "training.batch_size" not in rows and "name" not in rows
    summary = json.loads((runs[0] / "summary.json").read_text())
    value = summary["final_metrics"]["val_loss"]
    assert any(
        line.startswith("final val_loss") and f"{value:.6g}" in line for line in lines
    )


def test_compare_of_identical_configs_says_so(root: Path) -> None:
    first, second = _train(root), _train(root)
    result = _compare(root, first.name, second.name)
    assert result["config_differences"] == {}
    # the same seeds give the same metrics
    metrics = result["metrics"]
    assert metrics[first.name]["final_metrics"] == metrics[second.name]["final_metrics"]
    text = run_cli(["compare", first.name, second.name], root)
    assert "(config)" in text.stdout and "same" in text.stdout


def _fails(done: Any, *needles: str) -> None:
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("error: ")
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def test_compare_errors(three: tuple[Path, list[Path]]) -> None:
    root, runs = three
    a, b = runs[0].name, runs[1].name
    _fails(run_cli(["compare", "--json"], root), "two or more runs")
    _fails(run_cli(["compare", a, "--json"], root), "two or more runs", a)
    _fails(run_cli(["compare", a], root), "two or more runs")
    _fails(run_cli(["compare", a, "nope", "--json"], root), "No run 'nope'")
    _fails(run_cli(["compare", a, a, "--json"], root), "named twice")
    # the same run by its ID and by its directory is still one run
    _fails(run_cli(["compare", a, str(runs[0]), b, "--json"], root), "named twice")
    # a prefix that matches several runs
    _fails(run_cli(["compare", "cmp-", b, "--json"], root), "matches 2 runs")
    _fails(run_cli(["compare", a, "no/such/dir"], root), "No run directory")
    broken = root / "outputs" / "broken-20200101-000000-abcd"
    broken.mkdir(exist_ok=True)
    (broken / "summary.json").write_text("{")
    _fails(run_cli(["compare", a, broken.name, "--json"], root), broken.name)
    _fails(run_cli(["compare", a, "bad\x1bname"], root), "control character")
    _fails(run_cli(["compare", a, b, "--root", "exp.yaml"], root), "not a directory")
    # --root moves the search: the runs are not under it
    (root / "empty").mkdir(exist_ok=True)
    _fails(run_cli(["compare", a, b, "--root", "empty"], root), "No run")
    ok = run_cli(["compare", a, b, "--root", "outputs", "--json"], root)
    assert ok.returncode == 0 and json.loads(ok.stdout)["runs"] == [a, b]


def test_a_field_null_in_one_run_and_absent_in_the_other_is_no_difference(
    root: Path,
) -> None:
    classifier = _train(root)
    lines = ["a,b,t"] + [f"{i % 7},{i % 5},{0.5 * i}" for i in range(40)]
    (root / "d.csv").write_text("\n".join(lines) + "\n")
    write_config(
        root / "csv.yaml",
        {
            "name": "csv",
            "dataset": {"name": "custom", "path": "d.csv", "params": {"target": "t"}},
            "model": {"name": "linear_regression"},
            "training": {"epochs": 1},
            "output": {"directory": "outputs"},
        },
    )
    done = run_cli(["run-experiment", "--config", "csv.yaml", "--json"], root)
    assert done.returncode == 0, done.stderr
    regression = Path(json.loads(done.stdout)["directory"])
    flat = _leaves(yaml.safe_load((regression / "config.yaml").read_text()))
    # the oracle: a field the CSV run holds as null, which the other run lacks
    assert flat["dataset.params.task"] is None
    assert "dataset.params.task" not in _leaves(
        yaml.safe_load((classifier / "config.yaml").read_text())
    )
    result = _compare(root, classifier.name, regression.name)
    differences = result["config_differences"]
    assert "dataset.params.task" not in differences
    assert differences["dataset.path"] == [None, str(root / "d.csv")]
    for path, values in differences.items():
        assert len({json.dumps(v) for v in values}) > 1, path
    text = run_cli(["compare", classifier.name, regression.name], root)
    assert text.returncode == 0, text.stderr
    assert "dataset.params.task" not in text.stdout
    assert "dataset.path" in text.stdout
