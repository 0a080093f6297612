"""Synthetic regression and classification data, bit-identical for a given seed.

Both generators draw from ``numpy.random.default_rng(seed)`` (PCG64) in a fixed order,
so the same seed gives the same arrays in every call, process and run on any platform
NumPy supports. The memory guard runs before anything is allocated.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

from mlx.datasets._checks import (
    check_float,
    check_int,
    check_seed,
    format_bytes,
)
from mlx.datasets.info import MEMORY_LIMIT_BYTES
from mlx.errors import DatasetError

__all__ = ["SyntheticClassification", "SyntheticRegression"]

# Informative regression weights have magnitude in [0.5, 2.0): never so close to zero
# that an "informative" feature carries no signal.
_WEIGHT_LOW, _WEIGHT_HIGH = 0.5, 2.0
# Values of X per independently seeded block (8 MiB of float64).
_BLOCK_VALUES = 1 << 20


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _Synthetic:
    """Shared parameter handling: sizes, informative features, seed, memory guard."""

    def __init__(
        self,
        n_samples: int,
        n_features: int,
        n_informative: int | None,
        seed: int | None,
    ) -> None:
        self.n_samples = n_samples
        self.n_features = n_features
        self.n_informative = n_informative
        self.seed = seed
        self._validate()

    def _validate(self) -> None:
        owner = type(self).__name__
        n_samples = check_int(owner, "n_samples", self.n_samples, minimum=1)
        n_features = check_int(owner, "n_features", self.n_features, minimum=1)
        if self.n_informative is not None:
            check_int(
                owner,
                "n_informative",
                self.n_informative,
                minimum=1,
                maximum=n_features,
                maximum_name="n_features",
            )
        if self.seed is not None:
            check_seed(owner, "seed", self.seed)
        self._check_memory(n_samples, n_features)

    def _check_memory(self, n_samples: int, n_features: int) -> None:
        # Python ints: no overflow, and nothing is allocated to find out.
        need = self.memory_bytes
        if need > MEMORY_LIMIT_BYTES:
            raise DatasetError(
                f"{type(self).__name__} with n_samples={n_samples} and "
                f"n_features={n_features} would need {format_bytes(need)} "
                f"({need} bytes) for X and y, above the "
                f"{format_bytes(MEMORY_LIMIT_BYTES)} limit; reduce 'n_samples' or "
                "'n_features'."
            )

    @property
    def memory_bytes(self) -> int:
        """Bytes of ``X`` (float64) plus ``y`` (8 bytes per label)."""
        return int(self.n_samples) * (int(self.n_features) + 1) * 8

    @property
    def _informative(self) -> int:
        return self.n_features if self.n_informative is None else self.n_informative

    def _seed(self, seed: int | None) -> int:
        self._validate()
        owner = type(self).__name__
        if seed is None:
            if self.seed is None:
                raise DatasetError(
                    f"{owner}.generate() needs a seed: pass generate(seed=...) or "
                    f"construct {owner}(..., seed=...)."
                )
            return int(self.seed)
        return check_seed(owner, "seed", seed)

    def _fill(
        self,
        seed: int,
        finish: Callable[[np.ndarray, slice], None],
        dtype: str = "float64",
    ) -> np.ndarray:
        """X of standard normals, filled block by block, ``finish(block, rows)``
        applied to each block of rows.

        Each block of about 2**20 values has its own stream, spawned from
        ``SeedSequence(seed)``; the blocks depend only on the shape, so the result
        is the same whatever the number of threads that fill them. NumPy releases
        the GIL while drawing, so threads use all cores. Values are always drawn
        and finished in float64; with ``dtype="float32"`` each block goes through a
        per-thread float64 buffer and is stored rounded, which equals converting
        the float64 result afterwards.
        """
        n_samples, n_features = int(self.n_samples), int(self.n_features)
        X = np.empty((n_samples, n_features), dtype=dtype)
        step = max(1, _BLOCK_VALUES // n_features)
        starts = range(0, n_samples, step)
        streams = np.random.SeedSequence(seed).spawn(len(starts))
        in_place = X.dtype == np.float64
        buffers = threading.local()  # one float64 block per thread otherwise

        def fill(i: int) -> None:
            start, stop = starts[i], min(starts[i] + step, n_samples)
            rows = slice(start, stop)
            rng = np.random.default_rng(streams[i])
            if in_place:
                block = X[rows]
            else:
                if getattr(buffers, "block", None) is None:
                    buffers.block = np.empty((step, n_features))
                block = buffers.block[: stop - start]
            rng.standard_normal(dtype=np.float64, out=block)
            finish(block, rows)
            if not in_place:
                X[rows] = block

        workers = min(_cpu_count(), len(starts))
        if workers <= 1:
            for i in range(len(starts)):
                fill(i)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(fill, range(len(starts))))
        return X

    def _informative_columns(self, rng: np.random.Generator) -> np.ndarray:
        k = self._informative
        if k == self.n_features:
            return np.arange(k)
        return np.sort(rng.choice(self.n_features, size=k, replace=False))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"

    def _params(self) -> dict[str, Any]:
        raise NotImplementedError


class SyntheticRegression(_Synthetic):
    """Linear data with Gaussian noise: ``y = X @ weights + noise``.

    Features are independent standard normals. ``n_informative`` weights (at columns
    drawn from the seed) have magnitude in [0.5, 2) and random sign; all others are
    exactly zero, so the remaining features are pure noise. ``noise`` is Gaussian with
    standard deviation ``noise_std``.

    Parameters
    ----------
    n_samples : int >= 1
    n_features : int >= 1
    n_informative : int in [1, n_features], default n_features
    noise_std : float >= 0
    seed : int >= 0 or None
        Default seed of :meth:`generate`.
    """

    def __init__(
        self,
        n_samples: int = 1000,
        n_features: int = 10,
        n_informative: int | None = None,
        noise_std: float = 0.1,
        seed: int | None = None,
    ) -> None:
        self.noise_std = noise_std
        super().__init__(n_samples, n_features, n_informative, seed)

    def _validate(self) -> None:
        check_float(type(self).__name__, "noise_std", self.noise_std, minimum=0.0)
        super()._validate()

    def _params(self) -> dict[str, Any]:
        return {
            "n_samples": self.n_samples,
            "n_features": self.n_features,
            "n_informative": self.n_informative,
            "noise_std": self.noise_std,
            "seed": self.seed,
        }

    def generate(self, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw the data set.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features), float64
        y : ndarray of shape (n_samples,), float64
        """
        X, y, _ = self._generate(seed)
        return X, y

    def generate_with_weights(
        self, seed: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like :meth:`generate`, plus the true ``weights`` of shape (n_features,)."""
        return self._generate(seed)

    def _generate(self, seed: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        seed = self._seed(seed)
        rng = np.random.default_rng(seed)
        # Fixed draw order from `rng`: informative columns, weights, signs, noise;
        # X comes from its own block streams (see _fill).
        columns = self._informative_columns(rng)
        k = columns.size
        weights = np.zeros(self.n_features, dtype=np.float64)
        magnitude = rng.uniform(_WEIGHT_LOW, _WEIGHT_HIGH, size=k)
        sign = np.where(rng.integers(0, 2, size=k) == 1, 1.0, -1.0)
        weights[columns] = magnitude * sign
        y = np.empty(self.n_samples, dtype=np.float64)
        rng.standard_normal(dtype=np.float64, out=y)
        y *= float(self.noise_std)

        # one BLAS call after the fill: BLAS threads inside fill threads would fight
        X = self._fill(seed, lambda block, rows: None)
        y += X @ weights
        return X, y, weights


class SyntheticClassification(_Synthetic):
    """Gaussian clusters, one per class, around class-specific means.

    The ``n_informative`` informative columns (drawn from the seed) hold
    ``class_sep * vertex[label] + N(0, 1)``; the other columns are pure N(0, 1) noise.
    Class vertices are distinct points of the grid {-1, ..., 1}^d (the corners of a
    hypercube whenever ``2 ** n_informative >= n_classes``), and the informative
    columns beyond d split the classes into two halves, so every informative column
    carries class signal. The distance between two class means grows linearly with
    ``class_sep``: larger is easier. Labels are
    balanced (counts differ by at most one) and shuffled.

    Parameters
    ----------
    n_samples : int >= 1
    n_features : int >= 1
    n_informative : int in [1, n_features], default n_features
    n_classes : int >= 2
    class_sep : float > 0
    seed : int >= 0 or None
        Default seed of :meth:`generate`.
    """

    def __init__(
        self,
        n_samples: int = 1000,
        n_features: int = 10,
        n_informative: int | None = None,
        n_classes: int = 2,
        class_sep: float = 1.0,
        seed: int | None = None,
    ) -> None:
        self.n_classes = n_classes
        self.class_sep = class_sep
        super().__init__(n_samples, n_features, n_informative, seed)

    def _validate(self) -> None:
        owner = type(self).__name__
        check_int(owner, "n_classes", self.n_classes, minimum=2)
        check_float(owner, "class_sep", self.class_sep, minimum=0.0, strict=True)
        super()._validate()

    def _params(self) -> dict[str, Any]:
        return {
            "n_samples": self.n_samples,
            "n_features": self.n_features,
            "n_informative": self.n_informative,
            "n_classes": self.n_classes,
            "class_sep": self.class_sep,
            "seed": self.seed,
        }

    def generate(
        self, seed: int | None = None, dtype: str = "float64"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw the data set.

        ``dtype="float32"`` stores X in float32: the float64 data rounded, without
        a float64 copy of X ever existing.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features), float64 (or ``dtype``)
        y : ndarray of shape (n_samples,), int64 labels in [0, n_classes)
        """
        if dtype not in ("float64", "float32"):
            raise DatasetError(
                f"{type(self).__name__}.generate() needs dtype 'float64' or "
                f"'float32'; got {dtype!r}."
            )
        seed = self._seed(seed)
        rng = np.random.default_rng(seed)
        # Fixed draw order from `rng`: informative columns, class vertices, labels;
        # X comes from its own block streams (see _fill).
        columns = self._informative_columns(rng)
        means = self._class_means(rng, columns.size)
        y = np.arange(self.n_samples, dtype=np.int64) % self.n_classes
        rng.shuffle(y)
        every_column = columns.size == self.n_features

        def finish(block: np.ndarray, rows: slice) -> None:
            if every_column:
                block += means[y[rows]]
            else:
                block[:, columns] += means[y[rows]]

        X = self._fill(seed, finish, dtype)
        return X, y

    def _class_means(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """Means of shape (n_classes, k): distinct grid points times ``class_sep``."""
        n_classes = int(self.n_classes)
        # Use as few dimensions d as give n_classes distinct codes on a grid of
        # `levels` values per dimension; the other informative dimensions get random
        # corners, so every informative feature still carries class signal.
        d = min(k, max(1, (n_classes - 1).bit_length()))
        levels = 2
        while levels**d < n_classes:
            levels += 1
        codes = rng.choice(levels**d, size=n_classes, replace=False)
        digits = (codes[:, None] // levels ** np.arange(d)[None, :]) % levels
        vertices = np.empty((n_classes, k), dtype=np.float64)
        vertices[:, :d] = digits * (2.0 / (levels - 1)) - 1.0
        if k > d:
            # Each extra column splits the classes in two halves, shuffled per
            # column, so it separates some classes and carries signal.
            half = np.where(np.arange(n_classes) < n_classes // 2, -1.0, 1.0)
            extra = rng.permuted(np.tile(half, (k - d, 1)), axis=1)
            vertices[:, d:] = extra.T
        return vertices * float(self.class_sep)
