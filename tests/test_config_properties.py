"""Mutated configs never make the loader fail with anything but ConfigError."""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlx.config import ConfigError, ConfigWarning, ExperimentConfig, load_config

REPO = Path(__file__).resolve().parents[1]
VALID = [
    yaml.safe_load((REPO / "examples" / name).read_text())
    for name in ("quickstart.yaml", "regression.yaml", "mnist_config.json")
]

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -1, 1, 2, 10**12, 10**100]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", "..", "../x", "/etc", "mlp", "mnist", "relu", "a" * 500]),
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


def _paths(data: Any, prefix: tuple = ()) -> list:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*prefix, index))
    return found


def _mutate(data: Any, path: tuple, kind: str, value: Any, name: str) -> Any:
    if not path:
        return value if kind in ("retype", "huge") else data
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if kind == "delete":
        del parent[last]
    elif kind == "rename" and isinstance(parent, dict):
        parent[name] = parent.pop(last)
    elif kind == "nest":
        parent[last] = {name: parent[last]} if name else [parent[last]]
    elif kind == "huge":
        parent[last] = [parent[last]] * 1000 if isinstance(value, list) else 10**400
    else:
        parent[last] = value
    return data


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    data = json.loads(json.dumps(draw(st.sampled_from(VALID))))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        kind = draw(st.sampled_from(["delete", "retype", "rename", "nest", "huge"]))
        data = _mutate(data, path, kind, draw(values), draw(st.text(max_size=6)))
    return data


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(data=mutated(), fmt=st.sampled_from(["yaml", "json"]))
def test_mutated_configs_load_or_raise_config_error(data: Any, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"exp.{fmt}"
        if fmt == "json":
            text = json.dumps(data)
        else:
            text = yaml.safe_dump(data, allow_unicode=True)
        path.write_text(text, encoding="utf-8")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConfigWarning)
            try:
                config = load_config(path, root=tmp)
            except ConfigError as exc:
                assert exc.errors, exc.message
                assert all(str(issue) for issue in exc.errors)
            else:
                assert isinstance(config, ExperimentConfig)
                assert config.to_dict()["name"] == config.name
