"""Training-batch augmentation: exact transforms, seeded by (seed, epoch, batch)."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import cli_env, run_cli, write_config

import mlx
from mlx.config.experiment import DatasetConfig
from mlx.datasets import augment
from mlx.datasets.augment import augmentation_for, batch_rng
from mlx.experiment.loop import batch_order, batch_source


def _images(n: int, shape: tuple, seed: int = 0) -> np.ndarray:
    # distinct values everywhere, so every crop offset and flip is told apart
    rng = np.random.default_rng(seed)
    return rng.random((n, *shape)).astype(np.float32) + 0.5


def _augment(name: str, shape: tuple):
    aug = augmentation_for(DatasetConfig(name, params={"augmentation": True}), shape)
    assert aug is not None
    return aug


def _padded_matches(image: np.ndarray, out: np.ndarray, pad: int) -> list:
    """(dy, dx, flipped) of every slice of np.pad(image) that equals ``out``."""
    _, h, w = image.shape
    padded = np.pad(image, ((0, 0), (pad, pad), (pad, pad)))
    found = []
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[:, dy : dy + h, dx : dx + w]
            if np.array_equal(crop, out):
                found.append((dy, dx, False))
            if np.array_equal(crop[..., ::-1], out):
                found.append((dy, dx, True))
    return found


@pytest.mark.parametrize(
    "name, shape, pad, flips",
    [
        ("cifar10", (3, 32, 32), 4, True),
        ("cifar100", (3, 32, 32), 4, True),
        ("mnist", (1, 28, 28), 2, False),
        ("mnist", (1, 9, 13), 2, False),  # any IDX image size
    ],
)
def test_crop_and_flip_equal_a_slice_of_the_zero_padded_image(
    name: str, shape: tuple, pad: int, flips: bool
) -> None:
    X = _images(48, shape)
    out = _augment(name, shape)(X.reshape(48, -1), 3, 1, 0).reshape(48, *shape)
    seen = []
    for image, result in zip(X, out):
        (match,) = _padded_matches(image, result, pad)  # exactly one explanation
        seen.append(match)
    offsets = {(dy, dx) for dy, dx, _ in seen}
    flipped = [f for _, _, f in seen]
    assert len(offsets) > 10  # offsets vary over the batch
    assert {dy for dy, _ in offsets} | {dx for _, dx in offsets} <= set(
        range(2 * pad + 1)
    )
    if flips:
        assert 10 < sum(flipped) < 38  # about half, p = 0.5
    else:
        assert not any(flipped)


def test_crop_offsets_reach_every_corner_over_many_batches() -> None:
    shape = (1, 6, 6)
    aug = _augment("mnist", shape)
    X = _images(16, shape)
    offsets = set()
    for batch in range(40):
        out = aug(X.reshape(16, -1), 0, 1, batch).reshape(16, *shape)
        for image, result in zip(X, out):
            (match,) = _padded_matches(image, result, 2)
            offsets.add(match[:2])
    assert offsets == {(dy, dx) for dy in range(5) for dx in range(5)}


def test_horizontal_flip_mirrors_exactly_the_drawn_images() -> None:
    X = _images(32, (3, 5, 7))
    flip = np.random.default_rng(9).random(32) < 0.5
    out = augment.horizontal_flip(X.copy(), np.random.default_rng(9))
    np.testing.assert_array_equal(out[flip], X[flip][..., ::-1])
    np.testing.assert_array_equal(out[~flip], X[~flip])
    assert flip.any() and not flip.all()


@pytest.mark.parametrize(
    "name, shape",
    [("cifar10", (3, 32, 32)), ("mnist", (1, 28, 28)), ("imagenet", (3, 16, 16))],
)
def test_the_draws_depend_on_seed_epoch_and_batch_only(name: str, shape: tuple) -> None:
    aug = _augment(name, shape)
    X = _images(64, shape).reshape(64, -1)
    before = X.copy()
    first = aug(X, 7, 2, 5)
    aug(X, 7, 9, 1)  # other draws in between change nothing
    np.testing.assert_array_equal(aug(X, 7, 2, 5), first)
    np.testing.assert_array_equal(X, before)  # the input is left alone
    assert first.shape == X.shape and first.dtype == X.dtype
    for other in [(7, 2, 6), (7, 3, 5), (8, 2, 5)]:
        assert not np.array_equal(aug(X, *other), first), other
    # a float64 batch gets the same draws
    wide = aug(X.astype(np.float64), 7, 2, 5)
    assert wide.dtype == np.float64
    np.testing.assert_allclose(wide, first, rtol=1e-6)


def test_random_resized_crop_equals_torch_bilinear_of_the_window() -> None:
    torch = pytest.importorskip("torch")
    X = _images(40, (3, 16, 12))
    top, left, height, width = augment.crop_windows(40, 16, 12, batch_rng(1, 1, 0))
    out = augment.resize_windows(X, top, left, height, width)
    for i in range(40):
        window = X[i, :, top[i] : top[i] + height[i], left[i] : left[i] + width[i]]
        assert window.shape[1:] == (height[i], width[i])
        expected = torch.nn.functional.interpolate(
            torch.from_numpy(np.ascontiguousarray(window))[None],
            size=(16, 12),
            mode="bilinear",
            align_corners=False,
        )[0].numpy()
        np.testing.assert_allclose(out[i], expected, rtol=1e-5, atol=1e-6)
    # the windows obey scale (0.08, 1) and ratio (3/4, 4/3), up to rounding
    area = height * width / (16 * 12)
    assert area.min() >= 0.05 and area.max() <= 1.0
    ratio = width / height
    assert ratio.min() > 0.6 and ratio.max() < 1.6
    assert len(set(zip(top, left, height, width))) > 30


def test_a_full_window_is_the_image_itself() -> None:
    X = _images(4, (3, 8, 8))
    rng = np.random.default_rng(0)
    out = augment.random_resized_crop(X, rng, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    np.testing.assert_allclose(out, X, rtol=0, atol=1e-6)


def test_imagenet_flips_its_crops_about_half_the_time() -> None:
    shape = (3, 8, 8)
    aug = _augment("imagenet", shape)
    X = _images(200, shape).reshape(200, -1)
    rng = batch_rng(0, 1, 0)
    windows = augment.crop_windows(200, 8, 8, rng)
    crops = augment.resize_windows(X.reshape(200, *shape), *windows)
    out = aug(X, 0, 1, 0).reshape(200, *shape)
    flipped = np.array([np.array_equal(o, c[..., ::-1]) for o, c in zip(out, crops)])
    same = np.array([np.array_equal(o, c) for o, c in zip(out, crops)])
    assert (flipped | same).all()
    assert 70 < flipped.sum() < 130


def test_no_augmentation_without_the_flag_or_images() -> None:
    assert augmentation_for(DatasetConfig("cifar10", params={}), (3, 32, 32)) is None
    off = DatasetConfig("cifar10", params={"augmentation": False})
    assert augmentation_for(off, (3, 32, 32)) is None
    on = DatasetConfig("synthetic_classification", params={"augmentation": True})
    assert augmentation_for(on, None) is None


def test_training_batches_keep_labels_and_order() -> None:
    shape = (3, 8, 8)
    aug = _augment("cifar10", shape)
    X = _images(37, shape).reshape(37, -1)
    y = np.arange(37, dtype=np.int64) * 3
    plain = batch_source(X, y, 8, 11, dtype=np.float64)
    augmented = batch_source(X, y, 8, 11, augment=aug, dtype=np.float64)
    for epoch in (1, 2):
        order = batch_order(11, epoch, 37)
        pairs = zip(plain.batches(epoch), augmented.batches(epoch))
        for b, ((xp, yp), (xa, ya)) in enumerate(pairs):
            index = order[b * 8 : (b + 1) * 8]
            np.testing.assert_array_equal(ya, y[index])
            np.testing.assert_array_equal(yp, y[index])
            np.testing.assert_array_equal(xp, X[index].astype(np.float64))
            expected = aug(X[index], 11, epoch, b).astype(np.float64)
            assert xa.dtype == np.float64
            np.testing.assert_array_equal(xa, expected)
    # resuming mid-epoch gives the same batches from there on
    late = [x.copy() for x, _ in augmented.batches(2, 3)]
    full = [x.copy() for x, _ in augmented.batches(2)]
    assert len(late) == 2 and all(np.array_equal(a, b) for a, b in zip(late, full[3:]))


# -- through the experiment and the CLI ---------------------------------------------


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def make_mnist(root: Path, n_train: int, n_test: int = 40, side: int = 8) -> Path:
    rng = np.random.default_rng(4)
    root.mkdir(parents=True, exist_ok=True)
    labels = rng.integers(0, 10, n_train + n_test)
    # learnable: class k is bright in row k % side
    images = rng.integers(0, 60, (n_train + n_test, side, side))
    images[np.arange(len(labels)), labels % side, :] = 250
    _write_idx(root / "train-images-idx3-ubyte", images[:n_train])
    _write_idx(root / "train-labels-idx1-ubyte", labels[:n_train])
    _write_idx(root / "t10k-images-idx3-ubyte", images[n_train:])
    _write_idx(root / "t10k-labels-idx1-ubyte", labels[n_train:])
    return root


def _config(data: Path, *, augmentation: bool = True, epochs: int = 3, **kw) -> dict:
    side = kw.pop("side", 8)
    return {
        "name": "aug",
        "dataset": {
            "name": "mnist",
            "path": str(data),
            "params": {"augmentation": augmentation, "validation_split": 0.2},
        },
        "model": {
            "name": "mlp",
            "params": {
                "layer_sizes": [side * side, kw.pop("hidden", 16), 10],
                "output_activation": "softmax",
            },
        },
        "training": {
            "epochs": epochs,
            "batch_size": kw.pop("batch_size", 16),
            "learning_rate": 0.01,
            "optimizer": "adam",
            "seed": 5,
        },
        "output": {"directory": "outputs", "checkpoint_frequency": 1},
    }


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLX_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


def _metrics(run_dir: Path) -> list:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(s).items() if k != "seconds"} for s in lines]


@pytest.mark.slow
def test_augmentation_changes_training_but_not_validation_or_eval(root: Path) -> None:
    from mlx.datasets import load
    from mlx.experiment.evaluate import model_outputs
    from mlx.metrics import compute_metrics
    from mlx.models import load_model

    data = make_mnist(root / "mnist", 200)
    plain = mlx.run_experiment(_config(data, augmentation=False), quiet=True)
    run = mlx.run_experiment(_config(data), quiet=True)
    weights = "model/model.safetensors"
    assert (run.directory / weights).read_bytes() != (
        plain.directory / weights
    ).read_bytes()
    again = mlx.run_experiment(_config(data), quiet=True)
    assert (run.directory / weights).read_bytes() == (
        again.directory / weights
    ).read_bytes()

    # the last val_loss is the model's loss on the plain validation images
    model = load_model(run.directory / "model")
    splits = load(run.config.dataset, 5)
    X_val, y_val = splits.val
    _, proba = model_outputs(model, X_val.astype(np.float64))
    expected = compute_metrics(["log_loss"], "classification", y_val, None, proba=proba)
    last = _metrics(run.directory)[-1]
    assert last["val_loss"] == pytest.approx(expected["log_loss"], rel=1e-12)

    # eval scores the plain test images
    result = mlx.evaluate(run.run_id, metrics=["accuracy"])
    y_pred, _ = model_outputs(model, splits.test[0])
    assert result["metrics"]["accuracy"] == pytest.approx(
        float(np.mean(y_pred == splits.test[1]))
    )
    record = json.loads((run.directory / "data.json").read_text())
    assert record["image_shape"] == [1, 8, 8]


@pytest.mark.slow
def test_interrupted_and_resumed_run_with_augmentation_equals_uninterrupted(
    root: Path,
) -> None:
    data = make_mnist(root / "mnist", 2000)
    config = _config(data, epochs=4, batch_size=8)
    config["model"]["params"]["layer_sizes"] = [64, 256, 256, 10]
    reference_root = root / "reference"
    reference_root.mkdir()
    (reference_root / "pyproject.toml").write_text("")
    write_config(reference_root / "exp.yaml", config)
    done = run_cli(
        ["run-experiment", "--config", "exp.yaml", "--quiet"],
        reference_root,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    (reference,) = [d for d in (reference_root / "outputs").iterdir() if d.is_dir()]

    write_config(root / "exp.yaml", config)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlx", "run-experiment", "--config", "exp.yaml"],
        cwd=root,
        env=cli_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_dir = None
    while run_dir is None:
        assert proc.poll() is None, proc.communicate()
        for d in (root / "outputs").glob("*-*"):
            m = d / "metrics.jsonl"
            if m.exists() and len(m.read_text().splitlines()) >= 2:
                run_dir = d
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    # stopped inside an epoch: the resumed run starts mid-epoch
    assert list((run_dir / "checkpoints").glob("epoch-*-step-*"))

    resumed = run_cli(
        ["run-experiment", "--resume", str(run_dir), "--quiet"], root, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    assert (run_dir / "model" / "model.safetensors").read_bytes() == (
        reference / "model" / "model.safetensors"
    ).read_bytes()
    assert _metrics(run_dir) == _metrics(reference)
