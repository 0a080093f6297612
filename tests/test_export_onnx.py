"""mlx export --onnx / --torchscript: the file's outputs on raw features equal the
run's model's (onnxruntime and torch.jit.load run here, apart from the export),
its parity record, and every refusal writing nothing."""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO_ROOT, run_cli, small_classification

import mlx
from mlx.config import parse_config
from mlx.datasets import apply_preprocessing, load
from mlx.models import load_model

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLX_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


def _raw_val(config: dict) -> np.ndarray:
    """The validation split's features as the source gives them (not
    standardized), rebuilt here."""
    raw = json.loads(json.dumps(config))
    raw["dataset"]["params"]["standardize"] = False
    parsed = parse_config(raw)
    splits = load(parsed.dataset, parsed.training.seed, "float64")
    return splits.val[0]


def _mlx_predict(run: mlx.experiment.Run, X: np.ndarray) -> np.ndarray:
    """What mlx predicts for raw features: the run's preprocessing, its model."""
    record = json.loads((Path(run.directory) / "data.json").read_text())
    model = load_model(Path(run.directory) / "model")
    return model.predict(apply_preprocessing(X, record["preprocessing"]))


def _onnx_outputs(path: Path, X: np.ndarray) -> tuple[np.ndarray, object]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("input", "output")
    assert inp.shape[0] == "batch"  # the batch axis is dynamic
    dtype = np.float64 if inp.type == "tensor(double)" else np.float32
    return session.run(None, {"input": X.astype(dtype)})[0], inp


def _check_parity(root: Path, run: mlx.experiment.Run, config: dict, name: str):
    """Export ``run`` to ``name``; the file on the raw validation features equals
    the run's model on those features preprocessed as mlx does."""
    done = run_cli(["export", run.run_id, "--onnx", name], root)
    assert done.returncode == 0, done.stderr
    record = json.loads((root / f"{name}.parity.json").read_text())
    assert record["max_abs_diff"] <= 1e-10
    assert f"max abs diff {record['max_abs_diff']:.3g} <= 1e-04" in done.stdout
    X = _raw_val(config)
    got, inp = _onnx_outputs(root / name, X)
    expected = _mlx_predict(run, X)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert (record["split"], record["n_samples"]) == ("val", len(X))
    return record, inp


def test_mlp_and_linear_onnx_match_the_run_on_raw_features(root: Path) -> None:
    config = small_classification(epochs=2)
    config["dataset"]["params"]["standardize"] = True
    config["model"]["params"].update(activation="tanh", layer_sizes=[8, 6, 5, 3])
    run = mlx.run_experiment(config, quiet=True)
    record, inp = _check_parity(root, run, config, "mlp.onnx")
    assert inp.type == "tensor(double)"
    assert record["checkpoint"] == "final" and record["epoch"] == 2
    assert record["compared"] == "class probabilities"
    assert record["run_id"] == run.run_id and record["format"] == "onnx"
    linear = {
        "name": "lin",
        "dataset": {
            "name": "synthetic_regression",
            "params": {"n_samples": 120, "n_features": 4, "standardize": True},
        },
        "model": {"name": "linear_regression", "params": {}},
        "training": {"epochs": 1},
        "output": {"directory": "outputs"},
    }
    run = mlx.run_experiment(linear, quiet=True)
    record, _ = _check_parity(root, run, linear, "linear.onnx")
    assert record["compared"] == "predicted values"


@pytest.mark.slow  # torch.onnx.export's first call takes several seconds
def test_torch_onnx_and_torchscript_match_the_run(root: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    shutil.copytree(REPO_ROOT / "examples", root / "examples")
    sys.path.insert(0, str(root))
    config = small_classification(epochs=1, device="cpu")
    config["dataset"]["params"].update(n_samples=120, standardize=True)
    config["model"] = {
        "name": "custom",
        "params": {
            "class_path": "examples.torch_models:TinyMLP",
            "n_features": 8,
            "hidden": 4,
            "n_outputs": 3,
        },
    }
    try:
        run = mlx.run_experiment(config, quiet=True)
        done = run_cli(
            ["export", run.run_id, "--onnx", "t.onnx", "--torchscript", "t.pt"], root
        )
    finally:
        sys.path.remove(str(root))
    assert done.returncode == 0, done.stderr
    X = _raw_val(config)
    expected = _mlx_predict(run, X)
    got, inp = _onnx_outputs(root / "t.onnx", X)
    assert inp.type == "tensor(float)"
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated
        scripted = torch.jit.load(str(root / "t.pt"))
    with torch.no_grad():
        traced = scripted(torch.from_numpy(X.astype(np.float32))).double().numpy()
    np.testing.assert_allclose(traced, expected, rtol=0, atol=1e-5)
    for name, runtime in (("t.onnx", "onnxruntime"), ("t.pt", "torch.jit")):
        record = json.loads((root / f"{name}.parity.json").read_text())
        assert record["runtime"].startswith(runtime)
        assert record["max_abs_diff"] <= 1e-5 and record["split"] == "val"


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_refusals_write_nothing(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = small_classification(epochs=1)
    run = mlx.run_experiment(config, quiet=True)
    (root / "old.onnx").write_bytes(b"before")
    before = _listing(root)

    def refused(args: list[str], *parts: str, code: int = 1) -> None:
        done = run_cli(args, root)
        assert done.returncode == code, done.stderr
        assert "Traceback" not in done.stderr
        for part in parts:
            assert part in done.stderr
        assert _listing(root) == before
        assert (root / "old.onnx").read_bytes() == b"before"

    # above the tolerance: neither the file nor its record, the old file kept
    monkeypatch.setattr("mlx.outputs.onnx.TOLERANCE", 0.0)
    monkeypatch.setattr("mlx.outputs.onnx._max_abs_diff", lambda a, b: 3e-3)
    refused(
        ["export", run.run_id, "--onnx", "old.onnx"],
        f"error: the ONNX export of run {run.run_id} differs from its model by "
        "0.003 (largest absolute difference on the val split, 60 samples), above "
        "the tolerance 0e+00; nothing was written",
    )
    monkeypatch.undo()
    refused(
        ["export", run.run_id, "--torchscript", "m.pt"],
        "has a NumPy model (MLP); TorchScript export is for torch models only",
    )
    refused(["export", "nope", "--onnx", "m.onnx"], "nope")
    refused(
        ["export", run.run_id, "--onnx", "m.onnx", "--checkpoint", "epoch-9"],
        "has no checkpoint 'epoch-9'",
    )
    refused(
        ["export", run.run_id, "--onnx", "missing/m.onnx"],
        "the directory 'missing' does not exist",
    )
    refused(
        ["export", run.run_id, "--onnx", "m.onnx", "--mlflow", "x"],
        "are separate exports",
    )
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    refused(
        ["export", run.run_id, "--onnx", "m.onnx"],
        "needs the 'onnxruntime' package of the `export` extra",
        "hint: pip install 'model-harness[export]'",
    )
    monkeypatch.undo()
    shutil.rmtree(Path(run.directory) / "model")
    before = _listing(root)
    refused(
        ["export", run.run_id, "--onnx", "m.onnx"],
        f"run {run.run_id} has no checkpoint 'final'",
    )
