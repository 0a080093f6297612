"""Start-up time of whole processes: ``mlx --help``, a dry run, and other CLIs.

Each command runs as a fresh process (``subprocess.run``), warm-up first, timed back
to back with a bare ``python -c pass`` so that a busy machine weighs on both alike:
the row's ratio is the median of those pairs' ratios, its figure the median wall
time. ``mlx`` runs the way its console script does (``from mlx.cli import main``)
with this checkout on PYTHONPATH. The dry-run row also records, from one
``-X importtime`` run, the imports that cost it most. mlflow and a minimal Hydra app
are measured the same way when installed; they are never installed here.

Run only this group with ``python -m benchmarks --only startup``.
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

__all__ = ["heaviest_imports", "run"]

_PYTHON = [sys.executable, "-c", "pass"]
_MLX = [sys.executable, "-c", "import sys; from mlx.cli import main; sys.exit(main())"]
_DRY_RUN = ["run-experiment", "--dry-run", "--config", "examples/quickstart.yaml"]

# The targets are 45 ms for `mlx --help` and 200 ms for the dry run on a machine
# where a bare `python -c pass` takes 21 ms: as ratios to that, which a loaded
# machine leaves about where they are, 2.1 and 9.5.
_HELP_TARGET = "<= 2.1"
_DRY_RUN_TARGET = "<= 9.5"

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


def _against_python(
    setting: str,
    command: Sequence[str],
    settings: Settings,
    *,
    target: str = "",
    note: str = "",
    cwd: Path = REPO_ROOT,
) -> Row:
    """``command`` timed in pairs with a bare ``python -c pass``."""
    timing = paired_medians(
        lambda: _process(command, cwd), lambda: _process(_PYTHON, cwd), settings
    )
    return Row(
        "startup",
        setting,
        "s",
        timing.ours,
        peer=timing.peer,
        peer_name="python -c pass",
        target=target,
        note=note,
        paired_ratio=timing.ratio,
    )


def heaviest_imports(
    command: Sequence[str], count: int = 8, cwd: Path = REPO_ROOT
) -> list[tuple[str, int]]:
    """The ``count`` top-level imports of ``command`` (a Python command line) that
    took longest, with their cumulative microseconds, from one ``-X importtime``
    run; a package's figure includes what it imported itself."""
    done = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    found: list[tuple[str, int]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _self, cumulative, name = line[len("import time:") :].split("|")
        if not cumulative.strip().isdigit() or name.startswith("  "):
            continue  # the header, or an import made by another one
        found.append((name.strip(), int(cumulative)))
    return sorted(found, key=lambda item: -item[1])[:count]


def _peers(settings: Settings) -> list[Row]:
    """mlflow's and a minimal Hydra app's ``--help``, where installed."""
    mlflow = shutil.which("mlflow")
    if mlflow is None:
        mlflow_row = Row("startup", "mlflow --help", "s", None, note="not installed")
    else:
        mlflow_row = _against_python("mlflow --help", [mlflow, "--help"], settings)
    if importlib.util.find_spec("hydra") is None:
        hydra_row = Row(
            "startup", "minimal Hydra app --help", "s", None, note="not installed"
        )
    else:
        with tempfile.TemporaryDirectory() as tmp:
            app = Path(tmp) / "app.py"
            app.write_text(_HYDRA_APP)
            hydra_row = _against_python(
                "minimal Hydra app --help",
                [sys.executable, str(app), "--help"],
                settings,
                cwd=Path(tmp),
            )
    return [mlflow_row, hydra_row]


def run(settings: Settings) -> list[Row]:
    # An installed package has its bytecode compiled (pip does it at install); this
    # checkout may not, when PYTHONDONTWRITEBYTECODE is set, and compiling every
    # module at each start would be measured instead of mlx.
    compileall.compile_dir(str(REPO_ROOT / "mlx"), quiet=1)
    # start-up figures are short: more repetitions cost little and steady them
    many = Settings(settings.quick, max(settings.repeats, 11), settings.threads)
    bare = paired_medians(lambda: _process(_PYTHON, REPO_ROOT), None, many).ours
    rows = [
        Row("startup", "python -c pass", "s", bare, note="reference"),
        _against_python(
            "python -c 'import numpy'",
            [sys.executable, "-c", "import numpy"],
            many,
            note="reference",
        ),
        _against_python("mlx --help", [*_MLX, "--help"], many, target=_HELP_TARGET),
        _against_python(
            "mlx run-experiment --dry-run (quickstart)",
            [*_MLX, *_DRY_RUN],
            many,
            target=_DRY_RUN_TARGET,
        ),
    ]
    rows[-1].extra["heaviest_imports_us"] = dict(heaviest_imports([*_MLX, *_DRY_RUN]))
    return rows + _peers(many)
