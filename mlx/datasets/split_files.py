"""A custom dataset given as files of its own per split: ``dataset.path`` as a
mapping ``{train: a.csv, val: b.csv, test: c.csv}``.

``train`` is required; a missing ``val`` or ``test`` is carved from the train file by
``validation_split`` / ``test_split`` by the rule a single file is cut by
(:func:`mlx.datasets.splits.choose_rows`: split_seed, stratify, groups, folds).
Every file is read by the reader of its format
(:func:`mlx.datasets.tabular.read_data_file`), and all of them must have the same
format, the same columns (CSV, Parquet) or feature count (``.npz``, ``.npy``), and
labels that train knows: the labels of every file are encoded together, so a class index
means the same class in every split, and a class that only a val or test file holds
is an error naming it, its file and line. docs/design/split-files.md says why.

Each split's rows keep where they came from: ``Splits.source_rows`` holds, per
split, the 0-based data rows of its file (of the train file for a carved split), and
``Splits.ids`` their ``id_column`` values when one is named.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from mlx.config.experiment import SPLIT_FILE_KEYS, DatasetConfig
from mlx.datasets import images, streaming
from mlx.datasets._checks import check_bool, check_int, param, show_path
from mlx.datasets.splits import SplitHow, Splits, choose_rows, standardize
from mlx.datasets.tabular import CustomShape, custom_shape, provenance, read_data_file
from mlx.datasets.tabular_csv import csv_columns
from mlx.datasets.tabular_labels import Locator, Table, encode_labels, task_param
from mlx.datasets.tabular_parquet import parquet_columns
from mlx.errors import DatasetError

__all__ = [
    "SPLIT_FILE_KEYS",
    "image_folders_shape",
    "load_image_folders",
    "load_split_files",
    "split_files_shape",
]

_DEFAULT_SPLIT = 0.1
#: The format of a file by its suffix; every split file has the same.
_FORMATS = {
    ".csv": "CSV",
    ".parquet": "Parquet",
    ".pq": "Parquet",
    ".npz": ".npz",
    ".npy": ".npy pair",
}


# -- loading ------------------------------------------------------------------------


def load_split_files(
    dataset: DatasetConfig, how: SplitHow, dtype: np.dtype, model_task: str | None
) -> Splits:
    """The custom dataset whose ``path`` maps split names to files, as splits.

    ``how`` (the training seed and the split rule) cuts the splits that have no
    file from the train file; ``dtype`` is the features' dtype (float64 when
    standardized), as :func:`mlx.datasets.load` says.
    """
    paths: Mapping[str, str] = dataset.path  # type: ignore[assignment]
    params = dataset.params
    _check_formats(paths)
    tables: dict[str, tuple[Path, Table]] = {}
    keys: dict[str, dict[str, np.ndarray]] = {}
    for split in SPLIT_FILE_KEYS:
        if split in paths:
            file, table, keys[split] = read_data_file(paths[split], params)
            tables[split] = (file, table)
    train_file = tables["train"][0]
    _check_layout(paths, {k: table[0].shape[1] for k, (_, table) in tables.items()})
    y_all, task, n_classes, class_names = _encode(tables, params, model_task)
    groups = keys["train"].get("group_column")
    rows, rule = _split_rows(dataset, how, tables, y_all, task, groups, class_names)
    standardized = check_bool(
        "custom", "standardize", param(params, "standardize", False)
    )
    if standardized:
        dtype = np.dtype(np.float64)
    parts = []
    for split in SPLIT_FILE_KEYS:
        owner, picked = rows[split]
        X = tables[owner][1][0]
        parts.append((np.asarray(X[picked], dtype=dtype), y_all[owner][picked]))
    preprocessing: dict[str, Any] = {
        "dataset": dataset.name,
        "feature_dtype": dtype.name,
        "split": _split_record(rule, parts),
        "source": str(train_file),
        # each split's file; None: carved from the train file
        "split_files": {s: paths.get(s) for s in SPLIT_FILE_KEYS},
    }
    preprocessing.update(provenance(params, task, class_names, model_task))
    if standardized:
        stats, scaled = standardize(*(x for x, _ in parts))
        parts = [(x, y) for x, (_, y) in zip(scaled, parts)]
        preprocessing["standardize"] = stats
    ids = None
    if "id_column" in keys["train"]:
        ids = {
            s: keys[owner]["id_column"][picked] for s, (owner, picked) in rows.items()
        }
    return Splits(
        train=parts[0],
        val=parts[1],
        test=parts[2],
        task=task,
        n_features=int(parts[0][0].shape[1]),
        n_classes=n_classes,
        class_names=class_names,
        preprocessing=preprocessing,
        source_rows={s: picked for s, (_, picked) in rows.items()},
        ids=ids,
    )


def _split_rows(
    dataset: DatasetConfig,
    how: SplitHow,
    tables: Mapping[str, Any],
    y_all: Mapping[str, np.ndarray],
    task: str,
    groups: np.ndarray | None,
    class_names: tuple[Any, ...] | None,
) -> tuple[dict[str, tuple[str, np.ndarray]], dict[str, Any]]:
    """Per split, (the split whose file holds its rows, those rows), and the rule
    that carved the splits without a file from the train file (the fraction of a
    split that has a file is 0); ``tables`` and ``y_all`` are keyed by the splits
    that have a file."""
    params = dataset.params
    validation_split = 0.0 if "val" in tables else _fraction(params, "validation_split")
    test_split = 0.0 if "test" in tables else _fraction(params, "test_split")
    (train, val, test), rule = choose_rows(
        dataset.name,
        params,
        how,
        y_all["train"],
        task,
        validation_split,
        test_split,
        groups,
        class_names,
    )
    rows = {"train": ("train", train), "val": ("train", val), "test": ("train", test)}
    for split in tables:
        if split != "train":
            rows[split] = (split, np.arange(len(y_all[split]), dtype=np.int64))
    return rows, rule


def _fraction(params: Mapping[str, Any], name: str) -> float:
    return float(param(params, name, _DEFAULT_SPLIT))


def _check_formats(paths: Mapping[str, str]) -> None:
    train = _FORMATS.get(Path(paths["train"]).suffix.lower())
    for split in SPLIT_FILE_KEYS[1:]:
        if split not in paths:
            continue
        other = _FORMATS.get(Path(paths[split]).suffix.lower())
        if train is not None and other is not None and other != train:
            raise DatasetError(
                f"dataset.path.{split}: {show_path(Path(paths[split]))} is a "
                f"{other} file, but dataset.path.train is a {train} file; every "
                "split file must have the same format."
            )


def _columns(file: Path) -> list[str] | None:
    """The header of a CSV file or the column names of a Parquet file (the target
    column included); None for NumPy files, which have no names."""
    suffix = file.suffix.lower()
    if suffix == ".csv":
        return list(csv_columns(file))
    if suffix in (".parquet", ".pq"):
        return list(parquet_columns(file))
    return None


def _check_layout(
    paths: Mapping[str, str], n_features: Mapping[str, int | None]
) -> None:
    """DatasetError unless every split file of ``paths`` has the train file's
    columns (CSV, Parquet: the header, read once per file) and feature count
    (``n_features``, by split); the same check for the plan and the load."""
    train_file = Path(paths["train"])
    expected = _columns(train_file)
    for split, count in n_features.items():
        if split == "train":
            continue
        file = Path(paths[split])
        columns = _columns(file)
        if columns is not None and columns != expected:
            raise DatasetError(
                f"dataset.path.{split}: {show_path(file)} has the columns "
                f"{_names(columns)}, but the train file {show_path(train_file)} has "
                f"{_names(expected or [])}; every split file must have the same "
                "header."
            )
        if count != n_features["train"]:
            raise DatasetError(
                f"dataset.path.{split}: {show_path(file)} has {count} features, "
                f"but the train file {show_path(train_file)} has "
                f"{n_features['train']}; every split file must have the same "
                "features."
            )


def _names(columns: list[str]) -> str:
    shown = ", ".join(repr(c) for c in columns[:12])
    return f"({shown}{', ...' if len(columns) > 12 else ''})"


def _encode(
    tables: Mapping[str, tuple[Path, Table]],
    params: Mapping[str, Any],
    model_task: str | None,
) -> tuple[dict[str, np.ndarray], str, int | None, tuple[Any, ...] | None]:
    """The labels of every file encoded together (one class index means one class
    in every split), split back per file; DatasetError naming a class that a val or
    test file holds and the train file lacks."""
    names = list(tables)
    labels = [tables[s][1][1] for s in names]
    if len({"text" if y.dtype.kind in "US" else "number" for y in labels}) > 1:
        labels = [y.astype(str) for y in labels]  # as one CSV would hold them
    bounds = np.cumsum([0] + [len(y) for y in labels])
    where = _joined_locator([tables[s][1][3] for s in names], bounds)
    train_file = tables["train"][0]
    y, task, n_classes, class_names = encode_labels(
        np.concatenate(labels),
        task_param(params),
        where,
        source=str(train_file),
        model_task=model_task,
    )
    per_split = {s: y[bounds[i] : bounds[i + 1]] for i, s in enumerate(names)}
    if task == "classification" and class_names is not None:
        in_train = np.zeros(len(class_names), dtype=bool)
        in_train[per_split["train"]] = True
        for i, split in enumerate(names):
            unknown = np.flatnonzero(~in_train[per_split[split]])
            if unknown.size:
                row = int(unknown[0])
                label = class_names[int(per_split[split][row])]
                raise DatasetError(
                    f"{where(int(bounds[i]) + row)}: label {label!r} of the "
                    f"{split} file is not in the train file {show_path(train_file)}; "
                    "every class of a val or test file must be in train."
                )
    return per_split, task, n_classes, class_names


def _joined_locator(locators: list[Locator], bounds: np.ndarray) -> Locator:
    """Where label ``i`` of the concatenated labels is, in its own file."""

    def where(index: int) -> str:
        k = int(np.searchsorted(bounds, index, side="right")) - 1
        return locators[k](index - int(bounds[k]))

    return where


# -- image folders ------------------------------------------------------------------


def load_image_folders(
    dataset: DatasetConfig, how: SplitHow, *, streamed: bool = False
) -> Splits:
    """The imagenet-style dataset whose ``path`` maps split names to class-folder
    roots (``<class>/*.jpg``), as splits of float32 pixels (decoded when iterated
    with ``streamed``, as :mod:`mlx.datasets.streaming` does for a large set)."""
    paths: Mapping[str, str] = dataset.path  # type: ignore[assignment]
    params = dataset.params
    size = check_int(
        dataset.name, "image_size", param(params, "image_size", 64), minimum=1
    )
    normalize = check_bool(dataset.name, "normalize", param(params, "normalize", True))
    scale = 1.0 / 255.0 if normalize else None
    images.require_pillow()
    if streamed:
        streaming.require_torch()
    folders = {s: Path(paths[s]) for s in SPLIT_FILE_KEYS if s in paths}
    classes, files = images.split_folder_files(folders)
    labels = {s: np.array([c for _, c in f], dtype=np.int64) for s, f in files.items()}
    rows, rule = _split_rows(
        dataset, how, folders, labels, "classification", None, classes
    )
    parts: list[tuple[Any, np.ndarray]] = []
    for split in SPLIT_FILE_KEYS:
        owner, picked = rows[split]
        chosen = [files[owner][int(i)][0] for i in picked]
        X: Any
        if streamed:
            X = streaming.ImageFiles(chosen, size, scale)
        else:
            pixels = np.empty((len(chosen), 3 * size * size), dtype=np.uint8)
            for row, path in enumerate(chosen):
                images.decode_image(path, size, out=pixels[row])
            X = images.pixels_to_float(pixels, scale)
        parts.append((X, labels[owner][picked]))
    preprocessing: dict[str, Any] = {
        "dataset": dataset.name,
        "feature_dtype": "float32",
        "pixel_scale": scale,
        "split": _split_record(rule, parts),
        "source": str(folders["train"]),
        "split_files": {s: paths.get(s) for s in SPLIT_FILE_KEYS},
        "labels": {"classes": list(classes)},
    }
    return Splits(
        train=parts[0],
        val=parts[1],
        test=parts[2],
        task="classification",
        n_features=3 * size * size,
        n_classes=len(classes),
        class_names=classes,
        preprocessing=preprocessing,
        image_shape=(3, size, size),
        source_rows={s: picked for s, (_, picked) in rows.items()},
    )


def _split_record(
    rule: Mapping[str, Any], parts: list[tuple[Any, np.ndarray]]
) -> dict[str, Any]:
    return {
        **rule,
        "n_train": len(parts[0][1]),
        "n_val": len(parts[1][1]),
        "n_test": len(parts[2][1]),
        "official_test": False,
    }


def image_folders_shape(
    paths: Mapping[str, str], params: Mapping[str, Any]
) -> tuple[int | None, tuple[int, int, int] | None, str | None]:
    """(classes, split sizes, problem) of split image folders, from listing them."""
    folders = {s: Path(paths[s]) for s in SPLIT_FILE_KEYS if s in paths}
    try:
        classes, files = images.split_folder_files(folders)
    except (DatasetError, OSError) as exc:
        return None, None, str(exc)
    counts: dict[str, int | None] = {s: len(f) for s, f in files.items()}
    return len(classes), _sizes(counts, params), None


# -- describing (a dry run) ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SplitFilesShape:
    """What :func:`split_files_shape` found: the train file's shape (its
    ``n_samples`` being every file's rows together), each split's size, and the
    first problem loading would fail on."""

    shape: CustomShape
    split_sizes: tuple[int, int, int] | None


def split_files_shape(
    paths: Mapping[str, str], params: Mapping[str, Any]
) -> SplitFilesShape:
    """Cheap shape of split files: their headers (and NumPy labels), never rows.
    Never raises: ``shape.problem`` says what would make loading fail."""
    shapes = {s: custom_shape(paths[s], params) for s in SPLIT_FILE_KEYS if s in paths}
    train = shapes["train"]
    problem = next((s.problem for s in shapes.values() if s.problem), None)
    try:
        _check_formats(paths)
        if problem is None:
            _check_layout(paths, {k: v.n_features for k, v in shapes.items()})
    except (DatasetError, OSError, ValueError, csv.Error) as exc:
        problem = problem or str(exc)
    counts = [s.n_samples for s in shapes.values()]
    total = None if None in counts else sum(c for c in counts if c is not None)
    sizes = None
    if train.n_samples is not None and problem is None:
        sizes = _sizes({k: v.n_samples for k, v in shapes.items()}, params)
    notes = tuple(n for s in shapes.values() for n in s.notes if n != s.problem)
    shape = dataclasses.replace(train, n_samples=total, notes=notes, problem=problem)
    return SplitFilesShape(shape, sizes)


def _sizes(
    counts: Mapping[str, int | None], params: Mapping[str, Any]
) -> tuple[int, int, int] | None:
    """(train, val, test) sizes of split files of ``counts`` rows each, as
    :func:`carve` cuts the train file."""
    n_train = counts["train"]
    try:
        v = 0.0 if "val" in counts else _fraction(params, "validation_split")
        t = 0.0 if "test" in counts else _fraction(params, "test_split")
    except (TypeError, ValueError):
        return None
    if n_train is None:
        return None
    n_val = int(round(n_train * v))
    n_test = int(round(n_train * t))
    val = counts.get("val", n_val)
    test = counts.get("test", n_test)
    if val is None or test is None:
        return None
    return (n_train - n_val - n_test, val, test)
