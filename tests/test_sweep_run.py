"""``mlx sweep`` running points: the pool, failures, kills, resume, the lock, show.

Every test drives the real CLI (its points run in processes of their own) and reads
the run directories it left, as a user would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from helpers import run_cli, small_classification, start_cli, write_config

pytestmark = pytest.mark.slow

_FLAKY = '''
import os

from mlx.models import MLP


class Flaky(MLP):
    """An MLP that fails on purpose: always (fail: true) or while a file exists."""

    def __init__(self, fail=False, **params):
        self.fail = fail
        super().__init__(**params)

    def train_step(self, X, y):
        flag = isinstance(self.fail, str) and os.path.exists(self.fail)
        if self.fail is True or flag:
            raise RuntimeError(f"boom: fail={self.fail!r} fails on purpose")
        return super().train_step(X, y)
'''


def _setup(
    root: Path, parameters: dict[str, Any], *, base: dict | None = None, **extra: Any
) -> Path:
    (root / "pyproject.toml").write_text("")
    write_config(root / "base.yaml", base or small_classification())
    sweep = {
        "name": "sw",
        "base": "base.yaml",
        "method": "grid",
        "parameters": parameters,
        "metric": "val_accuracy",
        **extra,
    }
    return write_config(root / "sweep.yaml", sweep)


def _flaky_base(**training: Any) -> dict[str, Any]:
    base = small_classification(**training)
    base["model"] = {
        "name": "custom",
        "params": {
            "class_path": "flaky:Flaky",
            "layer_sizes": [8, 16, 3],
            "output_activation": "softmax",
            "fail": False,
            "seed": 1,
        },
    }
    return base


def _sweep_dir(root: Path) -> Path:
    return root / "outputs" / "sw"


def _runs(root: Path) -> dict[Path, dict[str, Any]]:
    found = {}
    for path in sorted(_sweep_dir(root).iterdir()):
        if (path / "summary.json").is_file():
            found[path] = json.loads((path / "summary.json").read_text())
    return found


def _show(root: Path) -> dict[str, Any]:
    done = run_cli(["sweep", "show", "sw", "--json"], root)
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


def _wait_for(check: Callable[[], bool], what: str) -> None:
    # a guard against a hang, not a performance check
    for _ in range(3000):
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def _completed(root: Path) -> int:
    try:
        return sum(s["status"] == "completed" for s in _runs(root).values())
    except (OSError, ValueError):
        return 0


# ---------------------------------------------------------------- the pool


def test_eight_points_on_four_jobs_give_eight_distinct_completed_runs(
    tmp_path: Path,
) -> None:
    _setup(
        tmp_path,
        {
            "training.learning_rate": {"values": [0.01, 0.02]},
            "training.batch_size": {"values": [16, 32]},
            "model.params.activation": {"values": ["relu", "tanh"]},
            "training.seed": {"values": [5]},  # one value: not a table column
        },
    )
    done = run_cli(["sweep", "--config", "sweep.yaml", "--jobs", "4"], tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads((_sweep_dir(tmp_path) / "sweep.json").read_text())
    hashes = [p["hash"] for p in record["points"]]
    assert len(set(hashes)) == 8
    assert record["text"] == (tmp_path / "sweep.yaml").read_text()
    runs = _runs(tmp_path)
    assert len(runs) == 8
    assert sorted(s["point"] for s in runs.values()) == sorted(hashes)
    assert {s["sweep"] for s in runs.values()} == {"sw"}
    assert {s["status"] for s in runs.values()} == {"completed"}
    # each run trained its own point's config
    import yaml

    by_hash = {p["hash"]: p["parameters"] for p in record["points"]}
    for path, summary in runs.items():
        config = yaml.safe_load((path / "config.yaml").read_text())
        params = by_hash[summary["point"]]
        assert config["training"]["learning_rate"] == params["training.learning_rate"]
        assert config["training"]["batch_size"] == params["training.batch_size"]
        assert (
            config["model"]["params"]["activation"] == params["model.params.activation"]
        )
        assert config["output"]["directory"] == str(_sweep_dir(tmp_path))
    # one progress line per finished point when piped
    lines = [line for line in done.stderr.splitlines() if "] completed " in line]
    assert sorted(line.split("]")[0] for line in lines) == [
        f"[{i}/8" for i in range(1, 9)
    ]
    # the final table: 8 rows, varied parameters only
    header = next(line for line in done.stdout.splitlines() if "status" in line)
    assert "training.learning_rate" in header and "training.seed" not in header
    assert sum(" completed " in line for line in done.stdout.splitlines()) == 8
    # the runs are ordinary runs: listed, shown and evaluated by ID
    listing = run_cli(["runs"], tmp_path)
    assert sum(path.name in listing.stdout for path in runs) == 8
    some = next(iter(runs)).name
    assert run_cli(["runs", "show", some], tmp_path).returncode == 0
    evaluated = run_cli(["eval", some], tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr


def test_threads_per_point_caps_the_blas_threads_of_each_point(tmp_path: Path) -> None:
    _setup(tmp_path, {"training.seed": {"values": [1, 2]}})
    done = run_cli(
        ["sweep", "--config", "sweep.yaml", "--threads-per-point", "2", "--jobs", "1"],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    for path in _runs(tmp_path):
        env = json.loads((path / "environment.json").read_text())
        blas = [p for p in env["threadpools"] if p["user_api"] == "blas"]
        assert blas and all(p["num_threads"] == 2 for p in blas)


# ---------------------------------------------------------------- failures


def test_a_failing_point_does_not_stop_the_others(tmp_path: Path) -> None:
    (tmp_path / "flaky.py").write_text(_FLAKY)
    _setup(
        tmp_path,
        {
            "model.params.fail": {"values": [False, True]},
            "training.seed": {"values": [1, 2]},
        },
        base=_flaky_base(),
    )
    done = run_cli(["sweep", "--config", "sweep.yaml", "--jobs", "2"], tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr.split("FAILED")[0]
    failed_lines = [line for line in done.stderr.splitlines() if " FAILED " in line]
    assert len(failed_lines) == 2
    assert all("(exit code 1)" in line for line in failed_lines)
    assert "RuntimeError: boom: fail=True fails on purpose" in done.stderr  # log tail
    report = _show(tmp_path)
    statuses = {
        (p["parameters"]["model.params.fail"], p["parameters"]["training.seed"]): p[
            "status"
        ]
        for p in report["points"]
    }
    assert statuses == {
        (False, 1): "completed",
        (False, 2): "completed",
        (True, 1): "failed",
        (True, 2): "failed",
    }
    for point in report["points"]:
        if point["status"] == "failed":
            assert "boom" in point["error"] and point["final_metrics"] == {}
    shown = run_cli(["sweep", "show", "sw"], tmp_path)
    assert shown.returncode == 1  # a failed point
    assert "failed: RuntimeError: boom: fail=True fails on purpose" in shown.stdout


@pytest.mark.parametrize(
    ("flags", "runs"), [(["--fail-fast"], 1), (["--max-failures", "2"], 3)]
)
def test_fail_fast_and_max_failures_stop_the_sweep(
    tmp_path: Path, flags: list[str], runs: int
) -> None:
    (tmp_path / "flaky.py").write_text(_FLAKY)
    # one at a time, in grid order: fail, ok, fail, ok, ...
    _setup(
        tmp_path,
        {
            "training.seed": {"values": [1, 2, 3]},
            "model.params.fail": {"values": [True, False]},
        },
        base=_flaky_base(),
    )
    done = run_cli(["sweep", "--config", "sweep.yaml", "--jobs", "1", *flags], tmp_path)
    assert done.returncode == 1
    assert "stopping: " in done.stderr
    assert len(_runs(tmp_path)) == runs
    statuses = [p["status"] for p in _show(tmp_path)["points"]]
    assert statuses.count("not started") == 6 - runs


def test_failed_points_are_retried_on_resume_unless_skip_failed(tmp_path: Path) -> None:
    (tmp_path / "flaky.py").write_text(_FLAKY)
    (tmp_path / "broken").write_text("")  # the point fails while this file exists
    _setup(
        tmp_path,
        {"model.params.fail": {"values": [False, "broken"]}},
        base=_flaky_base(),
    )
    assert run_cli(["sweep", "--config", "sweep.yaml"], tmp_path).returncode == 1
    (tmp_path / "broken").unlink()
    skipped = run_cli(["sweep", "--resume", "sw", "--skip-failed"], tmp_path)
    assert skipped.returncode == 1
    assert "1 failed point(s) left (--skip-failed)" in skipped.stderr
    assert len(_runs(tmp_path)) == 2
    retried = run_cli(["sweep", "--resume", "sw"], tmp_path)
    assert retried.returncode == 0, retried.stderr
    assert "1 point(s) already completed, skipped" in retried.stderr
    runs = _runs(tmp_path)
    assert len(runs) == 3  # the failed run stays; the point ran again from the start
    assert [p["status"] for p in _show(tmp_path)["points"]] == ["completed"] * 2


# ---------------------------------------------------------------- kills and resume


def test_kill_9_of_the_driver_then_resume_completes_every_point_exactly_once(
    tmp_path: Path,
) -> None:
    _setup(
        tmp_path,
        {"training.seed": {"values": [1, 2, 3, 4, 5, 6]}},
        base=small_classification(epochs=40),
    )
    driver = start_cli(["sweep", "--config", "sweep.yaml", "--jobs", "2"], tmp_path)
    try:
        _wait_for(lambda: _completed(tmp_path) >= 2, "two completed points")
    finally:
        driver.kill()
        driver.communicate()
    before = {
        path: summary
        for path, summary in _runs(tmp_path).items()
        if summary["status"] == "completed"
    }
    assert 2 <= len(before) < 6
    # the points it left running stop on their own (they get SIGTERM) and checkpoint
    _wait_for(
        lambda: all(s["status"] != "running" for s in _runs(tmp_path).values()),
        "the orphaned points to stop",
    )
    interrupted = [
        p for p, s in _runs(tmp_path).items() if s["status"] == "interrupted"
    ]
    done = run_cli(["sweep", "--resume", "sw"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "took over sweep 'sw' from a driver that is gone" in done.stderr
    assert f"{len(before)} point(s) already completed, skipped" in done.stderr
    runs = _runs(tmp_path)
    points = [s["point"] for s in runs.values() if s["status"] == "completed"]
    assert len(points) == len(set(points)) == 6  # every point, exactly once
    assert len(runs) == 6  # interrupted points were resumed in their own run
    for path, summary in before.items():  # completed points were not run again
        assert runs[path]["finished_at"] == summary["finished_at"]
        assert "resumed_at" not in runs[path]
    for path in interrupted:
        assert runs[path]["resumed_at"]
        assert runs[path]["epochs_completed"] == 40


def test_kill_9_of_one_point_marks_it_failed_and_resume_runs_it_again(
    tmp_path: Path,
) -> None:
    _setup(
        tmp_path,
        {"training.seed": {"values": [1, 2]}},
        base=small_classification(epochs=60),
    )
    driver = start_cli(["sweep", "--config", "sweep.yaml", "--jobs", "1"], tmp_path)
    victim: dict[str, Any] = {}

    def first_point_training() -> bool:
        for path, summary in (
            _runs(tmp_path).items() if _sweep_dir(tmp_path).is_dir() else []
        ):
            # a published checkpoint, not only an epoch done: checkpoints are
            # written in the background, and a busy machine can lag behind
            published = [
                c
                for c in (path / "checkpoints").glob("epoch-*")
                if (c / "trainer_state.json").is_file()
            ]
            if summary["status"] == "running" and published:
                victim.update(summary)
                return True
        return False

    try:
        _wait_for(first_point_training, "a point to train")
        os.kill(victim["pid"], signal.SIGKILL)
        out, err = driver.communicate()
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 1
    assert (
        f"FAILED {victim['point'][:12]}" in err
        and "(exit code -9, killed by SIGKILL)" in err
    )
    report = _show(tmp_path)
    status = {p["hash"]: p["status"] for p in report["points"]}
    # the driver saw its process die: failed, not lost (no driver saw that end)
    assert status[victim["point"]] == "failed"
    assert sorted(status.values()) == ["completed", "failed"]
    done = run_cli(["sweep", "--resume", str(_sweep_dir(tmp_path))], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "(1 resumed from checkpoints)" in done.stderr
    runs = _runs(tmp_path)
    assert len(runs) == 2
    completed = [s["point"] for s in runs.values() if s["status"] == "completed"]
    assert sorted(completed) == sorted(status)


def test_a_second_driver_is_refused_and_ctrl_c_interrupts_the_points(
    tmp_path: Path,
) -> None:
    _setup(
        tmp_path,
        {"training.seed": {"values": [1, 2, 3]}},
        base=small_classification(epochs=100),
    )
    driver = start_cli(["sweep", "--config", "sweep.yaml", "--jobs", "2"], tmp_path)
    try:
        _wait_for(
            lambda: (
                _sweep_dir(tmp_path).is_dir()
                and any(s["epochs_completed"] >= 1 for s in _runs(tmp_path).values())
            ),
            "the first driver to start its points",
        )
        second = run_cli(["sweep", "--resume", "sw"], tmp_path)
        driver.send_signal(signal.SIGINT)
        out, err = driver.communicate()
    finally:
        if driver.poll() is None:
            driver.kill()
    assert second.returncode == 1
    assert "Traceback" not in second.stderr
    expected = "error: Sweep 'sw' is being driven by another process"
    assert f"{expected} (pid {driver.pid} on " in second.stderr
    again = run_cli(["sweep", "--config", "sweep.yaml"], tmp_path)
    assert again.returncode == 1 and "already exists" in again.stderr
    assert driver.returncode == 130, err
    assert "interrupted: stopping the running points" in err
    states = [s["status"] for s in _runs(tmp_path).values()]
    assert "running" not in states and "interrupted" in states
    done = run_cli(["sweep", "--resume", "sw"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "resumed from checkpoints" in done.stderr
    assert [p["status"] for p in _show(tmp_path)["points"]] == ["completed"] * 3
    assert len(_runs(tmp_path)) == 3


# ---------------------------------------------------------------- a changed sweep file


def test_a_changed_sweep_file_is_refused_with_its_differences(tmp_path: Path) -> None:
    _setup(tmp_path, {"training.learning_rate": {"values": [0.01, 0.02]}})
    assert run_cli(["sweep", "--config", "sweep.yaml"], tmp_path).returncode == 0
    record = (_sweep_dir(tmp_path) / "sweep.json").read_bytes()
    for parameters, base, expected in [
        (
            {"training.learning_rate": {"values": [0.01, 0.03]}},
            None,
            "parameters.training.learning_rate.values: [0.01, 0.02] -> [0.01, 0.03] "
            "(removes [0.02])",
        ),
        (
            {
                "training.learning_rate": {"values": [0.01, 0.02]},
                "training.seed": {"values": [1]},
            },
            None,
            "parameters.training.seed: added",
        ),
        (
            {"training.learning_rate": {"values": [0.01, 0.02]}},
            small_classification(epochs=5),
            "base config training.epochs: 4 -> 5",
        ),
    ]:
        _setup(tmp_path, parameters, base=base)
        done = run_cli(["sweep", "--resume", "sw"], tmp_path)
        assert done.returncode == 1
        assert (
            "error: cannot resume sweep 'sw': the sweep changed since it started:"
            in (done.stderr)
        )
        assert expected in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        assert (_sweep_dir(tmp_path) / "sweep.json").read_bytes() == record
        assert len(_runs(tmp_path)) == 2


def test_added_values_add_points_and_run_only_those(tmp_path: Path) -> None:
    _setup(tmp_path, {"training.learning_rate": {"values": [0.01, 0.02]}})
    assert run_cli(["sweep", "--config", "sweep.yaml"], tmp_path).returncode == 0
    before = {p: s["finished_at"] for p, s in _runs(tmp_path).items()}
    _setup(tmp_path, {"training.learning_rate": {"values": [0.005, 0.01, 0.02]}})
    done = run_cli(["sweep", "--resume", "sw"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 point(s) added" in done.stderr
    runs = _runs(tmp_path)
    assert len(runs) == 3
    assert all(runs[p]["finished_at"] == t for p, t in before.items())
    report = _show(tmp_path)
    assert [p["parameters"]["training.learning_rate"] for p in report["points"]] == [
        0.005,
        0.01,
        0.02,
    ]


def test_raising_num_samples_adds_random_points(tmp_path: Path) -> None:
    sweep = {
        "training.learning_rate": {"min": 0.001, "max": 0.1, "log": True},
    }
    _setup(tmp_path, sweep, method="random", num_samples=2, seed=3)
    assert run_cli(["sweep", "--config", "sweep.yaml"], tmp_path).returncode == 0
    first = [p["hash"] for p in _show(tmp_path)["points"]]
    _setup(tmp_path, sweep, method="random", num_samples=3, seed=3)
    done = run_cli(["sweep", "--resume", "sw"], tmp_path)
    assert done.returncode == 0, done.stderr
    report = _show(tmp_path)
    assert [p["hash"] for p in report["points"]][:2] == first
    assert len(_runs(tmp_path)) == 3
    _setup(tmp_path, sweep, method="random", num_samples=2, seed=3)
    lowered = run_cli(["sweep", "--resume", "sw"], tmp_path)
    assert lowered.returncode == 1 and "num_samples: 3 -> 2" in lowered.stderr


# ---------------------------------------------------------------- show


_CONTRACT = {"name", "directory", "metric", "goal", "points", "best", "cv"}
_POINT = {"hash", "run_id", "status", "parameters", "final_metrics", "error"}


def test_show_json_is_the_contract_and_best_is_the_best_final_metric(
    tmp_path: Path,
) -> None:
    _setup(
        tmp_path,
        {"training.learning_rate": {"values": [0.001, 0.01, 0.05]}},
        goal="max",
    )
    done = run_cli(["sweep", "--config", "sweep.yaml", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == _CONTRACT
    assert report["name"] == "sw" and report["metric"] == "val_accuracy"
    assert report["goal"] == "max" and report["cv"] == []  # not a cross-validation
    assert report["directory"] == str(_sweep_dir(tmp_path))
    runs = {path.name: summary for path, summary in _runs(tmp_path).items()}
    for point in report["points"]:
        assert set(point) == _POINT
        summary = runs[point["run_id"]]
        assert point["hash"] == summary["point"]
        assert point["final_metrics"] == summary["final_metrics"]
        assert point["error"] is None and point["status"] == "completed"
    best = max(runs.values(), key=lambda s: s["final_metrics"]["val_accuracy"])
    assert report["best"] == {
        "hash": best["point"],
        "run_id": best["run_id"],
        "value": best["final_metrics"]["val_accuracy"],
    }
    assert _show(tmp_path) == report  # `mlx sweep` ends with what show prints
    table = run_cli(["sweep", "show", "sw"], tmp_path)
    assert table.returncode == 0
    marked = [line for line in table.stdout.splitlines() if line.startswith("*")]
    assert len(marked) == 1 and best["point"][:12] in marked[0]
    # --sort orders by a final metric, best first (val_loss: lowest first)
    ordered = run_cli(["sweep", "show", "sw", "--sort", "val_loss"], tmp_path).stdout
    rows = [line for line in ordered.splitlines() if " completed " in line]
    losses = sorted((s["final_metrics"]["val_loss"], s["point"]) for s in runs.values())
    assert [next(h for _, h in losses if h[:12] in r) for r in rows] == [
        h for _, h in losses
    ]


def test_show_finds_a_sweep_by_directory_and_by_name_elsewhere(tmp_path: Path) -> None:
    base = small_classification()
    base["output"] = {"directory": "results/deep"}
    _setup(tmp_path, {"training.seed": {"values": [1, 2]}}, base=base)
    assert run_cli(["sweep", "--config", "sweep.yaml"], tmp_path).returncode == 0
    where = tmp_path / "results" / "deep" / "sw"
    by_dir = run_cli(["sweep", "show", str(where), "--json"], tmp_path)
    by_name = run_cli(["sweep", "show", "sw", "--json"], tmp_path)
    assert by_dir.returncode == by_name.returncode == 0, by_name.stderr
    assert json.loads(by_dir.stdout) == json.loads(by_name.stdout)
    # the point runs resolve by ID from anywhere (the run index)
    run_id = json.loads(by_name.stdout)["points"][0]["run_id"]
    assert run_cli(["runs", "show", run_id], tmp_path).returncode == 0


# ---------------------------------------------------------------- progress


def test_a_terminal_gets_a_bar_with_done_failed_and_running_counts(
    tmp_path: Path,
) -> None:
    import pty
    import subprocess
    import sys

    from helpers import cli_env

    _setup(tmp_path, {"training.seed": {"values": [1, 2]}})
    master, slave = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mlx", "sweep", "--config", "sweep.yaml"],
            cwd=tmp_path,
            env=cli_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        )
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal closed
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)
    shown = b"".join(chunks).decode()
    assert done.returncode == 0
    assert "\r[" in shown and "] 2/2 done, 0 failed, 0 running" in shown
    assert "0/2 done, 0 failed, " in shown
    # the table still goes to stdout, undisturbed
    assert "2 points: 2 completed" in done.stdout and "\r" not in done.stdout


def test_a_numpy_sweep_never_imports_torch(tmp_path: Path) -> None:
    import subprocess
    import sys

    from helpers import REPO_ROOT, cli_env
    from test_no_torch import HOOK

    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    root = tmp_path / "root"
    root.mkdir()
    _setup(root, {"training.seed": {"values": [1, 2]}})
    log = tmp_path / "torch.log"
    env = cli_env(
        root, PYTHONPATH=f"{hook}{os.pathsep}{REPO_ROOT}", MLX_TORCH_LOG=str(log)
    )
    for args in (
        ["sweep", "--config", "sweep.yaml", "--dry-run"],
        ["sweep", "--config", "sweep.yaml"],
        ["sweep", "show", "sw"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "mlx", *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
    assert not log.exists()


_BROKEN = (
    _FLAKY
    + """

class Broken(Flaky):
    def __init__(self, **params):
        raise RuntimeError("cannot build on purpose")
"""
)


def test_a_point_that_fails_before_its_run_exists_is_failed_with_its_error(
    tmp_path: Path,
) -> None:
    # the class is built when the point runs: the point fails before it has a run
    # directory, and its log tells why
    (tmp_path / "flaky.py").write_text(_BROKEN)
    _setup(
        tmp_path,
        {"model.params.class_path": {"values": ["flaky:Flaky", "flaky:Broken"]}},
        base=_flaky_base(),
    )
    done = run_cli(["sweep", "--config", "sweep.yaml"], tmp_path)
    assert done.returncode == 1
    message = (
        f"Cannot build flaky:Broken from model.params: {tmp_path / 'flaky.py'}:23: "
        "RuntimeError: cannot build on purpose."
    )
    assert f"error: {message}" in done.stderr
    report = _show(tmp_path)
    by_class = {p["parameters"]["model.params.class_path"]: p for p in report["points"]}
    assert by_class["flaky:Flaky"]["status"] == "completed"
    broken = by_class["flaky:Broken"]
    assert broken["status"] == "failed" and broken["run_id"] is None
    assert broken["error"] == message
    assert len(_runs(tmp_path)) == 1


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "run"])
def test_points_that_cannot_run_here_stop_the_sweep_before_anything_is_written(
    tmp_path: Path, dry_run: bool
) -> None:
    (tmp_path / "flaky.py").write_text(_FLAKY)
    classes = ["flaky:Flaky", "flaky:Missing", "nowhere:Model"]
    path = _setup(
        tmp_path, {"model.params.class_path": {"values": classes}}, base=_flaky_base()
    )
    extra = ["--dry-run"] if dry_run else []
    # a dry run's verdict "valid, but cannot run here" is exit status 3
    status = 3 if dry_run else 1
    done = run_cli(["sweep", "--config", "sweep.yaml", *extra], tmp_path)
    assert done.returncode == status and "Traceback" not in done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines()[:3] == [
        "error: 2 point(s) of sweep 'sw' cannot run here:",
        "error:   point 1 (model.params.class_path=flaky:Missing): "
        "model.params.class_path: Module 'flaky' has no attribute 'Missing'.",
        "error:   point 2 (model.params.class_path=nowhere:Model): "
        "model.params.class_path: Cannot import module 'nowhere' of class_path "
        "'nowhere:Model': there is no module 'nowhere' (searched the repository "
        "root and sys.path). (class_path is 'package.module:ClassName', relative to "
        "the repository root)",
    ]
    assert not (tmp_path / "outputs").exists()
    # one reason shared by every point is said once
    write_config(
        path,
        {
            "name": "sw",
            "base": "base.yaml",
            "parameters": {"training.seed": {"values": [1, 2]}},
            "metric": "val_accuracy",
        },
    )
    base = _flaky_base()
    base["model"]["params"]["class_path"] = "flaky:Gone"
    write_config(tmp_path / "base.yaml", base)
    done = run_cli(["sweep", "--config", "sweep.yaml", *extra], tmp_path)
    assert done.returncode == status
    assert done.stderr == (
        "error: no point of sweep 'sw' can run here: model.params.class_path: "
        "Module 'flaky' has no attribute 'Gone'.\n"
    )
    assert not (tmp_path / "outputs").exists()


def test_fail_fast_interrupts_the_running_points_which_resume_later(
    tmp_path: Path,
) -> None:
    (tmp_path / "flaky.py").write_text(_FLAKY)
    (tmp_path / "broken").write_text("")
    # two at once: the failing point fails at its first step while the other trains
    _setup(
        tmp_path,
        {"model.params.fail": {"values": [False, "broken"]}},
        base=_flaky_base(epochs=150),
    )
    done = run_cli(
        ["sweep", "--config", "sweep.yaml", "--jobs", "2", "--fail-fast"], tmp_path
    )
    assert done.returncode == 1
    assert len([line for line in done.stderr.splitlines() if " FAILED " in line]) == 1
    statuses = sorted(p["status"] for p in _show(tmp_path)["points"])
    assert statuses == ["failed", "interrupted"]
    assert "interrupted " in done.stderr and "--resume continues it" in done.stderr
    (tmp_path / "broken").unlink()
    resumed = run_cli(["sweep", "--resume", "sw"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "(1 resumed from checkpoints)" in resumed.stderr
    assert [p["status"] for p in _show(tmp_path)["points"]] == ["completed"] * 2


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_a_point_whose_driver_died_before_it_was_armed_never_runs(
    tmp_path: Path,
) -> None:
    # the driver killed between the fork and prctl: the child finds another parent
    # and exits before exec, so a resumed sweep never meets a second copy of a point
    from mlx.sweeps.executors import _parent_death_signal

    marker = tmp_path / "ran"
    argv = [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]
    orphan = subprocess.run(argv, preexec_fn=_parent_death_signal(os.getpid() + 10**7))
    assert orphan.returncode == 128 + signal.SIGTERM
    assert not marker.exists()
    armed = subprocess.run(argv, preexec_fn=_parent_death_signal(os.getpid()))
    assert armed.returncode == 0 and marker.exists()
