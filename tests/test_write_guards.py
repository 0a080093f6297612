"""No write escapes a run through a link inside it.

Each test points one path of a run (a file it writes or a directory it writes into)
at a directory outside the run, runs the command that writes it, and checks that the
command fails with one clear ``error:`` naming the path, and that nothing outside
changed.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import Callable

import pytest
from helpers import run_cli
from run_copies import clone, new_root, snapshot, train_template

from mlx.errors import RunError
from mlx.experiment.console import Console
from mlx.runs import RunDir

RUN = "small-20240103-000000-0001"
RESUME = ["run-experiment", "--resume", RUN, "--set", "training.epochs=3"]
TIMEOUT = 120

needs_symlinks = pytest.mark.skipif(
    not hasattr(os, "symlink") or os.name == "nt", reason="needs POSIX symlinks"
)
pytestmark = needs_symlinks


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_template(tmp_path_factory.mktemp("template"))


@pytest.fixture
def setup(tmp_path: Path, template: Path) -> tuple[Path, Path, Path]:
    """(repository root, the run, a directory outside it holding a few files)."""
    root = new_root(tmp_path)
    run = clone(template, root, RUN)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "notes.txt").write_text("keep me\n")
    return root, run, outside


def _link_file(name: str) -> Callable[[Path, Path], Path]:
    """Move the run's ``name`` outside and leave a symlink to it in its place."""

    def make(run: Path, outside: Path) -> Path:
        path = run / name
        target = outside / path.name
        if path.exists():
            shutil.move(str(path), str(target))
        else:
            target.write_text("outside\n")
        path.symlink_to(target)
        return path

    return make


def _link_dir(name: str, copy: bool = True) -> Callable[[Path, Path], Path]:
    def make(run: Path, outside: Path) -> Path:
        path = run / name
        target = outside / path.name
        if path.exists() and copy:
            shutil.copytree(path, target, symlinks=True)
            shutil.rmtree(path)
        else:
            if path.exists():
                shutil.rmtree(path)
            target.mkdir()
        path.symlink_to(target, target_is_directory=True)
        return path

    return make


def _dangling_dir(name: str) -> Callable[[Path, Path], Path]:
    def make(run: Path, outside: Path) -> Path:
        path = run / name
        if path.exists():
            shutil.rmtree(path)
        path.symlink_to(outside / "not-yet", target_is_directory=True)
        return path

    return make


def _new_checkpoint_linked(run: Path, outside: Path) -> Path:
    # where the resumed run will publish its next checkpoint
    path = run / "checkpoints" / "epoch-0003"
    (outside / "epoch-0003").mkdir()
    path.symlink_to(outside / "epoch-0003", target_is_directory=True)
    return path


def _hard_link(name: str) -> Callable[[Path, Path], Path]:
    def make(run: Path, outside: Path) -> Path:
        path = run / name
        target = outside / path.name
        target.write_text("outside\n")
        if path.exists():
            path.unlink()
        os.link(target, path)
        return path

    return make


def _fifo(name: str) -> Callable[[Path, Path], Path]:
    def make(run: Path, outside: Path) -> Path:
        path = run / name
        path.unlink()
        os.mkfifo(path)
        return path

    return make


def _run_state(run: Path) -> dict[str, tuple[object, ...]]:
    """Every entry of ``run`` (links not followed): its kind, bytes or target, and
    modification time, so a rewrite with the same bytes is noticed too."""
    found: dict[str, tuple[object, ...]] = {}
    for path in sorted(run.rglob("*")):
        info = path.lstat()
        if path.is_symlink():
            found[str(path)] = ("link", os.readlink(path), info.st_mtime_ns)
        elif path.is_file():
            found[str(path)] = ("file", path.read_bytes(), info.st_mtime_ns)
        else:
            found[str(path)] = ("other", info.st_mode, info.st_mtime_ns)
    return found


CASES = {
    "evals-dir-link": (["eval", RUN], _link_dir("evals", copy=False)),
    "evals-dangling-link": (["eval", RUN], _dangling_dir("evals")),
    # the refused evals/ is found before predictions.csv is written
    "evals-link-with-predictions": (
        ["eval", RUN, "--save-predictions"],
        _link_dir("evals", copy=False),
    ),
    "predictions-link": (
        ["eval", RUN, "--save-predictions"],
        _link_file("predictions.csv"),
    ),
    "summary-link": (RESUME, _link_file("summary.json")),
    "metrics-link": (RESUME, _link_file("metrics.jsonl")),
    "config-link": (RESUME, _link_file("config.yaml")),
    "train-log-link": (RESUME, _link_file("train.log")),
    "train-log-hard-link": (RESUME, _hard_link("train.log")),
    "train-log-fifo": (RESUME, _fifo("train.log")),
    "checkpoints-dir-link": (RESUME, _link_dir("checkpoints")),
    "next-checkpoint-link": (RESUME, _new_checkpoint_linked),
    "model-dir-link": (RESUME, _link_dir("model")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_write_through_a_link_out_of_the_run_is_refused(
    setup: tuple[Path, Path, Path], case: str
) -> None:
    root, run, outside = setup
    args, make = CASES[case]
    path = make(run, outside)
    before = snapshot(outside)
    run_before = _run_state(run)
    done = run_cli(args, root, timeout=TIMEOUT)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors, done.stderr
    assert any(f"Refusing to write {path}" in line for line in errors), done.stderr
    assert snapshot(outside) == before
    assert not (outside / "not-yet").exists()
    # refused before anything changed: no file of the run was trimmed, rewritten
    # or marked, not even with the same bytes, and nothing was trained
    assert _run_state(run) == run_before


def test_a_hard_linked_metrics_log_is_replaced_not_appended_to(
    setup: tuple[Path, Path, Path],
) -> None:
    # resume rewrites metrics.jsonl (a new file, by rename) before it appends: the
    # hard link is broken and the file outside keeps its content
    root, run, outside = setup
    records = (run / "metrics.jsonl").read_bytes()
    (outside / "metrics.jsonl").write_bytes(records)
    (run / "metrics.jsonl").unlink()
    os.link(outside / "metrics.jsonl", run / "metrics.jsonl")
    done = run_cli(RESUME, root, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert (outside / "metrics.jsonl").read_bytes() == records
    assert len((run / "metrics.jsonl").read_bytes().splitlines()) == 3


def test_links_that_stay_inside_the_run_are_fine(
    setup: tuple[Path, Path, Path],
) -> None:
    root, run, _outside = setup
    (run / "evals-store").mkdir()
    (run / "evals").symlink_to("evals-store", target_is_directory=True)
    done = run_cli(["eval", RUN], root, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert len(list((run / "evals-store").glob("*.json"))) == 1


def test_a_run_directory_that_is_itself_a_link_is_followed(
    tmp_path: Path, template: Path
) -> None:
    # the run directory is trusted as a whole: its target is the run
    root = new_root(tmp_path)
    elsewhere = clone(template, new_root(tmp_path / "disk"), RUN)
    (root / "outputs" / RUN).symlink_to(elsewhere, target_is_directory=True)
    done = run_cli(["eval", RUN], root, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert len(list((elsewhere / "evals").glob("*.json"))) == 1


# -- every writer of RunDir, from Python (some cannot be reached on an old run) -------


def _fresh(tmp_path: Path) -> tuple[RunDir, Path]:
    run = RunDir.create(tmp_path / "outputs", "guarded")
    outside = tmp_path / "outside"
    outside.mkdir()
    return run, outside


WRITERS: dict[str, tuple[str, Callable[[RunDir, Path], object]]] = {
    "summary": ("summary.json", lambda run, _: run.update_summary(x=1)),
    "config": ("config.yaml", lambda run, _: run.write_config({"a": 1})),
    "original-config": (
        "original_config.yaml",
        lambda run, src: run.write_config({"a": 1}, original_path=src),
    ),
    "environment": ("environment.json", lambda run, _: run.write_environment()),
    "metrics-append": ("metrics.jsonl", lambda run, _: run.append_metrics({"e": 1})),
    "metrics-truncate": ("metrics.jsonl", lambda run, _: run.truncate_metrics(0)),
    "eval": ("evals", lambda run, _: run.write_eval({"m": 1})),
    "checkpoint": (
        "checkpoints",
        lambda run, _: run.save_checkpoint(1, lambda p: (p / "w").write_text("x")),
    ),
    "model": (
        "model",
        lambda run, _: run.save_model(lambda p: (p / "w").write_text("x")),
    ),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_every_run_writer_refuses_a_link_out_of_the_run(
    tmp_path: Path, writer: str
) -> None:
    run, outside = _fresh(tmp_path)
    name, write = WRITERS[writer]
    source = tmp_path / "exp.yaml"
    source.write_text("a: 1\n")
    target = outside / name
    if name in ("evals", "checkpoints", "model"):
        target.mkdir()
    elif name == "summary.json":
        shutil.copy(run.summary_path, target)
    else:
        target.write_text('{"epoch": 1}\n')
    link = run.path / name
    if link.exists():
        link.unlink()
    link.symlink_to(target)
    before = snapshot(outside)
    with pytest.raises(RunError, match="Refusing to write"):
        write(run, source)
    assert snapshot(outside) == before


def test_the_data_record_writer_refuses_a_link(tmp_path: Path) -> None:
    from mlx.runs.records import write_data_record

    run, outside = _fresh(tmp_path)
    (outside / "data.json").write_text("{}")
    (run.path / "data.json").symlink_to(outside / "data.json")

    class Splits:
        task, n_features, n_classes, preprocessing = "regression", 1, None, {}

    with pytest.raises(RunError, match="Refusing to write"):
        write_data_record(run, Splits())
    assert (outside / "data.json").read_text() == "{}"


@pytest.mark.parametrize("kind", ["symlink", "hard-link", "fifo", "directory"])
def test_the_log_file_is_never_written_through_a_link(
    tmp_path: Path, kind: str
) -> None:
    outside = tmp_path / "outside.log"
    outside.write_text("outside\n")
    log = tmp_path / "train.log"
    if kind == "symlink":
        log.symlink_to(outside)
    elif kind == "hard-link":
        os.link(outside, log)
    elif kind == "fifo":
        os.mkfifo(log)
    else:
        log.mkdir()
    console = Console(stream=io.StringIO(), log_file=log)
    with pytest.raises(RunError, match="Refusing to write"):
        console("epoch 1")
    assert outside.read_text() == "outside\n"


def test_the_log_file_gets_one_stamped_line_per_line(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    console = Console(stream=io.StringIO(), log_file=log)
    console("one\ntwo")
    lines = log.read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["one", "two"]
