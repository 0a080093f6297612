from __future__ import annotations

import math

import pytest

from mlx.errors import ConfigError
from mlx.schedules import constant, cosine, get_schedule, linear_warmup, step_decay


def test_constant():
    assert [constant(0.1)(s) for s in (0, 5, 1000)] == [0.1, 0.1, 0.1]


def test_step_decay_matches_torch_steplr():
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.5)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    ours = step_decay(0.5, 3, 0.5)
    for step in range(12):
        assert ours(step) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
        opt.step()
        sched.step()


def test_cosine_matches_torch_cosine_annealing():
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.01)
    ours = cosine(0.1, 10, final_lr=0.01)
    for step in range(10):
        assert ours(step) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        sched.step()
    assert ours(10) == pytest.approx(0.01) and ours(50) == pytest.approx(0.01)


def test_linear_warmup_ramps_then_follows():
    schedule = linear_warmup(constant(1.0), 4)
    assert [schedule(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, [0.1] * 6),
        (
            {"lr_schedule": "step", "step_size": 1, "gamma": 0.5},
            [0.1, 0.1, 0.05, 0.05, 0.025, 0.025],
        ),
        (
            {"lr_schedule": "cosine"},
            [0.1 * 0.5 * (1 + math.cos(math.pi * s / 6)) for s in range(6)],
        ),
        ({"warmup_epochs": 1}, [0.05, 0.1, 0.1, 0.1, 0.1, 0.1]),
    ],
    ids=["constant", "step", "cosine", "warmup"],
)
def test_get_schedule_converts_epochs_to_steps(params, expected):
    schedule = get_schedule(params, 0.1, steps_per_epoch=2, total_epochs=3)
    assert [schedule(s) for s in range(6)] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"lr_schedule": "exp"}, "lr_schedule"),
        ({"lr_schedule": "step", "step_size": 0}, "step_size"),
    ],
    ids=["unknown", "bad-step-size"],
)
def test_get_schedule_rejects_bad_params(params, match):
    with pytest.raises(ConfigError, match=match):
        get_schedule(params, 0.1, 2, 3)
