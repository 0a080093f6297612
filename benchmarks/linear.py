"""Closed-form linear regression against scikit-learn's LinearRegression and Ridge.

Each side fits the same float64 arrays from scratch (input validation included);
the predictions on X are compared and their largest relative difference reported.
An ill-conditioned case (nearly collinear columns) is measured as well: there our
model may warn and take the slower pseudoinverse path.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np

from benchmarks._common import Row, Settings, paired_medians

__all__ = ["run"]

ALPHA = 1.0


def _data(n: int, p: int, ill: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    X = rng.standard_normal((n, p))
    if ill:
        # column 1 is column 0 plus a 1e-7 perturbation: condition number ~1e14
        X[:, 1] = X[:, 0] + 1e-7 * rng.standard_normal(n)
    y = X @ rng.standard_normal(p) + 0.1 * rng.standard_normal(n)
    return X, y


def _ours(X: np.ndarray, y: np.ndarray, alpha: float) -> Callable[[], Any]:
    from mlx.models import LinearRegression

    def fit() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the ill-conditioned case warns
            return LinearRegression(l2_regularization=alpha).fit(X, y)

    return fit


def _peer(X: np.ndarray, y: np.ndarray, alpha: float) -> Callable[[], Any] | None:
    try:
        from sklearn.linear_model import LinearRegression, Ridge
    except ImportError:
        return None

    def fit() -> Any:
        model = Ridge(alpha=alpha) if alpha else LinearRegression()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.fit(X, y)

    return fit


def _difference(ours: Any, peer: Any, X: np.ndarray) -> float:
    a = ours.predict(X)
    b = peer.predict(X)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def run(settings: Settings) -> list[Row]:
    shapes = [(2000, 20)] if settings.quick else [(100000, 100), (10000, 1000)]
    cases = [(shape, False) for shape in shapes]
    cases.append(((2000, 20) if settings.quick else (100000, 100), True))
    rows: list[Row] = []
    for (n, p), ill in cases:
        X, y = _data(n, p, ill)
        for alpha in (0.0, ALPHA):
            ours, peer = _ours(X, y, alpha), _peer(X, y, alpha)
            timing = paired_medians(ours, peer, settings)
            name = "Ridge" if alpha else "LinearRegression"
            target = "" if ill else ("<= 0.5" if alpha else "<= 0.2")
            extra = {}
            note = ""
            if peer is not None:
                diff = _difference(ours(), peer(), X)
                extra["max_relative_prediction_difference"] = diff
                note = f"predictions differ by {diff:.1e} (relative)"
            setting = f"fit ({n}, {p})" + (" ill-conditioned" if ill else "")
            if alpha:
                setting += f" alpha={alpha:g}"
            rows.append(
                Row(
                    "linear",
                    setting,
                    "s",
                    timing.ours,
                    timing.peer,
                    f"sklearn {name}" if peer is not None else "",
                    target if peer is not None else "",
                    note=note,
                    extra=extra,
                    paired_ratio=timing.ratio,
                )
            )
    return rows
