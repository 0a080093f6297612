"""An interrupted ``mlx export`` leaves no MLflow store or a usable one, and the next
export finishes the job without duplicating runs.

The process tests stop a real `python -m mlx export` at one step exactly through the
private hook ``_MLX_PAUSE_AT=<point>`` (see tests/processes.py), or after a range of
delays for the moments inside MLflow's schema creation that no hook names.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import cli_env, run_cli, small_classification, write_config
from processes import mlx_args, paused, run_dirs, start, stopped

SIGNALS = [(signal.SIGTERM, 143), (signal.SIGINT, 130)]
SIGNAL_IDS = ["sigterm", "sigint"]

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


def export_cli(root: Path, uri: str) -> list[str]:
    """``mlx export`` of every run of ``root`` to ``uri``: the CLI's arguments."""
    return ["export", *(p.name for p in run_dirs(root)), "--mlflow", uri]


def export_args(root: Path, uri: str) -> list[str]:
    return mlx_args(*export_cli(root, uri))


def mlflow_run_ids(uri: str) -> list[str]:
    """The mlx run ID of each MLflow run of the store, read by MLflow's client."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("small")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    return sorted(r.data.tags["mlx.run_id"] for r in runs)


def export_again(root: Path, *uris: str) -> None:
    """Later exports (one per store, in this process: what they prove is the store
    the stopped process left, not a process of their own) complete, and each store
    holds each run once."""
    for uri in uris:
        done = run_cli(export_cli(root, uri), root)
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
    if sig == signal.SIGTERM:  # the store is made the same after either
        export_again(exported, f"sqlite:///{store}")


@pytest.mark.slow
@SQLITE_WARNINGS
def test_an_export_stopped_while_mlflow_creates_the_schema(
    exported: Path, tmp_path: Path
) -> None:
    """However far MLflow got with a new store's schema, a later export uses it."""
    delays = (0.0, 0.3, 1.0)
    # side by side: each export is stopped at its own delay after its partial store
    # appears
    exports = {}
    for delay in delays:
        where = tmp_path / f"after-{delay}"
        where.mkdir()
        uri = f"sqlite:///{where / 'mlflow.db'}"
        exports[delay] = (where, uri, start(exported, export_args(exported, uri)))
    began: dict[float, float] = {}
    signalled: set[float] = set()
    while len(signalled) < len(delays):
        for delay, (where, _, proc) in exports.items():
            if delay not in began and (leftovers(where) or proc.poll() is not None):
                began[delay] = time.monotonic()
            if delay in began and delay not in signalled:
                if time.monotonic() - began[delay] >= delay:
                    proc.send_signal(signal.SIGTERM)
                    signalled.add(delay)
        time.sleep(0.002)
    for delay, (where, _, proc) in exports.items():
        _, err = proc.communicate()
        assert "Traceback" not in err, err
        # 0 or -SIGTERM: the export was over, the handlers put back
        assert proc.returncode in (0, 143, -signal.SIGTERM), (delay, err)
        assert leftovers(where) == []
    export_again(exported, *(uri for _, uri, _ in exports.values()))


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

    from mlflow.tracking import MlflowClient

    store = tmp_path / "half.db"
    # made whole under another name, then copied: MLflow keeps a store it opened
    # for the process, and this process never opens half.db itself
    whole = tmp_path / "whole.db"
    MlflowClient(tracking_uri=f"sqlite:///{whole}").search_experiments()
    shutil.copyfile(whole, store)
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
