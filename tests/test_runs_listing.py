from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from mlx.errors import DataWarning, RunError
from mlx.runs import (
    RunDir,
    default_runs_root,
    find_run,
    format_run,
    format_runs_table,
    list_runs,
)

UTC = dt.timezone.utc


def _at(day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2024, 5, day, hour, 0, 0, tzinfo=UTC)


@pytest.fixture
def outputs(tmp_path):
    """Three finished runs: two at depth 1, one in an experiment subdirectory."""
    root = tmp_path / "outputs"
    a = RunDir.create(root, "alpha", now=_at(1))
    a.mark_completed({"accuracy": 0.8, "log_loss": 0.5}, epochs_completed=3)
    b = RunDir.create(root / "mnist-experiment", "mnist", now=_at(3))
    b.mark_completed(
        {"accuracy": 0.9},
        best_metric={"name": "val_accuracy", "value": 0.93, "epoch": 4},
        epochs_completed=5,
    )
    c = RunDir.create(root, "alpha", now=_at(2))
    c.mark_failed(RuntimeError("diverged"), epochs_completed=1)
    return root, a, b, c


def test_list_runs_newest_first_including_depth_two(outputs):
    root, a, b, c = outputs
    infos = list_runs(root)
    assert [i.run_id for i in infos] == [b.run_id, c.run_id, a.run_id]
    first = infos[0]
    assert first.name == "mnist"
    assert first.status == "completed"
    assert first.epochs_completed == 5
    assert (first.metric_name, first.metric_value) == ("val_accuracy", 0.93)
    assert first.started_at == _at(3)
    assert first.path == b.path
    assert infos[1].status == "failed"
    assert (infos[2].metric_name, infos[2].metric_value) == ("accuracy", 0.8)


def test_list_runs_orders_same_second_runs_by_start_time(tmp_path):
    first = RunDir.create(tmp_path, "x", now=_at(1).replace(microsecond=5))
    second = RunDir.create(tmp_path, "x", now=_at(1).replace(microsecond=7))
    assert [i.run_id for i in list_runs(tmp_path)] == [second.run_id, first.run_id]


def test_list_runs_reports_lost_runs(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run = RunDir.create(tmp_path, "crashed")
    run.update_summary(pid=proc.pid)
    live = RunDir.create(tmp_path, "live")
    statuses = {i.run_id: i.status for i in list_runs(tmp_path)}
    assert statuses == {run.run_id: "lost", live.run_id: "running"}


def test_list_runs_skips_corrupt_summaries_with_warning(outputs):
    root, a, b, c = outputs
    (b.path / "summary.json").write_text("{not json")
    broken = root / "alpha-20240509-000000-beef"
    broken.mkdir()  # named like a run, but its summary was never written
    (root / "notes").mkdir()  # an unrelated directory is not a run
    with pytest.warns(DataWarning) as caught:
        infos = list_runs(root)
    assert [i.run_id for i in infos] == [c.run_id, a.run_id]
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2
    assert any("corrupt summary" in m and b.run_id in m for m in messages)
    assert any("no summary.json" in m for m in messages)


def test_list_runs_of_a_missing_root_is_empty(tmp_path):
    assert list_runs(tmp_path / "nowhere") == []


def test_default_root_is_repository_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("MLX_ROOT", str(tmp_path))
    assert default_runs_root() == tmp_path.resolve() / "outputs"
    run = RunDir.create(tmp_path / "outputs" / "exp", "exp")
    assert [i.run_id for i in list_runs()] == [run.run_id]
    assert find_run(run.run_id) == run


def test_find_run_by_id_and_by_path(outputs):
    root, a, b, c = outputs
    assert find_run(b.run_id, root) == b  # found at depth 2
    assert find_run(a.run_id, root).path == a.path
    assert find_run(str(c.path), root) == c
    assert find_run(c.path, root) == c


def test_find_run_by_relative_path(outputs, monkeypatch):
    root, a, b, c = outputs
    monkeypatch.chdir(root)
    assert find_run(os.path.join("mnist-experiment", b.run_id)) == b
    assert find_run(a.run_id) == a  # a bare directory name in the cwd


def test_find_run_by_unique_prefix(outputs):
    root, a, b, c = outputs
    assert find_run("mnist", root) == b
    assert find_run("alpha-20240501", root) == a


def test_find_run_ambiguous_lists_matches_newest_first(outputs):
    root, a, b, c = outputs
    with pytest.raises(RunError, match="'alpha' matches 2 runs") as info:
        find_run("alpha", root)
    message = str(info.value)
    assert message.index(c.run_id) < message.index(a.run_id)
    assert info.value.hint


def test_find_run_same_id_in_two_directories_is_ambiguous(outputs):
    root, a, b, c = outputs
    copy = root / "elsewhere" / a.run_id
    copy.mkdir(parents=True)
    (copy / "summary.json").write_text(a.summary_path.read_text())
    with pytest.raises(RunError, match="matches 2 runs") as info:
        find_run(a.run_id, root)
    assert str(copy) in str(info.value) and str(a.path) in str(info.value)


def test_find_run_missing_suggests_near_matches(outputs):
    root, a, b, c = outputs
    typo = b.run_id.replace("mnist", "mnsit")
    with pytest.raises(RunError, match="No run") as info:
        find_run(typo, root)
    assert b.run_id in str(info.value)
    assert "did you mean" in str(info.value)


def test_find_run_missing_path_or_root(tmp_path):
    with pytest.raises(RunError, match="No run directory at"):
        find_run(str(tmp_path / "nope" / "run"), tmp_path)
    with pytest.raises(RunError, match="does not exist"):
        find_run("exp-20240101-000000-abcd", tmp_path / "missing")
    with pytest.raises(RunError, match=r"No run 'zzz'.*\.$"):
        find_run("zzz", tmp_path)


def test_format_runs_table_aligns_columns(outputs):
    root, a, b, c = outputs
    table = format_runs_table(list_runs(root))
    lines = table.splitlines()
    assert lines[0].split() == [
        "RUN",
        "ID",
        "STATUS",
        "EPOCHS",
        "BEST/FINAL",
        "METRIC",
        "STARTED",
        "(UTC)",
    ]
    assert len(lines) == 4
    status_column = lines[0].index("STATUS")
    assert [line[status_column:].split()[0] for line in lines[1:]] == [
        "completed",
        "failed",
        "completed",
    ]
    # one run's best metric, another's final: each value says which it is
    assert "val_accuracy=0.93 (best)" in lines[1]
    assert "accuracy=0.8 (final)" in lines[3]
    assert "2024-05-03 12:00:00" in lines[1]
    assert "\x1b" not in table
    assert format_runs_table([]) == "No runs found."


def _fields(text: str) -> dict:
    top = [line for line in text.splitlines() if not line.startswith(" ")]
    starts = {
        len(line) - len(line.split(":", 1)[1].lstrip())
        for line in top
        if line[-1] != ":"
    }
    assert len(starts) == 1  # values are aligned in one column
    return {k: v.strip() for k, v in (line.split(":", 1) for line in top)}


def test_format_run_shows_the_details(outputs):
    root, a, b, c = outputs
    b.save_checkpoint(5, lambda p: (p / "w").write_text("x"))
    b.append_metrics({"epoch": 1})
    b.write_eval({"accuracy": 0.9})
    text = format_run(b)
    fields = _fields(text)
    assert fields["Run"] == b.run_id
    assert fields["Status"] == "completed"
    assert fields["Path"] == str(b.path)
    assert fields["Best metric"] == "val_accuracy = 0.93 (epoch 4)"
    assert fields["Checkpoint"] == os.path.join("checkpoints", "epoch-0005")
    assert fields["Evaluations"].startswith("1 (latest evals/")
    assert fields["Metrics log"] == "1 records"
    assert fields["Epochs"] == "5"
    assert "Final metrics:\n  accuracy  0.9" in text
    assert "\x1b" not in text
    failed = _fields(format_run(c.path))
    assert failed["Error"] == "RuntimeError: diverged"
    assert failed["Model"] == "not saved"
    assert failed["Status"] == "failed"
