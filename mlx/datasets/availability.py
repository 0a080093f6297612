"""Whether the data a run reads can be had here, asked before anything heavy loads.

The dry run's plan and the run ask the same question, :func:`data_error`: every
file the run would read exists and is readable (a custom dataset's files, an image
folder, the mnist and cifar files in their cache or ``dataset.path``), or, where
``download: true`` would fetch them, the download can go ahead: pooch is installed,
the cache can be written, and the source answers a HEAD request within a few
seconds (:func:`mlx.datasets.download.fetch_problem`). A run asks before it imports
torch, so a missing file fails at once; the plan says ``can run here: no`` with the
same words. Nothing is fetched or created here.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from mlx.config.experiment import DatasetConfig
from mlx.datasets import download
from mlx.datasets.info import DatasetInfo, describe
from mlx.errors import DatasetError, MLXError
from mlx.utils.safe_io import open_regular

__all__ = ["data_error", "describe_here", "fetches"]

# the image sets kept in a cache and fetched by ``download: true``
_FETCHED = ("mnist", "cifar10", "cifar100")


def data_error(
    dataset: DatasetConfig, info: DatasetInfo | None = None, *, probe: bool = True
) -> MLXError | None:
    """The error a run of ``dataset`` would stop on because its data cannot be had
    here, or None. ``info`` is its :func:`describe`, when already made; ``probe``
    asks the download source (one HEAD request per archive) when the files would be
    fetched; without it, only what this machine can tell is asked."""
    if dataset.name in _FETCHED and _one_folder(dataset):
        return _image_set_error(dataset, probe=probe)
    if dataset.name == "imagenet" and _one_folder(dataset):
        root = download.dataset_dir("imagenet", _folder(dataset))
        if not _is_dir(root / "train"):
            return download.imagenet_not_found(root)
    if dataset.name not in ("custom", "imagenet"):
        return None
    # a custom dataset's files, or the image folders: read no further than their
    # headers (and the labels of .npy/.npz data), as the plan reads them
    problem = (describe(dataset) if info is None else info).problem
    return None if problem is None else DatasetError(problem)


def fetches(dataset: DatasetConfig) -> bool:
    """Whether a run of ``dataset`` would download its files before it reads them:
    ``download: true``, and they are not all in place."""
    if dataset.name not in _FETCHED or not _one_folder(dataset):
        return False
    if dataset.params.get("download") is not True:
        return False
    root = download.dataset_dir(dataset.name, _folder(dataset))
    return bool(_image_files(dataset.name, root)[1])


def describe_here(dataset: DatasetConfig, *, probe: bool = True) -> DatasetInfo:
    """:func:`describe`, its ``problem`` set to :func:`data_error`'s message when
    the data cannot be had here (and describing found nothing worse)."""
    info = describe(dataset)
    if info.problem is not None:
        return info
    error = data_error(dataset, info, probe=probe)
    return info if error is None else dataclasses.replace(info, problem=str(error))


def _one_folder(dataset: DatasetConfig) -> bool:
    """Whether ``dataset.path`` is one folder (or unset, for the cache), not a
    mapping of split to folder."""
    return dataset.path is None or isinstance(dataset.path, str)


def _folder(dataset: DatasetConfig) -> str | None:
    """``dataset.path`` when it is one folder; None (the cache) otherwise."""
    return dataset.path if isinstance(dataset.path, str) else None


def _image_set_error(dataset: DatasetConfig, *, probe: bool) -> MLXError | None:
    name = dataset.name
    root = download.dataset_dir(name, _folder(dataset))
    files, missing = _image_files(name, root)
    if missing:
        if dataset.params.get("download") is not True:
            return download.not_found(name, root, missing)
        return download.fetch_problem(name, root, probe=probe)
    for file in files:
        try:
            fd = open_regular(file, f"a {name} file", error=DatasetError)
        except DatasetError as exc:  # no permission, a link that leads nowhere
            return exc
        if fd is not None:
            os.close(fd)
    return None


def _image_files(name: str, root: Path) -> tuple[list[Path], list[str]]:
    """The files of image set ``name`` a run reads from ``root``, and the names of
    those missing."""
    # images needs NumPy, which a dry run of anything else does without
    from mlx.datasets import images

    if name == "mnist":
        return images.find_mnist(root)
    directory, missing = images.find_cifar(name, root)
    if directory is None:
        return [], missing
    layout = images.CIFAR_LAYOUTS[name]
    return [directory / f for f in (*layout.train_files, *layout.test_files)], []


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long: no such folder
        return False
