"""Data the harness reads, through the real CLI: the task follows the model, labels
never overflow or merge, the fingerprint covers every byte of a split, and every
unreadable file is one clean ``error:`` naming it (and a dry run says so first)."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from helpers import cli_env, run_cli, write_config
from hypothesis import given, settings
from hypothesis import strategies as st

from mlx.datasets.fingerprint import sampled_fingerprint, split_fingerprint
from mlx.datasets.splits import split_indices
from mlx.datasets.tabular_labels import encode_labels
from mlx.errors import DatasetError, DataWarning

TIMEOUT = 120


def _config(path: str, layer_sizes: list | None, activation: str | None = None, **data):
    if layer_sizes is None:
        model: dict[str, Any] = {"name": "linear_regression"}
    else:
        params: dict[str, Any] = {"layer_sizes": layer_sizes}
        if activation:
            params["output_activation"] = activation
        model = {"name": "mlp", "params": params}
    dataset: dict[str, Any] = {"name": "custom", "path": path}
    if data:
        dataset["params"] = data
    return {
        "name": "data",
        "dataset": dataset,
        "model": model,
        "training": {
            "epochs": 2,
            "batch_size": 16,
            "learning_rate": 0.01,
            "optimizer": "adam",
            "seed": 4,
        },
        "output": {"directory": "outputs"},
    }


def _run(root: Path, config: dict, *extra: str, env: dict | None = None):
    write_config(root / "exp.yaml", config)
    return run_cli(
        ["run-experiment", "--config", "exp.yaml", *extra],
        root,
        timeout=TIMEOUT,
        env=env,
    )


def _only_run(root: Path) -> Path:
    (run,) = [p for p in (root / "outputs").iterdir() if p.is_dir()]
    return run


def _clean_error(done, *needles: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors, done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def _nothing_written(root: Path) -> None:
    outputs = root / "outputs"
    assert not outputs.exists() or not any(outputs.iterdir())


def _csv(path: Path, X: np.ndarray, labels: list, header: str = "a,b,price") -> Path:
    lines = [header] + [
        ",".join(repr(float(v)) for v in row) + f",{label}"
        for row, label in zip(X, labels)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _latest_eval(run: Path) -> dict:
    (record,) = sorted((run / "evals").glob("*.json"))[-1:]
    return json.loads(record.read_text(encoding="utf-8"))


# -- the task follows the model -----------------------------------------------------


@pytest.fixture
def prices(tmp_path: Path) -> Path:
    """200 rows whose integer target (10..50, five values) looks like classes."""
    rng = np.random.default_rng(1)
    X = rng.random((200, 2))
    labels = [int(10 * (1 + round(4 * a))) for a, _ in X]
    _csv(tmp_path / "prices.csv", X, labels)
    return tmp_path


@pytest.mark.parametrize(
    "layer_sizes", [[2, 8, 1], None], ids=["mlp-no-activation", "linear_regression"]
)
def test_integer_target_for_a_regression_model_is_regressed(
    prices: Path, layer_sizes: list | None
) -> None:
    done = _run(prices, _config("prices.csv", layer_sizes))
    assert done.returncode == 0, done.stderr
    warning = [line for line in done.stderr.splitlines() if "look like" in line]
    assert len(warning) == 1, done.stderr
    assert str(prices / "prices.csv") in warning[0]
    assert "dataset.params.task: regression" in warning[0]
    run = _only_run(prices)
    record = json.loads((run / "data.json").read_text())
    assert record["task"] == "regression" and record["n_classes"] is None
    assert record["preprocessing"]["task"] == {"value": "regression", "set_by": "model"}
    ev = run_cli(["eval", run.name, "--save-predictions"], prices, timeout=TIMEOUT)
    assert ev.returncode == 0, ev.stderr
    assert "warning" not in ev.stderr  # said once, when the run trained
    metrics = _latest_eval(run)["metrics"]
    assert {"mse", "r2"} <= set(metrics) and "accuracy" not in metrics
    # the targets scored are the prices themselves, not class indices 0..4
    table = np.genfromtxt(run / "predictions.csv", delimiter=",", names=True)
    assert set(np.unique(table["y_true"])) <= {10.0, 20.0, 30.0, 40.0, 50.0}
    assert table["y_true"].min() >= 10


def test_task_set_in_the_config_silences_the_warning(prices: Path) -> None:
    done = _run(prices, _config("prices.csv", [2, 8, 1], task="regression"))
    assert done.returncode == 0, done.stderr
    assert "look like" not in done.stderr
    record = json.loads((_only_run(prices) / "data.json").read_text())
    assert record["preprocessing"]["task"]["set_by"] == "dataset.params.task"


@pytest.mark.parametrize(
    ("n_rows", "n_distinct"),
    [(8, 8), (60, 30), (3, 2)],
    ids=["tiny-8-rows", "30-distinct", "tiny-3-rows"],
)
def test_integers_that_look_regressed_become_classes_for_a_classifier(
    tmp_path: Path, n_rows: int, n_distinct: int
) -> None:
    rng = np.random.default_rng(2)
    X = rng.random((n_rows, 2))
    labels = [i % n_distinct for i in range(n_rows)]
    _csv(tmp_path / "d.csv", X, labels)
    config = _config(
        "d.csv",
        [2, 4, n_distinct],
        "softmax",
        validation_split=0.0,
        test_split=0.34 if n_rows < 10 else 0.2,
    )
    done = _run(tmp_path, config)
    assert done.returncode == 0, done.stderr
    assert "dataset.params.task: classification" in done.stderr
    run = _only_run(tmp_path)
    record = json.loads((run / "data.json").read_text())
    assert record["task"] == "classification"
    assert record["n_classes"] == n_distinct
    assert record["preprocessing"]["labels"]["classes"] == list(range(n_distinct))
    ev = run_cli(["eval", run.name], tmp_path, timeout=TIMEOUT)
    assert ev.returncode == 0, ev.stderr
    assert "accuracy" in _latest_eval(run)["metrics"]


@pytest.mark.parametrize(
    ("labels", "layer_sizes", "activation", "needles"),
    [
        (
            [0.5 * i for i in range(40)],
            [2, 4, 2],
            "softmax",
            ["d.csv:3: column 'price'", "0.5 is not an integer", "a classifier"],
        ),
        (
            [0, 1] * 19 + [0, 2.25],
            [2, 4, 1],
            "sigmoid",
            ["d.csv:41: column 'price'", "2.25 is not an integer"],
        ),
        (
            ["cat", "dog"] * 20,
            [2, 4, 1],
            None,
            ["d.csv:2: column 'price'", "'cat' is not a number", "regression"],
        ),
        (
            ["cat", "dog"] * 20,
            None,
            None,
            ["d.csv:2: column 'price'", "'cat' is not a number"],
        ),
        # more digits than a float64 holds: the float is whole, the label is not
        (
            [1, 2, "1.0000000000000000001"] * 13,
            [2, 4, 3],
            "softmax",
            ["d.csv:4: column 'price'", "1.0000000000000000001 is not an integer"],
        ),
        (
            [0, 1] * 19 + [1, "0.99999999999999999999"],
            [2, 4, 1],
            "sigmoid",
            ["d.csv:41: column 'price'", "0.99999999999999999999 is not an"],
        ),
        (
            [0, 2, "1e-400"] * 13,
            [2, 4, 3],
            "softmax",
            ["d.csv:4: column 'price'", "1e-400 is not an integer"],
        ),
    ],
    ids=[
        "floats-to-softmax",
        "one-float-to-sigmoid",
        "text-to-mlp",
        "text-to-linear",
        "beyond-float64-digits",
        "just-below-one",
        "underflow-to-zero",
    ],
)
def test_labels_the_model_cannot_take_are_a_located_error(
    tmp_path: Path, labels: list, layer_sizes, activation, needles
) -> None:
    X = np.random.default_rng(3).random((len(labels), 2))
    _csv(tmp_path / "d.csv", X, labels)
    done = _run(tmp_path, _config("d.csv", layer_sizes, activation))
    _clean_error(done, *needles)
    assert "hint: " in done.stderr and "dataset.params.task" in done.stderr
    _nothing_written(tmp_path)


@pytest.mark.parametrize(
    ("task", "layer_sizes", "activation"),
    [("classification", [2, 4, 1], None), ("regression", [2, 4, 1], "sigmoid")],
    ids=["classification-vs-regressor", "regression-vs-classifier"],
)
def test_a_task_set_against_the_model_is_refused(
    prices: Path, task: str, layer_sizes: list, activation: str | None
) -> None:
    done = _run(prices, _config("prices.csv", layer_sizes, activation, task=task))
    _clean_error(done, "prices.csv", f"dataset.params.task is {task!r}", "agree")
    _nothing_written(prices)


def test_a_synthetic_dataset_of_the_other_task_is_refused(tmp_path: Path) -> None:
    config = _config("unused", [4, 1], "sigmoid")
    config["dataset"] = {
        "name": "synthetic_regression",
        "params": {"n_samples": 100, "n_features": 4},
    }
    done = _run(tmp_path, config)
    _clean_error(done, "'synthetic_regression' is a regression dataset", "classif")
    _nothing_written(tmp_path)


# -- labels never overflow or merge -------------------------------------------------


_BIG = 10**19


@pytest.mark.parametrize(
    "labels",
    [
        [_BIG, _BIG + 1, _BIG + 2],
        [-_BIG, 5, _BIG],
        [-_BIG - 1, -_BIG, 0, 2**63, 2**64 + 7],
        [2**53, 2**53 + 1, 2**53 + 2],
        [10**400, 1, 2],
    ],
    ids=["beyond-int64", "huge-and-small", "around-int64-ends", "2**53", "400-digits"],
)
def test_distinct_integer_labels_in_a_csv_stay_distinct_classes(
    tmp_path: Path, labels: list
) -> None:
    k = len(labels)
    column = [labels[i % k] for i in range(12 * k)]
    X = np.random.default_rng(4).random((len(column), 2))
    _csv(tmp_path / "d.csv", X, column)
    done = _run(tmp_path, _config("d.csv", [2, 4, k], "softmax", task="classification"))
    assert done.returncode == 0, done.stderr
    record = json.loads((_only_run(tmp_path) / "data.json").read_text())
    # json reads integers exactly: the classes are the labels, sorted, each once
    assert record["preprocessing"]["labels"]["classes"] == sorted(set(labels))
    assert record["n_classes"] == k


def test_whole_numbers_written_with_a_point_or_exponent_are_their_integers(
    tmp_path: Path,
) -> None:
    labels = ["1", "2.0", "3e0", "4E0", "5.000", "1.0", "60e-1"]
    column = [labels[i % len(labels)] for i in range(42)]
    X = np.random.default_rng(4).random((len(column), 2))
    _csv(tmp_path / "d.csv", X, column)
    done = _run(tmp_path, _config("d.csv", [2, 4, 6], "softmax"))
    assert done.returncode == 0, done.stderr
    record = json.loads((_only_run(tmp_path) / "data.json").read_text())
    assert record["preprocessing"]["labels"]["classes"] == [1, 2, 3, 4, 5, 6]


def test_uint64_labels_in_npy_files_stay_distinct(tmp_path: Path) -> None:
    values = np.array([2**64 - 1, 2**64 - 2, 2**63, 3], dtype=np.uint64)
    y = np.tile(values, 10)
    np.save(tmp_path / "X.npy", np.random.default_rng(5).random((len(y), 2)))
    np.save(tmp_path / "y.npy", y)
    done = _run(tmp_path, _config("X.npy", [2, 4, 4], "softmax"))
    assert done.returncode == 0, done.stderr
    record = json.loads((_only_run(tmp_path) / "data.json").read_text())
    assert record["preprocessing"]["labels"]["classes"] == sorted(
        int(v) for v in values
    )


@pytest.mark.skipif(
    np.finfo(np.longdouble).nmant <= np.finfo(np.float64).nmant,
    reason="long double is float64 here",
)
def test_long_double_labels_are_read_in_their_own_precision(tmp_path: Path) -> None:
    one = np.longdouble(1)
    big = np.longdouble(2**62)
    distinct = np.array([big, big + 1, big + 2, 3], dtype=np.longdouble)
    np.save(tmp_path / "X.npy", np.random.default_rng(5).random((40, 2)))
    np.save(tmp_path / "y.npy", np.tile(distinct, 10))
    done = _run(tmp_path, _config("X.npy", [2, 4, 4], "softmax"))
    assert done.returncode == 0, done.stderr
    record = json.loads((_only_run(tmp_path) / "data.json").read_text())
    assert record["preprocessing"]["labels"]["classes"] == [
        3,
        2**62,
        2**62 + 1,
        2**62 + 2,
    ]
    # 1 + 2**-63 is no integer, though as a float64 it is 1
    fraction = one + np.finfo(np.longdouble).eps
    np.save(tmp_path / "y.npy", np.tile(np.array([one, fraction, 2 * one]), 14)[:40])
    done = _run(tmp_path, _config("X.npy", [2, 4, 3], "softmax"))
    _clean_error(done, f"y.npy[1]: label {str(fraction)} is not an integer")


def _where(i: int) -> str:
    return f"labels[{i}]"


@pytest.mark.parametrize(
    ("labels", "classes"),
    [
        (np.array([0.0, 1.0, 2.0, 1.0]), (0, 1, 2)),
        (np.array([1e19, np.nextafter(1e19, 2e19), -1e19, 1e19]), None),
        (np.array(["b", "a", "c", "a"]), ("a", "b", "c")),
        (np.array(["1", "1.0", "2", "2"]), (1, 2)),  # the same number twice
        (np.array([True, False, True, True]), (0, 1)),
        (np.array(["1e19", "10000000000000000001", "5", "5"]), (5, _BIG, _BIG + 1)),
        (np.array(["1e400", "1e400", "2", "2"]), (2, 10**400)),
        (np.array([-(2**63), 2**63 - 1, 0, 0], dtype=np.int64), None),
    ],
    ids=[
        "integral-floats",
        "adjacent-floats",
        "strings",
        "one-number-two-spellings",
        "bools",
        "float-and-int-spellings",
        "exponent-beyond-float64",
        "int64-extremes",
    ],
)
def test_classes_are_the_distinct_values(labels: np.ndarray, classes) -> None:
    y, task, n_classes, names = encode_labels(labels, "classification", _where)
    exact = [_exact(v) for v in labels.tolist()]
    if classes is None:  # oracle: Python's exact arithmetic on the values
        classes = tuple(sorted(set(exact)))
    assert task == "classification"
    assert names == classes and n_classes == len(classes)
    # y indexes the names: mapping back gives each label's own value
    assert [names[i] for i in y] == exact


def _exact(value: Any) -> Any:
    """A label's exact value: text that is no number stays text."""
    try:
        number = Fraction(value)
    except ValueError:
        return value
    assert number.denominator == 1
    return int(number)


@pytest.mark.parametrize(
    ("labels", "needle"),
    [
        (np.array([1, 1, 1]), "every label is 1."),
        (np.array(["cat", "cat"]), "every label is 'cat'."),
        (np.array([2.0, 2.0]), "every label is 2."),
        (np.array([_BIG, _BIG], dtype=np.uint64), f"every label is {_BIG}."),
    ],
    ids=["int", "string", "float", "uint64"],
)
def test_a_single_class_is_named_plainly(labels: np.ndarray, needle: str) -> None:
    with pytest.raises(DatasetError) as caught:
        encode_labels(labels, "classification", _where, source="data.csv")
    message = str(caught.value)
    assert message.startswith("data.csv: ") and needle in message
    assert "np." not in message


def test_a_single_class_csv_names_the_file_and_label(tmp_path: Path) -> None:
    X = np.random.default_rng(6).random((20, 2))
    _csv(tmp_path / "one.csv", X, [7] * 20)
    done = _run(tmp_path, _config("one.csv", [2, 4, 1], "sigmoid"))
    _clean_error(done, f"{tmp_path / 'one.csv'}: ", "every label is 7.")
    assert "np.int64" not in done.stderr


def test_the_task_decision_warns_once_in_process() -> None:
    with pytest.warns(DataWarning, match="data.csv: the labels look like classif"):
        y, task, _, _ = encode_labels(
            np.array(["10", "20", "10", "20"]),
            None,
            _where,
            source="data.csv",
            model_task="regression",
        )
    assert task == "regression" and y.tolist() == [10.0, 20.0, 10.0, 20.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encode_labels(np.array([1, 2, 1, 2]), None, _where, model_task="classification")


# -- the fingerprint covers every byte ----------------------------------------------


def test_fingerprint_is_sha256_of_every_byte(rng: np.random.Generator) -> None:
    X = rng.random((300, 7)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    header = str((X.shape, X.dtype.str, y.shape, y.dtype.str)).encode()
    expected = hashlib.sha256(header + X.tobytes() + y.tobytes()).hexdigest()
    assert split_fingerprint(X, y) == expected
    # a strided view hashes like its contiguous copy
    wide = rng.random((300, 14))
    assert split_fingerprint(wide[:, ::2], y) == split_fingerprint(
        np.ascontiguousarray(wide[:, ::2]), y
    )
    for flat in rng.choice(X.size, 5, replace=False):
        changed = X.copy()
        changed.flat[flat] = np.nextafter(changed.flat[flat], np.float32(2))
        assert split_fingerprint(changed, y) != expected


@pytest.fixture
def trained(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """A linear regression trained on a 1000-row CSV: (root, run, features)."""
    rng = np.random.default_rng(7)
    X = rng.random((1000, 2))
    y = X @ np.array([2.0, -1.0]) + 0.5
    _csv(tmp_path / "d.csv", X, [repr(float(v)) for v in y])
    done = _run(tmp_path, _config("d.csv", None))
    assert done.returncode == 0, done.stderr
    return tmp_path, _only_run(tmp_path), X


def _unsampled_train_row(n_rows: int, seed: int = 0) -> int:
    """A CSV data row that lands in the training split but among none of the 256
    rows the version-1 fingerprint sampled (``seed``: the split seed; regression
    data is split by a plain permutation)."""
    train, _, _ = split_indices(n_rows, 0.1, 0.1, seed)
    sampled = set(np.linspace(0, len(train) - 1, num=256).astype(np.int64).tolist())
    position = next(i for i in range(len(train)) if i not in sampled)
    return int(train[position])


def _rewrite_row(csv: Path, row: int, X: np.ndarray, new_a: float) -> None:
    lines = csv.read_text().splitlines()
    cells = lines[row + 1].split(",")
    assert float(cells[0]) == X[row, 0]
    cells[0] = repr(float(new_a))
    lines[row + 1] = ",".join(cells)
    csv.write_text("\n".join(lines) + "\n")


def test_eval_refuses_a_change_in_a_row_the_old_fingerprint_skipped(
    trained: tuple[Path, Path, np.ndarray],
) -> None:
    root, run, X = trained
    row = _unsampled_train_row(len(X))
    ok = run_cli(["eval", run.name, "--split", "train"], root, timeout=TIMEOUT)
    assert ok.returncode == 0, ok.stderr
    _rewrite_row(root / "d.csv", row, X, X[row, 0] + 1e-9)
    done = run_cli(["eval", run.name, "--split", "train"], root, timeout=TIMEOUT)
    _clean_error(
        done,
        f"the train split rebuilt for run {run.name} differs from the one it was "
        "trained with: its contents changed",
    )
    # the other splits did not change: they still evaluate
    assert run_cli(["eval", run.name], root, timeout=TIMEOUT).returncode == 0


def test_resume_refuses_a_change_in_one_row(
    trained: tuple[Path, Path, np.ndarray],
) -> None:
    root, run, X = trained
    _rewrite_row(root / "d.csv", _unsampled_train_row(len(X)), X, 0.25)
    done = run_cli(
        ["run-experiment", "--resume", run.name, "--set", "training.epochs=3"],
        root,
        timeout=TIMEOUT,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "differs from the one it was trained with" in done.stderr


@pytest.mark.parametrize(
    ("before", "after", "needle"),
    [
        ([0, 1, 2], [0, 4, 9], "its classes were [0, 1, 2], now [0, 4, 9]"),
        (["ant", "bee"], ["cat", "dog"], "were ['ant', 'bee'], now ['cat', 'dog']"),
        ([1, 2], [10**19, 10**19 + 1], "now [10000000000000000000, 1000000000000"),
    ],
    ids=["integers", "text", "beyond-int64"],
)
def test_relabelled_classes_are_a_change_though_their_indices_are_not(
    tmp_path: Path, before: list, after: list, needle: str
) -> None:
    # each class keeps its place in the sorted order, so the encoded targets (and
    # the split hashes) stay the same; the labels are what changed, in every row
    X = np.random.default_rng(6).random((12 * len(before), 2))
    rows = [i % len(before) for i in range(len(X))]
    _csv(tmp_path / "d.csv", X, [before[i] for i in rows])
    config = _config("d.csv", [2, 4, len(before)], "softmax")
    assert _run(tmp_path, config).returncode == 0
    run = _only_run(tmp_path)
    _csv(tmp_path / "d.csv", X, [after[i] for i in rows])
    for args in (
        ["eval", run.name],
        ["run-experiment", "--resume", run.name, "--set", "training.epochs=3"],
    ):
        done = run_cli(args, tmp_path, timeout=TIMEOUT)
        _clean_error(done, f"the data rebuilt for run {run.name} differs", needle)
    assert not (run / "evals").exists()


def _as_version_1(run: Path, root: Path, config: dict) -> None:
    """Rewrite data.json the way mlx wrote it before fingerprint version 2: the
    sampled fingerprint, the task inferred from the labels alone, no version."""
    from mlx import datasets
    from mlx.config import parse_config
    from mlx.runs.records import data_record

    parsed = parse_config(config, root=root)
    splits = datasets.load(parsed.dataset, parsed.training.seed)  # no model task
    record = data_record(splits, version=1)
    del record["fingerprint_version"]
    (run / "data.json").write_text(json.dumps(record))


def test_runs_recorded_with_the_sampled_fingerprint_still_evaluate(
    prices: Path,
) -> None:
    config = _config("prices.csv", [2, 8, 1])
    done = _run(prices, config)
    assert done.returncode == 0, done.stderr
    run = _only_run(prices)
    _as_version_1(run, prices, config)
    ev = run_cli(["eval", run.name], prices, timeout=TIMEOUT)
    assert ev.returncode == 0, ev.stderr
    # and a change is still caught, by the old method
    lines = (prices / "prices.csv").read_text().splitlines()
    shifted = [lines[0]] + [
        line[:-3] + ",20" if line.endswith(",10") else line for line in lines[1:]
    ]
    assert shifted != lines
    (prices / "prices.csv").write_text("\n".join(shifted) + "\n")
    changed = run_cli(["eval", run.name], prices, timeout=TIMEOUT)
    _clean_error(changed, "differs from the one it was trained with", "sampled rows")


def test_an_unknown_fingerprint_version_is_reported(
    trained: tuple[Path, Path, np.ndarray],
) -> None:
    root, run, _ = trained
    record = json.loads((run / "data.json").read_text())
    record["fingerprint_version"] = 99
    (run / "data.json").write_text(json.dumps(record))
    done = run_cli(["eval", run.name], root, timeout=TIMEOUT)
    _clean_error(done, "data.json: fingerprint_version 99 is not one this mlx knows")


def test_version_1_fingerprint_misses_what_version_2_sees(
    rng: np.random.Generator,
) -> None:
    X = rng.random((1000, 3))
    y = rng.random(1000)
    rows = set(np.linspace(0, 999, num=256).astype(np.int64).tolist())
    unsampled = next(i for i in range(1000) if i not in rows)
    changed = X.copy()
    changed[unsampled, 1] += 1.0
    assert sampled_fingerprint(changed, y) == sampled_fingerprint(X, y)
    assert split_fingerprint(changed, y) != split_fingerprint(X, y)


# -- files that cannot be read ------------------------------------------------------


def _npz_named_npy(d: Path) -> str:
    np.savez(d / "data.npz", X=np.ones((20, 2)), y=np.arange(20) % 2)
    (d / "data.npz").rename(d / "X.npy")
    np.save(d / "y.npy", np.arange(20) % 2)
    return "X.npy"


def _pickled(which: str) -> Callable[[Path], str]:
    def make(d: Path) -> str:
        objects = np.empty(20, dtype=object)
        objects[:] = [{"a": i} for i in range(20)]
        X = objects.reshape(20, 1) if which == "X" else np.ones((20, 2))
        y = objects if which == "y" else np.arange(20) % 2
        np.save(d / "X.npy", X, allow_pickle=True)
        np.save(d / "y.npy", y, allow_pickle=True)
        return "X.npy"

    return make


def _truncated(which: str) -> Callable[[Path], str]:
    def make(d: Path) -> str:
        np.save(d / "X.npy", np.ones((20, 2)))
        np.save(d / "y.npy", np.arange(20) % 2)
        target = d / f"{which}.npy"
        data = target.read_bytes()
        target.write_bytes(data[: len(data) - 9])
        return "X.npy"

    return make


def _empty(name: str) -> Callable[[Path], str]:
    def make(d: Path) -> str:
        (d / name).write_bytes(b"")
        if name == "X.npy":
            np.save(d / "y.npy", np.arange(20) % 2)
        return name

    return make


def _npy_named_npz(d: Path) -> str:
    np.save(d / "data.npy", np.ones((20, 2)))
    (d / "data.npy").rename(d / "data.npz")
    return "data.npz"


def _length_mismatch(d: Path) -> str:
    np.save(d / "X.npy", np.ones((20, 2)))
    np.save(d / "y.npy", np.arange(19) % 2)
    return "X.npy"


def _missing_target(d: Path) -> str:
    (d / "d.csv").write_text("a,b,c\n1,2,0\n3,4,1\n")
    return "d.csv"


def _directory(d: Path) -> str:
    (d / "d.csv").mkdir()
    return "d.csv"


def _fifo(name: str) -> Callable[[Path], str]:
    def make(d: Path) -> str:
        if name == "y.npy":
            np.save(d / "X.npy", np.ones((20, 2)))
        os.mkfifo(d / name)
        return "X.npy" if name == "y.npy" else name

    return make


def _y_directory(d: Path) -> str:
    np.save(d / "X.npy", np.ones((20, 2)))
    (d / "y.npy").mkdir()
    return "X.npy"


def _below_a_file(d: Path) -> str:
    (d / "plain").write_text("not a directory")
    return "plain/d.csv"


def _no_line_breaks(header: bytes) -> Callable[[Path], str]:
    # a sparse file of a terabyte: NUL bytes and no line break, after ``header``
    def make(d: Path) -> str:
        with open(d / "d.csv", "wb") as handle:
            handle.write(header)
            handle.truncate(2**40)
        return "d.csv"

    return make


def _header_only(d: Path) -> str:
    (d / "d.csv").write_text("a,b,c\n")
    return "d.csv"


def _labels(y: np.ndarray, archive: bool = False) -> Callable[[Path], str]:
    def make(d: Path) -> str:
        if archive:
            np.savez(d / "d.npz", X=np.ones((len(y), 2)), y=y)
            return "d.npz"
        np.save(d / "X.npy", np.ones((len(y), 2)))
        np.save(d / "y.npy", y)
        return "X.npy"

    return make


# (make, what the error says, what the dry run should say)
DATA_ERRORS: dict[str, tuple[Callable[[Path], str], str]] = {
    "npz-named-npy": (_npz_named_npy, "is a .npz archive (zip), not a .npy array"),
    "pickled-X": (_pickled("X"), "holds Python objects"),
    "pickled-y": (_pickled("y"), "holds Python objects"),
    "truncated-X": (_truncated("X"), "the file is truncated"),
    "truncated-y": (_truncated("y"), "the file is truncated"),
    "empty-npy": (_empty("X.npy"), "the file is empty (0 bytes)"),
    "empty-csv": (_empty("d.csv"), "the file is empty"),
    "empty-npz": (_empty("d.npz"), "the file is empty (0 bytes)"),
    "npy-named-npz": (_npy_named_npz, "is a single .npy array, not a .npz archive"),
    "X-y-lengths": (_length_mismatch, "has 19 labels but"),
    "missing-target": (_missing_target, "target column 'price' not found"),
    "directory": (_directory, "is a directory, not a regular file"),
    "fifo": (_fifo("d.csv"), "is a FIFO (named pipe), not a regular file"),
    "fifo-y": (_fifo("y.npy"), "is a FIFO (named pipe), not a regular file"),
    "directory-y": (_y_directory, "is a directory, not a regular file"),
    "below-a-file": (_below_a_file, "is a file, not a directory"),
    "sparse-csv": (_no_line_breaks(b""), "d.csv:1: the line is longer than"),
    "header-only": (_header_only, "the file has a header but no data rows"),
    "one-class-npy": (_labels(np.zeros(20, dtype=int)), "needs at least 2 classes"),
    "one-class-npz": (
        _labels(np.full(20, 3), archive=True),
        "needs at least 2 classes; every label is 3",
    ),
    "one-text-class": (_labels(np.array([b"cat"] * 20)), "every label is 'cat'"),
    "fractional-labels": (
        _labels(np.linspace(0, 1, 20)),
        "y.npy[1]: label 0.05263157894736842 is not an integer, but the model is",
    ),
}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("case", list(DATA_ERRORS), ids=list(DATA_ERRORS))
def test_unreadable_data_is_one_clean_error_and_a_dry_run_says_no(
    tmp_path: Path, case: str
) -> None:
    make, needle = DATA_ERRORS[case]
    name = make(tmp_path)
    target = {"target": "price"} if case == "missing-target" else {}
    config = _config(name, [2, 4, 1], "sigmoid", **target)
    done = _run(tmp_path, config)
    _clean_error(done, needle)
    assert str(tmp_path) in done.stderr
    _nothing_written(tmp_path)
    dry = _run(tmp_path, config, "--dry-run")
    assert dry.returncode == 3 and "Traceback" not in dry.stderr, dry.stderr
    (verdict,) = [line for line in dry.stdout.splitlines() if "can run here" in line]
    assert "can run here: no: the dataset would not load: " in verdict
    assert needle in verdict
    _nothing_written(tmp_path)


def test_a_csv_whose_rows_end_in_a_line_without_end_fails_in_bounded_memory(
    tmp_path: Path,
) -> None:
    # the dry run reads the header only; the run reads the rows, a line at a time
    _no_line_breaks(b"a,b,price\n1,2,0\n3,4,1\n")(tmp_path)
    done = _run(tmp_path, _config("d.csv", [2, 4, 1], "sigmoid"))
    _clean_error(done, "d.csv:4: the line is longer than")


@pytest.mark.parametrize(
    ("labels", "needle"),
    [
        (np.array([b"cat", b"dog"] * 10), "y.npy[0]: label 'cat' is not a number"),
        (np.array(["cat", "dog"] * 10), "y.npy[0]: label 'cat' is not a number"),
    ],
    ids=["bytes", "unicode"],
)
def test_text_labels_for_a_regression_model_make_the_dry_run_say_no(
    tmp_path: Path, labels: np.ndarray, needle: str
) -> None:
    config = _config(_labels(labels)(tmp_path), None)
    _clean_error(_run(tmp_path, config), needle)
    _nothing_written(tmp_path)
    dry = _run(tmp_path, config, "--dry-run")
    assert "can run here: no: the dataset would not load: " in dry.stdout
    assert needle in dry.stdout


@pytest.mark.parametrize("data", ["X.npy", "d.csv"])
@pytest.mark.parametrize("outputs", [2, 3])
def test_a_regression_mlp_with_several_outputs_is_refused_before_the_run(
    tmp_path: Path, data: str, outputs: int
) -> None:
    _labels(np.arange(20.0))(tmp_path)
    (tmp_path / "d.csv").write_text("a,b,c\n1,2,0.5\n3,4,1.5\n5,6,2.5\n7,8,3.5\n")
    config = _config(data, [2, 4, outputs])
    for extra in ([], ["--dry-run"]):
        _clean_error(
            _run(tmp_path, config, *extra),
            f"model.params.layer_sizes[2] (the output size) must be 1 for a "
            f"regression model (an MLP without output_activation), got {outputs}",
        )
    _nothing_written(tmp_path)


def test_a_nul_byte_in_the_dataset_path_is_located(tmp_path: Path) -> None:
    config = write_config(tmp_path / "exp.yaml", _config("x", [2, 1]))
    text = config.read_text().replace("path: x", 'path: "a\\0b.csv"')
    config.write_text(text)
    for extra in ([], ["--dry-run"]):
        done = run_cli(
            ["run-experiment", "--config", "exp.yaml", *extra], tmp_path, timeout=60
        )
        _clean_error(
            done,
            "exp.yaml:4:",
            "dataset.path: path 'a\\x00b.csv' contains the control character '\\x00'",
        )


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('a,b,price\n1,2,0\n1,"2,1\n3,4,1\n', 3),
        ('a,b,price\n1,2,0\n3,4,1\n1,2,"1\n', 4),
        ('a,"b,price\n1,2,0\n', 1),
    ],
    ids=["mid-file", "last-field", "header"],
)
def test_an_unterminated_quote_is_reported_as_such(
    tmp_path: Path, text: str, line: int
) -> None:
    (tmp_path / "q.csv").write_text(text)
    done = _run(tmp_path, _config("q.csv", [2, 4, 1], "sigmoid"))
    _clean_error(done, f"q.csv:{line}: unterminated quote")
    _nothing_written(tmp_path)


# -- an unusable dataset cache ------------------------------------------------------


def _mnist_config(download: bool) -> dict:
    config = _config("unused", [784, 10], "softmax")
    config["dataset"] = {"name": "mnist", "params": {"download": download}}
    return config


@pytest.mark.parametrize("download", [False, True], ids=["no-download", "download"])
@pytest.mark.parametrize("where", ["file", "below-file"], ids=["file", "below-a-file"])
def test_a_data_dir_that_is_no_directory_is_a_clean_error(
    tmp_path: Path, download: bool, where: str
) -> None:
    plain = tmp_path / "plain"
    plain.write_text("not a directory")
    data_dir = plain if where == "file" else plain / "cache"
    env = cli_env(
        tmp_path, MLX_DATA_DIR=str(data_dir), MLX_DATA_URL="http://127.0.0.1:9/"
    )
    done = _run(tmp_path, _mnist_config(download), env=env)
    _clean_error(done, f"{plain} is a file, not a directory", "MLX_DATA_DIR")
    assert plain.read_text() == "not a directory"
    _nothing_written(tmp_path)
    dry = _run(tmp_path, _mnist_config(download), "--dry-run", env=env)
    assert "can run here: no" in dry.stdout and f"{plain} is a file" in dry.stdout


@pytest.mark.parametrize("download", [False, True], ids=["no-download", "download"])
@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("loop", "loop is a symbolic link that leads nowhere (or loops)"),
        ("dangling", "dangling is a symbolic link that leads nowhere (or loops)"),
        ("d" * 300, "cannot be looked at (File name too long)"),
        ("da\x01ta", "MLX_DATA_DIR '{root}/da\\x01ta' contains the control character"),
        ("da\nta", "MLX_DATA_DIR '{root}/da\\nta' contains the control character"),
    ],
    ids=["loop", "dangling", "too-long", "control", "newline"],
)
def test_a_data_dir_the_system_refuses_is_a_clean_error(
    tmp_path: Path, download: bool, where: str, message: str
) -> None:
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "dangling").symlink_to("nowhere")
    env = cli_env(
        tmp_path, MLX_DATA_DIR=str(tmp_path / where), MLX_DATA_URL="http://127.0.0.1:9/"
    )
    message = message.format(root=tmp_path)
    done = _run(tmp_path, _mnist_config(download), env=env)
    _clean_error(done, message)
    assert len(done.stderr.strip().splitlines()) <= 2  # an error and at most a hint
    _nothing_written(tmp_path)
    assert not (tmp_path / "nowhere").exists()
    dry = _run(tmp_path, _mnist_config(download), "--dry-run", env=env)
    if "control character" in message:
        # a value no path can have is refused like a config field, before any plan
        _clean_error(dry, message)
        return
    assert dry.returncode == 3, dry.stderr
    assert "can run here: no: the dataset would not load: " in dry.stdout
    assert message in dry.stdout


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root writes into read-only directories",
)
def test_an_unwritable_data_dir_is_a_clean_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        env = cli_env(
            tmp_path, MLX_DATA_DIR=str(locked), MLX_DATA_URL="http://127.0.0.1:9/"
        )
        done = _run(tmp_path, _mnist_config(True), env=env)
        _clean_error(done, str(locked / "mnist"))
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize(
    ("layer_sizes", "activation", "room"),
    [([2, 8, 3], "softmax", 3), ([2, 8, 1], "sigmoid", 2), ([2, 8, 2], "sigmoid", 2)],
    ids=["softmax-3", "sigmoid-1", "sigmoid-2"],
)
def test_more_classes_than_outputs_is_refused_before_the_run(
    prices: Path, layer_sizes: list, activation: str, room: int
) -> None:
    done = _run(prices, _config("prices.csv", layer_sizes, activation))
    _clean_error(
        done,
        "prices.csv: the data has 5 classes (10, 20, 30, 40, 50), but the model's "
        f"{activation} output has room for {room}",
        "layer_sizes[-1] to 5",
    )
    _nothing_written(prices)


_INTEGERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(-5, 5),
    st.sampled_from([2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64]),
)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(_INTEGERS, min_size=2, max_size=30), as_text=st.booleans())
def test_integer_labels_never_merge(values: list, as_text: bool) -> None:
    if len(set(values)) < 2:
        values = [*values, max(values) + 1]
    labels = np.array([str(v) for v in values]) if as_text else _int_array(values)
    if labels is None:
        return  # beyond what one NumPy integer dtype holds; the text case covers it
    y, _, n_classes, names = encode_labels(labels, "classification", _where)
    assert n_classes == len(set(values))
    assert names == tuple(sorted(set(values)))
    assert [names[i] for i in y] == values


def _int_array(values: list) -> np.ndarray | None:
    for dtype in (np.int64, np.uint64):
        info = np.iinfo(dtype)
        if all(info.min <= v <= info.max for v in values):
            return np.array(values, dtype=dtype)
    return None


def test_parquet_labels_follow_the_same_rules(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    n = 40
    values = [2**64 - 1, 2**64 - 2, 2**63, 7]
    table = pa.table(
        {
            "a": np.random.default_rng(8).random(n),
            "b": np.random.default_rng(9).random(n),
            "price": pa.array([values[i % 4] for i in range(n)], type=pa.uint64()),
        }
    )
    pq.write_table(table, tmp_path / "d.parquet")
    done = _run(tmp_path, _config("d.parquet", [2, 4, 4], "softmax"))
    assert done.returncode == 0, done.stderr
    record = json.loads((_only_run(tmp_path) / "data.json").read_text())
    assert record["preprocessing"]["labels"]["classes"] == sorted(values)


@pytest.mark.parametrize(
    ("labels", "layer_sizes", "activation", "task", "suggested"),
    [
        (np.arange(8), [2, 4, 8], "softmax", "classification", "regression"),
        (np.arange(40) % 4, [2, 4, 1], None, "regression", "classification"),
        (np.arange(40) % 4, None, None, "regression", "classification"),
    ],
    ids=["tiny-npy-to-softmax", "few-integers-to-mlp", "few-integers-to-linear"],
)
def test_npy_labels_follow_the_model_in_the_plan_and_the_run(
    tmp_path: Path, labels, layer_sizes, activation, task: str, suggested: str
) -> None:
    np.save(tmp_path / "X.npy", np.random.default_rng(10).random((len(labels), 2)))
    np.save(tmp_path / "y.npy", labels)
    config = _config(
        "X.npy", layer_sizes, activation, validation_split=0.0, test_split=0.25
    )
    dry = _run(tmp_path, config, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    (line,) = [x for x in dry.stdout.splitlines() if x.startswith("  task:")]
    assert f"{task}, the model's (the labels alone suggest {suggested}" in line
    assert "can run here: yes" in dry.stdout
    done = _run(tmp_path, config)
    assert done.returncode == 0, done.stderr
    assert f"dataset.params.task: {task}" in done.stderr
    record = json.loads((_only_run(tmp_path) / "data.json").read_text())
    assert record["task"] == task


def test_a_run_that_followed_the_model_resumes_on_the_same_data(prices: Path) -> None:
    config = _config("prices.csv", [2, 8, 1])
    config["output"]["checkpoint_frequency"] = 1
    done = _run(prices, config)
    assert done.returncode == 0, done.stderr
    run = _only_run(prices)
    resumed = run_cli(
        ["run-experiment", "--resume", run.name, "--set", "training.epochs=3"],
        prices,
        timeout=TIMEOUT,
    )
    assert resumed.returncode == 0, resumed.stderr
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    assert "val_r2" in metrics[-1]
