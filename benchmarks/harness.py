"""Harness overhead: a full ``run_experiment`` against the bare training loop.

The full run generates the data, splits it, trains, validates after every epoch,
logs, and writes a checkpoint every epoch. The bare loop trains the same model on
the same (already loaded) training arrays with the same shuffled batches, and does
nothing else. Both run in this process, alternately.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import REPO_ROOT, Row, Settings, paired_medians

__all__ = ["run"]


def _config(settings: Settings, directory: Path) -> dict[str, Any]:
    n_train, epochs = (500, 2) if settings.quick else (20000, 10)
    # validation and test take 10% each, so the training split holds n_train samples
    n_samples = int(round(n_train / 0.8))
    return {
        "name": "bench-harness",
        "dataset": {
            "name": "synthetic_classification",
            "params": {
                "n_samples": n_samples,
                "n_features": 784,
                "n_informative": 20,
                "n_classes": 10,
                "seed": 0,
                "validation_split": 0.1,
                "test_split": 0.1,
            },
        },
        "model": {
            "name": "mlp",
            "params": {
                "layer_sizes": [784, 256, 128, 10],
                "activation": "relu",
                "output_activation": "softmax",
                "dtype": "float32",
            },
        },
        "training": {
            "epochs": epochs,
            "batch_size": 128,
            "learning_rate": 0.01,
            "optimizer": "sgd",
            "seed": 0,
        },
        "output": {
            "directory": str(directory),
            "save_checkpoints": True,
            "checkpoint_frequency": 1,
            "save_logs": True,
        },
    }


def run(settings: Settings) -> list[Row]:
    import numpy as np

    from mlx import datasets, models, run_experiment
    from mlx.config import parse_config
    from mlx.experiment.loop import batch_order
    from mlx.optim import get_optimizer
    from mlx.runs.records import feature_dtype

    # run directories must lie inside the repository; outputs/ is ignored by git
    outputs = REPO_ROOT / "outputs"
    outputs.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-harness-", dir=outputs))
    try:
        raw = _config(settings, tmp)
        config = parse_config(raw)
        # the arrays the run trains on: float32, as the run loads them for its
        # float32 model
        splits = datasets.load(
            config.dataset, config.training.seed, feature_dtype(config)
        )
        X_train, y_train = splits.train
        params = dict(raw["model"]["params"])
        epochs = config.training.epochs
        batch_size = config.training.batch_size

        def full() -> None:
            run_experiment(raw, quiet=True)

        def bare() -> None:
            model = models.get_model("mlp", params)
            model.set_optimizer(
                get_optimizer({"optimizer_type": "sgd", "learning_rate": 0.01})
            )
            X = np.ascontiguousarray(X_train, dtype=np.float32)
            n = len(X)
            xb = np.empty((batch_size, X.shape[1]), np.float32)
            yb = np.empty(batch_size, y_train.dtype)
            for epoch in range(1, epochs + 1):
                order = batch_order(0, epoch, n)
                for b in range(math.ceil(n / batch_size)):
                    index = order[b * batch_size : (b + 1) * batch_size]
                    size = len(index)
                    np.take(X, index, axis=0, out=xb[:size])
                    np.take(y_train, index, axis=0, out=yb[:size])
                    float(model.train_step(xb[:size], yb[:size])["loss"])

        timing = paired_medians(full, bare, settings)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [
        Row(
            "harness",
            f"run-experiment vs bare loop ({len(X_train)} samples, {epochs} epochs)",
            "s",
            timing.ours,
            timing.peer,
            "bare training loop",
            "<= 1.15",
            note="data + validation + logs + a checkpoint every epoch",
            paired_ratio=timing.ratio,
        )
    ]
