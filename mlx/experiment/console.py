"""What a run tells the person watching it, and what it keeps in ``train.log``.

Every line goes through the standard :mod:`logging` module, as an INFO record of the
``mlx.run`` logger (a child of ``mlx``):

* ``train.log`` is a handler the run attaches to the ``mlx`` logger while it runs;
  each line is stamped with the time in UTC and its offset
  (``2026-12-04T03:55:01+00:00 epoch 1/5 ...``). Warnings raised while the run runs
  are written there too (and still shown as before).
* On stderr, lines appear as plain text (unless quiet). The ``mlx`` command attaches
  that handler itself; through the Python API the run prints them only when nobody
  else would: a handler on the ``mlx`` logger, or one on an ancestor (the root
  logger, ``logging.basicConfig``) that writes to the terminal, takes over, so no
  line is printed twice.

A per-epoch progress bar is drawn only when stderr is a terminal and tqdm is
installed (``pip install 'model-harness[progress]'``); piped output never contains
carriage returns or bars. A stream that closes (its reader went away) is dropped: the
run goes on and ``train.log`` keeps every line.
"""

from __future__ import annotations

import datetime
import logging
import sys
import warnings
from pathlib import Path
from typing import Any, TextIO

from mlx.errors import MLXError
from mlx.utils.safe_io import append_line_guarded

__all__ = ["Console", "StreamLineHandler", "utc_stamp"]

LOGGER_NAME = "mlx"
RUN_LOGGER = "mlx.run"


def utc_stamp(seconds: float | None = None) -> str:
    """``2026-12-04T03:55:01+00:00``: the time (now by default) in UTC, with its
    offset."""
    moment = (
        datetime.datetime.now(datetime.timezone.utc)
        if seconds is None
        else datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    )
    return moment.isoformat(timespec="seconds")


class StreamLineHandler(logging.Handler):
    """Writes each record's message as a plain line to a stream (stderr unless
    given), flushed at once. A stream that fails (its reader went away, it was
    closed) turns the handler off instead of raising or printing a traceback."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(logging.INFO)
        self._stream = stream
        self.broken = False

    @property
    def stream(self) -> TextIO | None:
        return self._stream if self._stream is not None else sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        stream = self.stream
        if self.broken or stream is None:
            return
        try:
            print(record.getMessage(), file=stream, flush=True)
        except (OSError, ValueError):
            # the reader went away (`mlx run-experiment ... 2>&1 | head`): the run
            # goes on, and train.log still gets every line
            self.broken = True


class _RunLogHandler(logging.Handler):
    """Appends each record to ``train.log``, one stamped line per line of text,
    never through a link. A refused write of one of the run's own lines is kept in
    :attr:`error` for the run to raise (it fails truthfully); anything else's is
    dropped."""

    def __init__(self, path: Path) -> None:
        super().__init__(logging.DEBUG)
        self.path = path
        self.error: BaseException | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write(record.getMessage(), record.created)
        except (MLXError, OSError) as exc:
            # kept for the run to raise once every handler had the line; a line
            # from anywhere else is lost rather than failing that code
            if record.name == RUN_LOGGER and self.error is None:
                self.error = exc

    def write(self, message: str, created: float | None = None) -> None:
        stamp = utc_stamp(created)
        for line in message.splitlines() or [""]:
            append_line_guarded(self.path, f"{stamp} {line}", "the run log")


def _reaches_terminal(handler: logging.Handler) -> bool:
    if isinstance(handler, StreamLineHandler):
        return True
    stream = getattr(handler, "stream", None)
    terminals = {id(s) for s in (sys.stderr, sys.stdout, sys.__stderr__) if s}
    return isinstance(handler, logging.StreamHandler) and id(stream) in terminals


def someone_prints(name: str = LOGGER_NAME) -> bool:
    """Whether a record of logger ``name`` already reaches a handler the user set
    up: any handler on that logger (other than a NullHandler), or one on an
    ancestor that writes to the terminal."""
    logger: logging.Logger | None = logging.getLogger(name)
    first = True
    while logger is not None:
        for handler in logger.handlers:
            if isinstance(handler, (logging.NullHandler, _RunLogHandler)):
                continue
            if first or _reaches_terminal(handler):
                return True
        if not logger.propagate:
            break
        logger = logger.parent
        first = False
    return False


class Console:
    """Writes run messages to a stream and, optionally, a log file.

    Use it as a context manager for a whole run: while inside, its handlers are
    attached to the ``mlx`` logger and warnings are copied into the log file. A
    message sent outside the ``with`` attaches them for that message only.
    """

    def __init__(
        self,
        *,
        quiet: bool = False,
        stream: TextIO | None = None,
        log_file: Path | None = None,
    ) -> None:
        self.quiet = quiet
        self._explicit_stream = stream is not None
        self.stream = stream if stream is not None else sys.stderr
        self.log_file = log_file
        self._logger = logging.getLogger(RUN_LOGGER)
        self._depth = 0
        self._handlers: list[tuple[logging.Logger, logging.Handler]] = []
        self._printer: StreamLineHandler | None = None
        self._file: _RunLogHandler | None = None
        self._shown: Any = None
        self._hook: Any = None

    # --- the logging handlers of a run -------------------------------------------

    def __enter__(self) -> Console:
        self._depth += 1
        if self._depth == 1:
            self._attach()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._detach()

    def _attach(self) -> None:
        root = logging.getLogger(LOGGER_NAME)
        if not self.quiet and (self._explicit_stream or not someone_prints()):
            self._printer = StreamLineHandler(self.stream)
            self._add(root, self._printer)
        if self.log_file is not None:
            self._file = _RunLogHandler(self.log_file)
            self._add(root, self._file)
            self._copy_warnings(self._file)

    def _add(self, logger: logging.Logger, handler: logging.Handler) -> None:
        logger.addHandler(handler)
        self._handlers.append((logger, handler))

    def _detach(self) -> None:
        if self._hook is not None and warnings.showwarning is self._hook:
            warnings.showwarning = self._shown
        self._hook = self._shown = None
        for logger, handler in reversed(self._handlers):
            logger.removeHandler(handler)
        self._handlers.clear()
        if self._printer is not None and self._printer.broken:
            self.quiet = True
        self._printer = self._file = None

    def _copy_warnings(self, handler: _RunLogHandler) -> None:
        """While the run runs, a warning shown (not one turned into an error or
        ignored by the warning filters) is also written to ``train.log``, then
        shown as it would have been (so ``warnings.catch_warnings(record=True)``
        and pytest still see it)."""
        previous = warnings.showwarning

        def show(
            message: Any,
            category: Any,
            filename: str,
            lineno: int,
            file: Any = None,
            line: str | None = None,
        ) -> None:
            if self._file is handler:
                try:
                    handler.write(f"warning: {category.__name__}: {message}")
                except Exception:  # a warning must never fail the run
                    pass
            previous(message, category, filename, lineno, file, line)

        self._shown, self._hook = previous, show
        warnings.showwarning = show

    # --- messages ----------------------------------------------------------------

    def __call__(self, message: str) -> None:
        self.info(message)

    def info(self, message: str) -> None:
        with self:
            if self._logger.isEnabledFor(logging.INFO):
                self._logger.info("%s", message)
            elif self._file is not None:
                # the mlx logger set above INFO silences the terminal, not the log
                self._file.write(message)
            file = self._file
            if file is not None and file.error is not None:
                error, file.error = file.error, None
                raise error

    def note(self, message: str) -> None:
        """:meth:`info`, but a log file that cannot be written (a full disk) loses
        the line instead of raising: for the last words of a run that is ending."""
        try:
            self.info(message)
        except (MLXError, OSError):
            if self._file is not None:
                logging.getLogger(LOGGER_NAME).removeHandler(self._file)
                self._file = None
            self.log_file = None

    def record(self, message: str) -> None:
        """``message`` in the log file only, not on the terminal: the error a run
        ends with, which the command shows itself. A log file that cannot be written
        loses the line."""
        if self._file is None:
            return
        try:
            self._file.write(message)
        except (MLXError, OSError):
            pass

    def progress(self, epoch: int, total: int) -> _Bar | None:
        """A progress bar for one epoch of ``total`` batches, or None if unwanted."""
        broken = self._printer is not None and self._printer.broken
        if self.quiet or broken or not _isatty(self.stream):
            return None
        try:  # an optional dependency: imported when a bar is wanted
            from tqdm import tqdm
        except ImportError:
            return None
        return _Bar(
            tqdm(
                total=total,
                desc=f"epoch {epoch}",
                unit="batch",
                file=self.stream,
                leave=False,
                dynamic_ncols=True,
            )
        )


class _Bar:
    def __init__(self, bar: Any) -> None:
        self._bar = bar
        self._every = max(1, bar.total // 200)
        self._pending = 0

    def update(self, n: int, loss: float) -> None:
        # refreshing the bar per step would cost more than a small model's step
        self._pending += n
        if self._pending >= self._every:
            self._bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
            self._bar.update(self._pending)
            self._pending = 0

    def close(self) -> None:
        if self._pending:
            self._bar.update(self._pending)
        self._bar.close()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
