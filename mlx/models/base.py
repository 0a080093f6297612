"""The model interface every model implements, with validation and checkpoints.

Conventions (scikit-learn's): constructors only store their keyword arguments, then
call :meth:`BaseModel._setup`, the one path that validates them and builds the learned
state. Hyperparameters are plain attributes named like the constructor arguments;
learned state ends with an underscore (``params_``, ``optimizer_state_``,
``n_features_in_``).

A subclass implements :meth:`BaseModel.forward` and :meth:`BaseModel.train_step`, and
keeps its trainable arrays in ``self.params_`` (a dict ``name -> ndarray``, the names
used in ``model.safetensors``); saving, loading, ``n_parameters`` and the optimizer
plumbing then come for free. Optional hooks: ``_validate_params`` (raise
:class:`~mlx.errors.ModelError`), ``_initialize`` (build ``params_`` from the
hyperparameters) and ``architecture`` (what a checkpoint must match).
"""

from __future__ import annotations

import abc
import inspect
import os
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

from mlx._version import __version__
from mlx.errors import CheckpointError, ModelError, NotTrainedError
from mlx.models import checkpoint
from mlx.numerics.optim import (
    DEFAULT_CONFIG,
    Optimizer,
    get_optimizer,
    state_from_tensors,
    state_to_tensors,
)

__all__ = ["BaseModel", "jsonable"]


class BaseModel(abc.ABC):
    """Abstract base class of every model.

    Attributes
    ----------
    task : "regression" or "classification"
    closed_form : bool
        True when the model fits in one call on the whole training split.
    is_trained : bool
        False until a training step, a fit or a load.
    params_ : dict of str to ndarray
        The learned arrays.
    optimizer_ : Optimizer
        The installed optimizer; ``optimizer_state_`` its state (None until first
        needed).
    """

    #: Name under which :func:`mlx.models.get_model` knows the class.
    model_type: ClassVar[str] = "custom"
    task: str = "regression"
    #: Float dtype of inputs, weights and computations.
    _dtype: Any = np.float64

    params_: dict[str, np.ndarray]
    optimizer_: Optimizer
    optimizer_state_: Any
    is_trained: bool

    # --- construction ------------------------------------------------------------

    def _setup(self) -> None:
        """Validate the hyperparameters and build the initial learned state."""
        self._validate_params()
        config = getattr(self, "optimizer_config", None)
        if config is not None and not isinstance(config, Mapping):
            raise ModelError(
                f"The 'optimizer_config' parameter of {type(self).__name__} must be a "
                f"mapping; got {config!r}."
            )
        self.optimizer_ = get_optimizer({**DEFAULT_CONFIG, **(config or {})})
        self.optimizer_state_ = None
        self.params_ = {}
        self.is_trained = False
        self._initialize()

    def _validate_params(self) -> None:  # noqa: B027 - optional hook
        """Raise ModelError for invalid hyperparameters (subclasses extend this)."""

    def _initialize(self) -> None:  # noqa: B027 - optional hook
        """Build ``params_`` from the hyperparameters (empty until fit by default)."""

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [
            name
            for name, p in signature.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The hyperparameters: constructor arguments by name (``deep`` is
        scikit-learn's; no hyperparameter is itself an estimator, so it changes
        nothing)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def architecture(self) -> dict[str, Any]:
        """What a checkpoint must match to load into this model (default: nothing)."""
        return {}

    def __repr__(self) -> str:
        # a subclass may keep its constructor arguments under other names
        names = (
            self._param_names() if type(self).__init__ is not object.__init__ else []
        )
        args = ", ".join(f"{k}={getattr(self, k, '?')!r}" for k in names)
        return f"{type(self).__name__}({args})"

    # --- the interface -----------------------------------------------------------

    @abc.abstractmethod
    def forward(self, X: np.ndarray) -> np.ndarray:
        """Predictions for validated input ``X`` of shape (n_samples, n_features)."""

    @abc.abstractmethod
    def train_step(self, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """One training step on a batch; returns at least ``{"loss": float}``, the
        batch loss computed before the update."""

    def predict(self, X: Any) -> np.ndarray:
        """Validate ``X`` and return :meth:`forward`'s predictions.

        Returns an ndarray of shape (n_samples,) for a single output, else
        (n_samples, n_outputs).
        """
        self._check_trained()
        return self.forward(self._check_X(X))

    def predict_logits(self, X: Any) -> np.ndarray | None:
        """The raw outputs for ``X``, before the output activation: a classifier's
        logits (shape as :meth:`predict`'s), a regressor's predictions.

        The harness computes ``val_loss`` from them with the training loss
        (:func:`mlx.numerics.losses.cross_entropy`). None, the default, says that the
        model computes only probabilities; the harness then takes the cross-entropy
        of those (:func:`~mlx.numerics.losses.probability_cross_entropy`).
        """
        return None

    @property
    def closed_form(self) -> bool:
        """True when the model fits in one call on the whole training split
        (:class:`~mlx.models.LinearRegression` without gradient descent)."""
        return False

    @property
    def n_parameters(self) -> int:
        """Number of learned scalars."""
        return int(sum(value.size for value in self.params_.values()))

    @property
    def n_features_in_(self) -> int | None:
        """Number of input features, once known (None before)."""
        return getattr(self, "_n_features", None)

    # --- optimizer ---------------------------------------------------------------

    def set_optimizer(self, optimizer: Optimizer) -> None:
        """Install ``optimizer`` (e.g. with a learning-rate schedule); its state
        starts afresh."""
        if not (
            callable(getattr(optimizer, "init", None)) and callable(optimizer.update)
        ):
            raise ModelError(
                "set_optimizer needs an mlx.optim.Optimizer (with init and update); "
                f"got {optimizer!r}."
            )
        self.optimizer_ = optimizer
        self.optimizer_state_ = None

    def _apply_gradients(self, grads: dict[str, np.ndarray]) -> None:
        """Update ``params_`` in place from ``grads`` with the installed optimizer."""
        if self.optimizer_state_ is None:
            self.optimizer_state_ = self.optimizer_.init(self.params_)
        update_inplace = self.optimizer_.update_inplace
        if update_inplace is not None:
            _, self.optimizer_state_ = update_inplace(
                grads, self.optimizer_state_, self.params_
            )
            return
        new, self.optimizer_state_ = self.optimizer_.update(
            grads, self.optimizer_state_, self.params_
        )
        for name, value in self.params_.items():
            # copy into the existing arrays: subclasses may hold views of them
            np.copyto(value, new[name])

    # --- validation --------------------------------------------------------------

    def _check_trained(self) -> None:
        if not self.is_trained:
            raise NotTrainedError(
                f"This {type(self).__name__} is not trained yet: call train_step (or "
                "fit) or load a checkpoint before predicting."
            )

    def _check_X(
        self, X: Any, reset: bool = False, check_finite: bool = True
    ) -> np.ndarray:
        """``X`` as a C-contiguous 2-D array of the model's float dtype, or a
        ModelError saying why not.

        X : array-like of shape (n_samples, n_features)
        check_finite : False leaves the NaN/inf check to a caller whose own pass over
            ``X`` reveals them (then calls :meth:`_check_X_finite`).
        """
        name = type(self).__name__
        try:
            array = np.asarray(X)
        except Exception as exc:  # ragged lists and the like
            raise ModelError(f"{name} expects X to be a numeric array: {exc}") from exc
        if array.dtype.kind not in "biuf":
            raise ModelError(
                f"{name} expects X to be a numeric array; got dtype {array.dtype}."
            )
        if array.ndim != 2:
            raise ModelError(
                f"{name} expects X of shape (n_samples, n_features), a 2-D array; "
                f"got shape {array.shape}."
            )
        if array.shape[0] == 0 or array.shape[1] == 0:
            raise ModelError(f"{name} expects a non-empty X; got shape {array.shape}.")
        expected = None if reset else self.n_features_in_
        if expected is not None and array.shape[1] != expected:
            raise ModelError(
                f"{name} expects X with {expected} features; got {array.shape[1]}."
            )
        array = np.ascontiguousarray(array, dtype=self._dtype)
        if check_finite:
            _check_finite(array, name, "X")
        return array

    def _check_X_finite(self, X: np.ndarray) -> None:
        """ModelError when ``X`` holds NaN or inf."""
        _check_finite(X, type(self).__name__, "X")

    def _check_n_samples(self, X: np.ndarray, y: np.ndarray) -> None:
        if y.ndim == 0 or y.shape[0] != X.shape[0]:
            raise ModelError(
                f"{type(self).__name__} expects y with one row per sample of X "
                f"({X.shape[0]}); got y of shape {y.shape}."
            )

    def _check_y_regression(
        self, X: np.ndarray, y: Any, n_outputs: int | None
    ) -> np.ndarray:
        """Regression targets as an (n_samples, n_outputs) float array.

        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        """
        name = type(self).__name__
        target = np.asarray(y)
        if target.dtype.kind not in "biuf":
            raise ModelError(f"{name} expects numeric y; got dtype {target.dtype}.")
        self._check_n_samples(X, target)
        if target.ndim == 1:
            target = target.reshape(-1, 1)
        if target.ndim != 2 or (n_outputs is not None and target.shape[1] != n_outputs):
            want = (
                "(n_samples,)"
                if n_outputs in (None, 1)
                else f"(n_samples, {n_outputs})"
            )
            raise ModelError(f"{name} expects y of shape {want}; got {np.shape(y)}.")
        target = np.ascontiguousarray(target, dtype=self._dtype)
        _check_finite(target, name, "y")
        return target

    # --- checkpoints -------------------------------------------------------------

    def _config_document(self) -> dict[str, Any]:
        cls = type(self)
        optimizer_config = (
            dict(self.optimizer_.config) if self.optimizer_.config else None
        )
        return {
            "library_version": __version__,
            "model_type": cls.model_type,
            "class_path": f"{cls.__module__}:{cls.__qualname__}",
            "task": self.task,
            "architecture": self.architecture(),
            "hyperparameters": jsonable(self.get_params()),
            "optimizer": jsonable(optimizer_config),
            "n_features": self.n_features_in_,
            "is_trained": bool(self.is_trained),
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a checkpoint directory at ``path``.

        Files: ``config.json`` (model type, architecture, hyperparameters, optimizer
        config, format and library versions), ``model.safetensors`` (float64 tensors,
        weights shaped (out_features, in_features) like ``torch.nn.Linear``) and
        ``optimizer.safetensors`` (the optimizer state, step count in its metadata).
        """
        self.snapshot()(path)

    def snapshot(self) -> Callable[[str | os.PathLike[str]], None]:
        """A function that writes the checkpoint of the model as it is now.

        The weights and optimizer state are copied at once; the returned function
        does the file work (what :meth:`save` does) whenever it is called, from any
        thread, whatever training did to the model in between. The trainer uses it
        to write checkpoints in the background.
        """
        if not self.params_:
            raise NotTrainedError(
                f"This {type(self).__name__} has no weights to save yet: train or "
                "load it first."
            )
        state = self.optimizer_state_
        if state is None:
            state = self.optimizer_.init(self.params_)
        try:
            opt_tensors, opt_metadata = state_to_tensors(state)
        except (AttributeError, TypeError):
            # a user optimizer whose state is not a NamedTuple of arrays
            opt_tensors, opt_metadata = {}, {"state": "unsupported", "count": "0"}
        config = self._config_document()
        tensors = _float64_copies(self.params_)
        opt_tensors = _float64_copies(opt_tensors)

        def write(path: str | os.PathLike[str]) -> None:
            checkpoint.write_checkpoint(
                path, config, tensors, opt_tensors, opt_metadata
            )

        return write

    def load(
        self, path: str | os.PathLike[str], restore_optimizer: bool | None = None
    ) -> None:
        """Restore the weights (and optimizer state) saved at ``path``.

        The checkpoint must be of the same model type and architecture, else a
        CheckpointError names both. The optimizer state is restored when the
        installed optimizer keeps the same kind of state; ``restore_optimizer=True``
        makes that mandatory, ``False`` skips it (the state then starts afresh).
        """
        config = checkpoint.read_config(path)
        self._check_compatible(config)
        tensors, _ = checkpoint.read_tensors(path, checkpoint.MODEL_FILE, config)
        self._load_tensors(tensors, config)
        self.optimizer_state_ = None
        if restore_optimizer is not False:
            opt_tensors, opt_metadata = checkpoint.read_tensors(
                path, checkpoint.OPTIMIZER_FILE, config
            )
            template = self.optimizer_.init(self.params_)
            same_kind = opt_metadata.get("state") == type(template).__name__
            if same_kind or restore_optimizer:
                self.optimizer_state_ = state_from_tensors(
                    template, opt_tensors, opt_metadata
                )
        self.is_trained = True

    def _check_compatible(self, config: Mapping[str, Any]) -> None:
        cls = type(self)
        saved_type = config.get("model_type")
        if saved_type != cls.model_type or (
            cls.model_type == "custom"
            and config.get("class_path") != f"{cls.__module__}:{cls.__qualname__}"
        ):

            def describe(model_type: object, class_path: object) -> str:
                return f"{model_type!r}" + (
                    f" ({class_path})" if model_type == "custom" else ""
                )

            here = f"{cls.__module__}:{cls.__qualname__}"
            raise CheckpointError(
                "The checkpoint holds a "
                f"{describe(saved_type, config.get('class_path'))} model; this model "
                f"is a {describe(cls.model_type, here)}."
            )
        saved_arch = config.get("architecture") or {}
        if not isinstance(saved_arch, Mapping):
            raise CheckpointError(
                "The checkpoint's config.json is corrupted: 'architecture' must be "
                f"a mapping; got {type(saved_arch).__name__}."
            )
        for key, value in self.architecture().items():
            if saved_arch.get(key) != jsonable(value):
                raise CheckpointError(
                    f"Architecture mismatch: checkpoint has {key} "
                    f"{_as_text(saved_arch.get(key))}, model has {_as_text(value)}."
                )

    def _load_tensors(
        self, tensors: Mapping[str, np.ndarray], config: Mapping[str, Any]
    ) -> None:
        """Copy saved tensors into ``params_`` (or create them if it is empty)."""
        if not self.params_:
            self.params_ = {k: v.copy() for k, v in tensors.items()}
            n_features = config.get("n_features")
            if n_features is not None:
                if isinstance(n_features, bool) or not isinstance(n_features, int):
                    raise CheckpointError(
                        "The checkpoint's config.json is corrupted: 'n_features' "
                        f"must be an integer; got {n_features!r:.60}."
                    )
                self._n_features = n_features
            return
        missing = sorted(set(self.params_) - set(tensors))
        extra = sorted(set(tensors) - set(self.params_))
        if missing or extra:
            raise CheckpointError(
                f"The checkpoint's tensors do not match the model: missing {missing}, "
                f"unexpected {extra}."
            )
        for key, value in self.params_.items():
            if tensors[key].shape != value.shape:
                raise CheckpointError(
                    f"Architecture mismatch: checkpoint has {key} of shape "
                    f"{list(tensors[key].shape)}, model has {list(value.shape)}."
                )
        for key, value in self.params_.items():
            np.copyto(value, tensors[key], casting="unsafe")


def _float64_copies(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    # checkpoints hold float64; np.array copies even when the dtype already matches
    return {name: np.array(value, dtype=np.float64) for name, value in arrays.items()}


def _check_finite(array: np.ndarray, model: str, what: str) -> None:
    # The sum of squares is NaN or inf whenever a value is (or when it overflows),
    # and BLAS computes it ~4x faster than NumPy sums the values: the train step
    # runs this on every batch. The elementwise check only confirms a problem.
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.vdot(array, array)
    if not np.isfinite(total) and not np.isfinite(array).all():
        raise ModelError(f"{model} expects finite values in {what}; got NaN or inf.")


def jsonable(value: Any) -> Any:
    """Hyperparameters and architectures as JSON takes them: mappings and sequences
    as dicts and lists, NumPy scalars as Python ones, a schedule as ``"schedule"``."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if callable(value):
        return "schedule"
    return value


def _as_text(value: Any) -> str:
    return "none" if value is None else str(value)
