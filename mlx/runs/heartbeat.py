"""A run's heartbeat: a daemon thread that refreshes ``heartbeat_at`` in the run's
summary, so that readers can tell a live run from a lost one."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from mlx.errors import RunError
from mlx.runs.summary import DEFAULT_HEARTBEAT_INTERVAL
from mlx.utils.values import is_number

__all__ = ["Beating", "Heartbeat"]


class Beating(Protocol):
    """What a heartbeat needs of a run (a :class:`~mlx.runs.store.RunDir` is one)."""

    run_id: str

    def heartbeat(self, **fields: Any) -> dict[str, Any]: ...


class Heartbeat:
    """Refresh a run's heartbeat from a daemon thread every ``interval`` seconds.

    ::

        with Heartbeat(run, interval=10):
            train(...)

    Records ``heartbeat_interval`` in the summary so readers know when the run is
    stale. Summary writes share the run's lock with the training thread, and every
    write is an atomic replace, so the file is never torn. A failing heartbeat write
    (disk full, ...) never stops training: the exception is kept in ``last_error``.
    """

    def __init__(
        self, run: Beating, interval: float = DEFAULT_HEARTBEAT_INTERVAL
    ) -> None:
        if not is_number(interval) or not interval > 0:
            raise RunError(
                "The 'interval' parameter of Heartbeat must be a number of seconds "
                f"> 0; got {interval!r}."
            )
        self.run = run
        self.interval = float(interval)
        self.last_error: BaseException | None = None
        self.beats = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Heartbeat:
        """Beat once now, then start the thread. Returns self."""
        if self._thread is not None:
            return self
        self._stop.clear()
        self._beat(heartbeat_interval=self.interval)
        self._thread = threading.Thread(
            target=self._loop, name=f"heartbeat-{self.run.run_id}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and wait for it (at most one pending write)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _beat(self, **fields: Any) -> None:
        try:
            self.run.heartbeat(**fields)
            self.beats += 1
        except Exception as exc:  # never let bookkeeping kill a training run
            self.last_error = exc

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._beat()

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
