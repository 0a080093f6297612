"""Export a run's model to a file that runs without mlx: ONNX (every built-in model)
and TorchScript (torch models), each checked against the run's own model first.

The file's model takes the features as the run's data source gives them (raw: before
pixel scaling and standardization, which are inside the graph) as one input named
``input`` of shape ``(batch, n_features)``, and gives one output named ``output``:
what ``predict`` gives (class probabilities, shape ``(batch, n_classes)`` or
``(batch,)`` for one sigmoid output; values, ``(batch,)`` or ``(batch, n_outputs)``).
The batch axis is dynamic.

Every export runs a parity check before anything is written: the file's model
(onnxruntime for ONNX, ``torch.jit.load`` for TorchScript) and the run's model
predict the raw features of the run's validation split (the test split, then the
training split, when it is empty), and the largest absolute difference must stay
within :data:`TOLERANCE`. It is written, with the file, to ``<file>.parity.json``;
above the tolerance the export is refused and nothing is written. See
docs/design/export.md.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlx.errors import BackendUnavailableError, ModelError, RunError, map_os_errors
from mlx.experiment.evaluate import export_inputs
from mlx.models.facts import predictions
from mlx.runs.records import stored_record
from mlx.utils.atomic import write_bytes_atomic, write_json_atomic

__all__ = [
    "EXPORT_HINT",
    "FORMATS",
    "PARITY_SUFFIX",
    "TOLERANCE",
    "ExportedFile",
    "export_files",
    "raw_features",
]

#: the largest absolute difference between the file's outputs and the run's model's
TOLERANCE = 1e-4
#: the record of the parity check, beside the exported file
PARITY_SUFFIX = ".parity.json"
EXPORT_HINT = "pip install 'model-harness[export]'"
FORMATS = ("onnx", "torchscript")
#: the ONNX operator set the NumPy models' graphs are written in
OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "output"
_BATCH = 4096


@dataclass
class ExportedFile:
    """One file an export wrote, and its parity record."""

    format: str
    path: Path
    parity_path: Path
    parity: dict[str, Any]


def require(module: str, what: str) -> Any:
    """Import ``module`` (onnx, onnxruntime, onnxscript), or a
    BackendUnavailableError naming the ``export`` extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"{what} needs the {module!r} package of the `export` extra (onnx, "
            f"onnxscript, onnxruntime), which is not installed ({exc}); install it "
            f"with: {EXPORT_HINT}",
            hint=EXPORT_HINT,
        ) from None


def export_files(
    run: Any,
    targets: dict[str, str | os.PathLike[str]],
    *,
    checkpoint: str = "final",
    tolerance: float | None = None,
) -> list[ExportedFile]:
    """Export the model of ``run`` at ``checkpoint`` to each of ``targets``
    (``{"onnx": path, "torchscript": path}``, one or both), parity-checked; all or
    nothing: a file beyond the tolerance leaves every target unwritten."""
    limit = TOLERANCE if tolerance is None else float(tolerance)
    paths = {fmt: _target(fmt, path) for fmt, path in targets.items()}
    inputs = export_inputs(run, checkpoint)
    torch_model = getattr(inputs.model, "model_type", None) == "torch"
    if "torchscript" in paths and not torch_model:
        raise RunError(
            f"run {inputs.run.run_id} has a NumPy model "
            f"({type(inputs.model).__name__}); TorchScript export is for torch "
            "models only",
            hint="export it with --onnx instead",
        )
    for fmt in paths:  # every missing package is told before the model is traced
        _require_for(fmt, torch_model)
    preprocessing = _preprocessing(inputs.run)
    raw = raw_features(inputs.X, preprocessing)
    reference = np.asarray(predictions(inputs.model, inputs.X), dtype=np.float64)
    made = []
    for fmt, path in paths.items():
        data, runtime, exported = _build(fmt, inputs.model, preprocessing, raw)
        diff = _max_abs_diff(reference, exported)
        record = _record(fmt, path, inputs, checkpoint, diff, limit, runtime, raw)
        if not diff <= limit:  # NaN fails too
            raise RunError(
                f"the {_NAMES[fmt]} export of run {inputs.run.run_id} differs from "
                f"its model by {_diff_text(diff)} (largest absolute difference on "
                f"the {inputs.split} split, {len(raw)} samples), above the "
                f"tolerance {limit:.0e}; nothing was written",
                hint="the model uses an operation the exporter does not reproduce "
                "exactly; export the other format, or evaluate the run with mlx eval",
            )
        made.append((fmt, path, data, record))
    return [_write(fmt, path, data, record) for fmt, path, data, record in made]


_NAMES = {"onnx": "ONNX", "torchscript": "TorchScript"}


def _target(fmt: str, path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path, once its directory exists and it names no directory:
    found out before the model is loaded."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose from {FORMATS}")
    target = Path(path)
    if target.is_dir():
        raise RunError(f"cannot export to {os.fspath(target)!r}: it is a directory")
    parent = target.parent
    if not parent.is_dir():
        raise RunError(
            f"cannot export to {os.fspath(target)!r}: the directory "
            f"{os.fspath(parent)!r} does not exist"
        )
    return target


def _require_for(fmt: str, torch_model: bool) -> None:
    if fmt == "onnx":
        require("onnx", "ONNX export")
        require("onnxruntime", "ONNX export (its parity check)")
        if torch_model:  # torch.onnx.export's dynamo exporter writes with it
            require("onnxscript", "ONNX export of a torch model")


def _build(
    fmt: str, model: Any, preprocessing: dict[str, Any], raw: np.ndarray
) -> tuple[bytes, str, np.ndarray]:
    """The file's bytes, the runtime that checked them, and its outputs on ``raw``."""
    if getattr(model, "model_type", None) == "torch":
        from mlx.outputs import torch_export

        if fmt == "torchscript":
            return torch_export.torchscript(model, preprocessing, raw)
        data = torch_export.onnx_bytes(
            model,
            preprocessing,
            np.resize(raw, (2, raw.shape[1])),
            (INPUT_NAME, OUTPUT_NAME),
        )
        dtype = np.float32
    else:
        data = numpy_onnx(model, preprocessing)
        dtype = _numpy_dtype(model)
    ort = require("onnxruntime", "ONNX export (its parity check)")
    return data, f"onnxruntime {ort.__version__}", run_onnx(data, raw, dtype)


def run_onnx(data: bytes, raw: np.ndarray, dtype: Any) -> np.ndarray:
    """The outputs of the ONNX model ``data`` on ``raw``, by onnxruntime on CPU."""
    ort = require("onnxruntime", "ONNX export (its parity check)")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # its warnings are not the user's
    options.intra_op_num_threads = 1
    try:
        session = ort.InferenceSession(
            data, options, providers=["CPUExecutionProvider"]
        )
        parts = [
            session.run(None, {INPUT_NAME: raw[i : i + _BATCH].astype(dtype)})[0]
            for i in range(0, len(raw), _BATCH)
        ]
    except Exception as exc:  # onnxruntime's own errors are plain Exceptions
        raise RunError(f"onnxruntime cannot run the exported model: {exc}") from None
    return np.concatenate(parts).astype(np.float64)


def _preprocessing(run: Any) -> dict[str, Any]:
    stored = stored_record(run)
    value = stored.get("preprocessing") if isinstance(stored, dict) else None
    return value if isinstance(value, dict) else {}


def raw_features(X: Any, preprocessing: dict[str, Any]) -> np.ndarray:
    """The features ``X`` of a split as its source gave them: the run's
    standardization and pixel scaling undone (float64, rows flat)."""
    chunks = getattr(X, "chunks", None)
    if chunks is not None:  # a streamed image split
        X = np.concatenate([np.asarray(chunk) for chunk in chunks()])
    raw = np.array(X, dtype=np.float64).reshape(len(X), -1)
    stats = preprocessing.get("standardize")
    if stats:
        raw *= np.asarray(stats["std"], dtype=np.float64)
        raw += np.asarray(stats["mean"], dtype=np.float64)
    scale = preprocessing.get("pixel_scale")
    if scale is not None:
        raw /= float(scale)
    return raw


def _max_abs_diff(reference: np.ndarray, exported: np.ndarray) -> float:
    if reference.shape != exported.shape:
        raise RunError(
            f"the exported model's output has shape {exported.shape}, the run's "
            f"model's {reference.shape}"
        )
    if reference.size == 0:
        return 0.0
    return float(np.max(np.abs(reference - exported)))


def _diff_text(diff: float) -> str:
    return "NaN" if diff != diff else f"{diff:.3g}"


def _record(
    fmt: str,
    path: Path,
    inputs: Any,
    checkpoint: str,
    diff: float,
    limit: float,
    runtime: str,
    raw: np.ndarray,
) -> dict[str, Any]:
    """The parity record written beside the file (see docs/design/export.md)."""
    model = inputs.model
    torch_model = getattr(model, "model_type", None) == "torch"
    dtype = "float32" if torch_model else np.dtype(_numpy_dtype(model)).name
    classifier = inputs.task == "classification"
    return {
        "format": fmt,
        "file": path.name,
        "run_id": inputs.run.run_id,
        "checkpoint": checkpoint,
        "epoch": inputs.epoch,
        "step": inputs.step,
        "split": inputs.split,
        "n_samples": int(len(raw)),
        "max_abs_diff": diff,
        "tolerance": limit,
        "compared": "class probabilities" if classifier else "predicted values",
        "runtime": runtime,
        "input": {"name": INPUT_NAME, "dtype": dtype, "shape": ["batch", raw.shape[1]]},
        "output": {"name": OUTPUT_NAME, "dtype": dtype},
        "preprocessing_in_model": True,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }


def _write(fmt: str, path: Path, data: bytes, record: dict[str, Any]) -> ExportedFile:
    """The parity record, then the file: a file on disk always has its record."""
    parity_path = path.with_name(path.name + PARITY_SUFFIX)
    message = "cannot write the export {path!r}: {reason}"
    with map_os_errors(RunError, message, path=os.fspath(parity_path)):
        write_json_atomic(parity_path, record)
    with map_os_errors(RunError, message, path=os.fspath(path)):
        write_bytes_atomic(path, data)
    return ExportedFile(fmt, path, parity_path, record)


# --- the NumPy models' ONNX graphs ------------------------------------------------


def _numpy_dtype(model: Any) -> Any:
    return np.dtype(getattr(model, "_dtype", np.float64))


_ACTIVATIONS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}


def numpy_onnx(model: Any, preprocessing: dict[str, Any]) -> bytes:
    """An ONNX graph (``onnx.helper``) of a NumPy MLP or linear regression, its
    preprocessing first; ModelError for any other model."""
    onnx = require("onnx", "ONNX export")
    from onnx import TensorProto, helper, numpy_helper

    name = type(model).__name__
    if name not in ("MLP", "LinearRegression") or not hasattr(model, "params_"):
        raise ModelError(
            f"a {name} model cannot be exported to ONNX: only the built-in mlp and "
            "linear_regression models and torch models can"
        )
    dtype = _numpy_dtype(model)
    elem = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
    nodes: list[Any] = []
    inits: list[Any] = []

    def const(key: str, value: Any) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), key))
        return key

    current = _preprocessing_nodes(helper, nodes, const, preprocessing)
    layers = _layers(model)
    for i, (weight, bias) in enumerate(layers):
        out = f"z{i}"
        nodes.append(
            helper.make_node(
                "Gemm",
                [current, const(f"weight{i}", weight), const(f"bias{i}", bias)],
                [out],
                transB=1,
            )
        )
        current = out
        if i < len(layers) - 1:
            current = _activation(helper, nodes, const, model, current, i)
    current = _output_activation(helper, nodes, model, current)
    if layers[-1][0].shape[0] == 1:  # one output: (batch,), as predict gives
        axes = numpy_helper.from_array(np.asarray([1], dtype=np.int64), "axes")
        inits.append(axes)
        nodes.append(helper.make_node("Squeeze", [current, "axes"], ["squeezed"]))
        current = "squeezed"
        out_shape: list[Any] = ["batch"]
    else:
        out_shape = ["batch", int(layers[-1][0].shape[0])]
    nodes.append(helper.make_node("Identity", [current], [OUTPUT_NAME]))
    graph = helper.make_graph(
        nodes,
        f"mlx-{name}",
        [helper.make_tensor_value_info(INPUT_NAME, elem, ["batch", _width(layers)])],
        [helper.make_tensor_value_info(OUTPUT_NAME, elem, out_shape)],
        inits,
    )
    proto = helper.make_model(
        graph,
        producer_name="mlx",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    proto.ir_version = min(proto.ir_version, 8)  # what older runtimes read
    onnx.checker.check_model(proto)
    return bytes(proto.SerializeToString())


def _width(layers: list[tuple[np.ndarray, np.ndarray]]) -> int:
    return int(layers[0][0].shape[1])


def _layers(model: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(weight (out, in), bias (out,))`` of each dense layer."""
    params = model.params_
    if type(model).__name__ == "LinearRegression":
        return [
            (np.asarray(params["linear.weight"]), np.asarray(params["linear.bias"]))
        ]
    count = sum(1 for key in params if key.endswith(".weight"))
    return [
        (
            np.asarray(params[f"layers.{i}.weight"]),
            np.asarray(params[f"layers.{i}.bias"]),
        )
        for i in range(count)
    ]


def _preprocessing_nodes(
    helper: Any, nodes: list[Any], const: Any, preprocessing: dict[str, Any]
) -> str:
    """Pixel scaling, then standardization, as the run's data got them."""
    current = INPUT_NAME
    scale = preprocessing.get("pixel_scale")
    if scale is not None:
        nodes.append(
            helper.make_node("Mul", [current, const("pixel_scale", scale)], ["scaled"])
        )
        current = "scaled"
    stats = preprocessing.get("standardize")
    if stats:
        mean, std = const("mean", stats["mean"]), const("std", stats["std"])
        nodes.append(helper.make_node("Sub", [current, mean], ["centred"]))
        nodes.append(helper.make_node("Div", ["centred", std], ["standardized"]))
        current = "standardized"
    return current


def _activation(
    helper: Any, nodes: list[Any], const: Any, model: Any, current: str, i: int
) -> str:
    """A hidden layer's activation; tanh and sigmoid pre-activations clipped to
    ``activation_clip`` as the MLP clips them."""
    kind = model.activation
    clip = getattr(model, "activation_clip", None)
    if clip is not None and kind in ("tanh", "sigmoid"):
        low, high = const(f"low{i}", -float(clip)), const(f"high{i}", float(clip))
        nodes.append(helper.make_node("Clip", [current, low, high], [f"clipped{i}"]))
        current = f"clipped{i}"
    nodes.append(helper.make_node(_ACTIVATIONS[kind], [current], [f"a{i}"]))
    return f"a{i}"


def _output_activation(helper: Any, nodes: list[Any], model: Any, current: str) -> str:
    kind = getattr(model, "output_activation", None)
    if kind == "sigmoid":
        nodes.append(helper.make_node("Sigmoid", [current], ["probabilities"]))
        return "probabilities"
    if kind == "softmax":
        nodes.append(helper.make_node("Softmax", [current], ["probabilities"], axis=1))
        return "probabilities"
    return current
