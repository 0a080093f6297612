"""``mlx sweep`` overhead: the same quick points by hand, on the local pool, on Ray.

"By hand" runs each point's resolved config with ``mlx run-experiment`` one after
another, each a fresh process, which is what the sweep saves a user from typing. The
sweep runs the same configs (the files it wrote under ``points/``), so the runs are
the same work and the difference is the driver's: expanding and validating the points,
starting and watching their processes, reading their states, printing the table.

* overhead per point: ``(sweep --jobs 1 - by hand) / points`` (target < 100 ms);
* ``sweep --jobs 2 / by hand`` on 8 points (target <= 0.6 on 2 cores);
* Ray (when installed, not in ``--quick``): ``ray.init`` start-up and
  ``ray.shutdown`` as the sweep reports them, and per point ``(ray sweep --jobs 1 -
  start-up - shut-down - local sweep --jobs 1) / points``.

Each repetition times the variants back to back in a fresh directory.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import yaml

from benchmarks._common import REPO_ROOT, Row, Settings

__all__ = ["run"]


def _base(quick: bool) -> dict[str, Any]:
    return {
        "name": "bench-sweep",
        "dataset": {
            "name": "synthetic_classification",
            "params": {"n_samples": 600, "n_features": 8, "n_classes": 3, "seed": 3},
        },
        "model": {
            "name": "mlp",
            "params": {"layer_sizes": [8, 16, 3], "output_activation": "softmax"},
        },
        "training": {"epochs": 2 if quick else 4, "batch_size": 32, "seed": 5},
        "output": {"directory": "outputs"},
    }


def _sweep(name: str, points: int) -> dict[str, Any]:
    return {
        "name": name,
        "base": "base.yaml",
        "method": "grid",
        "parameters": {"training.seed": {"values": list(range(1, points + 1))}},
    }


def _env(root: Path) -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    repo = str(REPO_ROOT)
    return {
        **os.environ,
        "PYTHONPATH": repo if not path else repo + os.pathsep + path,
        "MLX_ROOT": str(root),
        "RAY_AUTH_MODE": "disabled",
    }


def _mlx(args: Sequence[str], root: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mlx", *args],
        cwd=root,
        env=_env(root),
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"mlx {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return seconds, done.stderr


def _one_round(points: int, quick: bool, with_ray: bool) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="mlx-bench-sweep-"))
    try:
        (root / "pyproject.toml").write_text("")
        (root / "base.yaml").write_text(yaml.safe_dump(_base(quick)))
        figures: dict[str, float] = {}

        def sweep(name: str, jobs: int, executor: str) -> None:
            (root / f"{name}.yaml").write_text(yaml.safe_dump(_sweep(name, points)))
            seconds, stderr = _mlx(
                ["sweep", "--config", f"{name}.yaml", "--jobs", str(jobs)]
                + ["--executor", executor],
                root,
            )
            figures[name] = seconds
            for key, word in (("ray_startup", "started"), ("ray_stop", "stopped")):
                found = re.search(rf"ray: {word} in ([0-9.]+)s", stderr)
                if found:
                    figures[key] = float(found.group(1))

        sweep("serial", 1, "local")
        # by hand, right after: the very configs the serial sweep ran, one process
        # each, one after another
        configs = sorted((root / "outputs" / "serial" / "points").glob("*.yaml"))
        assert len(configs) == points
        started = time.perf_counter()
        for config in configs:
            _mlx(["run-experiment", "--config", str(config), "--quiet"], root)
        figures["hand"] = time.perf_counter() - started
        sweep("pool", 2, "local")
        if with_ray:
            sweep("onray", 1, "ray")
        return figures
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(settings: Settings) -> list[Row]:
    points = 4 if settings.quick else 8
    repeats = 1 if settings.quick else max(1, min(settings.repeats, 3))
    with_ray = not settings.quick and importlib.util.find_spec("ray") is not None
    rounds = [_one_round(points, settings.quick, with_ray) for _ in range(repeats)]

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    hand = median("hand")
    overhead = statistics.median((r["serial"] - r["hand"]) / points for r in rounds)
    pool_ratio = statistics.median(r["pool"] / r["hand"] for r in rounds)
    rows = [
        Row(
            "sweep",
            f"overhead per point, {points} points, --jobs 1",
            "ms",
            overhead * 1000,
            target="<= 100",
            note=f"sweep {median('serial'):.2f} s, by hand {hand:.2f} s",
        ),
        Row(
            "sweep",
            f"{points} points on --jobs 2 vs by hand",
            "s",
            median("pool"),
            hand,
            "one after another",
            target="<= 0.6",
            paired_ratio=pool_ratio,
            note=f"{os.cpu_count()} cores",
        ),
    ]
    if with_ray:
        startup = median("ray_startup")
        per_point = statistics.median(
            (r["onray"] - r["ray_startup"] - r["ray_stop"] - r["serial"]) / points
            for r in rounds
        )
        rows += [
            Row("sweep", "ray: start-up (ray.init, local)", "s", startup),
            Row("sweep", "ray: shut-down (ray.shutdown)", "s", median("ray_stop")),
            Row(
                "sweep",
                "ray: overhead per point beyond the local pool, --jobs 1",
                "ms",
                per_point * 1000,
                note=f"ray sweep {median('onray'):.2f} s in all",
            ),
        ]
    return rows


if __name__ == "__main__":  # pragma: no cover - `python -m benchmarks.sweep`
    from benchmarks.cli import format_table

    print(format_table(run(Settings(repeats=3))))
