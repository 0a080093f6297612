"""Image folders too large for memory, decoded from disk batch by batch.

When an ``imagenet`` tree would need more than the memory limit
(:func:`mlx.datasets.memory_limit`), :func:`mlx.datasets.load` returns splits whose
features are :class:`ImageFiles`: a list of files standing in for the
(n_samples, 3 * size * size) float32 array the in-memory path would hold. Indexing
one decodes those rows; the training loop and evaluation iterate batches through a
``torch.utils.data.DataLoader`` whose worker processes decode, resize and (for
training) augment each batch. Rows, order, pixels and augmentation are exactly what
the in-memory path gives, so runs do not depend on which path loaded the data.

torch is imported only here, and only when batches are iterated.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable, Generator, Iterator, Sequence

import numpy as np

from mlx.datasets.images import (
    RawImages,
    decode_image,
    image_folder_files,
    pixels_to_float,
    require_pillow,
)
from mlx.datasets.splits import batch_order
from mlx.errors import BackendUnavailableError
from mlx.utils import environ

__all__ = ["WORKERS_ENV", "ImageFiles", "StreamedBatches", "data_workers"]

#: Environment variable: how many worker processes decode images (default: up to 4,
#: at most the CPU count; 0 decodes in the main process).
WORKERS_ENV = environ.DATA_WORKERS
_EVAL_BATCH = 256
_TORCH_HINT = "pip install 'model-harness[torch]'"


def data_workers() -> int:
    """The number of decoding worker processes (``$MLX_DATA_WORKERS``)."""
    value = environ.data_workers()
    return min(4, os.cpu_count() or 1) if value is None else value


def require_torch() -> None:
    """BackendUnavailableError naming the extra unless torch can be imported."""
    try:
        import torch.utils.data  # noqa: F401
    except ImportError:
        raise BackendUnavailableError(
            "this imagenet folder is larger than the memory limit and is streamed "
            "from disk with torch's DataLoader, but torch is not installed; install "
            f"it with: {_TORCH_HINT}",
            hint=_TORCH_HINT,
        ) from None


class ImageFiles:
    """Image files standing in for the float32 array of their decoded pixels.

    ``shape`` is (n_files, 3 * size * size); ``X[rows]`` (an integer, a slice or an
    array of row numbers) decodes those images in this process, exactly as the
    in-memory loader would: RGB, resized bilinearly to ``size`` squared, (C, H, W)
    order, float32, times ``scale`` when given.
    """

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, files: Sequence[Path], size: int, scale: float | None) -> None:
        self.files = [Path(f) for f in files]
        self.size = int(size)
        self.scale = scale
        self.shape = (len(self.files), 3 * self.size * self.size)

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return f"ImageFiles({len(self.files)} files, {self.size}x{self.size})"

    def subset(self, rows: np.ndarray) -> ImageFiles:
        """The files at ``rows``, in that order (no decoding)."""
        return ImageFiles([self.files[int(i)] for i in rows], self.size, self.scale)

    def decode(self, rows: Sequence[int]) -> np.ndarray:
        """The images at ``rows`` as one (len(rows), n_features) float32 array."""
        pixels = np.empty((len(rows), self.shape[1]), dtype=np.uint8)
        for k, i in enumerate(rows):
            decode_image(self.files[int(i)], self.size, out=pixels[k])
        return pixels_to_float(pixels, self.scale)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self.decode([int(np.arange(len(self))[key])])[0]
        rows = np.arange(len(self))[key]
        return self.decode(rows.reshape(-1).tolist())

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        # everything at once: what the streaming path exists to avoid, but correct
        X = self.decode(range(len(self)))
        return X if dtype is None else X.astype(dtype)

    def chunks(
        self, batch_size: int = _EVAL_BATCH
    ) -> Generator[np.ndarray, None, None]:
        """Every image in order, ``batch_size`` at a time, decoded by workers."""
        plan = [
            [(0, 0, i) for i in range(start, min(start + batch_size, len(self)))]
            for start in range(0, len(self), batch_size)
        ]
        for X, _ in _iterate(self, np.zeros(len(self), np.int64), plan, None, 0):
            yield X

    def batch_source(
        self,
        y: np.ndarray,
        batch_size: int,
        seed: int,
        *,
        augment: Callable[..., np.ndarray] | None = None,
        dtype: Any = None,
    ) -> StreamedBatches:
        """The training loop's source of batches over these files (see
        :func:`mlx.experiment.loop.batch_source`)."""
        return StreamedBatches(self, y, batch_size, seed, augment=augment, dtype=dtype)


class StreamedBatches:
    """Training batches decoded from :class:`ImageFiles` by worker processes.

    Epoch ``k`` visits the files in :func:`mlx.datasets.splits.batch_order`'s order for
    ``(seed, k)``; batch ``b`` is augmented in the worker with the draws of
    ``(seed, k, b)``, the same function the in-memory path applies, then converted
    to ``dtype`` here.
    """

    def __init__(
        self,
        files: ImageFiles,
        y: np.ndarray,
        batch_size: int,
        seed: int,
        *,
        augment: Callable[..., np.ndarray] | None = None,
        dtype: Any = None,
    ) -> None:
        require_torch()
        self.files = files
        self.y = np.ascontiguousarray(y)
        self.seed = seed
        self.augment = augment
        self.dtype = np.dtype(dtype if dtype is not None else np.float32)
        self.n_samples = len(files)
        self.batch_size = min(batch_size, self.n_samples)
        self.n_batches = math.ceil(self.n_samples / self.batch_size)

    def batches(
        self, epoch: int, start: int = 0
    ) -> Generator[tuple[np.ndarray, np.ndarray], None, None]:
        order = batch_order(self.seed, epoch, self.n_samples)
        size = self.batch_size
        plan = [
            [(epoch, b, int(i)) for i in order[b * size : (b + 1) * size]]
            for b in range(start, self.n_batches)
        ]
        for X, y in _iterate(self.files, self.y, plan, self.augment, self.seed):
            yield np.asarray(X, dtype=self.dtype), y

    def close(self) -> None:
        pass


class _Decoder:
    """The DataLoader's dataset: item ``(epoch, batch, row)`` -> pixels, label."""

    def __init__(self, files: ImageFiles, y: np.ndarray) -> None:
        self.files = ImageFiles(files.files, files.size, None)  # uint8 -> collate
        self.y = y

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item: tuple[int, int, int]) -> tuple[Any, ...]:
        epoch, batch, row = item
        pixels = np.empty(self.files.shape[1], dtype=np.uint8)
        decode_image(self.files.files[row], self.files.size, out=pixels)
        return pixels, self.y[row], epoch, batch


class _Collate:
    """Stacks a batch, scales it to float32 and augments it, in the worker."""

    def __init__(self, scale: float | None, augment: Any, seed: int) -> None:
        self.scale, self.augment, self.seed = scale, augment, seed

    def __call__(self, items: list[tuple[Any, ...]]) -> tuple[np.ndarray, np.ndarray]:
        X = pixels_to_float(np.stack([item[0] for item in items]), self.scale)
        y = np.array([item[1] for item in items], dtype=np.asarray(items[0][1]).dtype)
        if self.augment is not None:
            epoch, batch = items[0][2], items[0][3]  # every item of a batch agrees
            X = self.augment(X, self.seed, epoch, batch)
        return X, y


class _Plan:
    """A batch sampler over a fixed list of batches."""

    def __init__(self, plan: list[list[tuple[int, int, int]]]) -> None:
        self.plan = plan

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        return iter(self.plan)

    def __len__(self) -> int:
        return len(self.plan)


def _ignore_interrupts(worker_id: int) -> None:
    """Ctrl-C reaches the whole process group: the workers leave it to the main
    process, which stops after the current step and shuts them down."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _iterate(
    files: ImageFiles,
    y: np.ndarray,
    plan: list[list[tuple[int, int, int]]],
    augment: Any,
    seed: int,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    if not plan:
        return iter(())
    require_torch()
    from torch.utils.data import DataLoader

    workers = min(data_workers(), len(plan))
    loader: Any = DataLoader(
        _Decoder(files, y),  # type: ignore[arg-type]
        batch_sampler=_Plan(plan),
        collate_fn=_Collate(files.scale, augment, seed),
        num_workers=workers,
        prefetch_factor=2 if workers else None,
        worker_init_fn=_ignore_interrupts if workers else None,
    )
    return iter(loader)


def image_folder(root: Path, size: int, scale: float | None) -> RawImages:
    """The ImageFolder tree at ``root`` as :class:`~mlx.datasets.images.RawImages`
    whose pixels are :class:`ImageFiles` (listed, not decoded)."""
    require_pillow()
    require_torch()
    classes, train_files, val_files = image_folder_files(root)
    X_train = ImageFiles([path for path, _ in train_files], size, scale)
    X_test = ImageFiles([path for path, _ in val_files], size, scale)
    y_train = np.array([label for _, label in train_files], dtype=np.int64)
    y_test = np.array([label for _, label in val_files], dtype=np.int64)
    return RawImages(
        X_train,  # type: ignore[arg-type]
        y_train,
        X_test,  # type: ignore[arg-type]
        y_test,
        len(classes),
        classes,
        (3, size, size),
    )
