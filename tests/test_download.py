"""Downloads against a loopback HTTP server (never the internet)."""

from __future__ import annotations

import gzip
import hashlib
import io
import socket
import struct
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from mlx.config.experiment import DatasetConfig
from mlx.datasets import download as download_module
from mlx.datasets import load
from mlx.errors import BackendUnavailableError, DownloadError

pytest.importorskip("pooch")

_MNIST = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    return header + array.astype(np.uint8).tobytes()


class _Server:
    """Serves ``files`` by name; ``truncate`` names are cut off halfway."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append(name)
                body = server.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if name in server.truncate:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/data"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch, tmp_path):
    srv = _Server()
    monkeypatch.setenv("MLX_DATA_URL", srv.url)
    monkeypatch.setenv("MLX_DATA_DIR", str(tmp_path / "cache"))
    yield srv
    srv.close()


def _publish(monkeypatch, server, name, files, extracts_to=None):
    """Serve ``files`` and make them the expected archives of ``name``."""
    archives = []
    for filename, body in files.items():
        server.files[filename] = body
        digest = hashlib.sha256(body).hexdigest()
        archives.append(
            download_module._Archive(filename, digest, len(body), extracts_to)
        )
    monkeypatch.setitem(download_module._ARCHIVES, name, tuple(archives))


def _mnist_files(rng) -> dict:
    arrays = [
        rng.integers(0, 256, (20, 3, 3)),
        rng.integers(0, 10, 20),
        rng.integers(0, 256, (5, 3, 3)),
        rng.integers(0, 10, 5),
    ]
    return {f"{n}.gz": gzip.compress(_idx(a)) for n, a in zip(_MNIST, arrays)}


def _cfg(name, **params):
    return DatasetConfig(name, params={"download": True, **params})


def _cache_files(tmp_path: Path) -> list:
    root = tmp_path / "cache"
    return (
        sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        if root.exists()
        else []
    )


def test_mnist_download_verifies_and_loads(server, monkeypatch, tmp_path, rng):
    files = _mnist_files(rng)
    _publish(monkeypatch, server, "mnist", files)
    splits = load(_cfg("mnist", validation_split=0.0), seed=0)
    assert splits.sizes == (20, 0, 5) and splits.n_features == 9
    assert _cache_files(tmp_path) == sorted(["mnist"] + [f"mnist/{f}" for f in files])
    # a second load uses the cache, no new request
    before = len(server.requests)
    load(_cfg("mnist"), seed=0)
    assert len(server.requests) == before


def test_checksum_mismatch_keeps_nothing(server, monkeypatch, tmp_path, rng):
    files = _mnist_files(rng)
    _publish(monkeypatch, server, "mnist", files)
    server.files["train-labels-idx1-ubyte.gz"] = gzip.compress(b"tampered")
    with pytest.raises(DownloadError, match=r"train-labels-idx1-ubyte\.gz .*SHA-256"):
        load(_cfg("mnist"), seed=0)
    assert "mnist/train-labels-idx1-ubyte.gz" not in _cache_files(tmp_path)
    assert all(not Path(f).name.startswith("tmp") for f in _cache_files(tmp_path))


def test_interrupted_download_leaves_no_file(server, monkeypatch, tmp_path, rng):
    files = _mnist_files(rng)
    _publish(monkeypatch, server, "mnist", files)
    server.truncate.add("train-images-idx3-ubyte.gz")
    with pytest.raises(DownloadError, match=r"train-images-idx3-ubyte\.gz") as err:
        load(_cfg("mnist"), seed=0)
    assert "put the four MNIST files" in str(err.value)
    assert _cache_files(tmp_path) == ["mnist"]


def test_server_down_says_where_to_put_files(monkeypatch, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MLX_DATA_URL", f"http://127.0.0.1:{port}/")
    monkeypatch.setenv("MLX_DATA_DIR", str(tmp_path / "cache"))
    with pytest.raises(
        DownloadError, match=r"Could not download http://127\.0\.0\.1"
    ) as err:
        load(_cfg("cifar10"), seed=0)
    message = str(err.value)
    assert str(tmp_path / "cache" / "cifar10") in message
    assert "cifar-10-batches-bin/ directory" in message


def test_http_404_is_a_download_error(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        load(_cfg("mnist"), seed=0)


def _cifar_tarball(rng, top="cifar-10-batches-bin", extra=None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
        for name in names:
            labels = rng.integers(0, 10, 2)
            body = b"".join(
                bytes([int(lab)])
                + rng.integers(0, 256, 3072).astype(np.uint8).tobytes()
                for lab in labels
            )
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        for info, body in extra or ():
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return buffer.getvalue()


def test_cifar10_download_extracts_and_removes_archive(
    server, monkeypatch, tmp_path, rng
):
    tarball = _cifar_tarball(rng)
    _publish(
        monkeypatch,
        server,
        "cifar10",
        {"cifar-10-binary.tar.gz": tarball},
        extracts_to="cifar-10-batches-bin",
    )
    splits = load(_cfg("cifar10", validation_split=0.0), seed=0)
    assert splits.sizes == (10, 0, 2)
    files = _cache_files(tmp_path)
    assert "cifar10/cifar-10-binary.tar.gz" not in files
    assert "cifar10/cifar-10-batches-bin/test_batch.bin" in files
    assert not [f for f in files if Path(f).name.startswith(".")]


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


def _file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 1
    return info


@pytest.mark.parametrize(
    ("member", "body", "match"),
    [
        (_file("cifar-10-batches-bin/../../evil"), b"x", "unsafe member name"),
        (_file("/etc/evil"), b"x", "unsafe member name"),
        (_symlink("cifar-10-batches-bin/link", "/etc/passwd"), None, "links"),
        (_file("elsewhere/file"), b"x", "outside the expected"),
    ],
    ids=["dotdot", "absolute", "symlink", "other-top"],
)
def test_unsafe_tar_members_are_refused(tmp_path, rng, member, body, match):
    tarball = tmp_path / "a.tar.gz"
    tarball.write_bytes(_cifar_tarball(rng, extra=[(member, body)]))
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(DownloadError, match=match):
        download_module.safe_extract(tarball, root, "cifar-10-batches-bin")
    assert list(root.iterdir()) == []  # nothing half-extracted stays behind
    assert not (tmp_path / "evil").exists()


def test_truncated_tarball_is_a_download_error(tmp_path, rng):
    tarball = tmp_path / "a.tar.gz"
    tarball.write_bytes(_cifar_tarball(rng)[:5000])
    with pytest.raises(DownloadError, match="Cannot extract"):
        download_module.safe_extract(tarball, tmp_path, "cifar-10-batches-bin")
    assert not (tmp_path / "cifar-10-batches-bin").exists()


def test_without_pooch_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pooch", None)
    monkeypatch.setenv("MLX_DATA_DIR", str(tmp_path))
    with pytest.raises(BackendUnavailableError, match=r"pooch.*model-harness\[data\]"):
        load(_cfg("mnist"), seed=0)


def test_progress_bar_only_on_a_tty(server, monkeypatch, rng, capsys):
    _publish(monkeypatch, server, "mnist", _mnist_files(rng))
    load(_cfg("mnist"), seed=0)
    assert capsys.readouterr().err == ""  # captured stderr is not a TTY
    stream = io.StringIO()
    bar = download_module._ProgressBar("file.gz", stream)
    bar.total = 2_000_000
    bar.update(1_000_000)
    bar.update(1_000_000)
    bar.close()
    assert " 50% (1.0/2.0 MB)" in stream.getvalue()
    assert stream.getvalue().endswith("100% (2.0/2.0 MB)\n")


def test_published_checksums_are_well_formed():
    for archives in download_module._ARCHIVES.values():
        for archive in archives:
            assert len(archive.sha256) == 64
            int(archive.sha256, 16)
            assert archive.size > 1000
