from __future__ import annotations

import itertools

import numpy as np
import pytest

from mlx.errors import ModelError, NotTrainedError, NumericalWarning
from mlx.models import MLP
from mlx.optim import Optimizer

COMBOS = list(
    itertools.product(["relu", "tanh", "sigmoid"], [None, "sigmoid", "softmax"])
)
COMBO_IDS = [f"{a}-{o}" for a, o in COMBOS]


class _Recorder:
    """An optimizer that records the gradients and leaves the parameters alone."""

    def __init__(self):
        self.grads = None
        self.optimizer = Optimizer(init=lambda params: (), update=self._update)

    def _update(self, grads, state, params):
        self.grads = {k: v.copy() for k, v in grads.items()}
        return params, state


def _model(activation, output, sizes=(4, 5, 3), dtype="float64"):
    model = MLP(
        layer_sizes=list(sizes),
        activation=activation,
        output_activation=output,
        seed=1,
        gradient_clip=None,
        weight_clip=None,
        activation_clip=None,
        dtype=dtype,
    )
    recorder = _Recorder()
    model.set_optimizer(recorder.optimizer)
    return model, recorder


def _data(rng, output, n=6, k=3):
    X = rng.standard_normal((n, 4))
    if output is None:
        y = rng.standard_normal((n, k))
    elif output == "sigmoid":
        y = rng.integers(0, 2, (n, k)).astype(float)
    else:
        y = rng.integers(0, k, n)
    return X, y


@pytest.mark.parametrize(("activation", "output"), COMBOS, ids=COMBO_IDS)
def test_gradients_match_finite_differences(rng, activation, output):
    model, recorder = _model(activation, output)
    X, y = _data(rng, output)
    model.train_step(X, y)
    analytic = recorder.grads
    h = 1e-6
    for name, param in model.params_.items():
        numeric = np.zeros_like(param)
        for idx in np.ndindex(param.shape):
            old = param[idx]
            param[idx] = old + h
            up = model.train_step(X, y)["loss"]
            param[idx] = old - h
            down = model.train_step(X, y)["loss"]
            param[idx] = old
            numeric[idx] = (up - down) / (2 * h)
        error = np.abs(analytic[name] - numeric).max() / max(
            np.abs(numeric).max(), 1e-8
        )
        assert error < 1e-6, (name, error)


@pytest.mark.parametrize(("activation", "output"), COMBOS, ids=COMBO_IDS)
def test_gradients_match_torch_autograd(rng, activation, output):
    torch = pytest.importorskip("torch")
    model, recorder = _model(activation, output, sizes=(4, 6, 5, 3))
    X, y = _data(rng, output)
    loss = model.train_step(X, y)["loss"]

    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in model.params_.items()}
    act = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[activation]
    a = torch.tensor(X)
    for i in range(3):
        a = a @ tparams[f"layers.{i}.weight"].T + tparams[f"layers.{i}.bias"]
        if i < 2:
            a = act(a)
    if output is None:
        tloss = torch.nn.functional.mse_loss(a, torch.tensor(y))
    elif output == "sigmoid":
        tloss = torch.nn.functional.binary_cross_entropy_with_logits(a, torch.tensor(y))
    else:
        tloss = torch.nn.functional.cross_entropy(a, torch.tensor(y))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-12)
    for name, tensor in tparams.items():
        np.testing.assert_allclose(
            recorder.grads[name], tensor.grad.numpy(), rtol=1e-9, atol=1e-13
        )


def test_digits_accuracy_through_public_api():
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.load_digits(return_X_y=True)
    X = X / 16.0
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    train, test = order[:1400], order[1400:]
    model = MLP(
        layer_sizes=[64, 64, 10],
        output_activation="softmax",
        seed=0,
        optimizer_config={"optimizer_type": "adam", "learning_rate": 0.003},
    )
    for _ in range(8):
        batch_order = rng.permutation(train)
        for start in range(0, len(batch_order), 32):
            batch = batch_order[start : start + 32]
            model.train_step(X[batch], y[batch])
    probs = model.predict(X[test])
    assert probs.shape == (len(test), 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert (probs.argmax(axis=1) == y[test]).mean() >= 0.95


def test_same_seed_same_weights_bit_for_bit(rng):
    X, y = _data(rng, "softmax", n=40)
    weights = []
    for _ in range(2):
        model = MLP(
            layer_sizes=[4, 8, 3],
            output_activation="softmax",
            seed=7,
            optimizer_config={"optimizer_type": "adam", "learning_rate": 0.01},
        )
        for start in range(0, 40, 8):
            model.train_step(X[start : start + 8], y[start : start + 8])
        weights.append({k: v.copy() for k, v in model.params_.items()})
    for name in weights[0]:
        np.testing.assert_array_equal(weights[0][name], weights[1][name])
    other = MLP(layer_sizes=[4, 8, 3], seed=8)
    assert not np.array_equal(
        other.params_["layers.0.weight"], weights[0]["layers.0.weight"]
    )


def test_initialization_scales():
    relu = MLP(layer_sizes=[400, 300, 10], seed=0)
    assert relu.params_["layers.0.weight"].std() == pytest.approx(
        np.sqrt(2 / 400), rel=0.02
    )
    tanh = MLP(layer_sizes=[400, 300, 10], activation="tanh", seed=0)
    bound = np.sqrt(6 / 700)
    assert np.abs(tanh.params_["layers.0.weight"]).max() <= bound
    assert tanh.params_["layers.0.weight"].std() == pytest.approx(
        bound / np.sqrt(3), rel=0.02
    )
    assert not relu.params_["layers.0.bias"].any()


def test_float32_end_to_end(rng):
    X, y = _data(rng, None, n=16, k=1)
    model = MLP(layer_sizes=[4, 5, 1], seed=0, dtype="float32")
    reference = MLP(layer_sizes=[4, 5, 1], seed=0)
    for name, value in model.params_.items():
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value, reference.params_[name].astype(np.float32))
    model.train_step(X, y[:, 0])
    assert model.predict(X).dtype == np.float32 and model.predict(X).shape == (16,)
    assert all(v.dtype == np.float32 for v in model.params_.values())
    assert all(
        v.dtype == np.float32 for v in model.optimizer_state_.momentum_buffer.values()
    ) or (model.optimizer_state_.momentum_buffer == {})


def test_predictions_shapes_and_tasks(rng):
    X = rng.standard_normal((5, 4))
    for output, k, shape, task in [
        (None, 1, (5,), "regression"),
        (None, 2, (5, 2), "regression"),
        ("sigmoid", 1, (5,), "classification"),
        ("softmax", 3, (5, 3), "classification"),
    ]:
        model = MLP(layer_sizes=[4, k], output_activation=output, seed=0)
        model.is_trained = True
        assert model.predict(X).shape == shape and model.task == task


def test_one_hot_labels_equal_integer_labels(rng):
    X, y = _data(rng, "softmax")
    a = MLP(layer_sizes=[4, 3], output_activation="softmax", seed=0)
    b = MLP(layer_sizes=[4, 3], output_activation="softmax", seed=0)
    assert a.train_step(X, y)["loss"] == b.train_step(X, np.eye(3)[y])["loss"]
    np.testing.assert_array_equal(
        a.params_["layers.0.weight"], b.params_["layers.0.weight"]
    )


def test_gradient_and_weight_clipping(rng):
    X = rng.standard_normal((8, 4)) * 1e3
    y = rng.standard_normal(8) * 1e3
    model = MLP(
        layer_sizes=[4, 6, 1],
        seed=0,
        gradient_clip=1.0,
        weight_clip=0.5,
        optimizer_config={"learning_rate": 1.0},
    )
    model.train_step(X, y)
    assert all(np.abs(v).max() <= 0.5 for v in model.params_.values())
    # with lr 1.0 and clipped gradients, no parameter moved by more than 1.0
    fresh = MLP(
        layer_sizes=[4, 6, 1],
        seed=0,
        gradient_clip=1.0,
        weight_clip=None,
        optimizer_config={"learning_rate": 1.0},
    )
    before = {k: v.copy() for k, v in fresh.params_.items()}
    fresh.train_step(X, y)
    assert all(
        np.abs(fresh.params_[k] - before[k]).max() <= 1.0 + 1e-12 for k in before
    )


def test_activation_clip_keeps_saturating_units_finite():
    model = MLP(
        layer_sizes=[2, 3, 1], activation="sigmoid", seed=0, activation_clip=5.0
    )
    model.is_trained = True
    X = np.array([[1e6, -1e6]])
    hidden = 1 / (1 + np.exp(-np.clip(X @ model.params_["layers.0.weight"].T, -5, 5)))
    expected = hidden @ model.params_["layers.1.weight"].T
    np.testing.assert_allclose(model.predict(X), expected[:, 0])


def test_large_learning_rate_warns():
    with pytest.warns(NumericalWarning, match="above 1.0"):
        MLP(layer_sizes=[2, 1], optimizer_config={"learning_rate": 5.0})


def test_not_trained_yet_but_saveable(tmp_path):
    model = MLP(layer_sizes=[3, 2, 1], seed=0)
    assert not model.is_trained and model.n_parameters == 3 * 2 + 2 + 2 + 1
    with pytest.raises(NotTrainedError, match="not trained yet"):
        model.predict(np.ones((1, 3)))
    model.save(tmp_path / "fresh")
    assert (tmp_path / "fresh" / "model.safetensors").is_file()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "'layer_sizes' parameter of MLP must be a list"),
        ({"layer_sizes": [3]}, "at least two"),
        ({"layer_sizes": [3, 0]}, "integers >= 1"),
        ({"layer_sizes": [3, 1], "activation": "gelu"}, "'activation'.*got 'gelu'"),
        ({"layer_sizes": [3, 1], "output_activation": "relu"}, "'output_activation'"),
        ({"layer_sizes": [3, 1], "output_activation": "softmax"}, "at least 2 outputs"),
        ({"layer_sizes": [3, 1], "gradient_clip": -1}, "'gradient_clip'.*> 0 or None"),
        ({"layer_sizes": [3, 1], "dtype": "float16"}, "'dtype'"),
        ({"layer_sizes": [3, 1], "seed": "x"}, "'seed'"),
    ],
    ids=[
        "missing-sizes",
        "one-size",
        "zero-size",
        "activation",
        "output",
        "softmax-1",
        "clip",
        "dtype",
        "seed",
    ],
)
def test_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ModelError, match=match):
        MLP(**kwargs)


@pytest.mark.parametrize(
    ("output", "k", "X", "y", "match"),
    [
        (None, 1, np.ones((3, 5)), np.ones(3), "expects X with 4 features; got 5"),
        (None, 1, np.ones((2, 3, 4)), np.ones(2), "2-D array"),
        (None, 1, np.ones((0, 4)), np.ones(0), "non-empty"),
        (None, 1, np.full((3, 4), np.inf), np.ones(3), "finite values in X"),
        (None, 2, np.ones((3, 4)), np.ones(3), r"y of shape \(n_samples, 2\)"),
        ("sigmoid", 1, np.ones((3, 4)), np.array([0, 1, 2]), r"labels in \[0, 1\]"),
        (
            "softmax",
            3,
            np.ones((3, 4)),
            np.array([0, 1, 3]),
            r"labels in \[0, 2\]; got",
        ),
        ("softmax", 3, np.ones((3, 4)), np.array([0, 1, -1]), r"labels in \[0, 2\]"),
        ("softmax", 3, np.ones((3, 4)), np.array([0.5, 1, 2]), "integer labels"),
        ("softmax", 3, np.ones((3, 4)), np.full((3, 3), 1 / 3), "one-hot"),
        ("softmax", 3, np.ones((3, 4)), np.ones(2, int), "one row per sample"),
    ],
    ids=[
        "features",
        "3d",
        "empty",
        "inf",
        "y-shape",
        "bce-range",
        "label-high",
        "label-negative",
        "label-float",
        "not-one-hot",
        "n-mismatch",
    ],
)
def test_rejects_bad_inputs(output, k, X, y, match):
    model = MLP(layer_sizes=[4, k], output_activation=output, seed=0)
    with pytest.raises(ModelError, match=match):
        model.train_step(X, y)


@pytest.mark.parametrize(
    ("optimizer_type", "extra", "torch_name"),
    [
        ("sgd", {}, "SGD"),
        ("sgd", {"momentum": 0.9, "nesterov": True}, "SGD"),
        ("adam", {}, "Adam"),
        ("adamw", {"weight_decay": 0.05}, "AdamW"),
        ("rmsprop", {"momentum": 0.5, "centered": True}, "RMSprop"),
    ],
    ids=["sgd-plain", "sgd-nesterov", "adam", "adamw", "rmsprop-centered"],
)
def test_training_matches_torch_step_for_step(rng, optimizer_type, extra, torch_name):
    # the whole train_step (forward, backward, optimizer state) against torch.optim
    torch = pytest.importorskip("torch")
    model = MLP(
        layer_sizes=[6, 8, 5, 3],
        activation="tanh",
        output_activation="softmax",
        seed=3,
        gradient_clip=None,
        weight_clip=None,
        activation_clip=None,
        optimizer_config={"optimizer_type": optimizer_type, "learning_rate": 0.05,
                          **extra},
    )  # fmt: skip
    tparams = {
        k: torch.tensor(v.copy(), requires_grad=True) for k, v in model.params_.items()
    }
    options = {k: v for k, v in extra.items()}
    toptim = getattr(torch.optim, torch_name)(
        list(tparams.values()), lr=0.05, foreach=False, **options
    )
    for _ in range(25):
        X = rng.standard_normal((7, 6))
        y = rng.integers(0, 3, 7)
        model.train_step(X, y)
        toptim.zero_grad()
        a = torch.tensor(X)
        for i in range(3):
            a = a @ tparams[f"layers.{i}.weight"].T + tparams[f"layers.{i}.bias"]
            if i < 2:
                a = torch.tanh(a)
        torch.nn.functional.cross_entropy(a, torch.tensor(y)).backward()
        toptim.step()
    for name, tensor in tparams.items():
        np.testing.assert_allclose(
            model.params_[name], tensor.detach().numpy(), rtol=1e-10, atol=1e-12
        )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_non_finite_input_is_refused_before_any_update(bad, dtype):
    # the check looks at the first layer's output first; a -inf input there is
    # -inf or NaN, never a finite value that ReLU would turn into a plain 0
    model = MLP(layer_sizes=[3, 4, 2], output_activation="softmax", seed=0, dtype=dtype)
    before = model._flat.copy()
    X = np.ones((5, 3))
    X[2, 1] = bad
    with pytest.raises(ModelError, match="finite values in X"):
        model.train_step(X, np.array([0, 1, 0, 1, 0]))
    assert np.array_equal(model._flat, before)


def test_huge_but_finite_input_is_not_mistaken_for_a_bad_one():
    # the first layer's output overflows to inf: X itself is checked and passes
    model = MLP(layer_sizes=[2, 3, 1], seed=0, gradient_clip=None, weight_clip=None)
    X = np.full((4, 2), 1e308)
    with np.errstate(all="ignore"):  # later layers overflow too
        loss = model.train_step(X, np.zeros(4))["loss"]
    assert not np.isfinite(loss)


def test_plain_sgd_one_pass_update_equals_the_general_path(rng):
    # plain SGD folds the learning rate into the gradients and updates in one
    # subtraction; with a schedule that reaches 0 and both clips active it must
    # train like the optimizer's own update rule
    from mlx.optim import sgd

    def schedule(step):
        return max(0.0, 0.3 - 0.05 * step)

    def make(optimizer):
        model = MLP(
            layer_sizes=[4, 6, 3],
            output_activation="softmax",
            seed=0,
            gradient_clip=0.05,
            weight_clip=0.4,
        )
        model.set_optimizer(optimizer)
        return model

    fast = make(sgd(schedule))
    general = make(sgd(schedule)._replace(plain_sgd_lr=None))
    assert fast.optimizer_.plain_sgd_lr is not None
    for _ in range(10):
        X = rng.standard_normal((8, 4)) * 3
        y = rng.integers(0, 3, 8)
        loss = fast.train_step(X, y)["loss"]
        assert loss == pytest.approx(general.train_step(X, y)["loss"], rel=1e-12)
        assert np.abs(fast._grad_flat).max() <= 0.05 * schedule(0) + 1e-15
    for name, value in general.params_.items():
        np.testing.assert_allclose(fast.params_[name], value, rtol=1e-12, atol=1e-15)
    assert fast.optimizer_state_.count == general.optimizer_state_.count == 10
    assert max(np.abs(v).max() for v in fast.params_.values()) == 0.4  # clipped


def test_only_plain_sgd_takes_the_one_pass_update():
    from mlx.optim import get_optimizer

    def plain(config):
        return get_optimizer(config).plain_sgd_lr is not None

    assert plain({"optimizer_type": "sgd", "learning_rate": 0.1})
    assert not plain({"optimizer_type": "sgd", "learning_rate": 0.1, "momentum": 0.9})
    assert not plain(
        {"optimizer_type": "sgd", "learning_rate": 0.1, "weight_decay": 1e-4}
    )
    assert not plain({"optimizer_type": "adam", "learning_rate": 0.1})
