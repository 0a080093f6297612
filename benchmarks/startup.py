"""Start-up time of whole processes: ``mlx --help``, a dry run, and other CLIs.

Each command runs as a fresh process (``subprocess.run``), warm-up first, and the
median wall time is reported. ``mlx`` runs the way its console script does
(``from mlx.cli import main``) with this checkout on PYTHONPATH. mlflow and a minimal
Hydra app are measured the same way when installed; they are never installed here.
"""

from __future__ import annotations

import compileall
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from benchmarks._common import REPO_ROOT, Row, Settings, paired_medians

__all__ = ["run"]

_MLX = [sys.executable, "-c", "import sys; from mlx.cli import main; sys.exit(main())"]

_HYDRA_APP = """
import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path=None)
def main(cfg: DictConfig) -> None:
    print(cfg)


if __name__ == "__main__":
    main()
"""


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    root = str(REPO_ROOT)
    return {**os.environ, "PYTHONPATH": root if not path else root + os.pathsep + path}


def _process(command: Sequence[str], cwd: Path) -> None:
    subprocess.run(
        list(command),
        cwd=cwd,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )


def _time(command: Sequence[str], settings: Settings, cwd: Path = REPO_ROOT) -> float:
    return paired_medians(lambda: _process(command, cwd), None, settings).ours


def run(settings: Settings) -> list[Row]:
    # An installed package has its bytecode compiled (pip does it at install); this
    # checkout may not, when PYTHONDONTWRITEBYTECODE is set, and compiling every
    # module at each start would be measured instead of mlx.
    compileall.compile_dir(str(REPO_ROOT / "mlx"), quiet=1)
    # start-up figures are short: more repetitions cost little and steady them
    many = Settings(settings.quick, max(settings.repeats, 11), settings.threads)
    rows: list[Row] = [
        Row(
            "startup",
            "python -c pass",
            "s",
            _time([sys.executable, "-c", "pass"], many),
            note="reference",
        ),
        Row(
            "startup",
            "python -c 'import numpy'",
            "s",
            _time([sys.executable, "-c", "import numpy"], many),
            note="reference",
        ),
        Row(
            "startup",
            "mlx --help",
            "s",
            _time([*_MLX, "--help"], many),
            target="<= 0.06",
        ),
        Row(
            "startup",
            "mlx run-experiment --dry-run (quickstart)",
            "s",
            _time(
                [
                    *_MLX,
                    "run-experiment",
                    "--dry-run",
                    "--config",
                    "examples/quickstart.yaml",
                ],
                many,
            ),
            target="<= 0.25",
        ),
    ]
    mlflow = shutil.which("mlflow")
    rows.append(
        Row(
            "startup",
            "mlflow --help",
            "s",
            None if mlflow is None else _time([mlflow, "--help"], many),
            note="not installed" if mlflow is None else "peer",
        )
    )
    hydra: float | None = None
    if importlib.util.find_spec("hydra") is not None:
        with tempfile.TemporaryDirectory() as tmp:
            app = Path(tmp) / "app.py"
            app.write_text(_HYDRA_APP)
            hydra = _time([sys.executable, str(app), "--help"], many, cwd=Path(tmp))
    rows.append(
        Row(
            "startup",
            "minimal Hydra app --help",
            "s",
            hydra,
            note="not installed" if hydra is None else "peer",
        )
    )
    return rows
