"""`mlx --help`, dry runs and NumPy-model runs never import torch.

Each command runs through the CLI in a subprocess whose ``sitecustomize`` makes any
attempt to import torch or torchvision fail loudly (not with ImportError, which code
that probes for an optional backend would swallow) and records it in a file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO_ROOT, cli_env

QUICKSTART = str(REPO_ROOT / "examples" / "quickstart.yaml")

HOOK = """
import os
import sys


class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in ("torch", "torchvision"):
            with open(os.environ["MLX_TORCH_LOG"], "a") as log:
                log.write(name + "\\n")
            raise RuntimeError("this process must not import " + name)
        return None


sys.meta_path.insert(0, _NoTorch())
"""


@pytest.fixture
def guarded(tmp_path: Path) -> tuple[Path, dict[str, str], Path]:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    root = tmp_path / "root"
    root.mkdir()
    (root / "pyproject.toml").write_text("")
    log = tmp_path / "torch.log"
    env = cli_env(
        root,
        PYTHONPATH=f"{hook}{os.pathsep}{REPO_ROOT}",
        MLX_TORCH_LOG=str(log),
    )
    return root, env, log


def _mlx(
    args: list[str], root: Path, env: dict[str, str]
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlx", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_guard_catches_an_import_of_torch(guarded: tuple[Path, dict, Path]) -> None:
    root, env, log = guarded
    done = subprocess.run(
        [sys.executable, "-c", "import torchvision.models"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "must not import torchvision" in done.stderr
    assert log.read_text().splitlines() == ["torchvision"]


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["run-experiment", "--help"],
        ["run-experiment", "--config", QUICKSTART, "--dry-run"],
        ["run-experiment", "--dry-run"],
        ["eval", "--dry-run"],
        ["runs"],
    ],
    ids=[
        "help",
        "version",
        "run-help",
        "dry-run",
        "default-dry-run",
        "eval-list",
        "runs",
    ],
)
def test_commands_that_train_nothing_never_import_torch(
    guarded: tuple[Path, dict, Path], args: list[str]
) -> None:
    root, env, log = guarded
    done = _mlx(args, root, env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert not log.exists()


@pytest.mark.slow
def test_a_numpy_model_trains_and_evaluates_without_torch(
    guarded: tuple[Path, dict, Path],
) -> None:
    root, env, log = guarded
    done = _mlx(
        ["run-experiment", "--config", QUICKSTART, "--set", "training.epochs=1"],
        root,
        env,
    )
    assert done.returncode == 0, done.stderr
    (run,) = (root / "outputs" / "quickstart").iterdir()
    assert (run / "model" / "model.safetensors").is_file()
    for args in (["eval", str(run)], ["runs", "show", str(run)]):
        followed = _mlx(args, root, env)
        assert followed.returncode == 0, followed.stderr
    assert not log.exists()
