"""A torch run's model as ONNX (``torch.onnx.export``, the dynamo exporter) and as
TorchScript (``torch.jit.trace``): the run's module wrapped with its preprocessing
in front and its output activation behind, so the file maps raw features to what
``predict`` gives. Used by :mod:`mlx.outputs.onnx`, which checks both files."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np

from mlx.errors import RunError
from mlx.models.torch import require_torch

__all__ = ["onnx_bytes", "torchscript", "wrapped"]

_BATCH = 1024


def wrapped(model: Any, preprocessing: dict[str, Any]) -> Any:
    """The run's module on CPU in eval mode, as one module from raw float32 rows
    ``(batch, n_features)`` to ``predict``'s output (float32)."""
    torch = require_torch()
    module = model.module_.to("cpu").eval()
    shape = getattr(model, "_shape", None)
    task = model.task
    stats = preprocessing.get("standardize") or None
    scale = preprocessing.get("pixel_scale")

    class Exported(torch.nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.module = module
            if stats:
                self.register_buffer("mean", torch.tensor(stats["mean"]).float())
                self.register_buffer("std", torch.tensor(stats["std"]).float())

        def forward(self, x: Any) -> Any:
            if scale is not None:
                x = x * float(scale)
            if stats:
                x = (x - self.mean) / self.std
            if shape is not None:
                x = x.reshape(x.shape[0], *shape)
            y = self.module(x).float()
            if task == "classification":
                return torch.softmax(y, dim=1)
            if y.dim() == 2 and y.shape[1] == 1:
                return y[:, 0]
            return y

    return Exported().eval()


def onnx_bytes(
    model: Any,
    preprocessing: dict[str, Any],
    sample: np.ndarray,
    names: tuple[str, str],
) -> bytes:
    """The ONNX file of the wrapped module, its input and output named ``names``,
    its batch axis dynamic."""
    torch = require_torch()
    module = wrapped(model, preprocessing)
    x = torch.from_numpy(np.ascontiguousarray(sample, dtype=np.float32))
    batch = torch.export.Dim("batch")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module,
                (x,),
                input_names=[names[0]],
                output_names=[names[1]],
                dynamic_shapes=({0: batch},),
                dynamo=True,
                verbose=False,
            )
    except Exception as exc:  # the exporter's many error types
        raise RunError(
            f"torch.onnx.export cannot export the run's module: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            hint="try --torchscript",
        ) from None
    return bytes(program.model_proto.SerializeToString())


def torchscript(
    model: Any, preprocessing: dict[str, Any], raw: np.ndarray
) -> tuple[bytes, str, np.ndarray]:
    """The traced module's bytes, the runtime that checked them, and the outputs
    of the file, loaded back with ``torch.jit.load``, on ``raw``."""
    torch = require_torch()
    module = wrapped(model, preprocessing)
    sample = torch.from_numpy(np.ascontiguousarray(raw[:2], dtype=np.float32))
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            # torch.jit is deprecated in favour of torch.export; still what
            # TorchScript users load
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(module, (sample,), check_trace=False)
            torch.jit.save(traced, buffer)
            loaded = torch.jit.load(io.BytesIO(buffer.getvalue()), map_location="cpu")
    except Exception as exc:
        raise RunError(
            f"torch.jit.trace cannot trace the run's module: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}",
            hint="try --onnx",
        ) from None
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(raw), _BATCH):
            x = np.ascontiguousarray(raw[start : start + _BATCH], dtype=np.float32)
            outputs.append(loaded(torch.from_numpy(x)).double().numpy())
    return buffer.getvalue(), f"torch.jit {torch.__version__}", np.concatenate(outputs)
