"""Reading and writing checkpoint directories, safely.

A checkpoint is a directory holding ``config.json`` (written last, it names the other
files with their SHA-256), ``model.safetensors`` and ``optimizer.safetensors``. Every
file goes through a temporary file and ``os.replace``, so a crash never leaves a half
written file under the final name. Nothing is unpickled: safetensors and JSON cannot
execute code when read.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from mlx.errors import CheckpointError

__all__: list = []

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_checkpoint(
    path: str | os.PathLike[str],
    config: dict[str, Any],
    tensors: Mapping[str, np.ndarray],
    optimizer_tensors: Mapping[str, np.ndarray],
    optimizer_metadata: Mapping[str, str],
) -> Path:
    """Write the three files; ``config`` gains ``format_version`` and ``files``."""
    from safetensors.numpy import save

    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, arrays, metadata in (
        (MODEL_FILE, tensors, {"format": "mlx"}),
        (OPTIMIZER_FILE, optimizer_tensors, dict(optimizer_metadata)),
    ):
        data = save(
            {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()},
            metadata=metadata,
        )
        _atomic_write(directory / name, data)
        files[name] = {"sha256": hashlib.sha256(data).hexdigest()}
    document = {"format_version": FORMAT_VERSION, **config, "files": files}
    try:
        text = json.dumps(document, indent=2, sort_keys=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"The model's configuration cannot be saved as JSON: {exc}."
        ) from exc
    _atomic_write(directory / CONFIG_FILE, (text + "\n").encode("utf-8"))
    return directory


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``config.json`` of a checkpoint directory."""
    file = Path(path) / CONFIG_FILE
    if not file.is_file():
        raise CheckpointError(
            f"No checkpoint at {str(path)!r}: {CONFIG_FILE} is missing."
        )
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{file} is corrupted: {exc}.") from exc
    if not isinstance(config, dict):
        raise CheckpointError(f"{file} is corrupted: expected a JSON object.")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{file} has checkpoint format version {version!r}; this version of mlx "
            f"reads version {FORMAT_VERSION}."
        )
    return config


def read_tensors(
    path: str | os.PathLike[str], name: str, config: Mapping[str, Any]
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors and metadata of one safetensors file, checked against its hash."""
    from safetensors.numpy import load

    file = Path(path) / name
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"Cannot read {file}: {exc.strerror or exc}.") from exc
    expected: str | None = (config.get("files") or {}).get(name, {}).get("sha256")
    if expected is None:
        raise CheckpointError(f"{Path(path) / CONFIG_FILE} does not list {name}.")
    if hashlib.sha256(data).hexdigest() != expected:
        raise CheckpointError(
            f"{file} is corrupted or truncated: its SHA-256 does not match "
            f"{CONFIG_FILE}."
        )
    try:
        tensors = load(data)
        metadata = _metadata(data)
    except Exception as exc:  # safetensors raises its own error type
        raise CheckpointError(
            f"{file} is not a valid safetensors file: {exc}."
        ) from exc
    for key, value in tensors.items():
        if value.dtype != np.float64:
            raise CheckpointError(
                f"{file}: tensor {key!r} is {value.dtype}, not float64."
            )
    return tensors, metadata


def _metadata(data: bytes) -> dict[str, str]:
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_len])
    return dict(header.get("__metadata__") or {})
