"""End to end: mlx run-experiment trains for real; its run directory tells the truth."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    REPO_ROOT,
    cli_env,
    run_cli,
    small_classification,
    start_cli,
    write_config,
)

import mlx
from mlx.errors import DivergenceError, MLXError, MLXWarning, RunError


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLX_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run_dirs(root: Path) -> list:
    base = root / "outputs"
    return sorted(p for p in base.iterdir() if p.is_dir()) if base.exists() else []


def _metrics(run_dir: Path) -> list:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _without_time(records: list) -> list:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_run_directory_has_every_documented_file(root: Path) -> None:
    config = small_classification(epochs=5)
    config["output"]["checkpoint_frequency"] = 2
    run = mlx.run_experiment(config, quiet=True)

    d = run.directory
    assert d.parent == root / "outputs" and d.name == run.run_id
    for name in (
        "config.yaml",
        "environment.json",
        "metrics.jsonl",
        "train.log",
        "summary.json",
        "data.json",
        "model/model.safetensors",
        "model/config.json",
    ):
        assert (d / name).is_file(), name
    # epochs 2, 4 and the final 5 are saved, and `last` points at the newest
    saved = sorted(p.name for p in (d / "checkpoints").iterdir() if p.name != "last")
    assert saved == ["epoch-0002", "epoch-0004", "epoch-0005"]
    assert (d / "checkpoints" / "last").resolve().name == "epoch-0005"
    records = _metrics(d)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4, 5]
    assert {
        "step",
        "train_loss",
        "val_loss",
        "val_accuracy",
        "learning_rate",
        "seconds",
    } <= set(records[0])
    assert records[-1]["step"] == 5 * int(np.ceil(480 / 32))
    summary = json.loads((d / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["final_metrics"]["val_accuracy"] == records[-1]["val_accuracy"]
    assert run.status == "completed"


def test_checkpoint_frequency_three_of_ten(root: Path) -> None:
    config = small_classification(epochs=10)
    config["output"]["checkpoint_frequency"] = 3
    run = mlx.run_experiment(config, quiet=True)
    saved = sorted(
        p.name for p in (run.directory / "checkpoints").iterdir() if p.name != "last"
    )
    assert saved == ["epoch-0003", "epoch-0006", "epoch-0009", "epoch-0010"]


def test_same_config_twice_gives_identical_weight_bytes(root: Path) -> None:
    first = mlx.run_experiment(small_classification(), quiet=True)
    second = mlx.run_experiment(small_classification(), quiet=True)
    assert first.run_id != second.run_id
    a = (first.directory / "model" / "model.safetensors").read_bytes()
    b = (second.directory / "model" / "model.safetensors").read_bytes()
    assert a == b
    assert _without_time(_metrics(first.directory)) == _without_time(
        _metrics(second.directory)
    )


def test_training_learns(root: Path) -> None:
    config = small_classification(epochs=15)
    run = mlx.run_experiment(config, quiet=True)
    records = _metrics(run.directory)
    assert records[-1]["train_loss"] < records[0]["train_loss"] * 0.6
    assert records[-1]["val_accuracy"] > 0.8


def test_closed_form_model_fits_once(root: Path) -> None:
    config = {
        "name": "ridge",
        "dataset": {
            "name": "synthetic_regression",
            "params": {"n_samples": 500, "n_features": 5, "seed": 1},
        },
        "model": {"name": "linear_regression", "params": {"l2_regularization": 0.1}},
        "training": {"epochs": 7},
    }
    run = mlx.run_experiment(config, quiet=True)
    records = _metrics(run.directory)
    assert len(records) == 1 and records[0]["epoch"] == 1
    assert records[0]["val_r2"] > 0.95
    assert "closed-form fit" in (run.directory / "train.log").read_text()


@pytest.mark.slow
def test_four_concurrent_runs_are_distinct_and_identical(root: Path) -> None:
    path = write_config(root / "exp.yaml", small_classification())
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlx",
                "run-experiment",
                "--config",
                str(path),
                "--quiet",
            ],
            cwd=root,
            env=cli_env(root),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    runs = _run_dirs(root)
    assert len(runs) == 4
    weights = {(d / "model" / "model.safetensors").read_bytes() for d in runs}
    assert len(weights) == 1
    for d in runs:
        assert json.loads((d / "summary.json").read_text())["status"] == "completed"


def _slow_config(**training: object) -> dict:
    config = small_classification(epochs=6, batch_size=8, **training)
    config["dataset"]["params"]["n_samples"] = 6000
    config["model"]["params"]["layer_sizes"] = [8, 256, 256, 3]
    return config


def _wait_for_metrics_lines(run_root: Path, n: int, proc: subprocess.Popen) -> Path:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for d in _run_dirs(run_root):
            m = d / "metrics.jsonl"
            if m.exists() and len(m.read_text().splitlines()) >= n:
                return d
        time.sleep(0.02)
    raise AssertionError("the run never reached the expected epoch")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run of ``_slow_config`` made in one go, read (never changed) by every
    kill-and-resume test: the same config and seed make the same run."""
    reference_root = tmp_path_factory.mktemp("reference")
    (reference_root / "pyproject.toml").write_text("")
    write_config(reference_root / "exp.yaml", _slow_config())
    done = run_cli(
        ["run-experiment", "--config", "exp.yaml", "--quiet"],
        reference_root,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (reference,) = _run_dirs(reference_root)
    return reference


@pytest.mark.parametrize(
    "sig, code",
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -9)],
    ids=["sigint", "sigterm", "sigkill"],
)
@pytest.mark.slow
def test_kill_and_resume_equals_uninterrupted(
    root: Path, uninterrupted: Path, sig: signal.Signals, code: int
) -> None:
    reference = uninterrupted
    write_config(root / "exp.yaml", _slow_config())
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlx",
            "run-experiment",
            "--config",
            "exp.yaml",
            "--quiet",
        ],
        cwd=root,
        env=cli_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_dir = _wait_for_metrics_lines(root, 2, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    summary = json.loads((run_dir / "summary.json").read_text())
    if sig == signal.SIGKILL:
        assert summary["status"] == "running"  # listed as lost: see test_runs
    else:
        assert summary["status"] == "interrupted"
        assert "--resume" in err

    resumed = run_cli(
        ["run-experiment", "--resume", run_dir.name, "--quiet"], root, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert (run_dir / "model" / "model.safetensors").read_bytes() == (
        reference / "model" / "model.safetensors"
    ).read_bytes()
    assert _without_time(_metrics(run_dir)) == _without_time(_metrics(reference))
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


@pytest.mark.slow
def test_a_second_ctrl_c_aborts_at_once_and_leaves_whole_files(root: Path) -> None:
    write_config(root / "exp.yaml", _slow_config())
    proc = start_cli(["run-experiment", "--config", "exp.yaml", "--quiet"], root)
    run_dir = _wait_for_metrics_lines(root, 1, proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    _metrics(run_dir)  # every line parses
    for checkpoint in (run_dir / "checkpoints").glob("epoch-*"):
        assert (checkpoint / "trainer_state.json").is_file()


def test_resume_refuses_a_changed_config(root: Path) -> None:
    run = mlx.run_experiment(small_classification(), quiet=True)
    with pytest.raises(RunError, match=r"training.learning_rate: 0.01 -> 0.02"):
        mlx.run_experiment(resume=run.run_id, overrides=["training.learning_rate=0.02"])


def test_resume_with_more_epochs_continues_the_same_run(root: Path) -> None:
    longer = mlx.run_experiment(small_classification(epochs=6), quiet=True)
    run = mlx.run_experiment(small_classification(epochs=3), quiet=True)
    resumed = mlx.run_experiment(
        resume=run.run_id, overrides=["training.epochs=6"], quiet=True
    )
    assert resumed.directory == run.directory
    assert [r["epoch"] for r in _metrics(run.directory)] == [1, 2, 3, 4, 5, 6]
    assert (run.directory / "model" / "model.safetensors").read_bytes() == (
        longer.directory / "model" / "model.safetensors"
    ).read_bytes()


@pytest.mark.parametrize("resumed", [False, True], ids=["new", "resumed"])
def test_the_backend_is_decided_once_per_run(
    root: Path, monkeypatch: pytest.MonkeyPatch, resumed: bool
) -> None:
    import mlx.experiment.build
    import mlx.models
    import mlx.runs.records

    run = mlx.run_experiment(small_classification(epochs=2), quiet=True)
    asked = []
    decide = mlx.models.uses_torch

    def counting(name: str, params: object) -> bool:
        asked.append(name)
        return decide(name, params)  # type: ignore[arg-type]

    for module in (mlx.models, mlx.experiment.build, mlx.runs.records):
        monkeypatch.setattr(module, "uses_torch", counting)
    if resumed:
        mlx.run_experiment(
            resume=run.run_id, overrides=["training.epochs=3"], quiet=True
        )
    else:
        mlx.run_experiment(small_classification(epochs=2), quiet=True)
    assert asked == ["mlp"]


def test_resume_without_checkpoint_fails_loudly(root: Path) -> None:
    config = small_classification()
    config["output"]["save_checkpoints"] = False
    run = mlx.run_experiment(config, quiet=True)
    with pytest.raises(RunError, match="has no checkpoint"):
        mlx.run_experiment(resume=run.run_id)


def test_resume_with_a_corrupt_checkpoint_fails_loudly(root: Path) -> None:
    from mlx.errors import CheckpointError

    run = mlx.run_experiment(small_classification(), quiet=True)
    last = (run.directory / "checkpoints" / "last").resolve()
    (last / "model.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(CheckpointError):
        mlx.run_experiment(resume=run.run_id, overrides=["training.epochs=6"])


def test_resume_refuses_a_checkpoint_from_another_config(root: Path) -> None:
    from mlx.errors import CheckpointError

    run = mlx.run_experiment(small_classification(), quiet=True)
    state_file = (run.directory / "checkpoints" / "last").resolve()
    state_file = state_file / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["config_fingerprint"] = "0" * 64
    state_file.write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="written for another configuration"):
        mlx.run_experiment(resume=run.run_id, overrides=["training.epochs=6"])


def _fail_second_call(
    monkeypatch: pytest.MonkeyPatch, owner: object, name: str
) -> None:
    """Make ``owner.name`` raise OSError("disk full") on its second call."""
    original = getattr(owner, name)
    calls = {"n": 0}

    def failing(*args: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return original(*args)

    monkeypatch.setattr(owner, name, failing)


@pytest.mark.parametrize(
    "where",
    [
        # a model class that replaces save(): saved on the training thread
        "MLP.save",
        # the default: the checkpoint files are written on a worker thread, whose
        # error must still end the run on the training thread
        "write_checkpoint",
    ],
)
def test_a_failed_checkpoint_write_fails_the_run_and_keeps_the_previous_one(
    root: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    from mlx.models import MLP, load_model
    from mlx.models import checkpoint as model_checkpoint

    if where == "MLP.save":
        _fail_second_call(monkeypatch, MLP, "save")
    else:
        _fail_second_call(monkeypatch, model_checkpoint, "write_checkpoint")
    with pytest.raises(RunError, match="disk full") as caught:
        mlx.run_experiment(small_classification(), quiet=True)
    assert isinstance(caught.value.__cause__, OSError)
    (run_dir,) = _run_dirs(root)
    last = (run_dir / "checkpoints" / "last").resolve()
    assert last.name == "epoch-0001"
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name[0] == "."]
    load_model(last)  # loads cleanly
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "disk full" in summary["error"]


def test_each_checkpoint_holds_the_weights_of_its_epoch(root: Path) -> None:
    # written in the background while later epochs train, yet equal to a run that
    # stops after that epoch
    from safetensors import safe_open

    long = mlx.run_experiment(small_classification(epochs=4), quiet=True)
    for epoch in (1, 2):
        short = mlx.run_experiment(small_classification(epochs=epoch), quiet=True)
        checkpoint = long.directory / "checkpoints" / f"epoch-{epoch:04d}"
        expected = (short.directory / "model" / "model.safetensors").read_bytes()
        assert (checkpoint / "model.safetensors").read_bytes() == expected
        # (its metadata keys may come in another order: compare the contents)
        with safe_open(checkpoint / "optimizer.safetensors", "numpy") as got:
            with safe_open(
                short.directory / "model" / "optimizer.safetensors", "numpy"
            ) as want:
                assert got.metadata() == want.metadata()
                assert sorted(got.keys()) == sorted(want.keys())
                for key in want.keys():
                    assert np.array_equal(got.get_tensor(key), want.get_tensor(key))


def test_divergence_marks_the_run_failed_and_keeps_the_last_good_checkpoint(
    root: Path,
) -> None:
    config = {
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
    }
    write_config(root / "exp.yaml", config)
    done = run_cli(["run-experiment", "--config", "exp.yaml"], root)
    assert done.returncode == 1
    assert "diverged at epoch" in done.stderr and "learning_rate" in done.stderr
    assert "Traceback" not in done.stderr
    (run_dir,) = _run_dirs(root)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "diverged" in summary["error"]


def test_divergence_error_through_the_api(root: Path) -> None:
    config = small_classification(learning_rate=1e6, optimizer="sgd")
    config["model"]["params"].update(gradient_clip=None, weight_clip=None)
    config["dataset"]["name"] = "synthetic_regression"
    config["dataset"]["params"].pop("n_classes")
    config["model"]["params"].update(layer_sizes=[8, 16, 1], output_activation=None)
    with pytest.raises(DivergenceError, match="diverged"), pytest.warns(MLXWarning):
        mlx.run_experiment(config, quiet=True)


def test_bad_dataset_leaves_nothing_on_disk(root: Path) -> None:
    config = small_classification()
    config["dataset"] = {"name": "custom", "path": str(root / "missing.csv")}
    with pytest.raises(MLXError, match="missing.csv"), pytest.warns(MLXWarning):
        mlx.run_experiment(config, quiet=True)
    assert _run_dirs(root) == []


@pytest.mark.parametrize(
    "example",
    ["quickstart.yaml", "regression.yaml", "custom_model.yaml"],
    ids=["quickstart", "regression", "custom"],
)
def test_examples_run_end_to_end(tmp_path: Path, example: str) -> None:
    # a copy of the examples, so the outputs stay out of the checkout
    shutil.copytree(REPO_ROOT / "examples", tmp_path / "examples")
    (tmp_path / "pyproject.toml").write_text("")
    done = run_cli(
        ["run-experiment", "--config", f"examples/{example}", "--quiet"],
        tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (summary,) = (tmp_path / "outputs").glob("**/summary.json")
    assert json.loads(summary.read_text())["status"] == "completed"


def test_float32_run_keeps_its_data_in_float32_through_eval_and_resume(
    root: Path,
) -> None:
    config = small_classification(epochs=2)
    config["model"]["params"]["dtype"] = "float32"
    run = mlx.run_experiment(config, quiet=True)
    record = json.loads((run.directory / "data.json").read_text())
    assert record["preprocessing"]["feature_dtype"] == "float32"
    result = mlx.evaluate(run.run_id)  # rebuilds the splits in float32: they match
    assert result["n_samples"] == 60
    longer = dict(config, training={**config["training"], "epochs": 4})
    straight = mlx.run_experiment(longer, quiet=True)
    mlx.run_experiment(resume=run.run_id, overrides=["training.epochs=4"], quiet=True)
    assert (run.directory / "model" / "model.safetensors").read_bytes() == (
        straight.directory / "model" / "model.safetensors"
    ).read_bytes()


def test_a_data_record_without_feature_dtype_is_read_as_float64(root: Path) -> None:
    # runs recorded before feature_dtype was honoured have float64 fingerprints
    run = mlx.run_experiment(small_classification(epochs=1), quiet=True)
    path = run.directory / "data.json"
    record = json.loads(path.read_text())
    del record["preprocessing"]["feature_dtype"]
    path.write_text(json.dumps(record))
    assert mlx.evaluate(run.run_id)["n_samples"] == 60
