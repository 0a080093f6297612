"""Train/validation/test splits and the preprocessing fitted on the training split."""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections import deque
from typing import Any, Mapping, NamedTuple, Sequence, Tuple

import numpy as np

from mlx.datasets._checks import check_bool, check_float, check_int, check_seed, param
from mlx.errors import DatasetError, DataWarning

__all__ = [
    "SPLIT_RULE",
    "SplitHow",
    "Splits",
    "apply_preprocessing",
    "assign_splits",
    "batch_order",
    "choose_rows",
    "split_indices",
    "standardize",
]

#: The rule that decides which rows go to which split, recorded in ``data.json``
#: (``preprocessing.split.rule``). 1: a permutation seeded by ``training.seed``
#: (:func:`split_indices`; runs recorded without a rule). 2: ``split_seed`` alone,
#: stratified or grouped as configured, with K folds (:func:`assign_splits`).
SPLIT_RULE = 2

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
    #: per split, the 0-based data row of each sample in its source file (or
    #: generated set); ``ids`` per split, the ``id_column`` value of each sample
    source_rows: Mapping[str, np.ndarray] | None = None
    ids: Mapping[str, np.ndarray] | None = None

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
    n_train, n_val, _ = _counts(n_samples, validation_split, test_split, "samples")
    rng = np.random.default_rng([_SPLIT_STREAM, seed])
    order = rng.permutation(n_samples)
    train = np.sort(order[:n_train])
    val = np.sort(order[n_train : n_train + n_val])
    test = np.sort(order[n_train + n_val :])
    return train, val, test


def assign_splits(
    n_samples: int,
    validation_split: float,
    test_split: float,
    seed: int,
    *,
    labels: np.ndarray | None = None,
    groups: np.ndarray | None = None,
    folds: int | None = None,
    fold: int = 0,
    class_names: Sequence[Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/val/test indices of ``range(n_samples)`` by split rule 2.

    ``seed`` (``dataset.params.split_seed``) alone decides the assignment. With
    ``labels`` (the integer class of each row) the splits are stratified: each class
    gets its exact share of every split rounded up or down, the totals are those of
    the unstratified split, and every class keeps a row in training. With
    ``groups`` (a key per row) groups are split, not rows: the fractions count
    groups, and the rows of a group share a split (scikit-learn's
    ``GroupShuffleSplit``). With ``folds`` (K >= 2) the rows outside the test split
    are cut into K folds (stratified, grouped or plain, as scikit-learn's
    ``StratifiedKFold``, ``GroupKFold`` and ``KFold`` with shuffling) and fold
    ``fold`` is the validation split; ``validation_split`` is not used. Each
    returned array is sorted.
    """
    owner = "the dataset split"
    validation_split = check_fraction(owner, "validation_split", validation_split)
    test_split = check_fraction(owner, "test_split", test_split)
    seed = check_seed(owner, "seed", seed)
    if labels is not None and groups is not None:
        raise DatasetError(
            "dataset.params.stratify and group_column cannot be combined: groups "
            "are split whole."
        )
    rng = np.random.default_rng([_SPLIT_STREAM, seed])
    names = class_names
    if folds is None:
        part = _three_way(
            n_samples, validation_split, test_split, rng, labels, groups, names
        )
    else:
        part = _three_way(n_samples, 0.0, test_split, rng, labels, groups, names)
        rest = np.flatnonzero(part == 0)
        fold_of = _k_fold(rest, folds, rng, labels, groups, names)
        part[rest[fold_of == fold]] = 1
    return (
        np.flatnonzero(part == 0),
        np.flatnonzero(part == 1),
        np.flatnonzero(part == 2),
    )


def _three_way(
    n_samples: int,
    validation_split: float,
    test_split: float,
    rng: np.random.Generator,
    labels: np.ndarray | None,
    groups: np.ndarray | None,
    names: Sequence[Any] | None,
) -> np.ndarray:
    """The split of each row: 0 train, 1 validation, 2 test."""
    if groups is not None:
        _, inverse = np.unique(groups, return_inverse=True)
        n_groups = int(inverse.max()) + 1 if len(inverse) else 0
        counts = _counts(n_groups, validation_split, test_split, "groups")
        return _plain_parts(n_groups, counts, rng)[inverse.reshape(-1)]
    counts = _counts(n_samples, validation_split, test_split, "samples")
    if labels is None:
        return _plain_parts(n_samples, counts, rng)
    classes, inverse, per_class = np.unique(
        labels, return_inverse=True, return_counts=True
    )
    table = _apportion(per_class, np.array(counts), keep_first=True)
    if table is None:
        raise DatasetError(
            f"cannot stratify the {n_samples} samples of {len(classes)} classes "
            f"into {counts[0]} training, {counts[1]} validation and {counts[2]} test "
            "samples while every class keeps a training sample; lower "
            "validation_split/test_split, or set dataset.params.stratify: false."
        )
    part = np.zeros(n_samples, dtype=np.int8)
    for rows, (n_train, n_val, _) in zip(_class_rows(inverse, rng), table):
        part[rows[n_train : n_train + n_val]] = 1
        part[rows[n_train + n_val :]] = 2
    return part


def _counts(
    n_units: int, validation_split: float, test_split: float, what: str
) -> tuple[int, int, int]:
    n_val = int(round(n_units * validation_split))
    n_test = int(round(n_units * test_split))
    n_train = n_units - n_val - n_test
    if n_train < 1:
        raise DatasetError(
            f"validation_split={validation_split} and test_split={test_split} leave "
            f"no training {what} out of {n_units}; lower them or add data."
        )
    return n_train, n_val, n_test


def _plain_parts(
    n_units: int, counts: tuple[int, int, int], rng: np.random.Generator
) -> np.ndarray:
    n_train, n_val, _ = counts
    order = rng.permutation(n_units)
    part = np.zeros(n_units, dtype=np.int8)
    part[order[n_train : n_train + n_val]] = 1
    part[order[n_train + n_val :]] = 2
    return part


def _class_rows(inverse: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """The rows of each class (by ``inverse``, the class index of each row), each
    class's rows in a seeded random order."""
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse))[:-1]
    return [rng.permutation(rows) for rows in np.split(order, bounds)]


def _k_fold(
    rows: np.ndarray,
    folds: int,
    rng: np.random.Generator,
    labels: np.ndarray | None,
    groups: np.ndarray | None,
    names: Sequence[Any] | None,
) -> np.ndarray:
    """The fold (0 to ``folds`` - 1) of each of ``rows``."""
    what = "groups" if groups is not None else "samples"
    if groups is not None:
        _, inverse = np.unique(groups[rows], return_inverse=True)
        inverse = inverse.reshape(-1)
        n_units = int(inverse.max()) + 1 if len(inverse) else 0
    else:
        n_units = len(rows)
    if n_units < folds:
        raise DatasetError(
            f"dataset.params.folds={folds} is more than the {n_units} {what} "
            "outside the test split; lower folds or test_split."
        )
    sizes = np.full(folds, n_units // folds) + (np.arange(folds) < n_units % folds)
    if groups is not None:
        return _group_folds(np.bincount(inverse), folds, rng)[inverse]
    if labels is None:
        fold_of = np.empty(n_units, dtype=np.int64)
        fold_of[rng.permutation(n_units)] = np.repeat(np.arange(folds), sizes)
        return fold_of
    classes, inverse, per_class = np.unique(
        labels[rows], return_inverse=True, return_counts=True
    )
    if per_class.min() < 2:
        small = classes[int(np.argmin(per_class))]
        shown = names[int(small)] if names is not None else small.item()
        raise DatasetError(
            f"class {shown!r} has 1 sample outside the test split; stratified "
            "folds need 2 or more of each class so that every fold trains on it "
            "(add samples, or set dataset.params.stratify: false)."
        )
    table = _apportion(per_class, sizes, keep_first=False)
    assert table is not None  # exact shares always round (see _apportion)
    fold_of = np.empty(len(rows), dtype=np.int64)
    for class_rows, per_fold in zip(_class_rows(inverse, rng), table):
        fold_of[class_rows] = np.repeat(np.arange(folds), per_fold)
    return fold_of


def _group_folds(sizes: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """The fold of each group: in a seeded order, largest groups first, each to the
    fold with the fewest samples so far (as ``GroupKFold`` balances them)."""
    order = rng.permutation(len(sizes))
    order = order[np.argsort(-sizes[order], kind="stable")]
    loads = np.zeros(folds, dtype=np.int64)
    fold_of = np.empty(len(sizes), dtype=np.int64)
    for group in order:
        k = int(np.argmin(loads))
        fold_of[group] = k
        loads[k] += sizes[group]
    return fold_of


def _apportion(
    rows: np.ndarray, columns: np.ndarray, *, keep_first: bool
) -> np.ndarray | None:
    """Integer table with row sums ``rows`` and column sums ``columns`` whose every
    cell is its exact share ``rows[i] * columns[j] / total`` rounded down or up
    (None when that is impossible).

    The floors are taken, then the cells with the largest remainders get one more
    while their row and column still miss some; augmenting paths (as in bipartite
    matching) place what that greedy pass leaves. The exact shares are a fractional
    solution, so a rounded one always exists (integral flows); with ``keep_first``
    every non-empty row keeps at least one in column 0 (every class in training),
    which may make it impossible.
    """
    rows = np.asarray(rows, dtype=np.int64)
    columns = np.asarray(columns, dtype=np.int64)
    total = int(rows.sum())
    exact = rows[:, None] * columns[None, :]
    table, remainder = exact // total, exact % total
    if keep_first:
        raise_to_one = (table[:, 0] == 0) & (rows > 0) & (columns[0] > 0)
        table[raise_to_one, 0] = 1
        remainder[raise_to_one, 0] = 0
    row_left = rows - table.sum(axis=1)
    column_left = columns - table.sum(axis=0)
    if (row_left < 0).any() or (column_left < 0).any():
        return None
    eligible = remainder > 0
    extra = np.zeros_like(eligible)
    n_columns = len(columns)
    for flat in np.argsort(-remainder, axis=None, kind="stable"):
        i, j = divmod(int(flat), n_columns)
        if not eligible[i, j]:
            break
        if row_left[i] > 0 and column_left[j] > 0:
            extra[i, j] = True
            row_left[i] -= 1
            column_left[j] -= 1
    for short in np.flatnonzero(row_left > 0).tolist():
        for _ in range(int(row_left[short])):
            if not _augment(short, eligible, extra, column_left):
                return None
    return table + extra


def _augment(
    start: int, eligible: np.ndarray, extra: np.ndarray, column_left: np.ndarray
) -> bool:
    """Give row ``start`` one more cell along an alternating path that ends in a
    column still short; False when there is none."""
    via_row: dict[int, int] = {}  # column -> the row it was reached from
    via_column: dict[int, int | None] = {start: None}  # row -> column it left
    queue = deque([start])
    while queue:
        i = queue.popleft()
        for j in np.flatnonzero(eligible[i] & ~extra[i]).tolist():
            if j in via_row:
                continue
            via_row[j] = i
            if column_left[j] > 0:
                column_left[j] -= 1
                while True:  # flip the path back to start
                    row = via_row[j]
                    extra[row, j] = True
                    back = via_column[row]
                    if back is None:
                        return True
                    extra[row, back] = False
                    j = back
            for row in np.flatnonzero(extra[:, j]).tolist():
                if row not in via_column:
                    via_column[row] = j
                    queue.append(row)
    return False


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


# -- which rows go to which split, by a dataset's parameters ----------------------

#: the start of the warning when a default stratified split cannot be made
_NOT_STRATIFIED = "the splits are not stratified by class"


class SplitHow(NamedTuple):
    """How a dataset is loaded: ``training.seed`` and the split rule to apply."""

    seed: int
    rule: int


def choose_rows(
    name: str,
    params: Mapping[str, Any],
    how: SplitHow,
    y: np.ndarray,
    task: str,
    validation_split: float,
    test_split: float,
    groups: np.ndarray | None,
    class_names: Sequence[Any] | None,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], dict[str, Any]]:
    """The train/val/test indices of ``y``'s rows and the rule that chose them, as
    ``data.json`` records it (see :data:`SPLIT_RULE`): the dataset ``name``'s
    ``params`` (split_seed, stratify, folds, fold) applied under ``how.rule``.
    ``groups`` holds each row's group_column value, if one is named."""
    if how.rule == 1:  # a run recorded before split_seed: training.seed decides
        indices = split_indices(len(y), validation_split, test_split, how.seed)
        return indices, {"seed": how.seed}
    split_seed = check_seed(name, "split_seed", param(params, "split_seed", 0))
    stratify = params.get("stratify")
    if stratify is not None:
        stratify = check_bool(name, "stratify", stratify)
    if stratify and task != "classification":
        raise DatasetError(
            f"dataset.params.stratify: true needs classification labels; the "
            f"{name} data is {task} data (set stratify: false, or task: "
            "classification)."
        )
    if stratify is None:
        stratify = task == "classification" and groups is None
    folds = params.get("folds")
    fold = None
    if folds is not None:
        folds = check_int(name, "folds", folds, minimum=2)
        fold = check_int(
            name,
            "fold",
            params.get("fold"),
            minimum=0,
            maximum=folds - 1,
            maximum_name="folds - 1",
        )
    cut = functools.partial(
        assign_splits,
        len(y),
        validation_split,
        test_split,
        split_seed,
        groups=groups,
        folds=folds,
        fold=fold or 0,
        class_names=class_names,
    )
    try:
        indices = cut(labels=y if stratify else None)
    except DatasetError as exc:
        if not stratify or params.get("stratify") is not None:
            raise
        # stratified by default only: a class too small to stratify is no error
        indices, stratify = cut(labels=None), False
        warnings.warn(f"{name}: {_NOT_STRATIFIED}: {exc}", DataWarning, stacklevel=4)
    rule = {
        "rule": SPLIT_RULE,
        "split_seed": split_seed,
        "stratify": bool(stratify),
        "group_column": params.get("group_column"),
        "folds": folds,
        "fold": fold,
    }
    return indices, rule
