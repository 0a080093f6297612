"""Checkpoint lists are in epoch order (epoch-9 before epoch-10), through the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import run_cli
from run_copies import clone, new_root, train_template

RUN = "small-20240103-000000-0001"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    template = train_template(tmp_path_factory.mktemp("template"))
    root = new_root(tmp_path_factory.mktemp("ordered"))
    run = clone(template, root, RUN)
    checkpoints = run / "checkpoints"
    for name in ("epoch-0009", "epoch-0010", "epoch-0100", "epoch-0010-step-00000123"):
        shutil.copytree(checkpoints / "epoch-0002", checkpoints / name)
    return root


def test_eval_hint_lists_checkpoints_by_epoch(root: Path) -> None:
    done = run_cli(["eval", RUN, "--checkpoint", "epoch-99"], root)
    assert done.returncode == 1
    hints = [line for line in done.stderr.splitlines() if line.startswith("hint: ")]
    assert hints == [
        "hint: available: final, epoch-1, epoch-2, epoch-9, epoch-10, epoch-100"
    ], done.stderr
    # a listed name works as given
    assert run_cli(["eval", RUN, "--checkpoint", "epoch-10"], root).returncode == 0


def test_runs_show_lists_checkpoints_by_epoch(root: Path) -> None:
    done = run_cli(["runs", "show", RUN], root)
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("Checkpoints:")]
    assert line.split(":", 1)[1].strip() == (
        "6 (epoch-1, epoch-2, epoch-9, epoch-10, epoch-10-step-123, epoch-100)"
    )


@pytest.mark.parametrize("name", ["epoch-" + "9" * 5000, "epoch-x", "epoch--1", "last"])
def test_an_impossible_checkpoint_name_is_a_clean_error(root: Path, name: str) -> None:
    done = run_cli(["eval", RUN, "--checkpoint", name], root)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: unknown checkpoint"), done.stderr[:300]
