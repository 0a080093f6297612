"""``load(dataset_config, seed)``: any known dataset, as deterministic splits."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from mlx.config.experiment import SPLIT_FILE_KEYS, DatasetConfig
from mlx.datasets import download as _download
from mlx.datasets import images as _images
from mlx.datasets import split_files
from mlx.datasets._checks import check_bool, check_int, check_seed, format_bytes, param
from mlx.datasets.info import KNOWN_DATASETS, describe, memory_limit
from mlx.datasets.splits import SPLIT_RULE, SplitHow, Splits, choose_rows, standardize
from mlx.datasets.streaming import image_folder
from mlx.datasets.synthetic import SyntheticClassification, SyntheticRegression
from mlx.datasets.tabular import TabularData, load_custom
from mlx.errors import DatasetError, DataWarning

__all__ = ["load"]

_DEFAULT_SPLIT = 0.1
_DEFAULT_IMAGE_SIZE = 64


def load(
    dataset: DatasetConfig,
    seed: int,
    feature_dtype: str = "float64",
    *,
    model_task: str | None = None,
    split_rule: int | None = None,
) -> Splits:
    """Load ``dataset`` and split it by ``split_rule`` (default: the current,
    :data:`~mlx.datasets.splits.SPLIT_RULE`).

    ``seed`` is ``training.seed``. Synthetic data is generated with
    ``params.seed`` when given, else with ``seed``. Which rows go to which split is
    decided by ``params.split_seed`` (default 0), stratified by class for
    classification unless ``params.stratify`` is false, grouped by
    ``params.group_column``, in ``params.folds`` folds (see
    :func:`~mlx.datasets.splits.assign_splits`); a run recorded with split rule 1
    is rebuilt with it (a permutation seeded by ``seed``). Data sets with an
    official test set (mnist, cifar10, cifar100, imagenet) keep it as the test
    split and carve ``validation_split`` from their training set; the others are
    cut into train/val/test by ``validation_split`` and ``test_split`` (both
    default 0.1).

    ``feature_dtype="float32"`` (what a float32 model asks for) stores synthetic and
    tabular features in float32: the float64 values rounded, exactly what
    converting the float64 splits gives, with less memory and fewer passes over
    the data. Standardized features are computed and kept in float64; image sets
    are float32 either way. ``preprocessing["feature_dtype"]`` records the result.

    ``model_task`` is the task of the model the data is for. A custom dataset
    without a ``task`` parameter is read for it (with a DataWarning when its labels
    suggested the other task); a dataset whose task is fixed (synthetic, images) or
    set must agree with it. ``preprocessing["task"]`` records how the task was set.
    """
    seed = check_seed("load", "seed", seed)
    rule = SPLIT_RULE if split_rule is None else split_rule
    if rule not in (1, SPLIT_RULE):
        raise DatasetError(
            f"split rule {rule!r} is not one this mlx knows (1 to {SPLIT_RULE})."
        )
    how = SplitHow(seed, rule)
    if feature_dtype not in ("float64", "float32"):
        raise DatasetError(
            f"feature_dtype must be 'float64' or 'float32'; got {feature_dtype!r}."
        )
    loader = _LOADERS.get(dataset.name)
    if loader is None:
        raise DatasetError(
            f"unknown dataset {dataset.name!r}; known datasets are "
            f"{', '.join(KNOWN_DATASETS)}."
        )
    if dataset.name not in ("synthetic_regression", "synthetic_classification"):
        if _check_memory(dataset):
            splits = _image_set(dataset, how, np.dtype(feature_dtype), streamed=True)
            _check_task(splits, dataset, model_task)
            return splits
    if dataset.name == "custom":
        return _custom(dataset, how, np.dtype(feature_dtype), model_task)
    splits = loader(dataset, how, np.dtype(feature_dtype))
    _check_task(splits, dataset, model_task)
    return splits


def _check_task(splits: Splits, dataset: DatasetConfig, model_task: str | None) -> None:
    if model_task is not None and splits.task != model_task:
        raise DatasetError(
            f"dataset {dataset.name!r} is a {splits.task} dataset, but the model is "
            f"a {model_task} model; make them agree",
            hint="for an MLP, output_activation null means regression, sigmoid or "
            "softmax mean classification",
        )


def _check_memory(dataset: DatasetConfig) -> bool:
    """True when ``dataset`` is an imagenet folder to stream, being over the memory
    limit; DatasetError for any other dataset over it."""
    info = describe(dataset)
    limit = memory_limit()
    if info.memory_bytes is not None and info.memory_bytes > limit:
        if dataset.name == "imagenet":
            return True
        raise DatasetError(
            f"dataset {dataset.name!r} would need about "
            f"{format_bytes(info.memory_bytes)} in memory, above the "
            f"{format_bytes(limit)} limit."
        )
    return False


def _fractions(params: Mapping[str, Any]) -> tuple[float, float]:
    return (
        param(params, "validation_split", _DEFAULT_SPLIT),
        param(params, "test_split", _DEFAULT_SPLIT),
    )


# -- synthetic ----------------------------------------------------------------------


def _synthetic(dataset: DatasetConfig, how: SplitHow, dtype: np.dtype) -> Splits:
    params = dataset.params
    common = {
        "n_samples": param(params, "n_samples", 1000),
        "n_features": param(params, "n_features", 10),
        "n_informative": params.get("n_informative"),
        "seed": params.get("seed"),
    }
    generator: Any
    if dataset.name == "synthetic_regression":
        generator = SyntheticRegression(
            noise_std=param(params, "noise_std", 0.1), **common
        )
    else:
        generator = SyntheticClassification(
            n_classes=param(params, "n_classes", 2),
            class_sep=param(params, "class_sep", 1.0),
            **common,
        )
    data_seed = how.seed if generator.seed is None else generator.seed
    if dataset.name == "synthetic_classification" and not _standardized(dataset):
        # generated straight into the dtype: no float64 copy of X is ever made
        X, y = generator.generate(seed=data_seed, dtype=dtype.name)
    else:
        X, y = generator.generate(seed=data_seed)
    task = "regression" if dataset.name == "synthetic_regression" else "classification"
    n_classes = None if task == "regression" else int(generator.n_classes)
    return _tabular_splits(
        dataset,
        how,
        TabularData(X, y, task, n_classes, None, ()),
        {"generator_seed": data_seed},
        dtype,
    )


def _standardized(dataset: DatasetConfig) -> bool:
    return check_bool(
        dataset.name, "standardize", param(dataset.params, "standardize", False)
    )


# -- custom -------------------------------------------------------------------------


def _custom(
    dataset: DatasetConfig,
    how: SplitHow,
    dtype: np.dtype,
    model_task: str | None = None,
) -> Splits:
    if isinstance(dataset.path, Mapping):
        # train/val/test files of their own (mlx.datasets.split_files)
        return split_files.load_split_files(dataset, how, dtype, model_task)
    data = load_custom(dataset.path, dataset.params, model_task)
    extra: dict[str, Any] = {"source": dataset.path}
    if dataset.params.get("task") is not None:
        extra["task"] = {"value": data.task, "set_by": "dataset.params.task"}
    elif model_task is not None:
        extra["task"] = {"value": data.task, "set_by": "model"}
    else:
        extra["task"] = {"value": data.task, "set_by": "labels"}
    if data.class_names is not None:
        extra["labels"] = {"classes": list(data.class_names)}
    return _tabular_splits(dataset, how, data, extra, dtype)


def _tabular_splits(
    dataset: DatasetConfig,
    how: SplitHow,
    data: TabularData,
    extra: dict[str, Any],
    dtype: np.dtype,
) -> Splits:
    params = dataset.params
    X, y, task = data.X, data.y, data.task
    do_standardize = _standardized(dataset)
    if do_standardize:
        dtype = np.dtype(np.float64)
    validation_split, test_split = _fractions(params)
    indices, rule = choose_rows(
        dataset.name,
        dataset.params,
        how,
        y,
        task,
        validation_split,
        test_split,
        data.groups,
        data.class_names,
    )
    parts = _split_rows(X, y, *indices, dtype=dtype)
    preprocessing: dict[str, Any] = {
        "dataset": dataset.name,
        "feature_dtype": dtype.name,
        "split": _split_record(rule, parts, official_test=False),
    }
    preprocessing.update(extra)
    if do_standardize:
        stats, scaled = standardize(*(x for x, _ in parts))
        parts = [(x, y_) for x, (_, y_) in zip(scaled, parts)]
        preprocessing["standardize"] = stats
    return Splits(
        train=parts[0],
        val=parts[1],
        test=parts[2],
        task=task,
        n_features=int(X.shape[1]),
        n_classes=data.n_classes,
        class_names=data.class_names,
        preprocessing=preprocessing,
        source_rows=dict(zip(SPLIT_FILE_KEYS, indices)),
        ids=None
        if data.ids is None
        else {name: data.ids[rows] for name, rows in zip(SPLIT_FILE_KEYS, indices)},
    )


#: Bytes of rows moved at a time when the training split is compacted inside X: a
#: chunk's temporary copy stays in cache and its memory is reused (multi-MB chunks
#: were a third slower).
_CHUNK_BYTES = 1 << 20


def _split_rows(
    X: np.ndarray, y: np.ndarray, *indices: np.ndarray, dtype: np.dtype
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(X[i], y[i])`` for the train, val and test indices, features in ``dtype``,
    without holding the data twice.

    X was just loaded or generated and nothing else refers to it, so when it is
    writeable, C-contiguous and already of ``dtype`` the (much smaller) val and test
    rows are copied out and the training rows are moved to the front of X in place:
    the training split is then a view of X, and peak memory stays near the size of
    the data set. Otherwise each split is gathered and converted in one pass.
    """
    train, val, test = indices
    chunk = max(1, _CHUNK_BYTES // max(1, X[:1].nbytes))
    if X.dtype != dtype:
        parts = []
        for rows in indices:
            out = np.empty((len(rows),) + X.shape[1:], dtype)
            for start in range(0, len(rows), chunk):
                out[start : start + chunk] = X[rows[start : start + chunk]]
            parts.append((out, y[rows]))
        return parts
    if not (X.flags.writeable and X.flags.c_contiguous):
        return [(X[i], y[i]) for i in indices]
    parts = [(X[val], y[val]), (X[test], y[test])]
    y_train = y[train]
    # train is sorted, so train[k] >= k: a chunk only reads rows at or after its
    # own position, which no earlier chunk has overwritten
    for start in range(0, len(train), chunk):
        rows = train[start : start + chunk]
        X[start : start + len(rows)] = X[rows]
    return [(X[: len(train)], y_train), *parts]


def _split_record(
    rule: Mapping[str, Any],
    parts: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    official_test: bool,
) -> dict[str, Any]:
    return {
        **rule,
        "n_train": len(parts[0][1]),
        "n_val": len(parts[1][1]),
        "n_test": len(parts[2][1]),
        "official_test": official_test,
    }


# -- image sets ---------------------------------------------------------------------


def _image_set(
    dataset: DatasetConfig, how: SplitHow, dtype: np.dtype, *, streamed: bool = False
) -> Splits:
    # pixels are float32 whatever the dtype asked for (see load)
    if isinstance(dataset.path, Mapping):
        # a class folder per split (mlx.datasets.split_files)
        return split_files.load_image_folders(dataset, how, streamed=streamed)
    name, params = dataset.name, dataset.params
    normalize = check_bool(name, "normalize", param(params, "normalize", True))
    fetch = check_bool(name, "download", param(params, "download", False))
    root = _download.dataset_dir(name, dataset.path)
    scale = 1.0 / 255.0 if normalize else None
    raw = _read_image_set(name, root, fetch, params, streamed=streamed, scale=scale)
    validation_split, _ = _fractions(params)
    # A validation split carved from the official training set only.
    (train, val, _), rule = choose_rows(
        dataset.name,
        dataset.params,
        how,
        raw.train_y,
        "classification",
        validation_split,
        0.0,
        None,
        raw.class_names,
    )
    parts: list[tuple[Any, np.ndarray]]
    if streamed:
        # the same rows as below, as files decoded when iterated (see streaming)
        files: Any = raw.train_X
        parts = [
            (files.subset(train), raw.train_y[train]),
            (files.subset(val), raw.train_y[val]),
            (raw.test_X, raw.test_y.copy()),
        ]
    else:
        parts = [
            (_to_float(raw.train_X[train], scale), raw.train_y[train]),
            (_to_float(raw.train_X[val], scale), raw.train_y[val]),
            (_to_float(raw.test_X, scale), raw.test_y.copy()),
        ]
    preprocessing: dict[str, Any] = {
        "dataset": name,
        "feature_dtype": "float32",
        "pixel_scale": scale,
        "split": _split_record(rule, parts, official_test=True),
        "source": str(root),
    }
    if raw.class_names is not None:
        preprocessing["labels"] = {"classes": list(raw.class_names)}
    return Splits(
        train=parts[0],
        val=parts[1],
        test=parts[2],
        task="classification",
        n_features=int(raw.train_X.shape[1]),
        n_classes=raw.n_classes,
        class_names=raw.class_names,
        preprocessing=preprocessing,
        image_shape=raw.image_shape,
        source_rows={"train": train, "val": val, "test": np.arange(len(raw.test_y))},
    )


_to_float = _images.pixels_to_float


def _read_image_set(
    name: str,
    root: Path,
    fetch: bool,
    params: Mapping[str, Any],
    *,
    streamed: bool = False,
    scale: float | None = None,
) -> _images.RawImages:
    if name == "imagenet":
        size = check_int(
            name,
            "image_size",
            param(params, "image_size", _DEFAULT_IMAGE_SIZE),
            minimum=1,
        )
        if fetch:
            warnings.warn(
                "imagenet cannot be downloaded automatically (its licence requires "
                "registration); 'download' is ignored.",
                DataWarning,
                stacklevel=4,
            )
        if not (root / "train").is_dir():
            raise _download.imagenet_not_found(root)
        if streamed:
            return image_folder(root, size, scale)
        return _images.read_image_folder(root, size)
    if name == "mnist":
        files, missing = _images.find_mnist(root)
        if missing and fetch:
            _download.download(name, root)
            files, missing = _images.find_mnist(root)
        if missing:
            raise _not_found(name, root, missing, fetch)
        return _images.read_mnist(root, files)
    directory, missing = _images.find_cifar(name, root)
    if directory is None and fetch:
        _download.download(name, root)
        directory, missing = _images.find_cifar(name, root)
    if directory is None:
        raise _not_found(name, root, missing, fetch)
    return _images.read_cifar(name, directory)


def _not_found(
    name: str, root: Path, missing: Sequence[str], fetch: bool = False
) -> DatasetError:
    return _download.not_found(name, root, missing, fetching=fetch)


_LOADERS: dict[str, Callable[[DatasetConfig, SplitHow, np.dtype], Splits]] = {
    "synthetic_regression": _synthetic,
    "synthetic_classification": _synthetic,
    "custom": _custom,
    "mnist": _image_set,
    "cifar10": _image_set,
    "cifar100": _image_set,
    "imagenet": _image_set,
}
