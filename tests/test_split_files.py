"""``dataset.path`` as a mapping of split name to file, through the real CLI: each
format, a missing val or test carved from train, files that disagree, bad keys, and
eval and resume of a run made from split files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import run_cli, write_config

from mlx.datasets.fingerprint import split_fingerprint


def _rows(seed: int, n: int, labels: tuple[str, ...] = ("a", "b")):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 2))
    y = [labels[i % len(labels)] for i in range(n)]
    return X, y


def _csv(path: Path, seed: int, n: int, header: str = "x1,x2,label", **kw) -> Path:
    X, y = _rows(seed, n, **kw)
    lines = [header] + [f"{a!r},{b!r},{c}" for (a, b), c in zip(X.tolist(), y)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _config(path: Any, **params: Any) -> dict[str, Any]:
    dataset: dict[str, Any] = {"name": "custom", "path": path}
    if params:
        dataset["params"] = params
    return {
        "name": "sf",
        "dataset": dataset,
        "model": {
            "name": "mlp",
            "params": {"layer_sizes": [2, 4, 2], "output_activation": "softmax"},
        },
        "training": {"epochs": 2, "batch_size": 8, "seed": 3},
        "output": {"directory": "outputs"},
    }


def _run(root: Path, config: dict, *extra: str):
    write_config(root / "exp.yaml", config)
    return run_cli(["run-experiment", "--config", "exp.yaml", "--quiet", *extra], root)


def _only_run(root: Path) -> Path:
    (run,) = [p for p in (root / "outputs").iterdir() if p.is_dir()]
    return run


def _record(run: Path) -> dict:
    return json.loads((run / "data.json").read_text(encoding="utf-8"))


def _refused(done, *needles: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error:") or "\nerror:" in done.stderr, done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def _nothing_written(root: Path) -> None:
    outputs = root / "outputs"
    assert not outputs.exists() or not any(outputs.iterdir())


@pytest.fixture
def files(tmp_path: Path) -> Path:
    _csv(tmp_path / "train.csv", 0, 40)
    _csv(tmp_path / "val.csv", 1, 10)
    _csv(tmp_path / "test.csv", 2, 6)
    return tmp_path


# -- each format --------------------------------------------------------------------


def _write_format(root: Path, fmt: str) -> dict[str, str]:
    paths = {}
    for split, seed, n in (("train", 0, 40), ("val", 1, 10), ("test", 2, 6)):
        X, y = _rows(seed, n)
        labels = np.array(y)
        if fmt == "csv":
            paths[split] = _csv(root / f"{split}.csv", seed, n).name
        elif fmt == "npz":
            np.savez(root / f"{split}.npz", X=X, y=labels)
            paths[split] = f"{split}.npz"
        elif fmt == "npy":
            np.save(root / f"{split}_X.npy", X)
            np.save(root / f"{split}_y.npy", labels)
            paths[split] = f"{split}_X.npy"
        else:
            pa = pytest.importorskip("pyarrow")
            import pyarrow.parquet as pq

            table = pa.table({"x1": X[:, 0], "x2": X[:, 1], "label": y})
            pq.write_table(table, root / f"{split}.parquet")
            paths[split] = f"{split}.parquet"
    return paths


@pytest.mark.parametrize("fmt", ["csv", "npz", "npy", "parquet"])
def test_each_format_gives_each_split_its_own_file(tmp_path: Path, fmt: str) -> None:
    paths = _write_format(tmp_path, fmt)
    done = _run(tmp_path, _config(paths))
    assert done.returncode == 0, done.stderr
    record = _record(_only_run(tmp_path))
    split = record["preprocessing"]["split"]
    assert (split["n_train"], split["n_val"], split["n_test"]) == (40, 10, 6)
    assert record["preprocessing"]["split_files"] == {
        s: str(tmp_path / p) for s, p in paths.items()
    }
    # the val split is the val file, every row in its order ("a" -> 0, "b" -> 1)
    X, y = _rows(1, 10)
    encoded = np.array([0 if c == "a" else 1 for c in y], dtype=np.int64)
    assert record["val"]["sha256"] == split_fingerprint(X, encoded)


# -- a missing val or test is carved from train -------------------------------------


def test_a_train_file_alone_is_cut_as_a_single_file_is(files: Path) -> None:
    (files / "one").mkdir()
    (files / "two").mkdir()
    _csv(files / "one" / "train.csv", 0, 40)
    _csv(files / "two" / "train.csv", 0, 40)
    assert _run(files / "one", _config("train.csv")).returncode == 0
    assert _run(files / "two", _config({"train": "train.csv"})).returncode == 0
    single = _record(_only_run(files / "one"))
    mapped = _record(_only_run(files / "two"))
    for split in ("train", "val", "test"):
        assert single[split] == mapped[split]


@pytest.mark.parametrize(
    "given, sizes",
    [(("train", "val"), (36, 10, 4)), (("train", "test"), (36, 4, 6))],
    ids=["test-carved", "val-carved"],
)
def test_the_missing_split_is_carved_from_train(
    files: Path, given: tuple[str, ...], sizes: tuple[int, int, int]
) -> None:
    done = _run(files, _config({s: f"{s}.csv" for s in given}))
    assert done.returncode == 0, done.stderr
    record = _record(_only_run(files))
    split = record["preprocessing"]["split"]
    assert (split["n_train"], split["n_val"], split["n_test"]) == sizes
    missing = ({"val", "test"} - set(given)).pop()
    assert record["preprocessing"]["split_files"][missing] is None


def test_set_reaches_one_split_of_the_mapping(files: Path) -> None:
    _csv(files / "other.csv", 5, 12)
    config = _config({"train": "train.csv", "val": "val.csv"})
    done = _run(files, config, "--set", "dataset.path.val=other.csv")
    assert done.returncode == 0, done.stderr
    record = _record(_only_run(files))
    assert record["preprocessing"]["split_files"]["val"] == str(files / "other.csv")
    assert record["val"]["shape"] == [12, 2]


def test_the_dry_run_counts_every_file(files: Path) -> None:
    paths = {"train": "train.csv", "val": "val.csv", "test": "test.csv"}
    done = _run(files, _config(paths), "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["dataset"]["n_samples"] == 56 and plan["can_run"] is True
    assert plan["config"]["dataset"]["path"]["val"] == str(files / "val.csv")
    _nothing_written(files)


# -- files that disagree ------------------------------------------------------------


def test_a_different_header_is_refused_naming_both_files(files: Path) -> None:
    _csv(files / "test.csv", 2, 6, header="x1,x3,label")
    paths = {"train": "train.csv", "test": "test.csv"}
    done = _run(files, _config(paths))
    _refused(
        done,
        "dataset.path.test:",
        str(files / "test.csv"),
        "'x3'",
        str(files / "train.csv"),
        "same header",
    )
    _nothing_written(files)
    dry = _run(files, _config(paths), "--dry-run")
    assert "can run here: no" in dry.stdout and "'x3'" in dry.stdout


def test_a_class_only_test_holds_is_named_with_its_file_and_line(files: Path) -> None:
    _csv(files / "test.csv", 2, 6, labels=("a", "b", "c"))
    done = _run(files, _config({"train": "train.csv", "test": "test.csv"}))
    # the first "c" is the third data row: line 4
    _refused(done, f"{files / 'test.csv'}:4", "label 'c'", "not in the train file")
    _nothing_written(files)


def test_a_different_feature_count_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "train.npz", X=np.zeros((10, 2)), y=np.arange(10) % 2)
    np.savez(tmp_path / "val.npz", X=np.zeros((4, 3)), y=np.arange(4) % 2)
    done = _run(tmp_path, _config({"train": "train.npz", "val": "val.npz"}))
    _refused(done, "dataset.path.val:", "has 3 features", "has 2")
    _nothing_written(tmp_path)


def test_mixed_formats_are_refused(files: Path) -> None:
    np.savez(files / "val.npz", X=np.zeros((4, 2)), y=np.arange(4) % 2)
    done = _run(files, _config({"train": "train.csv", "val": "val.npz"}))
    _refused(done, "dataset.path.val:", ".npz file", "CSV file", "same format")
    _nothing_written(files)


# -- bad keys and values ------------------------------------------------------------


@pytest.mark.parametrize(
    "key, near",
    [("validation", "val"), ("valid", "val"), ("training", "train"), ("tst", "test")],
)
def test_an_unknown_split_name_is_a_located_error(
    files: Path, key: str, near: str
) -> None:
    paths = {"train": "train.csv", key: "val.csv"}
    if key == "training":
        paths = {"training": "train.csv"}
    done = _run(files, _config(paths))
    _refused(done, "exp.yaml:", f"unknown split '{key}'", f"did you mean {near}?")
    _nothing_written(files)


def test_train_is_required(files: Path) -> None:
    done = _run(files, _config({"val": "val.csv"}))
    _refused(done, "exp.yaml:", "needs 'train'")


def test_a_mapping_is_refused_for_a_fixed_image_set(files: Path) -> None:
    config = _config({"train": "train.csv"})
    config["dataset"]["name"] = "mnist"
    done = _run(files, config)
    _refused(done, "dataset.path: a mapping of split files is for data read")


def test_a_split_path_is_checked_like_a_plain_path(files: Path) -> None:
    done = _run(files, _config({"train": "train.csv", "val": "va\x01l.csv"}))
    _refused(done, "dataset.path.val:")
    _nothing_written(files)


# -- eval and resume ----------------------------------------------------------------


def test_eval_and_resume_rebuild_each_split_from_its_file(files: Path) -> None:
    paths = {"train": "train.csv", "val": "val.csv", "test": "test.csv"}
    assert _run(files, _config(paths)).returncode == 0
    run = _only_run(files)
    for split in ("val", "test"):
        done = run_cli(["eval", run.name, "--split", split, "--json"], files)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["n_samples"] == {"val": 10, "test": 6}[split]
    done = run_cli(
        ["run-experiment", "--resume", run.name, "--set", "training.epochs=3"], files
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["epochs_completed"] == 3


def test_a_changed_val_file_is_caught_by_eval_and_resume(files: Path) -> None:
    paths = {"train": "train.csv", "val": "val.csv", "test": "test.csv"}
    assert _run(files, _config(paths)).returncode == 0
    run = _only_run(files)
    _csv(files / "val.csv", 9, 10)  # same size, other rows
    before = sorted(p.name for p in run.rglob("*"))
    done = run_cli(["eval", run.name, "--split", "val"], files)
    _refused(done, "the val split rebuilt", "its contents changed")
    done = run_cli(
        ["run-experiment", "--resume", run.name, "--set", "training.epochs=3"], files
    )
    _refused(done, "the val split rebuilt")
    assert sorted(p.name for p in run.rglob("*")) == before
    # the test file did not change: it still evaluates
    done = run_cli(["eval", run.name, "--split", "test"], files)
    assert done.returncode == 0, done.stderr


# -- image folders ------------------------------------------------------------------


def _image_folders(root: Path, splits: dict[str, int]) -> dict[str, str]:
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for split, per_class in splits.items():
        for name in ("cat", "dog"):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return {split: split for split in splits}


def _image_config(paths: dict[str, str]) -> dict[str, Any]:
    config = _config(paths, image_size=8)
    config["dataset"]["name"] = "imagenet"
    config["model"]["params"]["layer_sizes"] = [192, 4, 2]
    return config


def test_image_folders_per_split(tmp_path: Path) -> None:
    paths = _image_folders(tmp_path, {"train": 10, "test": 3})
    done = _run(tmp_path, _image_config(paths))
    assert done.returncode == 0, done.stderr
    record = _record(_only_run(tmp_path))
    split = record["preprocessing"]["split"]
    assert (split["n_train"], split["n_val"], split["n_test"]) == (18, 2, 6)
    assert record["preprocessing"]["labels"] == {"classes": ["cat", "dog"]}
    assert record["image_shape"] == [3, 8, 8]


def test_an_image_class_train_lacks_is_refused(tmp_path: Path) -> None:
    paths = _image_folders(tmp_path, {"train": 4, "val": 2})
    (tmp_path / "val" / "cow").mkdir()
    done = _run(tmp_path, _image_config(paths))
    _refused(done, "dataset.path.val:", "cow", str(tmp_path / "train"))
    _nothing_written(tmp_path)
