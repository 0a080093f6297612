"""Cheap facts about a configured dataset, known without loading it."""

from __future__ import annotations

import dataclasses
import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from mlx.config.experiment import DatasetConfig
from mlx.config.names import KNOWN_DATASETS, MEMORY_LIMIT_BYTES  # the one list
from mlx.errors import DatasetError
from mlx.utils import environ

if TYPE_CHECKING:
    from mlx.datasets.splits import Splits

__all__ = [
    "KNOWN_DATASETS",
    "MEMORY_LIMIT_BYTES",
    "DatasetInfo",
    "describe",
    "image_shape",
    "memory_limit",
]


#: ``MLX_MEMORY_LIMIT`` (a number of bytes) replaces :data:`MEMORY_LIMIT_BYTES`, the
#: size beyond which datasets are rejected, except imagenet folders, which are
#: streamed from disk instead; see :func:`memory_limit`.
MEMORY_LIMIT_ENV = environ.MEMORY_LIMIT


def memory_limit() -> int:
    """The in-memory dataset limit in bytes: ``$MLX_MEMORY_LIMIT`` when set (a
    positive integer), else :data:`MEMORY_LIMIT_BYTES`."""
    value = environ.memory_limit()
    return MEMORY_LIMIT_BYTES if value is None else value


# (n_train, n_test, n_features, n_classes) of the standard image sets, flattened,
# and their (C, H, W)
_SHAPES = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32), "cifar100": (3, 32, 32)}
_IMAGE_SETS = {
    "mnist": (60_000, 10_000, 784, 10),
    "cifar10": (50_000, 10_000, 3072, 10),
    "cifar100": (50_000, 10_000, 3072, 100),
}
_FLOAT64 = 8
_FLOAT32 = 4
_LABEL = 8  # int64 or float64 per label


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Shape, task and memory estimate of a dataset; ``None`` where unknown.

    ``memory_bytes`` is the size of the loaded arrays (features in
    ``feature_dtype`` plus 8 bytes per label): what the 1 GiB guard checks.
    ``split_sizes`` is (n_train, n_val, n_test) under the configured fractions.
    ``source`` is the file or directory the data is read from, if any.
    ``image_shape`` is (C, H, W) for image sets, whose rows are those images
    flattened channel-first; None for tabular and synthetic data.
    ``problem``, when set, is what loading would fail on, found in what was read.
    ``task`` is the task the dataset fixes (by its kind, or a custom dataset's
    ``task`` parameter); ``label_task`` the task a custom dataset's labels suggest
    on their own, which the model's task overrides when ``task`` is None;
    ``label_problems`` what those labels would fail on, by the model's task ("" for
    a model whose task is not known).
    """

    name: str
    task: str | None
    n_samples: int | None
    n_features: int | None
    n_classes: int | None
    memory_bytes: int | None
    notes: tuple[str, ...] = ()
    feature_dtype: str = "float64"
    split_sizes: tuple[int, int, int] | None = None
    source: str | None = None
    image_shape: tuple[int, int, int] | None = None
    problem: str | None = None
    label_task: str | None = None
    label_problems: Mapping[str, str] = dataclasses.field(default_factory=dict)


def image_shape(data: DatasetInfo | Splits) -> tuple[int, int, int] | None:
    """(C, H, W) of the images in ``data`` (a :class:`DatasetInfo` or a loaded
    :class:`~mlx.datasets.Splits`), or None when its rows are not images.

    A row of ``X`` is one image flattened in C order from (C, H, W), so
    ``X.reshape(len(X), *image_shape(data))`` gives (N, C, H, W).
    """
    shape = getattr(data, "image_shape", None)
    return None if shape is None else tuple(int(n) for n in shape)  # type: ignore[return-value]


def describe(dataset: DatasetConfig) -> DatasetInfo:
    """Describe ``dataset`` cheaply: headers and directory listings at most.

    Never raises for bad parameters or missing files; those show up as ``None``
    fields and ``notes`` (validation and :func:`mlx.datasets.load` report them).
    """
    params: Mapping[str, Any] = dataset.params
    if dataset.name in ("synthetic_regression", "synthetic_classification"):
        return _describe_synthetic(dataset.name, params)
    if dataset.name in _IMAGE_SETS:
        return _describe_image_set(dataset)
    if dataset.name == "imagenet":
        return _describe_imagenet(dataset)
    if dataset.name == "custom":
        return _describe_custom(dataset)
    return DatasetInfo(
        name=dataset.name,
        task=None,
        n_samples=None,
        n_features=None,
        n_classes=None,
        memory_bytes=None,
        notes=(f"unknown dataset {dataset.name!r}",),
    )


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


def _fraction(params: Mapping[str, Any], key: str, default: float) -> float | None:
    value = params.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if 0.0 <= value < 1.0 else None


def _splits(
    params: Mapping[str, Any], n_samples: int | None, n_test: int | None = None
) -> tuple[int, int, int] | None:
    """(train, val, test) sizes as :func:`mlx.datasets.splits.split_indices` cuts."""
    if n_samples is None or n_samples >= 2**63:
        # no array that large exists; the memory guard refuses it before any split
        return None
    val_fraction = _fraction(params, "validation_split", 0.1)
    if val_fraction is None:
        return None
    if n_test is not None:  # official test set: val comes out of train
        n_val = int(round(n_samples * val_fraction))
        return (n_samples - n_val, n_val, n_test)
    test_fraction = _fraction(params, "test_split", 0.1)
    if test_fraction is None:
        return None
    n_val = int(round(n_samples * val_fraction))
    n_test = int(round(n_samples * test_fraction))
    return (n_samples - n_val - n_test, n_val, n_test)


def _describe_synthetic(name: str, params: Mapping[str, Any]) -> DatasetInfo:
    n_samples = _int(params.get("n_samples", 1000))
    n_features = _int(params.get("n_features", 10))
    regression = name == "synthetic_regression"
    memory = None
    if n_samples is not None and n_features is not None:
        # X float64 plus y, both 8 bytes per value
        memory = n_samples * (n_features + 1) * _FLOAT64
    return DatasetInfo(
        name=name,
        task="regression" if regression else "classification",
        n_samples=n_samples,
        n_features=n_features,
        n_classes=None if regression else _int(params.get("n_classes", 2)),
        memory_bytes=memory,
        split_sizes=_splits(params, n_samples),
    )


def _describe_image_set(dataset: DatasetConfig) -> DatasetInfo:
    # images needs NumPy, which describing a dataset (a dry run) does not load
    from mlx.datasets import download, images

    name = dataset.name
    n_train, n_test, n_features, n_classes = _IMAGE_SETS[name]
    shape = _SHAPES[name]
    root: Path | None = None
    present, problem = False, None
    try:
        # a mapping of split files is for custom and imagenet (the schema says so)
        path = dataset.path if isinstance(dataset.path, str) else None
        root = download.dataset_dir(name, path)
        if name == "mnist":
            found, missing = images.find_mnist(root)
            present = not missing
        else:
            present = images.find_cifar(name, root)[0] is not None
    except DatasetError as exc:  # a cache that cannot be looked at
        problem = str(exc)
    if present and name == "mnist":
        # the IDX headers give the real counts and image size
        train_head = _idx_header(found[0])
        test_head = _idx_header(found[2])
        if train_head is not None and test_head is not None:
            n_train, n_test = train_head[0], test_head[0]
            shape = (1, train_head[1], train_head[2])
            n_features = shape[1] * shape[2]
    notes: tuple[str, ...] = ()
    if root is not None:
        notes = (_image_set_note(root, present, dataset.params.get("download")),)
        if not present:
            problem = download.unusable_directory(root)
    n_samples = n_train + n_test
    return DatasetInfo(
        name=name,
        task="classification",
        n_samples=n_samples,
        n_features=n_features,
        n_classes=n_classes,
        memory_bytes=n_samples * (n_features * _FLOAT32 + _LABEL),
        notes=notes,
        feature_dtype="float32",
        split_sizes=_splits(dataset.params, n_train, n_test),
        source=None if root is None else str(root),
        image_shape=shape,
        problem=problem,
    )


def _image_set_note(root: Path, present: bool, fetch: Any) -> str:
    """Where an image set's files are, or how they would get there."""
    if present:
        return f"files found in {root}"
    if fetch is True:  # never suggest what the config already says
        return f"files not in {root} yet (download: true fetches them)"
    return f"files not in {root} yet (set download: true to fetch them)"


def _idx_header(path: Path) -> tuple[int, int, int] | None:
    """(n, rows, columns) from a 3-D IDX file's 16-byte header, raw or gzipped."""
    import gzip
    import struct

    try:
        with open(path, "rb") as handle:
            head = handle.read(2)
        opener: Any = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as handle:
            header = handle.read(16)
    except (OSError, EOFError):
        return None
    if len(header) < 16 or header[:4] != b"\x00\x00\x08\x03":
        return None
    n, rows, columns = struct.unpack(">3I", header[4:16])
    return int(n), int(rows), int(columns)


def _describe_imagenet(dataset: DatasetConfig) -> DatasetInfo:
    from mlx.datasets import download, images  # as above: NumPy on first use

    size = _int(dataset.params.get("image_size", 64))
    n_features = None if size is None or size < 1 else size * size * 3
    n_classes: int | None = None
    sizes: tuple[int, int] | None = None
    notes: tuple[str, ...] = ()
    problem: str | None = None
    root: Path | None = None
    if isinstance(dataset.path, Mapping):
        return _describe_image_folders(dataset, n_features, size)
    try:
        root = download.dataset_dir("imagenet", dataset.path)
        classes, train, val = images.image_folder_files(Path(root))
    except (DatasetError, OSError) as exc:
        if root is not None and (root / "train").is_dir():
            # the folder is there but would not load (an empty class, a link
            # that leads nowhere); a folder not there yet is only a note
            problem = str(exc)
        else:
            notes = (str(exc),)
    else:
        n_classes, sizes = len(classes), (len(train), len(val))
    n_samples = None if sizes is None else sum(sizes)
    memory = None
    if n_samples is not None and n_features is not None:
        memory = n_samples * (n_features * _FLOAT32 + _LABEL)
    return DatasetInfo(
        name="imagenet",
        task="classification",
        n_samples=n_samples,
        n_features=n_features,
        n_classes=n_classes,
        memory_bytes=memory,
        notes=notes,
        feature_dtype="float32",
        problem=problem,
        split_sizes=None if sizes is None else _splits(dataset.params, *sizes),
        source=None if root is None else str(root),
        image_shape=None if n_features is None else (3, size, size),  # type: ignore[arg-type]
    )


def _describe_image_folders(
    dataset: DatasetConfig, n_features: int | None, size: int | None
) -> DatasetInfo:
    """An imagenet dataset given as a class folder per split."""
    from mlx.datasets import split_files

    paths: Mapping[str, str] = dataset.path  # type: ignore[assignment]
    n_classes, sizes, problem = split_files.image_folders_shape(paths, dataset.params)
    n_samples = None if sizes is None else sum(sizes)
    memory = None
    if n_samples is not None and n_features is not None:
        memory = n_samples * (n_features * _FLOAT32 + _LABEL)
    return DatasetInfo(
        name=dataset.name,
        task="classification",
        n_samples=n_samples,
        n_features=n_features,
        n_classes=n_classes,
        memory_bytes=memory,
        feature_dtype="float32",
        problem=problem,
        split_sizes=sizes,
        source=paths["train"],
        image_shape=None if n_features is None else (3, size, size),  # type: ignore[arg-type]
    )


def _describe_custom(dataset: DatasetConfig) -> DatasetInfo:
    from mlx.datasets import split_files, tabular

    source = dataset.path
    if isinstance(source, Mapping):
        # a file per split: their rows together, each split's size
        found = split_files.split_files_shape(source, dataset.params)
        shape, split_sizes, source = found.shape, found.split_sizes, source["train"]
    else:
        shape = tabular.custom_shape(source, dataset.params)
        split_sizes = _splits(dataset.params, shape.n_samples)
    n_samples, n_features = shape.n_samples, shape.n_features
    memory = None
    if n_samples is not None and n_features is not None:
        memory = n_samples * (n_features * _FLOAT64 + _LABEL)
    return DatasetInfo(
        name="custom",
        task=shape.task,
        n_samples=n_samples,
        n_features=n_features,
        n_classes=None,
        memory_bytes=memory,
        notes=shape.notes,
        split_sizes=split_sizes,
        source=source,
        problem=shape.problem,
        label_task=shape.label_task,
        label_problems=shape.label_problems,
    )
