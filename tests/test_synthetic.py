from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from mlx.config.experiment import DatasetConfig
from mlx.datasets import (
    MEMORY_LIMIT_BYTES,
    SyntheticClassification,
    SyntheticRegression,
    describe,
    load,
)
from mlx.datasets import synthetic as synthetic_module
from mlx.errors import DatasetError

REPO_ROOT = Path(__file__).resolve().parents[1]


def _digest(X: np.ndarray, y: np.ndarray) -> str:
    return hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest()


# -- shapes, dtypes, determinism ----------------------------------------------------


def test_regression_shapes_and_dtypes():
    X, y = SyntheticRegression(n_samples=50, n_features=7, seed=1).generate()
    assert X.shape == (50, 7) and X.dtype == np.float64
    assert y.shape == (50,) and y.dtype == np.float64


def test_classification_shapes_dtypes_and_balanced_labels():
    gen = SyntheticClassification(n_samples=101, n_features=4, n_classes=3, seed=1)
    X, y = gen.generate()
    assert X.shape == (101, 4) and X.dtype == np.float64
    assert y.shape == (101,) and y.dtype == np.int64
    counts = np.bincount(y, minlength=3)
    assert set(counts) <= {33, 34} and counts.sum() == 101


@pytest.mark.parametrize(
    "make",
    [
        lambda: SyntheticRegression(n_samples=3000, n_features=700, n_informative=5),
        lambda: SyntheticClassification(n_samples=3000, n_features=700, n_classes=4),
    ],
    ids=["regression", "classification"],
)
def test_same_seed_same_bits_and_thread_count_does_not_matter(make, monkeypatch):
    gen = make()
    first = gen.generate(seed=7)
    assert _digest(*first) == _digest(*gen.generate(seed=7))
    assert _digest(*first) != _digest(*gen.generate(seed=8))
    # 3000 x 700 spans several independently seeded blocks
    monkeypatch.setattr(synthetic_module, "_cpu_count", lambda: 1)
    assert _digest(*first) == _digest(*make().generate(seed=7))


def test_identical_across_processes():
    code = (
        "import hashlib, sys\n"
        "import mlx.datasets.synthetic as s\n"
        "s._cpu_count = lambda: int(sys.argv[1])\n"
        "for g in (s.SyntheticRegression(4000, 600, 30, 0.5),"
        " s.SyntheticClassification(4000, 600, 30, 5, 0.7)):\n"
        "    X, y = g.generate(seed=123)\n"
        "    print(hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    outputs = [
        subprocess.run(
            [sys.executable, "-c", code, workers],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        for workers in ("1", "3")
    ]
    here = [
        _digest(*SyntheticRegression(4000, 600, 30, 0.5).generate(seed=123)),
        _digest(*SyntheticClassification(4000, 600, 30, 5, 0.7).generate(seed=123)),
    ]
    assert outputs[0] == outputs[1] == here


def test_constructor_seed_is_the_default_and_argument_wins():
    gen = SyntheticRegression(n_samples=20, seed=5)
    assert _digest(*gen.generate()) == _digest(*gen.generate(seed=5))
    assert _digest(*gen.generate()) != _digest(*gen.generate(seed=6))


@pytest.mark.parametrize(
    "cls", [SyntheticRegression, SyntheticClassification], ids=["reg", "clf"]
)
def test_no_seed_anywhere_is_a_clear_error(cls):
    with pytest.raises(DatasetError, match=r"needs a seed.*generate\(seed=\.\.\.\)"):
        cls(n_samples=5).generate()


def test_numpy_integer_seed_and_sizes_accepted():
    X, _ = SyntheticRegression(np.int64(5), np.int32(2), seed=np.uint8(3)).generate()
    assert X.shape == (5, 2)


# -- what the data means ------------------------------------------------------------


def test_regression_only_informative_features_have_weight():
    gen = SyntheticRegression(n_samples=400, n_features=12, n_informative=4, seed=3)
    X, y, weights = gen.generate_with_weights()
    assert np.count_nonzero(weights) == 4
    assert np.all(np.abs(weights[weights != 0]) >= 0.5)
    # least squares recovers the weights: zero where uninformative
    fitted, *_ = np.linalg.lstsq(X, y, rcond=None)
    np.testing.assert_allclose(fitted, weights, atol=0.05)
    np.testing.assert_array_equal(gen.generate()[0], X)


def test_regression_noise_std_is_the_residual_spread():
    gen = SyntheticRegression(n_samples=20000, n_features=3, noise_std=0.7, seed=0)
    X, y, weights = gen.generate_with_weights()
    assert np.std(y - X @ weights) == pytest.approx(0.7, rel=0.03)
    X0, y0, w0 = SyntheticRegression(50, 3, noise_std=0.0).generate_with_weights(1)
    np.testing.assert_allclose(y0, X0 @ w0, rtol=0, atol=1e-12)


def test_classification_signal_only_in_informative_columns():
    gen = SyntheticClassification(
        n_samples=6000, n_features=10, n_informative=3, n_classes=2, class_sep=2.0
    )
    X, y = gen.generate(seed=4)
    gap = np.abs(X[y == 0].mean(axis=0) - X[y == 1].mean(axis=0))
    informative = gap > 1.0
    assert informative.sum() == 3
    assert np.all(gap[~informative] < 0.15)


def test_class_sep_controls_difficulty_for_logistic_regression():
    sklearn_linear = pytest.importorskip("sklearn.linear_model")
    scores = []
    for class_sep in (0.2, 0.6, 1.5, 4.0):
        cfg = DatasetConfig(
            "synthetic_classification",
            params={
                "n_samples": 1500,
                "n_features": 6,
                "n_informative": 2,
                "n_classes": 3,
                "class_sep": class_sep,
                "seed": 11,
            },
        )
        splits = load(cfg, seed=0)
        model = sklearn_linear.LogisticRegression(max_iter=500)
        model.fit(*splits.train)
        scores.append(model.score(*splits.test))
    assert scores == sorted(scores) and len(set(scores)) == len(scores)
    assert scores[0] < 0.6 and scores[-1] > 0.97


def test_more_classes_than_informative_corners_still_distinct_means():
    gen = SyntheticClassification(
        n_samples=5000, n_features=1, n_classes=5, class_sep=5.0, seed=2
    )
    X, y = gen.generate()
    means = np.sort([X[y == c, 0].mean() for c in range(5)])
    assert np.all(np.diff(means) > 1.0)


# -- parameter bounds ---------------------------------------------------------------

_BAD = [
    (SyntheticRegression, {"n_samples": 0}, "n_samples", "integer >= 1"),
    (SyntheticRegression, {"n_samples": -3}, "n_samples", "integer >= 1"),
    (SyntheticRegression, {"n_samples": 2.5}, "n_samples", "integer >= 1"),
    (SyntheticRegression, {"n_samples": True}, "n_samples", "integer >= 1"),
    (SyntheticRegression, {"n_samples": "10"}, "n_samples", "integer >= 1"),
    (SyntheticRegression, {"n_features": 0}, "n_features", "integer >= 1"),
    (SyntheticRegression, {"n_features": False}, "n_features", "integer >= 1"),
    (SyntheticRegression, {"n_informative": 0}, "n_informative", r"\[1, n_features"),
    (SyntheticRegression, {"n_informative": 11}, "n_informative", r"n_features \(10"),
    (SyntheticRegression, {"n_informative": True}, "n_informative", "integer"),
    (SyntheticRegression, {"noise_std": -0.1}, "noise_std", ">= 0"),
    (SyntheticRegression, {"noise_std": float("nan")}, "noise_std", "finite"),
    (SyntheticRegression, {"noise_std": float("inf")}, "noise_std", "finite"),
    (SyntheticRegression, {"noise_std": True}, "noise_std", "number"),
    (SyntheticRegression, {"noise_std": "0.1"}, "noise_std", "number"),
    (SyntheticRegression, {"seed": -1}, "seed", "integer >= 0"),
    (SyntheticRegression, {"seed": 1.0}, "seed", "integer >= 0"),
    (SyntheticRegression, {"seed": True}, "seed", "integer >= 0"),
    (SyntheticClassification, {"n_classes": 1}, "n_classes", "integer >= 2"),
    (SyntheticClassification, {"n_classes": 2.0}, "n_classes", "integer >= 2"),
    (SyntheticClassification, {"n_classes": True}, "n_classes", "integer >= 2"),
    (SyntheticClassification, {"class_sep": 0}, "class_sep", "> 0"),
    (SyntheticClassification, {"class_sep": -1.0}, "class_sep", "> 0"),
    (SyntheticClassification, {"class_sep": float("nan")}, "class_sep", "finite"),
    (SyntheticClassification, {"class_sep": True}, "class_sep", "number"),
    (SyntheticClassification, {"n_samples": 0}, "n_samples", "integer >= 1"),
    (SyntheticClassification, {"n_informative": 11}, "n_informative", "n_features"),
    (SyntheticClassification, {"seed": -5}, "seed", "integer >= 0"),
]


@pytest.mark.parametrize(
    ("cls", "kwargs", "name", "expected"),
    _BAD,
    ids=[f"{c.__name__[9:]}-{k}" for c, k, _, _ in _BAD],
)
def test_bad_parameter_names_itself(cls, kwargs, name, expected):
    with pytest.raises(DatasetError, match=rf"'{name}' parameter of {cls.__name__}"):
        cls(**kwargs)
    with pytest.raises(ValueError, match=expected):
        cls(**kwargs)


@pytest.mark.parametrize("seed", [-1, 2.0, True], ids=["negative", "float", "bool"])
def test_bad_generate_seed(seed):
    with pytest.raises(DatasetError, match="'seed' parameter"):
        SyntheticClassification(n_samples=4).generate(seed=seed)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_samples": 1, "n_features": 1},
        {"n_informative": 10},
        {"n_informative": 1},
        {"noise_std": 0.0},
        {"seed": 0},
    ],
    ids=["smallest", "all-informative", "one-informative", "no-noise", "seed-0"],
)
def test_edge_values_accepted(kwargs):
    params = {"n_samples": 10, "n_features": 10, "seed": 1, **kwargs}
    X, y = SyntheticRegression(**params).generate()
    assert X.shape == (params["n_samples"], params["n_features"])
    Xc, yc = SyntheticClassification(
        n_samples=params["n_samples"],
        n_features=params["n_features"],
        n_informative=params.get("n_informative"),
        n_classes=2,
        class_sep=1e-9,
        seed=params["seed"],
    ).generate()
    assert set(np.unique(yc)) <= {0, 1}


# -- memory guard -------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: SyntheticRegression(n_samples=10**12),
        lambda: SyntheticClassification(n_samples=10**12, n_features=10**6),
        lambda: SyntheticRegression(n_samples=2**26 + 1, n_features=1),
    ],
    ids=["10**12-rows", "huge-both", "one-row-over"],
)
def test_memory_guard_rejects_before_allocating(make):
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match=r"would need .* above the 1\.0 GiB"):
            make()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_memory_guard_boundary_and_estimate_in_message():
    # exactly the limit is allowed (constructing allocates nothing)
    gen = SyntheticRegression(n_samples=2**26, n_features=1)
    assert gen.memory_bytes == MEMORY_LIMIT_BYTES
    with pytest.raises(DatasetError, match=r"80\.0 TiB \(88000000000000 bytes\)"):
        SyntheticRegression(n_samples=10**12)


def test_memory_guard_through_load():
    cfg = DatasetConfig("synthetic_classification", params={"n_samples": 10**12})
    with pytest.raises(DatasetError, match="limit"):
        load(cfg, seed=0)


@pytest.mark.parametrize(
    "name", ["synthetic_regression", "synthetic_classification"], ids=["reg", "clf"]
)
def test_describe_memory_matches_generated_arrays(name):
    cfg = DatasetConfig(name, params={"n_samples": 300, "n_features": 7})
    info = describe(cfg)
    splits = load(cfg, seed=3)
    total = sum(X.nbytes + y.nbytes for X, y in (splits.train, splits.val, splits.test))
    assert info.memory_bytes == total
    assert info.split_sizes == splits.sizes == (240, 30, 30)
    assert info.task == splits.task


def test_repr_shows_parameters():
    text = repr(SyntheticClassification(n_samples=5, class_sep=2.0))
    assert text.startswith("SyntheticClassification(n_samples=5,")
    assert "class_sep=2.0" in text
