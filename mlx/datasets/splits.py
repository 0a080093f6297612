"""Train/validation/test splits and the preprocessing fitted on the training split."""

from __future__ import annotations

import dataclasses
from typing import Any, Tuple

import numpy as np

from mlx.datasets._checks import check_float, check_seed
from mlx.errors import DatasetError

__all__ = [
    "Splits",
    "apply_preprocessing",
    "batch_order",
    "split_indices",
    "standardize",
]

# Mixed into the split seed so the permutation is not the same stream a synthetic
# generator seeded with the same number draws its features from.
_SPLIT_STREAM = 0x5B1D

ArrayPair = Tuple[np.ndarray, np.ndarray]


@dataclasses.dataclass(frozen=True, eq=False)
class Splits:
    """A loaded dataset, split three ways.

    ``train``, ``val`` and ``test`` are ``(X, y)`` pairs: ``X`` of shape
    (n_split_samples, n_features), ``y`` of shape (n_split_samples,) (float64 for
    regression, int64 labels in [0, n_classes) for classification). ``val`` may hold
    zero samples when ``validation_split`` is 0.

    ``class_names[i]`` is the original label (or class name) of integer label ``i``.
    ``preprocessing`` is plain JSON-serialisable data describing what was applied
    (standardization statistics, pixel scaling, label mapping, split sizes), so a run
    can store it and :func:`apply_preprocessing` can repeat it on new data.
    ``image_shape`` is (C, H, W) for image sets (each row of ``X`` is one image
    flattened channel-first), None otherwise.
    """

    train: ArrayPair
    val: ArrayPair
    test: ArrayPair
    task: str
    n_features: int
    n_classes: int | None
    class_names: tuple[Any, ...] | None
    preprocessing: dict[str, Any]
    image_shape: tuple[int, int, int] | None = None

    @property
    def sizes(self) -> tuple[int, int, int]:
        """Number of samples in (train, val, test)."""
        return (len(self.train[1]), len(self.val[1]), len(self.test[1]))


def check_fraction(owner: str, name: str, value: Any) -> float:
    """A split fraction: a number in [0, 1)."""
    return check_float(owner, name, value, minimum=0.0, below=1.0)


def split_indices(
    n_samples: int,
    validation_split: float,
    test_split: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded permutation of ``range(n_samples)`` cut into train/val/test indices.

    The val and test sizes are ``round(n_samples * fraction)``; the training split
    gets the rest and must not be empty. The same arguments always give the same
    indices. Each returned array is sorted, so a split keeps the file order.
    """
    owner = "the dataset split"
    validation_split = check_fraction(owner, "validation_split", validation_split)
    test_split = check_fraction(owner, "test_split", test_split)
    seed = check_seed(owner, "seed", seed)
    n_val = int(round(n_samples * validation_split))
    n_test = int(round(n_samples * test_split))
    n_train = n_samples - n_val - n_test
    if n_train < 1:
        raise DatasetError(
            f"validation_split={validation_split} and test_split={test_split} leave "
            f"no training samples out of {n_samples}; lower them or add data."
        )
    rng = np.random.default_rng([_SPLIT_STREAM, seed])
    order = rng.permutation(n_samples)
    train = np.sort(order[:n_train])
    val = np.sort(order[n_train : n_train + n_val])
    test = np.sort(order[n_train + n_val :])
    return train, val, test


def standardize(
    train: np.ndarray, *others: np.ndarray
) -> tuple[dict[str, Any], tuple[np.ndarray, ...]]:
    """Scale features to zero mean and unit variance, fitted on ``train`` only.

    ``train`` has shape (n_samples, n_features); ``others`` share its n_features.
    Columns with zero spread get std 1 (they are only centred). Non-finite values
    (allowed by ``allow_nan``) are ignored when fitting. Returns the statistics as
    plain lists and the standardized arrays ``(train, *others)`` (new float arrays).
    """
    if train.shape[0] == 0:
        raise DatasetError("cannot standardize: the training split is empty.")
    if np.isfinite(train).all():
        mean = train.mean(axis=0)
        std = train.std(axis=0)
    else:
        finite = np.where(np.isfinite(train), train, np.nan)
        with np.errstate(all="ignore"):
            mean = np.nan_to_num(np.nanmean(finite, axis=0), nan=0.0)
            std = np.nan_to_num(np.nanstd(finite, axis=0), nan=0.0)
    std = np.where(std > 0, std, 1.0)
    stats = {
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
    }
    result = tuple(_scale(X, mean, std) for X in (train, *others))
    return stats, result


def _scale(X: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    out = np.subtract(X, mean.astype(X.dtype, copy=False), dtype=X.dtype)
    out /= std.astype(X.dtype, copy=False)
    return out


def apply_preprocessing(X: np.ndarray, preprocessing: dict[str, Any]) -> np.ndarray:
    """Apply a stored ``Splits.preprocessing`` to new raw features.

    X : array of shape (n_samples, n_features) as read from the source (raw pixels
    for image sets). Returns a new float array with the same transformation the
    training data got: pixel scaling, then standardization.
    """
    dtype = np.dtype(preprocessing.get("feature_dtype", "float64"))
    out = np.array(X, dtype=dtype, copy=True)
    scale = preprocessing.get("pixel_scale")
    if scale is not None:
        out *= dtype.type(scale)
    stats = preprocessing.get("standardize")
    if stats:
        mean = np.asarray(stats["mean"], dtype=np.float64)
        std = np.asarray(stats["std"], dtype=np.float64)
        if out.ndim != 2 or out.shape[1] != mean.size:
            raise DatasetError(
                f"X must have shape (n_samples, {mean.size}) to apply the stored "
                f"standardization; got {out.shape}."
            )
        out = _scale(out, mean, std)
    return out


def batch_order(seed: int, epoch: int, n_samples: int) -> np.ndarray:
    """The sample order of ``epoch`` (1-based): depends only on ``(seed, epoch)``."""
    return np.random.default_rng([seed, epoch]).permutation(n_samples)
