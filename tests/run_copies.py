"""One real run, trained once through the CLI, copied under new IDs for each test.

Tests of hostile files damage a copy and then drive the real CLI against it, with
healthy copies beside it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from helpers import run_cli, small_classification, write_config

TEMPLATE_ID = "small-20240101-000000-aaaa"


def train_template(base: Path) -> Path:
    """A completed 2-epoch run with a checkpoint per epoch, in ``base/outputs``."""
    (base / "pyproject.toml").write_text("")
    config = small_classification(epochs=2)
    config["output"]["checkpoint_frequency"] = 1
    write_config(base / "exp.yaml", config)
    done = run_cli(["run-experiment", "--config", "exp.yaml", "--quiet"], base)
    assert done.returncode == 0, done.stderr
    (run_dir,) = (base / "outputs").iterdir()
    return run_dir


def new_root(tmp_path: Path) -> Path:
    """An empty repository root for a test: ``tmp_path/repo`` with ``outputs/``."""
    root = tmp_path / "repo"
    (root / "outputs").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    return root


def clone(template: Path, root: Path, run_id: str) -> Path:
    """A copy of the run ``template`` as ``root/outputs/run_id``."""
    target = root / "outputs" / run_id
    shutil.copytree(template, target, symlinks=True)
    summary_path = target / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    summary["run_id"] = run_id
    summary_path.write_text(json.dumps(summary), encoding="utf-8")
    # config.yaml keeps the template's output.directory: it is part of the config
    # fingerprint that resume checks, and nothing is written there
    return target


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every regular file under ``directory`` (links not followed) and its bytes."""
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[str(path.relative_to(directory))] = path.read_bytes()
        elif path.is_dir() and not path.is_symlink():
            found[str(path.relative_to(directory)) + "/"] = b""
    return found
