"""Multi-layer perceptron with hand-written forward and backward passes.

Each piece keeps its backward next to its forward (as micrograd does): the forward
pass caches what the backward pass needs, the backward pass takes the upstream
gradient. For speed, every array of a training step lives in buffers allocated once
per batch size and reused: matrix products write through ``out=``, activations work
in place, and the parameters (and their gradients) are views into one flat array, so
clipping them is a single operation.
"""

from __future__ import annotations

import numbers
from collections import OrderedDict
from typing import Any, Callable, Sequence

import numpy as np

from mlx.errors import ModelError
from mlx.models._sklearn import ClassifierMixin
from mlx.models.base import BaseModel
from mlx.numerics import losses

__all__ = ["MLP"]

_ACTIVATIONS = ("relu", "tanh", "sigmoid")
_OUTPUT_ACTIVATIONS = (None, "sigmoid", "softmax")
_MAX_CACHED_BATCH_SIZES = 4


# --- activations: forward in place, backward multiplies the upstream gradient -------


class _Activation:
    """``forward(z)`` overwrites z with f(z); ``backward(grad, out)`` multiplies
    grad in place by f'(z), given the cached output ``out`` of forward."""

    saturating = False

    @staticmethod
    def forward(z: np.ndarray) -> None:
        raise NotImplementedError

    @staticmethod
    def backward(grad: np.ndarray, out: np.ndarray) -> None:
        raise NotImplementedError


class _ReLU(_Activation):
    saturating = False

    @staticmethod
    def forward(z: np.ndarray) -> None:
        np.maximum(z, 0.0, out=z)

    @staticmethod
    def backward(grad: np.ndarray, out: np.ndarray) -> None:
        # relu'(z) is 1 exactly where the output is positive. The comparison writes
        # that 0/1 mask over the cached output: it is SIMD-vectorised, where
        # np.sign (the same mask for outputs >= 0) runs ~15x slower.
        np.greater(out, 0.0, out=out)
        grad *= out


class _Tanh(_Activation):
    saturating = True

    @staticmethod
    def forward(z: np.ndarray) -> None:
        np.tanh(z, out=z)

    @staticmethod
    def backward(grad: np.ndarray, out: np.ndarray) -> None:
        # tanh' = 1 - tanh^2; overwrites the cached output.
        np.multiply(out, out, out=out)
        np.subtract(1.0, out, out=out)
        grad *= out


class _Sigmoid(_Activation):
    saturating = True

    @staticmethod
    def forward(z: np.ndarray) -> None:
        # 0.5 * (1 + tanh(z / 2)) == 1 / (1 + exp(-z)), and never overflows
        z *= 0.5
        np.tanh(z, out=z)
        z *= 0.5
        z += 0.5

    @staticmethod
    def backward(grad: np.ndarray, out: np.ndarray) -> None:
        # sigmoid' = s * (1 - s); overwrites the cached output.
        grad *= out
        np.subtract(1.0, out, out=out)
        grad *= out


_ACTIVATION_RULES: dict[str, type[_Activation]] = {
    "relu": _ReLU,
    "tanh": _Tanh,
    "sigmoid": _Sigmoid,
}


# --- the dense layer ---------------------------------------------------------------


class _Dense:
    """``z = a @ W^T + b`` with W of shape (out_features, in_features), as
    torch.nn.Linear stores it. All four arrays are views into the model's flat
    parameter and gradient arrays; W's memory holds W^T row by row (W is a
    Fortran-ordered view), because OpenBLAS multiplies ``a @ W^T`` about 25% faster
    at small batch sizes when W^T is C-contiguous."""

    __slots__ = ("weight", "bias", "grad_weight", "grad_bias")

    def __init__(
        self,
        weight: np.ndarray,
        bias: np.ndarray,
        grad_weight: np.ndarray,
        grad_bias: np.ndarray,
    ) -> None:
        self.weight, self.bias = weight, bias
        self.grad_weight, self.grad_bias = grad_weight, grad_bias

    def forward(self, a: np.ndarray, out: np.ndarray) -> None:
        np.matmul(a, self.weight.T, out=out)
        out += self.bias

    def backward(
        self,
        delta: np.ndarray,
        a: np.ndarray,
        delta_in: np.ndarray | None,
        ones: np.ndarray,
    ) -> None:
        """Accumulate nothing: overwrite the gradients from ``delta`` (dL/dz) and the
        cached input ``a``; write dL/da into ``delta_in`` unless it is None.
        ``ones`` holds one 1 per sample: the bias gradient, the column sums of
        delta, is ``ones @ delta``, which BLAS computes ~2x faster than a NumPy sum
        over axis 0."""
        np.matmul(a.T, delta, out=self.grad_weight.T)
        np.matmul(ones, delta, out=self.grad_bias)
        if delta_in is not None:
            np.matmul(delta, self.weight, out=delta_in)


class _Buffers:
    """Per-batch-size work arrays: each layer's output (pre-activation, then
    activation, in place), each layer's dL/dz, and a vector of n ones."""

    __slots__ = ("outputs", "deltas", "ones")

    def __init__(self, n: int, sizes: Sequence[int], dtype: np.dtype) -> None:
        self.outputs = [np.empty((n, size), dtype) for size in sizes[1:]]
        self.deltas = [np.empty((n, size), dtype) for size in sizes[1:]]
        self.ones = np.ones(n, dtype)


class MLP(ClassifierMixin, BaseModel):
    """Fully connected network trained by backpropagation.

    Parameters
    ----------
    layer_sizes : list of int
        Sizes from input to output, e.g. ``[10, 5, 1]``; at least two entries.
    activation : {"relu", "tanh", "sigmoid"}
        Hidden-layer activation.
    output_activation : {None, "sigmoid", "softmax"}
        None: regression with mean squared error. "sigmoid": binary (or multi-label)
        classification with binary cross-entropy. "softmax": multi-class
        classification with cross-entropy; labels are integers (n_samples,) or
        one-hot rows (n_samples, n_classes).
    seed : int or None
        Seeds the initial weights: He-normal before ReLU, Xavier-uniform before
        tanh/sigmoid and for the output layer; biases start at zero.
    optimizer_config : mapping or None
        See :func:`mlx.optim.get_optimizer`; default SGD with learning rate 0.01.
    gradient_clip, weight_clip : float or None
        After backpropagation each gradient element is clipped to
        ``[-gradient_clip, gradient_clip]``; after each update each parameter
        (weights and biases) to ``[-weight_clip, weight_clip]``. None disables.
    activation_clip : float or None
        Pre-activations of tanh/sigmoid layers are clipped to this range (their
        derivative there is below 1e-21, so the clip is not differentiated).
    dtype : {"float64", "float32"}
        Precision of the weights and of every computation. Checkpoints are float64.

    Learned state: ``params_["layers.{i}.weight"]`` of shape (out, in) and
    ``params_["layers.{i}.bias"]`` of shape (out,).

    A scikit-learn estimator too (a classifier with a sigmoid or softmax output, else
    a regressor): ``get_params``, ``set_params``, ``fit`` (minibatch training from
    fresh weights), ``score`` (accuracy or R^2) and, for classifiers,
    ``predict_proba`` and ``classes_``, so ``sklearn.base.clone`` and
    ``cross_val_score`` take it. ``predict`` still returns probabilities.
    """

    model_type = "mlp"

    def __init__(
        self,
        layer_sizes: Sequence[int] | None = None,
        activation: str = "relu",
        output_activation: str | None = None,
        seed: int | None = None,
        optimizer_config: dict[str, Any] | None = None,
        gradient_clip: float | None = 10.0,
        weight_clip: float | None = 10.0,
        activation_clip: float | None = 50.0,
        dtype: str = "float64",
    ) -> None:
        self.layer_sizes = layer_sizes
        self.activation = activation
        self.output_activation = output_activation
        self.seed = seed
        self.optimizer_config = optimizer_config
        self.gradient_clip = gradient_clip
        self.weight_clip = weight_clip
        self.activation_clip = activation_clip
        self.dtype = dtype
        self._setup()

    # --- scikit-learn's fit ---------------------------------------------------------

    def fit(self, X: Any, y: Any, *, epochs: int = 200, batch_size: int = 32) -> MLP:
        """Train from fresh weights (drawn from ``seed``) for ``epochs`` passes over
        ``X`` in shuffled minibatches of ``batch_size``; returns the model.

        For a classifier, ``y`` may hold any labels (``classes_`` keeps them, sorted)
        as long as there are as many as the network has classes (two for one sigmoid
        output); integer labels ``0..k-1`` are taken as they are.
        """
        for name, value in (("epochs", epochs), ("batch_size", batch_size)):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise ModelError(f"MLP.fit's {name} must be an integer; got {value!r}.")
            if value < 1:
                raise ModelError(f"MLP.fit's {name} must be at least 1; got {value}.")
        self._setup()
        X = self._check_X(X, reset=True)
        target = np.asarray(y)
        if self.task == "classification":
            target = self._encode_labels(target)
        rng = np.random.default_rng(self.seed)
        n = X.shape[0]
        for _ in range(int(epochs)):
            order = rng.permutation(n)
            for start in range(0, n, int(batch_size)):
                rows = order[start : start + int(batch_size)]
                self.train_step(X[rows], target[rows])
        return self

    def _n_outputs(self) -> int:
        return int(self._sizes[-1])

    def _multilabel(self) -> bool:
        return self.output_activation == "sigmoid" and self._n_outputs() > 1

    # --- validation and initialization --------------------------------------------

    def _validate_params(self) -> None:
        sizes = self.layer_sizes
        if (
            not isinstance(sizes, (list, tuple))
            or len(sizes) < 2
            or not all(
                isinstance(s, numbers.Integral)
                and not isinstance(s, bool)
                and int(s) >= 1
                for s in sizes
            )
        ):
            raise ModelError(
                "The 'layer_sizes' parameter of MLP must be a list of at least two "
                f"integers >= 1, from input to output (e.g. [10, 5, 1]); got {sizes!r}."
            )
        if self.activation not in _ACTIVATIONS:
            raise ModelError(
                "The 'activation' parameter of MLP must be one of 'relu', 'tanh', "
                f"'sigmoid'; got {self.activation!r}."
            )
        if self.output_activation not in _OUTPUT_ACTIVATIONS:
            raise ModelError(
                "The 'output_activation' parameter of MLP must be None, 'sigmoid' or "
                f"'softmax'; got {self.output_activation!r}."
            )
        if self.output_activation == "softmax" and sizes[-1] < 2:
            raise ModelError(
                "An MLP with output_activation 'softmax' needs at least 2 outputs; "
                f"got layer_sizes {list(sizes)} (use 'sigmoid' for one output)."
            )
        if self.seed is not None and (
            not isinstance(self.seed, numbers.Integral) or isinstance(self.seed, bool)
        ):
            raise ModelError(
                "The 'seed' parameter of MLP must be an integer or None; "
                f"got {self.seed!r}."
            )
        for name in ("gradient_clip", "weight_clip", "activation_clip"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, numbers.Real)
                or isinstance(value, bool)
                or not float(value) > 0
            ):
                raise ModelError(
                    f"The '{name}' parameter of MLP must be a number > 0 or None; "
                    f"got {value!r}."
                )
        if self.dtype not in ("float64", "float32"):
            raise ModelError(
                "The 'dtype' parameter of MLP must be 'float64' or 'float32'; "
                f"got {self.dtype!r}."
            )

    def _initialize(self) -> None:
        assert self.layer_sizes is not None
        sizes = [int(s) for s in self.layer_sizes]
        self._sizes = sizes
        self._dtype = np.dtype(self.dtype)
        self._n_features = sizes[0]
        self.task = "regression" if self.output_activation is None else "classification"
        self._activation_rule = _ACTIVATION_RULES[self.activation]
        self._loss = {
            None: losses.mse,
            "sigmoid": losses.binary_cross_entropy,
            "softmax": losses.softmax_cross_entropy,
        }[self.output_activation]
        pairs = list(zip(sizes[:-1], sizes[1:]))
        total = sum(fan_out * fan_in + fan_out for fan_in, fan_out in pairs)
        self._flat = np.zeros(total, self._dtype)
        self._grad_flat = np.zeros(total, self._dtype)
        self.params_ = self._views(self._flat)
        self._grads = self._views(self._grad_flat)
        self._layers: list[_Dense] = []
        rng = np.random.default_rng(self.seed)
        for i, (fan_in, fan_out) in enumerate(pairs):
            weight = self.params_[f"layers.{i}.weight"]
            # drawn in float64 whatever the dtype, so float32 weights are the rounded
            # float64 ones
            if self.activation == "relu" and i < len(pairs) - 1:
                std = np.sqrt(2.0 / fan_in)  # He et al. 2015
                weight[...] = rng.standard_normal((fan_out, fan_in)) * std
            else:
                bound = np.sqrt(6.0 / (fan_in + fan_out))  # Glorot & Bengio 2010
                weight[...] = rng.uniform(-bound, bound, (fan_out, fan_in))
            self._layers.append(
                _Dense(
                    weight,
                    self.params_[f"layers.{i}.bias"],
                    self._grads[f"layers.{i}.weight"],
                    self._grads[f"layers.{i}.bias"],
                )
            )
        self._buffers: OrderedDict[int, _Buffers] = OrderedDict()
        self._flat_state: Any = None

    def _views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Every parameter's array as a view of one flat buffer laid out like
        ``self._flat``: ``layers.{i}.weight`` (out, in), then ``layers.{i}.bias``."""
        views = {}
        offset = 0
        for i, (fan_in, fan_out) in enumerate(zip(self._sizes[:-1], self._sizes[1:])):
            end = offset + fan_out * fan_in
            views[f"layers.{i}.weight"] = flat[offset:end].reshape(fan_in, fan_out).T
            views[f"layers.{i}.bias"] = flat[end : end + fan_out]
            offset = end + fan_out
        return views

    def architecture(self) -> dict[str, Any]:
        return {
            "layer_sizes": list(self._sizes),
            "activation": self.activation,
            "output_activation": self.output_activation,
        }

    # --- forward ----------------------------------------------------------------------

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Predictions for X of shape (n_samples, n_features): (n_samples,) for one
        output, else (n_samples, n_outputs); probabilities for sigmoid/softmax."""
        a = self._raw_outputs(X)
        if self.output_activation == "sigmoid":
            _Sigmoid.forward(a)
        elif self.output_activation == "softmax":
            a -= a.max(axis=1, keepdims=True)
            np.exp(a, out=a)
            a /= a.sum(axis=1, keepdims=True)
        return a[:, 0] if a.shape[1] == 1 else a

    def predict_logits(self, X: Any) -> np.ndarray:
        """The output layer's values before the sigmoid or softmax (the logits; for
        a regressor, its predictions), shaped as :meth:`predict`'s."""
        self._check_trained()
        a = self._raw_outputs(self._check_X(X))
        return a[:, 0] if a.shape[1] == 1 else a

    def _raw_outputs(self, X: np.ndarray) -> np.ndarray:
        """The output layer's values, (n_samples, n_outputs), before its activation."""
        a = np.asarray(X, dtype=self._dtype)
        last = len(self._layers) - 1
        for i, layer in enumerate(self._layers):
            z = np.empty((a.shape[0], layer.weight.shape[0]), self._dtype)
            layer.forward(a, z)
            if i < last:
                self._activate(z)
            a = z
        return a

    def _activate(self, z: np.ndarray) -> None:
        clip = self.activation_clip
        if clip is not None and self._activation_rule.saturating:
            np.clip(z, -clip, clip, out=z)
        self._activation_rule.forward(z)

    # --- training ---------------------------------------------------------------------

    def train_step(self, X: Any, y: Any) -> dict[str, float]:
        """One optimizer step on the batch; returns ``{"loss": loss before the step}``.

        X : array-like of shape (n_samples, n_features)
        y : targets, see the class docstring for their shape per output activation
        """
        X = self._check_X(X, check_finite=False)
        target = self._check_target(X, y)
        buffers = self._buffers_for(X.shape[0])
        outputs, deltas, layers = buffers.outputs, buffers.deltas, self._layers
        last = len(layers) - 1

        # forward, caching every layer's output in the buffers
        with np.errstate(over="ignore", invalid="ignore"):
            layers[0].forward(X, outputs[0])
            _check_first_layer(outputs[0], X, self._check_X_finite)
        for i in range(last + 1):
            if i > 0:
                layers[i].forward(outputs[i - 1], outputs[i])
            if i < last:
                self._activate(outputs[i])
        loss, _ = self._loss.value_and_grad(outputs[last], target, out=deltas[last])

        # Plain SGD: backpropagation is linear in dL/dz, so scaling the output
        # layer's dL/dz by the learning rate makes every gradient lr * g, and the
        # update is then one subtraction (not a scaling pass, then a subtraction).
        lr = self._plain_sgd_lr()
        if lr is not None:
            deltas[last] *= lr

        # backward: each layer turns dL/dz into its gradients and the dL/dz below
        ones = buffers.ones
        for i in range(last, -1, -1):
            if i == 0:
                layers[0].backward(deltas[0], X, None, ones)
            else:
                layers[i].backward(deltas[i], outputs[i - 1], deltas[i - 1], ones)
                self._activation_rule.backward(deltas[i - 1], outputs[i - 1])

        # the safeguards, then the update
        if self.gradient_clip is not None:
            scale = 1.0 if lr is None else lr
            _clip(self._grad_flat, self.gradient_clip * scale)
        if lr is None:
            self._apply_gradients(self._grads)
        else:
            self._flat -= self._grad_flat
            self.optimizer_state_ = self.optimizer_state_._replace(
                count=self.optimizer_state_.count + 1
            )
        if self.weight_clip is not None:
            _clip(self._flat, self.weight_clip)
        self.is_trained = True
        return {"loss": loss}

    def _apply_gradients(self, grads: dict[str, np.ndarray]) -> None:
        """Update every parameter in one pass over the flat buffers.

        Optimizers are elementwise, so running them once on ``_flat`` and
        ``_grad_flat`` gives exactly what running them per parameter gives, at a
        third of the cost. Their state lives in flat buffers too; the state the
        model exposes (``optimizer_state_``, saved in checkpoints) holds named views
        of them, so both always agree.
        """
        update_inplace = self.optimizer_.update_inplace
        if update_inplace is None:
            super()._apply_gradients(grads)
            return
        if self._flat_state is None or self._flat_state[0] is not self.optimizer_state_:
            self._flatten_optimizer_state()
        named, flat = self._flat_state
        _, flat = update_inplace({"flat": self._grad_flat}, flat, {"flat": self._flat})
        # only the step count is not shared memory
        self.optimizer_state_ = named._replace(count=flat.count)
        self._flat_state = (self.optimizer_state_, flat)

    def _plain_sgd_lr(self) -> float | None:
        """The learning rate of this step when the optimizer is plain SGD (see
        :class:`mlx.optim.Optimizer`), with its state initialised; else None."""
        rate = getattr(self.optimizer_, "plain_sgd_lr", None)
        if rate is None:
            return None
        if self.optimizer_state_ is None:
            self.optimizer_state_ = self.optimizer_.init(self.params_)
        return float(rate(self.optimizer_state_))

    def _flatten_optimizer_state(self) -> None:
        state = self.optimizer_state_
        if state is None:
            state = self.optimizer_.init(self.params_)
        named_fields, flat_fields = [], []
        for field in state:
            if isinstance(field, dict) and field:
                buffer = np.empty_like(self._flat)
                views = self._views(buffer)
                for name, value in field.items():
                    views[name][...] = value
                named_fields.append(views)
                flat_fields.append({"flat": buffer})
            else:
                named_fields.append(field)
                flat_fields.append(field)
        named, flat = type(state)(*named_fields), type(state)(*flat_fields)
        self.optimizer_state_ = named
        self._flat_state = (named, flat)

    def _buffers_for(self, n: int) -> _Buffers:
        buffers = self._buffers.get(n)
        if buffers is None:
            if len(self._buffers) >= _MAX_CACHED_BATCH_SIZES:
                self._buffers.popitem(last=False)
            buffers = self._buffers[n] = _Buffers(n, self._sizes, self._dtype)
        return buffers

    def _check_target(self, X: np.ndarray, y: Any) -> np.ndarray:
        n_outputs = self._sizes[-1]
        if self.output_activation is None:
            return self._check_y_regression(X, y, n_outputs)
        if self.output_activation == "sigmoid":
            target = self._check_y_regression(X, y, n_outputs)
            if target.min() < 0 or target.max() > 1:
                raise ModelError(
                    "An MLP with a sigmoid output expects labels in [0, 1]; got values "
                    f"in [{target.min():g}, {target.max():g}]."
                )
            return target
        return self._check_class_labels(X, y, n_outputs)

    def _check_class_labels(self, X: np.ndarray, y: Any, k: int) -> np.ndarray:
        labels = np.asarray(y)
        if labels.dtype.kind not in "biuf":
            raise ModelError(f"MLP expects numeric labels; got dtype {labels.dtype}.")
        self._check_n_samples(X, labels)
        if labels.ndim == 2 and labels.shape[1] == k:
            one_hot = np.isin(labels, (0, 1)).all() and (labels.sum(axis=1) == 1).all()
            if not one_hot:
                raise ModelError(
                    "An MLP with a softmax output expects 2-D labels to be one-hot "
                    "rows (a single 1 per row, zeros elsewhere)."
                )
            return np.argmax(labels, axis=1)
        if labels.ndim != 1:
            raise ModelError(
                f"An MLP with a softmax output over {k} classes expects labels of "
                f"shape (n_samples,) or one-hot (n_samples, {k}); got {labels.shape}."
            )
        if labels.dtype.kind == "f" and not (
            np.isfinite(labels).all() and (labels == np.round(labels)).all()
        ):
            raise ModelError("An MLP with a softmax output expects integer labels.")
        low, high = labels.min(), labels.max()
        if low < 0 or high >= k:
            raise ModelError(
                f"An MLP with a softmax output over {k} classes expects labels in "
                f"[0, {k - 1}]; got labels in [{low:g}, {high:g}]."
            )
        return labels.astype(np.intp, copy=False)


def _check_first_layer(
    z: np.ndarray, X: np.ndarray, check_X_finite: Callable[[np.ndarray], None]
) -> None:
    """Raise the ModelError for NaN or inf in X, looking at the first layer's
    pre-activation ``z = X W^T + b`` first.

    A NaN or infinite input makes its whole row of z NaN or infinite (inf * 0 is
    NaN), so z is finite whenever X is, unless it overflowed. z has fewer columns
    than a wide X and was just written, so checking it instead of X saves most of
    the cost of the check; X itself is only scanned when z is not finite. The
    caller silences NumPy's floating-point warnings around both.
    """
    if not np.isfinite(np.vdot(z, z)):
        check_X_finite(X)


def _clip(array: np.ndarray, bound: float) -> None:
    # two read-only reductions cost less than rewriting the array, and clipping is
    # rarely needed
    if array.max() > bound or array.min() < -bound:
        np.clip(array, -bound, bound, out=array)
