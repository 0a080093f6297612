"""YAML is read by the 1.2 core schema everywhere: config files, ``--set`` values and
the run's own ``config.yaml``."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from helpers import cli_env, run_cli, small_classification, write_config

from mlx.config import ConfigError, load_config
from mlx.config.documents import dump_yaml, load_yaml, parse_text, parse_value
from mlx.runs import RunDir

# plain scalar -> what YAML 1.2 (core schema) says it is
CORE = [
    ("12:30", "12:30"),  # 1.1: sexagesimal 750
    ("1:20:30", "1:20:30"),
    ("-1:30", "-1:30"),
    ("yes", "yes"),
    ("no", "no"),
    ("Yes", "Yes"),
    ("NO", "NO"),
    ("on", "on"),
    ("off", "off"),
    ("On", "On"),
    ("y", "y"),
    ("n", "n"),
    ("true", True),
    ("True", True),
    ("TRUE", True),
    ("false", False),
    ("FALSE", False),
    ("tRue", "tRue"),
    ("null", None),
    ("Null", None),
    ("NULL", None),
    ("~", None),
    ("nULL", "nULL"),
    ("0o17", 15),
    ("0o0", 0),
    ("0o8", "0o8"),
    ("017", 17),  # 1.1: octal 15
    ("007", 7),
    ("0x1F", 31),
    ("0xff", 255),
    ("0b101", "0b101"),  # binary is 1.1 only
    ("1_000", "1_000"),  # underscores are 1.1 only
    ("+12", 12),
    ("-0", 0),
    ("1e-3", 0.001),
    ("1E3", 1000.0),
    ("2.5e+2", 250.0),
    (".5", 0.5),
    ("1.", 1.0),
    ("-.5e1", -5.0),
    (".inf", math.inf),
    ("-.Inf", -math.inf),
    ("+.INF", math.inf),
    ("2024-01-01", "2024-01-01"),  # no timestamps in 1.2
    ("2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z"),
    ("=", "="),
    ("0x", "0x"),
    ("1e", "1e"),
]


def _same(got: object, want: object) -> bool:
    return type(got) is type(want) and got == want


@pytest.mark.parametrize(("text", "want"), CORE, ids=[t for t, _ in CORE])
def test_plain_scalars_in_a_file(text: str, want: object) -> None:
    doc = parse_text(f"a: {text}\nb: [{text}]\n", "yaml", "c.yaml")
    assert _same(doc.data["a"], want) and _same(doc.data["b"][0], want)


@pytest.mark.parametrize(("text", "want"), CORE, ids=[t for t, _ in CORE])
def test_plain_scalars_as_set_values(text: str, want: object) -> None:
    assert _same(parse_value(text, "--set a=" + text), want)


@pytest.mark.parametrize(("text", "want"), CORE, ids=[t for t, _ in CORE])
def test_plain_scalars_in_stored_yaml(text: str, want: object) -> None:
    assert _same(load_yaml(f"a: {text}\n")["a"], want)


@pytest.mark.parametrize("nan", [".nan", ".NaN", ".NAN"])
def test_nan(nan: str) -> None:
    assert math.isnan(parse_value(nan, "x"))


@pytest.mark.parametrize(
    "value",
    ["12:30", "yes", "on", "0o17", "017", "0x1F", "1_000", "1e3", "NULL", "=", "~"],
)
def test_written_strings_read_back_as_strings_under_1_1_and_1_2(value: str) -> None:
    text = dump_yaml({"a": value, "b": [value]})
    assert load_yaml(text) == {"a": value, "b": [value]}
    assert yaml.safe_load(text) == {"a": value, "b": [value]}


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("!!int '017'", 17),
        ("!!int '0o17'", 15),
        ("!!float '1'", 1.0),
        ("!!str 017", "017"),
        ("!!bool 'true'", True),
    ],
)
def test_explicit_tags_follow_1_2(text: str, want: object) -> None:
    assert _same(parse_text(f"a: {text}\n", "yaml", "c.yaml").data["a"], want)


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("!!int 1_000", 4),
        ("!!int ' 12'", 4),
        ("!!bool yes", 4),
        ("!!float abc", 4),
        ("!!null x", 4),
    ],
)
def test_explicit_tags_with_1_1_values_are_located_errors(
    text: str, column: int
) -> None:
    with pytest.raises(ConfigError, match=rf"^c\.yaml:2:{column}: cannot read"):
        parse_text(f"x: 1\na: {text}\n", "yaml", "c.yaml")


def test_located_errors_still_point_at_the_value(tmp_path: Path) -> None:
    config = small_classification()
    config["training"]["epochs"] = "yes"
    path = write_config(tmp_path / "c.yaml", config)
    text = path.read_text().replace("epochs: 'yes'", "epochs: yes")
    path.write_text(text)
    line = text.splitlines().index("  epochs: yes") + 1
    with pytest.raises(ConfigError, match=rf"c\.yaml:{line}:11: training\.epochs"):
        load_config(path, root=tmp_path)


def test_a_stored_config_keeps_1_2_strings(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "x")
    data = {"output": {"params": {"when": "12:30", "flag": "on", "mode": "0o17"}}}
    run.write_config(data)
    assert run.read_config() == data
    assert "'12:30'" in run.config_path.read_text()


def _dry_run_values(tmp_path: Path, *extra: str) -> dict:
    result = run_cli(
        ["run-experiment", "--config", "c.yaml", "--dry-run", *extra],
        tmp_path,
        env=cli_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return yaml.safe_load(result.stdout.partition("\nplan")[0])


def test_files_and_set_values_agree_through_the_cli(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    text = yaml.safe_dump(small_classification(), sort_keys=False)
    text += "description: 12:30\n"
    (tmp_path / "c.yaml").write_text(text)
    from_file = _dry_run_values(tmp_path)
    assert from_file["description"] == "12:30"
    from_set = _dry_run_values(
        tmp_path,
        "--set",
        "description=12:30",
        "--set",
        "output.params.flag=on",
        "--set",
        "output.params.mode=0o17",
        "--set",
        "output.params.count=017",
        "--set",
        "output.params.tiny=1e-3",
    )
    assert from_set["description"] == "12:30"
    assert from_set["output"]["params"] == {
        "flag": "on",
        "mode": 15,
        "count": 17,
        "tiny": 0.001,
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yes", "save_checkpoints must be true or false, got 'yes'"),
        ("on", "save_checkpoints must be true or false, got 'on'"),
    ],
)
def test_yes_and_on_are_not_booleans_in_set_values(
    tmp_path: Path, value: str, message: str
) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    write_config(tmp_path / "c.yaml", small_classification())
    result = run_cli(
        [
            "run-experiment",
            "--config",
            "c.yaml",
            "--dry-run",
            "--set",
            f"output.save_checkpoints={value}",
        ],
        tmp_path,
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_sweep_points_keep_strings_that_only_yaml_1_2_reads_as_numbers(
    tmp_path: Path,
) -> None:
    # each point's config is written to a file and read back by the 1.2 loader
    labels = ["1e3", "0o17", "-2E5"]
    rows = [f"{i % 5},{i % 3},{i % 2},{i % 2},{(i + 1) % 2}" for i in range(40)]
    (tmp_path / "d.csv").write_text("\n".join(["a,b," + ",".join(labels), *rows]))
    (tmp_path / "pyproject.toml").write_text("")
    base = small_classification(epochs=1)
    base["dataset"] = {"name": "custom", "path": "d.csv", "params": {"target": "a"}}
    base["model"]["params"] = {"layer_sizes": [4, 2], "output_activation": "softmax"}
    write_config(tmp_path / "base.yaml", base)
    sweep = {
        "name": "sw",
        "base": "base.yaml",
        "method": "grid",
        "parameters": {"dataset.params.target": {"values": labels}},
        "metric": "val_accuracy",
    }
    (tmp_path / "sweep.yaml").write_text(dump_yaml(sweep))  # quoted as 1.2 needs
    result = run_cli(["sweep", "--config", "sweep.yaml", "--quiet"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    targets = sorted(
        load_yaml(path.read_text())["dataset"]["params"]["target"]
        for path in (tmp_path / "outputs" / "sw").glob("*/config.yaml")
    )
    assert targets == sorted(labels)
