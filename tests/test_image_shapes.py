"""Image sets record (C, H, W) and flatten every image channel-first."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from helpers import small_classification

import mlx
from mlx import datasets
from mlx.config.experiment import DatasetConfig
from mlx.datasets import describe, image_shape, load


def _cfg(name: str, path: Path | None = None, **params) -> DatasetConfig:
    return DatasetConfig(name, path=None if path is None else str(path), params=params)


def _idx(path: Path, array: np.ndarray, gz: bool) -> None:
    data = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_records_its_rows_and_columns(tmp_path: Path, gz: bool) -> None:
    rng = np.random.default_rng(1)
    train = rng.integers(0, 256, (20, 5, 7))
    test = rng.integers(0, 256, (6, 5, 7))
    _idx(tmp_path / "train-images-idx3-ubyte", train, gz)
    _idx(tmp_path / "train-labels-idx1-ubyte", rng.integers(0, 10, 20), gz)
    _idx(tmp_path / "t10k-images-idx3-ubyte", test, gz)
    _idx(tmp_path / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 6), gz)
    config = _cfg("mnist", tmp_path, normalize=False, validation_split=0.0)
    splits = load(config, 0)
    assert splits.image_shape == (1, 5, 7) == image_shape(splits)
    info = describe(config)
    assert info.image_shape == (1, 5, 7) == image_shape(info)
    assert (info.n_features, info.n_samples) == (35, 26)
    # one row per image, row-major: X.reshape(N, *shape) gives the images back
    np.testing.assert_array_equal(splits.train[0].reshape(20, 1, 5, 7)[:, 0], train)
    np.testing.assert_array_equal(splits.test[0].reshape(6, 1, 5, 7)[:, 0], test)


def test_mnist_without_files_describes_the_standard_shape(tmp_path: Path) -> None:
    info = describe(_cfg("mnist", tmp_path))
    assert info.image_shape == (1, 28, 28) and info.n_features == 784


def _cifar_oracle(seed: int) -> np.ndarray:
    """A (3, 32, 32) image whose every pixel differs from its neighbours."""
    c, h, w = np.meshgrid(np.arange(3), np.arange(32), np.arange(32), indexing="ij")
    return ((c * 97 + h * 31 + w * 7 + seed * 13) % 256).astype(np.uint8)


def _cifar_record(label: int, image: np.ndarray) -> bytes:
    # the format spelled out: 1024 red bytes (32 rows of 32), then green, then blue
    out = bytearray([label])
    for channel in range(3):
        for row in range(32):
            for column in range(32):
                out.append(int(image[channel, row, column]))
    return bytes(out)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_rows_are_channel_first(tmp_path: Path, name: str) -> None:
    folder = tmp_path / (
        "cifar-10-batches-bin" if name == "cifar10" else "cifar-100-binary"
    )
    folder.mkdir()
    images = [_cifar_oracle(i) for i in range(4)]
    prefix = (lambda lab: [lab]) if name == "cifar10" else (lambda lab: [0, lab])

    def record(label: int, image: np.ndarray) -> bytes:
        return bytes(prefix(label)[:-1]) + _cifar_record(label, image)

    if name == "cifar10":
        for i in range(1, 6):
            (folder / f"data_batch_{i}.bin").write_bytes(record(i, images[i % 4]))
        (folder / "test_batch.bin").write_bytes(record(3, images[3]))
    else:
        (folder / "train.bin").write_bytes(
            b"".join(record(i, images[i]) for i in range(4))
        )
        (folder / "test.bin").write_bytes(record(3, images[3]))
    splits = load(_cfg(name, tmp_path, normalize=False, validation_split=0.0), 0)
    assert splits.image_shape == (3, 32, 32)
    assert describe(_cfg(name, tmp_path)).image_shape == (3, 32, 32)
    test = splits.test[0].reshape(1, 3, 32, 32)[0]
    np.testing.assert_array_equal(test, images[3])
    assert test[0, 0, 1] == images[3][0, 0, 1]  # red, row 0, column 1
    first = splits.train[0][0]
    expected = images[1] if name == "cifar10" else images[0]
    np.testing.assert_array_equal(first[:1024], expected[0].reshape(-1))  # all red


def _write_png(path: Path, hwc: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(hwc).save(path, format="PNG")


def test_imagenet_rows_are_channel_first(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    from PIL import Image

    rng = np.random.default_rng(2)
    pictures = {
        ("train", "a"): rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
        ("train", "b"): rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
        ("val", "a"): rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
    }
    pictures[("val", "a")][0, 0] = (255, 0, 0)
    for (split, label), hwc in pictures.items():
        _write_png(tmp_path / split / label / "x.png", hwc)
    config = _cfg("imagenet", tmp_path, image_size=8, validation_split=0.0)
    splits = load(config, 0)
    assert splits.image_shape == (3, 8, 8) == describe(config).image_shape
    scale = np.float32(1 / 255)
    for row, key in zip(splits.train[0], [("train", "a"), ("train", "b")]):
        expected = pictures[key].transpose(2, 0, 1).astype(np.float32) * scale
        np.testing.assert_array_equal(row.reshape(3, 8, 8), expected)
    test = splits.test[0].reshape(3, 8, 8)
    assert tuple(test[:, 0, 0]) == (1.0, 0.0, 0.0)  # red top-left, pixels in [0, 1]
    assert splits.test[0].min() >= 0.0 and splits.test[0].max() == 1.0

    # resized: Pillow's own bilinear resize of the picture, channel-first
    small = load(_cfg("imagenet", tmp_path, image_size=4, normalize=False), 0)
    resized = Image.fromarray(pictures[("val", "a")]).resize((4, 4), Image.BILINEAR)
    expected = np.asarray(resized).transpose(2, 0, 1).astype(np.float32)
    np.testing.assert_array_equal(small.test[0].reshape(3, 4, 4), expected)


def test_tabular_and_synthetic_data_have_no_image_shape(tmp_path: Path) -> None:
    config = _cfg("synthetic_classification", n_samples=50, n_features=4)
    assert load(config, 0).image_shape is None
    assert (
        describe(config).image_shape is None and image_shape(describe(config)) is None
    )
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,t\n" + "1,2,0\n2,3,1\n" * 10)
    assert load(_cfg("custom", csv), 0).image_shape is None
    assert describe(_cfg("custom", csv)).image_shape is None
    assert "image_shape" in datasets.__all__


def test_data_json_records_the_image_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLX_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    run = mlx.run_experiment(small_classification(epochs=1), quiet=True)
    record = json.loads((run.directory / "data.json").read_text())
    assert "image_shape" in record and record["image_shape"] is None
