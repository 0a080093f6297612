"""What a run ran on: versions, platform, BLAS, command line and git state.

Everything here is best effort: a missing piece (no git, an old NumPy without
``show_config(mode="dicts")``, an uninstalled package) is recorded as ``null``, never
an error.
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping

from mlx._version import __version__
from mlx.utils.paths import repository_root

__all__ = ["collect_environment", "git_state"]

_GIT_TIMEOUT_S = 5.0


def git_state(directory: Path | None = None) -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` for the git checkout holding ``directory``.

    None when git is not installed, ``directory`` is not inside a repository, or git
    does not answer within a few seconds. ``dirty`` considers tracked files only, so
    untracked outputs do not mark every run dirty.
    """
    cwd = os.fspath(directory) if directory is not None else None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    dirty: bool | None = None
    if status.returncode == 0:
        dirty = bool(status.stdout.strip())
    return {"commit": commit.stdout.strip(), "dirty": dirty}


def _numpy_info() -> dict[str, Any]:
    try:
        import numpy as np
    except ImportError:
        return {"numpy": None, "blas": None}
    blas: Any = None
    try:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies") if isinstance(config, dict) else None
    except TypeError:
        # NumPy < 1.25 only prints its configuration
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            np.show_config()
        blas = buffer.getvalue()
    except Exception:  # an informational extra must never fail a run
        blas = None
    return {"numpy": np.__version__, "blas": blas}


def _threadpools() -> Any:
    try:
        import threadpoolctl
    except ImportError:
        return None
    try:
        return threadpoolctl.threadpool_info()
    except Exception:  # an informational extra must never fail a run
        return None


# mlx.DISTRIBUTION, spelled out: the package's __init__ is not imported from here
_DISTRIBUTION = "model-harness"

#: The environment variables that set BLAS and OpenMP threading, recorded as set
#: (null when unset).
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_CORETYPE",
)


def _requirement_name(requirement: str) -> str:
    """``numpy`` of ``numpy>=1.20.0``, ``pooch`` of ``pooch>=1.6; extra == "data"``."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return match.group(1) if match else requirement.strip()


def _extra_of(requirement: str) -> str | None:
    match = re.search(r"""extra\s*==\s*['"]([^'"]+)['"]""", requirement)
    return match.group(1) if match else None


def package_versions() -> dict[str, Any] | None:
    """``{"dependencies": {name: version}, "extras": {extra: {name: version or
    null}}, "installed_extras": [extra, ...]}`` from the installed distribution's
    metadata (``importlib.metadata``): every requirement of model-harness, with the
    installed version (null when that package is not installed). An extra counts as
    installed when all of its packages are. None when model-harness itself is not
    installed (a bare checkout on ``PYTHONPATH``)."""
    from importlib import metadata

    try:
        requirements = metadata.requires(_DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return None
    dependencies: dict[str, Any] = {}
    extras: dict[str, dict[str, Any]] = {}
    for requirement in requirements:
        name = _requirement_name(requirement)
        try:
            version: str | None = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = None
        extra = _extra_of(requirement)
        if extra is None:
            dependencies[name] = version
        else:
            extras.setdefault(extra, {})[name] = version
    installed = sorted(
        extra
        for extra, packages in extras.items()
        if all(v is not None for v in packages.values())
    )
    return {
        "dependencies": dependencies,
        "extras": extras,
        "installed_extras": installed,
    }


def _packages() -> Any:
    try:
        return package_versions()
    except Exception:  # an informational extra must never fail a run
        return None


def thread_settings() -> dict[str, str | None]:
    """The BLAS/OpenMP threading variables of :data:`THREAD_VARIABLES`, as set."""
    return {name: os.environ.get(name) for name in THREAD_VARIABLES}


def _torch_info() -> dict[str, Any] | None:
    """torch, torchvision and CUDA versions, when this process imported torch (a
    NumPy run never does, and is not made to here)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        vision = sys.modules.get("torchvision")
        return {
            "torch": torch.__version__,
            "torchvision": getattr(vision, "__version__", None),
            "cuda": torch.version.cuda,
            "cuda_available": bool(torch.cuda.is_available()),
            "threads": torch.get_num_threads(),
        }
    except Exception:  # an informational extra must never fail a run
        return None


def collect_environment(
    extra: Mapping[str, Any] | None = None,
    repository: Path | None = None,
) -> dict[str, Any]:
    """A JSON-serialisable description of the running environment.

    Keys: ``mlx``, ``python``, ``python_executable``, ``platform``, ``machine``,
    ``numpy``, ``blas`` (NumPy's build configuration), ``threadpools`` (threadpoolctl's
    ``threadpool_info()``: each BLAS/OpenMP library loaded, its version and thread
    count), ``thread_settings`` (see :func:`thread_settings`), ``packages`` (see
    :func:`package_versions`), ``torch`` (versions, when torch was imported; else null),
    ``argv``, ``cwd``, ``git`` (see :func:`git_state`, for ``repository`` or the
    repository root), ``hostname``, ``cpu_count``, and every key
    of ``extra`` (which wins on clashes).
    """
    info: dict[str, Any] = {
        "mlx": __version__,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": platform.node(),
        "cpu_count": os.cpu_count(),
    }
    info.update(_numpy_info())
    info["threadpools"] = _threadpools()
    info["thread_settings"] = thread_settings()
    info["packages"] = _packages()
    info["torch"] = _torch_info()
    info["argv"] = list(sys.argv)
    info["cwd"] = os.getcwd()
    info["git"] = git_state(repository if repository is not None else repository_root())
    if extra:
        info.update(extra)
    return info
