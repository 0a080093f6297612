"""Where a torch model runs and how precisely: two settings, resolved once.

``training.device`` is ``auto`` (cuda, then mps, else cpu), ``cpu``, ``cuda``,
``cuda:N`` or ``mps``; ``training.precision`` is ``"32"``, ``"bf16-mixed"`` (autocast
to bfloat16, weights stay float32) or ``"16-mixed"`` (autocast to float16 with a
gradient scaler, CUDA only). :func:`resolve` turns them into a :class:`Placement`
that the model consults; nothing else branches on the device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from typing import Any

from mlx.errors import ModelError
from mlx.models.torch import require_torch
from mlx.utils import environ

__all__ = [
    "DEVICE_PATTERN",
    "PRECISIONS",
    "Placement",
    "configure_threads",
    "device_problem",
    "resolve",
]

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,3})?)$")
PRECISIONS = ("32", "bf16-mixed", "16-mixed")


def _available(torch: Any, device: str) -> str | None:
    """Why ``device`` is not on this machine (None when it is)."""
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            return f"device {device!r} is not available: this machine has no CUDA GPU"
        index = int(device.partition(":")[2] or 0)
        count = torch.cuda.device_count()
        if index >= count:
            return (
                f"device {device!r} is not available: this machine has {count} "
                f"CUDA GPU(s), cuda:0 to cuda:{count - 1}"
            )
    if device == "mps" and not _mps(torch):
        return "device 'mps' is not available on this machine"
    return None


def _mps(torch: Any) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _auto(torch: Any) -> str:
    if torch.cuda.is_available():
        return "cuda"
    if _mps(torch):
        return "mps"
    return "cpu"


def device_problem(device: str, precision: str) -> tuple[str, str] | None:
    """``(field, message)`` when the pair cannot run here, else None.

    field is ``"device"`` or ``"precision"``. Imports torch only when the answer
    depends on the hardware (any device but cpu, or 16-mixed).
    """
    if not DEVICE_PATTERN.match(device):
        return "device", (
            f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps"
        )
    if precision not in PRECISIONS:
        return "precision", (
            f"unknown precision {precision!r}; use '32', 'bf16-mixed' or '16-mixed'"
        )
    if device == "cpu" and precision != "16-mixed":
        return None
    torch = require_torch()
    concrete = _auto(torch) if device == "auto" else device
    why = _available(torch, concrete)
    if why:
        return "device", why
    if precision == "16-mixed" and not concrete.startswith("cuda"):
        return "precision", (
            f"precision '16-mixed' needs a CUDA device; this run is on {concrete!r} "
            "(use 'bf16-mixed' or '32')"
        )
    return None


@dataclasses.dataclass(frozen=True)
class Placement:
    """A resolved device and precision.

    ``autocast_dtype`` is None for full precision; ``scaled`` says whether the
    backward pass goes through a gradient scaler (float16 only).
    """

    device: Any  # torch.device
    precision: str
    autocast_dtype: Any
    scaled: bool

    def autocast(self) -> Any:
        """The context the forward pass runs in."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        torch = require_torch()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def grad_scaler(self) -> Any:
        """A fresh GradScaler for float16, else None."""
        if not self.scaled:
            return None
        torch = require_torch()
        return torch.amp.GradScaler(self.device.type)

    def describe(self) -> dict[str, Any]:
        """What environment.json records about the placement."""
        torch = require_torch()
        import torchvision

        name = str(self.device)
        if self.device.type == "cuda":
            name += f" ({torch.cuda.get_device_name(self.device)})"
        return {
            "device": name,
            "precision": self.precision,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "cuda": torch.version.cuda,
            "cudnn": (
                torch.backends.cudnn.version()
                if torch.backends.cudnn.is_available()
                else None
            ),
            "torch_threads": torch.get_num_threads(),
        }


def resolve(device: str, precision: str) -> Placement:
    """The placement of ``device``/``precision``; ModelError when impossible here."""
    problem = device_problem(device, precision)
    if problem:
        raise ModelError(f"training.{problem[0]}: {problem[1]}")
    torch = require_torch()
    concrete = torch.device(_auto(torch) if device == "auto" else device)
    if concrete.type == "cuda" and concrete.index is None:
        concrete = torch.device("cuda", torch.cuda.current_device())
    dtype = {"32": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
    return Placement(concrete, precision, dtype[precision], precision == "16-mixed")


_threads_set = False


def configure_threads() -> None:
    """Once per process: torch's CPU threads from ``MLX_NUM_THREADS`` or
    ``OMP_NUM_THREADS``, else the CPUs this process may run on (torch's own
    default counts every core of the machine, even those a container or
    ``taskset`` keeps it from)."""
    global _threads_set
    if _threads_set:
        return
    _threads_set = True
    torch = require_torch()
    # MLX_NUM_THREADS is ours and checked (an error when not a count); OMP's is
    # OpenMP's own syntax (it may be a list), taken only when it is a plain count
    count = environ.num_threads()
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if count is None and omp.isascii() and omp.isdigit():
        count = int(omp) if 1 <= int(omp) <= environ.MAX_THREADS else None
    if count is not None:
        torch.set_num_threads(count)
        return
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    torch.set_num_threads(max(min(cpus, torch.get_num_threads()), 1))
