"""Interrupted work leaves nothing unusable: a SIGINT/SIGTERM at any moment of a
run's start, of a sweep point's, or of an export leaves either nothing or something
that the next command uses.

The process tests stop a real `python -m mlx` at one step exactly: the private hook
``_MLX_PAUSE_AT=<point>`` (mlx.utils.signals.pause_point) makes it say ``paused at
<point>`` and wait for the signal there. Others send the signal after a range of
delays, for the moments no hook names (inside the directory's creation, the data
loading, the imports).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import pytest
from helpers import cli_env, run_cli, small_classification, write_config

from mlx.errors import RunInterrupted
from mlx.utils.signals import StopSignals

# -- the invariant ---------------------------------------------------------------


def run_dirs(root: Path) -> list[Path]:
    base = root / "outputs"
    return sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def check_invariant(root: Path) -> list[Path]:
    """No run directory without summary.json, none left running; an interrupted
    one resumes to the end or is refused with a reason. Returns the runs."""
    runs = run_dirs(root)
    for run in runs:
        summary_path = run / "summary.json"
        assert summary_path.is_file(), f"{run.name} has no summary.json"
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        assert summary["status"] != "running", f"{run.name} left running"
        if summary["status"] == "completed":  # the signal came too late
            continue
        assert summary["status"] == "interrupted", summary
        resumed = run_cli(["run-experiment", "--resume", str(run), "--quiet"], root)
        assert "Traceback" not in resumed.stderr, resumed.stderr
        if resumed.returncode != 0:  # refused, saying why and what to do
            assert "cannot resume" in resumed.stderr, resumed.stderr
            assert "hint:" in resumed.stderr, resumed.stderr
        else:
            done = json.loads(summary_path.read_text(encoding="utf-8"))
            assert done["status"] == "completed"
    return runs


# -- processes -------------------------------------------------------------------


def start(root: Path, args: Sequence[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        cwd=root,
        env=cli_env(root, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def mlx_args(*args: str) -> list[str]:
    return [sys.executable, "-m", "mlx", *args]


def paused(proc: subprocess.Popen, point: str) -> None:
    """Wait until ``proc`` says it is paused at ``point``."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.strip() == f"paused at {point}":
            return
    proc.communicate()
    raise AssertionError(f"never paused at {point}: {''.join(seen)}")


def stopped(proc: subprocess.Popen, sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    _, err = proc.communicate()
    assert "Traceback" not in err, err
    return proc.returncode, err


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    write_config(tmp_path / "exp.yaml", small_classification(epochs=3))
    return tmp_path


SIGNALS = [(signal.SIGTERM, 143), (signal.SIGINT, 130)]
SIGNAL_IDS = ["sigterm", "sigint"]


# -- the handlers' modes, in this process ----------------------------------------


def test_a_signal_before_anything_exists_stops_at_once() -> None:
    with pytest.raises(RunInterrupted) as raised:
        with StopSignals("nothing was made"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the signal ends this at once
            raise AssertionError("not interrupted")
    assert raised.value.exit_code == 143
    assert raised.value.message == "interrupted by SIGTERM: nothing was made"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_held_step_finishes_and_the_signal_is_told_after() -> None:
    steps = []
    with pytest.raises(RunInterrupted) as raised:
        with StopSignals() as signals:
            with signals.holding():
                os.kill(os.getpid(), signal.SIGINT)
                steps.append("finished")
            steps.append("after")  # never: the held signal stops here
    assert steps == ["finished"]
    assert raised.value.exit_code == 130


def test_polling_notes_the_first_signal_and_a_second_stops_at_once() -> None:
    with StopSignals() as signals, signals.recording():
        with signals.polling():
            os.kill(os.getpid(), signal.SIGTERM)
            assert signals.requested() and signals.signal_name == "SIGTERM"
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
        os.kill(os.getpid(), signal.SIGTERM)  # recording: only noted
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_one_command_installs_one_set_of_handlers() -> None:
    with StopSignals("outer") as outer:
        assert StopSignals.active() is outer
        with StopSignals("inner"):  # not installed: the outer one stays
            assert StopSignals.active() is outer
        assert StopSignals.active() is outer
    assert StopSignals.active() is None


# -- a run's start, point by point -----------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", SIGNALS, ids=SIGNAL_IDS)
@pytest.mark.parametrize(
    "point", ["before-create", "created", "config-written", "set-up"]
)
def test_a_signal_before_training_leaves_no_run(
    root: Path, point: str, sig: int, code: int
) -> None:
    proc = start(
        root, mlx_args("run-experiment", "--config", "exp.yaml"), _MLX_PAUSE_AT=point
    )
    paused(proc, point)
    status, err = stopped(proc, sig)
    name = signal.Signals(sig).name
    assert status == code, err
    assert run_dirs(root) == []
    if point == "before-create":
        assert f"error: interrupted by {name}: no run was created" in err
    else:
        assert f"error: interrupted by {name} before training began: the new run" in err
        assert "was removed" in err


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", SIGNALS, ids=SIGNAL_IDS)
def test_a_signal_as_training_starts_is_a_resumable_interruption(
    root: Path, sig: int, code: int
) -> None:
    proc = start(
        root,
        mlx_args("run-experiment", "--config", "exp.yaml"),
        _MLX_PAUSE_AT="lifecycle",
    )
    paused(proc, "lifecycle")
    status, err = stopped(proc, sig)
    assert status == code, err
    assert "resume with: mlx run-experiment --resume" in err
    (run,) = check_invariant(root)
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "completed" and summary["epochs_completed"] == 3


@pytest.mark.slow
@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_while_the_first_is_handled(root: Path, second: int) -> None:
    proc = start(
        root,
        mlx_args("run-experiment", "--config", "exp.yaml"),
        _MLX_PAUSE_AT="lifecycle",
    )
    paused(proc, "lifecycle")
    proc.send_signal(signal.SIGTERM)
    status, err = stopped(proc, second)
    assert status in (130, 143), err
    check_invariant(root)


@pytest.mark.slow
def test_sigterm_at_many_moments_after_the_directory_appears(root: Path) -> None:
    """The ~50 ms after the run directory appears: every moment leaves no run or an
    interrupted one."""
    for delay in (0.0, 0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.08, 0.12, 0.2):
        proc = start(root, mlx_args("run-experiment", "--config", "exp.yaml"))
        while not run_dirs(root) and proc.poll() is None:
            time.sleep(0.0005)
        time.sleep(delay)
        status, err = stopped(proc, signal.SIGTERM)
        assert status in (0, 143, -signal.SIGTERM), (delay, err)
        for run in check_invariant(root):
            os.rename(run, root / f"done-{delay}-{run.name}")


@pytest.mark.slow
def test_sigterm_at_many_moments_of_the_start(root: Path) -> None:
    """From the process's start (imports, config, data) to training: no run, or an
    interrupted one; a process killed before its handlers exist leaves no run."""
    began = time.monotonic()
    probe = run_cli(["run-experiment", "--config", "exp.yaml", "--quiet"], root)
    assert probe.returncode == 0, probe.stderr
    full = time.monotonic() - began
    for run in run_dirs(root):
        os.rename(run, root / f"probe-{run.name}")
    for fraction in (0.05, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0):
        proc = start(root, mlx_args("run-experiment", "--config", "exp.yaml"))
        time.sleep(full * fraction)
        status, err = stopped(proc, signal.SIGTERM)
        assert status in (0, 143, -signal.SIGTERM), (fraction, err)
        for run in check_invariant(root):
            os.rename(run, root / f"done-{fraction}-{run.name}")


# -- a sweep point's process -----------------------------------------------------


def worker_args(*extra: str) -> list[str]:
    return [sys.executable, "-m", "mlx.sweeps.worker", "--sweep", "s", *extra]


@pytest.mark.slow
@pytest.mark.parametrize("point", ["before-create", "created", "set-up", "lifecycle"])
def test_a_sweep_point_stopped_at_each_step(root: Path, point: str) -> None:
    proc = start(
        root,
        worker_args("--point", "p1", "--config", "exp.yaml"),
        _MLX_PAUSE_AT=point,
    )
    paused(proc, point)
    status, err = stopped(proc, signal.SIGTERM)
    assert status == 143, err
    runs = check_invariant(root)
    assert len(runs) == (1 if point == "lifecycle" else 0)


@pytest.mark.slow
def test_a_sweep_point_stopped_before_its_handlers_leaves_no_run(root: Path) -> None:
    proc = start(root, worker_args("--point", "p1", "--config", "exp.yaml"))
    status, err = stopped(proc, signal.SIGTERM)
    assert status in (143, -signal.SIGTERM), err
    assert run_dirs(root) == []


# -- mlx export ------------------------------------------------------------------

SQLITE_WARNINGS = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::FutureWarning"
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with two finished runs."""
    pytest.importorskip("mlflow.tracking")
    base = tmp_path_factory.mktemp("export")
    (base / "pyproject.toml").write_text("")
    write_config(base / "exp.yaml", small_classification(epochs=2))
    for _ in range(2):
        done = run_cli(["run-experiment", "--config", "exp.yaml", "--quiet"], base)
        assert done.returncode == 0, done.stderr
    return base


def export_args(root: Path, uri: str) -> list[str]:
    return mlx_args("export", *(p.name for p in run_dirs(root)), "--mlflow", uri)


def mlflow_run_ids(uri: str) -> list[str]:
    """The mlx run ID of each MLflow run of the store, read by MLflow's client."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("small")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    return sorted(r.data.tags["mlx.run_id"] for r in runs)


def export_again(root: Path, uri: str) -> None:
    """A later export completes, and the store holds each run once."""
    done = subprocess.run(
        export_args(root, uri), cwd=root, env=cli_env(root), capture_output=True
    )
    assert done.returncode == 0, done.stderr
    assert mlflow_run_ids(uri) == [p.name for p in run_dirs(root)]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".partial"))


@pytest.mark.slow
@SQLITE_WARNINGS
@pytest.mark.parametrize("sig, code", SIGNALS, ids=SIGNAL_IDS)
def test_an_export_stopped_before_a_new_store_exists_leaves_none(
    exported: Path, tmp_path: Path, sig: int, code: int
) -> None:
    store = tmp_path / "mlflow.db"
    proc = start(
        exported,
        export_args(exported, f"sqlite:///{store}"),
        _MLX_PAUSE_AT="mlflow-schema",
    )
    paused(proc, "mlflow-schema")
    status, err = stopped(proc, sig)
    assert status == code, err
    assert "export again to finish it" in err
    assert not store.exists() and leftovers(tmp_path) == []
    export_again(exported, f"sqlite:///{store}")


@pytest.mark.slow
@SQLITE_WARNINGS
def test_an_export_stopped_while_mlflow_creates_the_schema(
    exported: Path, tmp_path: Path
) -> None:
    """However far MLflow got with a new store's schema, a later export uses it."""
    for delay in (0.0, 0.1, 0.3, 0.6, 1.0, 2.0):
        where = tmp_path / f"after-{delay}"
        where.mkdir()
        store = where / "mlflow.db"
        uri = f"sqlite:///{store}"
        proc = start(exported, export_args(exported, uri))
        while not leftovers(where) and proc.poll() is None:
            time.sleep(0.002)
        time.sleep(delay)
        status, err = stopped(proc, signal.SIGTERM)
        # 0 or -SIGTERM: the export was over, the handlers put back
        assert status in (0, 143, -signal.SIGTERM), (delay, err)
        assert leftovers(where) == []
        export_again(exported, uri)


@pytest.mark.slow
@SQLITE_WARNINGS
@pytest.mark.parametrize("store", ["file", "sqlite"])
def test_an_export_stopped_as_it_creates_an_mlflow_run(
    exported: Path, tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The MLflow run is made with its mlx.run_id tag in one step, so the next
    export finds it again rather than making a second."""
    # MLflow 3 refuses the file store unless told otherwise (read back here too)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = str(tmp_path / "mlruns") if store == "file" else f"sqlite:///{tmp_path}/m.db"
    proc = start(exported, export_args(exported, uri), _MLX_PAUSE_AT="mlflow-run")
    paused(proc, "mlflow-run")
    status, err = stopped(proc, signal.SIGTERM)
    assert status == 143, err
    first = run_dirs(exported)[0].name
    assert mlflow_run_ids(uri) == [first]
    export_again(exported, uri)


@pytest.mark.slow
@SQLITE_WARNINGS
def test_a_half_made_store_says_what_to_do(exported: Path, tmp_path: Path) -> None:
    """A store whose creation was stopped part-way (by an older version, by
    MLflow's own tools) is refused by MLflow on every open: the error says that it
    holds no runs and what to do."""
    import sqlite3

    store = tmp_path / "half.db"
    # made in a process of its own: MLflow keeps a store it opened for the process
    made = "from mlflow.tracking import MlflowClient as C; import sys; "
    made += "C(tracking_uri=sys.argv[1]).search_experiments()"
    subprocess.run(
        [sys.executable, "-c", made, f"sqlite:///{store}"],
        check=True,
        capture_output=True,
    )
    database = sqlite3.connect(store)
    # as a stop among the migrations leaves it: a later table made, an earlier
    # revision recorded
    database.execute("UPDATE alembic_version SET version_num = '3da73c924c2f'")
    database.execute("DROP TABLE review_queues")
    database.commit()
    database.close()
    done = run_cli(
        ["export", run_dirs(exported)[0].name, "--mlflow", f"sqlite:///{store}"],
        exported,
    )
    assert done.returncode == 1, done.stderr
    assert f"error: the MLflow store sqlite:///{store} cannot be used" in done.stderr
    assert "holds no runs" in done.stderr
    assert f"hint: remove {store} and export again" in done.stderr
    store.unlink()
    again = subprocess.run(
        export_args(exported, f"sqlite:///{store}"),
        cwd=exported,
        env=cli_env(exported),
        capture_output=True,
    )
    assert again.returncode == 0, again.stderr
    # read with sqlite3: this process's MLflow keeps its engine of the removed file
    with sqlite3.connect(store) as database:
        tagged = database.execute(
            "SELECT value FROM tags WHERE key = 'mlx.run_id' ORDER BY value"
        ).fetchall()
    assert [t[0] for t in tagged] == [p.name for p in run_dirs(exported)]


def test_a_signal_lost_in_a_finalizer_is_raised_again() -> None:
    """A handler that runs inside a finalizer cannot stop the work there (Python
    prints "Exception ignored" and goes on): the signal comes again."""

    class Finalized:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(RunInterrupted):
        with StopSignals():
            Finalized()  # its __del__ runs the handler, whose raise is lost
            time.sleep(5)
            raise AssertionError("not interrupted")
