"""The ecosystem's conventions: file modes, the safetensors tag, logging, the
environment record, the cache directory, scikit-learn interop and packaging."""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mlx
from mlx.errors import ModelError
from tests.helpers import (
    REPO_ROOT,
    cli_env,
    run_cli,
    run_cli_process,
    small_classification,
    write_config,
)

STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00) (.*)$")


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLX_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _train(root: Path, config: dict[str, Any], **env: str) -> Path:
    write_config(root / "exp.yaml", config)
    done = run_cli(
        ["run-experiment", "--config", "exp.yaml"], root, env=cli_env(root, **env)
    )
    assert done.returncode == 0, done.stderr
    (summary,) = root.rglob("summary.json")
    return summary.parent


def _run_with_umask(root: Path, config: dict[str, Any], umask: int) -> Path:
    old = os.umask(umask)
    try:
        return _train(root, config)
    finally:
        os.umask(old)


# --- 1. file modes and the one atomic writer -------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        {"name": "mlp", "params": {"layer_sizes": [8, 16, 3]}},
        {"name": "linear_regression", "params": {}},
    ],
)
def test_checkpoints_and_model_files_are_0644(root: Path, model: dict) -> None:
    config = small_classification(epochs=2)
    if model["name"] == "linear_regression":
        config["dataset"] = {
            "name": "synthetic_regression",
            "params": {"n_samples": 200, "n_features": 8, "seed": 1},
        }
        config["model"] = model
    run_dir = _run_with_umask(root, config, 0o022)
    files = [p for p in run_dir.rglob("*") if p.is_file() and not p.is_symlink()]
    weights = [p for p in files if p.parent.name != run_dir.name]
    assert any(p.parent.name == "model" for p in weights)
    assert any(p.parent.parent.name == "checkpoints" for p in weights)
    modes = {
        p.relative_to(run_dir).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in files
    }
    assert modes == {name: 0o644 for name in modes}


def test_saving_a_model_fsyncs_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlx.models import MLP, LinearRegression

    synced: list[tuple[int, int]] = []  # (inode, is a directory) per fsync
    real = os.fsync

    def recording(fd: int) -> None:
        info = os.fstat(fd)
        synced.append((info.st_ino, stat.S_ISDIR(info.st_mode)))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    X = np.random.default_rng(0).normal(size=(30, 3))
    for i, model in enumerate(
        [LinearRegression().fit(X, X @ [1.0, 2.0, 3.0]), MLP(layer_sizes=[3, 2])]
    ):
        if isinstance(model, MLP):
            model.train_step(X, X[:, :2])
        synced.clear()
        path = tmp_path / f"ckpt{i}"
        model.save(path)
        names = sorted(p.name for p in path.iterdir())
        assert names == ["config.json", "model.safetensors", "optimizer.safetensors"]
        files = {(path / n).stat().st_ino for n in names}
        assert {ino for ino, is_dir in synced if not is_dir} >= files
        # each of the three renames is followed by an fsync of the directory
        assert synced.count((path.stat().st_ino, True)) >= 3
    from mlx.models import checkpoint as _checkpoint

    assert not hasattr(_checkpoint, "_atomic_write")


def test_a_model_saved_through_the_api_is_0644(tmp_path: Path) -> None:
    from mlx.models import LinearRegression

    X = np.random.default_rng(2).normal(size=(10, 2))
    old = os.umask(0o022)
    try:
        LinearRegression().fit(X, X.sum(axis=1)).save(tmp_path / "m")
    finally:
        os.umask(old)
    for file in (tmp_path / "m").iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o644, file.name


# --- 2. the safetensors tag ---------------------------------------------------------


def _metadata(file: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(file), framework="np") as handle:
        return dict(handle.metadata() or {})


def _retag(model_dir: Path, tag: str | None) -> None:
    """Rewrite model.safetensors with another format tag, as an older version (or
    another library) would have, and list its new SHA-256 in config.json."""
    from safetensors.numpy import load_file, save

    file = model_dir / "model.safetensors"
    data = save(load_file(str(file)), metadata=None if tag is None else {"format": tag})
    file.write_bytes(data)
    config = json.loads((model_dir / "config.json").read_text())
    config["files"]["model.safetensors"]["sha256"] = hashlib.sha256(data).hexdigest()
    (model_dir / "config.json").write_text(json.dumps(config))


def test_weights_carry_a_tag_of_their_own_and_old_tags_still_load(root: Path) -> None:
    run_dir = _train(root, small_classification(epochs=2))
    tagged = [run_dir / "model", *sorted((run_dir / "checkpoints").iterdir())]
    for directory in tagged:
        meta = _metadata(directory / "model.safetensors")
        assert meta == {
            "format": "model-harness",
            "format_version": "1",
            "backend": "numpy",
        }
        assert meta["format"] not in ("mlx", "pt", "tf", "flax", "np")
    first = run_cli(["eval", run_dir.name, "--metrics", "accuracy"], root)
    assert first.returncode == 0, first.stderr
    before = json.loads(sorted((run_dir / "evals").glob("*.json"))[-1].read_text())
    for tag in ("mlx", None):  # what earlier versions wrote, and no tag at all
        _retag(run_dir / "model", tag)
        again = run_cli(["eval", run_dir.name, "--metrics", "accuracy"], root)
        assert again.returncode == 0, again.stderr
        after = json.loads(sorted((run_dir / "evals").glob("*.json"))[-1].read_text())
        assert after["metrics"] == before["metrics"]
    _retag(run_dir / "model", "flax")
    foreign = run_cli(["eval", run_dir.name], root)
    assert foreign.returncode == 1
    assert (
        "not written by model-harness" in foreign.stderr and "'flax'" in foreign.stderr
    )
    assert "Traceback" not in foreign.stderr


def test_an_old_tagged_checkpoint_loads_through_the_api(tmp_path: Path) -> None:
    from mlx.models import MLP, load_model

    X = np.random.default_rng(1).normal(size=(40, 4))
    model = MLP(layer_sizes=[4, 3, 2], output_activation="softmax", seed=0)
    model.train_step(X, (X[:, 0] > 0).astype(int))
    model.save(tmp_path / "m")
    _retag(tmp_path / "m", "mlx")
    loaded = load_model(tmp_path / "m")
    assert np.array_equal(loaded.predict(X), model.predict(X))
    _retag(tmp_path / "m", "pt")
    assert np.array_equal(load_model(tmp_path / "m").predict(X), model.predict(X))


def test_the_torch_backend_writes_the_same_tag(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from mlx.models.torch.model import TorchModel

    model = TorchModel(
        class_path="torch.nn:Linear",
        module_params={"in_features": 3, "out_features": 1},
        task="regression",
        device="cpu",
    )
    X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    model.train_step(X, X.sum(axis=1))
    model.save(tmp_path / "t")
    meta = _metadata(tmp_path / "t" / "model.safetensors")
    assert meta == {
        "format": "model-harness",
        "format_version": "1",
        "backend": "torch",
    }
    before = model.predict(X)
    model.load(tmp_path / "t")
    _retag(tmp_path / "t", "pt")  # what the torch backend wrote before
    model.load(tmp_path / "t")
    assert np.array_equal(model.predict(X), before)


# --- 3. logging -------------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def mlx_logger() -> Any:
    """The mlx logger, handed back as it was found."""
    logger = logging.getLogger("mlx")
    handlers, level = list(logger.handlers), logger.level
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


def _log_lines(run_dir: Path) -> list[tuple[str, str]]:
    lines = (run_dir / "train.log").read_text(encoding="utf-8").splitlines()
    matches = [STAMP.match(line) for line in lines]
    assert all(matches), [line for line, m in zip(lines, matches) if not m]
    return [(m.group(1), m.group(2)) for m in matches if m]


def test_a_handler_on_the_mlx_logger_gets_a_runs_lines_and_nothing_prints_twice(
    root: Path, mlx_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    collect = _Collect()
    mlx_logger.addHandler(collect)
    run = mlx.run_experiment(small_classification(epochs=3))
    messages = [r.getMessage() for r in collect.records]
    assert messages[0] == f"run {run.run_id}: {run.directory}"
    assert messages[-1] == f"completed {run.run_id}: {run.directory}"
    assert sum(m.startswith("epoch ") for m in messages) == 3
    assert {r.name for r in collect.records} == {"mlx.run"}
    assert {r.levelno for r in collect.records} == {logging.INFO}
    # the handler took over: the run printed nothing itself
    assert capsys.readouterr().err == ""
    # and train.log holds the same lines, stamped
    assert [text for _, text in _log_lines(run.directory)] == messages


def test_a_root_handler_on_stderr_prints_each_line_once(
    root: Path, mlx_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = logging.StreamHandler(sys.stderr)  # as logging.basicConfig() would
    handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        run = mlx.run_experiment(small_classification(epochs=2))
    finally:
        logging.getLogger().removeHandler(handler)
    err = capsys.readouterr().err
    assert err.count(f"completed {run.run_id}") == 1
    assert f"INFO:mlx.run:completed {run.run_id}: {run.directory}\n" in err
    assert err.count("epoch 1/2") == 1


def test_without_a_handler_the_api_prints_each_line_once(
    root: Path, mlx_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    run = mlx.run_experiment(small_classification(epochs=2))
    err = capsys.readouterr().err
    assert err.splitlines()[0] == f"run {run.run_id}: {run.directory}"
    assert err.count(f"completed {run.run_id}") == 1
    assert err.count("epoch 2/2") == 1
    quiet = mlx.run_experiment(small_classification(epochs=2), quiet=True)
    assert capsys.readouterr().err == ""
    assert f"completed {quiet.run_id}" in (quiet.directory / "train.log").read_text()
    # the run's handlers are gone once it ends
    assert all(isinstance(h, logging.NullHandler) for h in mlx_logger.handlers)


def test_a_silenced_mlx_logger_still_writes_train_log(
    root: Path, mlx_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    collect = _Collect()
    mlx_logger.addHandler(collect)
    mlx_logger.setLevel(logging.WARNING)
    run = mlx.run_experiment(small_classification(epochs=2))
    assert collect.records == [] and capsys.readouterr().err == ""
    texts = [text for _, text in _log_lines(run.directory)]
    assert texts[0].startswith("run ") and texts[-1].startswith("completed ")


def test_cli_lines_once_on_stderr_and_utc_stamps_in_train_log(root: Path) -> None:
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    run_dir = _train(root, small_classification(epochs=3))
    after = datetime.datetime.now(datetime.timezone.utc)
    lines = _log_lines(run_dir)
    stamps = [datetime.datetime.fromisoformat(stamp) for stamp, _ in lines]
    assert all(s.utcoffset() == datetime.timedelta(0) for s in stamps)
    assert before <= stamps[0] <= stamps[-1] <= after
    assert stamps == sorted(stamps)
    texts = [text for _, text in lines]
    assert texts[0] == f"run {run_dir.name}: {run_dir}"
    assert [t.split()[1] for t in texts if t.startswith("epoch ")] == [
        "1/3",
        "2/3",
        "3/3",
    ]


def test_cli_prints_each_line_once(root: Path) -> None:
    write_config(root / "exp.yaml", small_classification(epochs=2))
    done = run_cli(["run-experiment", "--config", "exp.yaml"], root)
    assert done.returncode == 0, done.stderr
    (run_dir,) = (p.parent for p in root.rglob("summary.json"))
    assert done.stderr.count(f"completed {run_dir.name}") == 1
    log_texts = [text for _, text in _log_lines(run_dir)]
    assert done.stderr.splitlines() == log_texts
    quiet = run_cli(["run-experiment", "--config", "exp.yaml", "--quiet"], root)
    assert quiet.returncode == 0 and quiet.stderr == ""


_WARNER = """
import warnings

from examples.custom_models import SoftmaxRegression


class Warner(SoftmaxRegression):
    def train_step(self, X, y):
        warnings.warn("odd batch seen by Warner", UserWarning, stacklevel=1)
        return super().train_step(X, y)
"""


def _warner_config(root: Path) -> dict[str, Any]:
    (root / "warner.py").write_text(_WARNER)
    config = small_classification(epochs=2, batch_size=600)
    config["model"] = {
        "name": "custom",
        "params": {"class_path": "warner:Warner", "n_features": 8, "n_classes": 3},
    }
    return config


def test_warnings_during_a_run_reach_train_log_and_still_show(
    root: Path, mlx_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    monkeypatch.syspath_prepend(str(root))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = mlx.run_experiment(_warner_config(root), quiet=True)
    assert sum("odd batch seen by Warner" in str(w.message) for w in caught) >= 2
    texts = [text for _, text in _log_lines(run.directory)]
    warned = [t for t in texts if "odd batch seen by Warner" in t]
    assert len(warned) == sum("odd batch" in str(w.message) for w in caught)
    assert warned[0] == "warning: UserWarning: odd batch seen by Warner"
    # outside the run, warnings are left alone
    assert warnings.showwarning is not None
    before = (run.directory / "train.log").read_text()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        warnings.warn("after the run", UserWarning, stacklevel=1)
    assert (run.directory / "train.log").read_text() == before


def test_cli_warnings_reach_train_log(root: Path) -> None:
    write_config(root / "exp.yaml", _warner_config(root))
    env = cli_env(root, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(root)]))
    done = run_cli(["run-experiment", "--config", "exp.yaml"], root, env=env)
    assert done.returncode == 0, done.stderr
    (run_dir,) = (p.parent for p in root.rglob("summary.json"))
    log = (run_dir / "train.log").read_text()
    assert "warning: UserWarning: odd batch seen by Warner" in log
    assert "odd batch seen by Warner" in done.stderr  # still shown, as before


@pytest.mark.parametrize("quiet", [False, True], ids=["shown", "quiet"])
def test_the_error_a_run_fails_with_is_the_last_of_train_log(
    root: Path, quiet: bool
) -> None:
    config = small_classification(epochs=20, learning_rate=1e6, optimizer="sgd")
    config["model"]["params"].update(gradient_clip=None, weight_clip=None)
    config["model"]["params"].pop("output_activation")
    config["model"]["params"]["layer_sizes"] = [8, 8, 1]
    config["dataset"] = {
        "name": "synthetic_regression",
        "params": {"n_samples": 200, "n_features": 8, "seed": 1},
    }
    write_config(root / "exp.yaml", config)
    args = ["run-experiment", "--config", "exp.yaml"] + (["--quiet"] if quiet else [])
    done = run_cli(args, root)
    assert done.returncode == 1
    (summary,) = root.rglob("summary.json")
    assert json.loads(summary.read_text())["status"] == "failed"
    shown = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert shown and shown[0].startswith("error: training diverged")
    texts = [text for _, text in _log_lines(summary.parent)]
    # what the command printed last, the log holds last, each line once
    assert texts[-2:] == done.stderr.splitlines()[-2:]
    assert texts[-2] == shown[0] and texts[-1].startswith("hint: ")
    assert sum(text.startswith("error: ") for text in texts) == 1
    if not quiet:
        assert done.stderr.count("error: training diverged") == 1


# --- 4. environment.json -----------------------------------------------------------


@pytest.mark.slow
def test_environment_records_packages_threads_and_blas(root: Path) -> None:
    threads = {
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "2",
    }
    write_config(root / "exp.yaml", small_classification(epochs=1))
    env = cli_env(root, **threads)
    env.pop("OPENBLAS_CORETYPE", None)
    # what a new process records: its own thread pools, torch never imported
    done = run_cli_process(["run-experiment", "--config", "exp.yaml"], root, env=env)
    assert done.returncode == 0, done.stderr
    (run_dir,) = (p.parent for p in root.rglob("summary.json"))
    record = json.loads((run_dir / "environment.json").read_text())
    assert record["thread_settings"] == {**threads, "OPENBLAS_CORETYPE": None}
    # threadpoolctl's own report, taken in a process with the same settings
    oracle = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, numpy, threadpoolctl;"
            "print(json.dumps(threadpoolctl.threadpool_info()))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    expected = json.loads(oracle.stdout)
    assert expected, "threadpoolctl found no BLAS library"
    assert [(p["internal_api"], p["num_threads"]) for p in record["threadpools"]] == [
        (p["internal_api"], p["num_threads"]) for p in expected
    ]
    packages = record["packages"]
    requirements = metadata.requires("model-harness") or []
    names = {re.match(r"[A-Za-z0-9._-]+", r).group(0) for r in requirements}  # type: ignore[union-attr]
    recorded = {**packages["dependencies"]}
    for extra in packages["extras"].values():
        recorded.update(extra)
    assert set(recorded) == names
    for name, version in recorded.items():
        try:
            assert version == metadata.version(name)
        except metadata.PackageNotFoundError:
            assert version is None
    assert packages["dependencies"]["numpy"] == np.__version__
    assert "test" in packages["installed_extras"]  # this suite runs with it
    assert record["torch"] is None  # a NumPy run never imports torch


# --- 5. the cache directory --------------------------------------------------------


def test_cache_directory_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlx.datasets.download import cache_dir

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLX_DATA_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir() == tmp_path / "home" / ".cache" / "mlx" / "datasets"
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert cache_dir() == tmp_path / "home" / ".cache" / "mlx" / "datasets"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # ignored, as XDG says
    assert cache_dir() == tmp_path / "home" / ".cache" / "mlx" / "datasets"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "mlx" / "datasets"
    monkeypatch.setenv("MLX_DATA_DIR", str(tmp_path / "data"))
    assert cache_dir() == tmp_path / "data"


@pytest.mark.parametrize("where", ["xdg", "mlx_data_dir", "home"])
def test_cli_looks_for_mnist_in_the_cache(root: Path, where: str) -> None:
    env = cli_env(root, HOME=str(root / "home"), XDG_CACHE_HOME=str(root / "xdg"))
    expected = root / "xdg" / "mlx" / "datasets" / "mnist"
    if where == "mlx_data_dir":
        env["MLX_DATA_DIR"] = str(root / "data")
        expected = root / "data" / "mnist"
    elif where == "home":
        del env["XDG_CACHE_HOME"]
        expected = root / "home" / ".cache" / "mlx" / "datasets" / "mnist"
    config = small_classification(epochs=1)
    config["dataset"] = {"name": "mnist"}
    config["model"]["params"]["layer_sizes"] = [784, 4, 10]
    write_config(root / "exp.yaml", config)
    done = run_cli(["run-experiment", "--config", "exp.yaml"], root, env=env)
    assert done.returncode == 1
    assert str(expected) in done.stderr and "Traceback" not in done.stderr


# --- 6. scikit-learn interop ---------------------------------------------------------


def _mlp_classifier(**params: Any) -> Any:
    from mlx.models import MLP

    defaults = dict(
        layer_sizes=[5, 8, 3],
        output_activation="softmax",
        seed=0,
        optimizer_config={"name": "adam", "learning_rate": 0.01},
    )
    return MLP(**{**defaults, **params})


def test_clone_gives_equal_params_and_a_fresh_model() -> None:
    from sklearn.base import clone

    from mlx.models import MLP, LinearRegression

    for model in (
        LinearRegression(l2_regularization=0.25, seed=3),
        _mlp_classifier(gradient_clip=None, dtype="float32"),
        MLP(layer_sizes=[2, 1]),
    ):
        copy = clone(model)
        assert type(copy) is type(model) and copy is not model
        assert copy.get_params(deep=True) == model.get_params(deep=False)
        assert copy.get_params() == model.get_params()
        assert not copy.is_trained


def test_cross_val_score_equals_a_hand_rolled_kfold_loop() -> None:
    from sklearn.base import clone
    from sklearn.datasets import make_classification, make_regression
    from sklearn.linear_model import Ridge
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

    from mlx.models import LinearRegression

    X, y = make_regression(n_samples=90, n_features=4, noise=3.0, random_state=0)
    linear = LinearRegression(l2_regularization=0.5)
    scores = cross_val_score(linear, X, y, cv=KFold(5))
    by_hand = []
    for train, test in KFold(5).split(X):
        fitted = clone(linear).fit(X[train], y[train])
        by_hand.append(r2_score(y[test], fitted.predict(X[test])))
    assert np.allclose(scores, by_hand, rtol=0, atol=1e-12)
    ridge = cross_val_score(Ridge(alpha=0.5), X, y, cv=KFold(5))
    assert np.allclose(scores, ridge, rtol=0, atol=1e-9)

    Xc, yc = make_classification(
        n_samples=120,
        n_features=5,
        n_informative=3,
        n_redundant=0,
        n_classes=3,
        random_state=1,
    )
    mlp = _mlp_classifier()
    scores = cross_val_score(mlp, Xc, yc, cv=3)  # a classifier: stratified folds
    by_hand = []
    for train, test in StratifiedKFold(3).split(Xc, yc):
        fitted = clone(mlp).fit(Xc[train], yc[train])
        predicted = np.argmax(fitted.predict(Xc[test]), axis=1)
        by_hand.append(accuracy_score(yc[test], predicted))
    assert np.array_equal(scores, by_hand)
    assert scores.mean() > 0.6  # it learned something


def test_predict_proba_classes_and_predict() -> None:
    from sklearn.datasets import make_classification

    from mlx.models import MLP

    X, y = make_classification(n_samples=80, n_features=5, random_state=2)
    labels = np.where(y == 1, "spam", "ham")
    binary = MLP(layer_sizes=[5, 4, 1], output_activation="sigmoid", seed=0)
    binary.fit(X, labels, epochs=30)
    proba = binary.predict_proba(X)
    assert proba.shape == (80, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert list(binary.classes_) == ["ham", "spam"]
    # predict keeps its documented behaviour: the positive-class probability
    assert np.array_equal(binary.predict(X), proba[:, 1])
    accuracy = np.mean(binary.classes_[np.argmax(proba, axis=1)] == labels)
    assert binary.score(X, labels) == accuracy

    Xm, ym = make_classification(
        n_samples=90, n_features=5, n_informative=3, n_classes=3, random_state=3
    )
    multi = _mlp_classifier().fit(Xm, ym + 10, epochs=20)  # labels 10, 11, 12
    proba = multi.predict_proba(Xm)
    assert proba.shape == (90, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert list(multi.classes_) == [10, 11, 12]
    assert np.array_equal(multi.predict(Xm), proba)

    regression = MLP(layer_sizes=[5, 1])
    assert not hasattr(regression, "predict_proba")
    assert not hasattr(regression, "classes_")
    from mlx.models import LinearRegression

    assert not hasattr(LinearRegression(), "predict_proba")


def test_set_params_checks_and_refits_from_scratch() -> None:
    from mlx.models import LinearRegression

    model = _mlp_classifier()
    assert model.set_params(seed=7, activation="tanh") is model
    assert model.get_params()["seed"] == 7 and model.activation == "tanh"
    with pytest.raises(ModelError, match="activation"):
        model.set_params(activation="swish")
    assert model.activation == "tanh"  # unchanged by the refused value
    with pytest.raises(ValueError, match="Invalid parameter 'depth'"):
        model.set_params(depth=3)
    X = np.random.default_rng(0).normal(size=(30, 5))
    y = (X[:, 0] > 0).astype(int)
    first = model.fit(X, y, epochs=5).predict(X)
    again = model.fit(X, y, epochs=5).predict(X)
    assert np.array_equal(first, again)  # fit starts from the seed's weights
    linear = LinearRegression().set_params(l2_regularization=2.0)
    assert linear.l2_regularization == 2.0
    with pytest.raises(ModelError):
        linear.set_params(l2_regularization=-1.0)


def test_a_user_model_need_not_implement_sklearn_methods(root: Path) -> None:
    """The BaseModel contract stays four methods: a custom model without any of
    the scikit-learn methods trains as before."""
    import examples.custom_models as custom

    assert not hasattr(custom.SoftmaxRegression, "set_params")
    config = small_classification(epochs=1)
    config["model"] = {
        "name": "custom",
        "params": {
            "class_path": "examples.custom_models:SoftmaxRegression",
            "n_features": 8,
            "n_classes": 3,
        },
    }
    run = mlx.run_experiment(config, quiet=True)
    assert run.status == "completed"


# --- 7. packaging ------------------------------------------------------------------


@pytest.mark.slow
def test_the_wheel_has_an_spdx_license_and_one_version(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(
        REPO_ROOT / "mlx", source / "mlx", ignore=shutil.ignore_patterns("__pycache__")
    )
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-v",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    output = built.stdout + built.stderr
    assert "SetuptoolsDeprecationWarning" not in output
    assert not re.search(r"licen[cs]e.*deprecat|deprecat.*licen[cs]e", output, re.I)
    import zipfile

    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (meta_name,) = [n for n in archive.namelist() if n.endswith("/METADATA")]
        meta = archive.read(meta_name).decode()
        assert any(n.endswith("licenses/LICENSE") for n in archive.namelist())
    headers = [
        line for line in meta.splitlines() if ": " in line and not line.startswith(" ")
    ]
    assert "License-Expression: GPL-3.0-or-later" in headers
    assert "License-File: LICENSE" in headers
    assert not any(h.startswith("Classifier: License ::") for h in headers)
    assert f"Version: {mlx.__version__}" in headers
    assert "Requires-Dist: threadpoolctl>=3" in headers
    text = (REPO_ROOT / "pyproject.toml").read_text()
    assert re.search(r'^dynamic = \["version"\]', text, re.M)
    assert not re.search(
        r"^version = ", text.split("[tool.setuptools.dynamic]")[0], re.M
    )


def test_help_stays_free_of_the_heavy_parts() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "import sys; from mlx.cli import main; sys.exit(main())",
            "--help",
        ],
        cwd=REPO_ROOT,
        env=cli_env(REPO_ROOT),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines()}
    assert "logging" in imported  # the library's NullHandler
    for heavy in (
        "logging.handlers",
        "mlx.experiment.console",
        "numpy",
        "threadpoolctl",
        "importlib.metadata",
        "sklearn",
        "datetime",
    ):
        assert heavy not in imported, heavy


_SAVE = """
import sys
import numpy as np
from mlx.models import LinearRegression
X = np.random.default_rng(0).normal(size=(20, 3))
LinearRegression().fit(X, X.sum(axis=1)).save(sys.argv[1])
"""


@pytest.mark.slow
def test_the_tagged_weights_are_the_same_bytes_in_every_process(tmp_path: Path) -> None:
    """safetensors keeps metadata in a hash map whose order changes per process;
    the saved bytes must not."""
    contents = set()
    for i in range(6):
        target = tmp_path / f"m{i}"
        subprocess.run(
            [sys.executable, "-c", _SAVE, str(target)],
            env=cli_env(tmp_path), check=True, capture_output=True,
        )  # fmt: skip
        data = (target / "model.safetensors").read_bytes()
        contents.add(data)
        length = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + length])
        assert list(header["__metadata__"]) == sorted(header["__metadata__"])
    assert len(contents) == 1
