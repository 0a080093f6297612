"""Loss functions with their gradients, averaged like PyTorch's default reduction.

Each loss is a :class:`Loss` with three pure functions over NumPy arrays:

- ``forward(output, target) -> float``: the loss value;
- ``backward(output, target, out=None) -> ndarray``: the gradient with respect to
  ``output`` (the model's raw output: predictions for :data:`mse`, logits for the two
  cross-entropies), same shape and dtype as ``output``;
- ``value_and_grad(output, target, out=None) -> (float, ndarray)``: both at once,
  sharing the work (the models call this one).

``out`` lets a caller pass a preallocated gradient buffer, written in place.

Reductions match PyTorch: :data:`mse` and :data:`binary_cross_entropy` average over
every element (``MSELoss``, ``BCEWithLogitsLoss``), :data:`softmax_cross_entropy`
averages over the samples (``CrossEntropyLoss``).

:func:`cross_entropy` is the loss of a trained classifier as a number (the harness's
``val_loss``): the same formula and reduction as the training losses, from the
logits, in float64, with log-sum-exp and no clipping. See ``docs/design/losses.md``
for how it relates to :func:`mlx.metrics.log_loss` (scikit-learn's, which clips).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

__all__ = [
    "Loss",
    "binary_cross_entropy",
    "cross_entropy",
    "mse",
    "probability_cross_entropy",
    "sigmoid",
    "softmax",
    "softmax_cross_entropy",
]


class Loss(NamedTuple):
    """A loss: its name, value, gradient, and both at once."""

    name: str
    forward: Callable[[np.ndarray, np.ndarray], float]
    backward: Callable[..., np.ndarray]
    value_and_grad: Callable[..., tuple[float, np.ndarray]]


def _loss(name: str, value_and_grad: Callable[..., tuple[float, np.ndarray]]) -> Loss:
    """A :class:`Loss` whose forward and backward are halves of ``value_and_grad``."""

    def forward(output: np.ndarray, target: np.ndarray) -> float:
        return value_and_grad(output, target)[0]

    def backward(
        output: np.ndarray, target: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        return value_and_grad(output, target, out)[1]

    return Loss(name, forward, backward, value_and_grad)


def _grad_buffer(output: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    return np.empty_like(output) if out is None else out


# --- mean squared error -----------------------------------------------------------


def _mse_value_and_grad(
    output: np.ndarray, target: np.ndarray, out: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """``mean((output - target) ** 2)`` and its gradient ``2 (output - target) / size``.

    output : ndarray of shape (n_samples,) or (n_samples, n_outputs)
    target : ndarray of the same shape
    """
    grad = np.subtract(output, target, out=_grad_buffer(output, out))
    loss = float(np.vdot(grad, grad)) / grad.size
    grad *= 2.0 / grad.size
    return loss, grad


mse = _loss("mse", _mse_value_and_grad)


# --- binary cross-entropy on logits --------------------------------------------------


def _bce_value_and_grad(
    logits: np.ndarray, target: np.ndarray, out: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Binary cross-entropy of ``sigmoid(logits)`` against targets in [0, 1].

    Fused with the sigmoid, as ``BCEWithLogitsLoss``: the loss is computed as
    ``max(z, 0) - z * t + log1p(exp(-|z|))``, which never overflows, and the gradient
    is ``(sigmoid(z) - t) / size``.

    logits : ndarray of shape (n_samples,) or (n_samples, n_outputs)
    target : ndarray of the same shape, values in [0, 1]
    """
    z = logits
    softplus = np.log1p(np.exp(-np.abs(z)))
    softplus += np.maximum(z, 0)
    loss = float(softplus.sum() - np.vdot(z, target)) / z.size
    grad = _sigmoid(z, out=_grad_buffer(z, out))
    grad -= target
    grad *= 1.0 / z.size
    return loss, grad


def _sigmoid(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    # 0.5 * (1 + tanh(z / 2)) equals 1 / (1 + exp(-z)) and cannot overflow
    np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


binary_cross_entropy = _loss("binary_cross_entropy", _bce_value_and_grad)


# --- softmax cross-entropy on logits -------------------------------------------------


def _softmax_ce_value_and_grad(
    logits: np.ndarray, target: np.ndarray, out: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Cross-entropy of ``softmax(logits)`` against labels, averaged over samples.

    logits : ndarray of shape (n_samples, n_classes)
    target : integer labels of shape (n_samples,), or class probabilities (one-hot or
        soft) of shape (n_samples, n_classes)
    """
    n, k = logits.shape
    # Softmax and cross-entropy are fused: shifting by the row maximum keeps exp()
    # finite, log-softmax is z - logsumexp(z), and the gradient is (probs - onehot)/n.
    # work in a C-contiguous array, so that `flat` below is a view of it
    probs = out if out is not None and out.flags.c_contiguous else None
    if probs is None:
        probs = np.empty(logits.shape, logits.dtype)
    # Row maxima and row sums over a few classes are slow as NumPy reductions
    # along the short last axis (~40 us for 512 x 10); reducing a transposed copy
    # over its first axis, and summing with BLAS (probs @ ones), cost ~5 us each.
    row_max = np.ascontiguousarray(logits.T).max(axis=0)
    np.subtract(logits, row_max[:, None], out=probs)
    flat = probs.reshape(-1)
    if target.ndim == 1:
        at_target = np.arange(0, n * k, k) + target  # flat index of each label
        shifted_at_target = float(flat[at_target].sum())
    else:
        shifted_at_target = float(np.vdot(probs, target))
    np.exp(probs, out=probs)
    sums = probs @ np.ones(k, probs.dtype)
    loss = float(np.log(sums).sum() - shifted_at_target) / n
    # normalising and averaging in one pass: probs * (1 / (n * sums))
    sums *= n
    np.reciprocal(sums, out=sums)
    probs *= sums[:, None]
    if target.ndim == 1:
        flat[at_target] -= 1.0 / n
    else:
        probs -= np.multiply(target, 1.0 / n, dtype=probs.dtype)
    if out is not None and probs is not out:
        out[...] = probs
        probs = out
    return loss, probs


softmax_cross_entropy = _loss("softmax_cross_entropy", _softmax_ce_value_and_grad)


# --- the loss of a trained classifier, as a number -----------------------------------


def cross_entropy(logits: np.ndarray, target: np.ndarray, activation: str) -> float:
    """The mean cross-entropy of ``target`` under the classifier whose raw outputs
    are ``logits``: what training minimises, as one number.

    activation : ``"softmax"``: logits of shape (n_samples, n_classes) and integer
        labels (n_samples,), averaged over the samples (``CrossEntropyLoss``);
        ``"sigmoid"``: logits and targets in [0, 1] of one shape, (n_samples,) or
        (n_samples, n_outputs), averaged over every element (``BCEWithLogitsLoss``).

    Computed in float64 from the logits (log-sum-exp, no clipping), so a confident
    mistake costs what it costs: there is no cap near 36 as with clipped
    probabilities.
    """
    z = np.asarray(logits, dtype=np.float64)
    if activation == "softmax":
        labels = np.asarray(target)
        if labels.ndim == 2:  # one-hot rows
            labels = np.argmax(labels, axis=1)
        return softmax_cross_entropy.forward(z, labels.astype(np.intp, copy=False))
    if activation == "sigmoid":
        values = np.asarray(target, dtype=np.float64).reshape(z.shape)
        return binary_cross_entropy.forward(z, values)
    raise ValueError(f"unknown output activation {activation!r}")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of logits of shape (n_samples, n_classes), in float64."""
    p = np.array(logits, dtype=np.float64)
    p -= p.max(axis=1, keepdims=True)
    np.exp(p, out=p)
    p /= p.sum(axis=1, keepdims=True)
    return p


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-z))`` elementwise, in float64, without overflow."""
    z = np.asarray(logits, dtype=np.float64)
    return _sigmoid(z, out=np.empty_like(z))


def probability_cross_entropy(target: np.ndarray, proba: np.ndarray) -> float:
    """The mean cross-entropy from class probabilities, for a model that gives no
    logits: ``-mean(log p[true class])``, unclipped (a true class of probability 0
    costs infinity).

    proba : (n_samples, n_classes) with integer labels, or (n_samples,) holding the
        probability of class 1 with 0/1 targets.
    """
    p = np.asarray(proba, dtype=np.float64)
    t = np.asarray(target)
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.ndim == 1:
        p_true = np.where(t.reshape(p.shape) >= 0.5, p, 1.0 - p)
    else:
        labels = t.astype(np.intp, copy=False).reshape(-1)
        p_true = p[np.arange(p.shape[0]), labels]
    with np.errstate(divide="ignore"):
        return float(-np.mean(np.log(p_true)))
