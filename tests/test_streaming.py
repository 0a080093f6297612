"""imagenet folders over the memory limit stream from disk, with the same data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import cli_env, run_cli, write_config

from mlx.config.experiment import DatasetConfig
from mlx.datasets import load
from mlx.datasets.augment import augmentation_for
from mlx.datasets.streaming import ImageFiles
from mlx.errors import BackendUnavailableError, ConfigError, DatasetError
from mlx.experiment.loop import batch_source
from mlx.runs.records import data_record

pytest.importorskip("PIL")
pytest.importorskip("torch")

LIMIT = "MLX_MEMORY_LIMIT"


def make_tree(root: Path, n_train: int = 12, n_val: int = 4, side: int = 16) -> Path:
    """3 classes of small JPEG files, each a noisy picture of its class colour."""
    from PIL import Image

    rng = np.random.default_rng(8)
    colours = {"ant": (200, 40, 40), "bee": (40, 200, 40), "cow": (40, 40, 200)}
    for split, count in (("train", n_train), ("val", n_val)):
        for name, colour in colours.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                noise = rng.integers(-40, 40, (side, side, 3))
                pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:02d}.jpg", quality=90)
    return root


def _dataset(root: Path, **params) -> DatasetConfig:
    params = {"image_size": 16, "validation_split": 0.25, **params}
    return DatasetConfig("imagenet", path=str(root), params=params)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "tree")


def _epoch(source, epoch: int, start: int = 0) -> list:
    return [(x.copy(), y.copy()) for x, y in source.batches(epoch, start)]


@pytest.mark.parametrize("workers", ["0", "2"])
def test_streamed_splits_hold_the_same_rows_and_batches(
    tree: Path, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    monkeypatch.setenv("MLX_DATA_WORKERS", workers)
    config = _dataset(tree, augmentation=True)
    memory = load(config, 3)
    monkeypatch.setenv(LIMIT, "1000")  # 36 + 12 images of 3 KiB each are over it
    streamed = load(config, 3)
    assert isinstance(streamed.train[0], ImageFiles)
    assert isinstance(memory.train[0], np.ndarray)
    assert streamed.sizes == memory.sizes == (27, 9, 12)
    assert streamed.image_shape == memory.image_shape == (3, 16, 16)
    # the fingerprints eval and resume check agree, whichever path loaded the data
    assert data_record(streamed) == data_record(memory)
    for split in ("train", "val", "test"):
        X_stream, y_stream = getattr(streamed, split)
        X_memory, y_memory = getattr(memory, split)
        np.testing.assert_array_equal(y_stream, y_memory)
        np.testing.assert_array_equal(X_stream[np.arange(len(y_memory))], X_memory)
        chunks = list(X_stream.chunks(5))
        assert [len(c) for c in chunks][:1] == [min(5, len(y_memory))]
        assert np.concatenate(chunks).tobytes() == X_memory.tobytes()

    augment = augmentation_for(config, memory.image_shape)
    for aug in (None, augment):
        for dtype in (np.float32, np.float64):
            a = batch_source(*memory.train, 8, 7, augment=aug, dtype=dtype)
            b = batch_source(*streamed.train, 8, 7, augment=aug, dtype=dtype)
            assert (a.n_batches, b.n_batches) == (4, 4)
            for epoch, start in ((1, 0), (2, 0), (2, 2)):
                ours, theirs = _epoch(a, epoch, start), _epoch(b, epoch, start)
                assert len(ours) == len(theirs) == 4 - start
                for (xa, ya), (xb, yb) in zip(ours, theirs):
                    assert xa.dtype == xb.dtype == dtype
                    assert xa.tobytes() == xb.tobytes()
                    assert ya.tobytes() == yb.tobytes()
    # augmentation did change the streamed batches
    b_plain = _epoch(batch_source(*streamed.train, 8, 7), 1)
    b_aug = _epoch(batch_source(*streamed.train, 8, 7, augment=augment), 1)
    assert all(not np.array_equal(p[0], q[0]) for p, q in zip(b_plain, b_aug))


def test_without_torch_the_error_names_the_extra(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LIMIT, "1000")
    for name in [m for m in sys.modules if m == "torch" or m.startswith("torch.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(BackendUnavailableError, match=r"model-harness\[torch\]"):
        load(_dataset(tree), 0)


def test_other_datasets_over_the_limit_are_still_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,t\n" + "1,2,0\n2,3,1\n" * 10)
    monkeypatch.setenv(LIMIT, "100")
    with pytest.raises(DatasetError, match=r"'custom' would need about .* limit"):
        load(DatasetConfig("custom", path=str(csv)), 0)


@pytest.mark.parametrize("value", ["lots", "0", "-5"])
def test_a_bad_limit_or_worker_count_is_a_clear_error(
    tree: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(LIMIT, value)
    with pytest.raises(ConfigError, match="MLX_MEMORY_LIMIT must be a whole number"):
        load(_dataset(tree), 0)
    monkeypatch.setenv(LIMIT, "1000")
    monkeypatch.setenv("MLX_DATA_WORKERS", value if value != "0" else "x")
    streamed = load(_dataset(tree), 0)
    with pytest.raises(ConfigError, match="MLX_DATA_WORKERS must be"):
        list(streamed.test[0].chunks())


def _config(tree: Path) -> dict:
    return {
        "name": "stream",
        "dataset": {
            "name": "imagenet",
            "path": str(tree),
            "params": {
                "image_size": 16,
                "validation_split": 0.25,
                "augmentation": True,
            },
        },
        "model": {
            "name": "mlp",
            "params": {"layer_sizes": [768, 16, 3], "output_activation": "softmax"},
        },
        "training": {
            "epochs": 3,
            "batch_size": 8,
            "learning_rate": 0.01,
            "optimizer": "adam",
            "seed": 2,
        },
        "output": {"directory": "outputs", "checkpoint_frequency": 1},
    }


def _run(workdir: Path, tree: Path, env: dict) -> Path:
    workdir.mkdir()
    (workdir / "pyproject.toml").write_text("")
    write_config(workdir / "exp.yaml", _config(tree))
    done = run_cli(
        ["run-experiment", "--config", "exp.yaml", "--quiet"],
        workdir,
        env={**cli_env(workdir), **env},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    (run_dir,) = [d for d in (workdir / "outputs").iterdir() if d.is_dir()]
    return run_dir


def _eval(run_dir: Path, env: dict) -> dict:
    done = run_cli(
        ["eval", str(run_dir), "--save-predictions"],
        run_dir.parents[1],
        env={**cli_env(run_dir.parents[1]), **env},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    (saved,) = [line for line in done.stdout.splitlines() if line.startswith("saved")]
    result = json.loads(Path(saved.split(None, 1)[1].strip()).read_text())
    result["predictions.csv"] = (run_dir / "predictions.csv").read_text()
    return result


def _metrics(run_dir: Path) -> list:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(s).items() if k != "seconds"} for s in lines]


@pytest.mark.slow
def test_a_streamed_run_trains_and_evaluates_like_the_in_memory_one(
    tmp_path: Path, tree: Path
) -> None:
    streaming = {LIMIT: "1000", "MLX_DATA_WORKERS": "2"}
    streamed = _run(tmp_path / "streamed", tree, streaming)
    memory = _run(tmp_path / "memory", tree, {})
    weights = "model/model.safetensors"
    assert (streamed / weights).read_bytes() == (memory / weights).read_bytes()
    assert _metrics(streamed) == _metrics(memory)
    assert len(_metrics(streamed)) == 3
    assert "streamed from disk" in (streamed / "train.log").read_text()
    assert "streamed from disk" not in (memory / "train.log").read_text()
    record = json.loads((streamed / "data.json").read_text())
    assert record["image_shape"] == [3, 16, 16]

    scored = _eval(streamed, streaming)
    assert scored["n_samples"] == 12
    reference = _eval(memory, {})
    assert scored["metrics"] == reference["metrics"]
    assert scored["predictions.csv"] == reference["predictions.csv"]
    # a run trained in memory is scored on streamed data, and the other way round
    assert _eval(memory, streaming)["metrics"] == scored["metrics"]
    assert _eval(streamed, {})["metrics"] == scored["metrics"]
    assert _eval(streamed, {})["predictions.csv"] == scored["predictions.csv"]


@pytest.mark.slow
def test_streaming_without_torch_fails_before_the_run_exists(
    tmp_path: Path, tree: Path
) -> None:
    fake = tmp_path / "fake"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text("raise ImportError('no torch here')\n")
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "pyproject.toml").write_text("")
    write_config(workdir / "exp.yaml", _config(tree))
    env = cli_env(workdir, **{LIMIT: "1000"})
    env["PYTHONPATH"] = f"{fake}:{env['PYTHONPATH']}"
    done = run_cli(
        ["run-experiment", "--config", "exp.yaml"], workdir, env=env, timeout=600
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "error:" in done.stderr
    assert "pip install 'model-harness[torch]'" in done.stderr
    assert not (workdir / "outputs").exists()
    # under the limit the same config trains without torch
    env.pop(LIMIT)
    done = run_cli(
        ["run-experiment", "--config", "exp.yaml", "--quiet"], workdir, env=env
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_ctrl_c_on_a_streamed_run_resumes_to_the_in_memory_result(
    tmp_path: Path,
) -> None:
    import os
    import signal
    import subprocess
    import time

    tree = make_tree(tmp_path / "big", n_train=40, n_val=2)
    config = _config(tree)
    config["training"].update(epochs=8, batch_size=4)
    reference_dir = tmp_path / "memory"
    reference_dir.mkdir()
    (reference_dir / "pyproject.toml").write_text("")
    write_config(reference_dir / "exp.yaml", config)
    done = run_cli(
        ["run-experiment", "--config", "exp.yaml", "--quiet"],
        reference_dir,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    (reference,) = [d for d in (reference_dir / "outputs").iterdir() if d.is_dir()]

    workdir = tmp_path / "streamed"
    workdir.mkdir()
    (workdir / "pyproject.toml").write_text("")
    write_config(workdir / "exp.yaml", config)
    env = cli_env(workdir, **{LIMIT: "1000", "MLX_DATA_WORKERS": "2"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlx", "run-experiment", "--config", "exp.yaml"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives it
    )
    run_dir = None
    while run_dir is None:
        assert proc.poll() is None, proc.communicate()
        for d in (workdir / "outputs").glob("*-*"):
            m = d / "metrics.jsonl"
            if m.exists() and len(m.read_text().splitlines()) >= 2:
                run_dir = d
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the workers get it too
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err

    resumed = run_cli(
        ["run-experiment", "--resume", str(run_dir), "--quiet"],
        workdir,
        env=env,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    weights = "model/model.safetensors"
    assert (run_dir / weights).read_bytes() == (reference / weights).read_bytes()
    assert _metrics(run_dir) == _metrics(reference)


def test_over_the_default_limit_an_image_folder_streams_without_warning(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import warnings

    from mlx.config import parse_config
    from mlx.datasets import describe

    monkeypatch.setenv("MLX_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(LIMIT, raising=False)
    config = _config(tree)
    # 48 images of 3 x 3000 x 3000 float32: about 5 GiB decoded
    config["dataset"]["params"]["image_size"] = 3000
    config["model"]["params"]["layer_sizes"][0] = 3 * 3000 * 3000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parsed = parse_config(config)
    assert describe(parsed.dataset).memory_bytes > 4 << 30
    splits = load(parsed.dataset, 0)  # lists the files, decodes nothing
    assert isinstance(splits.train[0], ImageFiles)
    assert splits.train[0].shape == (27, 27_000_000)
    assert splits.image_shape == (3, 3000, 3000)
