from __future__ import annotations

import json

import numpy as np
import pytest

from mlx.config.experiment import DatasetConfig
from mlx.datasets import apply_preprocessing, load, split_indices
from mlx.datasets.splits import standardize
from mlx.errors import DatasetError


@pytest.mark.parametrize(
    ("n", "val", "test", "sizes"),
    [
        (100, 0.1, 0.1, (80, 10, 10)),
        (101, 0.2, 0.1, (71, 20, 10)),
        (10, 0.0, 0.0, (10, 0, 0)),
        (7, 0.25, 0.25, (3, 2, 2)),
        (1, 0.1, 0.1, (1, 0, 0)),
    ],
    ids=["default", "uneven", "no-holdout", "rounding", "one-sample"],
)
def test_split_sizes_disjoint_and_complete(n, val, test, sizes):
    parts = split_indices(n, val, test, seed=3)
    assert tuple(len(p) for p in parts) == sizes
    joined = np.concatenate(parts)
    assert np.array_equal(np.sort(joined), np.arange(n))
    for p in parts:
        assert np.all(np.diff(p) > 0)  # sorted, no repeats


def test_split_stable_for_a_seed_and_different_for_another():
    a = split_indices(1000, 0.1, 0.2, seed=42)
    b = split_indices(1000, 0.1, 0.2, seed=42)
    c = split_indices(1000, 0.1, 0.2, seed=43)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[2], c[2])


@pytest.mark.parametrize(
    ("val", "test", "match"),
    [
        (1.0, 0.1, "'validation_split'.*range \\[0.0, 1.0\\)"),
        (-0.1, 0.1, "'validation_split'"),
        (0.1, True, "'test_split'"),
        (0.1, "0.1", "'test_split'"),
        (0.6, 0.45, "leave no training samples"),
    ],
    ids=["val-one", "val-negative", "test-bool", "test-string", "nothing-left"],
)
def test_bad_split_fractions(val, test, match):
    with pytest.raises(DatasetError, match=match):
        split_indices(100, val, test, seed=0)


def _synthetic(**params):
    base = {"n_samples": 400, "n_features": 5, "seed": 9}
    return DatasetConfig("synthetic_regression", params={**base, **params})


def test_load_is_stable_and_the_split_follows_split_seed_only():
    a = load(_synthetic(), seed=1)
    b = load(_synthetic(), seed=2)  # another training seed: the same split
    c = load(_synthetic(split_seed=5), seed=1)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(a, part)[0], getattr(b, part)[0])
        np.testing.assert_array_equal(getattr(a, part)[1], getattr(b, part)[1])
    assert not np.array_equal(a.test[1], c.test[1])
    # split rule 1 (runs recorded before split_seed): training.seed decides
    old = load(_synthetic(), seed=2, split_rule=1)
    assert not np.array_equal(a.test[1], old.test[1])
    assert old.preprocessing["split"]["seed"] == 2
    assert "rule" not in old.preprocessing["split"]

    # params.seed fixes the data, so both splits hold the same samples overall
    def rows(splits):
        return np.sort(np.concatenate([splits.train[1], splits.val[1], splits.test[1]]))

    np.testing.assert_array_equal(rows(a), rows(c))


def test_without_params_seed_the_training_seed_generates_the_data():
    cfg = DatasetConfig("synthetic_regression", params={"n_samples": 50})
    a, b = load(cfg, seed=1), load(cfg, seed=2)
    assert a.preprocessing["generator_seed"] == 1
    assert not np.array_equal(np.sort(a.train[1]), np.sort(b.train[1]))


def test_standardize_uses_training_statistics_only():
    raw = load(_synthetic(), seed=4)
    scaled = load(_synthetic(standardize=True), seed=4)
    mean = raw.train[0].mean(axis=0)
    std = raw.train[0].std(axis=0)
    for part in ("train", "val", "test"):
        expected = (getattr(raw, part)[0] - mean) / std
        np.testing.assert_allclose(getattr(scaled, part)[0], expected, rtol=1e-12)
        np.testing.assert_array_equal(getattr(scaled, part)[1], getattr(raw, part)[1])
    np.testing.assert_allclose(scaled.train[0].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(scaled.train[0].std(axis=0), 1, rtol=1e-12)
    assert not np.allclose(scaled.test[0].mean(axis=0), 0, atol=1e-6)
    stats = scaled.preprocessing["standardize"]
    np.testing.assert_allclose(stats["mean"], mean)
    # the stored preprocessing is plain JSON and repeats the transformation
    stored = json.loads(json.dumps(scaled.preprocessing))
    np.testing.assert_allclose(
        apply_preprocessing(raw.test[0], stored), scaled.test[0], rtol=1e-12
    )


def test_standardize_constant_column_gets_std_one():
    train = np.array([[1.0, 5.0], [3.0, 5.0]])
    test = np.array([[2.0, 7.0]])
    stats, (train_s, test_s) = standardize(train, test)
    assert stats["std"] == [1.0, 1.0]
    np.testing.assert_array_equal(train_s, [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_array_equal(test_s, [[0.0, 2.0]])


def test_standardize_ignores_nan_when_allowed():
    train = np.array([[1.0], [np.nan], [3.0]])
    stats, (out,) = standardize(train)
    assert stats == {"mean": [2.0], "std": [1.0]}
    assert np.isnan(out[1, 0])


def test_standardize_must_be_a_bool():
    with pytest.raises(DatasetError, match="'standardize' parameter"):
        load(_synthetic(standardize="yes"), seed=0)


def test_zero_validation_split_gives_empty_but_shaped_val():
    splits = load(_synthetic(validation_split=0.0), seed=0)
    assert splits.val[0].shape == (0, 5) and splits.val[1].shape == (0,)
    assert splits.preprocessing["split"]["n_val"] == 0


def test_apply_preprocessing_checks_width():
    prep = {"feature_dtype": "float64", "standardize": {"mean": [0.0], "std": [1.0]}}
    with pytest.raises(DatasetError, match=r"shape \(n_samples, 1\)"):
        apply_preprocessing(np.zeros((2, 3)), prep)


@pytest.mark.parametrize("seed", [-1, 1.5, None], ids=["negative", "float", "none"])
def test_load_rejects_bad_seed(seed):
    with pytest.raises(DatasetError, match="'seed' parameter"):
        load(_synthetic(), seed=seed)
