"""Runs are found wherever their config put them, through the run index."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest
from helpers import run_cli, small_classification, start_cli, write_config

from mlx.runs.index import index_path, indexed_runs, record_run


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


@pytest.mark.parametrize("directory", ["results", "deep/er/place", "ABSOLUTE"], ids=str)
def test_a_run_outside_outputs_is_listed_shown_evaluated_and_resumed(
    root: Path, directory: str
) -> None:
    target = str(root / "elsewhere") if directory == "ABSOLUTE" else directory
    config = small_classification(epochs=2)
    config["output"]["directory"] = target
    write_config(root / "exp.yaml", config)
    done = run_cli(["run-experiment", "--config", "exp.yaml", "--quiet"], root)
    assert done.returncode == 0, done.stderr
    (run_dir,) = (root / Path(target)).iterdir()
    run_id = run_dir.name

    listing = run_cli(["runs"], root)
    assert listing.returncode == 0 and run_id in listing.stdout, listing.stdout
    shown = run_cli(["runs", "show", run_id], root)
    assert shown.returncode == 0 and str(run_dir) in shown.stdout
    evaluated = run_cli(["eval", run_id, "--metrics", "accuracy"], root)
    assert evaluated.returncode == 0, evaluated.stderr
    resumed = run_cli(
        ["run-experiment", "--resume", run_id, "--set", "training.epochs=3",
         "--quiet"], root,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs_completed"] == 3
    # --root still restricts the listing
    other = root / "outputs"
    other.mkdir(exist_ok=True)
    assert run_id not in run_cli(["runs", "--root", str(other)], root).stdout


@pytest.mark.parametrize("made_in", ["outputs", "results"])
def test_a_moved_run_resumed_by_its_path_is_found_by_its_id_again(
    root: Path, made_in: str
) -> None:
    config = small_classification(epochs=1)
    config["output"]["directory"] = made_in
    write_config(root / "exp.yaml", config)
    done = run_cli(["run-experiment", "--config", "exp.yaml", "--quiet"], root)
    assert done.returncode == 0, done.stderr
    (run_dir,) = (root / made_in).iterdir()
    moved = root / "archive" / run_dir.name
    moved.parent.mkdir()
    run_dir.rename(moved)
    assert run_cli(["runs", "show", run_dir.name], root).returncode == 1
    for epochs in (2, 3):  # the second resume adds no second index line
        resumed = run_cli(
            ["run-experiment", "--resume", str(moved), "--set",
             f"training.epochs={epochs}", "--quiet"], root,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
    shown = run_cli(["runs", "show", run_dir.name], root)
    assert shown.returncode == 0 and str(moved) in shown.stdout, shown.stderr
    lines = index_path(root).read_text().splitlines()
    assert [json.loads(line)["path"] for line in lines].count(str(moved)) == 1


def test_runs_under_outputs_are_not_indexed(root: Path) -> None:
    write_config(root / "exp.yaml", small_classification(epochs=1))
    done = run_cli(["run-experiment", "--config", "exp.yaml", "--quiet"], root)
    assert done.returncode == 0, done.stderr
    assert not index_path(root).exists()
    assert " completed " in run_cli(["runs"], root).stdout


def test_the_index_is_read_tolerantly(tmp_path: Path) -> None:
    run = tmp_path / "results" / "x-20240101-000000-abcd"
    run.mkdir(parents=True)
    (run / "summary.json").write_text('{"status": "completed"}')
    assert record_run(run, tmp_path)
    assert not record_run(run, tmp_path)  # twice: recorded once
    assert len(index_path(tmp_path).read_text().splitlines()) == 1
    gone = tmp_path / "results" / "y-20240101-000000-abcd"
    with open(index_path(tmp_path), "a", encoding="utf-8") as handle:
        handle.write("{torn\n[1, 2]\n\xff\n")
        handle.write(json.dumps({"run_id": gone.name, "path": str(gone)}) + "\n")
        handle.write(json.dumps({"run_id": "other", "path": str(run)}) + "\n")
    assert indexed_runs(tmp_path) == [run]
    assert (tmp_path / ".mlx" / ".gitignore").read_text() == "*\n"
    assert indexed_runs(tmp_path / "nowhere") == []


@pytest.mark.slow
def test_the_resume_hint_after_sigterm_works_for_a_run_outside_outputs(
    root: Path,
) -> None:
    config = small_classification(epochs=30, batch_size=8)
    config["dataset"]["params"]["n_samples"] = 6000
    config["output"]["directory"] = "results"
    write_config(root / "exp.yaml", config)
    proc = start_cli(["run-experiment", "--config", "exp.yaml", "--quiet"], root)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        found = list((root / "results").glob("*/metrics.jsonl"))
        if found and found[0].read_text().strip():
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    match = re.search(r"resume with: (mlx run-experiment --resume \S+)", err)
    assert match, err
    args = match.group(1).split()[1:] + ["--quiet"]
    resumed = run_cli(args, root, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    (run_dir,) = (root / "results").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_completed"] == 30
    segments = summary["timings"]["segments"]
    assert [s["status"] for s in segments] == ["interrupted", "completed"]
    assert summary["timings"]["total_seconds"] == pytest.approx(
        sum(s["total_seconds"] for s in segments)
    )
    shown = run_cli(["runs", "show", run_dir.name], root)
    assert "over 2 segments" in shown.stdout, shown.stdout
