"""A result is shown as what it is: which model produced it, and one quantity per
loss name.

- Every evaluation records the epoch and step of the weights it scored; the report,
  `mlx compare` and `mlx eval` say them, and say when the run has trained past them
  (a run resumed after it was evaluated), with the command that scores the newer
  model. `predictions.csv` is matched to the evaluation that wrote it by its SHA-256.
- `val_loss` is the training loss on the validation split: cross-entropy from the
  logits (log-sum-exp, unclipped), equal to torch's `cross_entropy` for torch models
  and to scikit-learn's `log_loss` for NumPy models wherever its clipping does not
  bite; larger than it on a confident mistake.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli, small_classification, start_cli, write_config

from mlx.config import parse_config
from mlx.datasets import load

# -- helpers ---------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


def _train(root: Path, config: dict, name: str = "exp") -> Path:
    write_config(root / f"{name}.yaml", config)
    done = run_cli(["run-experiment", "--config", f"{name}.yaml", "--quiet"], root)
    assert done.returncode == 0, done.stderr
    (run_dir,) = (root / "outputs").glob(f"{config['name']}-*")
    return run_dir


def _ok(root: Path, *args: str) -> str:
    done = run_cli(list(args), root)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def _resume(root: Path, run_dir: Path, epochs: int) -> None:
    _ok(
        root,
        "run-experiment",
        "--resume",
        run_dir.name,
        "--set",
        f"training.epochs={epochs}",
        "--quiet",
    )


def _report(root: Path, *runs: Path) -> str:
    out = root / "report.html"
    _ok(root, "report", *(r.name for r in runs), "-o", str(out))
    return html.unescape(out.read_text(encoding="utf-8"))


def _records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _evals(run_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((run_dir / "evals").iterdir())]


def _val_split(root: Path, config: dict, dtype: str = "float64") -> tuple:
    parsed = parse_config(config, root=root)
    return load(parsed.dataset, parsed.training.seed, dtype).val


# -- which model a result is from ------------------------------------------------------


@pytest.fixture
def resumed(root: Path) -> Path:
    """A run evaluated (with predictions) after 1 epoch, then resumed to 15."""
    config = small_classification(epochs=1)
    config["name"] = "stale"
    run_dir = _train(root, config)
    _ok(root, "eval", run_dir.name, "--save-predictions")
    _resume(root, run_dir, 15)
    return run_dir


def test_the_report_says_stale_predictions_are_the_1_epoch_models(
    root: Path, resumed: Path
) -> None:
    page = _report(root, resumed)
    again = f"run `mlx eval {resumed.name} --save-predictions` again"
    assert (
        "from predictions.csv of the test split, checkpoint final, the model of "
        f"epoch 1; the run has trained to epoch 15 since: {again}"
    ) in page
    # the evaluation itself is labelled the same way
    assert re.search(
        r"<h4>test split, 60 samples, [-0-9T:.+]+: checkpoint final, the model of "
        r"epoch 1; the run has trained to epoch 15 since: run "
        rf"`mlx eval {resumed.name}` again \(latest\)</h4>",
        page,
    )
    # evaluated again: the newest model, and no word of newer weights
    _ok(root, "eval", resumed.name, "--save-predictions")
    page = _report(root, resumed)
    assert (
        "from predictions.csv of the test split, checkpoint final, the model of "
        "epoch 15)"
    ) in page
    latest = page[page.index("(latest)") - 200 : page.index("(latest)")]
    assert latest.endswith("checkpoint final, the model of epoch 15 ")


def test_an_evaluation_records_the_weights_it_scored(root: Path, resumed: Path) -> None:
    (first,) = _evals(resumed)
    assert (first["checkpoint"], first["epoch"]) == ("final", 1)
    assert first["step"] == _records(resumed)[0]["step"]
    state = json.loads((resumed / "model" / "trainer_state.json").read_text())
    assert (state["epoch"], state["step"]) == (15, _records(resumed)[-1]["step"])
    out = _ok(root, "eval", resumed.name, "--checkpoint", "epoch-3")
    step = _records(resumed)[2]["step"]
    assert re.search(rf"checkpoint\s+epoch-3 \(epoch 3, step {step}\)", out)
    assert _evals(resumed)[-1]["epoch"] == 3


def test_the_confusion_matrix_says_it_was_computed_from_which_epoch(
    root: Path, resumed: Path
) -> None:
    (resumed / "predictions.csv").unlink()
    page = _report(root, resumed)
    assert "computed on the test split, checkpoint final, the model of epoch 15" in page


def test_predictions_no_evaluation_wrote_are_not_attributed(
    root: Path, resumed: Path
) -> None:
    path = resumed / "predictions.csv"
    path.write_text(path.read_text().replace("\n0,", "\n0,", 1) + "\n")
    page = _report(root, resumed)
    assert (
        "from predictions.csv, which no recorded evaluation wrote: the model behind "
        "it is unknown"
    ) in page


def test_compare_tells_evaluations_of_different_weights_apart(
    root: Path, resumed: Path
) -> None:
    config = small_classification(epochs=2)
    config["name"] = "fresh"
    other = _train(root, config, "fresh")
    _ok(root, "eval", other.name)
    text = _ok(root, "compare", resumed.name, other.name)
    row = next(line for line in text.splitlines() if line.startswith("eval of"))
    assert "test, final, epoch 1 (the run is at epoch 15 now)" in row
    assert "test, final, epoch 2" in row and row.count("now") == 1
    data = json.loads(_ok(root, "compare", resumed.name, other.name, "--json"))
    stale = data["metrics"][resumed.name]["latest_eval"]
    assert (stale["epoch"], stale["trained_since"]) == (1, 15)
    fresh = data["metrics"][other.name]["latest_eval"]
    assert (fresh["epoch"], fresh["trained_since"]) == (2, None)
    # the report's comparison names the weights of each run's evaluation too
    page = _report(root, resumed, other)
    assert "test, final, epoch 1 (the run is at epoch 15 now)" in page


def test_an_older_evaluation_without_an_epoch_is_still_known_stale(
    root: Path, resumed: Path
) -> None:
    (path,) = sorted((resumed / "evals").iterdir())
    record = json.loads(path.read_text())
    del record["epoch"], record["step"], record["predictions_sha256"]
    path.write_text(json.dumps(record))
    page = _report(root, resumed)
    assert (
        "checkpoint final, the model's epoch was not recorded; the run has trained "
        "to epoch 15 since"
    ) in page


def test_a_stopped_resume_points_at_the_newest_checkpoint(
    root: Path, resumed: Path
) -> None:
    # model/ from an earlier segment, the run's newest weights in a checkpoint:
    # what a resume stopped before its end leaves
    state_file = resumed / "model" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["epoch"] = 1
    state_file.write_text(json.dumps(state))
    page = _report(root, resumed)
    assert (
        f"since: run `mlx eval {resumed.name} --checkpoint epoch-15 "
        "--save-predictions` for its newest model"
    ) in page


@pytest.mark.slow
def test_a_resumed_run_stopped_early_shows_its_newest_epoch_metrics(
    root: Path,
) -> None:
    config = small_classification(epochs=1, batch_size=8)
    config["name"] = "long"
    config["dataset"]["params"]["n_samples"] = 6000
    config["model"]["params"]["layer_sizes"] = [8, 256, 256, 3]
    run_dir = _train(root, config)
    first = json.loads((run_dir / "summary.json").read_text())["final_metrics"]
    args = ["run-experiment", "--resume", run_dir.name, "--set", "training.epochs=50"]
    proc = start_cli([*args, "--quiet"], root)
    deadline = time.monotonic() + 120
    while len(_records(run_dir)) < 3:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    summary = json.loads((run_dir / "summary.json").read_text())
    last = _records(run_dir)[-1]
    assert summary["status"] == "interrupted"
    assert summary["epochs_completed"] == last["epoch"] >= 3
    assert summary["final_metrics"] == {
        k: last[k] for k in ("train_loss", "val_loss", "val_accuracy")
    }
    assert summary["final_metrics"] != first
    shown = _ok(root, "runs", "show", run_dir.name)
    final = shown[shown.index("Final metrics") :]
    assert re.search(rf"val_loss\s+{last['val_loss']:.6g}", final)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "sparse"])
def test_a_predictions_csv_that_is_no_file_is_an_error_naming_it(
    root: Path, resumed: Path, kind: str
) -> None:
    path = resumed / "predictions.csv"
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    else:
        with open(path, "wb") as handle:
            handle.truncate(3 * 1024**3)  # sparse: costs no disk
    done = run_cli(["report", resumed.name, "-o", str(root / "r.html")], root)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert str(path) in line
    assert {"fifo": "FIFO", "dev-zero": "device", "sparse": "larger than"}[kind] in line
    assert not (root / "r.html").exists()


# -- one quantity per loss name --------------------------------------------------------


def test_numpy_val_loss_is_sklearn_log_loss_when_nothing_is_clipped(
    root: Path,
) -> None:
    from sklearn.metrics import log_loss

    from mlx.models import load_model

    config = small_classification(epochs=3)
    run_dir = _train(root, config)
    model = load_model(run_dir / "model")
    X_val, y_val = _val_split(root, config)
    proba = model.predict(X_val)
    assert proba.min() > 1e-12  # well-conditioned: clipping at eps changes nothing
    expected = log_loss(y_val, proba, labels=[0, 1, 2])
    assert _records(run_dir)[-1]["val_loss"] == pytest.approx(expected, rel=1e-12)


def test_numpy_val_loss_exceeds_sklearn_log_loss_on_a_confident_mistake() -> None:
    from sklearn.metrics import log_loss

    from mlx.experiment.loop import validation_metrics
    from mlx.models import MLP

    model = MLP(layer_sizes=[2, 3], output_activation="softmax", seed=0)
    weight, bias = model.params_["layers.0.weight"], model.params_["layers.0.bias"]
    weight[...] = [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    bias[...] = 0.0
    model.is_trained = True
    X = np.array([[2.0, 0.0], [0.0, 2.0], [0.0, 100.0]])
    y = np.array([0, 1, 0])  # the last: class 1 at a margin of 100, and wrong
    val_loss = validation_metrics(model, X, y)["val_loss"]
    logits = X @ weight.T
    by_hand = np.mean(
        np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1))
        + logits.max(1)
        - logits[np.arange(3), y]
    )
    assert val_loss == pytest.approx(by_hand, rel=1e-12)
    clipped = log_loss(y, model.predict(X), labels=[0, 1, 2])
    assert val_loss > clipped + 20  # -log(eps) caps a sample near 36; this one is 100


def test_numpy_sigmoid_val_loss_is_bce_with_logits(root: Path) -> None:
    from sklearn.metrics import log_loss

    from mlx.models import load_model

    config = small_classification(epochs=2)
    config["dataset"]["params"]["n_classes"] = 2
    config["model"]["params"].update(
        layer_sizes=[8, 16, 1], output_activation="sigmoid"
    )
    run_dir = _train(root, config)
    model = load_model(run_dir / "model")
    X_val, y_val = _val_split(root, config)
    expected = log_loss(y_val, model.predict(X_val))
    assert _records(run_dir)[-1]["val_loss"] == pytest.approx(expected, rel=1e-12)
    z = model.predict_logits(X_val)
    bce = np.mean(np.maximum(z, 0) - z * y_val + np.log1p(np.exp(-np.abs(z))))
    assert _records(run_dir)[-1]["val_loss"] == pytest.approx(bce, rel=1e-12)


def _torch_config(epochs: int = 2) -> dict:
    return {
        "name": "torchy",
        "dataset": {
            "name": "synthetic_classification",
            "params": {"n_samples": 300, "n_features": 6, "n_classes": 3, "seed": 4},
        },
        "model": {
            "name": "custom",
            "params": {
                "class_path": "examples.torch_models:TinyMLP",
                "n_features": 6,
                "hidden": 8,
                "n_outputs": 3,
            },
        },
        "training": {"epochs": epochs, "batch_size": 32, "seed": 7, "device": "cpu"},
        "output": {"directory": "outputs"},
    }


def test_torch_val_loss_is_torch_cross_entropy_of_the_saved_model(
    root: Path,
) -> None:
    torch = pytest.importorskip("torch")
    import shutil

    from mlx.models import load_model

    shutil.copytree(Path(__file__).parent.parent / "examples", root / "examples")
    config = _torch_config()
    run_dir = _train(root, config)
    model = load_model(run_dir / "model")
    X_val, y_val = _val_split(root, config, "float32")
    module = model.module_.eval()
    with torch.no_grad():
        logits = module(torch.from_numpy(np.ascontiguousarray(X_val)))
    expected = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y_val))
    assert _records(run_dir)[-1]["val_loss"] == pytest.approx(float(expected), rel=1e-6)


def test_torch_val_loss_is_not_capped_on_a_confident_mistake() -> None:
    torch = pytest.importorskip("torch")

    from mlx.experiment.loop import validation_metrics
    from mlx.models.torch.model import TorchModel

    model = TorchModel(
        class_path="examples.torch_models:TinyMLP",
        module_params={"n_features": 2, "hidden": 2, "n_outputs": 2},
        device="cpu",
    )
    model.is_trained = True
    X = np.array([[5.0, 0.0], [0.0, 5.0]], dtype=np.float32)
    y = np.array([1, 1])
    with torch.no_grad():
        for p in model.module_.parameters():
            p.zero_()
        linear = [m for m in model.module_.modules() if hasattr(m, "weight")]
        linear[0].weight.copy_(torch.eye(2))
        linear[-1].weight.copy_(60.0 * torch.eye(2))
        logits = model.module_.eval()(torch.from_numpy(X))
    expected = float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(y)))
    assert expected > 25  # the first sample alone costs about 60
    val_loss = validation_metrics(model, X, y)["val_loss"]
    assert val_loss == pytest.approx(expected, rel=1e-6)


def test_a_model_without_logits_gets_the_unclipped_cross_entropy() -> None:
    from mlx.experiment.loop import validation_metrics
    from mlx.models import BaseModel

    class Fixed(BaseModel):
        task = "classification"

        def forward(self, X: np.ndarray) -> np.ndarray:
            return np.array([[0.9, 0.1], [1e-300, 1.0]])[: len(X)]

        def train_step(self, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
            return {"loss": 0.0}

    values = validation_metrics(Fixed(), np.zeros((2, 1)), np.array([0, 0]))
    assert values["val_loss"] == pytest.approx(
        -(np.log(0.9) + np.log(1e-300)) / 2, rel=1e-12
    )
