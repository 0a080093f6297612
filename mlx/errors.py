"""Exceptions raised by mlx.

Every error the package raises on purpose derives from :class:`MLXError`, and each
subclass also derives from the builtin it resembles, so callers may catch either::

    MLXError(Exception)
    ├── ConfigError(MLXError, ValueError)        bad experiment configuration
    ├── DatasetError(MLXError, ValueError)       bad dataset parameters or files
    │   └── DownloadError(DatasetError)          fetching a dataset failed
    ├── ModelError(MLXError, ValueError)         bad model parameters or inputs
    │   └── NotTrainedError(ModelError)          model used before training/loading
    ├── CheckpointError(MLXError, ValueError)    missing, corrupt or mismatched
    ├── BackendUnavailableError(MLXError, ImportError)
    │                                            an optional dependency is not installed
    └── RunError(MLXError, RuntimeError)         run store, resume and eval failures
        ├── DivergenceError(RunError)            training produced NaN or inf
        ├── RunInterrupted(RunError)             SIGINT/SIGTERM stopped a run
        └── CannotRunHere(RunError)              valid, but cannot run here (dry run)

Warnings have their own small tree, so callers can filter them by kind::

    MLXWarning(UserWarning)
    ├── ConfigWarning          unknown keys, suspicious values in a config
    ├── NumericalWarning       near-singular systems, large learning rates
    └── DataWarning            skipped torn lines, ignored dataset options

An error knows how it ends a command: :meth:`MLXError.show` writes
``error: <message>`` (and ``hint: <hint>`` when one is set) to stderr, and
:attr:`MLXError.exit_code` is the status to exit with (1; 3 for
:class:`CannotRunHere`; 128 + the signal number for :class:`RunInterrupted`). The
``mlx`` command and a sweep's point process both end that way.

Standard library only, and cheap to import: every command starts by importing it.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, TextIO

__all__ = [
    "BackendUnavailableError",
    "CannotRunHere",
    "CheckpointError",
    "ConfigError",
    "ConfigWarning",
    "DataWarning",
    "DatasetError",
    "DivergenceError",
    "DownloadError",
    "MLXError",
    "MLXWarning",
    "ModelError",
    "NotTrainedError",
    "NumericalWarning",
    "RunError",
    "RunInterrupted",
]


class MLXError(Exception):
    """Base class of every error raised on purpose by mlx.

    ``hint`` is an optional one-line suggestion shown by the CLI after the message;
    ``exit_code`` is the status a command that ends with this error exits with.
    """

    #: the exit status of a command that stops with this error
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def show(self, file: TextIO | None = None) -> None:
        """Write ``error: <line>`` for each line of the message (a ``ConfigError``
        holds one problem a line), then ``hint: <hint>`` when one is set, to
        ``file`` (default: stderr).

        A stream that is missing (a process started with stderr closed) or that
        refuses the write loses the lines, never the caller.
        """
        stream = sys.stderr if file is None else file
        if stream is None:
            return
        # "\n" alone ends a line: str.splitlines would also split at a U+2028 or
        # U+0085 inside a value the message quotes
        lines = [f"error: {line}" for line in self.message.rstrip("\n").split("\n")]
        if self.hint:
            lines.append(f"hint: {self.hint}")
        for line in lines:
            try:
                print(line, file=stream)
            except (OSError, ValueError):
                pass


class ConfigError(MLXError, ValueError):
    """The experiment configuration is invalid.

    ``errors`` lists every problem found (see :class:`mlx.config.ConfigIssue`), so a
    user sees all mistakes of a file in one run. ``message`` joins them, one per line.
    """

    def __init__(
        self,
        message: str,
        *,
        errors: list | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.errors = list(errors) if errors else []


class DatasetError(MLXError, ValueError):
    """Invalid dataset parameters, or dataset files that cannot be read."""


class DownloadError(DatasetError):
    """A dataset archive could not be fetched or failed its checksum."""


class ModelError(MLXError, ValueError):
    """Invalid model parameters or model inputs."""


class NotTrainedError(ModelError):
    """A model was used for prediction before it was trained or loaded."""


class CheckpointError(MLXError, ValueError):
    """A checkpoint is missing, corrupt, or does not match the model."""


class BackendUnavailableError(MLXError, ImportError):
    """An optional dependency needed for this feature is not installed."""


class RunError(MLXError, RuntimeError):
    """A run could not be created, resumed, found or evaluated."""


class DivergenceError(RunError):
    """Training produced a NaN or infinite loss."""


class CannotRunHere(RunError):
    """A dry run found the config valid, but a run of it could not go ahead on this
    machine (its data, the source a download would fetch, the model's backend, the
    output path): exit code 3, apart from 1 for an invalid config."""

    exit_code = 3


class RunInterrupted(RunError):
    """A signal stopped a run after its state was checkpointed.

    ``exit_code`` is 128 + the signal number (130 for SIGINT, 143 for SIGTERM), as a
    shell reports for a process the signal ended.
    """

    def __init__(
        self, message: str, *, exit_code: int, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


class map_os_errors:
    """The one door from operating-system errors to the project's own: inside
    ``with map_os_errors(RunError, "Cannot create {path!r}: {exc}."):`` an ``OSError``
    becomes ``RunError`` with that message, the ``OSError`` kept as its cause.

    ``message`` is formatted with ``exc`` (the ``OSError``), ``reason`` (its
    ``strerror``, or the whole error when it has none) and the keyword arguments
    given here; it may also be a callable taking the ``OSError``. Exceptions other
    than ``OSError`` pass through untouched. (A class rather than a generator-based
    context manager, which keeps ``contextlib`` out of the command's start-up.)
    """

    def __init__(
        self,
        error: type[MLXError],
        message: str | Callable[[OSError], str],
        *,
        hint: str | None = None,
        **fields: object,
    ) -> None:
        self.error, self.message, self.hint, self.fields = error, message, hint, fields

    def __enter__(self) -> map_os_errors:
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, OSError):
            if callable(self.message):
                text = self.message(exc)
            else:
                reason = exc.strerror or exc
                text = self.message.format(exc=exc, reason=reason, **self.fields)
            raise self.error(text, hint=self.hint) from exc


class MLXWarning(UserWarning):
    """Base class of every warning issued by mlx."""


class ConfigWarning(MLXWarning):
    """A config is valid but probably not what was meant (unknown key, odd value)."""


class NumericalWarning(MLXWarning):
    """A computation may be inaccurate (near-singular matrix, large learning rate)."""


class DataWarning(MLXWarning):
    """Data was skipped or an option ignored (torn metrics line, unsupported flag)."""
