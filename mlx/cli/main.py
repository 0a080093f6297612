"""The ``mlx`` command: parse the command line, run the command it names, and turn
how that ended into an exit status. This is the one door from exceptions to exit
codes: an :class:`~mlx.errors.MLXError` shows itself (``error:``/``hint:`` lines)
and exits with its ``exit_code``; anything else is still one line, never a
traceback, unless ``--debug`` asks for it.
"""

from __future__ import annotations

import os
import sys

from mlx.cli.output import err, terminal_streams, usage_error, warnings_on_stderr
from mlx.cli.parser import build_parser
from mlx.errors import MLXError, RunInterrupted
from mlx.utils.raised import one_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Callable, Sequence

__all__ = ["main"]

EXIT_ERROR = 1
EXIT_INTERRUPTED = 128 + 2  # 128 + SIGINT
EXIT_BROKEN_PIPE = 128 + 13  # 128 + SIGPIPE

# the arguments that name files or runs, and how usage errors call them
_PATH_ARGUMENTS = (
    ("config", "--config"),
    ("resume", "--resume"),
    ("experiment_id", "RUN"),
    ("run_ref", "RUN"),
    ("root", "--root"),
    ("output", "-o"),
    ("sweep", "SWEEP"),
)
_PATH_LISTS = (("compare_runs", "RUN"), ("runs", "RUN"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: the process's arguments) and return
    its exit status. ``--help``, ``--version`` and usage errors end with
    ``SystemExit``, as argparse's do."""
    try:
        try:
            return _main(argv)
        finally:
            # here, not at exit: a closed pipe is found while it can be handled (also
            # after --help and --version, whose SystemExit passes through); stdout is
            # None when the command was started with it closed (`mlx runs >&-`)
            if sys.stdout is not None:
                sys.stdout.flush()
    except BrokenPipeError:
        # the reader went away (`mlx runs | head -1`): stop quietly, as a Unix tool
        # killed by SIGPIPE does, with the status a shell reports for one
        _detach_closed_streams()
        return EXIT_BROKEN_PIPE


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    with terminal_streams():  # usage errors echo arguments too
        args = parser.parse_args(argv)
        command: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
        if command is None:  # `mlx` alone
            if sys.stderr is not None:
                parser.print_help(sys.stderr)
            return EXIT_ERROR
        with warnings_on_stderr():
            return _run(command, args)


def _run(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """``command(args)``, and every way it can end as an exit status."""
    try:
        _check_path_arguments(args)
        _check_environment()
        return command(args)
    except RunInterrupted as exc:
        # a stop that was asked for, the run checkpointed: no traceback, --debug or not
        exc.show()
        return exc.exit_code
    except MLXError as exc:
        if args.debug:
            raise
        exc.show()
        return exc.exit_code
    except BrokenPipeError:
        raise
    except OSError as exc:
        # the environment said no somewhere no clearer message was made: still one
        # line that names the path, never a traceback
        if args.debug:
            raise
        MLXError(_os_error_text(exc)).show()
        return EXIT_ERROR
    except KeyboardInterrupt:
        if args.debug:
            raise
        MLXError("interrupted").show()
        return EXIT_INTERRUPTED
    except Exception as exc:
        # raised where no clearer message was made (a custom model's own code): one
        # line that says where, never a traceback
        if args.debug:
            raise
        MLXError(one_line(exc), hint="mlx --debug shows the traceback").show()
        return EXIT_ERROR


def _os_error_text(exc: OSError) -> str:
    # here, not at the top: the module that words OS errors brings tempfile and
    # shutil along, which `mlx --help` does without
    from mlx.utils.atomic import os_error_text

    return os_error_text(exc)


def _check_environment() -> None:
    """ConfigError for an ``MLX_*`` variable set to what it cannot be, before the
    command creates anything; a warning for a likely misspelt one."""
    # here, not at the top: `mlx --help` does without the variables' checks
    from mlx.utils.environ import check_environment

    for note in check_environment():
        err(f"warning: {note}")


def _check_path_arguments(args: argparse.Namespace) -> None:
    """A usage error for a path or run ID that holds a control character."""
    # here, not at the top: the path helpers bring typing along, which `mlx --help`
    # does without
    from mlx.utils.paths import unprintable

    pairs = [(getattr(args, a, None), f) for a, f in _PATH_ARGUMENTS]
    for attribute, flag in _PATH_LISTS:
        pairs += [(value, flag) for value in getattr(args, attribute, None) or ()]
    for value, flag in pairs:
        problem = (
            unprintable(value, flag, "a path or run ID")
            if isinstance(value, str)
            else None
        )
        if problem is not None:
            usage_error(problem)


def _detach_closed_streams() -> None:
    """Point stdout (and a closed stderr) at /dev/null, so that the interpreter's
    final flush finds nothing to complain about."""
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            continue
        try:
            stream.flush()
        except (OSError, ValueError):
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
                os.close(devnull)
            except (OSError, ValueError):
                pass
