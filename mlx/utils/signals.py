"""SIGINT and SIGTERM for work that must not be cut at an arbitrary instant.

A command that writes something (a run directory, an MLflow store) installs one
:class:`StopSignals` for as long as it works, before the first thing exists on disk.
The handler does what the moment allows, by its mode:

``abort``  nothing half-made can be left (data loading, importing torch, building
           the model): the signal raises :class:`Interrupted` at once, which the
           ``with`` block's exit turns into :class:`~mlx.errors.RunInterrupted`
           (exit code 128 + the signal's number).
``hold``   a step that must finish whole (creating a run directory and its first
           files, recording how a run ended, creating an MLflow run): the signal is
           only noted; leaving :meth:`StopSignals.holding` raises :class:`Interrupted`
           when one came and the block around it aborts.
``poll``   training: the signal is noted and the loop polls :meth:`requested`,
           stopping after the current step with a checkpoint; a second signal
           raises ``KeyboardInterrupt`` (stop at once, every file is still whole).

Signal handlers belong to the process, so the :class:`StopSignals` installed is the
process's too: :meth:`StopSignals.active` returns it, so that the pieces of a run
(the lifecycle, the exporter) share the one the command installed. Handlers can only
be installed from the main thread; elsewhere :meth:`install` changes nothing and the
signals keep their previous handlers.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from types import FrameType, TracebackType
from typing import Any, Callable, ClassVar

from mlx.errors import RunInterrupted

__all__ = ["Interrupted", "StopSignals", "pause_point", "watch"]

ABORT, HOLD, POLL = "abort", "hold", "poll"
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A SIGINT/SIGTERM that stops the work at once. A BaseException, as
    ``KeyboardInterrupt`` is, so that code which wraps the exceptions of a library
    (an import guard, a model's own ``except Exception``) lets it through."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """SIGINT/SIGTERM handled by mode (see the module); a context manager that
    installs the handlers and puts the previous ones back.

    ``what`` says what a signal in ``abort`` mode stopped, for the error
    (``"the run was not created"``).
    """

    _active: ClassVar[StopSignals | None] = None

    def __init__(self, what: str = "") -> None:
        self.what = what
        self.signal_number = 0
        self.count = 0  # the signals handled
        self.mode = ABORT
        self._previous: dict[int, Any] = {}
        self._depth = 0  # the `with` blocks of this one that are open
        self._hook: Callable[[Any], Any] = sys.unraisablehook

    # -- state -------------------------------------------------------------------

    @classmethod
    def active(cls) -> StopSignals | None:
        """The StopSignals whose handlers are installed now, if any."""
        return cls._active

    def requested(self) -> bool:
        """Whether a signal came."""
        return self.signal_number != 0

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signal_number).name

    def interrupted(self, message: str, hint: str | None = None) -> RunInterrupted:
        """The error that says ``message`` of the signal that came."""
        return RunInterrupted(
            message, exit_code=128 + (self.signal_number or signal.SIGINT), hint=hint
        )

    # -- modes -------------------------------------------------------------------

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        first = not self.signal_number
        if first:
            self.signal_number = signum
        if self.mode == ABORT:
            raise Interrupted(signum)
        if self.mode == POLL and not first:
            raise KeyboardInterrupt

    def holding(self) -> _Mode:
        """A block no signal cuts; one that came raises :class:`Interrupted` when
        the block ends, if the block around it aborts (``abort`` mode)."""
        return _Mode(self, HOLD, check=True)

    def polling(self) -> _Mode:
        """A block in which the first signal is only noted (see :meth:`requested`)
        and a second raises ``KeyboardInterrupt``."""
        return _Mode(self, POLL, check=False)

    def recording(self) -> _Mode:
        """A block no signal cuts, and that raises nothing when it ends: where
        what happened is being recorded."""
        return _Mode(self, HOLD, check=False)

    # -- installing --------------------------------------------------------------

    def install(self) -> bool:
        """Install the handlers (main thread only, one StopSignals at a time);
        whether they were."""
        if threading.current_thread() is not threading.main_thread():
            return False
        if StopSignals._active is not None:
            return False
        for signum in _SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        self._hook = sys.unraisablehook
        sys.unraisablehook = self._unraisable
        StopSignals._active = self
        return True

    def _unraisable(self, unraisable: Any) -> None:
        """An :class:`Interrupted` raised where Python cannot pass it on (the handler
        ran inside a garbage collector's callback or a finalizer) is not printed:
        the signal is sent again, from another thread so that its handler runs once
        the callback is over, to stop the work where it can."""
        if isinstance(unraisable.exc_value, Interrupted):
            again = (os.getpid(), unraisable.exc_value.signum)
            threading.Thread(target=_send_soon, args=again, daemon=True).start()
            return
        self._hook(unraisable)

    def restore(self) -> None:
        """Put the previous handlers back (no-op when not installed)."""
        if not self._previous:
            return
        self.mode = HOLD  # nothing raised while the handlers change
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if sys.unraisablehook == self._unraisable:
            sys.unraisablehook = self._hook
        StopSignals._active = None

    def __enter__(self) -> StopSignals:
        if self._depth == 0:
            self.install()
        self._depth += 1
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.restore()
        if isinstance(exc, Interrupted):
            what = f": {self.what}" if self.what else ""
            raise self.interrupted(f"interrupted by {self.signal_name}{what}") from None


def _send_soon(pid: int, signum: int) -> None:
    """Send ``signum`` to ``pid`` once the thread that started this one went on."""
    time.sleep(0.01)
    os.kill(pid, signum)


class _Mode:
    """A block run in one mode of a :class:`StopSignals`, the mode before it put
    back when it ends."""

    def __init__(self, signals: StopSignals, mode: str, *, check: bool) -> None:
        self.signals, self.mode, self.check = signals, mode, check
        self.before = ABORT

    def __enter__(self) -> StopSignals:
        self.before = self.signals.mode
        self.signals.mode = self.mode
        return self.signals

    def __exit__(self, *exc: object) -> None:
        signals = self.signals
        signals.mode = self.before
        if self.check and signals.requested() and self.before == ABORT:
            raise Interrupted(signals.signal_number)


def watch(what: str = "") -> StopSignals:
    """The installed StopSignals, or a new one saying ``what`` (a context manager
    either way: entering the one installed changes nothing)."""
    return StopSignals.active() or StopSignals(what)


#: A test hook, private to the test suite: with ``_MLX_PAUSE_AT=<point>`` in the
#: environment, a process that reaches :func:`pause_point` ``(<point>)`` says
#: ``paused at <point>`` on stderr and waits for a signal, so that a test can send
#: one at that point exactly, not after a delay it guesses. The points are the
#: steps of a run's start (``before-create``, ``created``, ``config-written``,
#: ``set-up``, ``lifecycle``) and of an export (``mlflow-schema``, ``mlflow-run``).
_PAUSE_VARIABLE = "_MLX_PAUSE_AT"


def pause_point(name: str) -> None:
    """Wait here for a signal when the test hook names this point (see above)."""
    if os.environ.get(_PAUSE_VARIABLE) != name:
        return
    signals = StopSignals.active()
    seen = signals.count if signals is not None else 0
    print(f"paused at {name}", file=sys.stderr, flush=True)
    # polled, not signal.pause(): a signal that comes before the wait begins counts
    while signals is None or signals.count == seen:
        time.sleep(0.005)
