"""Inputs that look valid but mean something else, or fail later inside a library:
they are refused up front with one located ``error:`` line, and nothing is created.

Covers the ``MLX_*`` environment variables (validated like config fields), the
ranges every backend takes (a seed torch cannot unpack, a size NumPy cannot
allocate), image folders with an empty or nested class, Parquet labels stored as a
pandas Categorical, weights of another architecture, and run names that cannot be
kept as they are.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import cli_env, run_cli, small_classification, write_config


def _refused(result, *parts: str) -> str:
    """The stderr of a refused command: exit 1, one ``error:`` line holding every
    part, no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for part in parts:
        assert part in errors[0], (part, errors[0])
    return errors[0]


def _no_runs(root: Path) -> None:
    assert not (root / "outputs").exists()


# -- environment variables


_NUMBERS = ["abc", "0", "-5", "99999999999", " ", " 4", "1e3", "0x10", "１２", "4.0"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        *(("MLX_NUM_THREADS", v) for v in _NUMBERS),
        *(("MLX_DATA_WORKERS", v) for v in ("-1", "x", "100000", "١")),
        *(("MLX_MEMORY_LIMIT", v) for v in ("0", "1e9", "1GB", "9" * 30)),
        *(("MLX_OFFLINE", v) for v in ("maybe", " ", "2", "y es")),
        ("MLX_DATA_URL", "mirror.example.org/data"),
        ("MLX_DATA_URL", "file:///tmp/data"),
    ],
)
@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_a_bad_environment_variable_is_one_error_before_anything_is_made(
    tmp_path: Path, variable: str, value: str, dry_run: bool
) -> None:
    config = write_config(tmp_path / "c.yaml", small_classification())
    args = ["run-experiment", "--config", str(config), "--quiet"]
    env = cli_env(tmp_path, **{variable: value})
    result = run_cli([*args, "--dry-run"] if dry_run else args, tmp_path, env=env)
    _refused(result, f"{variable} must be", repr(value))
    _no_runs(tmp_path)


@pytest.mark.parametrize(
    "value", ["1", "yes", "TRUE", "On", "0", "false", "No", "off", ""]
)
def test_mlx_offline_takes_the_usual_booleans(tmp_path: Path, value: str) -> None:
    config = write_config(tmp_path / "c.yaml", small_classification())
    env = cli_env(tmp_path, MLX_OFFLINE=value)
    result = run_cli(
        ["run-experiment", "--config", str(config), "--dry-run"], tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr


def test_an_empty_variable_counts_as_unset(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", small_classification())
    env = cli_env(tmp_path, MLX_DATA_WORKERS="", MLX_MEMORY_LIMIT="", MLX_DATA_URL="")
    result = run_cli(
        ["run-experiment", "--config", str(config), "--dry-run"], tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("where", ["nonexistent/x", "afile"])
@pytest.mark.parametrize(
    "args",
    [["run-experiment", "probe", "--quiet"], ["run-experiment", "--dry-run"], ["runs"]],
    ids=["run", "dry-run", "runs"],
)
def test_an_mlx_root_that_is_no_directory_is_refused_and_never_created(
    tmp_path: Path, where: str, args: list
) -> None:
    (tmp_path / "afile").write_text("")
    env = cli_env(tmp_path, MLX_ROOT=str(tmp_path / where))
    result = run_cli(args, tmp_path, env=env)
    what = "does not exist" if where != "afile" else "is not a directory"
    _refused(result, "MLX_ROOT", repr(str(tmp_path / where)), what)
    assert not (tmp_path / "nonexistent").exists()
    _no_runs(tmp_path)


def test_a_misspelt_variable_is_pointed_out(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", small_classification())
    env = cli_env(tmp_path, MLX_NUM_THREAD="2")
    result = run_cli(
        ["run-experiment", "--config", str(config), "--dry-run"], tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    assert (
        "warning: environment variable MLX_NUM_THREAD is not one mlx reads; did you "
        "mean MLX_NUM_THREADS?" in result.stderr
    )
