"""Repository root discovery and the inside-the-root rule for written paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlx.errors import ConfigError
from mlx.utils.paths import (
    is_within,
    repository_root,
    resolve_inside_root,
    resolve_path,
)


@pytest.mark.parametrize("marker", [".git", "pyproject.toml"])
def test_root_is_nearest_marked_ancestor(
    tmp_path: Path, monkeypatch, marker: str
) -> None:
    monkeypatch.delenv("MLX_ROOT", raising=False)
    (tmp_path / marker).touch()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert repository_root(deep) == tmp_path.resolve()
    monkeypatch.chdir(deep)
    assert repository_root() == tmp_path.resolve()


def test_root_falls_back_to_start(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MLX_ROOT", raising=False)
    if any(
        (p / m).exists() for p in tmp_path.parents for m in (".git", "pyproject.toml")
    ):
        pytest.skip("a marker sits above the temporary directory")
    assert repository_root(tmp_path) == tmp_path.resolve()


def test_mlx_root_overrides(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MLX_ROOT", str(tmp_path))
    assert repository_root(Path("/")) == tmp_path.resolve()


def test_resolve_path_joins_relative_to_root(tmp_path: Path) -> None:
    assert resolve_path("data/x.csv", tmp_path) == tmp_path.resolve() / "data" / "x.csv"
    assert resolve_path("/abs/x", tmp_path) == Path("/abs/x")
    assert resolve_path("a/../b", tmp_path) == tmp_path.resolve() / "b"


@pytest.mark.parametrize(
    ("path", "inside"),
    [("outputs", True), ("outputs/a/../b", True), (".", True), ("..", False),
     ("outputs/../../x", False), ("/", False)],
    ids=["plain", "dotdot-inside", "root-itself", "parent", "dotdot-escape", "slash"],
)  # fmt: skip
def test_resolve_inside_root(tmp_path: Path, path: str, inside: bool) -> None:
    if inside:
        assert is_within(resolve_inside_root(path, tmp_path), tmp_path.resolve())
    else:
        with pytest.raises(ConfigError, match=r"resolves to .*, which is outside"):
            resolve_inside_root(path, tmp_path)


def test_symlink_pointing_out_is_rejected(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ConfigError, match=str(outside / "runs")):
        resolve_inside_root("link/runs", root)


def test_symlink_staying_in_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    assert resolve_inside_root("link/x", tmp_path) == tmp_path.resolve() / "real" / "x"


def test_root_given_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    assert (
        resolve_inside_root("out", tmp_path / "alias")
        == tmp_path.resolve() / "real" / "out"
    )


def test_is_within_is_not_a_string_prefix(tmp_path: Path) -> None:
    assert not is_within(tmp_path / "rootx", tmp_path / "root")
    assert is_within(tmp_path / "root" / "x", tmp_path / "root")
