"""Shared helpers for tests that drive the real CLI in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]


def cli_env(root: Path, **extra: str) -> dict[str, str]:
    """Environment for a subprocess: this checkout's mlx, ``root`` as MLX_ROOT."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MLX_ROOT": str(root)}
    env.pop("MLX_DATA_DIR", None)
    env.update(extra)
    return env


def run_cli(
    args: Sequence[str],
    root: Path,
    *,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``python -m mlx ARGS`` in ``root`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "mlx", *args],
        cwd=root,
        env=env or cli_env(root),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(args: Sequence[str], root: Path) -> subprocess.Popen:
    """Start ``python -m mlx ARGS`` in ``root`` in the background, output piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "mlx", *args],
        cwd=root,
        env=cli_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def small_classification(**training: Any) -> dict[str, Any]:
    """A config that trains in well under a second."""
    return {
        "name": "small",
        "dataset": {
            "name": "synthetic_classification",
            "params": {"n_samples": 600, "n_features": 8, "n_classes": 3, "seed": 3},
        },
        "model": {
            "name": "mlp",
            "params": {
                "layer_sizes": [8, 16, 3],
                "output_activation": "softmax",
            },
        },
        "training": {
            "epochs": 4,
            "batch_size": 32,
            "learning_rate": 0.01,
            "optimizer": "adam",
            "seed": 5,
            **training,
        },
        "output": {"directory": "outputs"},
    }
