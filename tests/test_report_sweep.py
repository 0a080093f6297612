"""``mlx report SWEEP``: a sweep's name or directory reports the runs of its points."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from tests.helpers import run_cli, small_classification, write_config

pytest.importorskip("matplotlib")
pytestmark = pytest.mark.slow


def _sweep(root: Path) -> Path:
    (root / "pyproject.toml").write_text("")
    write_config(root / "base.yaml", small_classification())
    write_config(
        root / "sweep.yaml",
        {
            "name": "sw",
            "base": "base.yaml",
            "method": "grid",
            "parameters": {"training.learning_rate": {"values": [0.1, 0.01]}},
            "metric": "val_accuracy",
        },
    )
    done = run_cli(["sweep", "--config", "sweep.yaml", "--json"], root)
    assert done.returncode == 0, done.stderr
    return Path(json.loads(done.stdout)["directory"])


def test_a_sweep_reports_every_point_and_its_varied_parameter(tmp_path: Path) -> None:
    directory = _sweep(tmp_path)
    run_ids = sorted(
        p.name for p in directory.iterdir() if (p / "summary.json").is_file()
    )
    assert len(run_ids) == 2
    for ref in ("sw", str(directory)):
        done = run_cli(["report", ref, "-o", "r.html"], tmp_path)
        assert done.returncode == 0, done.stderr
        page = html.unescape((tmp_path / "r.html").read_text(encoding="utf-8"))
        for run_id in run_ids:
            assert f'data-run-id="{run_id}"' in page
        assert '<section id="comparison">' in page
        assert "training.learning_rate against" in page


def test_a_name_that_is_neither_a_run_nor_a_sweep_is_one_error(tmp_path: Path) -> None:
    _sweep(tmp_path)
    done = run_cli(["report", "nothing-here", "-o", "r.html"], tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("error:") and "Traceback" not in done.stderr
    assert not (tmp_path / "r.html").exists()
