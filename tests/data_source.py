"""A loopback HTTP server that stands in for the dataset mirror (``MLX_DATA_URL``)
in tests: it answers every request with one status and records what it was asked."""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


class DataSource(ThreadingHTTPServer):
    """The server; ``requests`` lists ``(method, path)`` of each request.
    ``get_status`` answers GET requests, when set apart from ``status``."""

    def __init__(self, status: int, get_status: int | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = status
        self.get_status = status if get_status is None else get_status
        self.requests: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _Handler(BaseHTTPRequestHandler):
    server: DataSource

    def do_HEAD(self) -> None:  # noqa: N802 - the name http.server calls
        self._answer(self.server.status)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(self.server.get_status)

    def _answer(self, status: int) -> None:
        self.server.requests.append((self.command, self.path))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # quiet: the test asserts on what it recorded


@contextlib.contextmanager
def data_source(
    status: int = 200, get_status: int | None = None
) -> Iterator[DataSource]:
    """A server answering ``status`` to every request (``get_status`` to GET
    requests, when given) while the block runs."""
    server = DataSource(status, get_status)
    # a short poll: shutdown() waits for the loop to look (0.5 s by default)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port_url() -> str:
    """The URL of a loopback port that nothing listens on (connections refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
