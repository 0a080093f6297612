from __future__ import annotations

import json
import os

import numpy as np
import pytest

from mlx.utils import atomic


class Boom(Exception):
    pass


def _entries(directory) -> list[str]:
    return sorted(os.listdir(directory))


@pytest.fixture
def old_file(tmp_path):
    path = tmp_path / "state.json"
    path.write_text('{"version": "old"}\n')
    return path


def test_write_bytes_atomic_creates_and_replaces(tmp_path):
    path = tmp_path / "a.bin"
    atomic.write_bytes_atomic(path, b"one")
    atomic.write_bytes_atomic(path, b"two")
    assert path.read_bytes() == b"two"
    assert _entries(tmp_path) == ["a.bin"]


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permissions")
def test_atomic_writes_keep_readable_permissions(tmp_path):
    new = atomic.write_text_atomic(tmp_path / "new.txt", "x")
    assert new.stat().st_mode & 0o777 == 0o644
    os.chmod(new, 0o600)
    atomic.write_text_atomic(new, "y")
    assert new.stat().st_mode & 0o777 == 0o600
    fresh = atomic.write_bytes_exclusive(tmp_path / "eval.json", b"{}")
    assert fresh.stat().st_mode & 0o777 == 0o644


def _raise(*_args, **_kwargs):
    raise Boom("simulated crash")


def test_failed_replace_keeps_old_file_and_no_temp(old_file, monkeypatch):
    monkeypatch.setattr(atomic.os, "replace", _raise)
    with pytest.raises(Boom):
        atomic.write_json_atomic(old_file, {"version": "new"})
    assert json.loads(old_file.read_text()) == {"version": "old"}
    assert _entries(old_file.parent) == ["state.json"]


def test_failure_mid_write_keeps_old_file_and_no_temp(old_file, monkeypatch):
    real_write = os.write
    calls = []

    def half_then_crash(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise Boom("disk died mid-write")

    monkeypatch.setattr(atomic.os, "write", half_then_crash)
    with pytest.raises(Boom):
        atomic.write_text_atomic(old_file, "x" * 1000)
    assert len(calls) == 2  # the short write was followed up, then failed
    assert json.loads(old_file.read_text()) == {"version": "old"}
    assert _entries(old_file.parent) == ["state.json"]


def test_failed_fsync_keeps_old_file_and_no_temp(old_file, monkeypatch):
    monkeypatch.setattr(atomic.os, "fsync", _raise)
    with pytest.raises(Boom):
        atomic.write_bytes_atomic(old_file, b"new")
    assert json.loads(old_file.read_text()) == {"version": "old"}
    assert _entries(old_file.parent) == ["state.json"]


def test_write_json_atomic_converts_numpy_and_paths(tmp_path):
    path = tmp_path / "out.json"
    atomic.write_json_atomic(
        path, {"a": np.float32(0.5), "b": np.int64(3), "c": np.arange(3), "p": tmp_path}
    )
    assert json.loads(path.read_text()) == {
        "a": 0.5,
        "b": 3,
        "c": [0, 1, 2],
        "p": str(tmp_path),
    }


def test_write_bytes_exclusive_never_overwrites(old_file):
    with pytest.raises(FileExistsError):
        atomic.write_bytes_exclusive(old_file, b"new")
    assert json.loads(old_file.read_text()) == {"version": "old"}
    assert _entries(old_file.parent) == ["state.json"]
    fresh = old_file.parent / "fresh.json"
    atomic.write_bytes_exclusive(fresh, b"{}")
    assert fresh.read_bytes() == b"{}"
    assert _entries(old_file.parent) == ["fresh.json", "state.json"]


def test_write_bytes_exclusive_without_hard_links(tmp_path, monkeypatch):
    def no_links(*_args):
        raise PermissionError("hard links not supported")

    monkeypatch.setattr(atomic.os, "link", no_links)
    target = tmp_path / "r.json"
    atomic.write_bytes_exclusive(target, b"1")
    with pytest.raises(FileExistsError):
        atomic.write_bytes_exclusive(target, b"2")
    assert target.read_bytes() == b"1"
    assert _entries(tmp_path) == ["r.json"]


def test_append_line_is_one_write_call(tmp_path, monkeypatch):
    path = tmp_path / "log.jsonl"
    real_write = os.write
    calls = []

    def counting(fd, data):
        calls.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(atomic.os, "write", counting)
    atomic.append_line(path, '{"epoch": 1}')
    atomic.append_line(path, '{"epoch": 2}')
    assert calls == [b'{"epoch": 1}\n', b'{"epoch": 2}\n']
    assert path.read_text() == '{"epoch": 1}\n{"epoch": 2}\n'


def test_append_line_after_torn_line_starts_a_new_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"epoch": 1}\n{"epo')  # a crash cut the last line short
    atomic.append_line(path, '{"epoch": 2}')
    assert path.read_text().split("\n") == ['{"epoch": 1}', '{"epo', '{"epoch": 2}', ""]


def test_append_line_rejects_newlines(tmp_path):
    with pytest.raises(ValueError, match="one line"):
        atomic.append_line(tmp_path / "x", "a\nb")


def _fill(directory, text):
    (directory / "weights.bin").write_text(text)
    (directory / "sub").mkdir()
    (directory / "sub" / "state.json").write_text("{}")


def test_replace_dir_atomic_publishes_and_replaces(tmp_path):
    final = tmp_path / "epoch-0001"
    for text in ("first", "second"):
        tmp = tmp_path / f".tmp-{text}"
        tmp.mkdir()
        _fill(tmp, text)
        atomic.replace_dir_atomic(tmp, final)
        assert (final / "weights.bin").read_text() == text
        assert (final / "sub" / "state.json").exists()
    assert _entries(tmp_path) == ["epoch-0001"]


def test_replace_dir_atomic_failure_restores_old(tmp_path, monkeypatch):
    final = tmp_path / "model"
    final.mkdir()
    _fill(final, "old")
    tmp = tmp_path / ".tmp-model"
    tmp.mkdir()
    _fill(tmp, "new")
    real_rename = os.rename

    def failing_rename(src, dst):
        if os.fspath(src) == os.fspath(tmp):
            raise Boom("crash while publishing")
        return real_rename(src, dst)

    monkeypatch.setattr(atomic.os, "rename", failing_rename)
    # the fallback used where names cannot be exchanged (see test_dir_swap.py)
    monkeypatch.setattr(atomic, "exchange_paths", lambda a, b: False)
    with pytest.raises(Boom):
        atomic.replace_dir_atomic(tmp, final)
    assert (final / "weights.bin").read_text() == "old"
    assert _entries(tmp_path) == [".tmp-model", "model"]


def test_update_symlink_atomic_repoints(tmp_path):
    (tmp_path / "epoch-0001").mkdir()
    (tmp_path / "epoch-0002").mkdir()
    link = tmp_path / "last"
    assert atomic.update_symlink_atomic(link, "epoch-0001") is True
    assert atomic.update_symlink_atomic(link, "epoch-0002") is True
    assert os.readlink(link) == "epoch-0002"
    assert atomic.read_pointer(link) == "epoch-0002"
    assert _entries(tmp_path) == ["epoch-0001", "epoch-0002", "last"]


def test_update_symlink_atomic_failed_replace_keeps_old_link(tmp_path, monkeypatch):
    link = tmp_path / "last"
    atomic.update_symlink_atomic(link, "epoch-0001")
    monkeypatch.setattr(atomic.os, "replace", _raise)
    with pytest.raises(Boom):
        atomic.update_symlink_atomic(link, "epoch-0002")
    assert atomic.read_pointer(link) == "epoch-0001"
    assert _entries(tmp_path) == ["last"]


def test_update_symlink_falls_back_to_a_text_file(tmp_path, monkeypatch):
    def no_symlinks(*_args):
        raise OSError("symbolic links are not available")

    monkeypatch.setattr(atomic.os, "symlink", no_symlinks)
    link = tmp_path / "last"
    assert atomic.update_symlink_atomic(link, "epoch-0003") is False
    assert not link.is_symlink()
    assert link.read_text() == "epoch-0003\n"
    assert atomic.read_pointer(link) == "epoch-0003"
    assert atomic.read_pointer(tmp_path / "missing") is None
