from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mlx import metrics as M
from mlx.errors import ConfigError, ModelError

skm = pytest.importorskip("sklearn.metrics")

TOL = 1e-12


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _case(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """(y_true, y_pred, n_classes) for a classification scenario."""
    if kind == "binary":
        t = rng.integers(0, 2, 60)
        p = np.where(rng.random(60) < 0.7, t, 1 - t)
        return t, p, 2
    if kind == "multiclass":
        t = rng.integers(0, 4, 80)
        p = np.where(rng.random(80) < 0.6, t, rng.integers(0, 4, 80))
        return t, p, 4
    if kind == "imbalanced":
        t = np.where(rng.random(200) < 0.9, 0, rng.integers(1, 3, 200))
        p = np.where(rng.random(200) < 0.8, t, 0)
        return t, p, 3
    if kind == "absent_in_pred":
        t = rng.integers(0, 3, 50)
        p = np.where(t == 2, 0, t)  # class 2 never predicted
        return t, p, 3
    if kind == "absent_in_true":
        t = rng.integers(0, 2, 50)
        p = np.where(rng.random(50) < 0.2, 2, t)  # class 2 only predicted
        return t, p, 3
    raise AssertionError(kind)


KINDS = ["binary", "multiclass", "imbalanced", "absent_in_pred", "absent_in_true"]


@pytest.mark.parametrize("kind", KINDS, ids=KINDS)
def test_accuracy_and_confusion_matrix_match_sklearn(kind, rng):
    t, p, _ = _case(kind, rng)
    assert M.accuracy(t, p) == pytest.approx(skm.accuracy_score(t, p), abs=TOL)
    np.testing.assert_array_equal(M.confusion_matrix(t, p), skm.confusion_matrix(t, p))


@pytest.mark.parametrize("kind", KINDS, ids=KINDS)
@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (M.precision, skm.precision_score),
        (M.recall, skm.recall_score),
        (M.f1_score, skm.f1_score),
    ],
    ids=["precision", "recall", "f1"],
)
def test_prf_match_sklearn(ours, theirs, average, kind, rng):
    t, p, _ = _case(kind, rng)
    expected = theirs(t, p, average=average, zero_division=0.0)
    assert ours(t, p, average=average) == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (M.precision, skm.precision_score),
        (M.recall, skm.recall_score),
        (M.f1_score, skm.f1_score),
    ],
    ids=["precision", "recall", "f1"],
)
def test_prf_with_n_classes_includes_unseen_labels(ours, theirs, rng):
    t = rng.integers(0, 3, 40)
    p = np.where(rng.random(40) < 0.7, t, 0)
    for average in ("macro", "weighted", "micro"):
        expected = theirs(
            t, p, labels=[0, 1, 2, 3, 4], average=average, zero_division=0
        )
        assert ours(t, p, average=average, n_classes=5) == pytest.approx(
            expected, abs=TOL
        )


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (M.precision, skm.precision_score),
        (M.recall, skm.recall_score),
        (M.f1_score, skm.f1_score),
    ],
    ids=["precision", "recall", "f1"],
)
def test_binary_average_matches_sklearn_default(ours, theirs, rng):
    t, p, _ = _case("binary", rng)
    assert ours(t, p, average="binary") == pytest.approx(theirs(t, p), abs=TOL)


def test_binary_average_without_positive_class_matches_sklearn():
    t = np.zeros(5, dtype=int)
    p = np.array([0, 0, 0, 0, 0])
    for ours, theirs in (
        (M.precision, skm.precision_score),
        (M.f1_score, skm.f1_score),
    ):
        assert ours(t, p, average="binary") == theirs(t, p, zero_division=0)


def test_zero_division_is_zero_without_warnings():
    # class 1 never predicted (precision 0/0), class 2 never present (recall 0/0)
    t = np.array([0, 0, 1, 1])
    p = np.array([0, 2, 0, 0])
    assert M.precision(t, p) == pytest.approx(
        skm.precision_score(t, p, average="macro", zero_division=0), abs=TOL
    )
    assert M.recall(t, p) == pytest.approx(
        skm.recall_score(t, p, average="macro", zero_division=0), abs=TOL
    )
    assert M.f1_score(t, p, average="weighted") == pytest.approx(
        skm.f1_score(t, p, average="weighted", zero_division=0), abs=TOL
    )


def test_string_labels_use_the_union():
    t = np.array(["cat", "dog", "dog", "eel"])
    p = np.array(["cat", "cat", "dog", "dog"])
    assert M.f1_score(t, p) == pytest.approx(
        skm.f1_score(t, p, average="macro"), abs=TOL
    )
    np.testing.assert_array_equal(M.confusion_matrix(t, p), skm.confusion_matrix(t, p))


def test_confusion_matrix_with_n_classes(rng):
    t = rng.integers(0, 3, 30)
    p = rng.integers(0, 3, 30)
    np.testing.assert_array_equal(
        M.confusion_matrix(t, p, n_classes=5),
        skm.confusion_matrix(t, p, labels=range(5)),
    )


@pytest.mark.parametrize("k", [2, 3, 5], ids=["k2", "k3", "k5"])
def test_log_loss_matches_sklearn(k, rng):
    t = rng.integers(0, k, 70)
    proba = _softmax(rng.normal(size=(70, k)) * 3)
    proba[0] = 0.0  # exercise the clipping: a zero probability for the true class
    proba[0, (t[0] + 1) % k] = 1.0
    expected = skm.log_loss(t, proba, labels=list(range(k)))
    assert M.log_loss(t, proba) == pytest.approx(expected, abs=TOL)


def test_log_loss_binary_vector_matches_sklearn(rng):
    t = rng.integers(0, 2, 50)
    p1 = rng.random(50)
    p1[:3] = [0.0, 1.0, 0.5]
    assert M.log_loss(t, p1) == pytest.approx(skm.log_loss(t, p1), abs=TOL)


def test_log_loss_float32_uses_float32_clipping(rng):
    t = rng.integers(0, 3, 40)
    proba = _softmax(rng.normal(size=(40, 3))).astype(np.float32)
    expected = skm.log_loss(t, proba, labels=[0, 1, 2])
    assert M.log_loss(t, proba) == pytest.approx(expected, rel=1e-6)


def test_roc_auc_binary_with_ties_matches_sklearn(rng):
    t = rng.integers(0, 2, 100)
    scores = rng.integers(0, 5, 100) / 4.0  # many ties
    expected = skm.roc_auc_score(t, scores)
    assert M.roc_auc(t, scores) == pytest.approx(expected, abs=TOL)
    two_columns = np.stack([1 - scores, scores], axis=1)
    assert M.roc_auc(t, two_columns) == pytest.approx(expected, abs=TOL)


def test_roc_auc_binary_labels_other_than_0_1(rng):
    t = rng.choice([3, 7], 60)
    scores = rng.random(60)
    assert M.roc_auc(t, scores) == pytest.approx(skm.roc_auc_score(t, scores), abs=TOL)


@pytest.mark.parametrize("k", [3, 4], ids=["k3", "k4"])
def test_roc_auc_multiclass_ovr_macro_matches_sklearn(k, rng):
    t = rng.integers(0, k, 120)
    proba = _softmax(np.round(rng.normal(size=(120, k)), 1))  # rounding gives ties
    expected = skm.roc_auc_score(t, proba, multi_class="ovr", average="macro")
    assert M.roc_auc(t, proba) == pytest.approx(expected, abs=TOL)


def test_roc_auc_undefined_raises():
    with pytest.raises(ModelError, match="both classes"):
        M.roc_auc([1, 1, 1], [0.2, 0.4, 0.9])
    proba = _softmax(np.arange(12.0).reshape(4, 3))
    with pytest.raises(ModelError, match="class 2 is absent"):
        M.roc_auc([0, 1, 0, 1], proba)


REGRESSION = [
    ("mse", M.mse, "mean_squared_error"),
    ("rmse", M.rmse, "root_mean_squared_error"),
    ("mae", M.mae, "mean_absolute_error"),
    ("r2", M.r2, "r2_score"),
]


def _sk_regression(name: str, t, p, multioutput: str = "uniform_average"):
    if name == "root_mean_squared_error" and not hasattr(skm, name):
        raw = np.sqrt(skm.mean_squared_error(t, p, multioutput="raw_values"))
        return raw if multioutput == "raw_values" else raw.mean()
    return getattr(skm, name)(t, p, multioutput=multioutput)


@pytest.mark.parametrize(
    ("name", "ours", "theirs"), REGRESSION, ids=[r[0] for r in REGRESSION]
)
@pytest.mark.parametrize("n_outputs", [None, 1, 3], ids=["1d", "col", "multi"])
def test_regression_metrics_match_sklearn(name, ours, theirs, n_outputs, rng):
    shape = (40,) if n_outputs is None else (40, n_outputs)
    t = rng.normal(size=shape) * 3 + 1
    p = t + rng.normal(size=shape)
    assert ours(t, p) == pytest.approx(_sk_regression(theirs, t, p), abs=TOL)
    np.testing.assert_allclose(
        ours(t, p, multioutput="raw_values"),
        _sk_regression(theirs, t, p, "raw_values"),
        rtol=0,
        atol=TOL,
    )


def test_regression_accepts_1d_against_column():
    t = np.array([1.0, 2.0, 4.0])
    p = np.array([[1.5], [2.0], [3.0]])
    assert M.mse(t, p) == pytest.approx(skm.mean_squared_error(t, p), abs=TOL)


@pytest.mark.parametrize(
    "pred",
    [[3.0, 3.0, 3.0], [3.0, 2.0, 3.0]],
    ids=["perfect", "imperfect"],
)
def test_r2_constant_target_matches_sklearn(pred):
    t = [3.0, 3.0, 3.0]
    assert M.r2(t, pred) == skm.r2_score(t, pred)


def test_r2_single_sample_is_nan():
    assert math.isnan(M.r2([1.0], [2.0]))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: M.accuracy([0, 1], [0]), "same number of samples"),
        (lambda: M.accuracy([], []), "at least one sample"),
        (lambda: M.precision([0, 1], [0, 1], average="samples"), "average must be"),
        (lambda: M.f1_score([0, 1, 2], [0, 1, 2], average="binary"), "at most two"),
        (lambda: M.recall(["a", "b"], ["a", "a"], average="binary"), "pos_label=1"),
        (lambda: M.accuracy([0, 5], [0, 1], n_classes=3), r"y_true must hold .*got 5"),
        (lambda: M.log_loss([0, 1], [[0.5, 0.5, 0.0]] * 2, n_classes=2), "3 columns"),
        (lambda: M.log_loss([0, 3], [[0.5, 0.5]] * 2), r"0\.\.1"),
        (lambda: M.log_loss([0, 1], [[1.5, -0.5]] * 2), r"\[0, 1\]"),
        (lambda: M.log_loss([0, 1], [[np.nan, 1.0]] * 2), "finite"),
        (lambda: M.mse([1.0, 2.0], [1.0, 2.0, 3.0]), "same shape"),
        (lambda: M.mse([1.0, np.inf], [1.0, 2.0]), "finite"),
        (lambda: M.mse([1.0], [1.0], multioutput="variance"), "multioutput"),
    ],
    ids=[
        "length",
        "empty",
        "average",
        "binary-multiclass",
        "binary-pos-label",
        "label-range",
        "proba-columns",
        "log-loss-label",
        "proba-range",
        "proba-nan",
        "reg-shape",
        "reg-inf",
        "multioutput",
    ],
)
def test_bad_inputs_raise_model_error(call, match):
    with pytest.raises(ModelError, match=match):
        call()


# -- registry ----------------------------------------------------------------------


def test_registry_tasks_and_defaults():
    assert M.DEFAULT_METRICS == {
        "classification": ["accuracy", "precision", "recall", "f1_score", "log_loss"],
        "regression": ["mse", "rmse", "mae", "r2"],
    }
    for task, names in M.DEFAULT_METRICS.items():
        assert all(M.METRICS[n].task == task for n in names)
    assert M.METRICS["log_loss"].needs_proba
    assert M.METRICS["roc_auc"].needs_proba
    assert not M.METRICS["accuracy"].needs_proba
    assert M.METRICS["mse"].greater_is_better is False
    for base in ("precision", "recall", "f1_score"):
        for average in ("macro", "micro", "weighted"):
            assert f"{base}_{average}" in M.METRICS


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_registered_variants_use_their_average(average, rng):
    t, p, _ = _case("imbalanced", rng)
    out = M.compute_metrics(
        [f"precision_{average}", f"f1_score_{average}"], "classification", t, p
    )
    assert out[f"precision_{average}"] == pytest.approx(
        skm.precision_score(t, p, average=average, zero_division=0), abs=TOL
    )
    assert out[f"f1_score_{average}"] == pytest.approx(
        skm.f1_score(t, p, average=average, zero_division=0), abs=TOL
    )


def test_compute_metrics_defaults_classification_is_json_ready(rng):
    t = rng.integers(0, 3, 50)
    proba = _softmax(rng.normal(size=(50, 3)))
    out = M.compute_metrics(None, "classification", t, proba=proba)
    assert list(out) == M.DEFAULT_METRICS["classification"]
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(t, proba.argmax(1)))
    assert out["log_loss"] == pytest.approx(skm.log_loss(t, proba, labels=[0, 1, 2]))
    assert all(type(v) is float for v in out.values())
    json.dumps(out, allow_nan=False)


def test_compute_metrics_defaults_skip_proba_metrics_without_proba(rng):
    t, p, _ = _case("multiclass", rng)
    out = M.compute_metrics(None, "classification", t, p)
    assert list(out) == ["accuracy", "precision", "recall", "f1_score"]


def test_compute_metrics_named_proba_metric_without_proba_raises(rng):
    t, p, _ = _case("binary", rng)
    with pytest.raises(ModelError, match="'roc_auc' needs class probabilities"):
        M.compute_metrics(["roc_auc"], "classification", t, p)


def test_compute_metrics_confusion_matrix_is_nested_list(rng):
    t, p, _ = _case("absent_in_pred", rng)
    out = M.compute_metrics(["confusion_matrix", "accuracy"], "classification", t, p)
    assert out["confusion_matrix"] == skm.confusion_matrix(t, p).tolist()
    assert all(type(x) is int for row in out["confusion_matrix"] for x in row)
    json.dumps(out)


def test_compute_metrics_regression(rng):
    t = rng.normal(size=(30, 2))
    p = t + 0.1 * rng.normal(size=(30, 2))
    out = M.compute_metrics(None, "regression", t, p)
    assert list(out) == ["mse", "rmse", "mae", "r2"]
    assert out["r2"] == pytest.approx(skm.r2_score(t, p), abs=TOL)
    assert all(type(v) is float for v in out.values())


@pytest.mark.parametrize(
    ("names", "task", "match"),
    [
        (["f1"], "classification", r"metric 'f1' \(did you mean 'f1_score'\?\)"),
        (["mse"], "classification", "'mse' is a regression metric"),
        (["accuracy"], "regression", "'accuracy' is a classification metric"),
        ([], "regression", "no metric named"),
        (["accuracy"], "clustering", "task must be one of"),
    ],
    ids=["unknown", "regression-for-classification", "classification-for-regression",
         "empty", "bad-task"],
)  # fmt: skip
def test_validate_metric_names_errors(names, task, match):
    with pytest.raises(ConfigError, match=match):
        M.validate_metric_names(names, task)


def test_validate_metric_names_lists_valid_ones_and_dedupes():
    with pytest.raises(ConfigError) as info:
        M.validate_metric_names(["bogus", "r2"], "classification")
    message = str(info.value)
    assert "unknown metric 'bogus'" in message and "'r2' is a regression" in message
    assert "Valid classification metrics: accuracy, precision" in message
    assert isinstance(info.value, ValueError)
    assert M.validate_metric_names(["r2", "mse", "r2"], "regression") == ["r2", "mse"]
    assert M.validate_metric_names("mae", "regression") == ["mae"]
