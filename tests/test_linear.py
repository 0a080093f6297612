from __future__ import annotations

import numpy as np
import pytest

from mlx.errors import ModelError, NotTrainedError, NumericalWarning
from mlx.models import LinearRegression

sklearn_linear = pytest.importorskip("sklearn.linear_model")
sklearn_datasets = pytest.importorskip("sklearn.datasets")


def _synthetic(rng, n=200, p=5, k=None, offset=0.0):
    X = rng.standard_normal((n, p)) * rng.uniform(0.5, 3, p) + offset
    shape = (p,) if k is None else (p, k)
    y = X @ rng.standard_normal(shape) + 0.1 * rng.standard_normal(
        (n,) if k is None else (n, k)
    )
    return X, y + 3.0


def _close(ours, theirs):
    np.testing.assert_allclose(
        ours, theirs, rtol=1e-8, atol=1e-8 * np.abs(theirs).max()
    )


@pytest.mark.parametrize("l2", [0.0, 0.1, 10.0], ids=["ols", "ridge-0.1", "ridge-10"])
@pytest.mark.parametrize("data", ["diabetes", "synthetic", "large-mean"])
def test_matches_scikit_learn(rng, l2, data):
    if data == "diabetes":
        X, y = sklearn_datasets.load_diabetes(return_X_y=True)
    else:
        X, y = _synthetic(rng, offset=1e3 if data == "large-mean" else 0.0)
    ours = LinearRegression(l2_regularization=l2).fit(X, y)
    theirs = sklearn_linear.Ridge(alpha=l2) if l2 else sklearn_linear.LinearRegression()
    theirs.fit(X, y)
    _close(ours.predict(X), theirs.predict(X))
    _close(ours.params_["linear.weight"][0], theirs.coef_)
    assert ours.predict(X).shape == (X.shape[0],)


def test_multi_output(rng):
    X, y = _synthetic(rng, k=3)
    ours = LinearRegression(l2_regularization=0.5).fit(X, y)
    theirs = sklearn_linear.Ridge(alpha=0.5).fit(X, y)
    _close(ours.predict(X), theirs.predict(X))
    assert ours.params_["linear.weight"].shape == (3, 5)
    assert ours.params_["linear.bias"].shape == (3,)
    assert ours.n_parameters == 18


def test_singular_matrix_warns_and_uses_pseudoinverse(rng):
    X, y = _synthetic(rng, p=3)
    X = np.column_stack([X, 2 * X[:, 0]])  # exactly collinear
    model = LinearRegression()
    with pytest.warns(NumericalWarning, match="condition number"):
        model.fit(X, y)
    theirs = sklearn_linear.LinearRegression().fit(X, y)
    _close(model.predict(X), theirs.predict(X))
    # the minimum-norm solution splits the weight between the twin columns
    w = model.params_["linear.weight"][0]
    assert w[3] == pytest.approx(2 * w[0], rel=1e-6)


def test_constant_column_is_singular_without_l2(rng):
    X, y = _synthetic(rng, p=2)
    X = np.column_stack([X, np.ones(len(X))])
    with pytest.warns(NumericalWarning):
        LinearRegression().fit(X, y)
    LinearRegression(l2_regularization=1.0).fit(X, y)  # ridge makes it regular


@pytest.mark.parametrize("l2", [0.0, 5.0], ids=["ols", "ridge"])
def test_gradient_descent_converges_to_closed_form(rng, l2):
    X, y = _synthetic(rng, n=100, p=3)
    closed = LinearRegression(l2_regularization=l2).fit(X, y)
    gd = LinearRegression(
        seed=0,
        use_gradient_descent=True,
        l2_regularization=l2,
        optimizer_config={"optimizer_type": "adam", "learning_rate": 0.05},
    )
    assert not gd.closed_form and closed.closed_form
    losses = [gd.train_step(X, y)["loss"] for _ in range(3000)]
    assert losses[-1] < losses[0]
    np.testing.assert_allclose(gd.predict(X), closed.predict(X), rtol=1e-6, atol=1e-6)


def test_train_step_in_closed_form_mode_fits(rng):
    X, y = _synthetic(rng)
    model = LinearRegression()
    metrics = model.train_step(X, y)
    residual = model.predict(X) - y
    assert metrics["loss"] == pytest.approx(np.mean(residual**2))
    assert model.is_trained


def test_gradient_descent_is_deterministic(rng):
    X, y = _synthetic(rng)
    weights = []
    for _ in range(2):
        model = LinearRegression(seed=3, use_gradient_descent=True)
        for _ in range(5):
            model.train_step(X, y)
        weights.append(model.params_["linear.weight"].copy())
    np.testing.assert_array_equal(weights[0], weights[1])


def test_not_trained():
    with pytest.raises(NotTrainedError, match="not trained yet"):
        LinearRegression().predict(np.ones((2, 2)))
    with pytest.raises(NotTrainedError, match="no weights to save"):
        LinearRegression().save("unused")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"l2_regularization": -1.0}, r"'l2_regularization'.*\[0.0, inf\); got -1.0"),
        ({"l2_regularization": "a"}, "l2_regularization"),
        ({"use_gradient_descent": "yes"}, "use_gradient_descent"),
        ({"seed": 1.5}, "'seed'"),
        ({"optimizer_config": 3}, "optimizer_config"),
    ],
    ids=["negative-l2", "string-l2", "gd-flag", "seed", "optimizer-config"],
)
def test_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ModelError, match=match):
        LinearRegression(**kwargs)


@pytest.mark.parametrize(
    ("X", "y", "match"),
    [
        (np.ones(3), np.ones(3), "2-D array; got shape"),
        (np.ones((0, 2)), np.ones(0), "non-empty"),
        (np.array([[1.0, np.nan]] * 3), np.ones(3), "finite values in X"),
        (np.array([[np.inf, 1.0], [2.0, -np.inf]]), np.ones(2), "finite values in X"),
        (np.full((3, 2), 1e308), np.ones(3), "overflow float64; rescale X"),
        (np.ones((3, 2)), np.array([1.0, np.inf, 2.0]), "finite values in y"),
        (np.ones((3, 2)), np.ones(4), "one row per sample"),
        (np.ones((3, 2)), np.ones((3, 2, 1)), "shape"),
        (np.array([["a", "b"]] * 3), np.ones(3), "numeric"),
    ],
    ids=[
        "1d",
        "empty",
        "nan-x",
        "inf-x",
        "overflow-x",
        "inf-y",
        "n-mismatch",
        "y-3d",
        "strings",
    ],
)
def test_rejects_bad_inputs(X, y, match):
    with pytest.raises(ModelError, match=match):
        LinearRegression().fit(X, y)


def test_feature_count_is_checked(rng):
    X, y = _synthetic(rng)
    model = LinearRegression().fit(X, y)
    with pytest.raises(ModelError, match="expects X with 5 features; got 4"):
        model.predict(X[:, :4])
