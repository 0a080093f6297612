"""What a run tells the person watching it, and what it keeps in ``train.log``.

Lines go to stderr (unless quiet) and, when the run saves logs, to ``train.log`` with a
timestamp. A per-epoch progress bar is drawn only when stderr is a terminal and tqdm is
installed (``pip install 'model-harness[progress]'``); piped output never contains
carriage returns or bars. A stream that closes (its reader went away) is dropped: the
run goes on and ``train.log`` keeps every line.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

__all__ = ["Console"]


class Console:
    """Writes run messages to a stream and, optionally, a log file."""

    def __init__(
        self,
        *,
        quiet: bool = False,
        stream: TextIO | None = None,
        log_file: Path | None = None,
    ) -> None:
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.log_file = log_file

    def __call__(self, message: str) -> None:
        self.info(message)

    def info(self, message: str) -> None:
        self._print(message)
        self._log(message)

    def note(self, message: str) -> None:
        """:meth:`info`, but a log file that cannot be written (a full disk) loses
        the line instead of raising: for the last words of a run that is ending."""
        from mlx.errors import MLXError

        self._print(message)
        try:
            self._log(message)
        except (MLXError, OSError):
            self.log_file = None

    def _print(self, message: str) -> None:
        if not self.quiet:
            try:
                print(message, file=self.stream, flush=True)
            except (OSError, ValueError):
                # the reader went away (`mlx run-experiment ... 2>&1 | head`): the
                # run goes on, and train.log still gets every line
                self.quiet = True

    def _log(self, message: str) -> None:
        if self.log_file is not None:
            from mlx.utils.safe_io import append_line_guarded

            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
            # never through a symlink or a hard link: the log stays inside the run
            for line in message.splitlines() or [""]:
                append_line_guarded(self.log_file, f"{stamp} {line}", "the run log")

    def progress(self, epoch: int, total: int) -> _Bar | None:
        """A progress bar for one epoch of ``total`` batches, or None if unwanted."""
        if self.quiet or not _isatty(self.stream):
            return None
        try:
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
