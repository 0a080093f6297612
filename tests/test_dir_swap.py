"""model/ is replaced by one atomic exchange: its name never refers to nothing."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from mlx.utils import atomic

linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="renameat2 is Linux only"
)


def _dir(path: Path, text: str) -> Path:
    path.mkdir()
    (path / "weights.bin").write_text(text)
    return path


@linux
def test_an_existing_directory_is_replaced_by_exchange(tmp_path, monkeypatch):
    final = _dir(tmp_path / "model", "old")
    used = []
    real = atomic.exchange_paths

    def spy(a, b):
        used.append(real(a, b))
        return used[-1]

    monkeypatch.setattr(atomic, "exchange_paths", spy)

    def no_rename_aside(src, dst):
        raise AssertionError(f"renamed {src} -> {dst} instead of an exchange")

    monkeypatch.setattr(atomic.os, "rename", no_rename_aside)
    atomic.replace_dir_atomic(_dir(tmp_path / ".tmp-model-1", "new"), final)
    assert used == [True]
    assert (final / "weights.bin").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_the_fallback_still_replaces(tmp_path, monkeypatch):
    final = _dir(tmp_path / "model", "old")
    monkeypatch.setattr(atomic, "exchange_paths", lambda a, b: False)
    atomic.replace_dir_atomic(_dir(tmp_path / ".tmp-model-1", "new"), final)
    assert (final / "weights.bin").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["model"]


@linux
def test_exchange_of_a_missing_name_is_an_error_not_a_fallback(tmp_path):
    _dir(tmp_path / "a", "a")
    with pytest.raises(FileNotFoundError):
        atomic.exchange_paths(tmp_path / "a", tmp_path / "missing")


@linux
def test_a_reader_never_sees_the_directory_missing(tmp_path):
    final = _dir(tmp_path / "model", "0")
    missing = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            if not os.path.isdir(final):
                missing.append(True)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(1, 200):
            atomic.replace_dir_atomic(_dir(tmp_path / f".tmp-{i}", str(i)), final)
    finally:
        stop.set()
        thread.join()
    assert missing == []
    assert (final / "weights.bin").read_text() == "199"
    assert sorted(os.listdir(tmp_path)) == ["model"]
