"""Peak resident memory of a whole training run on a large synthetic dataset.

A child process runs ``run_experiment`` on synthetic classification data whose X
and y (float64) take about 500 MB, and reports its peak RSS (``VmHWM``, else
``ru_maxrss``). The target is at most 1.5 x the dataset size + 100 MB. A second
child that only imports mlx and NumPy gives the interpreter's own share.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from benchmarks._common import REPO_ROOT, Row, Settings

__all__ = ["run"]

MB = 1 << 20

_CHILD = """
import json, resource, sys
config = json.loads(sys.argv[1])
if config:
    from mlx import run_experiment
    run_experiment(config, quiet=True)
else:
    import numpy, mlx.datasets, mlx.models  # noqa: F401
try:
    # VmHWM is this process's own peak; ru_maxrss on Linux also counts the parent's
    # resident set at fork time, which exec does not reset
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) * 1024 for line in status
                    if line.startswith("VmHWM:"))
except OSError:
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB else
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
print(json.dumps({"peak_rss": peak}))
"""


def _peak_rss(config: dict[str, Any]) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(config)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(json.loads(done.stdout.strip().splitlines()[-1])["peak_rss"])


def run(settings: Settings) -> list[Row]:
    n_features = 100
    target_bytes = 5 * MB if settings.quick else 500 * MB
    n_samples = target_bytes // ((n_features + 1) * 8)
    dataset_bytes = n_samples * (n_features + 1) * 8
    outputs = REPO_ROOT / "outputs"  # run directories must lie inside the repository
    outputs.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-memory-", dir=outputs) as tmp:
        config = {
            "name": "bench-memory",
            "dataset": {
                "name": "synthetic_classification",
                "params": {
                    "n_samples": n_samples,
                    "n_features": n_features,
                    "n_classes": 2,
                    "seed": 0,
                },
            },
            "model": {
                "name": "mlp",
                "params": {
                    "layer_sizes": [n_features, 32, 2],
                    "activation": "relu",
                    "output_activation": "softmax",
                },
            },
            "training": {
                "epochs": 2,
                "batch_size": 512,
                "learning_rate": 0.01,
                "optimizer": "sgd",
                "seed": 0,
            },
            "output": {
                "directory": tmp,
                "save_checkpoints": True,
                "checkpoint_frequency": 1,
            },
        }
        peak = _peak_rss(config)
    baseline = _peak_rss({})
    limit = dataset_bytes * 1.5 + 100 * MB
    return [
        Row(
            "memory",
            f"peak RSS, {dataset_bytes / MB:.0f} MB dataset, 2 epochs",
            "MB",
            peak / MB,
            target=f"<= {limit / MB:.0f}",
            note=f"limit = 1.5 x dataset + 100 MB; interpreter + imports alone "
            f"{baseline / MB:.0f} MB",
            extra={
                "dataset_bytes": dataset_bytes,
                "peak_rss_bytes": peak,
                "baseline_rss_bytes": baseline,
                "limit_bytes": limit,
            },
        )
    ]
