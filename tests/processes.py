"""Stopping a real ``python -m mlx`` at a chosen moment, and the invariant an
interrupted command must leave: the support of tests/test_interrupted_work.py and
tests/test_interrupted_export.py.

The private hook ``_MLX_PAUSE_AT=<point>`` (mlx.utils.signals.pause_point) makes the
process say ``paused at <point>`` and wait for the signal there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from helpers import cli_env, run_cli

# -- the invariant ---------------------------------------------------------------


def run_dirs(root: Path) -> list[Path]:
    base = root / "outputs"
    return sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def check_invariant(root: Path) -> list[Path]:
    """No run directory without summary.json, none left running; an interrupted
    one resumes to the end or is refused with a reason. Returns the runs."""
    runs = run_dirs(root)
    for run in runs:
        summary_path = run / "summary.json"
        assert summary_path.is_file(), f"{run.name} has no summary.json"
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        assert summary["status"] != "running", f"{run.name} left running"
        if summary["status"] == "completed":  # the signal came too late
            continue
        assert summary["status"] == "interrupted", summary
        resumed = run_cli(["run-experiment", "--resume", str(run), "--quiet"], root)
        assert "Traceback" not in resumed.stderr, resumed.stderr
        if resumed.returncode != 0:  # refused, saying why and what to do
            assert "cannot resume" in resumed.stderr, resumed.stderr
            assert "hint:" in resumed.stderr, resumed.stderr
        else:
            done = json.loads(summary_path.read_text(encoding="utf-8"))
            assert done["status"] == "completed"
    return runs


# -- processes -------------------------------------------------------------------


def start(root: Path, args: Sequence[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        cwd=root,
        env=cli_env(root, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def mlx_args(*args: str) -> list[str]:
    return [sys.executable, "-m", "mlx", *args]


def paused(proc: subprocess.Popen, point: str) -> None:
    """Wait until ``proc`` says it is paused at ``point``."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.strip() == f"paused at {point}":
            return
    proc.communicate()
    raise AssertionError(f"never paused at {point}: {''.join(seen)}")


def stopped(proc: subprocess.Popen, sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    _, err = proc.communicate()
    assert "Traceback" not in err, err
    return proc.returncode, err
