"""A sweep that varies ``dataset.params.fold`` is a cross-validation: ``mlx sweep
show`` (table and ``--json``) and ``mlx report`` group the points that differ only
in the fold, with the mean and standard deviation (ddof 0) of the metric over the
completed folds, and choose the best group by its mean among the groups whose every
fold completed."""

from __future__ import annotations

import fcntl
import hashlib
import html
import json
import math
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from helpers import run_cli, small_classification, write_config

from mlx.runs.lock import LOCK_NAME
from mlx.runs.store import SUMMARY_FILE
from mlx.sweeps.cv import FOLD, best_group, cross_validation, group_order

_ENTRY = {"parameters", "folds", "mean", "std", "points"}
LR = "training.learning_rate"


# ---------------------------------------------------------------- point records


def _point(params: dict[str, Any], value: float | None, status: str = "completed"):
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
    final = {} if value is None else {"val_accuracy": value, "val_loss": 1 - value}
    return {
        "hash": digest,
        "run_id": f"run-{digest[:6]}",
        "status": status,
        "parameters": params,
        "final_metrics": final,
        "error": None,
    }


_VALUES = {0.1: [0.71, 0.8, 0.77], 0.01: [0.9, 0.83, 0.88], 0.001: [0.6, 0.7, 0.65]}


def _grid() -> list[dict[str, Any]]:
    """lr x fold in grid order (the fold varies fastest)."""
    return [
        _point({LR: lr, FOLD: fold}, value)
        for lr, values in _VALUES.items()
        for fold, value in enumerate(values)
    ]


def test_groups_are_the_points_differing_only_in_the_fold_with_numpy_mean_and_std():
    points = _grid()
    groups = cross_validation(points, "val_accuracy")
    assert [g["parameters"] for g in groups] == [{LR: lr} for lr in _VALUES]
    for group, (lr, values) in zip(groups, _VALUES.items()):
        assert set(group) == _ENTRY
        assert group["folds"] == 3
        assert group["mean"] == float(np.mean(values))
        assert group["std"] == float(np.std(values))  # ddof 0, as cross_val_score
        assert group["points"] == [
            p["hash"] for p in points if p["parameters"][LR] == lr
        ]
    assert best_group(groups, "max") == 1 and best_group(groups, "min") == 2
    assert group_order(groups, "max") == [1, 0, 2]


def test_the_points_of_a_group_come_by_fold_whatever_the_sweep_order() -> None:
    points = _grid()[::-1]  # the fold varies slowest, highest first
    groups = cross_validation(points, "val_accuracy")
    assert [g["parameters"][LR] for g in groups] == [0.001, 0.01, 0.1]
    by_hash = {p["hash"]: p for p in points}
    for group in groups:
        folds = [by_hash[h]["parameters"][FOLD] for h in group["points"]]
        assert folds == [0, 1, 2]


@pytest.mark.parametrize(
    "status, value",
    [
        ("failed", 0.99),
        ("running", None),
        ("not started", None),
        ("lost", None),
        ("completed", math.nan),  # a diverged fold
        ("completed", None),  # the metric was never recorded
    ],
)
def test_a_fold_not_done_is_left_out_of_the_mean_and_the_group_cannot_be_best(
    status: str, value: float | None
) -> None:
    points = _grid()
    # lr 0.01 has the best mean; its second fold is not done
    points[4] = _point(points[4]["parameters"], value, status)
    groups = cross_validation(points, "val_accuracy")
    done = [0.9, 0.88]
    assert groups[1]["folds"] == 2 and len(groups[1]["points"]) == 3
    assert groups[1]["mean"] == float(np.mean(done))
    assert groups[1]["std"] == float(np.std(done))
    assert groups[1]["mean"] > groups[0]["mean"]
    assert best_group(groups, "max") == 0  # the best complete group
    assert group_order(groups, "max") == [0, 2, 1]


def test_a_group_with_no_fold_done_has_null_mean_and_std() -> None:
    points = [_point({LR: 0.1, FOLD: f}, None, "failed") for f in range(2)]
    (group,) = cross_validation(points, "val_accuracy")
    assert group["folds"] == 0 and group["mean"] is None and group["std"] is None
    assert best_group([group], "max") is None


def test_one_fold_has_std_zero_and_a_sweep_without_folds_has_no_groups() -> None:
    (group,) = cross_validation([_point({FOLD: 0}, 0.5)], "val_accuracy")
    assert group == {
        "parameters": {},
        "folds": 1,
        "mean": 0.5,
        "std": 0.0,
        "points": [group["points"][0]],
    }
    assert cross_validation([_point({LR: 0.1}, 0.5)], "val_accuracy") == []


def test_random_points_group_only_when_all_their_other_values_are_equal() -> None:
    points = [
        _point({LR: 0.1, "training.batch_size": 16, FOLD: 0}, 0.5),
        _point({LR: 0.1, "training.batch_size": 32, FOLD: 1}, 0.6),
        _point({LR: 0.1, "training.batch_size": 16, FOLD: 2}, 0.7),
        _point({LR: 1, "training.batch_size": 32, FOLD: 0}, 0.4),
        # 1.0 and 1 are one value, as in a point's hash
        _point({LR: 1.0, "training.batch_size": 32, FOLD: 1}, 0.2),
    ]
    groups = cross_validation(points, "val_accuracy")
    assert [len(g["points"]) for g in groups] == [2, 1, 2]
    assert groups[0]["mean"] == float(np.mean([0.5, 0.7]))
    assert groups[2]["std"] == float(np.std([0.4, 0.2]))


# ---------------------------------------------------------------- a sweep by hand


def _fabricate(root: Path, points: list[dict[str, Any]]) -> Path:
    """A sweep directory holding ``points`` (records as :func:`_point` makes them):
    its ``sweep.json`` and, for each point that has a status of a run, a run
    directory whose summary says it."""
    (root / "pyproject.toml").write_text("")
    directory = root / "outputs" / "cv"
    directory.mkdir(parents=True)
    record = {
        "format": 1,
        "name": "cv",
        "metric": "val_accuracy",
        "goal": "max",
        "points": [
            {"hash": p["hash"], "index": i, "parameters": p["parameters"]}
            for i, p in enumerate(points)
        ],
        "duplicates": [],
    }
    (directory / "sweep.json").write_text(json.dumps(record))
    for point in points:
        if point["status"] == "not started":
            continue
        run = directory / point["run_id"]
        run.mkdir()
        summary = {
            "status": point["status"],
            "run_id": point["run_id"],
            "sweep": "cv",
            "point": point["hash"],
            "updated_at": "2024-01-01T00:00:00+00:00",
            "final_metrics": point["final_metrics"],
        }
        if point["status"] == "failed":
            summary["error"] = "it broke"
        (run / SUMMARY_FILE).write_text(json.dumps(summary))
    return directory


def _show(root: Path, *extra: str, code: int = 0) -> str:
    done = run_cli(["sweep", "show", "cv", *extra], root)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def _expected(points: list[dict[str, Any]], lr: float) -> dict[str, Any]:
    group = [p for p in points if p["parameters"][LR] == lr]
    values = [
        p["final_metrics"]["val_accuracy"] for p in group if p["status"] == "completed"
    ]
    return {
        "parameters": {LR: lr},
        "folds": len(values),
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "points": [p["hash"] for p in group],
    }


def test_show_json_has_a_cv_list_and_best_is_the_best_group_mean(
    tmp_path: Path,
) -> None:
    points = _grid()
    _fabricate(tmp_path, points)
    report = json.loads(_show(tmp_path, "--json"))
    assert report["cv"] == [_expected(points, lr) for lr in _VALUES]
    assert report["best"] == {
        **_expected(points, 0.01),
        "value": report["cv"][1]["mean"],
    }
    assert [p["hash"] for p in report["points"]] == [p["hash"] for p in points]


def test_best_by_group_mean_is_not_the_group_of_the_best_point(tmp_path: Path) -> None:
    points = [_point({LR: 0.1, FOLD: f}, v) for f, v in enumerate([0.99, 0.5, 0.5])] + [
        _point({LR: 0.01, FOLD: f}, v) for f, v in enumerate([0.8, 0.8, 0.8])
    ]
    _fabricate(tmp_path, points)
    report = json.loads(_show(tmp_path, "--json"))
    assert report["best"]["parameters"] == {LR: 0.01}
    assert report["best"]["value"] == float(np.mean([0.8, 0.8, 0.8]))
    assert report["best"]["std"] == float(np.std([0.8, 0.8, 0.8]))


def _cv_rows(table: str) -> list[str]:
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("cross-valid"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        rows.append(line)
    return rows


def test_the_table_shows_each_group_and_marks_the_best_group(tmp_path: Path) -> None:
    points = _grid()
    _fabricate(tmp_path, points)
    out = _show(tmp_path)
    assert f"cross-validation over {FOLD}: val_accuracy" in out
    assert "ddof 0" in out
    rows = _cv_rows(out)
    best = _expected(points, 0.01)
    assert rows[1].startswith("*") and "3/3" in rows[1]
    assert f"{best['mean']:.6g}" in rows[1] and f"{best['std']:.6g}" in rows[1]
    assert sum(r.startswith("*") for r in rows) == 1
    # in the points' table, the best group's three points carry the mark
    marked = [line for line in out.splitlines() if line.startswith("* ")]
    assert len(marked) == 4  # three points and the group
    for digest in best["points"]:
        assert any(digest[:12] in line for line in marked)
    assert out.rstrip().splitlines()[-1] == (
        f"9 points: 9 completed; best (max mean val_accuracy over 3 folds): "
        f"{LR}=0.01 = {best['mean']:.6g} (std {best['std']:.6g})"
    )


def test_sort_orders_groups_by_their_mean_and_points_by_group_then_fold(
    tmp_path: Path,
) -> None:
    points = _grid()
    _fabricate(tmp_path, points)
    # val_loss = 1 - val_accuracy: lowest first is lr 0.01, 0.1, 0.001
    out = _show(tmp_path, "--sort", "val_loss")
    rows = _cv_rows(out)
    assert [r.split()[-4] for r in rows] == ["0.01", "0.1", "0.001"]
    order = [
        p["hash"][:12]
        for lr in (0.01, 0.1, 0.001)
        for p in points
        if p["parameters"][LR] == lr
    ]
    shown = re.findall(r"^\*?\s+([0-9a-f]{12})  completed", out, re.MULTILINE)
    assert shown == order
    # --sort by the sweep's metric puts the best group first
    assert _cv_rows(_show(tmp_path, "--sort", "val_accuracy"))[0].startswith("*")


def test_a_failed_fold_is_counted_out_and_its_group_is_not_best(tmp_path: Path) -> None:
    points = _grid()
    points[4] = _point(points[4]["parameters"], None, "failed")
    points[7] = _point(points[7]["parameters"], None, "not started")
    _fabricate(tmp_path, points)
    report = json.loads(_show(tmp_path, "--json", code=1))  # a point failed
    assert report["cv"][1] == _expected(points, 0.01)
    assert report["cv"][1]["folds"] == 2
    assert report["cv"][2]["folds"] == 2
    assert report["best"]["parameters"] == {LR: 0.1}
    out = _show(tmp_path, "--sort", "val_accuracy", code=1)
    rows = _cv_rows(out)
    # the complete group first, then the others by the mean of their done folds
    assert rows[0].startswith("*") and "3/3" in rows[0]
    assert "2/3" in rows[1] and "0.01" in rows[1]
    assert "2 of 3 groups have folds not completed" in out


@pytest.fixture
def held_run(tmp_path: Path) -> Iterator[list[dict[str, Any]]]:
    """A grid whose one fold's run is still running (its lock held)."""
    points = _grid()
    points[0] = _point(points[0]["parameters"], None, "running")
    directory = _fabricate(tmp_path, points)
    with open(directory / points[0]["run_id"] / LOCK_NAME, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield points


def test_a_running_fold_is_not_done_yet(tmp_path: Path, held_run: list) -> None:
    report = json.loads(_show(tmp_path, "--json"))
    assert report["points"][0]["status"] == "running"
    assert report["cv"][0] == _expected(held_run, 0.1)
    assert report["cv"][0]["folds"] == 2


def test_no_complete_group_means_no_best(tmp_path: Path) -> None:
    points = [
        _point({LR: 0.1, FOLD: 0}, 0.5),
        _point({LR: 0.1, FOLD: 1}, None, "failed"),
    ]
    _fabricate(tmp_path, points)
    report = json.loads(_show(tmp_path, "--json", code=1))
    assert report["best"] is None and report["cv"][0]["folds"] == 1
    assert "best" not in _show(tmp_path, code=1).splitlines()[-1]


def test_the_dry_run_json_has_the_same_keys_and_no_groups_without_folds(
    tmp_path: Path,
) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    write_config(tmp_path / "base.yaml", small_classification())
    write_config(
        tmp_path / "sweep.yaml",
        {
            "name": "cv",
            "base": "base.yaml",
            "method": "grid",
            "parameters": {LR: {"values": [0.1, 0.01]}},
        },
    )
    dry = run_cli(["sweep", "--config", "sweep.yaml", "--dry-run", "--json"], tmp_path)
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert set(report) == {
        "name",
        "directory",
        "metric",
        "goal",
        "points",
        "best",
        "cv",
    }
    assert report["cv"] == [] and report["best"] is None
    assert not (tmp_path / "outputs").exists()


# ---------------------------------------------------------------- real folds


def _cv_base() -> dict[str, Any]:
    base = small_classification()
    # the base is a whole config: it names a fold, which the sweep varies
    base["dataset"]["params"].update(folds=3, fold=0)
    return base


@pytest.mark.slow
def test_a_sweep_over_the_folds_is_a_cross_validation(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    write_config(tmp_path / "base.yaml", _cv_base())
    write_config(
        tmp_path / "sweep.yaml",
        {
            "name": "cv",
            "base": "base.yaml",
            "method": "grid",
            "parameters": {LR: {"values": [0.1, 0.01]}, FOLD: {"values": [0, 1, 2]}},
            "metric": "val_accuracy",
        },
    )
    dry = run_cli(["sweep", "--config", "sweep.yaml", "--dry-run", "--json"], tmp_path)
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)["cv"]
    assert [(g["parameters"], g["folds"], g["mean"]) for g in planned] == [
        ({LR: 0.1}, 0, None),
        ({LR: 0.01}, 0, None),
    ]
    done = run_cli(["sweep", "--config", "sweep.yaml", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [g["points"] for g in report["cv"]] == [g["points"] for g in planned]
    finals = {p["hash"]: p["final_metrics"]["val_accuracy"] for p in report["points"]}
    assert [g["parameters"] for g in report["cv"]] == [{LR: 0.1}, {LR: 0.01}]
    for group in report["cv"]:
        values = [finals[h] for h in group["points"]]
        assert group["folds"] == 3
        assert group["mean"] == float(np.mean(values))
        assert group["std"] == float(np.std(values))
    best = max(report["cv"], key=lambda g: g["mean"])
    assert report["best"] == {**best, "value": best["mean"]}
    assert json.loads(_show(tmp_path, "--json")) == report
    _check_html_report(tmp_path, report)


def _check_html_report(root: Path, report: dict[str, Any]) -> None:
    """``mlx report`` of the sweep shows the groups as ``sweep show`` does."""
    pytest.importorskip("matplotlib")
    done = run_cli(["report", "cv", "-o", "r.html"], root)
    assert done.returncode == 0, done.stderr
    page = (root / "r.html").read_text(encoding="utf-8")
    section = re.search(r'<section class="cross-validation".*?</section>', page)
    assert section is not None
    body = re.findall(r"<tbody>(.*?)</tbody>", section.group(0))[0]
    rows = body.split("</tr>")[:-1]
    assert len(rows) == len(report["cv"])
    run_ids = {p["hash"]: p["run_id"] for p in report["points"]}
    for row, group in zip(rows, report["cv"]):
        values = re.findall(r'data-value="([^"]+)"', row)
        assert [float(v) for v in values[-2:]] == [group["mean"], group["std"]]
        assert f"<td>{group['folds']}/{len(group['points'])}</td>" in row
        assert all(run_ids[h] in html.unescape(row) for h in group["points"])
        is_best = group["points"] == report["best"]["points"]
        assert row.startswith("<tr><td>*</td>") == is_best


@pytest.mark.slow
def test_report_of_a_sweep_shows_its_groups(tmp_path: Path) -> None:
    """Real runs, whose sweep record names their seed the fold (what a sweep
    over the folds records), reported as a cross-validation."""
    (tmp_path / "pyproject.toml").write_text("")
    write_config(tmp_path / "base.yaml", small_classification(epochs=2))
    write_config(
        tmp_path / "sweep.yaml",
        {
            "name": "cv",
            "base": "base.yaml",
            "method": "grid",
            "parameters": {
                LR: {"values": [0.1, 0.01]},
                "training.seed": {"values": [0, 1]},
            },
            "metric": "val_accuracy",
        },
    )
    done = run_cli(["sweep", "--config", "sweep.yaml"], tmp_path)
    assert done.returncode == 0, done.stderr
    record_path = tmp_path / "outputs" / "cv" / "sweep.json"
    record = json.loads(record_path.read_text())
    for point in record["points"]:
        point["parameters"][FOLD] = point["parameters"].pop("training.seed")
    record_path.write_text(json.dumps(record))
    report = json.loads(_show(tmp_path, "--json"))
    assert [len(g["points"]) for g in report["cv"]] == [2, 2]
    _check_html_report(tmp_path, report)
