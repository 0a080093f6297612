"""Linear regression (optionally ridge), in closed form or by gradient descent."""

from __future__ import annotations

import numbers
import warnings
from typing import Any, Callable

import numpy as np

from mlx.errors import ModelError, NumericalWarning
from mlx.models._sklearn import EstimatorMixin
from mlx.models.base import BaseModel

__all__ = ["LinearRegression"]

#: Above this (1-norm) condition number of the equilibrated normal equations the
#: Cholesky solution loses too many digits: warn and use the pseudoinverse.
_MAX_CONDITION = 1e10

#: Forming the Gram matrix without centring X first loses about
#: log10(1 + mean**2 / variance) digits; beyond 1e4 we centre a copy of X.
_MAX_MEAN_TO_VARIANCE = 1e4


class LinearRegression(EstimatorMixin, BaseModel):
    """Least squares with an optional L2 penalty on the weights (not the bias).

    Minimises ``||X W^T + b - y||^2 + l2_regularization * ||W||^2``; with
    ``l2_regularization=0`` this is ordinary least squares (scikit-learn's
    ``LinearRegression``), otherwise ridge regression (``Ridge(alpha=l2)``).

    Parameters
    ----------
    seed : int or None
        Seeds the initial weights of gradient descent.
    use_gradient_descent : bool
        Train iteratively with the optimizer instead of the closed-form solve.
    l2_regularization : float >= 0
    optimizer_config : mapping or None
        Optimizer for gradient descent (see :func:`mlx.optim.get_optimizer`); without
        it, SGD with learning rate 0.01.

    Learned state: ``params_["linear.weight"]`` of shape (n_outputs, n_features) and
    ``params_["linear.bias"]`` of shape (n_outputs,).

    A scikit-learn regressor too: ``get_params``, ``set_params``, ``fit``, ``score``
    (R^2), so ``sklearn.base.clone`` and ``cross_val_score`` take it.
    """

    model_type = "linear_regression"
    task = "regression"

    def __init__(
        self,
        seed: int | None = None,
        use_gradient_descent: bool = False,
        l2_regularization: float = 0.0,
        optimizer_config: dict[str, Any] | None = None,
    ) -> None:
        self.seed = seed
        self.use_gradient_descent = use_gradient_descent
        self.l2_regularization = l2_regularization
        self.optimizer_config = optimizer_config
        self._setup()

    @property
    def closed_form(self) -> bool:
        """True unless ``use_gradient_descent``: the trainer then fits once."""
        return not self.use_gradient_descent

    def _validate_params(self) -> None:
        if self.seed is not None and (
            not isinstance(self.seed, numbers.Integral) or isinstance(self.seed, bool)
        ):
            raise ModelError(
                f"The 'seed' parameter of LinearRegression must be an integer or None; "
                f"got {self.seed!r}."
            )
        if not isinstance(self.use_gradient_descent, bool):
            raise ModelError(
                "The 'use_gradient_descent' parameter of LinearRegression must be true "
                f"or false; got {self.use_gradient_descent!r}."
            )
        l2 = self.l2_regularization
        if (
            not isinstance(l2, numbers.Real)
            or isinstance(l2, bool)
            or not np.isfinite(l2)
            or l2 < 0
        ):
            raise ModelError(
                "The 'l2_regularization' parameter of LinearRegression must be a "
                f"float in the range [0.0, inf); got {l2!r}."
            )

    def parameters_for(self, n_features: int) -> int:
        """The learned scalars once fitted to ``n_features`` columns: a weight per
        feature and a bias, per output (one, unless fitted to more already)."""
        return (int(n_features) + 1) * (self.n_outputs_ or 1)

    @property
    def n_outputs_(self) -> int | None:
        weight = self.params_.get("linear.weight")
        return None if weight is None else int(weight.shape[0])

    # --- prediction ----------------------------------------------------------------

    def forward(self, X: np.ndarray) -> np.ndarray:
        """X : (n_samples, n_features) -> (n_samples,) or (n_samples, n_outputs)."""
        self._check_trained()
        out = X @ self.params_["linear.weight"].T
        out += self.params_["linear.bias"]
        return out[:, 0] if out.shape[1] == 1 else out

    # --- closed form ---------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> LinearRegression:
        """Solve for the weights on all of ``X`` at once.

        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        The normal equations of the centred data, ``(Xc^T Xc + l2 I) w = Xc^T yc``,
        are equilibrated to unit diagonal and solved by Cholesky; the bias is then
        ``mean(y) - mean(X) w``. When their condition number exceeds 1e10 a
        NumericalWarning reports it and the minimum-norm least-squares
        (pseudoinverse) solution is used instead.
        """
        # the solver's first pass over X (its column sums) reveals NaN or inf, so
        # the separate finiteness pass is skipped: it would cost a fifth of the fit
        X = self._check_X(X, reset=True, check_finite=False)
        Y = self._check_y_regression(X, y, None)
        weight, bias = _solve(X, Y, float(self.l2_regularization), self._check_X_finite)
        self.params_ = {"linear.weight": weight, "linear.bias": bias}
        self._n_features = X.shape[1]
        self.optimizer_state_ = None
        self.is_trained = True
        return self

    # --- training ------------------------------------------------------------------

    def train_step(self, X: Any, y: Any) -> dict[str, float]:
        """One gradient step, or the closed-form fit when not ``use_gradient_descent``.

        Gradient descent minimises the closed-form objective divided by
        ``batch_size * n_outputs``, that is the mean squared error plus
        ``l2_regularization * ||W||^2 / (batch_size * n_outputs)``, so on full
        batches it converges to the closed-form solution. ``loss`` is that value
        before the step; for the closed-form fit it is the training mean squared
        error of the solution (there is no earlier iterate).
        """
        if not self.use_gradient_descent:
            self.fit(X, y)
            Xv = self._check_X(X)
            residual = self.forward(Xv).reshape(Xv.shape[0], -1)
            residual -= self._check_y_regression(Xv, y, self.n_outputs_)
            return {"loss": float(np.vdot(residual, residual)) / residual.size}
        X = self._check_X(X)
        Y = self._check_y_regression(X, y, self.n_outputs_)
        if not self.params_:
            self._initialize_weights(X.shape[1], Y.shape[1])
        weight, bias = self.params_["linear.weight"], self.params_["linear.bias"]
        residual = X @ weight.T
        residual += bias
        residual -= Y
        scale = 1.0 / residual.size
        l2 = float(self.l2_regularization)
        loss = float(np.vdot(residual, residual)) + l2 * float(np.vdot(weight, weight))
        grads = {
            "linear.weight": (residual.T @ X + l2 * weight) * (2.0 * scale),
            "linear.bias": residual.sum(axis=0) * (2.0 * scale),
        }
        self._apply_gradients(grads)
        self.is_trained = True
        return {"loss": loss * scale}

    def _initialize_weights(self, n_features: int, n_outputs: int) -> None:
        # torch.nn.Linear's default: uniform in +-1/sqrt(fan_in)
        rng = np.random.default_rng(self.seed)
        bound = 1.0 / np.sqrt(n_features)
        self.params_ = {
            "linear.weight": rng.uniform(-bound, bound, (n_outputs, n_features)),
            "linear.bias": rng.uniform(-bound, bound, n_outputs),
        }
        self._n_features = n_features
        self.optimizer_state_ = None


def _solve(
    X: np.ndarray,
    Y: np.ndarray,
    l2: float,
    check_finite: Callable[[np.ndarray], None],
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (n_outputs, n_features) and bias (n_outputs,) of the ridge problem.

    ``check_finite(X)`` raises for NaN/inf in X; it runs only when the column sums
    are not finite.
    """
    n, p = X.shape
    y_mean = Y.mean(axis=0)
    # One pass over X gives both X^T y and the column sums (X^T 1).
    stacked = np.empty((n, Y.shape[1] + 1))
    stacked[:, :-1] = Y
    stacked[:, -1] = 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        cross = X.T @ stacked
    if not np.isfinite(cross).all():
        check_finite(X)
        raise ModelError(
            "LinearRegression cannot fit: the sums of the features overflow "
            "float64; rescale X."
        )
    x_mean = cross[:, -1] / n
    # X^T X uses BLAS syrk; centring afterwards avoids copying X ...
    gram = X.T @ X
    gram -= n * np.outer(x_mean, x_mean)
    xty = cross[:, :-1] - n * np.outer(x_mean, y_mean)
    variance = np.diag(gram) / n
    # ... unless large means would cancel most of the digits of the variances.
    if np.any(x_mean**2 > _MAX_MEAN_TO_VARIANCE * np.maximum(variance, 1e-300)):
        Xc = X - x_mean
        gram = Xc.T @ Xc
        xty = Xc.T @ (Y - y_mean)
    gram.flat[:: p + 1] += l2
    w, condition = _cholesky_solve(gram, xty)
    if w is None:
        warnings.warn(
            "The normal equations are near-singular (condition number "
            f"{condition:.3g}); using the pseudoinverse. Add l2_regularization or "
            "remove collinear features.",
            NumericalWarning,
            stacklevel=3,
        )
        w = _pseudoinverse_solve(X - x_mean, Y - y_mean, l2)
    weight = np.ascontiguousarray(w.T)
    bias = y_mean - x_mean @ w
    return weight, bias


def _cholesky_solve(
    gram: np.ndarray, rhs: np.ndarray
) -> tuple[np.ndarray | None, float]:
    """Solve ``gram w = rhs`` for a symmetric positive (semi)definite ``gram``.

    Returns (w, condition number), with w None when the system is too ill-conditioned
    to trust. The system is scaled to unit diagonal first, so the condition number
    does not depend on the units of the features.
    """
    diagonal = np.diag(gram).copy()
    if np.any(diagonal <= 0):
        return None, float("inf")
    scale = 1.0 / np.sqrt(diagonal)
    scaled = gram * scale[:, None]
    scaled *= scale
    b = rhs * scale[:, None]
    try:
        from scipy.linalg import cho_solve
        from scipy.linalg.lapack import get_lapack_funcs
    except ImportError:  # pragma: no cover - scipy comes with scikit-learn
        return _eigen_solve(scaled, b, scale)
    norm1 = float(np.abs(scaled).sum(axis=0).max())
    # The O(p^3) factorization runs in NumPy's LAPACK, in the same BLAS thread pool
    # that just formed the Gram matrix: SciPy ships its own OpenBLAS, whose threads
    # would fight NumPy's still-spinning ones (that doubled the fit time at p=1000).
    # SciPy only does the O(p^2) condition estimate and triangular solves.
    try:
        lower_factor = np.linalg.cholesky(scaled)
    except np.linalg.LinAlgError:
        return None, float(np.linalg.cond(scaled, 1))
    factor = lower_factor.T  # upper triangular, Fortran-ordered: no copy for LAPACK
    (pocon,) = get_lapack_funcs(("pocon",), (factor,))
    rcond, info = pocon(factor, norm1, uplo="U")
    condition = float("inf") if rcond <= 0 else 1.0 / float(rcond)
    if info != 0 or condition > _MAX_CONDITION:
        return None, condition
    w = cho_solve((factor, False), b, check_finite=False)
    return w * scale[:, None], condition


def _eigen_solve(
    scaled: np.ndarray, b: np.ndarray, scale: np.ndarray
) -> tuple[np.ndarray | None, float]:
    """NumPy-only fallback of :func:`_cholesky_solve`, slower but exact."""
    eigenvalues = np.linalg.eigvalsh(scaled)
    condition = (
        float("inf") if eigenvalues[0] <= 0 else float(eigenvalues[-1] / eigenvalues[0])
    )
    if condition > _MAX_CONDITION:
        return None, condition
    return np.linalg.solve(scaled, b) * scale[:, None], condition


def _pseudoinverse_solve(Xc: np.ndarray, Yc: np.ndarray, l2: float) -> np.ndarray:
    """Minimum-norm least-squares solution of the (ridge-augmented) centred system."""
    if l2 > 0:
        p = Xc.shape[1]
        Xc = np.vstack([Xc, np.sqrt(l2) * np.eye(p)])
        Yc = np.vstack([Yc, np.zeros((p, Yc.shape[1]))])
    w, *_ = np.linalg.lstsq(Xc, Yc, rcond=None)
    return w
