"""The command line, run as ``python -m mlx`` runs it: exit codes, stdout and
stderr."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from data_source import data_source
from helpers import run_cli

REPO = Path(__file__).resolve().parents[1]
# the experiment configs among the examples (sweep.yaml is a sweep file)
EXAMPLES = sorted(
    p
    for p in (REPO / "examples").iterdir()
    if p.suffix in (".json", ".yaml") and p.name != "sweep.yaml"
)


def mlx(*args: str, cwd: Path, root: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("MLX_ROOT", None)
    if root is not None:
        env["MLX_ROOT"] = str(root)
    return run_cli(args, cwd, env=env)


def snapshot(directory: Path) -> dict:
    return {
        str(p.relative_to(directory)): p.stat().st_mtime_ns
        for p in directory.rglob("*")
    }


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


def test_no_command_prints_help_and_fails(work: Path) -> None:
    result = mlx(cwd=work)
    assert result.returncode == 1
    assert "usage: mlx" in result.stderr


def test_missing_experiment_name(work: Path) -> None:
    result = mlx("run-experiment", cwd=work)
    assert result.returncode == 1
    assert "required: experiment_name" in result.stderr


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An empty dataset cache and a loopback mirror that answers, for the examples
    that download their data (the dry run asks the source whether it answers)."""
    monkeypatch.setenv("MLX_DATA_DIR", str(tmp_path / "cache"))
    with data_source(200) as server:
        monkeypatch.setenv("MLX_DATA_URL", server.url)
        yield


@pytest.mark.usefixtures("mirror")
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_passes_dry_run(work: Path, path: Path) -> None:
    before = snapshot(work)
    result = mlx("run-experiment", "--dry-run", "--config", str(path), cwd=work)
    assert result.returncode == 0, result.stderr
    assert "error:" not in result.stderr
    head, _, plan = result.stdout.partition("\nplan (dry run")
    config = yaml.safe_load(head)
    assert config["output"]["directory"].startswith(str(work.resolve()))
    assert "outputs:" in plan and "-<timestamp>-xxxx/" in plan
    assert snapshot(work) == before  # a dry run writes nothing


@pytest.mark.usefixtures("mirror")
def test_image_model_dry_run_plans_the_torch_model(work: Path) -> None:
    config = str(REPO / "examples" / "cifar10_config.yaml")
    result = mlx("run-experiment", "--dry-run", "--config", config, cwd=work)
    assert result.returncode == 0
    assert "can run here: yes" in result.stdout
    assert "input:        3 x 32 x 32 (C x H x W)" in result.stdout
    warnings = [
        line for line in result.stderr.splitlines() if line.startswith("warning:")
    ]
    assert not any("augmentation" in w for w in warnings)  # it is supported
    assert len(warnings) == len(set(warnings))


def test_dry_run_without_anything_uses_builtin_default(work: Path) -> None:
    before = snapshot(work)
    result = mlx("run-experiment", "--dry-run", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "built-in default experiment" in result.stderr
    config = yaml.safe_load(result.stdout.partition("\nplan (dry run")[0])
    assert config["model"]["params"]["layer_sizes"] == [20, 32, 3]
    assert config["output"]["directory"] == str(work.resolve() / "outputs")
    assert snapshot(work) == before


def test_legacy_name_without_config_runs_the_built_in_experiment(work: Path) -> None:
    result = mlx("run-experiment", "legacy", "--quiet", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "using the built-in default experiment" in result.stderr
    assert "'legacy'" in result.stderr
    (run_dir,) = (work / "outputs").iterdir()
    assert run_dir.name.startswith("legacy-")
    assert run_dir.name in result.stdout
    assert "Traceback" not in result.stderr


def test_name_overrides_the_config_name(work: Path) -> None:
    config = str(REPO / "examples" / "quickstart.yaml")
    result = mlx("run-experiment", "renamed", "--dry-run", "--config", config, cwd=work)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout.partition("\nplan")[0])["name"] == "renamed"
    assert "/renamed-<timestamp>-xxxx/" in result.stdout


def test_bad_name_argument_is_named(work: Path) -> None:
    config = str(REPO / "examples" / "quickstart.yaml")
    result = mlx("run-experiment", "a/b", "--dry-run", "--config", config, cwd=work)
    assert result.returncode == 1
    assert (
        "error: experiment name 'a/b': name must be a directory name" in result.stderr
    )


def test_set_overrides(work: Path) -> None:
    config = str(REPO / "examples" / "quickstart.yaml")
    result = mlx(
        "run-experiment", "--dry-run", "--config", config,
        "--set", "training.epochs=5", "--set", "model.params.layer_sizes=[20,10,3]",
        cwd=work,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout.partition("\nplan")[0])
    assert resolved["training"]["epochs"] == 5
    assert resolved["model"]["params"]["layer_sizes"] == [20, 10, 3]


def test_set_errors_name_the_override(work: Path) -> None:
    result = mlx("run-experiment", "--dry-run", "--set", "training.epochs=-3", cwd=work)
    assert result.returncode == 1
    assert (
        "error: --set training.epochs=-3: training.epochs must be an integer >= 1, "
        "got -3" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_set_unknown_key_warns(work: Path) -> None:
    result = mlx("run-experiment", "--dry-run", "--set", "training.epoch=3", cwd=work)
    assert result.returncode == 0
    assert (
        "warning: --set training.epoch=3: training.epoch: unknown key; "
        "did you mean epochs?" in result.stderr
    )


def test_every_error_of_a_file_on_its_own_line(work: Path) -> None:
    bad = work / "bad.yaml"
    bad.write_text(
        "name: x\n"
        "dataset: {name: synthetic_regression}\n"
        "model: {name: linear_regression}\n"
        "training:\n"
        "  epochs: -3\n"
        "  batch_size: 0\n"
        "  learnig_rate: 0.1\n"
    )
    result = mlx("run-experiment", "--dry-run", "--config", "bad.yaml", cwd=work)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines == [
        "warning: bad.yaml:7:3: training.learnig_rate: unknown key; "
        "did you mean learning_rate?",
        "error: bad.yaml:5:11: training.epochs must be an integer >= 1, got -3",
        "error: bad.yaml:6:15: training.batch_size must be an integer >= 1, got 0",
    ]


def test_debug_shows_traceback(work: Path) -> None:
    result = mlx(
        "--debug", "run-experiment", "--dry-run", "--config", "nope.yaml", cwd=work
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "ConfigError" in result.stderr


def test_missing_config_file(work: Path) -> None:
    result = mlx("run-experiment", "--dry-run", "--config", "nope.yaml", cwd=work)
    assert result.returncode == 1
    assert "error: nope.yaml: config file not found" in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr


def test_output_escape_is_rejected(work: Path) -> None:
    config = str(REPO / "examples" / "quickstart.yaml")
    result = mlx(
        "run-experiment", "--dry-run", "--config", config,
        "--set", "output.directory=../elsewhere", cwd=work,
    )  # fmt: skip
    assert result.returncode == 1
    assert "must resolve inside the repository root" in result.stderr
    assert str(work.resolve().parent / "elsewhere") in result.stderr


def test_non_dry_run_with_config_trains_and_reports(work: Path) -> None:
    config = str(REPO / "examples" / "regression.yaml")
    result = mlx("run-experiment", "--config", config, cwd=work)
    assert result.returncode == 0, result.stderr
    (run_dir,) = (work / "outputs" / "regression").iterdir()
    # the run ID and directory at start and end, on stderr; the summary on stdout
    assert result.stderr.count(str(run_dir)) == 2
    assert re.search(r"^status +completed$", result.stdout, re.MULTILINE)
    assert "val_r2" in result.stdout


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_do_not_import_numpy_or_yaml(work: Path, flag: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mlx", flag],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()]
    assert "mlx.cli" in imported
    heavy = [m for m in imported if m.split(".")[0] in ("numpy", "yaml", "_yaml")]
    assert heavy == []


def test_dry_run_of_a_synthetic_config_does_not_import_numpy(work: Path) -> None:
    # describing a dataset needs no array: the dry run stays fast
    config = str(REPO / "examples" / "quickstart.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mlx", "run-experiment",
         "--dry-run", "--config", config],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()]
    assert "mlx.experiment.plan" in imported
    assert [m for m in imported if m.split(".")[0] == "numpy"] == []
