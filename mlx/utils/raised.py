"""Where an unexpected exception was raised, for a one-line error message.

A model's own code (a custom ``forward`` or ``train_step``) can raise anything; the
CLI reports it as ``error: <file>:<line>: <Type>: <message>`` instead of a traceback,
naming the deepest frame outside this package, which is where a user looks first.
"""

from __future__ import annotations

import os
import sys
import traceback

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def raised_at(exc: BaseException) -> str:
    """``"file:line: "`` of the deepest frame of ``exc``'s traceback in the user's
    own code (outside the ``mlx`` package and the installed libraries), else the
    deepest outside ``mlx``, else the deepest; ``""`` without a traceback."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith("<")
    ]
    libraries = {
        os.path.abspath(p) + os.sep
        for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)
    }
    own = [f for f in frames if not _inside(f.filename, {_PACKAGE + os.sep})]
    user = [f for f in own if not _inside(f.filename, libraries)]
    chosen = (user or own or frames)[-1:]
    return f"{chosen[0].filename}:{chosen[0].lineno}: " if chosen else ""


def _inside(filename: str, folders: set[str]) -> bool:
    path = os.path.abspath(filename)
    return any(path.startswith(folder) for folder in folders)


def one_line(exc: BaseException) -> str:
    """``exc`` as ``"file:line: Type: message"``."""
    message = str(exc)
    text = f"{raised_at(exc)}{type(exc).__name__}"
    return f"{text}: {message}" if message else text


def traceback_text(exc: BaseException) -> str:
    """The whole traceback of ``exc``, as Python prints it."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
