"""The PyTorch backend: torchvision's image models and any ``torch.nn.Module``.

Importing this package does not import torch; :func:`require_torch` does, when an
image model or a custom module is actually asked for. The loop, the run store and
eval talk to :class:`~mlx.models.torch.model.TorchModel` through the
:class:`~mlx.models.BaseModel` interface only.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from mlx.errors import BackendUnavailableError

__all__ = ["INSTALL_HINT", "missing_backend", "require_torch"]

INSTALL_HINT = "pip install 'model-harness[torch]'"


def missing_backend() -> str | None:
    """Which of torch and torchvision cannot be imported here (None: both can).

    Cheap: asks the import system where the packages are, imports nothing.
    """
    missing = []
    for name in ("torch", "torchvision"):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return " and ".join(missing) or None


def require_torch() -> Any:
    """Import and return torch (with torchvision), or a BackendUnavailableError
    naming the install command."""
    try:
        import torch
        import torchvision  # noqa: F401 - the builders and weights live there
    except ImportError as exc:
        raise BackendUnavailableError(
            f"Image models and torch modules need PyTorch, which is not installed "
            f"({exc}); install it with: {INSTALL_HINT}",
            hint=INSTALL_HINT,
        ) from None
    return torch
