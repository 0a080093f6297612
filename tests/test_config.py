"""The config API: loading, overrides, syntax errors, hostile files, round trips."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import warnings
from pathlib import Path

import pytest
import yaml

import mlx
from mlx.config import (
    ConfigError,
    ConfigIssue,
    ConfigWarning,
    ExperimentConfig,
    Override,
    default_config,
    load_config,
    parse_config,
)
from mlx.errors import MLXError

REPO = Path(__file__).resolve().parents[1]
# the experiment configs among the examples (sweep.yaml is a sweep file)
EXAMPLES = sorted(
    p
    for p in (REPO / "examples").iterdir()
    if p.suffix in (".json", ".yaml") and p.name != "sweep.yaml"
)

VALID_YAML = """\
name: api
dataset:
  name: synthetic_regression
  params: {n_features: 3}
model:
  name: linear_regression
"""


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_config_error_is_mlx_and_value_error() -> None:
    assert issubclass(ConfigError, MLXError)
    assert issubclass(ConfigError, ValueError)


def test_issue_str_and_location() -> None:
    issue = ConfigIssue("exp.yaml", 14, 13, "training.epochs", "training.epochs bad")
    assert str(issue) == "exp.yaml:14:13: training.epochs bad"
    assert str(ConfigIssue("--set a=1", None, None, "a", "a bad")) == "--set a=1: a bad"
    with pytest.raises(dataclasses.FrozenInstanceError):
        issue.line = 3  # type: ignore[misc]


def test_load_yaml_fills_defaults_and_resolves_paths(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID_YAML), root=tmp_path)
    assert isinstance(config, ExperimentConfig)
    assert config.training.epochs == 10
    assert config.training.learning_rate == 0.001
    assert config.output.directory == str(tmp_path / "outputs")
    assert config.dataset.params["n_informative"] == 3
    assert config.dataset.params["noise_std"] == 0.1
    assert config.model.params["l2_regularization"] == 0.0
    assert config.source == str(tmp_path / "exp.yaml")
    with pytest.raises(TypeError):
        config.dataset.params["n_samples"] = 5  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.name = "other"  # type: ignore[misc]


def test_yaml_and_json_give_equal_configs(tmp_path: Path) -> None:
    from_yaml = load_config(write(tmp_path, VALID_YAML), root=tmp_path)
    text = json.dumps(from_yaml.to_dict())
    from_json = load_config(write(tmp_path, text, "exp.json"), root=tmp_path)
    assert from_json == from_yaml


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_to_dict_round_trips(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        config = load_config(path, root=REPO)
        again = parse_config(config.to_dict(), root=REPO)
    assert again == config
    assert again.to_dict() == config.to_dict()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("learning_rate: 1e-3", 0.001),
        ("learning_rate: 1E+2", 100.0),
        ("learning_rate: 5e0", 5.0),
        ("learning_rate: 1.5e-3", 0.0015),
        ("learning_rate: 2", 2),
    ],
    ids=["1e-3", "1E+2", "5e0", "1.5e-3", "int"],
)
def test_yaml_12_floats(tmp_path: Path, text: str, expected: float) -> None:
    from mlx.config.documents import parse_text

    value = parse_text(text, "yaml", "x.yaml").data["learning_rate"]
    assert value == expected
    assert type(value) is type(expected)


def test_several_errors_in_one_file_are_all_reported(tmp_path: Path) -> None:
    text = """\
name: bad name
dataset:
  name: synthetic_classification
  params:
    n_samples: 0
    n_classes: 1
model:
  name: mlp
  params:
    layer_sizes: [10, 0, 2]
training:
  epochs: -3
  batch_size: 5.0
output:
  directory: ../out
"""
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), root=tmp_path)
    lines = [(issue.line, issue.path) for issue in caught.value.errors]
    assert lines == [
        (1, "name"),
        (5, "dataset.params.n_samples"),
        (6, "dataset.params.n_classes"),
        (10, "model.params.layer_sizes[1]"),
        (12, "training.epochs"),
        (13, "training.batch_size"),
        (15, "output.directory"),
    ]
    assert caught.value.message.count("\n") == len(lines) - 1


def test_unknown_name_aborts_validation(tmp_path: Path) -> None:
    text = (
        "name: x\ndataset: {name: mnsit}\nmodel: {name: mlp}\ntraining: {epochs: 0}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), root=tmp_path)
    assert [issue.path for issue in caught.value.errors] == ["dataset.name"]


# --------------------------------------------------------------------------- syntax


@pytest.mark.parametrize(
    ("name", "text", "line", "column", "match"),
    [
        ("a.yaml", "name: x\ndataset: [1, 2\nmodel: {}\n", 3, 6, r"invalid YAML: "),
        ("b.yaml", "name: x\n  bad: indent\n", 2, 6, r"invalid YAML: mapping values"),
        ("c.yaml", "name: 'open\n", 2, 1, r"invalid YAML: found unexpected end"),
        ("d.yaml", "a: 1\n---\nb: 2\n", 2, 1, r"expected one YAML document"),
        ("e.yaml", "a: *nothing\n", 1, 4, r"undefined alias \*nothing"),
        ("a.json", '{\n  "name": "x",\n  "dataset": {,\n}', 3, 15, r"invalid JSON"),
        ("b.json", '{"name": "x"\n "model": 1}', 2, 2, r"invalid JSON: Expecting ','"),
        ("c.json", '{"name": "x",}', 1, 14, r"invalid JSON"),
        ("d.json", "", 1, 1, r"invalid JSON: Expecting value"),
    ],
    ids=["yaml-flow", "yaml-indent", "yaml-quote", "yaml-two-docs", "yaml-alias",
         "json-comma", "json-missing-comma", "json-trailing", "json-empty"],
)  # fmt: skip
def test_syntax_errors_give_line_and_column(
    tmp_path: Path, name: str, text: str, line: int, column: int, match: str
) -> None:
    path = write(tmp_path, text, name)
    with pytest.raises(ConfigError, match=match) as caught:
        load_config(path, root=tmp_path)
    (issue,) = caught.value.errors
    assert (issue.file, issue.line, issue.column) == (str(path), line, column)


@pytest.mark.parametrize(
    ("name", "text", "line", "match"),
    [
        ("dup.yaml", "name: a\ndataset: {}\nname: b\n", 3, r"duplicate key 'name' \(first at line 1, column 1; again at line 3"),  # noqa: E501
        ("dup.json", '{"name": "a",\n "name": "b"}', 2, r"duplicate key 'name' \(first at line 1, column 2; again at line 2"),  # noqa: E501
        ("nested.yaml", "training:\n  epochs: 1\n  epochs: 2\n", 3, r"training.epochs: duplicate key 'epochs'"),  # noqa: E501
    ],
    ids=["yaml", "json", "nested"],
)  # fmt: skip
def test_duplicate_keys_name_both_lines(
    tmp_path: Path, name: str, text: str, line: int, match: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text, name), root=tmp_path)
    issue = next(i for i in caught.value.errors if "duplicate" in i.message)
    assert issue.line == line
    assert re.search(match, issue.message), issue.message


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("exp.toml", "name = 1", r"unsupported config file extension '.toml'"),
        ("exp", "name: x", r"unsupported config file extension '\(none\)'"),
        ("list.yaml", "- 1\n- 2\n", r"top level must be a mapping, got a list"),
        ("scalar.json", "3", r"top level must be a mapping, got 3"),
        ("empty.yaml", "", r"config is empty"),
        ("comment.yaml", "# nothing\n", r"config is empty"),
        ("intkey.yaml", "1: a\nname: x\n", r"mapping keys must be strings, got 1"),
    ],
    ids=["toml", "no-extension", "list", "scalar", "empty", "comment", "int-key"],
)
def test_bad_files(tmp_path: Path, name: str, content: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path, content, name), root=tmp_path)


def test_missing_file_is_actionable(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"nope.yaml: config file not found"
    ) as caught:
        load_config(tmp_path / "nope.yaml")
    assert str(tmp_path / "nope.yaml") in caught.value.message
    assert caught.value.hint


def test_directory_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "conf.yaml").mkdir()
    with pytest.raises(ConfigError, match=r"is a directory"):
        load_config(tmp_path / "conf.yaml")


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: x\ndescription: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin.yaml:2:17: file is not valid UTF-8"):
        load_config(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, VALID_YAML)
    path.chmod(0)
    try:
        with pytest.raises(ConfigError, match=r"cannot read the file"):
            load_config(path)
    finally:
        path.chmod(0o644)


# --------------------------------------------------------------------------- hostile


def test_billion_laughs_is_bounded(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    with pytest.raises(ConfigError, match=r"more than 100000 values once aliases"):
        load_config(write(tmp_path, "\n".join(lines) + "\n"))


def test_recursive_alias(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"exp.yaml:1:11: recursive alias \*a"):
        load_config(write(tmp_path, "a: &a [1, *a]\n"))


def test_recursive_mapping_alias(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"recursive alias \*m"):
        load_config(write(tmp_path, "m: &m\n  self: *m\n"))


@pytest.mark.parametrize("name", ["deep.yaml", "deep.json"])
def test_deep_nesting(tmp_path: Path, name: str) -> None:
    text = "[" * 5000 + "]" * 5000
    if name.endswith("yaml"):
        text = "a: " + text
    else:
        text = '{"a": ' + text + "}"
    # libyaml may stop first, at its own depth limit
    with pytest.raises(ConfigError, match=r"nesting is deeper than 64|nesting depth"):
        load_config(write(tmp_path, text, name))


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_our_own_depth_limit(tmp_path: Path, fmt: str) -> None:
    text = "[" * 100 + "]" * 100
    text = f"a: {text}" if fmt == "yaml" else f'{{"a": {text}}}'
    with pytest.raises(ConfigError, match=r":1:\d+: nesting is deeper than 64 levels"):
        load_config(write(tmp_path, text, f"deep.{fmt}"))


@pytest.mark.parametrize(
    "text",
    [
        "name: !!python/object/apply:os.system ['echo owned']\n",
        "name: !!python/name:os.system\n",
        "name: !!python/object:builtins.dict {}\n",
        "name: !!binary aGVsbG8=\n",
        "name: !custom 3\n",
        "name: !!set {a, b}\n",
    ],
    ids=["apply", "name", "object", "binary", "custom", "set"],
)
def test_object_tags_are_rejected(tmp_path: Path, text: str) -> None:
    with pytest.raises(
        ConfigError, match=r"exp.yaml:1:7: YAML tag '.*' is not allowed"
    ):
        load_config(write(tmp_path, text))


def test_huge_file_is_rejected_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w") as handle:
        handle.write("name: x\ndescription: ")
        handle.write("a" * (20 * 1024 * 1024))
    with pytest.raises(ConfigError, match=r"huge.yaml: file is larger than 10 MiB"):
        load_config(path)


def test_huge_integer_is_a_config_error(tmp_path: Path) -> None:
    digits = "9" * 5000
    for name, text in (
        ("big.yaml", f"name: {digits}\n"),
        ("big.json", f'{{"a": {digits}}}'),
    ):
        with pytest.raises(ConfigError):
            load_config(write(tmp_path, text, name))


def test_merge_keys_are_supported(tmp_path: Path) -> None:
    text = """\
base: &base
  epochs: 3
  batch_size: 8
name: merged
dataset: {name: synthetic_regression, params: {n_features: 2}}
model: {name: linear_regression}
training:
  <<: *base
  batch_size: 4
"""
    with pytest.warns(ConfigWarning, match=r"base: unknown key"):
        config = load_config(write(tmp_path, text), root=tmp_path)
    assert (config.training.epochs, config.training.batch_size) == (3, 4)


# --------------------------------------------------------------------------- overrides


def test_overrides_set_values(tmp_path: Path) -> None:
    path = write(tmp_path, VALID_YAML)
    config = load_config(
        path,
        [
            "training.epochs=5",
            "training.learning_rate=1e-2",
            "dataset.params.n_features=20",
            "model.params.optimizer_config={optimizer_type: sgd, momentum: 0.9}",
            "description=a run: with a colon",
        ],
        root=tmp_path,
    )
    assert config.training.epochs == 5
    assert config.training.learning_rate == 0.01
    assert config.dataset.params["n_features"] == 20
    assert config.model.params["optimizer_config"]["momentum"] == 0.9
    assert config.description == "a run: with a colon"


def test_override_list_value(tmp_path: Path) -> None:
    text = VALID_YAML.replace(
        "linear_regression", "mlp\n  params: {layer_sizes: [3, 1]}"
    )
    config = load_config(
        write(tmp_path, text), ["model.params.layer_sizes=[3,10,1]"], root=tmp_path
    )
    assert config.model.params["layer_sizes"] == (3, 10, 1)


def test_override_errors_name_the_override(tmp_path: Path) -> None:
    path = write(tmp_path, VALID_YAML)
    with pytest.raises(ConfigError) as caught:
        load_config(
            path, ["training.epochs=-3", "training.batch_size=big"], root=tmp_path
        )
    assert [str(e) for e in caught.value.errors] == [
        "--set training.epochs=-3: training.epochs must be an integer >= 1, got -3",
        "--set training.batch_size=big: training.batch_size must be an integer >= 1, "
        "got 'big'",
    ]


def test_override_of_missing_field_points_at_override(tmp_path: Path) -> None:
    path = write(tmp_path, VALID_YAML)
    with pytest.raises(ConfigError) as caught:
        load_config(path, ["model={name: mlp}"], root=tmp_path)
    (issue,) = caught.value.errors
    assert issue.file == "--set model={name: mlp}"
    assert "missing required field 'model.params.layer_sizes'" in issue.message


def test_override_unknown_key_warns(tmp_path: Path) -> None:
    path = write(tmp_path, VALID_YAML)
    with pytest.warns(ConfigWarning) as record:
        load_config(path, ["training.epoch=3"], root=tmp_path)
    assert [str(w.message) for w in record] == [
        "--set training.epoch=3: training.epoch: unknown key; did you mean epochs?"
    ]


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("training.epochs", r"--set training.epochs: expected KEY=VALUE"),
        ("=3", r"expected KEY=VALUE"),
        ("training..epochs=3", r"empty part in the key"),
        ("name.first=x", r"cannot set name.first: name is not a mapping"),
        ("training.epochs=[1, 2", r"--set training.epochs=\[1, 2: invalid YAML"),
        ("name=!!python/name:os.system", r"YAML tag .* is not allowed"),
    ],
    ids=["no-equals", "no-key", "empty-part", "through-scalar", "bad-yaml", "tag"],
)
def test_bad_overrides(tmp_path: Path, override: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path, VALID_YAML), [override], root=tmp_path)


def test_override_objects_carry_their_label(tmp_path: Path) -> None:
    override = Override("name", "a b", "experiment name 'a b'")
    with pytest.raises(ConfigError, match=r"^experiment name 'a b': name must be"):
        load_config(write(tmp_path, VALID_YAML), [override], root=tmp_path)


# --------------------------------------------------------------------------- python API


def test_parse_config_from_python(tmp_path: Path) -> None:
    data = {
        "name": "py",
        "dataset": {"name": "synthetic_regression", "params": {"n_features": 2}},
        "model": {"name": "linear_regression"},
        "training": {"epochs": 0},
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(data, source="mine", root=tmp_path)
    assert str(caught.value) == "mine: training.epochs must be an integer >= 1, got 0"
    data["training"] = {"epochs": 2}
    config = parse_config(data, root=tmp_path, overrides=["training.seed=7"])
    assert (config.training.epochs, config.training.seed) == (2, 7)
    assert data["training"] == {"epochs": 2}  # the caller's data is not modified


def test_parse_config_rejects_non_mapping() -> None:
    with pytest.raises(
        ConfigError, match=r"<dict>: config must be a mapping, got list"
    ):
        parse_config([1, 2])  # type: ignore[arg-type]


def test_default_config_is_the_builtin_experiment(tmp_path: Path) -> None:
    config = default_config("legacy", root=tmp_path)
    assert config.name == "legacy"
    assert config.dataset.name == "synthetic_classification"
    expected = {"n_samples": 1000, "n_features": 20, "n_classes": 3, "seed": 0}
    assert {k: config.dataset.params[k] for k in expected} == expected
    assert config.model.name == "mlp"
    assert config.model.params["layer_sizes"] == (20, 32, 3)
    assert config.model.params["output_activation"] == "softmax"
    assert (config.training.optimizer, config.training.learning_rate) == ("adam", 0.01)
    assert (config.training.epochs, config.training.batch_size) == (5, 32)
    assert config.warnings == ()


def test_default_config_rejects_bad_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"<built-in default>: name must be"):
        default_config("has space", root=tmp_path)


def test_warnings_are_issued_and_kept(tmp_path: Path) -> None:
    text = VALID_YAML + "training:\n  learnig_rate: 0.1\n"
    with pytest.warns(ConfigWarning, match=r"exp.yaml:8:3: training.learnig_rate"):
        config = load_config(write(tmp_path, text), root=tmp_path)
    assert [w.path for w in config.warnings] == ["training.learnig_rate"]
    assert config == dataclasses.replace(config, warnings=())


def test_relative_root_from_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MLX_ROOT", str(tmp_path))
    config = load_config(write(tmp_path, VALID_YAML))
    assert config.output.directory == str(tmp_path / "outputs")


def test_the_runnable_check_is_the_callers_to_ask(tmp_path: Path) -> None:
    # the schema alone accepts an MLP whose input size is not the dataset's; the
    # plan's check, which every command and run_experiment pass, refuses it, located
    from mlx.experiment.checks import check_runnable

    data = {
        "name": "m",
        "dataset": {
            "name": "synthetic_classification",
            "params": {"n_samples": 50, "n_features": 4, "n_classes": 2},
        },
        "model": {
            "name": "mlp",
            "params": {"layer_sizes": [5, 2], "output_activation": "softmax"},
        },
        "training": {"epochs": 1, "batch_size": 8, "learning_rate": 0.1},
    }
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    assert load_config(path, root=tmp_path).model.params["layer_sizes"] == (5, 2)
    with pytest.raises(ConfigError, match=r"m\.yaml:\d+:\d+: model\.params\.layer_s"):
        load_config(path, root=tmp_path, runnable=check_runnable)
    with pytest.raises(ConfigError, match="layer_sizes"):
        mlx.run_experiment(load_config(path, root=tmp_path))
