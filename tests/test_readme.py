"""The README tells the truth: its API table, Python examples and commands all work."""

from __future__ import annotations

import importlib
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO_ROOT, cli_env

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# run IDs in the README are examples; the test substitutes the runs it made
_EXAMPLE_ID = re.compile(r"\b([A-Za-z_]+)-20261126-104142-8eeb\b")


def _blocks(language: str) -> list:
    return [body for lang, body in _FENCE.findall(README) if lang == language]


def _api_table() -> dict:
    rows = re.findall(r"^\| `(mlx[\w.]*)` \| (.+) \|$", README, re.MULTILINE)
    return {module: set(re.findall(r"`(\w+)`", names)) for module, names in rows}


def test_public_api_table_matches_every_modules_all() -> None:
    table = _api_table()
    assert set(table) == {
        "mlx", "mlx.config", "mlx.datasets", "mlx.models", "mlx.optim",
        "mlx.schedules", "mlx.losses", "mlx.metrics", "mlx.runs", "mlx.errors",
    }  # fmt: skip
    for module, names in table.items():
        exported = set(importlib.import_module(module).__all__)
        assert exported == names, module


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(REPO_ROOT / "examples", tmp_path / "examples")
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize(
    "code", _blocks("python"), ids=lambda code: code.splitlines()[0][:40]
)
def test_python_examples_run(workdir: Path, code: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=workdir,
        env=cli_env(workdir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr


def _commands() -> list:
    commands = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            line = line.strip()
            if not (line.startswith("mlx ") or line.startswith("python -m mlx")):
                continue
            # usage lines such as `mlx eval [experiment_id] ...` are not examples
            if re.search(r"\[[a-z_]+\]|\[--|\bRUN\b", line):
                continue
            commands.append(line)
    return commands


@pytest.mark.slow
def test_every_command_in_the_readme_runs(workdir: Path) -> None:
    commands = _commands()
    assert len(commands) >= 15
    for line in commands:
        args = shlex.split(line)
        args = args[3:] if args[0] == "python" else args[1:]
        args = [_EXAMPLE_ID.sub(lambda m: _newest_run(workdir, m.group(1)), a)
                for a in args]  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "mlx", *args],
            cwd=workdir,
            env=cli_env(workdir),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        assert "Traceback" not in done.stderr


def _newest_run(root: Path, name: str) -> str:
    runs = sorted(p.parent.name for p in root.glob(f"outputs/**/{name}-*/summary.json"))
    assert runs, f"no run of {name} yet"
    return runs[-1]


def test_config_error_example_is_what_the_cli_prints(workdir: Path) -> None:
    yaml_block = next(b for b in _blocks("yaml") if b.startswith("name: typo-demo"))
    console = next(b for b in _blocks("console") if "--config exp.yaml" in b)
    (workdir / "exp.yaml").write_text(yaml_block)
    command, *expected = console.strip().splitlines()
    args = shlex.split(command.lstrip("$ "))[1:]
    done = subprocess.run(
        [sys.executable, "-m", "mlx", *args],
        cwd=workdir,
        env=cli_env(workdir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == expected
