"""Splits the user controls: split_seed, stratify, group_column, id_column and
source_row in predictions.csv, folds/fold; runs recorded by the older rule."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from helpers import run_cli, write_config

from mlx.datasets.splits import assign_splits, split_indices

REPO = Path(__file__).resolve().parent.parent
model_selection = pytest.importorskip("sklearn.model_selection")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _classes_csv(root: Path, counts: dict[str, int], *extra: str) -> Path:
    """Two features and a label per row, ``counts[label]`` rows of each label in a
    shuffled order; ``extra`` columns (``id``, ``group``) go first."""
    rng = np.random.default_rng(11)
    labels = rng.permutation([k for k, n in counts.items() for _ in range(n)])
    rows = []
    for i, label in enumerate(labels):
        cells: list[Any] = []
        if "id" in extra:
            cells.append(f"row,{i:03d}")  # a comma: the id must come back quoted
        if "group" in extra:
            cells.append(f"g{i // 4}")
        rows.append([*cells, *rng.normal(size=2).round(6).tolist(), label])
    return _write_csv(root / "d.csv", [*extra, "a", "b", "label"], rows)


def _config(model: str = "mlp", classes: int = 3, **params: Any) -> dict[str, Any]:
    if model == "mlp":
        spec: dict[str, Any] = {
            "name": "mlp",
            "params": {"layer_sizes": [2, 4, classes], "output_activation": "softmax"},
        }
    else:
        spec = {"name": model}
    return {
        "name": "splits",
        "dataset": {"name": "custom", "path": "d.csv", "params": params},
        "model": spec,
        "training": {"epochs": 1, "batch_size": 64, "seed": 3},
        "output": {"directory": "outputs"},
    }


def _train(root: Path, config: dict[str, Any], *extra: str) -> Path:
    write_config(root / "exp.yaml", config)
    before = set((root / "outputs").glob("*")) if (root / "outputs").exists() else set()
    done = run_cli(["run-experiment", "--config", "exp.yaml", *extra], root)
    assert done.returncode == 0, done.stderr
    (run,) = set((root / "outputs").glob("*")) - before
    return run


def _predictions(root: Path, run: Path, split: str) -> list[dict[str, str]]:
    done = run_cli(["eval", run.name, "--split", split, "--save-predictions"], root)
    assert done.returncode == 0, done.stderr
    with open(run / "predictions.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _source(root: Path) -> list[dict[str, str]]:
    with open(root / "d.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _rows_of(root: Path, run: Path) -> dict[str, np.ndarray]:
    return {
        split: np.array([int(r["source_row"]) for r in _predictions(root, run, split)])
        for split in ("train", "val", "test")
    }


# -- split_seed ---------------------------------------------------------------------


def test_sweep_seeds_share_one_validation_set(root: Path) -> None:
    """examples/sweep.yaml varies training.seed: its points are compared on one
    validation set (and one test set)."""
    sweep = yaml.safe_load((REPO / "examples" / "sweep.yaml").read_text())
    seeds = sweep["parameters"]["training.seed"]["values"]
    shutil.copy(REPO / "examples" / "quickstart.yaml", root / "q.yaml")
    records = []
    for seed in seeds:
        done = run_cli(
            [
                "run-experiment",
                "--config",
                "q.yaml",
                "--set",
                f"training.seed={seed}",
                "--set",
                "training.epochs=1",
                "--set",
                "output.directory=outputs",
            ],
            root,
        )
        assert done.returncode == 0, done.stderr
    for run in sorted((root / "outputs").iterdir()):
        records.append(json.loads((run / "data.json").read_text()))
    assert len(records) == len(seeds) == 2
    assert records[0]["val"] == records[1]["val"]
    assert records[0]["test"] == records[1]["test"]
    split = records[0]["preprocessing"]["split"]
    assert split["rule"] == 2 and split["split_seed"] == 0 and split["stratify"]
    assert (split["group_column"], split["folds"], split["fold"]) == (None, None, None)
    # another split_seed is another validation set
    done = run_cli(
        [
            "run-experiment",
            "--config",
            "q.yaml",
            "--set",
            "training.epochs=1",
            "--set",
            "output.directory=other",
            "--set",
            "dataset.params.split_seed=1",
        ],
        root,
    )
    assert done.returncode == 0, done.stderr
    (other,) = (root / "other").iterdir()
    assert json.loads((other / "data.json").read_text())["val"] != records[0]["val"]


def test_a_run_recorded_by_the_old_rule_still_evaluates_and_resumes(root: Path) -> None:
    """A run made before split_seed (data.json without a rule: training.seed cut
    the split, unstratified) is rebuilt by that rule on eval and resume."""
    from mlx import datasets
    from mlx.config import parse_config
    from mlx.runs.records import data_record

    _classes_csv(root, {"x": 40, "y": 25, "z": 15})
    config = _config()
    run = _train(root, config)
    assert "split_seed" not in (run / "config.yaml").read_text()  # resolved as before
    parsed = parse_config(config, root=root)
    old = data_record(datasets.load(parsed.dataset, 3, split_rule=1))
    assert "rule" not in old["preprocessing"]["split"]
    assert old["preprocessing"]["split"]["seed"] == 3
    new = json.loads((run / "data.json").read_text())
    assert old["val"] != new["val"]  # the check below is not vacuous
    (run / "data.json").write_text(json.dumps(old))

    rows = _rows_of(root, run)
    expected = split_indices(80, 0.1, 0.1, 3)  # training.seed, as recorded
    for split, indices in zip(("train", "val", "test"), expected):
        np.testing.assert_array_equal(rows[split], indices)
    done = run_cli(
        ["run-experiment", "--resume", run.name, "--set", "training.epochs=2"], root
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "data.json").read_text()) == old


def test_an_unknown_split_rule_is_refused_naming_the_field(root: Path) -> None:
    _classes_csv(root, {"x": 40, "y": 40})
    run = _train(root, _config())
    record = json.loads((run / "data.json").read_text())
    record["preprocessing"]["split"]["rule"] = 99
    (run / "data.json").write_text(json.dumps(record))
    done = run_cli(["eval", run.name], root)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "data.json is corrupt: 'preprocessing.split.rule'" in done.stderr
    assert "got 99" in done.stderr


# -- stratify -----------------------------------------------------------------------


def _within_one(counts: dict[str, np.ndarray], labels: np.ndarray) -> None:
    n = len(labels)
    for rows in counts.values():
        share = len(rows) / n
        for label in np.unique(labels):
            exact = (labels == label).sum() * share
            assert abs((labels[rows] == label).sum() - exact) < 1, (label, exact)


def test_stratified_splits_keep_each_class_share(root: Path) -> None:
    counts = {"x": 70, "y": 23, "z": 7}
    _classes_csv(root, counts)
    run = _train(root, _config(validation_split=0.2, test_split=0.2))
    rows = _rows_of(root, run)
    labels = np.array([r["label"] for r in _source(root)])
    assert [len(rows[s]) for s in ("train", "val", "test")] == [60, 20, 20]
    _within_one(rows, labels)
    assert set(labels[rows["train"]]) == set(counts)
    # scikit-learn's stratified split of the same sizes: the same shares, to a sample
    _, test = model_selection.train_test_split(
        np.arange(100), test_size=20, stratify=labels, random_state=0
    )
    for label in counts:
        ours, theirs = (
            (labels[rows["test"]] == label).sum(),
            (labels[test] == label).sum(),
        )
        assert abs(int(ours) - int(theirs)) <= 1


def test_unstratified_on_request(root: Path) -> None:
    _classes_csv(root, {"x": 50, "y": 50})
    run = _train(root, _config(stratify=False))
    split = json.loads((run / "data.json").read_text())["preprocessing"]["split"]
    assert split["stratify"] is False
    np.testing.assert_array_equal(
        _rows_of(root, run)["val"], split_indices(100, 0.1, 0.1, 0)[1]
    )


def test_a_class_too_small_to_stratify_by_default_warns(root: Path) -> None:
    # 8 classes of one row each cannot all train when 2 rows are the test split
    _classes_csv(root, {k: 1 for k in "abcdefgh"})
    config = _config(classes=8, test_split=0.3, validation_split=0.0)
    write_config(root / "exp.yaml", config)
    done = run_cli(["run-experiment", "--config", "exp.yaml"], root)
    assert done.returncode == 0, done.stderr
    assert "the splits are not stratified by class: cannot stratify" in done.stderr
    # asked for explicitly, it is an error, and nothing is written
    shutil.rmtree(root / "outputs")
    write_config(root / "exp.yaml", _config(classes=8, test_split=0.3, stratify=True))
    done = run_cli(["run-experiment", "--config", "exp.yaml"], root)
    assert (
        done.returncode == 1 and "error: cannot stratify the 8 samples" in done.stderr
    )
    assert not any((root / "outputs").glob("*/data.json"))


# -- group_column -------------------------------------------------------------------


def test_groups_stay_whole_and_are_no_feature(root: Path) -> None:
    _classes_csv(root, {"x": 60, "y": 60}, "group")
    run = _train(root, _config(group_column="group", validation_split=0.2))
    record = json.loads((run / "data.json").read_text())
    assert record["n_features"] == 2
    assert record["preprocessing"]["split"]["stratify"] is False
    assert record["preprocessing"]["split"]["group_column"] == "group"
    groups = np.array([r["group"] for r in _source(root)])
    rows = _rows_of(root, run)
    seen = [set(groups[rows[s]]) for s in ("train", "val", "test")]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    # the fractions count groups (30 of them), as GroupShuffleSplit does
    assert [len(s) for s in seen] == [21, 6, 3]


# -- id_column and source_row -------------------------------------------------------


def test_predictions_join_back_by_source_row(root: Path) -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 2))
    y = X @ [1.5, -2.0] + 0.25
    rows = [[*map(repr, x.tolist()), repr(float(t))] for x, t in zip(X, y)]
    _write_csv(root / "d.csv", ["a", "b", "target"], rows)
    run = _train(root, _config("linear_regression"))
    source = _source(root)
    joined = 0
    for split in ("train", "val", "test"):
        predictions = _predictions(root, run, split)
        assert list(predictions[0])[:3] == ["index", "source_row", "y_true"]
        for p in predictions:
            assert float(p["y_true"]) == float(source[int(p["source_row"])]["target"])
            joined += 1
    assert joined == 50


def test_predictions_join_back_by_id(root: Path) -> None:
    _classes_csv(root, {"x": 30, "y": 30}, "id")
    run = _train(root, _config(id_column="id"))
    record = json.loads((run / "data.json").read_text())
    assert record["n_features"] == 2
    classes = record["preprocessing"]["labels"]["classes"]
    by_id = {r["id"]: r for r in _source(root)}
    seen = set()
    for split in ("train", "val", "test"):
        for p in _predictions(root, run, split):
            assert classes[int(p["y_true"])] == by_id[p["id"]]["label"]
            seen.add(p["id"])
    assert seen == set(by_id)


# -- folds --------------------------------------------------------------------------


@pytest.mark.parametrize("grouped", [False, True], ids=["stratified", "grouped"])
def test_every_row_is_validated_once_over_the_folds(root: Path, grouped: bool) -> None:
    _classes_csv(root, {"x": 41, "y": 26, "z": 13}, *(["group"] if grouped else []))
    extra = {"group_column": "group"} if grouped else {}
    labels = np.array([r["label"] for r in _source(root)])
    groups = np.array([r.get("group", "") for r in _source(root)])
    validated, tests = [], []
    for fold in range(3):
        # validation_split is not used with folds
        run = _train(root, _config(folds=3, fold=fold, validation_split=0.4, **extra))
        split = json.loads((run / "data.json").read_text())["preprocessing"]["split"]
        assert (split["folds"], split["fold"]) == (3, fold)
        rows = _rows_of(root, run)
        validated.append(rows["val"])
        tests.append(rows["test"])
        if grouped:
            assert not set(groups[rows["val"]]) & set(groups[rows["train"]])
    for t in tests[1:]:
        np.testing.assert_array_equal(t, tests[0])  # one test split for all folds
    every = np.sort(np.concatenate(validated))
    np.testing.assert_array_equal(every, np.setdiff1d(np.arange(80), tests[0]))
    rest = np.setdiff1d(np.arange(80), tests[0])
    if grouped:
        owner = {g: i for i, rows in enumerate(validated) for g in groups[rows]}
        assert all(
            owner[g] == i for i, rows in enumerate(validated) for g in groups[rows]
        )
        reference = model_selection.GroupKFold(n_splits=3).split(
            rest, groups=groups[rest]
        )
        assert len(list(reference)) == 3  # scikit-learn agrees the groups allow 3 folds
        return
    # stratified: each fold within one sample of its exact share, like StratifiedKFold
    theirs = model_selection.StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    for rows, (_, reference) in zip(validated, theirs.split(rest, labels[rest])):
        for label in ("x", "y", "z"):
            exact = (labels[rest] == label).sum() * len(rows) / len(rest)
            assert abs((labels[rows] == label).sum() - exact) < 1
            assert (
                abs(
                    int((labels[rows] == label).sum())
                    - int((labels[rest[reference]] == label).sum())
                )
                <= 1
            )


def test_fold_assignment_is_independent_of_training_seed() -> None:
    labels = np.repeat([0, 1, 2], [20, 12, 8])
    a = assign_splits(40, 0.0, 0.25, 4, labels=labels, folds=4, fold=1)
    b = assign_splits(40, 0.0, 0.25, 4, labels=labels, folds=4, fold=1)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# -- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"folds": 3}, "missing required field 'dataset.params.fold'"),
        ({"fold": 1}, "dataset.params.fold needs dataset.params.folds"),
        (
            {"folds": 3, "fold": 3},
            "dataset.params.fold must be < dataset.params.folds (3), got 3",
        ),
        (
            {"folds": 1, "fold": 0},
            "dataset.params.folds must be an integer >= 2, got 1",
        ),
        (
            {"task": "regression", "stratify": True},
            "dataset.params.stratify: true needs classification labels",
        ),
        (
            {"group_column": "g", "stratify": True},
            "dataset.params.stratify: true cannot be combined with "
            "dataset.params.group_column",
        ),
        (
            {"id_column": "label", "target": "label"},
            "dataset.params.id_column must name another column than target",
        ),
        (
            {"split_seed": -1},
            "dataset.params.split_seed must be an integer >= 0, got -1",
        ),
        ({"stratify": "yes"}, "dataset.params.stratify must be"),
    ],
    ids=[
        "folds-without-fold",
        "fold-without-folds",
        "fold-too-big",
        "one-fold",
        "stratify-regression",
        "stratify-groups",
        "id-is-target",
        "negative-seed",
        "stratify-text",
    ],
)
def test_config_errors_are_located(root: Path, params: dict, message: str) -> None:
    _classes_csv(root, {"x": 10, "y": 10})
    write_config(root / "exp.yaml", _config(**params))
    done = run_cli(["run-experiment", "--config", "exp.yaml"], root)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "exp.yaml:" in done.stderr and message in done.stderr, done.stderr
    assert not (root / "outputs").exists()


@pytest.mark.parametrize(
    ("params", "model", "message"),
    [
        (
            {"group_column": "nope"},
            "mlp",
            "d.csv: group_column column 'nope' not found",
        ),
        ({"id_column": "id"}, "mlp", "d.csv: id_column 'id' holds 'row,001' twice"),
        (
            {"stratify": True},
            "linear_regression",
            "dataset.params.stratify: true needs classification labels; the custom "
            "data is regression",
        ),
    ],
    ids=["missing-column", "duplicate-id", "labels-are-regression"],
)
def test_data_errors_name_the_field(
    root: Path, params: dict, model: str, message: str | None
) -> None:
    path = _classes_csv(root, {"x": 10, "y": 10}, "id")
    if "id_column" in params:  # the second data row repeats the first id
        text = path.read_text().replace('"row,000"', '"row,001"', 1)
        path.write_text(text)
    else:
        path = _classes_csv(root, {"x": 10, "y": 10})
    if model == "linear_regression":
        _write_csv(path, ["a", "b", "label"], [[i, i * 2, i * 0.5] for i in range(20)])
    write_config(root / "exp.yaml", _config(model, **params))
    done = run_cli(["run-experiment", "--config", "exp.yaml"], root)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert message in done.stderr, done.stderr
    assert not any((root / "outputs").glob("*/data.json"))


def test_id_column_needs_named_columns(root: Path) -> None:
    np.savez(root / "d.npz", X=np.zeros((10, 2)), y=np.arange(10) % 2)
    config = _config(id_column="id")
    config["dataset"]["path"] = "d.npz"
    write_config(root / "exp.yaml", config)
    done = run_cli(["run-experiment", "--config", "exp.yaml"], root)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "dataset.params.id_column names a column, but" in done.stderr
    assert "it needs CSV or Parquet data" in done.stderr


def test_parquet_ids_and_groups_join_back(root: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rng = np.random.default_rng(4)
    table = pa.table(
        {
            "key": [f"k{i}" for i in range(40)],
            "site": [i % 8 for i in range(40)],
            "a": rng.normal(size=40),
            "b": rng.normal(size=40),
            "label": ["x", "y", "z", "x"] * 10,
        }
    )
    pq.write_table(table, root / "d.parquet")
    config = _config(id_column="key", group_column="site")
    config["dataset"]["path"] = "d.parquet"
    run = _train(root, config)
    classes = json.loads((run / "data.json").read_text())["preprocessing"]["labels"]
    by_key = {k: i for i, k in enumerate(table.column("key").to_pylist())}
    sites: dict[str, set] = {}
    for split in ("train", "val", "test"):
        for p in _predictions(root, run, split):
            row = by_key[p["id"]]
            assert int(p["source_row"]) == row
            assert classes["classes"][int(p["y_true"])] == table["label"][row].as_py()
            sites.setdefault(split, set()).add(table["site"][row].as_py())
    assert not (sites["train"] & sites["val"] or sites["train"] & sites["test"])
