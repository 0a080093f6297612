from __future__ import annotations

import numpy as np
import pytest

from mlx import optim
from mlx.config import TrainingConfig
from mlx.errors import CheckpointError, ConfigError, NumericalWarning
from mlx.schedules import step_decay

# (id, our factory kwargs, torch class name, torch kwargs)
CASES = [
    ("sgd", "sgd", {"learning_rate": 0.1}, "SGD", {"lr": 0.1}),
    (
        "sgd-momentum",
        "sgd",
        {"learning_rate": 0.1, "momentum": 0.9, "dampening": 0.1},
        "SGD",
        {"lr": 0.1, "momentum": 0.9, "dampening": 0.1},
    ),
    (
        "sgd-nesterov",
        "sgd",
        {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
        "SGD",
        {"lr": 0.1, "momentum": 0.9, "nesterov": True},
    ),
    (
        "sgd-weight-decay",
        "sgd",
        {"learning_rate": 0.1, "weight_decay": 0.01},
        "SGD",
        {"lr": 0.1, "weight_decay": 0.01},
    ),
    ("adam", "adam", {"learning_rate": 0.01}, "Adam", {"lr": 0.01}),
    (
        "adam-weight-decay",
        "adam",
        {"learning_rate": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1},
        "Adam",
        {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1},
    ),
    ("adamw", "adamw", {"learning_rate": 0.01}, "AdamW", {"lr": 0.01}),
    ("rmsprop", "rmsprop", {"learning_rate": 0.01}, "RMSprop", {"lr": 0.01}),
    (
        "rmsprop-momentum",
        "rmsprop",
        {"learning_rate": 0.01, "momentum": 0.9, "weight_decay": 0.01},
        "RMSprop",
        {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.01},
    ),
    (
        "rmsprop-centered",
        "rmsprop",
        {"learning_rate": 0.01, "centered": True, "alpha": 0.9},
        "RMSprop",
        {"lr": 0.01, "centered": True, "alpha": 0.9},
    ),
]
IDS = [case[0] for case in CASES]


def _build(name, kwargs):
    kwargs = dict(kwargs)
    lr = kwargs.pop("learning_rate")
    return getattr(optim, name)(lr, **kwargs)


def _problem(rng, shape=(6, 5), steps=100):
    params = {"w": rng.standard_normal(shape), "b": rng.standard_normal(7)}
    grads = [
        {k: rng.standard_normal(v.shape) for k, v in params.items()}
        for _ in range(steps)
    ]
    return params, grads


@pytest.mark.parametrize(("cid", "name", "kwargs", "tname", "tkwargs"), CASES, ids=IDS)
def test_100_steps_match_torch(rng, cid, name, kwargs, tname, tkwargs):
    torch = pytest.importorskip("torch")
    params, grads = _problem(rng)
    tparams = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in params.items()}
    topt = getattr(torch.optim, tname)(list(tparams.values()), foreach=False, **tkwargs)
    opt = _build(name, kwargs)
    state = opt.init(params)
    for step_grads in grads:
        for k, p in tparams.items():
            p.grad = torch.tensor(step_grads[k])
        topt.step()
        params, state = opt.update(step_grads, state, params)
    assert state.count == 100
    for k, p in tparams.items():
        np.testing.assert_allclose(
            params[k], p.detach().numpy(), rtol=1e-12, atol=1e-14
        )


@pytest.mark.parametrize(("cid", "name", "kwargs", "tname", "tkwargs"), CASES, ids=IDS)
def test_update_is_pure_and_inplace_agrees(rng, cid, name, kwargs, tname, tkwargs):
    # "w" is larger than one piece, so the in-place rule works piece by piece
    params, grads = _problem(rng, shape=(260, 260), steps=1)
    opt = _build(name, kwargs)
    state = opt.init(params)
    before = {k: v.copy() for k, v in params.items()}
    new_params, new_state = opt.update(grads[0], state, params)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])
    assert state.count == 0 and new_state.count == 1
    inplace_params, inplace_state = opt.update_inplace(
        grads[0], opt.init(params), params
    )
    for k in params:
        np.testing.assert_array_equal(inplace_params[k], new_params[k])
    # a Fortran-ordered copy takes the whole-array path: same numbers
    fortran = {k: np.asfortranarray(v) for k, v in before.items()}
    whole, _ = opt.update(grads[0], opt.init(fortran), fortran)
    for k in params:
        np.testing.assert_array_equal(whole[k], new_params[k])


@pytest.mark.parametrize(("cid", "name", "kwargs", "tname", "tkwargs"), CASES, ids=IDS)
def test_converges_on_a_quadratic(cid, name, kwargs, tname, tkwargs):
    # f(x) = 0.5 * sum(a * (x - target)^2), minimum at target
    a = np.array([1.0, 3.0, 0.5])
    target = np.array([1.0, -2.0, 0.5])
    # a decaying rate lets the adaptive methods settle instead of hovering
    lr = kwargs["learning_rate"] * (5 if name.startswith("adam") else 1)
    kwargs = {**kwargs, "learning_rate": step_decay(lr, 500, 0.5)}
    opt = _build(name, kwargs)
    params = {"x": np.zeros(3)}
    state = opt.init(params)
    for _ in range(3000):
        params, state = opt.update({"x": a * (params["x"] - target)}, state, params)
    decay = kwargs.get("weight_decay", 0.0)
    # L2 weight decay moves the minimum to a * target / (a + decay); AdamW to near it
    expected = a * target / (a + decay) if name != "adamw" else target
    np.testing.assert_allclose(
        params["x"], expected, atol=0.05 if name == "adamw" else 1e-3
    )


def test_schedule_is_evaluated_at_the_step_count():
    opt = optim.sgd(step_decay(1.0, 2, 0.5))
    params = {"x": np.zeros(1)}
    state = opt.init(params)
    moves = []
    for _ in range(5):
        new, state = opt.update({"x": np.ones(1)}, state, params)
        moves.append(float(params["x"][0] - new["x"][0]))
        params = new
    assert moves == [1.0, 1.0, 0.5, 0.5, 0.25]


def test_get_optimizer_defaults_and_types():
    opt = optim.get_optimizer({})
    assert opt.config["optimizer_type"] == "sgd" and opt.config["learning_rate"] == 0.01
    for name in ("sgd", "adam", "adamw", "rmsprop"):
        assert (
            optim.get_optimizer({"optimizer_type": name}).config["optimizer_type"]
            == name
        )
    assert (
        optim.get_optimizer({"optimizer_type": "adamw"}).config["weight_decay"] == 0.01
    )


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"optimizer_type": "adm"}, "Did you mean 'adam'"),
        ({"learning_rate": -1}, "learning_rate"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"momentum": 1.5}, "momentum"),
        ({"optimizer_type": "adam", "betas": [0.9]}, "betas"),
        ({"nesterov": True}, "Nesterov"),
        ({"optimizer_type": "rmsprop", "centered": "yes"}, "centered"),
    ],
    ids=[
        "unknown-type",
        "negative-lr",
        "string-lr",
        "momentum",
        "betas",
        "nesterov",
        "centered",
    ],
)
def test_get_optimizer_rejects_bad_config(config, match):
    with pytest.raises(ConfigError, match=match):
        optim.get_optimizer(config)


def test_large_learning_rate_warns():
    with pytest.warns(NumericalWarning, match="above 1.0"):
        optim.get_optimizer({"learning_rate": 2.0})


def test_resolve_precedence():
    training = TrainingConfig(
        optimizer="adam",
        learning_rate=0.002,
        params={"weight_decay": 0.1, "betas": (0.8, 0.9), "epochs_unrelated": 3},
    )
    assert optim.resolve_optimizer_config(training, {}) == {
        "optimizer_type": "adam",
        "learning_rate": 0.002,
        "weight_decay": 0.1,
        "betas": [0.8, 0.9],
    }
    resolved = optim.resolve_optimizer_config(
        training, {"optimizer_config": {"optimizer_type": "sgd", "momentum": 0.5}}
    )
    assert resolved["optimizer_type"] == "sgd" and resolved["momentum"] == 0.5
    assert resolved["learning_rate"] == 0.002
    assert optim.resolve_optimizer_config(None, {}) == {
        "optimizer_type": "sgd",
        "learning_rate": 0.01,
    }


def test_state_round_trips_through_tensors(rng):
    params = {"w": rng.standard_normal((3, 2)).astype(np.float32)}
    opt = optim.adam(0.1)
    _, state = opt.update({"w": np.ones((3, 2), np.float32)}, opt.init(params), params)
    tensors, metadata = optim.state_to_tensors(state)
    assert sorted(tensors) == ["w.exp_avg", "w.exp_avg_sq"]
    assert metadata == {"state": "AdamState", "count": "1"}
    restored = optim.state_from_tensors(opt.init(params), tensors, metadata)
    assert restored.count == 1 and restored.exp_avg["w"].dtype == np.float32
    np.testing.assert_array_equal(restored.exp_avg_sq["w"], state.exp_avg_sq["w"])
    with pytest.raises(CheckpointError, match="SGDState"):
        optim.state_from_tensors(optim.sgd(0.1).init(params), tensors, metadata)
