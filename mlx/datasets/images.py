"""Readers for the standard image sets in their original binary formats.

``mnist``
    The IDX files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, raw or gzipped (the
    ``.gz`` name, or gzip content under the plain name).
``cifar10``
    ``cifar-10-batches-bin/data_batch_{1..5}.bin`` and ``test_batch.bin``: records of
    1 label byte + 3072 pixel bytes (1024 red, 1024 green, 1024 blue, row-major).
``cifar100``
    ``cifar-100-binary/train.bin`` and ``test.bin``: records of 1 coarse label byte,
    1 fine label byte and 3072 pixel bytes; the fine label (100 classes) is used.
``imagenet``
    An ImageFolder tree ``train/<class>/*.jpg|jpeg|png`` and ``val/<class>/...``,
    decoded with Pillow, resized to ``image_size`` squared, RGB.

Readers return raw ``uint8`` pixels flattened to (n_samples, n_features) and int64
labels; scaling to floats happens after splitting, so only one float copy exists.
Every image set is flattened channel-first: a row is the image's (C, H, W) array
in C order (all of channel 0 row by row, then channel 1, ...), and
``RawImages.image_shape`` records (C, H, W).
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from mlx.errors import BackendUnavailableError, DatasetError

__all__ = [
    "RawImages",
    "decode_image",
    "find_cifar",
    "find_mnist",
    "image_folder_files",
    "pixels_to_float",
    "read_cifar",
    "read_idx",
    "read_image_folder",
    "read_mnist",
    "require_pillow",
    "split_folder_files",
]

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_IDX_UBYTE = 0x08
_IDX_TYPES = {
    0x08: "ubyte",
    0x09: "byte",
    0x0B: "short",
    0x0C: "int",
    0x0D: "float",
    0x0E: "double",
}


@dataclasses.dataclass(frozen=True)
class _CifarLayout:
    directory: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_bytes: int
    n_classes: int
    names_file: str


CIFAR_LAYOUTS = {
    "cifar10": _CifarLayout(
        "cifar-10-batches-bin",
        tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
        ("test_batch.bin",),
        1,
        10,
        "batches.meta.txt",
    ),
    "cifar100": _CifarLayout(
        "cifar-100-binary",
        ("train.bin",),
        ("test.bin",),
        2,
        100,
        "fine_label_names.txt",
    ),
}
_CIFAR_PIXELS = 3072
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclasses.dataclass(frozen=True)
class RawImages:
    """An image set with its official train/test split, pixels as uint8.

    train_X : ndarray of shape (n_train, n_features), uint8
    train_y : ndarray of shape (n_train,), int64
    test_X, test_y : the same for the official test set
    """

    train_X: np.ndarray
    train_y: np.ndarray
    test_X: np.ndarray
    test_y: np.ndarray
    n_classes: int
    class_names: tuple[str, ...] | None
    image_shape: tuple[int, int, int] = (1, 28, 28)


def pixels_to_float(pixels: np.ndarray, scale: float | None) -> np.ndarray:
    """uint8 pixels as float32, multiplied by ``scale`` (1/255 for [0, 1]) if given."""
    # float32 halves the memory of the image sets (CIFAR in float64 is 1.4 GiB)
    out = pixels.astype(np.float32)
    if scale is not None:
        out *= np.float32(scale)
    return out


# -- MNIST --------------------------------------------------------------------------


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a regular file; a name too long for the file system
    (which ``unusable_directory`` then reports) is none."""
    try:
        return path.is_file()
    except OSError:
        return False


def find_mnist(root: Path) -> tuple[list[Path], list[str]]:
    """The four MNIST files in ``root`` (plain, else ``.gz``) and the missing names."""
    found, missing = [], []
    for name in MNIST_FILES:
        plain, packed = root / name, root / (name + ".gz")
        if _is_file(plain):
            found.append(plain)
        elif _is_file(packed):
            found.append(packed)
        else:
            missing.append(name)
    return found, missing


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes with ``ndim`` dimensions (gzip or raw).

    Validates the magic number (two zero bytes, type 0x08, the dimension count)
    and that the payload is exactly as long as the header's dimensions say.
    """
    data = _read_maybe_gzip(path)
    if len(data) < 4:
        raise DatasetError(f"{path}: {len(data)} bytes, too short for an IDX header.")
    zero, dtype_code, dims = data[0:2], data[2], data[3]
    if zero != b"\x00\x00":
        raise DatasetError(
            f"{path}: bad IDX magic number 0x{data[:4].hex()}; expected "
            f"0x000008{ndim:02x} (is this an MNIST file?)."
        )
    if dtype_code != _IDX_UBYTE or dims != ndim:
        kind = _IDX_TYPES.get(dtype_code, f"unknown type 0x{dtype_code:02x}")
        raise DatasetError(
            f"{path}: IDX magic number 0x{data[:4].hex()} says {dims}-D {kind}; "
            f"expected 0x000008{ndim:02x} ({ndim}-D unsigned bytes)."
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: truncated IDX header.")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise DatasetError(
            f"{path}: {problem}: the header gives shape {shape}, i.e. {expected} "
            f"bytes, but the file holds {len(data)}."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _read_maybe_gzip(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: cannot read ({exc}).") from None
    return data


def read_mnist(root: Path, files: Sequence[Path]) -> RawImages:
    """Read the four MNIST files (as found by :func:`find_mnist`)."""
    train_images, train_labels, test_images, test_labels = files
    parts = []
    for images_path, labels_path in (
        (train_images, train_labels),
        (test_images, test_labels),
    ):
        images = read_idx(images_path, 3)
        labels = read_idx(labels_path, 1)
        if images.shape[0] != labels.shape[0]:
            raise DatasetError(
                f"{images_path} holds {images.shape[0]} images but {labels_path} "
                f"holds {labels.shape[0]} labels."
            )
        _check_labels(labels_path, labels, 10)
        side = images.shape[1:]
        parts.append((images.reshape(images.shape[0], -1), labels.astype(np.int64)))
    (train_X, train_y), (test_X, test_y) = parts
    if train_X.shape[1] != test_X.shape[1]:
        raise DatasetError(
            f"MNIST images in {root} differ in size between train "
            f"({train_X.shape[1]} pixels) and test ({test_X.shape[1]} pixels)."
        )
    names = tuple(str(d) for d in range(10))
    shape = (1, int(side[0]), int(side[1]))  # the test images' rows and columns
    return RawImages(train_X, train_y, test_X, test_y, 10, names, shape)


def _check_labels(path: Path, labels: np.ndarray, n_classes: int) -> None:
    bad = np.flatnonzero(labels >= n_classes)
    if bad.size:
        raise DatasetError(
            f"{path}: label {int(labels[bad[0]])} of record {int(bad[0])} is outside "
            f"[0, {n_classes})."
        )


# -- CIFAR --------------------------------------------------------------------------


def find_cifar(name: str, root: Path) -> tuple[Path | None, list[str]]:
    """The CIFAR batch directory under ``root`` and the missing file names.

    ``root`` may hold the standard directory (``cifar-10-batches-bin``) or be it.
    """
    layout = CIFAR_LAYOUTS[name]
    wanted = layout.train_files + layout.test_files
    for candidate in (root / layout.directory, root):
        missing = [f for f in wanted if not _is_file(candidate / f)]
        if not missing:
            return candidate, []
    return None, [f"{layout.directory}/{f}" for f in wanted]


def read_cifar(name: str, directory: Path) -> RawImages:
    """Read the binary CIFAR-10 or CIFAR-100 batches in ``directory``."""
    layout = CIFAR_LAYOUTS[name]
    train = [_read_cifar_file(directory / f, layout) for f in layout.train_files]
    test = [_read_cifar_file(directory / f, layout) for f in layout.test_files]
    train_X = np.concatenate([x for x, _ in train])
    train_y = np.concatenate([y for _, y in train])
    test_X = np.concatenate([x for x, _ in test])
    test_y = np.concatenate([y for _, y in test])
    names = _class_names(directory / layout.names_file, layout.n_classes)
    # a record's 3072 pixels are 1024 red, 1024 green, 1024 blue, each 32 rows of
    # 32: already the (C, H, W) order every image set is flattened in
    return RawImages(
        train_X, train_y, test_X, test_y, layout.n_classes, names, (3, 32, 32)
    )


def _read_cifar_file(path: Path, layout: _CifarLayout) -> tuple[np.ndarray, np.ndarray]:
    record = layout.label_bytes + _CIFAR_PIXELS
    data = path.read_bytes()
    if not data or len(data) % record:
        raise DatasetError(
            f"{path}: {len(data)} bytes is not a whole number of {record}-byte "
            f"records ({layout.label_bytes} label byte(s) + {_CIFAR_PIXELS} pixels); "
            "is this the binary (not the Python) version, and complete?"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, record)
    # CIFAR-100 records start with the coarse label; the fine label comes last.
    labels = records[:, layout.label_bytes - 1].astype(np.int64)
    _check_labels(path, labels, layout.n_classes)
    return records[:, layout.label_bytes :], labels


def _class_names(path: Path, n_classes: int) -> tuple[str, ...] | None:
    if not path.is_file():
        return None
    names = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    names = [n for n in names if n]
    return tuple(names) if len(names) == n_classes else None


# -- ImageFolder (imagenet) ---------------------------------------------------------


def image_folder_files(
    root: Path,
) -> tuple[tuple[str, ...], list[tuple[Path, int]], list[tuple[Path, int]]]:
    """Classes and sorted (file, label) lists of ``root/train`` and ``root/val``.

    As torchvision's ``ImageFolder``: a class is a directory of ``train/``, its
    images are the .jpg/.jpeg/.png files anywhere below it (sub-folders included,
    in sorted walk order), other files are skipped, and a class directory with no
    image is an error naming it. Unlike it, names starting with ``.`` (a
    ``.ipynb_checkpoints`` folder, macOS ``._x.jpg`` files) are neither classes nor
    images, and a link that leads nowhere is an error, not a file that fails to
    open mid-run (docs/design/image-folders.md).
    """
    train_dir, val_dir = root / "train", root / "val"
    for directory in (train_dir, val_dir):
        if not directory.is_dir():
            raise DatasetError(
                f"imagenet: {directory} does not exist; expected an ImageFolder tree "
                f"{root}/train/<class>/*.jpg and {root}/val/<class>/*.jpg."
            )
    classes = tuple(_class_dirs(train_dir))
    if len(classes) < 2:
        raise DatasetError(
            f"imagenet: {train_dir} must hold at least 2 class directories; "
            f"found {len(classes)}."
        )
    index = {c: i for i, c in enumerate(classes)}
    extra = [name for name in _class_dirs(val_dir) if name not in index]
    if extra:
        raise DatasetError(
            f"imagenet: {val_dir} has class directories that {train_dir} lacks: "
            f"{', '.join(extra[:5])}."
        )
    return classes, _images_in(train_dir, classes), _images_in(val_dir, classes)


def split_folder_files(
    folders: Mapping[str, Path],
) -> tuple[tuple[str, ...], dict[str, list[tuple[Path, int]]]]:
    """Classes and sorted (file, label) lists of split folders given one by one
    (``{"train": a, "val": b}``), each a class-folder root ``<class>/*.jpg``.

    The classes are the class directories of ``folders["train"]``; another split's
    folder with a class train lacks is an error naming it. Files are found as
    :func:`image_folder_files` finds them.
    """
    for split, directory in folders.items():
        if not directory.is_dir():
            raise DatasetError(
                f"dataset.path.{split}: {directory} is not a directory; expected a "
                f"class-folder root {directory}/<class>/*.jpg."
            )
    train_dir = folders["train"]
    classes = tuple(_class_dirs(train_dir))
    if len(classes) < 2:
        raise DatasetError(
            f"dataset.path.train: {train_dir} must hold at least 2 class "
            f"directories; found {len(classes)}."
        )
    for split, directory in folders.items():
        extra = [name for name in _class_dirs(directory) if name not in classes]
        if extra:
            raise DatasetError(
                f"dataset.path.{split}: {directory} has class directories that the "
                f"train folder {train_dir} lacks: {', '.join(extra[:5])}."
            )
    return classes, {s: _images_in(d, classes) for s, d in folders.items()}


def _class_dirs(directory: Path) -> list[str]:
    return sorted(
        p.name for p in directory.iterdir() if p.is_dir() and not _hidden(p.name)
    )


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _images_in(directory: Path, classes: Sequence[str]) -> list[tuple[Path, int]]:
    files: list[tuple[Path, int]] = []
    empty = []
    for label, name in enumerate(classes):
        folder = directory / name
        if not folder.is_dir():
            continue  # a class the validation split lacks
        found = _images_below(folder)
        if not found:
            empty.append(folder)
        files += [(path, label) for path in found]
    if empty:
        shown = ", ".join(str(f) for f in empty[:5])
        more = f" and {len(empty) - 5} more" if len(empty) > 5 else ""
        raise DatasetError(
            f"imagenet: found no .jpg/.jpeg/.png image in the class "
            f"director{'y' if len(empty) == 1 else 'ies'} {shown}{more}; every class "
            "directory needs at least one image (as torchvision's ImageFolder "
            "requires): remove the empty class or add its images."
        )
    if not files:
        raise DatasetError(f"imagenet: no .jpg/.jpeg/.png images under {directory}.")
    return files


def _images_below(folder: Path) -> list[Path]:
    """The image files anywhere below ``folder``, in torchvision's order (folders
    by path, files by name); hidden folders are not entered, and a folder reached
    again through a link is walked once (a link to a parent would loop)."""
    walked: list[tuple[str, list[str]]] = []
    seen: set[str] = set()
    for parent, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(parent)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not _hidden(d)]
        walked.append((parent, names))
    found = []
    for parent, names in sorted(walked):
        for name in sorted(names):
            path = Path(parent) / name
            if _hidden(name) or path.suffix.lower() not in _IMAGE_SUFFIXES:
                continue
            if not path.is_file():
                what = (
                    "a link that leads nowhere"
                    if path.is_symlink()
                    else "not a regular file"
                )
                raise DatasetError(f"imagenet: {path} is {what}; remove or fix it.")
            found.append(path)
    return found


def require_pillow() -> Any:
    """Pillow's ``PIL.Image``, imported on first use; BackendUnavailableError
    naming the extra when Pillow is not installed."""
    try:
        from PIL import Image
    except ImportError:
        raise BackendUnavailableError(
            "Reading imagenet needs Pillow, which is not installed; install it "
            "with: pip install 'model-harness[data]'",
            hint="pip install 'model-harness[data]'",
        ) from None
    return Image


def decode_image(
    path: Path, image_size: int, out: np.ndarray | None = None
) -> np.ndarray:
    """One image file as flat uint8 pixels: RGB, resized (bilinear) to
    ``image_size`` squared, in (C, H, W) order; written into ``out`` when given."""
    Image: Any = require_pillow()
    bilinear = getattr(Image, "Resampling", Image).BILINEAR
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB").resize((image_size, image_size), bilinear)
            hwc = np.asarray(rgb, dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"imagenet: cannot decode {path} ({exc}).") from None
    if out is None:
        out = np.empty(3 * image_size * image_size, dtype=np.uint8)
    # Pillow gives (H, W, C); the flat layout of every image set is (C, H, W)
    out.reshape(3, image_size, image_size)[...] = hwc.transpose(2, 0, 1)
    return out


def read_image_folder(root: Path, image_size: int) -> RawImages:
    """Decode the ImageFolder tree at ``root``, each image resized to a square.

    Pixels come out as (n_samples, 3 * image_size * image_size) uint8, RGB, in
    (C, H, W) order; the ``val`` directory is the official test set.
    """
    require_pillow()
    classes, train_files, val_files = image_folder_files(root)
    parts = []
    for files in (train_files, val_files):
        X = np.empty((len(files), image_size * image_size * 3), dtype=np.uint8)
        for row, (path, _) in enumerate(files):
            decode_image(path, image_size, out=X[row])
        y = np.array([label for _, label in files], dtype=np.int64)
        parts.append((X, y))
    (train_X, train_y), (test_X, test_y) = parts
    shape = (3, image_size, image_size)
    return RawImages(train_X, train_y, test_X, test_y, len(classes), classes, shape)
