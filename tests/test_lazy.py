"""Names that load on first use behave like ordinary module attributes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import REPO_ROOT, cli_env

import mlx
import mlx.datasets


@pytest.mark.parametrize(
    "module, name",
    [(mlx, "run_experiment"), (mlx, "evaluate"), (mlx.datasets, "load")],
    ids=["run_experiment", "evaluate", "datasets.load"],
)
def test_lazy_names_resolve_and_are_listed(module: object, name: str) -> None:
    assert callable(getattr(module, name))
    assert name in dir(module)


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'mlx' has no attribute 'nope'"):
        mlx.nope  # noqa: B018


def test_importing_mlx_does_not_import_numpy(tmp_path: object) -> None:
    code = "import sys, mlx, mlx.datasets; print('numpy' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=cli_env(REPO_ROOT),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "False", done.stderr
