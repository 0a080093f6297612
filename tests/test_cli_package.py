"""The command line's own structure, in-process: each command module adds its parser
and runs itself, main() is the one door from exceptions to exit codes, and errors
render themselves."""

from __future__ import annotations

import argparse
import io
import shutil
import warnings

import pytest

import mlx.cli.runs
from mlx.cli import build_parser, main
from mlx.cli.output import warnings_on_stderr
from mlx.cli.parser import COMMANDS, terminal_columns
from mlx.errors import ConfigError, ConfigWarning, MLXError, RunError, RunInterrupted


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    (action,) = [
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ]
    return dict(action.choices)


def test_each_command_is_a_module_that_adds_its_parser_and_runs_itself() -> None:
    subparsers = _subparsers()
    assert len(subparsers) == len(COMMANDS)
    runners = {sub.get_default("run") for sub in subparsers.values()}
    assert runners == {module.run for module in COMMANDS}


def test_no_command_prints_help_on_stderr_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: mlx")


@pytest.mark.parametrize(
    "error, status, lines",
    [
        (MLXError("it broke"), 1, ["error: it broke"]),
        (
            ConfigError("a: bad\nb: worse", hint="see the docs"),
            1,
            ["error: a: bad", "error: b: worse", "hint: see the docs"],
        ),
        (RunError(""), 1, ["error: "]),
        (
            RunInterrupted("stopped", exit_code=143, hint="resume it"),
            143,
            ["error: stopped", "hint: resume it"],
        ),
    ],
    ids=["plain", "lines-and-hint", "empty", "interrupted"],
)
def test_an_error_shows_itself_and_knows_its_exit_code(
    error: MLXError, status: int, lines: list[str]
) -> None:
    stream = io.StringIO()
    error.show(stream)
    assert stream.getvalue().splitlines() == lines
    assert error.exit_code == status


def test_a_closed_stream_loses_the_error_not_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed = io.StringIO()
    closed.close()
    MLXError("lost").show(closed)
    monkeypatch.setattr("sys.stderr", None)
    MLXError("lost").show()


def _failing_runs(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    def run(args: argparse.Namespace) -> int:
        raise exc

    monkeypatch.setattr(mlx.cli.runs, "run", run)


@pytest.mark.parametrize(
    "exc, status, expected",
    [
        (RunError("no such run", hint="try mlx runs"), 1, "error: no such run\n"),
        (RunInterrupted("stopped", exit_code=143), 143, "error: stopped\n"),
        (FileNotFoundError(2, "No such file", "x.yaml"), 1, "error: 'x.yaml': No "),
        (KeyboardInterrupt(), 130, "error: interrupted\n"),
        (ZeroDivisionError("boom"), 1, "ZeroDivisionError: boom\nhint: mlx --debug"),
    ],
    ids=["mlx-error", "interrupted", "os-error", "ctrl-c", "other"],
)
def test_main_turns_how_a_command_ended_into_an_exit_status(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    exc: BaseException,
    status: int,
    expected: str,
) -> None:
    _failing_runs(monkeypatch, exc)
    assert main(["runs"]) == status
    err = capsys.readouterr().err
    assert expected in err
    assert "Traceback" not in err


def test_debug_lets_the_error_through_except_an_interruption(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _failing_runs(monkeypatch, RunError("no such run"))
    with pytest.raises(RunError):
        main(["--debug", "runs"])
    _failing_runs(monkeypatch, RunInterrupted("stopped", exit_code=130))
    assert main(["--debug", "runs"]) == 130


def test_mlx_warnings_read_like_errors_while_a_command_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = warnings.showwarning
    with warnings_on_stderr():
        warnings.showwarning("odd key", ConfigWarning, "f.py", 1)
    assert warnings.showwarning is before
    assert capsys.readouterr().err == "warning: odd key\n"


@pytest.mark.parametrize("columns", [None, "0", "-3", "abc", "40", "300"])
def test_the_help_is_as_wide_as_argparse_would_make_it(
    monkeypatch: pytest.MonkeyPatch, columns: str | None
) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert terminal_columns() == shutil.get_terminal_size().columns
