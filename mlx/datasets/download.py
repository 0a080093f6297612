"""Fetch the standard MNIST and CIFAR archives into the dataset cache.

Downloads go through pooch (``pip install 'model-harness[data]'``), which streams to
a temporary file beside the target, checks the SHA-256 and only then renames it into
place: a killed or corrupt download never leaves a file that passes for data. CIFAR
tarballs are extracted member by member into a temporary directory (links, absolute
names and ``..`` are refused) that is renamed into place once complete.

The cache is ``$MLX_DATA_DIR`` (default ``$XDG_CACHE_HOME/mlx/datasets``, else
``~/.cache/mlx/datasets``)``/<name>/``; the
base URL of every archive is ``$MLX_DATA_URL`` when set (a mirror holding the
archives under their standard file names), else the official location.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import os
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import IO, Iterator, Sequence
from urllib.parse import urlsplit

from mlx.errors import (
    BackendUnavailableError,
    DatasetError,
    DownloadError,
    MLXError,
    map_os_errors,
)
from mlx.utils import environ

__all__ = [
    "cache_dir",
    "dataset_dir",
    "download",
    "fetch_problem",
    "imagenet_not_found",
    "layout_hint",
    "manual_instructions",
    "not_found",
    "safe_extract",
    "unusable_directory",
]

_DATA_EXTRA = "pip install 'model-harness[data]'"
_TIMEOUT_S = 60
#: how long the dry run (and a run, before it loads anything heavy) waits for the
#: download source to answer a HEAD request
_PROBE_TIMEOUT_S = 5
#: "HTTPConnection(host='h', port=443): " or "<... object at 0x...>: " before a cause
_CONNECTION_PREFIX = re.compile(r"^(?:<[^<>]*>|\w+\([^()]*\)): ")
_FETCH_HINT = "set 'download: true' in dataset.params to fetch them"
_WRITABLE = "set MLX_DATA_DIR (or dataset.path) to a directory you can write"


@dataclasses.dataclass(frozen=True)
class _Archive:
    filename: str
    sha256: str
    size: int
    # directory the tarball unpacks to; None for files used as they are
    extracts_to: str | None = None


# Sizes and SHA-256 digests as published in TensorFlow Datasets' checksum files
# (tensorflow_datasets/url_checksums/mnist.txt, cifar10.txt, cifar100.txt).
_ARCHIVES: dict[str, tuple[_Archive, ...]] = {
    "mnist": (
        _Archive(
            "train-images-idx3-ubyte.gz",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            9912422,
        ),
        _Archive(
            "train-labels-idx1-ubyte.gz",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            28881,
        ),
        _Archive(
            "t10k-images-idx3-ubyte.gz",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            1648877,
        ),
        _Archive(
            "t10k-labels-idx1-ubyte.gz",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            4542,
        ),
    ),
    "cifar10": (
        _Archive(
            "cifar-10-binary.tar.gz",
            "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
            170052171,
            extracts_to="cifar-10-batches-bin",
        ),
    ),
    "cifar100": (
        _Archive(
            "cifar-100-binary.tar.gz",
            "58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec",
            168513733,
            extracts_to="cifar-100-binary",
        ),
    ),
}

# torchvision's folders of the pickled CIFAR batches, which mlx does not read, and
# the files of the binary version, which it does
_TORCHVISION_CIFAR = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_CIFAR_FILES = {
    "cifar10": "data_batch_1.bin ... data_batch_5.bin and test_batch.bin",
    "cifar100": "train.bin and test.bin",
}

# Official locations (the MNIST mirror is the one TensorFlow Datasets uses).
_BASE_URLS = {
    "mnist": "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "cifar10": "https://www.cs.toronto.edu/~kriz/",
    "cifar100": "https://www.cs.toronto.edu/~kriz/",
}


def cache_dir() -> Path:
    """Where datasets are cached: ``$MLX_DATA_DIR`` when set; else
    ``$XDG_CACHE_HOME/mlx/datasets`` when ``XDG_CACHE_HOME`` is an absolute path
    (the XDG Base Directory rule: a relative one is ignored); else
    ``~/.cache/mlx/datasets``."""
    override = environ.data_dir()
    if override is not None:
        return override
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "mlx" / "datasets"
    return Path.home() / ".cache" / "mlx" / "datasets"


def dataset_dir(name: str, path: str | None) -> Path:
    """Where dataset ``name`` lives: ``path`` if given, else the cache's ``<name>/``."""
    return Path(path) if path else cache_dir() / name


def unusable_directory(root: Path) -> str | None:
    """Why ``root`` can be no dataset directory (it, or a directory above it, is a
    file or something else that is not a directory), or None."""
    for path in (root, *root.parents):
        try:
            if not path.exists():
                if path.is_symlink():
                    return f"{path} is a symbolic link that leads nowhere (or loops)"
                continue
        except OSError as exc:  # a NUL byte, a name too long
            return f"{path} cannot be looked at ({exc.strerror or exc})"
        if path.is_dir():
            return None
        what = "a file" if path.is_file() else "not a directory"
        if path == root:
            return f"{path} is {what}, not a directory"
        return f"{path} is {what}, not a directory, so {root} cannot exist"
    return None


def _base_url(name: str) -> str:
    return environ.data_url() or _BASE_URLS[name]


def manual_instructions(name: str, root: Path, *, fetching: bool = False) -> str:
    """How to put the files of ``name`` in place by hand; ``fetching`` when the
    config already has ``download: true`` (which is then not suggested again)."""
    archives = _ARCHIVES[name]
    urls = ", ".join(_base_url(name) + a.filename for a in archives)
    if name == "mnist":
        what = "the four MNIST files (.gz or uncompressed)"
    else:
        what = f"the extracted {archives[0].extracts_to}/ directory"
    if not fetching:
        return (
            f"Download {urls} and put {what} in {root}, or set 'download: true' "
            "(dataset.params) on a machine with network access."
        )
    host = urlsplit(_base_url(name)).hostname or _base_url(name)
    mirror = (
        f"check {environ.DATA_URL} ({environ.data_url()})"
        if environ.data_url()
        else f"set {environ.DATA_URL} to a mirror that holds them"
    )
    return (
        f"Download {urls} and put {what} in {root} by hand, run again where {host} "
        f"can be reached, or {mirror}."
    )


def layout_hint(name: str, root: Path, *, fetching: bool = False) -> str | None:
    """What to get instead when ``root`` holds ``name`` in torchvision's layout
    (``cifar-10-batches-py/``, the pickled CIFAR batches; ``MNIST/raw/``), or None."""
    if name == "mnist":
        for raw in (root / "MNIST" / "raw", root / "raw"):
            if _is_dir(raw):
                return (
                    f"{raw} is torchvision's MNIST layout: its files are the ones mlx "
                    f"reads; set dataset.path to {raw}"
                )
        return None
    pickled = _TORCHVISION_CIFAR[name]
    archive = _ARCHIVES[name][0]
    for folder in (root, root / pickled):
        if folder.name == pickled and _is_dir(folder):
            return (
                f"{folder} holds the Python (pickle) version of {name}, as torchvision "
                f"downloads it; mlx reads the binary version: get {archive.filename} "
                f"({_base_url(name)}{archive.filename}) and extract it, so that "
                f"{root}/{archive.extracts_to}/ holds {_CIFAR_FILES[name]}"
                + ("" if fetching else ", or set 'download: true' to have mlx fetch it")
            )
    return None


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long: no such directory
        return False


def not_found(
    name: str, root: Path, missing: Sequence[str], *, fetching: bool = False
) -> DatasetError:
    """The error for files of ``name`` that are not in ``root`` (``missing``
    names them); ``fetching`` when ``download: true`` is already set."""
    blocked = unusable_directory(root)
    if blocked:
        return DatasetError(
            f"{name} files not found: {blocked}.",
            hint="set MLX_DATA_DIR (or dataset.path) to the directory that holds "
            f"the {name} files",
        )
    layout = layout_hint(name, root, fetching=fetching)
    todo = manual_instructions(name, root, fetching=fetching)
    return DatasetError(
        f"{name} files not found in {root} (missing: {', '.join(missing)}). "
        + (f"{layout}." if layout else todo),
        hint=None if fetching else _FETCH_HINT,
    )


def imagenet_not_found(root: Path) -> DatasetError:
    """The error for an imagenet folder that is not at ``root``."""
    return DatasetError(
        f"imagenet not found: expected {root}/train/<class>/*.jpg and "
        f"{root}/val/<class>/*.jpg. Download it from image-net.org, arrange "
        "it as ImageFolder directories, and set dataset.path (or put it in "
        f"{root})."
    )


def fetch_problem(name: str, root: Path, *, probe: bool = True) -> MLXError | None:
    """Why ``download(name, root)`` could not fetch the files here, found without
    fetching or creating anything: pooch is not installed, ``root`` cannot be made
    or written, or (with ``probe``) an archive's URL does not answer a HEAD request
    within a few seconds. None when the download can go ahead."""
    if importlib.util.find_spec("pooch") is None:
        return _no_pooch(name, root)
    blocked = unusable_directory(root)
    if blocked:
        return DownloadError(
            f"cannot download {name} into {root}: {blocked}", hint=_WRITABLE
        )
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        return DownloadError(
            f"cannot download {name}: cannot create {root} ({existing} is not "
            "writable)",
            hint=_WRITABLE,
        )
    if not probe:
        return None
    for archive in _ARCHIVES[name]:
        url = _base_url(name) + archive.filename
        problem = _head(url)
        if problem is not None:
            return DownloadError(
                f"cannot download {name}: {url} {problem}. "
                + manual_instructions(name, root, fetching=True)
            )
    return None


def _head(url: str) -> str | None:
    """Why ``url`` does not answer a HEAD request within :data:`_PROBE_TIMEOUT_S`
    seconds (an FTP URL: a connection to its server), or None when it does."""
    import socket
    import urllib.error
    import urllib.request

    parts = urlsplit(url)
    try:
        if parts.scheme not in ("http", "https"):
            port = parts.port or socket.getservbyname(parts.scheme, "tcp")
            socket.create_connection(
                (parts.hostname or "", port), timeout=_PROBE_TIMEOUT_S
            ).close()
            return None
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=_PROBE_TIMEOUT_S):
            return None
    except urllib.error.HTTPError as exc:
        if exc.code in (405, 501):  # the server answers, only not to HEAD
            return None
        return f"answers HTTP {exc.code} ({exc.reason})"
    except urllib.error.URLError as exc:
        cause = exc.reason
        text = _reason(cause) if isinstance(cause, BaseException) else str(cause)
        return f"does not answer ({text})"
    except (TimeoutError, socket.timeout):
        return f"does not answer within {_PROBE_TIMEOUT_S} s"
    except OSError as exc:
        return f"does not answer ({_reason(exc)})"
    except ValueError as exc:  # a host name no request can carry (a label too long)
        return f"cannot be asked ({_reason(exc)})"


def download(name: str, root: Path) -> None:
    """Fetch (and for CIFAR extract) the archives of ``name`` into ``root``.

    Raises DownloadError (offline, HTTP error, interrupted transfer, checksum
    mismatch) with the manual alternative in the message, and
    BackendUnavailableError when pooch is not installed.
    """
    try:
        import pooch
    except ImportError:
        raise _no_pooch(name, root) from None
    import requests

    blocked = unusable_directory(root)
    if blocked:
        raise DownloadError(
            f"cannot download {name} into {root}: {blocked}",
            hint=_WRITABLE,
        )
    cannot = "cannot download {name}: cannot create {root} ({reason})"
    with map_os_errors(DownloadError, cannot, hint=_WRITABLE, name=name, root=root):
        root.mkdir(parents=True, exist_ok=True)
    for archive in _ARCHIVES[name]:
        url = _base_url(name) + archive.filename
        bar = _ProgressBar(archive.filename) if sys.stderr.isatty() else False
        try:
            with _quiet(pooch.get_logger()):
                pooch.retrieve(
                    url,
                    known_hash="sha256:" + archive.sha256,
                    fname=archive.filename,
                    path=root,
                    downloader=pooch.HTTPDownloader(
                        progressbar=bar, timeout=_TIMEOUT_S
                    ),
                )
        except requests.exceptions.RequestException as exc:
            raise DownloadError(
                f"Could not download {url}: {_reason(exc)}. "
                + manual_instructions(name, root, fetching=True)
            ) from None
        except OSError as exc:
            # the cache refused the write: read-only, full, permissions
            raise DownloadError(
                f"cannot write {archive.filename} into {root} ({exc.strerror or exc})",
                hint=_WRITABLE,
            ) from None
        except ValueError as exc:
            # pooch reports a SHA-256 mismatch as ValueError; the bad file is gone.
            raise DownloadError(
                f"{archive.filename} from {url} failed its SHA-256 check, so it was "
                f"discarded ({exc}). The transfer was corrupted or the mirror serves "
                f"a different file. {manual_instructions(name, root, fetching=True)}"
            ) from None
        if archive.extracts_to is not None:
            tarball = root / archive.filename
            safe_extract(tarball, root, archive.extracts_to)
            tarball.unlink()


def _no_pooch(name: str, root: Path) -> BackendUnavailableError:
    return BackendUnavailableError(
        "Downloading datasets needs pooch, which is not installed; install it "
        f"with: {_DATA_EXTRA}. {manual_instructions(name, root, fetching=True)}",
        hint=_DATA_EXTRA,
    )


def _reason(exc: BaseException) -> str:
    """The whole cause of a failed transfer, from the innermost error that says
    it (requests wraps urllib3's, which names the connection object first)."""
    cause: BaseException = exc
    while True:
        inner = getattr(cause, "reason", None)
        if not isinstance(inner, BaseException) and cause.args:
            inner = cause.args[0]
        if not isinstance(inner, BaseException):
            break
        cause = inner
    text = str(cause) or type(cause).__name__
    return _CONNECTION_PREFIX.sub("", text)


@contextlib.contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    # pooch logs every download to stderr; our progress bar (on a TTY) says enough
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def safe_extract(tarball: Path, root: Path, top: str) -> None:
    """Extract ``tarball`` into ``root/top`` atomically, refusing unsafe members.

    Only regular files and directories under ``top/`` are written; absolute names,
    ``..`` components, links and devices raise DownloadError. The members go to a
    temporary directory first, renamed to ``root/top`` only when all are written.
    """
    target = root / top
    staging = Path(tempfile.mkdtemp(prefix=f".{top}.", dir=root))
    try:
        with tarfile.open(tarball, "r:*") as tar:
            for member in tar:
                relative = _member_path(tarball, member, top)
                if relative is None:
                    continue
                destination = staging.joinpath(*relative.parts)
                if member.isdir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:  # pragma: no cover - regular files always have one
                    continue
                with source, open(destination, "wb") as out:
                    _copy(source, out)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DownloadError(f"Cannot extract {tarball}: {exc}.") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _member_path(
    tarball: Path, member: tarfile.TarInfo, top: str
) -> PurePosixPath | None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or "\\" in member.name:
        raise DownloadError(
            f"{tarball} holds an unsafe member name {member.name!r}; refusing to "
            "extract it."
        )
    if not (member.isfile() or member.isdir()):
        raise DownloadError(
            f"{tarball} holds {member.name!r}, which is not a regular file or "
            "directory (links and devices are refused)."
        )
    parts = [p for p in name.parts if p not in ("", ".")]
    if not parts or parts[0] != top:
        raise DownloadError(
            f"{tarball} holds {member.name!r} outside the expected {top}/ directory."
        )
    if len(parts) == 1:
        return None
    return PurePosixPath(*parts[1:])


def _copy(source: IO[bytes], out: IO[bytes]) -> None:
    for chunk in iter(lambda: source.read(1 << 20), b""):
        out.write(chunk)


class _ProgressBar:
    """The small progress-bar protocol pooch drives: total, update, reset, close."""

    def __init__(self, label: str, stream: IO[str] | None = None) -> None:
        self.label = label
        self.total = 0
        self.n = 0
        self._stream = stream if stream is not None else sys.stderr
        self._shown = -1

    def update(self, n: int) -> None:
        self.n += n
        percent = min(100, self.n * 100 // self.total) if self.total else 0
        if percent != self._shown:
            self._shown = percent
            done = min(self.n, self.total) if self.total else self.n
            self._stream.write(
                f"\r{self.label}: {percent:3d}% ({done / 1e6:.1f}/"
                f"{self.total / 1e6:.1f} MB)"
            )
            self._stream.flush()

    def reset(self) -> None:
        self.n = 0
        self._shown = -1

    def close(self) -> None:
        self._stream.write("\n")
        self._stream.flush()
