"""scikit-learn's estimator conventions for the built-in models.

:class:`EstimatorMixin` gives :class:`~mlx.models.LinearRegression` and
:class:`~mlx.models.MLP` what ``sklearn.base.clone``, ``cross_val_score``, grid
searches and pipelines call: ``get_params(deep=True)``, ``set_params``, ``fit``,
``score`` and, for classifiers, ``predict_proba`` and ``classes_``. ``predict`` keeps
its documented behaviour (class probabilities for a sigmoid or softmax MLP). The
BaseModel contract does not include any of this: a user model needs none of it.
scikit-learn itself is imported only when scikit-learn asks for the tags.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlx.errors import ModelError

__all__ = ["ClassifierMixin", "EstimatorMixin"]


class EstimatorMixin:
    """scikit-learn interoperability for a model whose constructor arguments are
    its hyperparameters, stored under their own names."""

    task: str
    get_params: Any
    predict: Any
    _setup: Any

    def set_params(self, **params: Any) -> Any:
        """Set hyperparameters by name, check them and start from fresh weights
        (as after construction); returns the model."""
        valid = self.get_params(deep=False)
        for name in params:
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for {type(self).__name__}; valid "
                    f"parameters are {sorted(valid)}."
                )
        previous = {name: valid[name] for name in params}
        for name, value in params.items():
            setattr(self, name, value)
        try:
            self._setup()
        except ModelError:
            for name, value in previous.items():
                setattr(self, name, value)
            raise
        return self

    # --- what scikit-learn reads to tell a classifier from a regressor --------------

    @property
    def _estimator_type(self) -> str:
        return "classifier" if self.task == "classification" else "regressor"

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, RegressorTags, Tags, TargetTags

        classifier = self.task == "classification"
        return Tags(
            estimator_type=self._estimator_type,
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags() if classifier else None,
            regressor_tags=None if classifier else RegressorTags(),
        )

    # --- scoring -------------------------------------------------------------------

    def score(self, X: Any, y: Any) -> float:
        """The coefficient of determination R^2 of the predictions (averaged over
        outputs): scikit-learn's default score for a regressor."""
        prediction = np.asarray(self.predict(X), dtype=np.float64)
        actual = np.asarray(y, dtype=np.float64).reshape(prediction.shape)
        residual = ((actual - prediction) ** 2).sum(axis=0)
        total = ((actual - actual.mean(axis=0)) ** 2).sum(axis=0)
        safe = np.where(total > 0, total, 1.0)
        return float(np.mean(np.where(total > 0, 1.0 - residual / safe, 0.0)))


class ClassifierMixin(EstimatorMixin):
    """:class:`EstimatorMixin` plus ``predict_proba`` and ``classes_``, which exist
    only while the model is a classifier (a regression MLP has neither, so
    ``hasattr`` tells scikit-learn the truth)."""

    _classes: Any = None

    def _n_outputs(self) -> int:
        raise NotImplementedError

    @property
    def classes_(self) -> np.ndarray:
        if self.task != "classification":
            raise AttributeError(f"a regression {type(self).__name__} has no classes_")
        if self._classes is not None:
            return np.asarray(self._classes)
        # trained by the harness on labels 0..k-1
        return np.arange(max(2, self._n_outputs()))

    @property
    def predict_proba(self) -> Any:
        if self.task != "classification":
            raise AttributeError(
                f"a regression {type(self).__name__} has no predict_proba"
            )
        return self._predict_proba

    def score(self, X: Any, y: Any) -> float:
        """Accuracy for a classifier (scikit-learn's default), R^2 for a
        regressor."""
        if self.task != "classification":
            return float(super().score(X, y))
        target = np.asarray(y)
        predicted = self.predict_classes(X)
        if target.ndim == 2 and target.shape[1] > 1 and predicted.ndim == 1:
            target = self.classes_[np.argmax(target, axis=1)]  # one-hot rows
        return float(np.mean(predicted == target))

    def predict_classes(self, X: Any) -> np.ndarray:
        """The most probable class of each row, as a value of ``classes_``; for
        several independent sigmoid outputs (multi-label), each output thresholded
        at 0.5."""
        proba = self.predict_proba(X)
        if self._multilabel():
            return (proba >= 0.5).astype(np.intp)
        return self.classes_[np.argmax(proba, axis=1)]

    def _multilabel(self) -> bool:
        return False

    def _predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), in the order of
        ``classes_``; a single sigmoid output p becomes the columns (1 - p, p)."""
        proba = np.asarray(self.predict(X), dtype=np.float64)
        if proba.ndim == 1:
            return np.column_stack([1.0 - proba, proba])
        return proba

    def _encode_labels(self, y: Any) -> Any:
        """``classes_`` from ``y`` and the labels the network trains on."""
        labels = np.asarray(y)
        k = self._n_outputs()
        if labels.ndim != 1:
            self._classes = None
            return labels  # one-hot rows or multi-label targets, as train_step takes
        classes, encoded = np.unique(labels, return_inverse=True)
        softmax = k > 1
        if labels.dtype.kind in "biu" and softmax and classes.min() >= 0:
            if classes.max() < k:
                self._classes = np.arange(k)
                return labels
        width = k if softmax else 2
        if len(classes) > width:
            raise ModelError(
                f"{type(self).__name__} has {width} classes to predict; y holds "
                f"{len(classes)} distinct labels."
            )
        self._classes = classes if len(classes) == width else None
        if self._classes is None:
            raise ModelError(
                f"{type(self).__name__} predicts {width} classes; y holds only "
                f"{len(classes)} distinct labels, so which is which is unknown "
                f"(use integer labels 0..{width - 1})."
            )
        return encoded if softmax else encoded.astype(np.float64)
