from __future__ import annotations

import gzip
import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

import mlx.datasets as datasets
from mlx.config.experiment import DatasetConfig
from mlx.datasets import describe, load
from mlx.datasets import loader as loader_module
from mlx.errors import BackendUnavailableError, DatasetError, DataWarning

# -- writers for the real formats ---------------------------------------------------


def write_idx(path: Path, array: np.ndarray, *, gz: bool = False) -> Path:
    """IDX: 0x00 0x00, type 0x08 (ubyte), ndim, big-endian uint32 dims, bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def make_mnist(root: Path, rng, *, gz: bool, n_train=40, n_test=12, side=4):
    root.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, side, side)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, side, side)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for name, array in arrays.items():
        write_idx(root / name, array, gz=gz)
    return {k: v.astype(np.uint8) for k, v in arrays.items()}


def write_cifar(path: Path, labels: list, pixels: np.ndarray) -> None:
    """Records of label byte(s) then 3072 pixel bytes."""
    records = [
        bytes(lab) + px.astype(np.uint8).tobytes() for lab, px in zip(labels, pixels)
    ]
    path.write_bytes(b"".join(records))


def make_cifar10(root: Path, rng, per_batch=3, n_test=4):
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    train_px, train_y = [], []
    for i in range(1, 6):
        px = rng.integers(0, 256, (per_batch, 3072))
        y = rng.integers(0, 10, per_batch)
        write_cifar(folder / f"data_batch_{i}.bin", [[int(v)] for v in y], px)
        train_px.append(px)
        train_y.append(y)
    test_px = rng.integers(0, 256, (n_test, 3072))
    test_y = rng.integers(0, 10, n_test)
    write_cifar(folder / "test_batch.bin", [[int(v)] for v in test_y], test_px)
    names = ["airplane", "automobile", "bird", "cat", "deer"]
    names += ["dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    return (np.concatenate(train_px), np.concatenate(train_y), test_px, test_y, names)


def _cfg(name, path=None, **params):
    return DatasetConfig(name, path=None if path is None else str(path), params=params)


# -- custom: CSV --------------------------------------------------------------------


def _csv(tmp_path: Path, text: str, name="data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_round_trip_regression(tmp_path, rng):
    X = rng.normal(size=(30, 3))
    y = rng.normal(size=30)
    lines = ["a,b,c,target"] + [
        ",".join(repr(float(v)) for v in (*row, t)) for row, t in zip(X, y)
    ]
    path = _csv(tmp_path, "\n".join(lines) + "\n")
    splits = load(_cfg("custom", path, validation_split=0.0, test_split=0.0), seed=0)
    assert splits.task == "regression" and splits.n_classes is None
    np.testing.assert_array_equal(splits.train[0], X)
    np.testing.assert_array_equal(splits.train[1], y)
    assert splits.n_features == 3 and splits.class_names is None


def test_csv_string_labels_are_mapped_in_sorted_order(tmp_path):
    rows = ["x1,species,x2"]
    labels = ["dog", "cat", "bird", "cat", "dog", "bird"] * 3
    rows += [f"{i},{lab},{i * 2}" for i, lab in enumerate(labels)]
    path = _csv(tmp_path, "\n".join(rows))  # no final newline
    splits = load(
        _cfg("custom", path, target="species", validation_split=0, test_split=0),
        seed=0,
    )
    assert splits.task == "classification" and splits.n_classes == 3
    assert splits.class_names == ("bird", "cat", "dog")
    expected = [("bird", "cat", "dog").index(lab) for lab in labels]
    np.testing.assert_array_equal(splits.train[1], expected)
    assert splits.train[1].dtype == np.int64
    np.testing.assert_array_equal(splits.train[0][:, 1], np.arange(18) * 2)
    prep = json.loads(json.dumps(splits.preprocessing))
    assert prep["labels"] == {"classes": ["bird", "cat", "dog"]}


def test_csv_quoting_bom_and_blank_lines(tmp_path):
    text = '\ufeff"f 1",label\n1.5,"big, red"\n\n2.5,small\n 3.5 ,small\n'
    path = _csv(tmp_path, text)
    splits = load(_cfg("custom", path, validation_split=0, test_split=0), seed=0)
    assert splits.class_names == ("big, red", "small")
    np.testing.assert_array_equal(splits.train[0][:, 0], [1.5, 2.5, 3.5])


@pytest.mark.parametrize(
    ("labels", "task_param", "task", "n_classes"),
    [
        ([0, 1, 2] * 10, None, "classification", 3),
        ([0.5 * i for i in range(30)], None, "regression", None),
        (list(range(30)), None, "regression", None),  # too many distinct values
        ([1, 2] * 15, "regression", "regression", None),
        ([3, 7] * 15, None, "classification", 2),
        ([0.0, 1.0] * 15, None, "classification", 2),
    ],
    ids=[
        "few-ints",
        "floats",
        "many-ints",
        "forced-regression",
        "gapped",
        "int-floats",
    ],
)
def test_task_inference(tmp_path, labels, task_param, task, n_classes):
    rows = ["x,y"] + [f"{i},{lab}" for i, lab in enumerate(labels)]
    path = _csv(tmp_path, "\n".join(rows))
    params = {"validation_split": 0, "test_split": 0}
    if task_param:
        params["task"] = task_param
    splits = load(_cfg("custom", path, **params), seed=0)
    assert splits.task == task and splits.n_classes == n_classes
    if task == "classification":
        assert splits.train[1].min() == 0 and splits.train[1].max() == n_classes - 1
        assert splits.class_names == tuple(sorted({int(v) for v in labels}))
    else:
        assert splits.train[1].dtype == np.float64


_CSV_ERRORS = [
    ("", {}, r"data\.csv: the file is empty"),
    ("a,b\n", {}, r"data\.csv: the file has a header but no data rows"),
    ("a,b,t\n1,2,0\n1,2\n", {}, r"data\.csv:3: expected 3 fields .* got 2"),
    ("a,b,t\n1,2,0\n1,2,0,4\n", {}, r"data\.csv:3: expected 3 fields .* got 4"),
    (
        "a,b,t\n1,2,0\n\n1,x,1\n",
        {},
        r"data\.csv:4: column 'b' \(column 2\) holds 'x'; expected a",
    ),
    ("a,b,t\n1,,0\n", {}, r"data\.csv:2: column 'b' .*an empty cell"),
    ("a,b,t\n1,2,0\n1,nan,1\n", {}, r"data\.csv:3: column 'b' \(column 2\) is nan"),
    ("a,b,t\n1,2,0\n-inf,2,1\n", {}, r"data\.csv:3: column 'a' .* is -inf.*allow_nan"),
    ("a,b,t\n1,2,0\n", {"target": "label"}, r"target column 'label' not found"),
    ("a,a,t\n1,2,0\n", {}, r"data\.csv:1: column name 'a' appears twice"),
    ("t\n1\n", {}, r"only the target column"),
    ("a,t\n1,cat\n2,dog\n", {"task": "regression"}, r":2: column 't'.*'cat'"),
    ("a,t\n1,0.5\n2,1\n", {"task": "classification"}, r":2: .*0\.5 is not an integer"),
    ("a,t\n1,0\n2,nan\n", {}, r"data\.csv:3: column 't'.*labels must be finite"),
    ("a,t\n1,0\n2,\n", {}, r"data\.csv:3: column 't'.*the label is empty"),
    ("a,t\n1,0\n2,0\n", {"task": "classification"}, r"at least 2 classes"),
    (
        "t,a,b\n0,1,2\n1,2,?\n",
        {"target": "t"},
        r":3: column 'b' \(column 3\) holds '\?'",
    ),
]


@pytest.mark.parametrize(
    ("text", "params", "match"),
    _CSV_ERRORS,
    ids=[
        "empty",
        "header-only",
        "short-row",
        "long-row",
        "non-numeric",
        "empty-cell",
        "nan",
        "inf",
        "missing-target",
        "duplicate-name",
        "no-features",
        "string-regression",
        "fractional-class",
        "nan-label",
        "empty-label",
        "one-class",
        "target-first",
    ],
)
def test_csv_errors_name_file_line_and_column(tmp_path, text, params, match):
    path = _csv(tmp_path, text)
    with pytest.raises(DatasetError, match=match):
        load(_cfg("custom", path, **params), seed=0)


def test_csv_line_numbers_hold_across_parse_blocks(tmp_path):
    rows = ["a,t"] + [f"{i},{i % 2}" for i in range(20000)]
    rows[15001] = "oops,1"  # line 15002 of the file, in the second block
    path = _csv(tmp_path, "\n".join(rows))
    with pytest.raises(DatasetError, match=r"data\.csv:15002: column 'a'"):
        load(_cfg("custom", path), seed=0)
    rows[15001] = "5,1"
    _csv(tmp_path, "\n".join(rows))
    splits = load(_cfg("custom", path, validation_split=0, test_split=0), seed=0)
    assert splits.sizes == (20000, 0, 0) and splits.train[0][15000, 0] == 5


def test_allow_nan_keeps_nan_and_inf(tmp_path):
    path = _csv(tmp_path, "a,b,t\n1,nan,0\ninf,2,1\n3,4,0\n4,5,1\n")
    splits = load(
        _cfg("custom", path, allow_nan=True, validation_split=0, test_split=0), seed=0
    )
    X = splits.train[0]
    assert np.isnan(X[0, 1]) and np.isinf(X[1, 0])


def test_custom_needs_path_and_known_suffix(tmp_path):
    with pytest.raises(DatasetError, match="needs 'dataset.path'"):
        load(_cfg("custom"), seed=0)
    with pytest.raises(DatasetError, match="not found"):
        load(_cfg("custom", tmp_path / "nope.csv"), seed=0)
    other = tmp_path / "data.txt"
    other.write_text("a,b\n")
    with pytest.raises(DatasetError, match="unsupported suffix '.txt'"):
        load(_cfg("custom", other), seed=0)
    with pytest.raises(DatasetError, match="'task' parameter of custom"):
        load(_cfg("custom", _csv(tmp_path, "a,b\n1,2\n"), task="ranking"), seed=0)


def test_custom_memory_guard_uses_describe(tmp_path, monkeypatch):
    path = _csv(tmp_path, "a,b,t\n" + "1,2,0\n2,3,1\n" * 10)
    monkeypatch.setenv("MLX_MEMORY_LIMIT", "100")
    with pytest.raises(DatasetError, match=r"'custom' would need about .* limit"):
        load(_cfg("custom", path), seed=0)


# -- custom: NumPy and Parquet ------------------------------------------------------


def test_npz_round_trip(tmp_path, rng):
    X = rng.normal(size=(25, 4)).astype(np.float32)
    y = np.array(["b", "a"] * 12 + ["c"])
    np.savez(tmp_path / "d.npz", X=X, y=y)
    splits = load(
        _cfg("custom", tmp_path / "d.npz", validation_split=0, test_split=0), 0
    )
    np.testing.assert_array_equal(splits.train[0], X.astype(np.float64))
    assert splits.train[0].dtype == np.float64
    assert splits.class_names == ("a", "b", "c")


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"X": np.zeros((3, 2))}, r"missing array 'y'"),
        ({"X": np.zeros(3), "y": np.zeros(3)}, r"\[X\] must have shape \(n_samples"),
        ({"X": np.zeros((3, 2)), "y": np.zeros(4)}, r"4 labels but .* 3 rows"),
        ({"X": np.array([[1.0, np.inf]]), "y": np.zeros(1)}, r"\[X\]\[0, 1\] is inf"),
        ({"X": np.array([[1, 2]], dtype=object), "y": np.zeros(1)}, r"cannot read"),
    ],
    ids=["no-y", "1d-X", "length", "inf", "object-pickle"],
)
def test_npz_errors(tmp_path, arrays, match):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DatasetError, match=match):
        load(_cfg("custom", tmp_path / "d.npz"), seed=0)


@pytest.mark.parametrize("stem", ["X", "train_X"], ids=["plain", "prefixed"])
def test_npy_pair_round_trip(tmp_path, rng, stem):
    X = rng.normal(size=(20, 3))
    y = rng.integers(0, 2, 20).reshape(-1, 1)
    np.save(tmp_path / f"{stem}.npy", X)
    np.save(tmp_path / f"{stem[:-1]}y.npy", y)
    splits = load(
        _cfg("custom", tmp_path / f"{stem}.npy", validation_split=0, test_split=0), 0
    )
    np.testing.assert_array_equal(splits.train[0], X)
    np.testing.assert_array_equal(splits.train[1], y.ravel())
    assert splits.task == "classification"


def test_npy_pair_errors(tmp_path):
    np.save(tmp_path / "features.npy", np.zeros((2, 2)))
    with pytest.raises(DatasetError, match="name ends in 'X'"):
        load(_cfg("custom", tmp_path / "features.npy"), seed=0)
    np.save(tmp_path / "X.npy", np.zeros((2, 2)))
    with pytest.raises(DatasetError, match=r"labels file y\.npy is missing"):
        load(_cfg("custom", tmp_path / "X.npy"), seed=0)


def test_parquet_round_trip(tmp_path, rng):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    X = rng.normal(size=(20, 2))
    labels = ["no", "yes"] * 10
    table = pa.table({"label": labels, "f1": X[:, 0], "f2": X[:, 1]})
    pq.write_table(table, tmp_path / "d.parquet")
    cfg = _cfg(
        "custom",
        tmp_path / "d.parquet",
        target="label",
        validation_split=0,
        test_split=0,
    )
    splits = load(cfg, seed=0)
    np.testing.assert_array_equal(splits.train[0], X)
    assert splits.class_names == ("no", "yes")
    info = describe(cfg)
    assert (info.n_samples, info.n_features) == (20, 2)


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(
        BackendUnavailableError, match=r"pip install 'model-harness\[data\]'"
    ):
        load(_cfg("custom", path), seed=0)


# -- describe for custom files ------------------------------------------------------


def test_describe_custom_reads_headers_only(tmp_path, rng):
    path = _csv(tmp_path, "a,b,c,t\n" + "1,2,3,0\n" * 50)
    info = describe(_cfg("custom", path))
    assert (info.n_samples, info.n_features) == (50, 3)
    assert info.memory_bytes == 50 * (3 * 8 + 8)
    assert info.split_sizes == (40, 5, 5)
    np.savez(tmp_path / "d.npz", X=np.zeros((9, 4)), y=np.array(["a", "b"] * 4 + ["a"]))
    info = describe(_cfg("custom", tmp_path / "d.npz"))
    assert (info.n_samples, info.n_features, info.task) == (9, 4, None)
    assert info.label_task == "classification"
    np.save(tmp_path / "X.npy", np.zeros((6, 2)))
    np.save(tmp_path / "y.npy", np.linspace(0, 1, 6))
    info = describe(_cfg("custom", tmp_path / "X.npy"))
    assert (info.n_samples, info.n_features, info.label_task) == (6, 2, "regression")


def test_describe_never_raises_on_missing_files(tmp_path):
    info = describe(_cfg("custom", tmp_path / "missing.csv"))
    assert info.n_samples is None and "not found" in info.notes[0]
    info = describe(_cfg("imagenet", tmp_path))
    assert info.n_samples is None and info.notes
    info = describe(_cfg("unknown_set"))
    assert info.memory_bytes is None


# -- MNIST --------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_mnist_idx_round_trip(tmp_path, rng, gz):
    arrays = make_mnist(tmp_path, rng, gz=gz)
    splits = load(_cfg("mnist", tmp_path, normalize=False, validation_split=0.25), 0)
    train_images = arrays["train-images-idx3-ubyte"].reshape(40, 16)
    train_labels = arrays["train-labels-idx1-ubyte"]
    # the official test set is the test split, in file order
    np.testing.assert_array_equal(
        splits.test[0], arrays["t10k-images-idx3-ubyte"].reshape(12, 16)
    )
    np.testing.assert_array_equal(splits.test[1], arrays["t10k-labels-idx1-ubyte"])
    # train + val are the official training set
    assert splits.sizes == (30, 10, 12)
    both = np.concatenate([splits.train[0], splits.val[0]])
    both_y = np.concatenate([splits.train[1], splits.val[1]])
    order = np.lexsort(both.T)
    expected = np.lexsort(train_images.T)
    np.testing.assert_array_equal(both[order], train_images[expected])
    np.testing.assert_array_equal(both_y[order], train_labels[expected])
    assert splits.n_features == 16 and splits.n_classes == 10
    assert splits.train[0].dtype == np.float32


def test_mnist_normalize_scales_to_unit_interval(tmp_path, rng):
    arrays = make_mnist(tmp_path, rng, gz=True)
    splits = load(_cfg("mnist", tmp_path), seed=0)
    expected = arrays["t10k-images-idx3-ubyte"].reshape(12, 16) / np.float32(255)
    np.testing.assert_allclose(splits.test[0], expected, rtol=1e-6)
    assert splits.test[0].min() >= 0 and splits.test[0].max() <= 1
    assert splits.preprocessing["pixel_scale"] == pytest.approx(1 / 255)
    raw = np.concatenate([splits.test[0]]) * 255
    np.testing.assert_allclose(
        datasets.apply_preprocessing(raw.round(), splits.preprocessing),
        splits.test[0],
        rtol=1e-6,
    )


def test_mnist_prefers_environment_cache(tmp_path, rng, monkeypatch):
    make_mnist(tmp_path / "mnist", rng, gz=False)
    monkeypatch.setenv("MLX_DATA_DIR", str(tmp_path))
    assert load(_cfg("mnist"), seed=0).sizes == (36, 4, 12)
    assert "files found" in describe(_cfg("mnist")).notes[0]


@pytest.mark.parametrize(
    ("corrupt", "match"),
    [
        (lambda b: b"\x00\x00\x08\x01" + b[4:], r"says 1-D ubyte; expected 0x00000803"),
        (lambda b: b"\x12\x34" + b[2:], r"bad IDX magic number 0x1234"),
        (lambda b: b[:-5], r"truncated: the header gives shape \(40, 4, 4\)"),
        (lambda b: b + b"xx", r"has trailing bytes"),
        (lambda b: b[:2], r"too short for an IDX header"),
    ],
    ids=["wrong-ndim", "bad-magic", "truncated", "trailing", "tiny"],
)
def test_mnist_corrupt_images(tmp_path, rng, corrupt, match):
    make_mnist(tmp_path, rng, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(DatasetError, match=match):
        load(_cfg("mnist", tmp_path), seed=0)


def test_mnist_label_problems(tmp_path, rng):
    make_mnist(tmp_path, rng, gz=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(11))
    with pytest.raises(DatasetError, match=r"12 images but .* 11 labels"):
        load(_cfg("mnist", tmp_path), seed=0)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.full(12, 10))
    with pytest.raises(
        DatasetError, match=r"label 10 of record 0 is outside \[0, 10\)"
    ):
        load(_cfg("mnist", tmp_path), seed=0)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(gzip.compress(b"x" * 50)[:20])
    with pytest.raises(DatasetError, match="cannot read"):
        load(_cfg("mnist", tmp_path), seed=0)


def test_missing_files_without_download_say_where_to_put_them(tmp_path):
    with pytest.raises(
        DatasetError, match=r"mnist files not found in .*download"
    ) as err:
        load(_cfg("mnist", tmp_path), seed=0)
    assert str(tmp_path) in str(err.value)
    assert "train-images-idx3-ubyte.gz" in str(err.value)
    with pytest.raises(DatasetError, match=r"cifar-10-binary\.tar\.gz"):
        load(_cfg("cifar10", tmp_path, download=False), seed=0)


# -- CIFAR --------------------------------------------------------------------------


@pytest.mark.parametrize("inside", [False, True], ids=["parent-dir", "batches-dir"])
def test_cifar10_binary_round_trip(tmp_path, rng, inside):
    train_px, train_y, test_px, test_y, names = make_cifar10(tmp_path, rng)
    root = tmp_path / "cifar-10-batches-bin" if inside else tmp_path
    splits = load(_cfg("cifar10", root, normalize=False, validation_split=0.2), 3)
    np.testing.assert_array_equal(splits.test[0], test_px)
    np.testing.assert_array_equal(splits.test[1], test_y)
    assert splits.sizes == (12, 3, 4)
    both = np.concatenate([splits.train[0], splits.val[0]])
    both_y = np.concatenate([splits.train[1], splits.val[1]])
    order, expected = np.lexsort(both.T), np.lexsort(train_px.T)
    np.testing.assert_array_equal(both[order], train_px[expected])
    np.testing.assert_array_equal(both_y[order], train_y[expected])
    assert splits.class_names == tuple(names) and splits.n_features == 3072


def test_cifar100_uses_fine_labels(tmp_path, rng):
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    fine, coarse = rng.integers(0, 100, 6), rng.integers(0, 20, 6)
    px = rng.integers(0, 256, (6, 3072))
    write_cifar(
        folder / "train.bin", [[int(c), int(f)] for c, f in zip(coarse, fine)], px
    )
    write_cifar(folder / "test.bin", [[1, 99], [2, 0]], px[:2])
    splits = load(_cfg("cifar100", tmp_path, validation_split=0.0), seed=0)
    np.testing.assert_array_equal(splits.train[1], fine)
    np.testing.assert_array_equal(splits.test[1], [99, 0])
    assert splits.n_classes == 100 and splits.class_names is None
    np.testing.assert_allclose(splits.train[0], px / np.float32(255), rtol=1e-6)


def test_cifar_bad_record_length_and_label(tmp_path, rng):
    make_cifar10(tmp_path, rng)
    batch = tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin"
    batch.write_bytes(batch.read_bytes()[:-100])
    with pytest.raises(
        DatasetError, match=r"data_batch_3\.bin: 9119 bytes .* 3073-byte"
    ):
        load(_cfg("cifar10", tmp_path), seed=0)
    write_cifar(batch, [[12]], rng.integers(0, 256, (1, 3072)))
    with pytest.raises(
        DatasetError, match=r"label 12 of record 0 is outside \[0, 10\)"
    ):
        load(_cfg("cifar10", tmp_path), seed=0)


def test_cifar_missing_batch(tmp_path, rng):
    make_cifar10(tmp_path, rng)
    (tmp_path / "cifar-10-batches-bin" / "data_batch_5.bin").unlink()
    with pytest.raises(DatasetError, match=r"missing: .*data_batch_5\.bin"):
        load(_cfg("cifar10", tmp_path), seed=0)


# -- imagenet (ImageFolder) ---------------------------------------------------------


def _image_tree(root: Path, colours: dict) -> None:
    image_module = pytest.importorskip("PIL.Image")
    for split, classes in colours.items():
        for name, files in classes.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i, colour in enumerate(files):
                suffix = ".png" if i % 2 else ".JPEG"
                fmt = "PNG" if i % 2 else "JPEG"
                image = image_module.new("RGB", (10, 6), colour)
                image.save(folder / f"img{i}{suffix}", format=fmt, quality=100)
            (folder / "notes.txt").write_text("not an image")


def test_imagenet_image_folder(tmp_path):
    red, green, blue = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    _image_tree(
        tmp_path,
        {
            "train": {"cat": [red, red], "dog": [green, green, green]},
            "val": {"cat": [red], "dog": [blue]},
        },
    )
    cfg = _cfg("imagenet", tmp_path, image_size=4, validation_split=0.0)
    splits = load(cfg, seed=0)
    assert splits.class_names == ("cat", "dog") and splits.n_classes == 2
    assert splits.n_features == 4 * 4 * 3 and splits.sizes == (5, 0, 2)
    np.testing.assert_array_equal(splits.train[1], [0, 0, 1, 1, 1])
    test_pixels = splits.test[0].reshape(2, 3, 4, 4).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(
        test_pixels[0], np.broadcast_to([1, 0, 0], (4, 4, 3)), atol=0.02
    )
    np.testing.assert_allclose(
        test_pixels[1], np.broadcast_to([0, 0, 1], (4, 4, 3)), atol=0.02
    )
    info = describe(cfg)
    assert (info.n_samples, info.n_features, info.n_classes) == (7, 48, 2)
    assert info.split_sizes == (5, 0, 2)


def test_imagenet_errors(tmp_path, monkeypatch):
    with pytest.raises(
        DatasetError, match=r"imagenet not found: expected .*/train/<class>"
    ):
        load(_cfg("imagenet", tmp_path), seed=0)
    _image_tree(
        tmp_path,
        {"train": {"a": [(1, 2, 3)], "b": [(1, 2, 3)]}, "val": {"c": [(0, 0, 0)]}},
    )
    with pytest.raises(DatasetError, match="class directories that .* lacks: c"):
        load(_cfg("imagenet", tmp_path), seed=0)
    with pytest.warns(DataWarning, match="'download' is ignored"):
        with pytest.raises(DatasetError):
            load(_cfg("imagenet", tmp_path, download=True), seed=0)
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(BackendUnavailableError, match=r"Pillow.*model-harness\[data\]"):
        load(_cfg("imagenet", tmp_path), seed=0)


def test_imagenet_undecodable_file(tmp_path):
    _image_tree(
        tmp_path,
        {"train": {"a": [(1, 2, 3)], "b": [(1, 2, 3)]}, "val": {"a": [(0, 0, 0)]}},
    )
    (tmp_path / "train" / "b" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"cannot decode .*broken\.png"):
        load(_cfg("imagenet", tmp_path), seed=0)


# -- dispatch and exports -----------------------------------------------------------


def test_unknown_dataset():
    with pytest.raises(
        DatasetError, match="unknown dataset 'svhn'; known datasets are"
    ):
        load(_cfg("svhn"), seed=0)


def test_exports():
    assert set(datasets.__all__) == {
        "KNOWN_DATASETS",
        "MEMORY_LIMIT_BYTES",
        "DatasetInfo",
        "Splits",
        "SyntheticClassification",
        "SyntheticRegression",
        "apply_preprocessing",
        "describe",
        "image_shape",
        "load",
        "memory_limit",
        "split_indices",
    }
    assert set(datasets.KNOWN_DATASETS) == set(loader_module._LOADERS)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("synthetic_classification", {"n_informative": 3, "n_classes": 3}),
        ("synthetic_classification", {}),
        ("synthetic_regression", {"n_informative": 2}),
    ],
)
def test_float32_features_are_the_float64_ones_rounded(name, params):
    # a float32 model's data is generated or converted once, straight to float32
    config = _cfg(name, n_samples=3001, n_features=7, seed=4, **params)
    wide = load(config, 5)
    narrow = load(config, 5, feature_dtype="float32")
    for part in ("train", "val", "test"):
        X64, y64 = getattr(wide, part)
        X32, y32 = getattr(narrow, part)
        assert X32.dtype == np.float32 and X32.flags.c_contiguous
        np.testing.assert_array_equal(X32, X64.astype(np.float32))
        np.testing.assert_array_equal(y32, y64)
    assert narrow.preprocessing["feature_dtype"] == "float32"
    assert wide.preprocessing["feature_dtype"] == "float64"


def test_float32_csv_features_and_standardized_ones(tmp_path, rng):
    X = rng.standard_normal((50, 3))
    lines = ["a,b,c,target"] + [
        ",".join(repr(float(v)) for v in row) + f",{i % 2}" for i, row in enumerate(X)
    ]
    path = _csv(tmp_path, "\n".join(lines) + "\n")
    plain = _cfg("custom", path)
    wide, narrow = load(plain, 1), load(plain, 1, feature_dtype="float32")
    np.testing.assert_array_equal(narrow.train[0], wide.train[0].astype(np.float32))
    # standardization is computed in float64, and the features stay float64
    scaled = _cfg("custom", path, standardize=True)
    kept = load(scaled, 1, feature_dtype="float32")
    assert kept.train[0].dtype == np.float64
    assert kept.preprocessing["feature_dtype"] == "float64"
    np.testing.assert_array_equal(kept.train[0], load(scaled, 1).train[0])


def test_unknown_feature_dtype_is_refused():
    with pytest.raises(DatasetError, match="feature_dtype must be"):
        load(_cfg("synthetic_regression", n_samples=20, seed=0), 0, "float16")
