"""`mlx lr-find`: the learning-rate range test. The suggestion is the steepest
descent of the smoothed loss, recomputed here from the JSON's lrs and losses; the
rates are geometric; the same config gives the same numbers; nothing is written but
the plot; bad flags and a closed-form model are one clear error."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO_ROOT, run_cli, small_classification, write_config

from mlx.cli import lr_find as lr_find_command
from mlx.experiment import lr_find

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    write_config(tmp_path / "c.yaml", small_classification())
    return tmp_path


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _expected_suggestion(lrs: list[float], losses: list[float]) -> float:
    """The steepest descent of the smoothed loss, computed from scratch: an
    exponential moving average (beta 0.98) with bias correction, its gradient,
    the argmin up to the lowest smoothed loss."""
    beta, average, smoothed = 0.98, 0.0, []
    for i, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        smoothed.append(average / (1 - beta ** (i + 1)))
    lowest = int(np.argmin(smoothed))
    return lrs[int(np.argmin(np.gradient(np.array(smoothed))[: lowest + 1]))]


def test_json_suggests_the_steepest_descent_and_writes_nothing(root: Path) -> None:
    before = _files(root)
    args = ["lr-find", "--config", "c.yaml", "--json", "--steps", "60"]
    done = run_cli(args, root)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert set(found) == {"suggested_lr", "lrs", "losses"}
    lrs, losses = found["lrs"], found["losses"]
    # geometric from --min-lr on, one rate per step taken (the last may be cut
    # short by the divergence stop)
    assert 2 <= len(lrs) == len(losses) <= 60
    expected_lrs = np.geomspace(1e-7, 10.0, 60)[: len(lrs)]
    np.testing.assert_allclose(lrs, expected_lrs, rtol=1e-12)
    assert lrs[0] == 1e-7
    assert all(math.isfinite(loss) for loss in losses)
    assert found["suggested_lr"] == _expected_suggestion(lrs, losses)
    # Adam on a small MLP: the loss falls fastest somewhere around 1e-3 .. 1
    assert 1e-4 <= found["suggested_lr"] <= 1.0
    # deterministic, and nothing on disk: no outputs/, no run, no index
    assert run_cli(args, root).stdout == done.stdout
    assert _files(root) == before


def test_text_output_and_the_plot(root: Path) -> None:
    pytest.importorskip("matplotlib")
    before = _files(root)
    done = run_cli(
        ["lr-find", "--config", "c.yaml", "--steps", "30", "-o", "lr.png"], root
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("suggested_lr  ")
    assert float(lines[0].split()[1]) > 0
    assert lines[1] == "steps         30 of 30 (learning rate 1e-07 to 10)"
    assert lines[2] == "plot          lr.png"
    png = (root / "lr.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000
    assert set(_files(root)) == set(before) | {"lr.png"}


def test_a_linear_model_by_gradient_descent_takes_the_test(root: Path) -> None:
    config = {
        "name": "lin",
        "dataset": {
            "name": "synthetic_regression",
            "params": {"n_samples": 200, "n_features": 4, "seed": 1},
        },
        "model": {
            "name": "linear_regression",
            "params": {"use_gradient_descent": True},
        },
        "training": {"batch_size": 20, "optimizer": "sgd", "seed": 2},
    }
    write_config(root / "lin.yaml", config)
    args = ["lr-find", "--config", "lin.yaml", "--json", "--steps", "40"]
    done = run_cli([*args, "--min-lr", "1e-5", "--max-lr", "1"], root)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["lrs"][0] == 1e-5 and len(found["lrs"]) == 40
    assert found["lrs"][-1] == pytest.approx(1.0, rel=1e-12)
    assert found["suggested_lr"] == _expected_suggestion(found["lrs"], found["losses"])
    assert not (root / "outputs").exists()


@pytest.mark.slow  # imports torch
def test_a_torch_module_takes_the_test_the_same_each_time(root: Path) -> None:
    pytest.importorskip("torch")
    shutil.copytree(REPO_ROOT / "examples", root / "examples")
    config = {
        "name": "reg",
        "dataset": {
            "name": "synthetic_regression",
            "params": {"n_samples": 120, "n_features": 5, "seed": 2},
        },
        "model": {
            "name": "custom",
            "params": {
                "class_path": "examples.torch_models:TinyMLP",
                "n_features": 5,
                "hidden": 8,
            },
        },
        "training": {"batch_size": 16, "seed": 11, "device": "cpu"},
    }
    write_config(root / "t.yaml", config)
    args = ["lr-find", "--config", "t.yaml", "--json", "--steps", "20"]
    done = run_cli(args, root)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert len(found["losses"]) >= 2
    assert found["suggested_lr"] == _expected_suggestion(found["lrs"], found["losses"])
    assert run_cli(args, root).stdout == done.stdout
    assert not (root / "outputs").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--steps", "1"], "lr-find: --steps must be an integer >= 2, got 1"),
        (["--steps", "x"], "argument --steps: invalid int value: 'x'"),
        (["--min-lr", "0"], "lr-find: --min-lr must be a finite number > 0, got 0.0"),
        (
            ["--max-lr", "nan"],
            "lr-find: --max-lr must be a finite number > 0, got nan",
        ),
        (
            ["--min-lr", "1", "--max-lr", "0.1"],
            "lr-find: --min-lr (1.0) must be below --max-lr (0.1)",
        ),
        (
            ["-o", "lr.txt"],
            "lr.txt: unknown image type '.txt'; use .png, .svg or .pdf",
        ),
        (
            ["--set", "training.batch_size=0"],
            "training.batch_size must be an integer >= 1",
        ),
    ],
    ids=["one-step", "steps-not-int", "min-zero", "max-nan", "min-above-max",
         "plot-type", "config-field"],
)  # fmt: skip
def test_bad_flags_are_one_error_and_write_nothing(
    root: Path, flags: list[str], message: str
) -> None:
    before = _files(root)
    done = run_cli(["lr-find", "--config", "c.yaml", *flags], root)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert _files(root) == before


def test_a_closed_form_model_is_refused(root: Path) -> None:
    config = {
        "name": "lin",
        "dataset": {"name": "synthetic_regression", "params": {"n_samples": 50}},
        "model": {"name": "linear_regression"},
    }
    write_config(root / "lin.yaml", config)
    before = _files(root)
    done = run_cli(["lr-find", "--config", "lin.yaml"], root)
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        "error: lin.yaml: model.name: linear_regression fits in closed form and "
        "takes no learning rate; the learning-rate range test needs a model "
        "trained by gradient descent"
    ), done.stderr
    assert "use_gradient_descent: true" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert _files(root) == before


def test_the_command_and_the_algorithm_share_their_defaults() -> None:
    assert (lr_find_command.STEPS, lr_find_command.MIN_LR, lr_find_command.MAX_LR) == (
        lr_find.DEFAULT_STEPS,
        lr_find.DEFAULT_MIN_LR,
        lr_find.DEFAULT_MAX_LR,
    )
