"""Tiny MNIST and CIFAR-10 files in the formats the loaders read, for tests."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


def _idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(
    root: Path, n_train: int = 64, n_test: int = 16, side: int = 28, seed: int = 0
) -> Path:
    """The four MNIST IDX files under ``root``: digits drawn as a bright square
    whose position follows the label, so a model can learn something."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, side, side))
        for i, label in enumerate(labels):
            row, col = divmod(int(label), 5)
            top, left = 2 + row * (side // 2), 1 + col * (side // 6)
            images[i, top : top + side // 4, left : left + side // 7] = 255
        _idx(root / f"{prefix}-images-idx3-ubyte", images)
        _idx(root / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def write_cifar10(root: Path, per_batch: int = 8, n_test: int = 8, seed: int = 0):
    """The CIFAR-10 binary batches under ``root/cifar-10-batches-bin``."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        n = n_test if name.startswith("test") else per_batch
        labels = rng.integers(0, 10, n).astype(np.uint8)
        pixels = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
        records = np.concatenate([labels[:, None], pixels], axis=1)
        (folder / name).write_bytes(records.tobytes())
    classes = "airplane automobile bird cat deer dog frog horse ship truck"
    (folder / "batches.meta.txt").write_text("\n".join(classes.split()) + "\n")
    return root
