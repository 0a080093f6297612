"""Crash-safe file and directory updates.

Every writer here leaves, after a crash at any instant, either the old version or the
new one on disk, never a torn mix:

* :func:`write_bytes_atomic`, :func:`write_text_atomic`, :func:`write_json_atomic`
  write a temporary file in the same directory, flush and fsync it, ``os.replace`` it
  over the target and fsync the directory, so the rename itself is durable. The
  temporary file is removed when anything fails.
* :func:`write_bytes_exclusive` does the same but never overwrites: it publishes the
  finished file with ``os.link``, which fails if the name is taken.
* :func:`publish_file` gives a file finished under a temporary name (a database
  another library built) its final name, unless the name is taken: the name is
  free, or holds an empty file, or the whole new file.
* :func:`append_line` appends one whole line with a single ``os.write`` on an
  ``O_APPEND`` descriptor, then fsyncs. A crash can only cut the last line short;
  readers skip such a line, and the next append starts on a fresh line.
* :func:`replace_dir_atomic` publishes a fully written temporary directory under its
  final name with one rename, or, when that name is taken, swaps the two names in one
  step (``renameat2(RENAME_EXCHANGE)``, Linux; elsewhere the old one is renamed aside
  first, leaving the name briefly unbound).
* :func:`update_symlink_atomic` repoints a symlink with a temporary link and
  ``os.replace``. Where symlinks are unavailable (some Windows setups) the "link" is a
  small text file holding the target's name instead; :func:`read_pointer` reads either.

Readers never need a lock: every name always refers to a complete file or directory.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any, Union

__all__ = [
    "append_line",
    "exchange_paths",
    "fsync_dir",
    "named",
    "os_error_text",
    "publish_file",
    "read_pointer",
    "replace_dir_atomic",
    "to_json",
    "update_symlink_atomic",
    "write_bytes_atomic",
    "write_bytes_exclusive",
    "write_json_atomic",
    "write_text_atomic",
]

PathLike = Union[str, "os.PathLike[str]"]

_BINARY = getattr(os, "O_BINARY", 0)  # Windows would otherwise translate newlines


def fsync_dir(directory: PathLike) -> None:
    """Flush a directory entry change (create, rename, unlink) to disk.

    A no-op where directories cannot be opened (Windows), where renames are durable
    once the call returns.
    """
    if sys.platform.startswith("win"):
        return
    try:
        fd = os.open(os.fspath(directory), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        # some file systems (e.g. certain network mounts) refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _mode_for(target: Path) -> int:
    # keep the permissions of the file being replaced; new files get the usual
    # rw-r--r-- rather than mkstemp's private rw-------
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return 0o644


def named(exc: OSError, path: PathLike) -> OSError:
    """``exc`` with ``path`` as its file name when it has none (``os.write`` and
    ``os.fsync`` failures, such as a full disk, name no file): the same class and
    errno, so callers that test either still can."""
    if exc.filename is not None:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), os.fspath(path))


def os_error_text(exc: OSError) -> str:
    """``'/path': No space left on device``: the path(s) ``exc`` names and why."""
    reason = exc.strerror or str(exc)
    names = [n for n in (exc.filename, exc.filename2) if n is not None]
    if not names:
        return reason
    shown = " -> ".join(repr(os.fsdecode(n)) for n in names)
    return f"{shown}: {reason}"


def _write_temp(target: Path, data: bytes, mode: int) -> Path:
    """Write ``data`` to a new fsynced temporary file next to ``target``; an
    OSError (a full disk, a read-only directory) names ``target``, not the
    temporary file."""
    try:
        return _write_temp_unnamed(target.parent, f".{target.name}.", data, mode)
    except OSError as exc:
        renamed = type(exc)(exc.errno, exc.strerror or str(exc), os.fspath(target))
        raise renamed from None


def _write_temp_unnamed(directory: Path, prefix: str, data: bytes, mode: int) -> Path:
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        _write_all(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(name)
        raise
    os.close(fd)
    return Path(name)


def _unlink_quietly(path: PathLike) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def write_bytes_atomic(path: PathLike, data: bytes) -> Path:
    """Replace ``path`` with ``data`` atomically; returns ``path`` as a Path.

    Parent directories must exist. On any failure the previous content of ``path``
    is untouched and no temporary file is left behind.
    """
    target = Path(path)
    tmp = _write_temp(target, bytes(data), _mode_for(target))
    try:
        os.replace(tmp, target)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    fsync_dir(target.parent)
    return target


def write_text_atomic(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Replace ``path`` with ``text`` atomically (see :func:`write_bytes_atomic`)."""
    return write_bytes_atomic(path, text.encode(encoding))


def _json_default(obj: Any) -> Any:
    # NumPy scalars and arrays, without importing NumPy here
    if hasattr(obj, "tolist"):
        return finite_json(obj.tolist())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def finite_json(obj: Any) -> Any:
    """``obj`` with every NaN and infinite float (NumPy's included) replaced by
    ``None``, inside dicts, lists and tuples: what strict JSON can hold."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return finite_json(obj.tolist())
    return obj


def to_json(obj: Any, indent: int | None = 2, sort_keys: bool = False) -> str:
    """Strict JSON text of ``obj``; NumPy scalars/arrays and paths are converted.

    NaN and infinities become ``null`` (RFC 8259 has no such numbers, and
    ``JSON.parse``, jq and msgspec reject Python's ``NaN``), so a diverged loss is
    recorded as a missing value. Every JSON file mlx writes goes through here.
    """
    return json.dumps(
        finite_json(obj),
        indent=indent,
        default=_json_default,
        ensure_ascii=False,
        allow_nan=False,
        sort_keys=sort_keys,
    )


def write_json_atomic(path: PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Replace ``path`` with ``obj`` as JSON (plus a final newline) atomically."""
    return write_text_atomic(path, to_json(obj, indent=indent) + "\n")


def write_bytes_exclusive(path: PathLike, data: bytes) -> Path:
    """Create ``path`` holding ``data``; raise FileExistsError if it exists.

    The content is written and fsynced under a temporary name first, then published
    with ``os.link`` (atomic, never overwrites), so a reader never sees a partial
    file. File systems without hard links fall back to ``O_CREAT | O_EXCL``, where a
    crash mid-write could leave a short file.
    """
    target = Path(path)
    tmp = _write_temp(target, bytes(data), 0o644)
    try:
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise
        except (OSError, NotImplementedError):
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o644)
            try:
                _write_all(fd, bytes(data))
                os.fsync(fd)
            finally:
                os.close(fd)
    finally:
        _unlink_quietly(tmp)
    fsync_dir(target.parent)
    return target


def _empty_file(path: Path) -> bool:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size == 0


def publish_file(tmp: PathLike, path: PathLike) -> bool:
    """Give the finished file ``tmp`` the name ``path``, unless that name holds
    something other than an empty file; whether it did. Published, ``path`` is the
    whole file at once (``os.link``, which never overwrites, or ``os.replace`` over
    an empty file), with the usual permissions (an empty file's own when it
    replaces one); ``tmp`` is left for the caller to remove."""
    target = Path(path)
    os.chmod(tmp, _mode_for(target))
    try:
        os.link(tmp, target)
    except FileExistsError:
        if not _empty_file(target):
            return False
        os.replace(tmp, target)
    except (OSError, NotImplementedError):  # a file system without hard links
        if os.path.lexists(target) and not _empty_file(target):
            return False
        os.replace(tmp, target)
    fsync_dir(target.parent)
    return True


def append_line(path: PathLike, line: str, encoding: str = "utf-8") -> None:
    """Append ``line`` plus a newline to ``path`` (created if missing), durably.

    The line goes out in one ``os.write`` on an ``O_APPEND`` descriptor, so it lands
    whole at the end of the file. If a previous crash left the file without a final
    newline, a newline is written first so the torn fragment stays on its own line
    instead of corrupting this one. ``line`` must not contain a newline.
    """
    if "\n" in line or "\r" in line:
        raise ValueError(
            f"append_line writes one line; got text with a newline: {line!r}"
        )
    data = (line + "\n").encode(encoding)
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | _BINARY
    fd = os.open(os.fspath(path), flags, 0o644)
    try:
        _append(fd, data)
    except OSError as exc:
        raise named(exc, path) from None
    finally:
        os.close(fd)


def _append(fd: int, data: bytes) -> None:
    size = os.fstat(fd).st_size
    if size > 0:
        os.lseek(fd, size - 1, os.SEEK_SET)
        if os.read(fd, 1) != b"\n":
            data = b"\n" + data
    _write_all(fd, data)
    os.fsync(fd)


def _fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (its content must be durable
    before the rename that publishes it)."""
    for dirpath, _dirnames, filenames in os.walk(root):
        for filename in filenames:
            file_path = os.path.join(dirpath, filename)
            if os.path.islink(file_path):
                continue
            fd = os.open(file_path, os.O_RDONLY | _BINARY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(dirpath)


# renameat2(2) on Linux: swap two names in one step (RENAME_EXCHANGE)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
# where libc has no renameat2 wrapper (glibc < 2.28), the raw system call number
_SYS_RENAMEAT2 = {"x86_64": 316, "aarch64": 276, "riscv64": 276, "i686": 353}
_UNSUPPORTED = ("ENOSYS", "EINVAL", "ENOTSUP", "EOPNOTSUPP")
_renameat2: Any = None


def _load_renameat2() -> Any:
    """A callable ``(old, new, flags) -> (result, errno)``, or False where the
    exchange is not available (not Linux, no ctypes)."""
    global _renameat2
    if _renameat2 is not None:
        return _renameat2
    _renameat2 = False
    if not sys.platform.startswith("linux"):
        return _renameat2
    try:
        import ctypes
        import platform
    except ImportError:
        return _renameat2
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return _renameat2
    function = getattr(libc, "renameat2", None)
    number = _SYS_RENAMEAT2.get(platform.machine())
    if function is None and (number is None or not hasattr(libc, "syscall")):
        return _renameat2

    def call(old: bytes, new: bytes, flags: int) -> tuple[int, int]:
        ctypes.set_errno(0)
        if function is not None:
            result = function(_AT_FDCWD, old, _AT_FDCWD, new, flags)
        else:
            result = libc.syscall(number, _AT_FDCWD, old, _AT_FDCWD, new, flags)
        return int(result), ctypes.get_errno()

    _renameat2 = call
    return _renameat2


def exchange_paths(first: PathLike, second: PathLike) -> bool:
    """Swap the names ``first`` and ``second`` atomically (both must exist, on one
    file system): ``renameat2(RENAME_EXCHANGE)`` on Linux. Returns False, changing
    nothing, where the system or file system cannot (other platforms, old kernels,
    some network file systems); raises OSError for any other failure."""
    call = _load_renameat2()
    if not call:
        return False
    result, code = call(os.fsencode(first), os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    unsupported = {
        getattr(errno, name) for name in _UNSUPPORTED if hasattr(errno, name)
    }
    if code in unsupported:
        return False
    raise OSError(code, os.strerror(code), os.fspath(first), None, os.fspath(second))


def replace_dir_atomic(tmp_dir: PathLike, final_dir: PathLike) -> Path:
    """Publish the fully written directory ``tmp_dir`` as ``final_dir``.

    Both must be on the same file system (put ``tmp_dir`` next to ``final_dir``).
    Its files are fsynced, then it is renamed in one step. If ``final_dir`` already
    exists, the two names are swapped in one step (:func:`exchange_paths`), so
    ``final_dir`` names the old or the new directory at every instant and never
    nothing; the old one, now under ``tmp_dir``'s name, is then removed (a crash
    before that leaves it under that temporary name). Where no exchange exists, the
    old directory is renamed aside to ``.old-<name>-<hex>`` first and the new one
    renamed in: for that short moment ``final_dir`` does not exist.
    """
    tmp = Path(tmp_dir)
    final = Path(final_dir)
    _fsync_tree(tmp)
    if final.exists() or final.is_symlink():
        try:
            swapped = exchange_paths(tmp, final)
        except FileNotFoundError:
            swapped = False  # the old one went meanwhile: a plain rename will do
        if swapped:
            fsync_dir(final.parent)
            _remove_tree(tmp)
            return final
    old: Path | None = None
    if final.exists() or final.is_symlink():
        old = final.with_name(f".old-{final.name}-{os.urandom(4).hex()}")
        os.rename(final, old)
    try:
        os.rename(tmp, final)
    except BaseException:
        if old is not None:
            os.rename(old, final)
        raise
    fsync_dir(final.parent)
    if old is not None:
        _remove_tree(old)
    return final


def _remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        _unlink_quietly(path)


def update_symlink_atomic(link: PathLike, target: str) -> bool:
    """Point ``link`` at ``target`` (a name relative to the link's directory).

    A temporary symlink is created and ``os.replace``-d over ``link``, so ``link``
    always resolves to the old or the new target. Where symlinks cannot be created,
    ``link`` becomes a text file holding ``target`` (written atomically); read either
    form with :func:`read_pointer`. Returns True for a symlink, False for the file.
    """
    link_path = Path(link)
    tmp = link_path.with_name(f".tmp-{link_path.name}-{os.urandom(4).hex()}")
    try:
        os.symlink(target, tmp)
    except (OSError, NotImplementedError):
        write_text_atomic(link_path, target + "\n")
        return False
    try:
        os.replace(tmp, link_path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    fsync_dir(link_path.parent)
    return True


def read_pointer(link: PathLike) -> str | None:
    """The target name stored by :func:`update_symlink_atomic`, or None if absent.

    Reads the symlink's target, or the first line of the fallback text file.
    """
    link_path = Path(link)
    if link_path.is_symlink():
        try:
            return os.readlink(link_path)
        except OSError:
            return None
    from mlx.errors import MLXError
    from mlx.utils.safe_io import POINTER_LIMIT, read_text_guarded

    try:
        # a FIFO, a device or a huge file in its place counts as no pointer
        text = read_text_guarded(link_path, POINTER_LIMIT, "pointer", missing_ok=True)
    except MLXError:
        return None
    text = (text or "").strip()
    return text.splitlines()[0] if text else None
