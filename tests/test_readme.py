"""The README stays short and keeps the specification's permanent sections; the
Public API table of docs/python-api.md is what the modules export; the configuration
error shown in docs/configuration.md is what the CLI prints. (Every example of the
README and the docs is run by test_docs.py.)"""

from __future__ import annotations

import importlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from doc_pages import blocks
from helpers import REPO_ROOT, cli_env

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
# the specification's closing sections, which the README keeps word for word
PERMANENTS = (
    "# Permanents (License, Contributing, Author)\n\n"
    "Do not change any of the below sections\n\n"
    "## License\n\n"
    "All Agent Foundry work is licensed under the GPLv3 License - see the LICENSE file "
    "for details.\n\n"
    "## Contributing\n\n"
    "Feel free to submit issues and enhancement requests!\n\n"
    "## Author\n\n"
    "Created by Agent Foundry and John Brosnihan\n"
)


def test_readme_is_short() -> None:
    assert README.count("\n") <= 300


def test_readme_ends_with_the_permanent_sections() -> None:
    assert README.endswith(PERMANENTS)


def _api_table() -> dict:
    page = (REPO_ROOT / "docs" / "python-api.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(mlx[\w.]*)` \| (.+) \|$", page, re.MULTILINE)
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
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


def test_config_error_example_is_what_the_cli_prints(workdir: Path) -> None:
    examples = blocks(REPO_ROOT / "docs" / "configuration.md")
    yaml_block = next(e.body for e in examples if e.first_line == "name: typo-demo")
    console = next(
        e.body
        for e in examples
        if e.language == "console" and "--config exp.yaml" in e.body
    )
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
