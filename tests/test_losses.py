from __future__ import annotations

import numpy as np
import pytest

from mlx import losses


def _numeric_grad(f, x, h=1e-6):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        up = f(x)
        x[idx] = old - h
        down = f(x)
        x[idx] = old
        grad[idx] = (up - down) / (2 * h)
    return grad


def _cases(rng):
    z = rng.standard_normal((6, 3))
    return [
        ("mse", losses.mse, z, rng.standard_normal((6, 3))),
        ("bce", losses.binary_cross_entropy, z, rng.uniform(0, 1, (6, 3))),
        ("softmax-int", losses.softmax_cross_entropy, z, rng.integers(0, 3, 6)),
        (
            "softmax-onehot",
            losses.softmax_cross_entropy,
            z,
            np.eye(3)[rng.integers(0, 3, 6)],
        ),
    ]


@pytest.mark.parametrize(
    "case", range(4), ids=["mse", "bce", "softmax-int", "softmax-onehot"]
)
def test_backward_matches_finite_differences(rng, case):
    _, loss, z, target = _cases(rng)[case]
    numeric = _numeric_grad(lambda x: loss.forward(x, target), z.copy())
    analytic = loss.backward(z, target)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    "case", range(4), ids=["mse", "bce", "softmax-int", "softmax-onehot"]
)
def test_matches_torch_losses(rng, case):
    torch = pytest.importorskip("torch")
    name, loss, z, target = _cases(rng)[case]
    zt = torch.tensor(z, requires_grad=True)
    tt = torch.tensor(target)
    if name == "mse":
        value = torch.nn.functional.mse_loss(zt, tt)
    elif name == "bce":
        value = torch.nn.functional.binary_cross_entropy_with_logits(zt, tt)
    else:
        value = torch.nn.functional.cross_entropy(zt, tt)
    value.backward()
    got, grad = loss.value_and_grad(z, target)
    assert got == pytest.approx(value.item(), rel=1e-12)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_losses_are_stable_for_huge_logits():
    z = np.array([[1000.0, -1000.0, 0.0]])
    loss, grad = losses.softmax_cross_entropy.value_and_grad(z, np.array([1]))
    assert loss == pytest.approx(2000.0)
    assert np.isfinite(grad).all()
    loss, grad = losses.binary_cross_entropy.value_and_grad(
        z, np.array([[0.0, 1.0, 0.5]])
    )
    assert np.isfinite(loss) and np.isfinite(grad).all()


def test_backward_writes_into_out_buffer(rng):
    z = rng.standard_normal((4, 2))
    out = np.empty_like(z)
    result = losses.mse.backward(z, np.zeros_like(z), out=out)
    assert result is out
    np.testing.assert_allclose(out, 2 * z / z.size)


def test_float32_stays_float32(rng):
    z = rng.standard_normal((4, 3)).astype(np.float32)
    _, grad = losses.softmax_cross_entropy.value_and_grad(z, np.array([0, 1, 2, 0]))
    assert grad.dtype == np.float32
