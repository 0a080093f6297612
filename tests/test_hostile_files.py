"""Files in a run that are not what they claim, through the real CLI.

Each test damages one file of a copy of a real run (a device, a FIFO, a directory, a
huge sparse file, bytes that are not UTF-8, JSON of the wrong shape, fields of the
wrong type or range) and checks that commands on that run fail with one clear
``error:`` naming the file, fast and in bounded memory (every subprocess has a
timeout: a read that blocks or grows without end fails the test), while commands on
the healthy runs beside it go on.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Callable

import pytest
from helpers import run_cli
from run_copies import clone, new_root, snapshot, train_template

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and /dev/zero"),
]

HEALTHY = ("small-20240102-000000-0001", "small-20240104-000000-0002")
BROKEN = "small-20240103-000000-bad0"
TIMEOUT = 60


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_template(tmp_path_factory.mktemp("template"))


@pytest.fixture
def root(tmp_path: Path, template: Path) -> Path:
    root = new_root(tmp_path)
    for run_id in (*HEALTHY, BROKEN):
        clone(template, root, run_id)
    return root


def _cli(args: list, root: Path):
    return run_cli(args, root, timeout=TIMEOUT)


def _assert_clean_error(done, *needles: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith("error: "), done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def _replace(path: Path, make: Callable[[Path], None]) -> None:
    if path.is_dir() and not path.is_symlink():
        import shutil

        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    make(path)


def _write(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def _sparse(size: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with open(path, "wb") as handle:
            handle.truncate(size)

    return make


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _directory(path: Path) -> None:
    path.mkdir()
    (path / "inner").write_text("x")


# -- summary.json: the run is skipped by `mlx runs`, an error for everything else ----

FILE_DAMAGE = {
    "not-utf8": _write(b'{"status": "completed", "name": "\xff\xfe"}'),
    "latin1-name": _write(
        '{"status": "completed", "name": "caf\xe9"}'.encode("latin-1")
    ),
    "a-list": _write(b'["status", "completed"]'),
    "a-string": _write(b'"completed"'),
    "not-json": _write(b'{"status": "compl'),
    "empty": _write(b""),
    "deeply-nested": _write(b"[" * 200_000),
    "huge-integer": _write(b'{"status": "completed", "pid": ' + b"9" * 5000 + b"}"),
    "fifo": _fifo,
    "directory": _directory,
    "dev-zero": _dev_zero,
    "sparse-17MiB": _sparse(17 * 1024 * 1024),
    "dangling-link": lambda path: path.symlink_to(path.parent / "nowhere.json"),
}

FIELD_DAMAGE = {
    "epochs-a-string": {"epochs_completed": "3"},
    "epochs-negative": {"epochs_completed": -1},
    "epochs-huge": {"epochs_completed": 10**30},
    "epochs-a-bool": {"epochs_completed": True},
    "epochs-nan": {"epochs_completed": float("nan")},
    "status-unknown": {"status": "paused"},
    "status-a-number": {"status": 5},
    "pid-huge-running": {"status": "running", "pid": 10**30},
    "pid-a-string": {"pid": "1234"},
    "interval-nan": {"status": "running", "heartbeat_interval": float("nan")},
    "interval-a-string": {"heartbeat_interval": "10"},
    "started-garbage": {"started_at": "yesterday"},
    "started-overflows": {"started_at": "9999-12-31T23:59:59-05:00"},
    "finished-a-number": {"finished_at": 12},
    "best-a-list": {"best_metric": [1, 2]},
    "best-value-a-string": {"best_metric": {"name": "val_loss", "value": "low"}},
    "best-epoch-a-float": {"best_metric": {"name": "x", "value": 1.0, "epoch": 1.5}},
    "final-a-string": {"final_metrics": "good"},
    "timings-a-list": {"timings": [1, 2]},
    "resumed-a-number": {"resumed_at": 5},
    "name-an-object": {"name": {"a": 1}},
    "error-a-number": {"error": 7},
}


def _damage_summary(root: Path, kind: str) -> Path:
    path = root / "outputs" / BROKEN / "summary.json"
    if kind in FILE_DAMAGE:
        _replace(path, FILE_DAMAGE[kind])
    else:
        summary = json.loads(path.read_text(encoding="utf-8"))
        summary.update(FIELD_DAMAGE[kind])
        path.write_text(json.dumps(summary), encoding="utf-8")
    return path


def _listed(done) -> list:
    return [line.split()[0] for line in done.stdout.splitlines()[1:]]


@pytest.mark.parametrize("kind", [*FILE_DAMAGE, *FIELD_DAMAGE])
def test_a_corrupt_summary_is_skipped_by_runs_and_an_error_elsewhere(
    root: Path, kind: str
) -> None:
    path = _damage_summary(root, kind)
    before = snapshot(root / "outputs" / BROKEN)

    listing = _cli(["runs"], root)
    assert listing.returncode == 0, listing.stderr
    assert "Traceback" not in listing.stderr
    assert _listed(listing) == [HEALTHY[1], HEALTHY[0]]
    warnings = [line for line in listing.stderr.splitlines() if line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: Skipped a run: ")
    assert str(path) in warnings[0]

    for args in (["runs", "show", BROKEN], ["eval", BROKEN]):
        _assert_clean_error(_cli(args, root), str(path))
    # the other runs still work
    assert _cli(["runs", "show", HEALTHY[0]], root).returncode == 0
    assert snapshot(root / "outputs" / BROKEN) == before


@pytest.mark.parametrize(
    "kind",
    ["not-utf8", "fifo", "epochs-a-string", "resumed-a-number", "pid-huge-running"],
)
def test_resuming_a_run_with_a_corrupt_summary_is_refused(
    root: Path, kind: str
) -> None:
    path = _damage_summary(root, kind)
    before = snapshot(root / "outputs" / BROKEN)
    done = _cli(
        ["run-experiment", "--resume", BROKEN, "--set", "training.epochs=3"], root
    )
    _assert_clean_error(done, str(path))
    assert snapshot(root / "outputs" / BROKEN) == before


def test_listing_shows_odd_but_sound_values_safely(root: Path) -> None:
    path = root / "outputs" / BROKEN / "summary.json"
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary.update(
        name="evil\x1b[2J\nname",
        run_id=BROKEN,
        best_metric={"name": "val\x1b[31mloss", "value": float("nan"), "epoch": 2},
        final_metrics={"val_loss": 10**400},
        epochs_completed=2**62,
    )
    path.write_text(json.dumps(summary), encoding="utf-8")
    listing = _cli(["runs"], root)
    assert listing.returncode == 0, listing.stderr
    assert _listed(listing) == [HEALTHY[1], BROKEN, HEALTHY[0]]
    assert "\x1b" not in listing.stdout
    assert str(2**62) in listing.stdout
    shown = _cli(["runs", "show", BROKEN], root)
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout
    assert "Best metric:" in shown.stdout and "nan" in shown.stdout


# -- checkpoint files: eval and resume fail fast, naming the file ----------------------


def _header(entries: dict, body: bytes = b"") -> bytes:
    header = json.dumps(entries).encode()
    return struct.pack("<Q", len(header)) + header + body


WEIGHTS_DAMAGE = {
    "dev-zero": (_dev_zero, "character device"),
    "fifo": (_fifo, "FIFO"),
    "directory": (_directory, "directory"),
    "empty": (_write(b""), "too short"),
    "five-bytes": (_write(b"\x01\x02\x03\x04\x05"), "too short"),
    "header-length-a-terabyte": (
        _write(struct.pack("<Q", 2**40) + b"{}"),
        "header claims 1099511627776 bytes",
    ),
    "header-length-max": (_write(b"\xff" * 8 + b"{}"), "header claims"),
    "tensors-claim-a-terabyte": (
        _write(
            _header(
                {"w": {"dtype": "F64", "shape": [2**37], "data_offsets": [0, 2**40]}}
            )
        ),
        "header describes",
    ),
    "header-not-json": (_write(struct.pack("<Q", 4) + b"{{{{"), "not valid JSON"),
    "header-a-list": (_write(_header([1, 2])), "not a JSON object"),  # type: ignore[arg-type]
    "offsets-strings": (
        _write(
            _header({"w": {"dtype": "F64", "shape": [1], "data_offsets": ["0", "8"]}})
        ),
        "data_offsets",
    ),
    "offsets-backwards": (
        _write(
            _header(
                {"w": {"dtype": "F64", "shape": [1], "data_offsets": [8, 0]}}, b"\0" * 8
            )
        ),
        "data_offsets",
    ),
    "sparse-beyond-memory": (None, "more than this machine's memory"),
}


def _physical_memory() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


# the optimizer file goes through the same reader: a few kinds are enough for it
_WEIGHTS_CASES = [("model.safetensors", kind) for kind in WEIGHTS_DAMAGE] + [
    ("optimizer.safetensors", kind) for kind in ("dev-zero", "fifo", "empty")
]


@pytest.mark.parametrize(("file", "kind"), _WEIGHTS_CASES)
def test_damaged_weights_fail_eval_fast(root: Path, kind: str, file: str) -> None:
    path = root / "outputs" / BROKEN / "model" / file
    make, needle = WEIGHTS_DAMAGE[kind]
    if make is None:
        make = _sparse(_physical_memory() + 2**30)
        try:
            _replace(path, make)
        except OSError as exc:
            pytest.skip(f"this file system has no sparse files that large: {exc}")
    else:
        _replace(path, make)
    done = _cli(["eval", BROKEN], root)
    _assert_clean_error(done, str(path), needle)
    if kind in ("dev-zero", "fifo"):  # the message names the file's role
        role = "the optimizer state" if file.startswith("optimizer") else "weights"
        assert role in done.stderr, done.stderr
    assert _cli(["eval", HEALTHY[0]], root).returncode == 0


CONFIG_DAMAGE = {
    "fifo": (_fifo, "FIFO"),
    "dev-zero": (_dev_zero, "character device"),
    "directory": (_directory, "directory"),
    "not-utf8": (_write(b'{"format_version": 1, "x": "\xff"}'), "not UTF-8"),
    "a-list": (_write(b"[1]"), "expected a JSON object"),
    "sparse-17MiB": (_sparse(17 * 1024 * 1024), "larger than the 16 MiB"),
    "files-a-list": (None, "'files' must map"),
    "architecture-a-list": (None, "'architecture' must be a mapping"),
}


@pytest.mark.parametrize("kind", list(CONFIG_DAMAGE))
def test_damaged_checkpoint_config_fails_eval(root: Path, kind: str) -> None:
    path = root / "outputs" / BROKEN / "model" / "config.json"
    make, needle = CONFIG_DAMAGE[kind]
    if make is None:
        config = json.loads(path.read_text(encoding="utf-8"))
        if kind == "files-a-list":
            config["files"] = ["model.safetensors"]
        else:
            config["architecture"] = [8, 16, 3]
        path.write_text(json.dumps(config), encoding="utf-8")
    else:
        _replace(path, make)
    done = _cli(["eval", BROKEN], root)
    _assert_clean_error(done, needle)
    if kind != "architecture-a-list":
        assert str(path) in done.stderr


RUN_FILE_DAMAGE = {
    "fifo": (_fifo, "FIFO"),
    "dev-zero": (_dev_zero, "character device"),
    "directory": (_directory, "directory"),
    "not-utf8": (_write(b"name: \xff\n"), "not UTF-8"),
}


@pytest.mark.parametrize("kind", list(RUN_FILE_DAMAGE))
@pytest.mark.parametrize("file", ["config.yaml", "data.json"])
def test_damaged_run_files_fail_eval(root: Path, file: str, kind: str) -> None:
    path = root / "outputs" / BROKEN / file
    make, needle = RUN_FILE_DAMAGE[kind]
    _replace(path, make)
    _assert_clean_error(_cli(["eval", BROKEN], root), str(path), needle)


# fields of data.json of the wrong type or value: (field, new value, message)
DATA_FIELD_DAMAGE = {
    "not-an-object": (None, [1, 2], "it must hold a JSON object"),
    "dtype-int8": ("preprocessing.feature_dtype", "int8", "'preprocessing.feature"),
    "dtype-number": ("preprocessing.feature_dtype", 5, "'preprocessing.feature"),
    "preprocessing-text": ("preprocessing", "x", "'preprocessing' must be"),
    "task-number": ("task", 5, "'task' must be"),
    "task-unknown": ("task", "clustering", "'task' must be"),
    "split-number": ("test", 5, "'test' must be"),
    "split-no-digest": ("train", {"shape": [40, 8]}, "'train' must be"),
    "split-float-shape": ("val", {"shape": [1.5], "sha256": "ab"}, "'val' must be"),
}


@pytest.mark.parametrize("kind", list(DATA_FIELD_DAMAGE))
def test_a_data_record_with_a_corrupt_field_is_an_error_naming_it(
    root: Path, kind: str
) -> None:
    run = root / "outputs" / BROKEN
    path = run / "data.json"
    field, value, needle = DATA_FIELD_DAMAGE[kind]
    record = json.loads(path.read_text())
    if field is None:
        record = value
    else:
        *parents, last = field.split(".")
        target = record
        for key in parents:
            target = target[key]
        target[last] = value
    path.write_text(json.dumps(record))
    before = snapshot(run)
    for args in (
        ["eval", BROKEN],
        ["run-experiment", "--resume", BROKEN, "--set", "training.epochs=3"],
    ):
        done = _cli(args, root)
        _assert_clean_error(done, f"{path} is corrupt: ", needle)
    assert snapshot(run) == before
    assert _cli(["eval", HEALTHY[0]], root).returncode == 0


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory"])
@pytest.mark.parametrize(
    "file",
    [
        "config.yaml",
        "metrics.jsonl",
        "checkpoints/epoch-0002/trainer_state.json",
        "checkpoints/epoch-0002/model.safetensors",
        "checkpoints/epoch-0002/config.json",
    ],
)
def test_damaged_files_fail_resume_and_change_nothing(
    root: Path, file: str, kind: str
) -> None:
    path = root / "outputs" / BROKEN / file
    make, needle = RUN_FILE_DAMAGE[kind]
    _replace(path, make)
    summary = (root / "outputs" / BROKEN / "summary.json").read_bytes()
    done = _cli(
        ["run-experiment", "--resume", BROKEN, "--set", "training.epochs=3"], root
    )
    _assert_clean_error(done, needle)
    assert str(path) in done.stderr
    assert (root / "outputs" / BROKEN / "summary.json").read_bytes() == summary


def test_a_damaged_metrics_log_is_an_error_for_runs_show(root: Path) -> None:
    path = root / "outputs" / BROKEN / "metrics.jsonl"
    _replace(path, _fifo)
    _assert_clean_error(_cli(["runs", "show", BROKEN], root), str(path), "FIFO")
    listing = _cli(["runs"], root)  # the listing reads summaries only
    assert listing.returncode == 0 and BROKEN in listing.stdout


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "sparse"])
def test_a_checkpoints_last_pointer_that_is_no_link_falls_back(
    root: Path, kind: str
) -> None:
    last = root / "outputs" / BROKEN / "checkpoints" / "last"
    make = {"fifo": _fifo, "dev-zero": _dev_zero, "sparse": _sparse(2**30)}[kind]
    _replace(last, make)
    shown = _cli(["runs", "show", BROKEN], root)
    assert shown.returncode == 0, shown.stderr
    assert "checkpoints/epoch-0002" in shown.stdout
    done = _cli(
        ["run-experiment", "--resume", BROKEN, "--set", "training.epochs=3"], root
    )
    assert done.returncode == 0, done.stderr
    assert "resuming from epoch-0002" in done.stderr
