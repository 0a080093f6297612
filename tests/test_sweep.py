"""``mlx sweep``: sweep files, dry runs and point identity, through the real CLI."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from pathlib import Path
from typing import Any

import pytest
from helpers import run_cli, small_classification, write_config


def _setup(root: Path, sweep: dict[str, Any], base: dict[str, Any] | None = None):
    (root / "pyproject.toml").write_text("")
    write_config(root / "base.yaml", base or small_classification())
    return write_config(root / "sweep.yaml", sweep)


def _grid(**parameters: Any) -> dict[str, Any]:
    return {
        "name": "grid",
        "base": "base.yaml",
        "method": "grid",
        "parameters": {k.replace("__", "."): v for k, v in parameters.items()},
        "metric": "val_accuracy",
    }


def _dry(root: Path, *extra: str) -> dict[str, Any]:
    done = run_cli(
        ["sweep", "--config", "sweep.yaml", "--dry-run", "--json", *extra], root
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


def _error(root: Path, *extra: str) -> str:
    done = run_cli(["sweep", "--config", "sweep.yaml", "--dry-run", *extra], root)
    assert done.returncode == 1, done.stdout
    assert "Traceback" not in done.stderr
    assert not (root / "outputs").exists()  # nothing written
    return done.stderr


# ---------------------------------------------------------------- bad sweep files


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        (
            {"training.learnig_rate": {"values": [0.1]}},
            "sweep.yaml:5:3: parameters.training.learnig_rate: no such field in the "
            "experiment schema; did you mean training.learning_rate?",
        ),
        (
            {"model.params.layer_size": {"values": [[8, 3]]}},
            "sweep.yaml:5:3: parameters.model.params.layer_size: no such field in "
            "the experiment schema; did you mean model.params.layer_sizes?",
        ),
        (
            # a dataset parameter that the base's dataset does not have
            {"dataset.params.noise_std": {"values": [0.1]}},
            "parameters.dataset.params.noise_std: no such field in the experiment "
            "schema",
        ),
        (
            {"trainig.seed": {"values": [1]}},
            "did you mean training.seed?",
        ),
    ],
)
def test_an_unknown_parameter_path_is_a_located_error_naming_the_nearest(
    tmp_path: Path, parameters: dict, expected: str
) -> None:
    _setup(tmp_path, _grid(**parameters))
    assert expected in _error(tmp_path)


@pytest.mark.parametrize(
    ("sweep", "expected"),
    [
        (
            _grid(training__seed={"values": []}),
            "sweep.yaml:6:13: parameters.training.seed.values must be a non-empty "
            "list, got an empty list",
        ),
        (
            _grid(training__seed={"values": 3}),
            "parameters.training.seed.values must be a non-empty list, got 3",
        ),
        (
            {
                **_grid(training__learning_rate={"min": 0.1, "max": 0.01}),
                "method": "random",
                "num_samples": 3,
            },
            "parameters.training.learning_rate: min (0.1) must not be greater than "
            "max (0.01)",
        ),
        (
            {
                **_grid(training__learning_rate={"min": "low", "max": 0.01}),
                "method": "random",
                "num_samples": 3,
            },
            "parameters.training.learning_rate.min must be a finite number, got 'low'",
        ),
        (
            {
                **_grid(training__batch_size={"min": 8, "max": [64]}),
                "method": "random",
                "num_samples": 3,
            },
            "parameters.training.batch_size.max must be a finite number, got a list",
        ),
        (
            {
                **_grid(training__learning_rate={"min": 0, "max": 1, "log": True}),
                "method": "random",
                "num_samples": 3,
            },
            "parameters.training.learning_rate.min must be > 0 with log: true",
        ),
        (
            {**_grid(training__seed={"values": [1]}), "base": "missing.yaml"},
            "sweep.yaml:2:7: base: the experiment config 'missing.yaml' does not exist",
        ),
        (
            {
                k: v
                for k, v in _grid(training__seed={"values": [1]}).items()
                if k != "base"
            },
            "missing required field 'base'",
        ),
        (
            {**_grid(training__seed={"values": [1]}), "method": "grdi"},
            "sweep.yaml:3:9: method must be one of 'grid', 'random', got 'grdi'; did "
            "you mean grid?",
        ),
        (
            {**_grid(training__seed={"values": [1]}), "num_samples": 4},
            "num_samples: a grid sweep runs every combination; num_samples applies "
            "to method: random",
        ),
        (
            {**_grid(training__seed={"min": 1, "max": 4, "integer": True})},
            "parameters.training.seed: a min/max range needs method: random",
        ),
        (
            {**_grid(training__seed={"values": [1]}), "method": "random"},
            "missing required field 'num_samples' (method: random)",
        ),
        (
            _grid(output__directory={"values": ["a", "b"]}),
            "parameters.output.directory: output does not change what a run computes",
        ),
        (
            _grid(name={"values": ["a", "b"]}),
            "parameters.name: name does not change what a run computes",
        ),
        (
            {**_grid(training__seed={"values": [1]}), "parameters": {}},
            "parameters must be a non-empty mapping",
        ),
        (
            {**_grid(training__seed={"values": [1]}), "metric": "val_acc"},
            "metric: 'val_acc' is not recorded by a classification; did you mean "
            "val_accuracy?",
        ),
        (
            {**_grid(training__seed={"values": [1]}), "goal": "up"},
            "goal must be 'max' or 'min', got 'up'",
        ),
        (
            {**_grid(training__seed={"values": [1]}), "name": "a b/c"},
            "name must be a directory name",
        ),
    ],
)
def test_bad_sweep_files_are_refused_with_located_errors(
    tmp_path: Path, sweep: dict, expected: str
) -> None:
    _setup(tmp_path, sweep)
    stderr = _error(tmp_path)
    assert expected in stderr
    assert all(
        line.startswith(("error: ", "warning: ", "hint: "))
        for line in stderr.splitlines()
    )


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    sweep = {
        **_grid(
            training__learnig_rate={"values": [0.1]},
            training__seed={"values": []},
        ),
        "method": "grdi",
    }
    _setup(tmp_path, sweep)
    stderr = _error(tmp_path)
    assert "did you mean training.learning_rate?" in stderr
    assert "parameters.training.seed.values must be a non-empty list" in stderr
    assert "did you mean grid?" in stderr


def test_unknown_keys_are_warnings_with_did_you_mean(tmp_path: Path) -> None:
    sweep = {**_grid(training__seed={"values": [1, 2]}), "metrc": "x"}
    sweep["parameters"]["training.seed"]["valuse"] = [3]
    _setup(tmp_path, sweep)
    data = _dry(tmp_path)
    done = run_cli(["sweep", "--config", "sweep.yaml", "--dry-run"], tmp_path)
    assert (
        "warning: sweep.yaml:12:1: metrc: unknown key; did you mean metric?"
        in done.stderr
    )
    assert (
        "parameters.training.seed.valuse: unknown key; did you mean values?"
        in done.stderr
    )
    assert len(data["points"]) == 2


@pytest.mark.parametrize("source", ["set", "base"])
@pytest.mark.slow
def test_a_warning_of_the_base_config_is_shown_once(
    tmp_path: Path, source: str
) -> None:
    base = small_classification()
    extra: list[str] = []
    if source == "base":
        base["training"]["params"] = {"momentun": 0.5}
        where = f"{tmp_path / 'base.yaml'}:24:5: "
    else:
        extra = ["--set", "training.params.momentun=0.5"]
        where = "--set training.params.momentun=0.5: "
    _setup(tmp_path, _grid(training__seed={"values": [1, 2, 3]}), base)
    for dry in (["--dry-run"], ["--dry-run", "--json"], ["--quiet"]):
        done = run_cli(["sweep", "--config", "sweep.yaml", *dry, *extra], tmp_path)
        assert done.returncode == 0, done.stderr
        warned = [x for x in done.stderr.splitlines() if "momentun" in x]
        assert len(warned) == 1, done.stderr
        assert warned[0].startswith(f"warning: {where}training.params.momentun: ")
        assert "did you mean momentum?" in warned[0]


def test_a_point_whose_config_is_invalid_fails_validation_before_anything_runs(
    tmp_path: Path,
) -> None:
    # each value alone is fine for the schema path, but epochs 0 and a 5-class
    # output layer for 3 classes are not
    sweep = _grid(
        training__epochs={"values": [2, 0]},
        model__params__layer_sizes={"values": [[8, 16, 3], [8, 16, 5]]},
    )
    _setup(tmp_path, sweep)
    stderr = _error(tmp_path)
    assert "error: 3 point(s) of sweep 'grid' do not validate" in stderr
    assert "training.epochs must be an integer >= 1, got 0" in stderr
    assert "(the output size) must be 3, the number of classes, got 5" in stderr
    assert "sweep.yaml:5:3: point 2 (training.epochs=0" in stderr
    # without --dry-run nothing runs or is written either
    done = run_cli(["sweep", "--config", "sweep.yaml"], tmp_path)
    assert done.returncode == 1 and "do not validate" in done.stderr
    assert not (tmp_path / "outputs").exists()


def test_an_invalid_base_config_is_reported_in_its_own_file(tmp_path: Path) -> None:
    base = small_classification(epochs=-1)
    _setup(tmp_path, _grid(training__seed={"values": [1]}), base)
    stderr = _error(tmp_path)
    assert (
        "base.yaml:" in stderr and "training.epochs must be an integer >= 1" in stderr
    )


@pytest.mark.parametrize(
    ("base", "message"),
    [
        ("loop.yaml", "'loop.yaml' is a symbolic link that leads nowhere (or loops)"),
        ("dangling.yaml", "'dangling.yaml' is a symbolic link that leads nowhere"),
        ("fifo.yaml", "'fifo.yaml' is not a regular file"),
        ("dir.yaml", "'dir.yaml' is a directory"),
        ("b" * 300 + ".yaml", "cannot be used: File name too long"),
        ("b\x01.yaml", "path 'b\\x01.yaml' contains the control character '\\x01'"),
        ("b\n.yaml", "path 'b\\n.yaml' contains the control character '\\n'"),
    ],
    ids=["loop", "dangling", "fifo", "directory", "too-long", "control", "newline"],
)
def test_a_base_the_system_refuses_is_located_in_the_sweep_file(
    tmp_path: Path, base: str, message: str
) -> None:
    _setup(tmp_path, {**_grid(training__seed={"values": [1]}), "base": base})
    (tmp_path / "loop.yaml").symlink_to("loop.yaml")
    (tmp_path / "dangling.yaml").symlink_to("nowhere.yaml")
    (tmp_path / "dir.yaml").mkdir()
    if base == "fifo.yaml":
        if not hasattr(os, "mkfifo"):
            pytest.skip("needs FIFOs")
        os.mkfifo(tmp_path / "fifo.yaml")
    stderr = _error(tmp_path)
    assert "sweep.yaml:2:7: base: " in stderr and message in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- dry run and --set


def test_dry_run_lists_every_point_and_writes_nothing(tmp_path: Path) -> None:
    sweep = _grid(
        training__learning_rate={"values": [0.01, 0.003, 0.001]},
        training__seed={"values": [1, 2]},
    )
    _setup(tmp_path, sweep)
    done = run_cli(["sweep", "--config", "sweep.yaml", "--dry-run"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "sweep grid: grid, 6 points, all valid" in done.stdout
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("  ")]
    assert [r[0] for r in rows] == [str(i) for i in range(6)]
    assert [r[2:] for r in rows] == [
        [f"training.learning_rate={lr}", f"training.seed={seed}"]
        for lr in (0.01, 0.003, 0.001)
        for seed in (1, 2)
    ]
    assert len({r[1] for r in rows}) == 6
    assert not (tmp_path / "outputs").exists()
    data = _dry(tmp_path)
    assert [p["status"] for p in data["points"]] == ["not started"] * 6
    assert [p["hash"][:12] for p in data["points"]] == [r[1] for r in rows]
    assert data["directory"] == str(tmp_path / "outputs" / "grid")


def test_set_applies_to_the_base_and_changes_the_points(tmp_path: Path) -> None:
    _setup(tmp_path, _grid(training__seed={"values": [1, 2]}))
    plain = _dry(tmp_path)
    more = _dry(tmp_path, "--set", "training.epochs=7")
    again = _dry(tmp_path, "--set", "training.epochs=4")  # the base's own value
    assert {p["hash"] for p in plain["points"]}.isdisjoint(
        p["hash"] for p in more["points"]
    )
    assert plain["points"] == again["points"]
    moved = _dry(tmp_path, "--set", "output.directory=elsewhere")
    assert moved["directory"] == str(tmp_path / "elsewhere" / "grid")
    assert [p["hash"] for p in moved["points"]] == [p["hash"] for p in plain["points"]]
    stderr = _error(tmp_path, "--set", "training.epochs=0")
    assert "--set training.epochs=0: training.epochs must be an integer >= 1" in stderr


# ---------------------------------------------------------------- identity


def _oracle_hash(config: dict[str, Any]) -> str:
    """The documented identity, computed independently: canonical JSON of the
    resolved config without name, description and output.*."""

    def norm(value: Any) -> Any:
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [norm(v) for v in value]
        return value

    kept = {
        k: v for k, v in config.items() if k not in ("name", "description", "output")
    }
    text = json.dumps(norm(kept), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_point_hash_is_the_sha256_of_its_canonical_resolved_config(
    tmp_path: Path,
) -> None:
    _setup(tmp_path, _grid(training__learning_rate={"values": [0.01, 0.02]}))
    data = _dry(tmp_path)
    # the resolved config of a point is what `mlx run-experiment` resolves
    from mlx.config import load_config

    for point in data["points"]:
        lr = point["parameters"]["training.learning_rate"]
        config = load_config(
            tmp_path / "base.yaml", [f"training.learning_rate={lr}"], root=tmp_path
        ).to_dict()
        assert point["hash"] == _oracle_hash(config)


def test_identity_ignores_number_spelling_key_order_name_and_output(
    tmp_path: Path,
) -> None:
    _setup(tmp_path, _grid(training__seed={"values": [1, 2]}))
    reference = [p["hash"] for p in _dry(tmp_path)["points"]]

    variants = []
    # 0.01 -> 1e-2, 600 -> 600.0 where a float is allowed, reordered keys,
    # another name, description and output section
    base = small_classification()
    base["training"]["learning_rate"] = 1e-2
    base["dataset"]["params"]["class_sep"] = 1  # the default, as an int
    variants.append(base)
    shuffled = small_classification()
    shuffled = {k: shuffled[k] for k in reversed(list(shuffled))}
    shuffled["training"] = dict(reversed(list(shuffled["training"].items())))
    variants.append(shuffled)
    renamed = small_classification()
    renamed.update(
        name="other",
        description="not part of the identity",
        output={"directory": "results", "checkpoint_frequency": 2, "save_logs": False},
    )
    variants.append(renamed)
    for variant in variants:
        write_config(tmp_path / "base.yaml", variant)
        assert [p["hash"] for p in _dry(tmp_path)["points"]] == reference
    # a real change does change it
    changed = small_classification(batch_size=16)
    write_config(tmp_path / "base.yaml", changed)
    assert set(p["hash"] for p in _dry(tmp_path)["points"]).isdisjoint(reference)


def test_values_spelt_as_int_and_float_are_one_point(tmp_path: Path) -> None:
    # 1 and 1.0 are one learning rate; the second is skipped as a duplicate
    _setup(tmp_path, _grid(training__learning_rate={"values": [1, 1.0, 0.5]}))
    data = _dry(tmp_path)
    assert [p["parameters"]["training.learning_rate"] for p in data["points"]] == [
        1,
        0.5,
    ]
    done = run_cli(["sweep", "--config", "sweep.yaml", "--dry-run"], tmp_path)
    assert (
        "1 assignment(s) duplicate an earlier point and are skipped: 1" in done.stdout
    )


# ---------------------------------------------------------------- random points


def _random(n: int, seed: int = 0) -> dict[str, Any]:
    return {
        "name": "rnd",
        "base": "base.yaml",
        "method": "random",
        "num_samples": n,
        "seed": seed,
        "parameters": {
            "training.learning_rate": {"min": 1e-4, "max": 1e-1, "log": True},
            "training.batch_size": {"min": 8, "max": 64, "integer": True},
            "model.params.activation": {"values": ["relu", "tanh", "sigmoid"]},
            "dataset.params.class_sep": {"min": 0.5, "max": 2.0},
        },
    }


def test_random_points_are_stable_and_raising_num_samples_only_appends(
    tmp_path: Path,
) -> None:
    _setup(tmp_path, _random(6))
    first = _dry(tmp_path)["points"]
    assert _dry(tmp_path)["points"] == first  # re-expansion: the same points
    write_config(tmp_path / "sweep.yaml", _random(10))
    more = _dry(tmp_path)["points"]
    assert more[:6] == first and len(more) == 10
    write_config(tmp_path / "sweep.yaml", _random(6, seed=1))
    other = _dry(tmp_path)["points"]
    assert {p["hash"] for p in other}.isdisjoint(p["hash"] for p in first)
    for point in more:
        params = point["parameters"]
        lr = params["training.learning_rate"]
        assert 1e-4 <= lr <= 1e-1
        assert type(params["training.batch_size"]) is int
        assert 8 <= params["training.batch_size"] <= 64
        assert params["model.params.activation"] in ("relu", "tanh", "sigmoid")
        assert 0.5 <= params["dataset.params.class_sep"] <= 2.0


def test_random_draws_cover_their_ranges(tmp_path: Path) -> None:
    # log-uniform: about as many points per decade; integers reach both ends
    _setup(tmp_path, _random(300))
    points = _dry(tmp_path)["points"]
    decades = [0, 0, 0]
    for p in points:
        decades[
            min(int(math.log10(p["parameters"]["training.learning_rate"]) + 4), 2)
        ] += 1
    assert min(decades) > 60, decades
    sizes = {p["parameters"]["training.batch_size"] for p in points}
    assert {8, 64} <= sizes
    # the draws are what a uniform generator of Python's standard library gives
    assert random.Random(
        "mlx-sweep:0:0:dataset.params.class_sep"
    ).random() * 1.5 + 0.5 == pytest.approx(
        points[0]["parameters"]["dataset.params.class_sep"]
    )


# ---------------------------------------------------------------- command line


def test_sweep_usage_errors(tmp_path: Path) -> None:
    _setup(tmp_path, _grid(training__seed={"values": [1]}))
    for args, expected in [
        (["sweep"], "give either --config FILE (a new sweep) or --resume SWEEP"),
        (["sweep", "--config", "sweep.yaml", "--resume", "x"], "give either"),
        (["sweep", "show"], "show: the following arguments are required: SWEEP"),
        (["sweep", "grid"], "invalid choice: 'grid' (choose from 'show')"),
        (["sweep", "--config", "sweep.yaml", "--jobs", "0"], "an integer >= 1"),
        (["sweep", "--config", "sweep.yaml", "--address", "x:1"], "--executor ray"),
        (["sweep", "--config", "sweep.yaml", "--fail-fast", "--max-failures", "2"],
         "give it or --max-failures N, not both"),
        (["sweep", "--config", "sweep.yaml", "--skip-failed"],
         "--skip-failed applies to --resume"),
        (["sweep", "--config", "sweep.yaml", "--dry-run", "--skip-failed"],
         "--skip-failed applies to --resume"),
        (["sweep", "--resume", "x", "--set", "a=1"], "cannot be combined with --set"),
        (["sweep", "show", "x", "--config", "sweep.yaml"], "not --config"),
        (["sweep", "show", "nothing"], "No sweep 'nothing'"),
        (["sweep", "--resume", "nothing"], "No sweep 'nothing'"),
    ]:  # fmt: skip
        done = run_cli(args, tmp_path)
        assert done.returncode == 1, args
        assert expected in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_the_sweep_command_is_in_the_help_and_stays_light(tmp_path: Path) -> None:
    done = run_cli(["--help"], tmp_path)
    assert "sweep" in done.stdout
    probe = (
        "import sys; from mlx.cli import build_parser; build_parser(); "
        "print(sorted(m for m in sys.modules if m.startswith(('mlx.sweeps', "
        "'mlx.cli.sweep', 'yaml', 'numpy', 'ray'))))"
    )
    import subprocess
    import sys

    from helpers import cli_env

    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=cli_env(tmp_path),
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out.strip() == "['mlx.cli.sweep']"


def test_a_json_sweep_file_is_read_with_positions_too(tmp_path: Path) -> None:
    # a JSON sweep file works the same, with JSON positions in errors
    (tmp_path / "pyproject.toml").write_text("")
    write_config(tmp_path / "base.yaml", small_classification())
    sweep = _grid(training__learnig_rate={"values": [0.1]})
    (tmp_path / "sweep.json").write_text(json.dumps(sweep, indent=2))
    done = run_cli(["sweep", "--config", "sweep.json", "--dry-run"], tmp_path)
    assert done.returncode == 1
    assert "sweep.json:6:5: parameters.training.learnig_rate" in done.stderr
