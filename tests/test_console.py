"""What a run prints: plain lines when piped, a progress bar only on a terminal."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mlx.experiment.console import Console


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_go_to_the_stream_and_the_log(tmp_path: Path) -> None:
    stream = io.StringIO()
    log = tmp_path / "train.log"
    console = Console(stream=stream, log_file=log)
    console("epoch 1/2  train_loss 0.5")
    assert stream.getvalue() == "epoch 1/2  train_loss 0.5\n"
    assert log.read_text().rstrip().endswith("epoch 1/2  train_loss 0.5")


def test_quiet_writes_only_the_log(tmp_path: Path) -> None:
    stream = io.StringIO()
    console = Console(quiet=True, stream=stream, log_file=tmp_path / "train.log")
    console("hello")
    assert stream.getvalue() == ""
    assert "hello" in (tmp_path / "train.log").read_text()
    assert console.progress(1, 10) is None


def test_no_progress_bar_when_piped() -> None:
    assert Console(stream=io.StringIO()).progress(1, 10) is None


def test_progress_bar_on_a_terminal() -> None:
    pytest.importorskip("tqdm")
    stream = _Terminal()
    bar = Console(stream=stream).progress(3, 400)
    assert bar is not None
    for _ in range(400):
        bar.update(1, 0.25)
    bar.close()
    assert "epoch 3" in stream.getvalue() and "\r" in stream.getvalue()
