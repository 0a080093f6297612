"""Reading and writing checkpoint directories, safely.

A checkpoint is a directory holding ``config.json`` (written last, it names the other
files with their SHA-256), ``model.safetensors`` and ``optimizer.safetensors``. Every
file goes through :func:`mlx.utils.atomic.write_bytes_atomic` (a temporary file,
``os.replace``, then an fsync of the directory), so a crash never leaves a half
written file under the final name, and files get mode 0644 (less the umask) as every
other file of a run. Nothing is unpickled: safetensors and JSON cannot
execute code when read.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from mlx.errors import CheckpointError, map_os_errors
from mlx.utils.atomic import write_bytes_atomic
from mlx.utils.safe_io import open_regular, parse_json, read_fd, read_json_guarded

__all__: list = []

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
# a checkpoint's config.json: hyperparameters and architecture, a few KiB
CONFIG_LIMIT = 16 * 1024 * 1024
# the ``__metadata__`` of every model.safetensors this package writes: a tag no other
# library uses ("mlx" is what Apple's MLX writes, and loaders such as transformers
# take such files for Apple MLX ones), and the checkpoint format version
FORMAT_TAG = "model-harness"
# tags that older versions wrote and that are still read: "mlx" (NumPy models) and
# "pt" (PyTorch models)
LEGACY_TAGS = ("mlx", "pt")


def weights_metadata(backend: str) -> dict[str, str]:
    """The safetensors metadata of a model's weights file."""
    return {
        "format": FORMAT_TAG,
        "format_version": str(FORMAT_VERSION),
        "backend": backend,
    }


def check_weights_metadata(file: Path, metadata: Mapping[str, str]) -> None:
    """Refuse a weights file whose ``format`` tag says another library wrote it
    (a file without a tag, or with this package's tag old or new, is read)."""
    tag = metadata.get("format")
    if tag is not None and tag != FORMAT_TAG and tag not in LEGACY_TAGS:
        raise CheckpointError(
            f"{file} was not written by model-harness: its safetensors metadata "
            f"says format {_short(tag)}."
        )


# the safetensors format's own limit on its JSON header
_MAX_HEADER = 100 * 1024 * 1024


def write_checkpoint(
    path: str | os.PathLike[str],
    config: dict[str, Any],
    tensors: Mapping[str, np.ndarray],
    optimizer_tensors: Mapping[str, np.ndarray],
    optimizer_metadata: Mapping[str, str],
) -> Path:
    """Write the three files; ``config`` gains ``format_version`` and ``files``."""
    from safetensors.numpy import save

    contents = {}
    for name, arrays, metadata in (
        (MODEL_FILE, tensors, weights_metadata("numpy")),
        (OPTIMIZER_FILE, optimizer_tensors, dict(optimizer_metadata)),
    ):
        contents[name] = save(
            {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()},
            metadata=metadata,
        )
    return write_checkpoint_files(path, config, contents)


def canonical_safetensors(data: bytes) -> bytes:
    """``data`` (a safetensors file) with its ``__metadata__`` keys in sorted order.

    safetensors keeps metadata in a hash map, so a file with more than one metadata
    key comes out in a different key order from one process to the next; sorted,
    the same weights give the same bytes every time. The header keeps its length
    (reordering changes no character), so the tensor data does not move.
    """
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or len(metadata) < 2:
        return data
    header["__metadata__"] = dict(sorted(metadata.items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > length:  # not the compact JSON safetensors writes: leave it be
        return data
    return data[:8] + text.ljust(length, b" ") + data[8 + length :]


def write_checkpoint_files(
    path: str | os.PathLike[str], config: dict[str, Any], contents: Mapping[str, bytes]
) -> Path:
    """Write each ``name -> bytes`` of ``contents``, then ``config.json`` listing
    them with their SHA-256 (``config`` gains ``format_version`` and ``files``)."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, data in contents.items():
        if name.endswith(".safetensors"):
            data = canonical_safetensors(data)
        write_bytes_atomic(directory / name, data)
        files[name] = {"sha256": hashlib.sha256(data).hexdigest()}
    document = {"format_version": FORMAT_VERSION, **config, "files": files}
    try:
        text = json.dumps(document, indent=2, sort_keys=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"The model's configuration cannot be saved as JSON: {exc}."
        ) from exc
    write_bytes_atomic(directory / CONFIG_FILE, (text + "\n").encode("utf-8"))
    return directory


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``config.json`` of a checkpoint directory."""
    file = Path(path) / CONFIG_FILE
    if not os.path.lexists(file):
        raise CheckpointError(
            f"No checkpoint at {str(path)!r}: {CONFIG_FILE} is missing."
        )
    config = read_json_guarded(
        file, CONFIG_LIMIT, "the checkpoint's config", error=CheckpointError
    )
    if not isinstance(config, dict):
        raise CheckpointError(f"{file} is corrupted: expected a JSON object.")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{file} has checkpoint format version {_short(version)}; this version "
            f"of mlx reads version {FORMAT_VERSION}."
        )
    files = config.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in files.values()
    ):
        raise CheckpointError(
            f"{file} is corrupted: 'files' must map each file name to its "
            '{"sha256": ...}.'
        )
    return config


def read_tensors(
    path: str | os.PathLike[str], name: str, config: Mapping[str, Any]
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors and metadata of one safetensors file, checked against its hash."""
    from safetensors.numpy import load

    file = Path(path) / name
    data, metadata = read_checked_bytes(path, name, config)
    try:
        tensors = load(data)
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


def read_checked_bytes(
    path: str | os.PathLike[str], name: str, config: Mapping[str, Any]
) -> tuple[bytes, dict[str, str]]:
    """The bytes and metadata of the safetensors file ``name`` of a checkpoint,
    through the guards of :func:`read_safetensors` and checked against the SHA-256
    that ``config.json`` lists."""
    file = Path(path) / name
    entry = (config.get("files") or {}).get(name)
    expected = entry.get("sha256") if isinstance(entry, Mapping) else None
    if not isinstance(expected, str):
        raise CheckpointError(f"{Path(path) / CONFIG_FILE} does not list {name}.")
    what = "the weights file" if name == MODEL_FILE else "the optimizer state"
    data, metadata = read_safetensors(file, what)
    if hashlib.sha256(data).hexdigest() != expected:
        raise CheckpointError(
            f"{file} is corrupted or truncated: its SHA-256 does not match "
            f"{CONFIG_FILE}."
        )
    if name == MODEL_FILE:
        check_weights_metadata(file, metadata)
    return data, metadata


def weights_limit() -> int:
    """The largest weights file read: this machine's physical memory (64 GiB when
    it cannot be told), since the whole file is held in memory."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        page_size = os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return 64 * 1024**3
    if pages <= 0 or page_size <= 0:
        return 64 * 1024**3
    return int(pages) * int(page_size)


def read_safetensors(
    file: Path, what: str = "the weights file"
) -> tuple[bytes, dict[str, str]]:
    """The bytes of the safetensors file ``file`` and its ``__metadata__``.

    Before the tensor data is read, the file must be a regular file no larger than
    :func:`weights_limit`, and its header (an 8-byte length, then JSON) must fit the
    file and describe exactly the bytes that follow it; so a device, a FIFO, a
    truncated file or a header that claims terabytes fails at once, in bounded
    memory and time. ``what`` is the file's role, as messages name it.
    """
    fd = open_regular(file, what, error=CheckpointError)
    assert fd is not None
    try:
        unreadable = "Cannot read {file} ({what}): {reason}."
        with map_os_errors(CheckpointError, unreadable, file=file, what=what):
            head, header_bytes, header, body, size = _read_parts(fd, file, what)
    finally:
        os.close(fd)
    data = head + header_bytes + body
    if len(data) != size:
        raise CheckpointError(
            f"{file} changed while it was read ({len(data)} of {size} bytes)."
        )
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(v, str) for v in metadata.values()
    ):
        raise CheckpointError(
            f"{file} is not a valid safetensors file: its __metadata__ must map "
            "names to strings."
        )
    return data, dict(metadata)


def _read_parts(
    fd: int, file: Path, what: str
) -> tuple[bytes, bytes, dict[str, Any], bytes, int]:
    """(length bytes, header bytes, parsed header, tensor bytes, file size) of the
    open safetensors file ``fd``, each checked against the others."""
    size = os.fstat(fd).st_size
    limit = weights_limit()
    if size > limit:
        raise CheckpointError(
            f"{file}: {what} is {size} bytes, more than this machine's "
            f"memory ({limit} bytes); it cannot be loaded."
        )
    if size < 8:
        raise CheckpointError(
            f"{file} is corrupted or truncated: {size} bytes, too short for a "
            "safetensors header."
        )
    head = read_fd(fd, 8)
    header_len = int.from_bytes(head, "little")
    if header_len < 2 or header_len > min(size - 8, _MAX_HEADER):
        raise CheckpointError(
            f"{file} is corrupted or truncated: its header claims "
            f"{header_len} bytes, but the file holds {size - 8} after the length "
            f"(and a header may hold at most {_MAX_HEADER})."
        )
    header_bytes = read_fd(fd, header_len)
    header = parse_json(header_bytes, os.fspath(file), "the header", CheckpointError)
    end = _data_end(file, header)
    if 8 + header_len + end != size:
        raise CheckpointError(
            f"{file} is corrupted or truncated: its header describes "
            f"{8 + header_len + end} bytes, but the file has {size}."
        )
    body = read_fd(fd, size - 8 - header_len)
    return head, header_bytes, header, body, size


def _data_end(file: Path, header: Any) -> int:
    """Where the last tensor of a parsed safetensors header ends (0 for none)."""
    if not isinstance(header, dict):
        raise CheckpointError(
            f"{file} is not a valid safetensors file: its header is not a JSON object."
        )
    end = 0
    for key, info in header.items():
        if key == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(type(o) is int for o in offsets)
            and 0 <= offsets[0] <= offsets[1]
        ):
            raise CheckpointError(
                f"{file} is not a valid safetensors file: tensor {_short(key)} has "
                f"no valid data_offsets."
            )
        end = max(end, offsets[1])
    return end


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
