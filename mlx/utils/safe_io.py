"""Reading and writing the files of a run without trusting what they are.

A run directory can be edited by hand, copied by other tools or damaged: a file may be
replaced by a directory, a FIFO, a link to ``/dev/zero`` or a sparse file of a
terabyte. Every read here therefore checks, on the open descriptor, that it is a
regular file no larger than the limit for its kind, and reads at most that many bytes:

* :func:`open_regular` stats the path, refuses anything but a regular file, opens it
  with ``O_NONBLOCK`` (a FIFO swapped in after the stat cannot block the open) and
  checks the descriptor again with ``fstat``, so what is read is what was checked.
* :func:`read_bytes_guarded`, :func:`read_text_guarded` and :func:`read_json_guarded`
  read through it, decode strictly as UTF-8 and parse, each failure a clear error
  naming the file; :func:`read_tail_guarded` reads the end of a log and
  :func:`read_csv_guarded` the columns of a CSV table (``predictions.csv``).

Every read of a file in a run or sweep directory goes through these (a test walks
the package's source and fails on any other ``open``, ``read_text`` or ``json.load``
that is not on its short list of justified exceptions).

Writes into a run must stay inside it:

* :func:`check_inside` resolves a path (every symlink on the way) and refuses it
  unless it lies inside the run directory.
* :func:`append_line_guarded` appends one line like
  :func:`mlx.utils.atomic.append_line`, but opens with ``O_NOFOLLOW`` and refuses a
  file that is not regular or has other hard links, so an append never lands in a
  file outside the run.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import stat
from pathlib import Path
from typing import Any, NoReturn, Type, Union

from mlx.errors import MLXError, RunError, map_os_errors

__all__ = [
    "DOCUMENT_LIMIT",
    "LOG_TAIL_LIMIT",
    "METRICS_LIMIT",
    "POINTER_LIMIT",
    "PREDICTIONS_LIMIT",
    "SUMMARY_LIMIT",
    "append_line_guarded",
    "check_appendable",
    "check_inside",
    "describe_mode",
    "open_regular",
    "parse_json",
    "read_bytes_guarded",
    "read_csv_guarded",
    "read_fd",
    "read_json_guarded",
    "read_tail_guarded",
    "read_text_guarded",
]

PathLike = Union[str, "os.PathLike[str]"]
ErrorType = Type[MLXError]

_MiB = 1024 * 1024
#: ``checkpoints/last`` when it is a text file rather than a symlink.
POINTER_LIMIT = 4096
#: ``summary.json``: status, times and a few metrics.
SUMMARY_LIMIT = 16 * _MiB
#: ``config.yaml``, ``data.json``, ``trainer_state.json``, the original config file.
DOCUMENT_LIMIT = 64 * _MiB
#: ``metrics.jsonl``: a line per epoch, a few hundred bytes each.
METRICS_LIMIT = 1024 * _MiB
#: ``predictions.csv``: a row per sample of the evaluated split.
PREDICTIONS_LIMIT = 256 * _MiB
#: the most read from the end of a log (``train.log``, a sweep point's log).
LOG_TAIL_LIMIT = _MiB

_BINARY = getattr(os, "O_BINARY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_NOCTTY = getattr(os, "O_NOCTTY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def describe_mode(mode: int) -> str:
    """``a directory``, ``a FIFO``, ... for an ``st_mode``."""
    for test, text in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return text
    return "not a regular file"


def _size_text(n: int) -> str:
    if n >= _MiB:
        return f"{n / _MiB:.0f} MiB"
    return f"{n} bytes"


def _fail(error: ErrorType, message: str, exc: BaseException | None = None) -> NoReturn:
    raise error(message) from exc


_CANNOT_READ = "Cannot read {name} ({what}): {reason}."
_CANNOT_WRITE = "Cannot write {name} ({what}): {reason}."


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def open_regular(
    path: PathLike,
    what: str,
    *,
    error: ErrorType = RunError,
    missing_ok: bool = False,
) -> int | None:
    """A read-only descriptor of ``path``, which must be a regular file.

    ``what`` names the file's role in messages (``"summary"``, ``"weights"``).
    Raises ``error`` for anything else (a directory, a FIFO, a device, a dangling or
    looping link, no permission); a missing file is an error too, or None with
    ``missing_ok``.
    """
    name = os.fspath(path)
    try:
        # stat first: devices and FIFOs are never even opened
        before = os.stat(name)
    except FileNotFoundError as exc:
        if missing_ok and not os.path.islink(name):
            return None
        _fail(error, f"Cannot read {name} ({what}): {_reason(exc)}.", exc)
    except OSError as exc:
        _fail(error, f"Cannot read {name} ({what}): {_reason(exc)}.", exc)
    except ValueError as exc:  # a NUL byte in the path
        _fail(error, f"Cannot read {name!r} ({what}): {exc}.", exc)
    if not stat.S_ISREG(before.st_mode):
        _fail(
            error,
            f"{name}: {what} is {describe_mode(before.st_mode)}, not a regular file.",
        )
    flags = os.O_RDONLY | _NONBLOCK | _NOCTTY | _CLOEXEC | _BINARY
    with map_os_errors(error, _CANNOT_READ, name=name, what=what):
        fd = os.open(name, flags)
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        os.close(fd)
        _fail(error, f"Cannot read {name} ({what}): {_reason(exc)}.", exc)
    if not stat.S_ISREG(mode):  # swapped between the stat and the open
        os.close(fd)
        _fail(error, f"{name}: {what} is {describe_mode(mode)}, not a regular file.")
    return fd


def read_fd(fd: int, n: int) -> bytes:
    """Up to ``n`` bytes from ``fd`` (fewer only at the end of the file)."""
    chunks = []
    left = n
    while left > 0:
        chunk = os.read(fd, min(left, 8 * _MiB))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_bytes_guarded(
    path: PathLike,
    max_bytes: int,
    what: str,
    *,
    error: ErrorType = RunError,
    missing_ok: bool = False,
) -> bytes | None:
    """The bytes of the regular file ``path``, refusing one over ``max_bytes``.

    At most ``max_bytes + 1`` bytes are ever read, so a file that grows while it is
    read (or lies about its size) still costs bounded memory and time.
    """
    fd = open_regular(path, what, error=error, missing_ok=missing_ok)
    if fd is None:
        return None
    name = os.fspath(path)
    too_big = (
        f"{name}: {what} is larger than the {_size_text(max_bytes)} allowed "
        "for it; it is not a file mlx wrote"
    )
    try:
        with map_os_errors(error, _CANNOT_READ, name=name, what=what):
            size = os.fstat(fd).st_size
            if size > max_bytes:
                _fail(error, f"{too_big} ({size} bytes).")
            data = read_fd(fd, max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        _fail(error, f"{too_big}.")
    return data


def read_text_guarded(
    path: PathLike,
    max_bytes: int,
    what: str,
    *,
    error: ErrorType = RunError,
    missing_ok: bool = False,
) -> str | None:
    """:func:`read_bytes_guarded`, decoded as UTF-8 (an error names the byte)."""
    data = read_bytes_guarded(path, max_bytes, what, error=error, missing_ok=missing_ok)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(
            error,
            f"{os.fspath(path)}: {what} is not UTF-8 text (byte {exc.start} is "
            f"0x{data[exc.start]:02x}).",
            exc,
        )


def read_tail_guarded(
    path: PathLike,
    max_bytes: int,
    what: str,
    *,
    error: ErrorType = RunError,
    missing_ok: bool = False,
) -> bytes | None:
    """The last ``max_bytes`` bytes of the regular file ``path`` (all of it when it
    is shorter): the end of a log, however long the log has grown."""
    fd = open_regular(path, what, error=error, missing_ok=missing_ok)
    if fd is None:
        return None
    name = os.fspath(path)
    try:
        with map_os_errors(error, _CANNOT_READ, name=name, what=what):
            size = os.fstat(fd).st_size
            os.lseek(fd, max(0, size - max_bytes), os.SEEK_SET)
            return read_fd(fd, max_bytes)
    finally:
        os.close(fd)


def read_csv_guarded(
    path: PathLike,
    max_bytes: int,
    what: str,
    columns: tuple[str, ...],
    *,
    error: ErrorType = RunError,
    missing_ok: bool = False,
) -> dict[str, list[str]] | None:
    """The ``columns`` of the CSV table in ``path`` (a header line, then a row a
    line), each a list of its cells as text; a column the header does not name is
    left out of the result. None if the file is missing, with ``missing_ok``.

    The file is read as :func:`read_text_guarded` reads it (a regular file of at
    most ``max_bytes``, UTF-8); a row that is not valid CSV, or has a different
    number of cells than the header, is an ``error`` naming the file and line.
    """
    text = read_text_guarded(path, max_bytes, what, error=error, missing_ok=missing_ok)
    if text is None:
        return None
    name = os.fspath(path)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, [])
        where = {c: header.index(c) for c in columns if c in header}
        found: dict[str, list[str]] = {c: [] for c in where}
        for row in reader:
            if len(row) != len(header):
                _fail(
                    error,
                    f"{name}:{reader.line_num}: {what} has {len(row)} cells in this "
                    f"row and {len(header)} in its header; it is not a file mlx "
                    "wrote.",
                )
            for column, index in where.items():
                found[column].append(row[index])
    except csv.Error as exc:
        _fail(
            error,
            f"{name}:{reader.line_num}: {what} is not valid CSV ({exc}).",
            exc,
        )
    return found


def parse_json(text: str | bytes, name: str, what: str, error: ErrorType) -> Any:
    """``json.loads(text)``, any failure an ``error`` naming ``name``."""
    try:
        return json.loads(text)
    except RecursionError as exc:
        _fail(
            error,
            f"{name}: {what} is corrupted, not valid JSON (nested too deeply).",
            exc,
        )
    except ValueError as exc:  # UnicodeDecodeError and int-size limits included
        _fail(error, f"{name}: {what} is corrupted, not valid JSON ({exc}).", exc)


def read_json_guarded(
    path: PathLike,
    max_bytes: int,
    what: str,
    *,
    error: ErrorType = RunError,
    missing_ok: bool = False,
) -> Any:
    """The parsed JSON document in ``path`` (None if missing, with ``missing_ok``)."""
    text = read_text_guarded(path, max_bytes, what, error=error, missing_ok=missing_ok)
    if text is None:
        return None
    return parse_json(text, os.fspath(path), what, error)


def check_inside(
    root: PathLike, path: PathLike, *, kind: str = "file", error: ErrorType = RunError
) -> Path:
    """``path``, after checking that it resolves inside the directory ``root``.

    Every symlink on the way is resolved (``os.path.realpath``); a path that ends up
    outside ``root`` is refused with ``error``, as is an existing entry of the wrong
    kind (``kind`` is ``"file"`` or ``"dir"``): nothing is then written.
    """
    name = os.fspath(path)
    try:
        base = os.path.realpath(os.fspath(root))
        real = os.path.realpath(name)
    except (OSError, ValueError) as exc:
        _fail(error, f"Cannot write {name!r}: {exc}.", exc)
    try:
        inside = os.path.commonpath([base, real]) == base
    except ValueError:  # different drives
        inside = False
    if not inside:
        _fail(
            error,
            f"Refusing to write {name}: it resolves to {real}, outside the run "
            f"directory {base} (a symbolic link inside the run points elsewhere).",
        )
    try:
        mode = os.stat(real).st_mode
    except OSError:
        return Path(name)  # not there yet: it is created where it was checked
    want_dir = kind == "dir"
    if (stat.S_ISDIR(mode) if want_dir else stat.S_ISREG(mode)) is False:
        wanted = "a directory" if want_dir else "a regular file"
        _fail(
            error,
            f"Refusing to write {name}: it is {describe_mode(mode)}, not {wanted}.",
        )
    return Path(name)


def _symlink_refusal(name: str, what: str) -> str:
    return (
        f"Refusing to write {name} ({what}): it is a symbolic link; "
        "mlx writes only regular files inside the run."
    )


def _append_refusal(name: str, what: str, info: os.stat_result) -> str | None:
    """Why an append into the file ``info`` describes is refused; None if it is not."""
    if stat.S_ISLNK(info.st_mode):
        return _symlink_refusal(name, what)
    if not stat.S_ISREG(info.st_mode):
        return (
            f"Refusing to write {name} ({what}): it is "
            f"{describe_mode(info.st_mode)}, not a regular file."
        )
    if info.st_nlink > 1:
        return (
            f"Refusing to write {name} ({what}): it has {info.st_nlink} hard "
            "links, so appending would change a file outside the run too."
        )
    return None


def check_appendable(path: PathLike, what: str, *, error: ErrorType = RunError) -> None:
    """Refuse now, writing nothing, what :func:`append_line_guarded` would refuse
    later: ``path`` a symbolic link, not a regular file, or with other hard links.
    A missing file is fine (the append creates it)."""
    name = os.fspath(path)
    try:
        info = os.lstat(name)
    except FileNotFoundError:
        return
    except OSError as exc:
        _fail(error, f"Cannot write {name} ({what}): {_reason(exc)}.", exc)
    refusal = _append_refusal(name, what, info)
    if refusal:
        _fail(error, refusal)


def append_line_guarded(
    path: PathLike, line: str, what: str, *, error: ErrorType = RunError
) -> None:
    """Append ``line`` plus a newline to ``path`` (created if missing), durably.

    As :func:`mlx.utils.atomic.append_line` (one ``os.write`` on an ``O_APPEND``
    descriptor, a torn last line kept on its own line), but the last component of
    ``path`` must not be a symlink (``O_NOFOLLOW``), and the file must be regular
    with no other hard link: an append would otherwise write into a file that lives
    elsewhere too.
    """
    if "\n" in line or "\r" in line:
        raise ValueError(
            f"append_line writes one line; got text with a newline: {line!r}"
        )
    name = os.fspath(path)
    data = (line + "\n").encode("utf-8")
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _NONBLOCK | _CLOEXEC
    try:
        fd = os.open(name, flags | _NOCTTY | _BINARY, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(name):
            _fail(error, _symlink_refusal(name, what), exc)
        if exc.errno == errno.ENXIO:  # a FIFO nobody reads
            _fail(error, f"Refusing to write {name} ({what}): it is a FIFO.", exc)
        if exc.errno == errno.EISDIR:
            _fail(error, f"Refusing to write {name} ({what}): it is a directory.", exc)
        _fail(error, f"Cannot write {name} ({what}): {_reason(exc)}.", exc)
    try:
        with map_os_errors(error, _CANNOT_WRITE, name=name, what=what):
            info = os.fstat(fd)
            refusal = _append_refusal(name, what, info)
            if refusal:
                _fail(error, refusal)
            if info.st_size > 0:
                os.lseek(fd, info.st_size - 1, os.SEEK_SET)
                if os.read(fd, 1) != b"\n":
                    data = b"\n" + data
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
    finally:
        os.close(fd)
