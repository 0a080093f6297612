"""Optimizers as small pure update rules, in the spirit of optax.

An :class:`Optimizer` is a pair of functions::

    state = optimizer.init(params)
    params, state = optimizer.update(grads, state, params)

``params`` and ``grads`` are dicts mapping a parameter name to an ndarray; a state is
a NamedTuple of such dicts (one per moment estimate) plus ``count``, the number of
updates already taken. ``update`` never modifies its arguments. Because the state is
only named arrays and a step count, a checkpoint of it resumes training exactly
(:func:`state_to_tensors`, :func:`state_from_tensors`).

``learning_rate`` may be a float or a schedule ``Callable[[int], float]``
(:mod:`mlx.schedules`), evaluated at ``count`` before each update.

The update rules and defaults are PyTorch's (``torch.optim.SGD``, ``Adam``, ``AdamW``,
``RMSprop``); the tests check 100 steps against them to 1e-12 in float64.

For speed the models call ``optimizer.update_inplace`` instead, which applies the same
rule but writes the new values into the ``params`` and state arrays it is given
(``grads`` is left untouched) and returns those same dicts; each optimizer also reuses
a few scratch arrays of its own between calls. ``update`` is ``update_inplace`` on
copies.
"""

from __future__ import annotations

import numbers
import warnings
from types import MappingProxyType
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterator,
    Mapping,
    NamedTuple,
    Sequence,
    Union,
)

import numpy as np

from mlx.errors import CheckpointError, ConfigError, NumericalWarning
from mlx.utils.values import nearest

if TYPE_CHECKING:
    from mlx.config.experiment import TrainingConfig

__all__ = [
    "OPTIMIZERS",
    "AdamState",
    "Optimizer",
    "RMSpropState",
    "SGDState",
    "adam",
    "adamw",
    "get_optimizer",
    "resolve_optimizer_config",
    "rmsprop",
    "sgd",
    "state_from_tensors",
    "state_to_tensors",
]

Params = Dict[str, np.ndarray]
LearningRate = Union[float, Callable[[int], float]]

#: Learning rate of a model built in Python without an ``optimizer_config``.
DEFAULT_CONFIG: Mapping[str, Any] = MappingProxyType(
    {"optimizer_type": "sgd", "learning_rate": 0.01}
)


class Optimizer(NamedTuple):
    """An update rule: ``init(params) -> state``,
    ``update(grads, state, params) -> (new_params, new_state)``.

    ``update_inplace`` (optional) is the same rule writing into ``params`` and the
    state's arrays; ``config`` is the JSON-ready description saved with checkpoints.
    ``plain_sgd_lr`` (optional) marks plain gradient descent, ``p -= lr * g`` with
    only ``count`` in the state: ``plain_sgd_lr(state)`` is the ``lr`` of the next
    update, so a model may fold it into its gradients and update in one pass (it
    then advances ``count`` itself).
    """

    init: Callable[[Params], Any]
    update: Callable[[Params, Any, Params], tuple[Params, Any]]
    update_inplace: Callable[[Params, Any, Params], tuple[Params, Any]] | None = None
    config: Mapping[str, Any] = MappingProxyType({})
    plain_sgd_lr: Callable[[Any], float] | None = None


class SGDState(NamedTuple):
    """State of :func:`sgd`: momentum buffers (empty without momentum)."""

    momentum_buffer: dict[str, np.ndarray]
    count: int  # type: ignore[assignment]  # shadows tuple.count, on purpose


class AdamState(NamedTuple):
    """State of :func:`adam` and :func:`adamw`: first and second moment estimates."""

    exp_avg: dict[str, np.ndarray]
    exp_avg_sq: dict[str, np.ndarray]
    count: int  # type: ignore[assignment]  # shadows tuple.count, on purpose


class RMSpropState(NamedTuple):
    """State of :func:`rmsprop`; ``grad_avg`` is empty unless centered,
    ``momentum_buffer`` empty unless momentum > 0."""

    square_avg: dict[str, np.ndarray]
    grad_avg: dict[str, np.ndarray]
    momentum_buffer: dict[str, np.ndarray]
    count: int  # type: ignore[assignment]  # shadows tuple.count, on purpose


# --- shared plumbing ---------------------------------------------------------------


def _schedule(learning_rate: LearningRate) -> Callable[[int], float]:
    if callable(learning_rate):
        return learning_rate
    lr = float(learning_rate)
    return lambda step: lr


def _zeros(params: Params) -> dict[str, np.ndarray]:
    return {name: np.zeros_like(value) for name, value in params.items()}


#: Elements per piece: one piece of every operand of an update stays in the L2 cache
#: across the dozen elementwise operations of a rule, which is ~1.5x faster than
#: streaming whole 1 MB arrays through each operation in turn.
_PIECE = 1 << 16


class _Scratch:
    """Temporary 1-D arrays reused across updates, one per (slot, dtype)."""

    def __init__(self) -> None:
        self._arrays: dict[tuple[int, Any], np.ndarray] = {}

    def __call__(self, like: np.ndarray, slot: int = 0) -> np.ndarray:
        array = self._arrays.get((slot, like.dtype))
        if array is None or array.size < like.size:
            array = np.empty(max(like.size, min(_PIECE, 1 << 20)), like.dtype)
            self._arrays[(slot, like.dtype)] = array
        return array[: like.size].reshape(like.shape)


def _pieces(*arrays: np.ndarray) -> Iterator[list[np.ndarray]]:
    """The same piece of each array as 1-D views, piece by piece; whole arrays when
    they do not share one contiguous memory order (flattening would copy)."""
    if arrays[0].size <= _PIECE:
        # small arrays fit the cache whole; elementwise rules need no flattening
        yield list(arrays)
        return
    if not (
        all(a.flags.c_contiguous for a in arrays)
        or all(a.flags.f_contiguous for a in arrays)
    ):
        yield list(arrays)
        return
    flats = [a.ravel(order="K") for a in arrays]
    size = flats[0].size
    if size <= _PIECE:
        yield flats
        return
    for start in range(0, size, _PIECE):
        yield [f[start : start + _PIECE] for f in flats]


def _copy_state(state: Any) -> Any:
    return type(state)(
        *(
            {k: v.copy(order="K") for k, v in field.items()}
            if isinstance(field, dict)
            else field
            for field in state
        )
    )


def _make(
    init: Callable[[Params], Any],
    update_inplace: Callable[[Params, Any, Params], tuple[Params, Any]],
    config: Mapping[str, Any],
    plain_sgd_lr: Callable[[Any], float] | None = None,
) -> Optimizer:
    def update(grads: Params, state: Any, params: Params) -> tuple[Params, Any]:
        fresh = {name: value.copy(order="K") for name, value in params.items()}
        return update_inplace(grads, _copy_state(state), fresh)

    return Optimizer(
        init, update, update_inplace, MappingProxyType(dict(config)), plain_sgd_lr
    )


def _config(optimizer_type: str, learning_rate: LearningRate, **hyper: Any) -> dict:
    lr: Any = learning_rate if not callable(learning_rate) else "schedule"
    return {"optimizer_type": optimizer_type, "learning_rate": lr, **hyper}


# --- the rules -----------------------------------------------------------------------


def sgd(
    learning_rate: LearningRate,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> Optimizer:
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    As ``torch.optim.SGD``: ``d = g + weight_decay * p``; with momentum,
    ``b = d`` on the first step and ``b = momentum * b + (1 - dampening) * d`` after,
    then ``d = d + momentum * b`` (Nesterov, Sutskever et al. 2013) or ``d = b``;
    finally ``p = p - lr * d``.
    """
    lr_at = _schedule(learning_rate)
    scratch = _Scratch()

    def init(params: Params) -> SGDState:
        return SGDState(_zeros(params) if momentum else {}, 0)

    def update_inplace(
        grads: Params, state: SGDState, params: Params
    ) -> tuple[Params, SGDState]:
        lr = lr_at(state.count)
        first = state.count == 0
        for name, param in params.items():
            operands = [param, grads[name]]
            if momentum:
                operands.append(state.momentum_buffer[name])
            for pieces in _pieces(*operands):
                p, g = pieces[0], pieces[1]
                d = g
                if weight_decay:
                    d = np.multiply(p, weight_decay, out=scratch(p))
                    d += g
                if momentum:
                    buf = pieces[2]
                    if first:
                        np.copyto(buf, d)
                    else:
                        buf *= momentum
                        if dampening:
                            buf += np.multiply(d, 1.0 - dampening, out=scratch(p, 1))
                        else:
                            buf += d
                    if nesterov:
                        tmp = np.multiply(buf, momentum, out=scratch(p, 1))
                        d = np.add(d, tmp, out=tmp)
                    else:
                        d = buf
                p -= np.multiply(d, lr, out=scratch(p, 2))
        return params, state._replace(count=state.count + 1)

    config = _config(
        "sgd",
        learning_rate,
        momentum=momentum,
        dampening=dampening,
        nesterov=nesterov,
        weight_decay=weight_decay,
    )
    plain = not momentum and not weight_decay
    plain_sgd_lr = (lambda state: lr_at(state.count)) if plain else None
    return _make(init, update_inplace, config, plain_sgd_lr)


def _adam_rule(
    learning_rate: LearningRate,
    betas: Sequence[float],
    eps: float,
    weight_decay: float,
    decoupled: bool,
) -> tuple[Callable[[Params], AdamState], Callable[..., tuple[Params, AdamState]]]:
    lr_at = _schedule(learning_rate)
    beta1, beta2 = float(betas[0]), float(betas[1])
    scratch = _Scratch()

    def init(params: Params) -> AdamState:
        return AdamState(_zeros(params), _zeros(params), 0)

    def update_inplace(
        grads: Params, state: AdamState, params: Params
    ) -> tuple[Params, AdamState]:
        lr = lr_at(state.count)
        step = state.count + 1
        step_size = lr / (1.0 - beta1**step)
        bias_correction2_sqrt = (1.0 - beta2**step) ** 0.5
        for name, param in params.items():
            operands = (param, grads[name], state.exp_avg[name], state.exp_avg_sq[name])
            for p, g, m, v in _pieces(*operands):
                if weight_decay and decoupled:
                    p *= 1.0 - lr * weight_decay
                elif weight_decay:
                    wd_g = np.multiply(p, weight_decay, out=scratch(p))
                    g = np.add(wd_g, g, out=wd_g)
                tmp = scratch(p, 1)
                # m + (1 - beta1) * (g - m): torch's lerp, rounding included
                np.subtract(g, m, out=tmp)
                tmp *= 1.0 - beta1
                m += tmp
                v *= beta2
                np.multiply(g, g, out=tmp)
                tmp *= 1.0 - beta2
                v += tmp
                np.sqrt(v, out=tmp)
                tmp /= bias_correction2_sqrt
                tmp += eps
                np.divide(m, tmp, out=tmp)
                tmp *= step_size
                p -= tmp
        return params, state._replace(count=step)

    return init, update_inplace


def adam(
    learning_rate: LearningRate,
    betas: Sequence[float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> Optimizer:
    """Adam (Kingma & Ba, 2015, "Adam: A Method for Stochastic Optimization").

    As ``torch.optim.Adam``: ``weight_decay`` is an L2 term added to the gradient.
    """
    init, update_inplace = _adam_rule(learning_rate, betas, eps, weight_decay, False)
    config = _config(
        "adam", learning_rate, betas=list(betas), eps=eps, weight_decay=weight_decay
    )
    return _make(init, update_inplace, config)


def adamw(
    learning_rate: LearningRate,
    betas: Sequence[float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.01,
) -> Optimizer:
    """AdamW (Loshchilov & Hutter, 2019, "Decoupled Weight Decay Regularization").

    As ``torch.optim.AdamW``: parameters shrink by ``lr * weight_decay`` before the
    Adam step, instead of the decay entering the moment estimates.
    """
    init, update_inplace = _adam_rule(learning_rate, betas, eps, weight_decay, True)
    config = _config(
        "adamw", learning_rate, betas=list(betas), eps=eps, weight_decay=weight_decay
    )
    return _make(init, update_inplace, config)


def rmsprop(
    learning_rate: LearningRate,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
) -> Optimizer:
    """RMSprop (Hinton, Lecture 6e of "Neural Networks for Machine Learning", 2012).

    As ``torch.optim.RMSprop``: ``s = alpha * s + (1 - alpha) * g**2``; centered
    subtracts the squared running mean of ``g``; ``eps`` is added after the root.
    """
    lr_at = _schedule(learning_rate)
    scratch = _Scratch()

    def init(params: Params) -> RMSpropState:
        return RMSpropState(
            _zeros(params),
            _zeros(params) if centered else {},
            _zeros(params) if momentum else {},
            0,
        )

    def update_inplace(
        grads: Params, state: RMSpropState, params: Params
    ) -> tuple[Params, RMSpropState]:
        lr = lr_at(state.count)
        for name, param in params.items():
            operands = [param, grads[name], state.square_avg[name]]
            if centered:
                operands.append(state.grad_avg[name])
            if momentum:
                operands.append(state.momentum_buffer[name])
            for pieces in _pieces(*operands):
                p, g, square_avg = pieces[0], pieces[1], pieces[2]
                if weight_decay:
                    wd_g = np.multiply(p, weight_decay, out=scratch(p))
                    g = np.add(wd_g, g, out=wd_g)
                avg = scratch(p, 1)
                square_avg *= alpha
                np.multiply(g, g, out=avg)
                avg *= 1.0 - alpha
                square_avg += avg
                if centered:
                    grad_avg = pieces[3]
                    np.subtract(g, grad_avg, out=avg)
                    avg *= 1.0 - alpha
                    grad_avg += avg
                    np.multiply(grad_avg, grad_avg, out=avg)
                    np.subtract(square_avg, avg, out=avg)
                    np.sqrt(avg, out=avg)
                else:
                    np.sqrt(square_avg, out=avg)
                avg += eps
                if momentum:
                    buf = pieces[-1]
                    buf *= momentum
                    buf += np.divide(g, avg, out=avg)
                    p -= np.multiply(buf, lr, out=avg)
                else:
                    np.divide(g, avg, out=avg)
                    avg *= lr
                    p -= avg
        return params, state._replace(count=state.count + 1)

    config = _config(
        "rmsprop",
        learning_rate,
        alpha=alpha,
        eps=eps,
        weight_decay=weight_decay,
        momentum=momentum,
        centered=centered,
    )
    return _make(init, update_inplace, config)


# --- from configuration ------------------------------------------------------------

#: Optimizer name -> (factory, hyperparameter names with their defaults).
OPTIMIZERS: Mapping[str, tuple[Callable[..., Optimizer], Mapping[str, Any]]] = (
    MappingProxyType(
        {
            "sgd": (
                sgd,
                {
                    "momentum": 0.0,
                    "dampening": 0.0,
                    "nesterov": False,
                    "weight_decay": 0.0,
                },
            ),
            "adam": (adam, {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}),
            "adamw": (
                adamw,
                {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01},
            ),
            "rmsprop": (
                rmsprop,
                {
                    "alpha": 0.99,
                    "eps": 1e-8,
                    "weight_decay": 0.0,
                    "momentum": 0.0,
                    "centered": False,
                },
            ),
        }
    )
)

_HYPERPARAMETERS = (
    "momentum",
    "nesterov",
    "dampening",
    "betas",
    "eps",
    "weight_decay",
    "alpha",
    "centered",
)


def _bounded(
    key: str, value: Any, low: float, high: float = float("inf"), open_low: bool = False
) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = (value > low if open_low else value >= low) and value <= high
    if not ok:
        bound = f"> {low}" if open_low else f">= {low}"
        if high != float("inf"):
            bound += f" and <= {high}"
        raise ConfigError(
            f"The optimizer's {key!r} must be a number {bound}; got {value!r}."
        )
    return float(value)


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(
            f"The optimizer's {key!r} must be true or false; got {value!r}."
        )
    return value


def get_optimizer(config: Mapping[str, Any]) -> Optimizer:
    """Build an optimizer from a mapping.

    Keys: ``optimizer_type`` (sgd, adam, adamw, rmsprop; default sgd),
    ``learning_rate`` (a float > 0 or a schedule; default 0.01), and the chosen
    optimizer's hyperparameters (see :data:`OPTIMIZERS`); keys that belong to other
    optimizers are ignored. Warns (:class:`~mlx.errors.NumericalWarning`) when a
    constant learning rate exceeds 1.0, which usually diverges.
    """
    name = config.get("optimizer_type", "sgd")
    if name not in OPTIMIZERS:
        close = nearest(str(name), OPTIMIZERS)
        hint = f" Did you mean {close!r}?" if close else ""
        raise ConfigError(
            f"The optimizer type must be one of {', '.join(OPTIMIZERS)}; "
            f"got {name!r}.{hint}"
        )
    factory, defaults = OPTIMIZERS[name]
    learning_rate = config.get("learning_rate", DEFAULT_CONFIG["learning_rate"])
    if not callable(learning_rate):
        learning_rate = _bounded("learning_rate", learning_rate, 0.0, open_low=True)
        if learning_rate > 1.0:
            warnings.warn(
                f"learning_rate={learning_rate} is above 1.0; training will likely "
                "diverge.",
                NumericalWarning,
                stacklevel=2,
            )
    kwargs: dict[str, Any] = {}
    for key, default in defaults.items():
        value = config.get(key, default)
        if key in ("nesterov", "centered"):
            kwargs[key] = _bool(key, value)
        elif key == "betas":
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                raise ConfigError(
                    f"The optimizer's 'betas' must be a pair of numbers in [0, 1); "
                    f"got {value!r}."
                )
            kwargs[key] = tuple(_bounded("betas", b, 0.0, 1.0) for b in value)
        elif key in ("momentum", "dampening", "alpha"):
            kwargs[key] = _bounded(key, value, 0.0, 1.0)
        else:
            kwargs[key] = _bounded(key, value, 0.0)
    if kwargs.get("nesterov") and (kwargs["momentum"] <= 0 or kwargs["dampening"]):
        raise ConfigError("Nesterov momentum needs momentum > 0 and dampening 0.")
    return factory(learning_rate, **kwargs)


def resolve_optimizer_config(
    training: TrainingConfig | None, model_params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The optimizer settings of an experiment, by precedence.

    Start from ``training.optimizer`` and ``training.learning_rate``, add the optimizer
    keys found in ``training.params`` (momentum, nesterov, dampening, betas, eps,
    weight_decay, alpha, centered), then let ``model.params.optimizer_config``
    (optimizer_type, learning_rate and the same keys) override them.

    training : a :class:`~mlx.config.TrainingConfig` (or None for the defaults of a
        model built in Python: sgd with learning rate 0.01)
    """
    if training is None:
        resolved: dict[str, Any] = dict(DEFAULT_CONFIG)
    else:
        resolved = {
            "optimizer_type": training.optimizer,
            "learning_rate": training.learning_rate,
        }
        for key in _HYPERPARAMETERS:
            if key in training.params:
                resolved[key] = _thaw(training.params[key])
    override = (model_params or {}).get("optimizer_config") or {}
    for key, value in override.items():
        resolved[key] = _thaw(value)
    return resolved


def _thaw(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# --- checkpoints of a state ----------------------------------------------------------

_STATES = {cls.__name__: cls for cls in (SGDState, AdamState, RMSpropState)}


def state_to_tensors(state: Any) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Flatten a state into float64 tensors named ``{parameter}.{field}`` (e.g.
    ``layers.0.weight.exp_avg``) and string metadata holding the state type and
    ``count``."""
    tensors: dict[str, np.ndarray] = {}
    for field, value in zip(state._fields, state):
        if isinstance(value, dict):
            for name, array in value.items():
                tensors[f"{name}.{field}"] = np.ascontiguousarray(
                    array, dtype=np.float64
                )
    metadata = {"state": type(state).__name__, "count": str(int(state.count))}
    return tensors, metadata


def state_from_tensors(
    template: Any, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]
) -> Any:
    """Rebuild a state shaped like ``template`` (``optimizer.init(params)``) from
    :func:`state_to_tensors` output; arrays take the template's dtype.

    Raises CheckpointError when the saved state belongs to another optimizer or its
    arrays do not match the parameters.
    """
    kind = metadata.get("state")
    if kind != type(template).__name__:
        raise CheckpointError(
            f"The checkpoint's optimizer state is a {kind}, the model's optimizer "
            f"uses a {type(template).__name__}."
        )
    try:
        count = int(metadata["count"])
    except (KeyError, ValueError) as exc:
        raise CheckpointError("The optimizer state has no valid step count.") from exc
    fields = []
    expected = set()
    for field, value in zip(template._fields, template):
        if not isinstance(value, dict):
            fields.append(value)
            continue
        restored = {}
        for name, array in value.items():
            key = f"{name}.{field}"
            expected.add(key)
            saved = tensors.get(key)
            if saved is None or saved.shape != array.shape:
                got = "missing" if saved is None else f"shape {list(saved.shape)}"
                raise CheckpointError(
                    f"Optimizer tensor {key!r} should have shape {list(array.shape)}; "
                    f"the checkpoint has {got}."
                )
            # keep the template's dtype and memory order
            restored[name] = np.empty_like(array)
            np.copyto(restored[name], saved, casting="unsafe")
        fields.append(restored)
    extra = sorted(set(tensors) - expected)
    if extra:
        raise CheckpointError(
            f"Unexpected optimizer tensors in the checkpoint: {extra}."
        )
    return type(template)(*fields[:-1], count)
