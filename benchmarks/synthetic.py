"""Synthetic data generation against scikit-learn's make_regression and
make_classification, at the same shape (all features informative, float64)."""

from __future__ import annotations

from typing import Any, Callable

from benchmarks._common import Row, Settings, paired_medians

__all__ = ["run"]


def run(settings: Settings) -> list[Row]:
    from mlx.datasets.synthetic import SyntheticClassification, SyntheticRegression

    n, p = (2000, 20) if settings.quick else (100000, 100)
    try:
        from sklearn.datasets import make_classification, make_regression
    except ImportError:
        make_classification = make_regression = None

    cases: list[tuple] = [
        (
            "make_regression",
            lambda: SyntheticRegression(n, p, noise_std=0.1, seed=0).generate(),
            None
            if make_regression is None
            else lambda: make_regression(
                n, p, n_informative=p, noise=0.1, random_state=0
            ),
        ),
        (
            "make_classification",
            lambda: SyntheticClassification(n, p, n_classes=2, seed=0).generate(),
            None
            if make_classification is None
            else lambda: make_classification(
                n, p, n_informative=p, n_redundant=0, n_classes=2, random_state=0
            ),
        ),
    ]
    rows: list[Row] = []
    for name, ours, peer in cases:
        peer_fn: Callable[[], Any] | None = peer
        timing = paired_medians(ours, peer_fn, settings)
        rows.append(
            Row(
                "synthetic",
                f"{name.replace('make_', '')} ({n}, {p})",
                "s",
                timing.ours,
                timing.peer,
                f"sklearn {name}" if timing.peer is not None else "",
                "<= 0.5" if timing.peer is not None else "",
                paired_ratio=timing.ratio,
            )
        )
    return rows
