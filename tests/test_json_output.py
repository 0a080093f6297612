"""``--json`` output of every command and strict JSON in every file a run writes,
through the real CLI. The oracle is the run's own files (summary.json, evals/*.json)
and a strict parser (Python's with NaN refused, and node's JSON.parse)."""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from helpers import run_cli, small_classification, start_cli, write_config

RUN_RECORD = {"run_id", "directory", "status", "final_metrics"}
LISTED = {
    "run_id",
    "name",
    "status",
    "directory",
    "epochs_completed",
    "metric",
    "final_metrics",
    "started_at",
    "finished_at",
}
SHOWN = LISTED | {
    "pid",
    "host",
    "holds_lock",
    "heartbeat_at",
    "duration_seconds",
    "best_metric",
    "error",
    "checkpoint",
    "checkpoints",
    "model_saved",
    "parameters",
    "evaluations",
    "metrics_records",
    "timings",
    "segments",
}
EVAL_RECORD = {
    "run_id",
    "split",
    "checkpoint",
    "metrics",
    "path",
    "n_samples",
    "model",
    "created_at",
    "epoch",
    "step",
}
PLAN = {"config", "dataset", "model", "backend", "outputs", "can_run", "reason"}


def _refuse(constant: str) -> Any:
    raise ValueError(f"not strict JSON: {constant}")


def strict(text: str) -> Any:
    """``text`` parsed as RFC 8259 JSON: NaN and Infinity are refused."""
    return json.loads(text, parse_constant=_refuse)


def _json_out(done: subprocess.CompletedProcess) -> Any:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return strict(done.stdout)  # the whole of stdout is one document


def _fails_cleanly(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("error: ") or "\nerror: " in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


def _summary(directory: Path) -> dict:
    return json.loads((directory / "summary.json").read_text(encoding="utf-8"))


def _train(root: Path, name: str, *extra: str, epochs: int = 2) -> dict:
    write_config(root / "exp.yaml", small_classification(epochs=epochs))
    done = run_cli(
        ["run-experiment", name, "--config", "exp.yaml", "--json", *extra], root
    )
    return _json_out(done)


# -- run-experiment ---------------------------------------------------------------


def test_run_experiment_json_is_the_run_record(root: Path) -> None:
    write_config(root / "exp.yaml", small_classification(epochs=3))
    done = run_cli(["run-experiment", "--config", "exp.yaml", "--json"], root)
    record = _json_out(done)
    assert set(record) == RUN_RECORD
    directory = Path(record["directory"])
    assert directory.parent == root / "outputs"
    summary = _summary(directory)
    assert record["run_id"] == summary["run_id"] == directory.name
    assert record["status"] == summary["status"] == "completed"
    assert record["final_metrics"] == summary["final_metrics"]
    assert set(record["final_metrics"]) == {"train_loss", "val_loss", "val_accuracy"}
    # progress went to stderr, not into the document
    assert "epoch" in done.stderr and record["run_id"] in done.stderr


def test_run_experiment_json_with_quiet_and_with_the_default_experiment(
    root: Path,
) -> None:
    done = run_cli(
        [
            "run-experiment",
            "builtin",
            "--json",
            "--quiet",
            "--set",
            "training.epochs=1",
        ],
        root,
    )
    record = _json_out(done)
    assert set(record) == RUN_RECORD
    assert record["run_id"].startswith("builtin-")
    assert (
        _summary(Path(record["directory"]))["final_metrics"] == record["final_metrics"]
    )
    assert "note: no --config given" in done.stderr


def test_run_experiment_json_bad_config_keeps_stdout_empty(root: Path) -> None:
    write_config(root / "bad.yaml", small_classification(epochs=-1))
    _fails_cleanly(run_cli(["run-experiment", "--config", "bad.yaml", "--json"], root))
    _fails_cleanly(run_cli(["run-experiment", "--config", "none.yaml", "--json"], root))
    assert not (root / "outputs").exists()


DIVERGING = {
    "name": "diverge",
    "dataset": {
        "name": "synthetic_regression",
        "params": {"n_samples": 200, "n_features": 4, "seed": 1},
    },
    "model": {
        "name": "mlp",
        "params": {
            "layer_sizes": [4, 8, 1],
            "seed": 0,
            "gradient_clip": None,
            "weight_clip": None,
        },
    },
    "training": {
        "epochs": 50,
        "batch_size": 16,
        "learning_rate": 0.5,
        "optimizer": "sgd",
        "seed": 0,
    },
    "output": {"directory": "outputs"},
}


def test_a_failed_run_still_prints_its_record_and_exits_1(root: Path) -> None:
    write_config(root / "exp.yaml", DIVERGING)
    done = run_cli(["run-experiment", "--config", "exp.yaml", "--json"], root)
    assert done.returncode == 1
    assert "error: training diverged" in done.stderr
    assert "Traceback" not in done.stderr
    record = strict(done.stdout)
    assert set(record) == RUN_RECORD
    summary = _summary(Path(record["directory"]))
    assert record["status"] == summary["status"] == "failed"
    assert record["run_id"] == summary["run_id"]
    assert record["final_metrics"] == {}
    _all_files_strict(Path(record["directory"]))


@pytest.mark.slow
def test_an_interrupted_run_prints_its_record_with_the_signal_exit_code(
    root: Path,
) -> None:
    config = small_classification(epochs=300, batch_size=8)
    config["dataset"]["params"]["n_samples"] = 3000
    config["model"]["params"]["layer_sizes"] = [8, 128, 3]
    write_config(root / "exp.yaml", config)
    proc = start_cli(["run-experiment", "--config", "exp.yaml", "--json"], root)
    try:
        while True:
            assert proc.poll() is None, proc.communicate()
            logs = list((root / "outputs").glob("small-*/metrics.jsonl"))
            if logs and logs[0].read_text().strip():
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "error: run " in stderr and "interrupted" in stderr
    record = strict(stdout)
    assert set(record) == RUN_RECORD
    summary = _summary(Path(record["directory"]))
    assert record["status"] == summary["status"] == "interrupted"
    assert record["run_id"] == summary["run_id"]


# -- dry run -----------------------------------------------------------------------


def test_dry_run_json_is_the_plan_with_the_text_plans_config(root: Path) -> None:
    write_config(root / "exp.yaml", small_classification())
    plan = _json_out(
        run_cli(["run-experiment", "--config", "exp.yaml", "--dry-run", "--json"], root)
    )
    assert set(plan) == PLAN
    text = run_cli(["run-experiment", "--config", "exp.yaml", "--dry-run"], root)
    assert plan["config"] == yaml.safe_load(text.stdout.split("\nplan (")[0])
    assert plan["dataset"] == {
        "name": "synthetic_classification",
        "n_samples": 600,
        "n_features": 8,
        "task": "classification",
        "n_classes": 3,
        "memory_bytes": 600 * 8 * 8 + 600 * 8,
        "feature_dtype": "float64",
    }
    # an MLP 8-16-3: (8 + 1) * 16 weights and biases, then (16 + 1) * 3
    assert plan["model"] == {"name": "mlp", "parameters": 9 * 16 + 17 * 3}
    assert plan["can_run"] is True and plan["reason"] is None
    assert plan["outputs"].startswith(str(root / "outputs") + "/small-")
    assert f"{plan['model']['parameters']:,} trainable" in text.stdout
    assert not (root / "outputs").exists()


def test_dry_run_json_says_why_a_run_cannot_go_ahead(root: Path) -> None:
    (root / "outputs").write_text("a file, not a directory")
    write_config(root / "exp.yaml", small_classification())
    done = run_cli(
        ["run-experiment", "--config", "exp.yaml", "--dry-run", "--json"], root
    )
    # valid, but cannot run here: exit status 3, the reason on stderr too
    assert done.returncode == 3 and "Traceback" not in done.stderr
    plan = strict(done.stdout)
    assert done.stderr == f"error: cannot run here: {plan['reason']}\n"
    assert plan["can_run"] is False
    assert "output.directory" in plan["reason"] and "is a file" in plan["reason"]
    regression = small_classification()
    regression["dataset"] = {
        "name": "synthetic_regression",
        "params": {"n_samples": 50, "n_features": 3},
    }
    regression["model"] = {"name": "linear_regression"}
    regression["output"] = {"directory": "elsewhere"}
    write_config(root / "reg.yaml", regression)
    plan = _json_out(
        run_cli(["run-experiment", "--config", "reg.yaml", "--dry-run", "--json"], root)
    )
    assert plan["dataset"]["task"] == "regression"
    assert plan["dataset"]["n_classes"] is None
    assert plan["model"] == {"name": "linear_regression", "parameters": 4}
    assert plan["can_run"] is True


# -- runs, runs show ----------------------------------------------------------------


def test_runs_json_lists_every_run_with_the_summarys_values(root: Path) -> None:
    first = _train(root, "first", epochs=2)
    second = _train(root, "second", epochs=1)
    # a corrupt run is skipped with a warning on stderr, never in the document
    broken = root / "outputs" / "broken-20200101-000000-abcd"
    broken.mkdir()
    (broken / "summary.json").write_text("{not json")
    done = run_cli(["runs", "--json"], root)
    listed = _json_out(done)
    assert "warning: Skipped a run" in done.stderr and broken.name in done.stderr
    assert [r["run_id"] for r in listed] == [second["run_id"], first["run_id"]]
    for entry in listed:
        assert set(entry) == LISTED
        summary = _summary(Path(entry["directory"]))
        for key in ("run_id", "name", "status", "epochs_completed", "final_metrics"):
            assert entry[key] == summary[key], key
        assert entry["started_at"] == summary["started_at"]
        assert entry["finished_at"] == summary["finished_at"]
        assert entry["metric"] == {
            "name": summary["best_metric"]["name"],
            "value": summary["best_metric"]["value"],
            "kind": "best",
        }
    # the text table shows the same runs
    table = run_cli(["runs"], root).stdout.splitlines()[1:]
    assert [line.split()[0] for line in table] == [r["run_id"] for r in listed]


def test_runs_json_without_runs_is_an_empty_list(root: Path) -> None:
    assert _json_out(run_cli(["runs", "--json"], root)) == []
    assert _json_out(run_cli(["runs", "--json", "--root", "nowhere"], root)) == []
    (root / "file").write_text("")
    _fails_cleanly(run_cli(["runs", "--json", "--root", "file"], root))


def test_runs_show_json_matches_the_run_directory(root: Path) -> None:
    record = _train(root, "shown", epochs=3)
    run_id = record["run_id"]
    directory = Path(record["directory"])
    assert run_cli(["eval", run_id], root).returncode == 0
    shown = _json_out(run_cli(["runs", "show", run_id, "--json"], root))
    assert set(shown) == SHOWN
    summary = _summary(directory)
    for key in ("run_id", "name", "status", "pid", "host", "epochs_completed"):
        assert shown[key] == summary[key], key
    assert shown["best_metric"] == summary["best_metric"]
    assert shown["final_metrics"] == summary["final_metrics"]
    assert shown["directory"] == str(directory)
    assert shown["checkpoints"] == sorted(
        p.name for p in (directory / "checkpoints").glob("epoch-*")
    )
    assert shown["checkpoint"] == f"checkpoints/{shown['checkpoints'][-1]}"
    assert shown["evaluations"] == [
        f"evals/{p.name}" for p in sorted((directory / "evals").iterdir())
    ]
    assert shown["model_saved"] is True and shown["holds_lock"] is False
    assert shown["parameters"] == summary["model"]["parameters"]
    lines = (directory / "metrics.jsonl").read_text().splitlines()
    assert shown["metrics_records"] == len(lines) == 3
    assert shown["duration_seconds"] == pytest.approx(
        summary["timings"]["total_seconds"]
    )
    assert [s["status"] for s in shown["segments"]] == ["completed"]
    assert "segments" not in shown["timings"]
    # the same run by its directory
    by_path = _json_out(run_cli(["runs", "show", str(directory), "--json"], root))
    assert by_path["run_id"] == run_id


def test_runs_show_json_errors_keep_stdout_empty(root: Path) -> None:
    _fails_cleanly(run_cli(["runs", "show", "nope", "--json"], root))
    _fails_cleanly(run_cli(["runs", "show", "--json"], root))
    broken = root / "outputs" / "broken-20200101-000000-abcd"
    broken.mkdir(parents=True)
    (broken / "summary.json").write_text("[]")
    _fails_cleanly(run_cli(["runs", "show", broken.name, "--json"], root))


# -- eval ---------------------------------------------------------------------------


def test_eval_json_is_the_saved_evaluation_plus_its_path(root: Path) -> None:
    run_id = _train(root, "evaluated")["run_id"]
    result = _json_out(run_cli(["eval", run_id, "--json"], root))
    assert set(result) == EVAL_RECORD
    saved = Path(result["path"])
    assert saved.parent.name == "evals" and saved.parent.parent.name == run_id
    on_disk = strict(saved.read_text(encoding="utf-8"))
    assert {k: v for k, v in result.items() if k != "path"} == on_disk
    assert result["split"] == "test" and result["checkpoint"] == "final"
    assert set(result["metrics"]) == {
        "accuracy",
        "precision",
        "recall",
        "f1_score",
        "log_loss",
    }
    # a split, a checkpoint, chosen metrics and predictions
    other = _json_out(
        run_cli(
            [
                "eval",
                run_id,
                "--json",
                "--split",
                "val",
                "--checkpoint",
                "epoch-1",
                "--metrics",
                "accuracy",
                "confusion_matrix",
                "--save-predictions",
            ],
            root,
        )
    )
    assert set(other) == EVAL_RECORD | {"predictions", "predictions_sha256"}
    assert other["split"] == "val" and other["checkpoint"] == "epoch-1"
    assert set(other["metrics"]) == {"accuracy", "confusion_matrix"}
    assert Path(other["predictions"]).is_file()
    matrix = np.array(other["metrics"]["confusion_matrix"])
    assert matrix.sum() == other["n_samples"]
    on_disk = strict(Path(other["path"]).read_text(encoding="utf-8"))
    assert {k: v for k, v in other.items() if k != "path"} == on_disk


def test_eval_dry_run_json(root: Path) -> None:
    run_id = _train(root, "checked")["run_id"]
    checked = _json_out(run_cli(["eval", run_id, "--dry-run", "--json"], root))
    assert checked["can_evaluate"] is True and checked["run_id"] == run_id
    assert checked["metric_names"] == [
        "accuracy",
        "precision",
        "recall",
        "f1_score",
        "log_loss",
    ]
    assert not (root / "outputs" / run_id / "evals").exists()
    listed = _json_out(run_cli(["eval", "--dry-run", "--json"], root))
    assert [r["run_id"] for r in listed] == [run_id]


def test_eval_json_errors_keep_stdout_empty(root: Path) -> None:
    run_id = _train(root, "errs")["run_id"]
    _fails_cleanly(run_cli(["eval", "nope", "--json"], root))
    _fails_cleanly(run_cli(["eval", run_id, "--json", "--checkpoint", "epoch-9"], root))
    _fails_cleanly(run_cli(["eval", run_id, "--json", "--metrics", "r2"], root))
    assert not (root / "outputs" / run_id / "evals").exists()


# -- strict JSON in every file ----------------------------------------------------


def _json_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.json*") if p.is_file())


def _all_files_strict(directory: Path) -> list[Any]:
    """Every JSON document under ``directory``, each parsed strictly."""
    documents = []
    for path in _json_files(directory):
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            documents += [strict(line) for line in text.splitlines() if line]
        else:
            documents.append(strict(text))
    return documents


def _huge_target_run(root: Path) -> Path:
    """A run whose losses overflow to inf (targets near 1e200: their squares do not
    fit a float64) and whose R^2 is NaN."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = rng.normal(size=40) * 1e200
    lines = ["a,b,t"] + [f"{a},{b},{t}" for (a, b), t in zip(X.tolist(), y.tolist())]
    (root / "big.csv").write_text("\n".join(lines) + "\n")
    write_config(
        root / "big.yaml",
        {
            "name": "big",
            "dataset": {
                "name": "custom",
                "path": "big.csv",
                "params": {"target": "t", "validation_split": 0.25},
            },
            "model": {"name": "linear_regression"},
            "training": {"epochs": 1, "batch_size": 8, "learning_rate": 0.1},
            "output": {"directory": "outputs"},
        },
    )
    record = _json_out(
        run_cli(["run-experiment", "--config", "big.yaml", "--json", "--quiet"], root)
    )
    assert record["final_metrics"] == {
        "train_loss": None,
        "val_loss": None,
        "val_r2": None,
    }
    return Path(record["directory"])


def test_infinite_and_nan_metrics_are_written_as_null(root: Path) -> None:
    directory = _huge_target_run(root)
    with pytest.warns(RuntimeWarning):  # the oracle: numpy says the loss is inf
        y = np.array([1e200, -1e200])
        assert math.isinf(float(np.mean(y**2)))
    done = run_cli(["eval", directory.name, "--json", "--metrics", "mse", "r2"], root)
    evaluation = _json_out(done)
    assert evaluation["metrics"] == {"mse": None, "r2": None}
    names = {p.name for p in _json_files(directory)}
    assert {"summary.json", "metrics.jsonl", "data.json", "environment.json"} <= names
    assert "trainer_state.json" in names and "config.json" in names
    documents = _all_files_strict(directory)
    assert documents
    summary = _summary(directory)
    assert summary["final_metrics"]["val_loss"] is None
    assert summary["best_metric"]["value"] is None
    (record,) = [
        json.loads(line)
        for line in (directory / "metrics.jsonl").read_text().splitlines()
    ]
    assert record["train_loss"] is None and record["val_loss"] is None
    # readers take null where NaN was written before: listing, showing, comparing
    listing = run_cli(["runs"], root)
    assert listing.returncode == 0 and directory.name in listing.stdout
    assert "warning" not in listing.stderr
    shown = _json_out(run_cli(["runs", "show", directory.name, "--json"], root))
    assert shown["best_metric"]["value"] is None
    assert run_cli(["runs", "show", directory.name], root).returncode == 0


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.slow
def test_node_json_parse_reads_every_file_and_every_output(root: Path) -> None:
    directory = _huge_target_run(root)
    assert (
        run_cli(["eval", directory.name, "--metrics", "mse", "r2"], root).returncode
        == 0
    )
    outputs = root / "cli-outputs"
    outputs.mkdir()
    for number, args in enumerate(
        (
            ["runs", "--json"],
            ["runs", "show", directory.name, "--json"],
            ["eval", directory.name, "--json", "--metrics", "rmse", "r2"],
            ["run-experiment", "--config", "big.yaml", "--dry-run", "--json"],
        )
    ):
        done = run_cli(args, root)
        assert done.returncode == 0, done.stderr
        (outputs / f"{number}.json").write_text(done.stdout)
    files = [*_json_files(directory), *_json_files(outputs)]
    script = (
        "const fs = require('fs');"
        "for (const f of process.argv.slice(1)) {"
        "  const text = fs.readFileSync(f, 'utf8');"
        "  const docs = f.endsWith('.jsonl')"
        "    ? text.split('\\n').filter(Boolean) : [text];"
        "  for (const d of docs) JSON.parse(d);"
        "  console.log('ok ' + f);"
        "}"
    )
    done = subprocess.run(
        ["node", "-e", script, *map(str, files)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("ok ") == len(files) >= 10


def test_to_json_turns_every_non_finite_float_into_null() -> None:
    from mlx.utils.atomic import to_json

    value = {
        "nan": float("nan"),
        "inf": float("inf"),
        "neg": -math.inf,
        "np": np.float32("nan"),
        "np64": np.float64("-inf"),
        "array": np.array([1.0, np.inf, np.nan]),
        "nested": [(1.5, float("nan")), {"x": [math.inf]}],
        "fine": [0.0, -2.5, 1e308, 3, True, None, "NaN"],
    }
    assert strict(to_json(value)) == {
        "nan": None,
        "inf": None,
        "neg": None,
        "np": None,
        "np64": None,
        "array": [1.0, None, None],
        "nested": [[1.5, None], {"x": [None]}],
        "fine": [0.0, -2.5, 1e308, 3, True, None, "NaN"],
    }
