"""``mlx completion bash|zsh``: the scripts load in the shell and complete what the
argparse parser defines."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO_ROOT, cli_env, run_cli

from mlx.cli import build_parser

BASH = shutil.which("bash")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    (action,) = [
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ]
    return dict(action.choices)


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for a in parser._actions for option in a.option_strings}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


def _complete(root: Path, *words: str) -> list[str]:
    """What bash offers for the command line ``mlx WORDS`` (the last word is the one
    being completed), with the script sourced from ``mlx completion bash``."""
    assert BASH is not None
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in ("mlx", *words))
    script = (
        f'source <("{sys.executable}" -m mlx completion bash) || exit 3\n'
        f"COMP_WORDS=({quoted}); COMP_CWORD={len(words)}\n"
        '_mlx; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        [BASH, "--norc", "-c", script],
        cwd=root,
        env=cli_env(root),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return [line for line in done.stdout.splitlines() if line]


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
def test_bash_sources_the_script_and_registers_mlx(root: Path) -> None:
    done = subprocess.run(
        [
            BASH,
            "--norc",
            "-c",
            f'source <("{sys.executable}" -m mlx completion bash); complete -p mlx',
        ],
        cwd=root,
        env=cli_env(root),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "complete -o default -F _mlx mlx"


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
def test_bash_completes_the_parsers_subcommands_and_options(root: Path) -> None:
    commands = _subcommands()
    assert {"run-experiment", "eval", "runs", "compare", "completion"} <= set(commands)
    assert set(_complete(root, "")) == set(commands) | _options(build_parser())
    assert "report" in commands  # so "r" has more than one completion
    assert sorted(_complete(root, "r")) == sorted(c for c in commands if c[0] == "r")
    assert _complete(root, "--debug", "com") == ["compare", "completion"]
    for name, parser in commands.items():
        offered = set(_complete(root, name, "-"))
        assert offered == _options(parser), name
    assert "--json" in _complete(root, "runs", "--j")
    offered = _complete(root, "runs", "")
    assert offered[0] == "show" and set(offered[1:]) == _options(commands["runs"])


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
def test_bash_completes_option_values(root: Path) -> None:
    assert _complete(root, "eval", "RUN", "--split", "") == ["test", "val", "train"]
    assert _complete(root, "eval", "--split", "v") == ["val"]
    assert _complete(root, "completion", "") == ["bash", "zsh", "-h", "--help"]
    (root / "configs").mkdir()
    (root / "configs" / "exp.yaml").write_text("")
    (root / "cfg.yaml").write_text("")
    assert _complete(root, "run-experiment", "--config", "cf") == ["cfg.yaml"]
    assert _complete(root, "run-experiment", "--config", "configs/") == [
        "configs/exp.yaml"
    ]
    # --root takes directories only
    assert _complete(root, "runs", "--root", "c") == ["configs"]
    # a free value (--set KEY=VALUE) is not completed with option names
    assert _complete(root, "run-experiment", "--set", "") == []


def test_zsh_script_names_every_subcommand_and_option(root: Path) -> None:
    done = run_cli(["completion", "zsh"], root)
    assert done.returncode == 0, done.stderr
    script = done.stdout
    assert script.startswith("#compdef mlx\n")
    assert "compdef _mlx mlx" in script
    for name, parser in _subcommands().items():
        assert f"        {name})" in script, name
        for option in _options(parser):
            assert f"'{option}'" in script, (name, option)


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_parses_the_script_and_registers_mlx(root: Path) -> None:
    zsh = shutil.which("zsh")
    assert zsh is not None
    script = run_cli(["completion", "zsh"], root).stdout
    check = subprocess.run([zsh, "-n"], input=script, text=True, capture_output=True)
    assert check.returncode == 0, check.stderr
    (root / "_mlx").write_text(script)
    loaded = subprocess.run(
        [
            zsh,
            "-fc",
            f"autoload -U compinit; compinit -u -d {root}/.zcompdump; "
            f"source {root}/_mlx; print -r -- ${{_comps[mlx]}}",
        ],
        text=True,
        capture_output=True,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "_mlx"


def test_completion_needs_a_known_shell(root: Path) -> None:
    for args in (["completion"], ["completion", "fish"]):
        done = run_cli(args, root)
        assert done.returncode == 1
        assert done.stdout == ""
        assert "error:" in done.stderr and "Traceback" not in done.stderr


def test_completion_loads_nothing_heavy(root: Path) -> None:
    code = (
        "import sys\n"
        "from mlx.cli import main\n"
        "assert main(['completion', 'bash']) == 0\n"
        "heavy = {'numpy', 'yaml', 'torch'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "complete -o default -F _mlx mlx" in done.stdout
