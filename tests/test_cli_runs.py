"""mlx runs / mlx runs show, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import run_cli, small_classification, write_config


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


def test_runs_lists_newest_first_and_shows_one(root: Path) -> None:
    write_config(root / "exp.yaml", small_classification(epochs=2))
    ids = []
    for name in ("first", "second"):
        done = run_cli(
            ["run-experiment", name, "--config", "exp.yaml", "--quiet"], root
        )
        assert done.returncode == 0, done.stderr
        (run_dir,) = (root / "outputs").glob(f"{name}-*")
        ids.append(run_dir.name)

    listing = run_cli(["runs"], root)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split()[:3] == ["RUN", "ID", "STATUS"]
    assert [line.split()[0] for line in lines[1:]] == ids[::-1]
    assert all(" completed " in line for line in lines[1:])

    shown = run_cli(["runs", "show", ids[0]], root)
    assert shown.returncode == 0, shown.stderr
    assert ids[0] in shown.stdout and "completed" in shown.stdout
    by_path = run_cli(["runs", "show", str(root / "outputs" / ids[1])], root)
    assert by_path.returncode == 0 and ids[1] in by_path.stdout


def test_runs_shows_a_killed_run_as_lost(root: Path) -> None:
    write_config(root / "exp.yaml", small_classification(epochs=1))
    assert (
        run_cli(["run-experiment", "--config", "exp.yaml", "--quiet"], root).returncode
        == 0
    )
    (run_dir,) = (root / "outputs").iterdir()
    # what a SIGKILLed run leaves behind: "running", with a pid that is gone
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.update(status="running", pid=2**22 + 12345, finished_at=None)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    listing = run_cli(["runs"], root)
    assert " lost " in listing.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["runs", "show"], "RUN"),
        (["runs", "show", "nope"], "nope"),
        (["runs", "extra"], "invalid choice"),
    ],
    ids=["show-without-run", "unknown-run", "unknown-action"],
)
def test_runs_errors(root: Path, args: list, message: str) -> None:
    done = run_cli(args, root)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_runs_with_no_runs(root: Path) -> None:
    done = run_cli(["runs"], root)
    assert done.returncode == 0
    assert "no runs yet" in done.stdout


@pytest.mark.parametrize(
    ("copy", "shown"),
    [("backup", "backup"), ("back\nup", "back?up"), ("b\x1b[31mred", "b?[31mred")],
    ids=["plain", "newline", "escape"],
)
def test_a_copied_run_is_listed_by_the_id_that_opens_it(
    root: Path, copy: str, shown: str
) -> None:
    import shutil

    write_config(root / "exp.yaml", small_classification(epochs=1))
    done = run_cli(["run-experiment", "--config", "exp.yaml", "--quiet"], root)
    assert done.returncode == 0, done.stderr
    (run_dir,) = (root / "outputs").iterdir()
    shutil.copytree(run_dir, root / "outputs" / copy)
    listing = run_cli(["runs"], root)
    ids = sorted(line.split()[0] for line in listing.stdout.splitlines()[1:])
    assert ids == sorted([run_dir.name, shown])
    records = json.loads(run_cli(["runs", "--json"], root).stdout)
    assert sorted(r["run_id"] for r in records) == sorted([run_dir.name, shown])
    if copy == "backup":
        opened = run_cli(["runs", "show", "backup"], root)
        assert opened.returncode == 0 and "Run:         backup" in opened.stdout
