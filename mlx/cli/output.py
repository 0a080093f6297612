"""What the commands print, and how: text and JSON documents on stdout, notes,
warnings and usage errors on stderr, key/value tables.

While a command runs, its stdout and stderr are :class:`terminal_streams`: every
character a terminal would act on or hide instead of show (a bidirectional override
such as U+202E, a zero-width joiner, a C1 control, a lone surrogate) is written as an
escape (``\\u202e``), whoever prints it; the escapes are JSON's, so a JSON document
on stdout stays valid and reads back to the same values.

A command may be started with stdout or stderr closed (``mlx runs >&-``): Python then
has no such stream (``None``), and what would go there is lost, never the command.
Errors themselves render through :meth:`mlx.errors.MLXError.show`.
"""

from __future__ import annotations

import io
import sys
import warnings

from mlx.errors import MLXWarning

# typing costs a few milliseconds of start-up: for type checkers only here
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, NoReturn, Sequence, TextIO, TypeVar

    _T = TypeVar("_T")

__all__ = [
    "EXIT_OK",
    "EXIT_USAGE",
    "err",
    "flush_stdout",
    "format_value",
    "key_value_table",
    "print_json",
    "terminal_streams",
    "usage_error",
    "warnings_on_stderr",
    "warnings_printed",
    "write_stdout",
]

EXIT_OK = 0
#: a usage error's status: 1, as for any other error (argparse's own is 2)
EXIT_USAGE = 1


def err(text: str) -> None:
    """One line on stderr; a closed stderr loses the line, never the command."""
    if sys.stderr is None:  # started with stderr closed (`2>&-`)
        return
    try:
        print(text, file=sys.stderr)
    except (OSError, ValueError):
        pass


def write_stdout(text: str) -> None:
    """``text`` on stdout; a command started with stdout closed (``>&-``) has none,
    and loses the text as ``print`` does, never the command."""
    if sys.stdout is not None:
        sys.stdout.write(text)


def flush_stdout() -> None:
    """Push what was printed so far out now (before an error, or between runs)."""
    if sys.stdout is not None:
        sys.stdout.flush()


def print_json(document: Any) -> None:
    """``document`` as strict JSON (NaN and infinities as null) on stdout."""
    # here, not at the top: `mlx --help` never prints JSON, and the JSON writer's
    # module brings tempfile and shutil along
    from mlx.utils.atomic import to_json

    write_stdout(to_json(document) + "\n")


def format_value(value: Any) -> str:
    """A metric's value for a table: floats to 6 significant digits, a confusion
    matrix one row a line."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "\n".join(" ".join(str(v) for v in row) for row in value)
    return str(value)


def key_value_table(rows: Sequence[tuple[str, str]]) -> str:
    """Keys in one column, values two spaces to their right; a value of several
    lines continues under its first."""
    width = max(len(k) for k, _ in rows)
    lines = []
    for key, value in rows:
        first, *rest = value.splitlines() or [""]
        lines.append(f"{key.ljust(width)}  {first}")
        lines += [f"{' ' * width}  {line}" for line in rest]
    return "\n".join(lines)


def usage_error(message: str) -> NoReturn:
    """``error: <message>`` on stderr and exit 1, as the parser's own usage errors
    do (for combinations of arguments argparse cannot check)."""
    if sys.stderr is not None:
        sys.stderr.write(f"error: {message}\n")
    raise SystemExit(EXIT_USAGE)


class warnings_on_stderr:
    """While a command runs, mlx's own warnings print as ``warning: <message>`` on
    stderr, like its errors; any other warning keeps Python's format. The previous
    ``warnings.showwarning`` is back afterwards.

    (A class rather than a generator-based context manager, which keeps
    ``contextlib`` out of the command's start-up.)
    """

    def __enter__(self) -> warnings_on_stderr:
        previous = self._previous = warnings.showwarning

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            if issubclass(category, MLXWarning):
                err(f"warning: {message}")
                return
            try:
                previous(message, category, filename, lineno, file, line)
            except (OSError, ValueError):
                pass

        warnings.showwarning = show
        return self

    def __exit__(self, *exc_info: object) -> None:
        warnings.showwarning = self._previous


def warnings_printed(load: Callable[[], _T]) -> _T:
    """Run ``load``, printing each mlx warning it issues once, as ``warning: ...``.

    Warnings are printed even when ``load`` fails, before its error.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MLXWarning)
        try:
            return load()
        finally:
            seen = set()
            for record in caught:
                text = str(record.message)
                if issubclass(record.category, MLXWarning) and text not in seen:
                    seen.add(text)
                    err(f"warning: {text}")


#: what a printer may write raw: line ends, tabs, and the carriage return and escape
#: of the progress line that redraws itself on a terminal; every other control is
#: escaped (a user's text holding one is escaped before it is printed)
_KEPT = "\n\t\r\x1b"


class _SafeText(io.TextIOBase):
    """A text stream that writes to ``inner`` through
    :func:`mlx.utils.paths.terminal_safe`; everything else (``fileno``,
    ``isatty``, ``buffer``, ``encoding``) is ``inner``'s."""

    def __init__(self, inner: TextIO, escape: Callable[[str, str], str]) -> None:
        super().__init__()
        self.inner = inner
        self._escape = escape

    def write(self, text: str) -> int:
        self.inner.write(self._escape(text, _KEPT))
        return len(text)

    def flush(self) -> None:
        self.inner.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class terminal_streams:
    """While a command runs, ``sys.stdout`` and ``sys.stderr`` write through
    :func:`mlx.utils.paths.terminal_safe`, so no printer (a message, a table, a
    sweep's progress line, an echoed ``--set``) shows a user's bidirectional or
    format control raw. A closed stream (None) stays closed; the streams are put
    back afterwards."""

    def __enter__(self) -> terminal_streams:
        # here, not at the top: the path helpers are not needed for `mlx --help`
        from mlx.utils.paths import terminal_safe

        self._previous = (sys.stdout, sys.stderr)
        if sys.stdout is not None:
            sys.stdout = _SafeText(sys.stdout, terminal_safe)
        if sys.stderr is not None:
            sys.stderr = _SafeText(sys.stderr, terminal_safe)
        return self

    def __exit__(self, *exc_info: object) -> None:
        sys.stdout, sys.stderr = self._previous
