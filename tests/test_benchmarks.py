"""Smoke test of the benchmark suite: ``--quick`` runs every group and writes its
JSON. The figures themselves are not checked (benchmarks are not tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_quick_run_writes_every_group(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(output)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(output.read_text(encoding="utf-8"))
    groups = {row["group"] for row in document["results"]}
    assert groups == {
        "mlp",
        "linear",
        "synthetic",
        "startup",
        "harness",
        "memory",
        "torch_backend",
        "fingerprint",
        "sweep",
    }
    assert document["quick"] is True
    environment = document["environment"]
    assert environment["threads"] >= 1
    assert environment["numpy"] and environment["python"]
    for row in document["results"]:
        assert set(row) >= {"setting", "ours", "peer", "ratio", "target", "meets"}
    # the printed table carries the same rows
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert len(table) == len(document["results"]) + 1  # the header, then one a row


def test_only_runs_one_group(tmp_path: Path) -> None:
    output = tmp_path / "startup.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--only",
            "synthetic",
            "--output",
            str(output),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        check=True,
        timeout=300,
    )
    document = json.loads(output.read_text(encoding="utf-8"))
    assert {row["group"] for row in document["results"]} == {"synthetic"}
