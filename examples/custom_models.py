"""A worked custom model: multinomial logistic (softmax) regression.

Use it from a config with ``model.name: custom`` and
``model.params.class_path: "examples.custom_models:SoftmaxRegression"`` (see
``examples/custom_model.yaml``); the other params go to the constructor.

Only ``forward``, ``train_step``, ``save`` and ``load`` are required (see the README's
"BaseModel Interface"). This one also uses BaseModel's helpers, which give it mlx's
checkpoint format, the configured optimizer and a parameter count:

1. subclass :class:`mlx.models.BaseModel`;
2. ``__init__`` stores its keyword arguments as attributes, then calls
   ``self._setup()``, which runs ``_validate_params`` and ``_initialize``;
3. keep every learned array in ``self.params_`` (name -> ndarray): that is what
   checkpoints save and ``n_parameters`` counts;
4. implement ``forward(X)`` and ``train_step(X, y) -> {"loss": ...}``, using
   ``self._apply_gradients(grads)`` to let the configured optimizer update ``params_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlx import losses
from mlx.errors import ModelError
from mlx.models import BaseModel

__all__ = ["SoftmaxRegression"]


class SoftmaxRegression(BaseModel):
    """Linear classifier ``softmax(X W^T + b)`` trained on cross-entropy.

    Parameters
    ----------
    n_features : int
    n_classes : int >= 2
    seed : int or None
    optimizer_config : mapping or None (default SGD, learning rate 0.01)
    """

    task = "classification"

    def __init__(
        self,
        n_features: int = 1,
        n_classes: int = 2,
        seed: int | None = None,
        optimizer_config: dict[str, Any] | None = None,
    ) -> None:
        self.n_features = n_features
        self.n_classes = n_classes
        self.seed = seed
        self.optimizer_config = optimizer_config
        self._setup()

    def _validate_params(self) -> None:
        if not isinstance(self.n_features, int) or self.n_features < 1:
            raise ModelError(
                "The 'n_features' parameter of SoftmaxRegression must be an integer "
                f">= 1; got {self.n_features!r}."
            )
        if not isinstance(self.n_classes, int) or self.n_classes < 2:
            raise ModelError(
                "The 'n_classes' parameter of SoftmaxRegression must be an integer "
                f">= 2; got {self.n_classes!r}."
            )

    def _initialize(self) -> None:
        rng = np.random.default_rng(self.seed)
        self._n_features = self.n_features
        self.params_ = {
            "linear.weight": rng.normal(0.0, 0.01, (self.n_classes, self.n_features)),
            "linear.bias": np.zeros(self.n_classes),
        }

    def architecture(self) -> dict[str, Any]:
        return {"n_features": self.n_features, "n_classes": self.n_classes}

    def _logits(self, X: np.ndarray) -> np.ndarray:
        return X @ self.params_["linear.weight"].T + self.params_["linear.bias"]

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities of shape (n_samples, n_classes)."""
        logits = self._logits(X)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)

    def train_step(self, X: Any, y: Any) -> dict[str, float]:
        X = self._check_X(X)
        labels = np.asarray(y)
        self._check_n_samples(X, labels)
        if labels.ndim != 1 or labels.min() < 0 or labels.max() >= self.n_classes:
            raise ModelError(
                "SoftmaxRegression expects integer labels in "
                f"[0, {self.n_classes - 1}]."
            )
        loss, dlogits = losses.softmax_cross_entropy.value_and_grad(
            self._logits(X), labels.astype(np.intp)
        )
        self._apply_gradients(
            {"linear.weight": dlogits.T @ X, "linear.bias": dlogits.sum(axis=0)}
        )
        self.is_trained = True
        return {"loss": loss}
