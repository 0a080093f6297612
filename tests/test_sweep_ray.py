"""``mlx sweep --executor ray`` through a real local Ray: the same points, statuses
and final metrics as the local executor."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import (
    cli_env,
    run_cli,
    run_cli_process,
    small_classification,
    write_config,
)

# ray is in the test extra; without it (a bare checkout) these are skipped. It is
# looked up, not imported: the tests drive it in subprocesses only
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None, reason="ray is not installed"
    ),
]


def _sweep(root: Path, name: str) -> None:
    (root / "pyproject.toml").write_text("")
    write_config(root / "base.yaml", small_classification())
    write_config(
        root / f"{name}.yaml",
        {
            "name": name,
            "base": "base.yaml",
            "parameters": {
                "training.learning_rate": {"values": [0.01, 0.03]},
                "training.batch_size": {"values": [16, 32]},
            },
            "metric": "val_accuracy",
        },
    )


def _comparable(report: dict) -> list:
    return [
        (p["hash"], p["status"], p["parameters"], p["final_metrics"])
        for p in report["points"]
    ]


def test_ray_gives_the_same_points_statuses_and_metrics_as_local(
    tmp_path: Path,
) -> None:
    _sweep(tmp_path, "local")
    _sweep(tmp_path, "onray")
    local = run_cli(
        ["sweep", "--config", "local.yaml", "--json", "--jobs", "2"], tmp_path
    )
    assert local.returncode == 0, local.stderr
    env = cli_env(tmp_path, RAY_AUTH_MODE="disabled")
    remote = run_cli_process(
        [
            "sweep",
            "--config",
            "onray.yaml",
            "--json",
            "--executor",
            "ray",
            "--jobs",
            "2",
        ],
        tmp_path,
        env=env,
        timeout=600,
    )
    assert remote.returncode == 0, remote.stderr
    assert "Traceback" not in remote.stderr
    assert "ray: started in" in remote.stderr
    a, b = json.loads(local.stdout), json.loads(remote.stdout)
    assert _comparable(a) == _comparable(b)
    assert len(a["points"]) == 4
    assert {p["status"] for p in b["points"]} == {"completed"}
    # the run directories a Ray sweep writes are ordinary runs, with the point record
    for point in b["points"]:
        run = tmp_path / "outputs" / "onray" / point["run_id"]
        summary = json.loads((run / "summary.json").read_text())
        assert summary["sweep"] == "onray" and summary["point"] == point["hash"]
    assert (a["best"]["hash"], a["best"]["value"]) == (
        b["best"]["hash"],
        b["best"]["value"],
    )


def test_ray_is_imported_only_with_executor_ray(tmp_path: Path) -> None:
    _sweep(tmp_path, "local")
    probe = (
        "import sys; sys.argv = ['mlx', 'sweep', '--config', 'local.yaml'];\n"
        "from mlx.cli import main\n"
        "code = main()\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
