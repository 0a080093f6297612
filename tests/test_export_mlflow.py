"""`mlx export RUN... --mlflow URI`: runs read back with MLflow's own client.

The server tests start a real `mlflow server` (sqlite backend, artifacts served over
HTTP) on a free port of 127.0.0.1 for the module, and stop it after.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from helpers import REPO_ROOT, cli_env, run_cli, small_classification, write_config

mlflow_tracking = pytest.importorskip("mlflow.tracking")
MlflowClient = mlflow_tracking.MlflowClient

# MLflow's sqlite store (SQLAlchemy) and its other dependencies issue deprecation
# notices of their own when the test reads a store in this process
SQLITE_WARNINGS = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::FutureWarning"
)


# -- oracles: what the run's own files say ----------------------------------------


def _flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def expected_params(run_dir: Path) -> dict[str, str]:
    config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    return {
        key: json.dumps(value) if isinstance(value, (list, dict)) else str(value)
        for key, value in _flatten(config).items()
    }


def expected_histories(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    histories: dict[str, list[tuple[int, float]]] = {}
    for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        for key, value in record.items():
            if key == "epoch" or value is None or isinstance(value, bool):
                continue
            histories.setdefault(key, []).append((record["epoch"], float(value)))
    return histories


def millis(stamp: str) -> int:
    from datetime import datetime

    return int(round(datetime.fromisoformat(stamp).timestamp() * 1000))


def summary_of(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))


def evals_of(run_dir: Path) -> list[dict[str, Any]]:
    return [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((run_dir / "evals").glob("*.json"))
    ]


def history(client: Any, run_id: str, key: str) -> list[tuple[int, float]]:
    points = client.get_metric_history(run_id, key)
    return sorted((m.step, m.value) for m in points)


def mlflow_runs(client: Any, experiment: str) -> list[Any]:
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment!r}"
    return client.search_runs([found.experiment_id])


def by_tag(runs: list[Any]) -> dict[str, Any]:
    return {r.data.tags["mlx.run_id"]: r for r in runs}


def assert_exported(client: Any, mlflow_run: Any, run_dir: Path) -> None:
    """Everything the run's files say is what MLflow holds."""
    summary = summary_of(run_dir)
    run = client.get_run(mlflow_run.info.run_id)
    assert run.data.params == expected_params(run_dir)

    expected = expected_histories(run_dir)
    assert {k for k in run.data.metrics if not k.startswith("eval/")} == set(expected)
    for key, points in expected.items():
        assert history(client, run.info.run_id, key) == points, key
    # each epoch's time lies inside the process segment that trained it
    (segment,) = summary["timings"]["segments"]
    low, high = millis(segment["started_at"]), millis(segment["finished_at"])
    stamps = [
        m.timestamp for m in client.get_metric_history(run.info.run_id, "train_loss")
    ]
    assert all(low <= t <= high for t in stamps), (low, stamps, high)
    assert stamps == sorted(stamps)

    config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    assert run.data.tags["mlx.run_id"] == run_dir.name
    assert run.data.tags["mlx.status"] == "completed"
    assert (
        run.data.tags["mlx.config_hash"]
        == hashlib.sha256(canonical.encode()).hexdigest()
    )
    assert run.data.tags["mlflow.runName"] == run_dir.name
    assert run.info.status == "FINISHED"
    assert run.info.start_time == millis(summary["started_at"])
    assert run.info.end_time == millis(summary["finished_at"])

    top = {f.path: f.is_dir for f in client.list_artifacts(run.info.run_id)}
    assert top == {"config.yaml": False, "summary.json": False, "model": True}
    model = {Path(f.path).name for f in client.list_artifacts(run.info.run_id, "model")}
    assert model == set(os.listdir(run_dir / "model"))


def assert_evals(client: Any, mlflow_run: Any, run_dir: Path, step: int) -> None:
    (result,) = evals_of(run_dir)
    for name, value in result["metrics"].items():
        key = f"eval/{result['split']}/{name}"
        assert history(client, mlflow_run.info.run_id, key) == [(step, value)], key


# -- fixtures -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{base / 'mlflow.db'}",
        "--artifacts-destination",
        str(base / "artifacts"),
    ]
    log = open(base / "server.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        command, cwd=base, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        # a readiness wait, not a speed check: it ends as soon as the server answers
        deadline = time.monotonic() + 300
        while True:
            if server.poll() is not None:
                raise RuntimeError(
                    "mlflow server exited:\n" + (base / "server.log").read_text()
                )
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not answer")
            time.sleep(0.5)
        yield uri
    finally:
        # killed outright: nothing reads its store afterwards, and a graceful stop
        # waits seconds for its workers and open connections
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.wait()
        log.close()


def train(root: Path, name: str, **training: Any) -> Path:
    config = small_classification(epochs=3, **training)
    config["name"] = name
    config["dataset"]["params"]["n_samples"] = 200
    config["output"] = {"directory": str(root / "outputs")}
    path = write_config(root / f"{name}.yaml", config)
    done = run_cli(["run-experiment", "--config", str(path), "--quiet"], root)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[1]
    return root / "outputs" / run_id


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("runs")
    first = train(root, "tiny")
    second = train(root, "tiny", learning_rate=0.05)
    for run_dir, checkpoint in ((first, "final"), (second, "epoch-2")):
        done = run_cli(["eval", str(run_dir), "--checkpoint", checkpoint], root)
        assert done.returncode == 0, done.stderr
    return root, first, second


def export(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run_cli(["export", *args], root, env=cli_env(root, **env))


# -- against a real tracking server -------------------------------------------------


@pytest.mark.slow
def test_export_to_a_server_and_again_without_duplicates(
    mlflow_server: str, two_runs: tuple[Path, Path, Path]
) -> None:
    root, first, second = two_runs
    done = export(root, first.name, second.name, "--mlflow", mlflow_server)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stdout.splitlines() if not line.startswith(" ")]
    assert [line.split(":")[0] for line in lines] == [first.name, second.name]
    assert all(" created MLflow run " in line for line in lines)
    assert "View run" not in done.stdout  # MLflow's own stdout line is ours now

    client = MlflowClient(mlflow_server)
    runs = by_tag(mlflow_runs(client, "tiny"))
    assert set(runs) == {first.name, second.name}
    assert_exported(client, runs[first.name], first)
    assert_exported(client, runs[second.name], second)
    assert_evals(client, runs[first.name], first, step=3)  # the final model: epoch 3
    assert_evals(client, runs[second.name], second, step=2)
    # the artifacts came over HTTP: their bytes are the run's
    fetched = client.download_artifacts(
        runs[first.name].info.run_id, "config.yaml", str(root)
    )
    assert Path(fetched).read_bytes() == (first / "config.yaml").read_bytes()

    again = export(root, first.name, second.name, "--mlflow", mlflow_server)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count(" updated MLflow run ") == 2
    assert " 0 metric values logged" in again.stdout
    after = mlflow_runs(client, "tiny")
    assert len(after) == 2  # one MLflow run per mlx run, still
    rerun = by_tag(after)
    assert {k: r.info.run_id for k, r in rerun.items()} == {
        k: r.info.run_id for k, r in runs.items()
    }
    assert_exported(client, rerun[first.name], first)
    assert_evals(client, rerun[second.name], second, step=2)


@pytest.mark.slow
def test_a_resumed_run_adds_its_new_epochs_only(
    mlflow_server: str, tmp_path: Path
) -> None:
    run_dir = train(tmp_path, "grows")
    assert run_cli(["eval", str(run_dir)], tmp_path).returncode == 0
    done = export(tmp_path, str(run_dir), "--mlflow", mlflow_server)
    assert done.returncode == 0, done.stderr
    resumed = run_cli(
        ["run-experiment", "--resume", run_dir.name, "--set", "training.epochs=5"],
        tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert run_cli(["eval", str(run_dir)], tmp_path).returncode == 0
    again = export(tmp_path, str(run_dir), "--mlflow", mlflow_server)
    assert again.returncode == 0, again.stderr
    # MLflow refuses to change a param: the first value stays, and the user is told
    assert "param 'training.epochs' is '3' in MLflow and '5' now" in again.stderr

    client = MlflowClient(mlflow_server)
    (run,) = mlflow_runs(client, "grows")
    for key, points in expected_histories(run_dir).items():
        assert [p[0] for p in points] == [1, 2, 3, 4, 5]
        assert history(client, run.info.run_id, key) == points, key
    assert run.data.tags["mlx.epochs_completed"] == "5"
    # the final model was evaluated after 3 epochs, then again after 5
    before, after = evals_of(run_dir)
    for name in before["metrics"]:
        assert history(client, run.info.run_id, f"eval/test/{name}") == [
            (3, before["metrics"][name]),
            (5, after["metrics"][name]),
        ]


@pytest.mark.slow
def test_experiment_option_names_the_experiment(
    mlflow_server: str, two_runs: tuple[Path, Path, Path]
) -> None:
    root, first, _ = two_runs
    done = export(root, first.name, "--mlflow", mlflow_server, "--experiment", "team a")
    assert done.returncode == 0, done.stderr
    client = MlflowClient(mlflow_server)
    (run,) = mlflow_runs(client, "team a")
    assert_exported(client, run, first)


@pytest.mark.slow
def test_refused_connection_is_one_error_line(
    two_runs: tuple[Path, Path, Path],
) -> None:
    root, first, _ = two_runs
    port = free_port()  # nothing listens there
    done = export(root, first.name, "--mlflow", f"http://127.0.0.1:{port}")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(
        f"error: cannot reach the MLflow tracking server at http://127.0.0.1:{port} "
        "(connection refused)\n"
    )
    assert done.stdout == ""


@pytest.mark.slow
def test_a_host_that_does_not_resolve_is_said_so(
    one_run: tuple[Path, Path],
) -> None:
    root, run_dir = one_run
    uri = "http://no-such-host.invalid:5000"  # .invalid never resolves (RFC 2606)
    done = export(root, str(run_dir), "--mlflow", uri)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: cannot reach the MLflow tracking server at {uri}: its host name "
        "does not resolve",
        "hint: check the host in the --mlflow URI",
    ]


def test_failures_are_told_apart_by_what_the_client_says() -> None:
    from mlx.outputs.mlflow import _failure

    uri = "http://example.invalid:5000"
    # urllib3 1.x says "Failed to establish a new connection" for both
    unresolved = OSError(
        "HTTPConnectionPool(host='example.invalid', port=5000): Max retries "
        "exceeded (Caused by NewConnectionError('Failed to establish a new "
        "connection: [Errno -2] Name or service not known'))"
    )
    refused = OSError(
        "HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded (Caused "
        "by NewConnectionError('Failed to establish a new connection: [Errno 111] "
        "Connection refused'))"
    )
    assert _failure(uri, unresolved).message.endswith("does not resolve")
    assert _failure(uri, refused).message.endswith("(connection refused)")


# -- local stores, no server ----------------------------------------------------------


@pytest.fixture(scope="module")
def one_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("one")
    run_dir = train(root, "local")
    done = run_cli(["eval", str(run_dir)], root)
    assert done.returncode == 0, done.stderr
    return root, run_dir


@SQLITE_WARNINGS
@pytest.mark.slow
def test_sqlite_store_and_deleted_run_restored(one_run: tuple[Path, Path]) -> None:
    root, run_dir = one_run
    uri = f"sqlite:///{root / 'store.db'}"
    for _ in range(2):
        done = export(root, str(run_dir), "--mlflow", uri)
        assert done.returncode == 0, done.stderr
    client = MlflowClient(uri)
    (run,) = mlflow_runs(client, "local")
    assert_exported(client, run, run_dir)
    assert_evals(client, run, run_dir, step=3)

    # a deleted MLflow run comes back, not a second one
    client.delete_run(run.info.run_id)
    done = export(root, str(run_dir), "--mlflow", uri)
    assert done.returncode == 0, done.stderr
    assert f"restored the deleted MLflow run {run.info.run_id}" in done.stderr
    (again,) = mlflow_runs(client, "local")
    assert again.info.run_id == run.info.run_id
    assert_exported(client, again, run_dir)


def test_file_store_histories_not_doubled(
    one_run: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # MLflow's file store appends a second point when a step is logged twice; MLflow
    # 3 refuses the file store unless MLFLOW_ALLOW_FILE_STORE says otherwise
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    root, run_dir = one_run
    store = root / "filestore"
    for _ in range(3):
        done = export(
            root, str(run_dir), "--mlflow", str(store), MLFLOW_ALLOW_FILE_STORE="true"
        )
        assert done.returncode == 0, done.stderr
    client = MlflowClient(str(store))
    (run,) = mlflow_runs(client, "local")
    assert_exported(client, run, run_dir)
    lines = next(store.glob("*/*/metrics/train_loss")).read_text().splitlines()
    assert len(lines) == 3


@SQLITE_WARNINGS
@pytest.mark.slow
def test_a_run_in_progress_then_finished(
    one_run: tuple[Path, Path], tmp_path: Path
) -> None:
    from mlx.runs.lock import process_start

    _, finished = one_run
    run_dir = tmp_path / "outputs" / finished.name
    shutil.copytree(finished, run_dir)
    # the same run as it was after two epochs, while this process trained it
    lines = (finished / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    (run_dir / "metrics.jsonl").write_text(
        "\n".join(lines[:2]) + "\n", encoding="utf-8"
    )
    summary = summary_of(finished)
    summary.update(
        status="running",
        pid=os.getpid(),
        process_start=process_start(os.getpid()),
        host=socket.gethostname(),
        finished_at=None,
        epochs_completed=2,
        timings={},
    )
    (run_dir / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    shutil.rmtree(run_dir / "model")
    shutil.rmtree(run_dir / "evals")
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    done = export(tmp_path, str(run_dir), "--mlflow", uri)
    assert done.returncode == 0, done.stderr
    assert "no model/ yet: not uploaded" in done.stderr

    client = MlflowClient(uri)
    (run,) = mlflow_runs(client, "local")
    assert run.info.status == "RUNNING"
    assert run.data.tags["mlx.status"] == "running"
    assert (
        history(client, run.info.run_id, "val_loss")
        == expected_histories(run_dir)["val_loss"]
    )
    assert len(history(client, run.info.run_id, "val_loss")) == 2
    assert {f.path for f in client.list_artifacts(run.info.run_id)} == {
        "config.yaml",
        "summary.json",
    }

    # it finished: the third epoch, the model and the evaluation arrive
    shutil.rmtree(run_dir)
    shutil.copytree(finished, run_dir)
    done = export(tmp_path, str(run_dir), "--mlflow", uri)
    assert done.returncode == 0, done.stderr
    (again,) = mlflow_runs(client, "local")
    assert again.info.run_id == run.info.run_id
    assert_exported(client, again, run_dir)
    assert_evals(client, again, run_dir, step=3)


@SQLITE_WARNINGS
@pytest.mark.slow
def test_long_param_is_truncated_with_a_note(tmp_path: Path) -> None:
    config = small_classification(epochs=1)
    config["name"] = "long"
    config["description"] = "word " * 2000  # 10,000 characters
    config["output"] = {"directory": str(tmp_path / "outputs")}
    path = write_config(tmp_path / "long.yaml", config)
    done = run_cli(["run-experiment", "--config", str(path), "--quiet"], tmp_path)
    assert done.returncode == 0, done.stderr
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    done = export(tmp_path, done.stdout.split()[1], "--mlflow", uri)
    assert done.returncode == 0, done.stderr
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    assert (
        f"param 'description' is 10000 characters, over MLflow's limit of "
        f"{MAX_PARAM_VAL_LENGTH}: truncated" in done.stderr
    )
    (run,) = mlflow_runs(MlflowClient(uri), "long")
    text = run.data.params["description"]
    assert len(text) == MAX_PARAM_VAL_LENGTH
    assert text == config["description"][: MAX_PARAM_VAL_LENGTH - 3] + "..."


_OPEN_PARAMS = """
from examples.custom_models import SoftmaxRegression


class OpenParams(SoftmaxRegression):
    def __init__(self, n_features=1, n_classes=2, **options):
        super().__init__(n_features=n_features, n_classes=n_classes)
        self.options = options
"""

# names MLflow refuses as keys: too long, characters it does not take, a path that
# resolves to another; two names that would become one key; and names it takes
HOSTILE_NAMES = ["k" * 300, "a+b", "a_b", "lr/2", "a//b", "c/", "x/../y", "\u00fcber"]
TAKEN_AS_THEY_ARE = ("a_b", "lr/2", "\u00fcber")


@pytest.mark.parametrize("store", ["file", "sqlite"])
@SQLITE_WARNINGS
@pytest.mark.slow
def test_keys_mlflow_refuses_are_renamed_before_anything_is_sent(
    tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # read back in this process
    (tmp_path / "open_params.py").write_text(_OPEN_PARAMS)
    config = small_classification(epochs=2, batch_size=600)
    config["name"] = "hostile"
    config["model"] = {
        "name": "custom",
        "params": {
            "class_path": "open_params:OpenParams",
            "n_features": 8,
            "n_classes": 3,
            **{name: 1000 + number for number, name in enumerate(HOSTILE_NAMES)},
        },
    }
    config["output"] = {"directory": str(tmp_path / "outputs")}
    path = write_config(tmp_path / "hostile.yaml", config)
    done = run_cli(["run-experiment", "--config", str(path), "--quiet"], tmp_path)
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "outputs" / done.stdout.split()[1]
    uri = (
        str(tmp_path / "filestore")
        if store == "file"
        else f"sqlite:///{tmp_path / 'store.db'}"
    )
    outputs = [
        export(tmp_path, str(run_dir), "--mlflow", uri, MLFLOW_ALLOW_FILE_STORE="true")
        for _ in range(2)
    ]
    for done in outputs:
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    assert " 0 params" in outputs[1].stdout  # the same keys again: nothing new

    client = MlflowClient(uri)
    (run,) = mlflow_runs(client, "hostile")
    assert run.info.status == "FINISHED"
    expected = expected_params(run_dir)
    params = run.data.params
    assert len(params) == len(expected)  # one param per leaf, none lost to another
    for name, value in expected.items():
        leaf = name.removeprefix("model.params.")
        if leaf not in HOSTILE_NAMES or leaf in TAKEN_AS_THEY_ARE:
            assert params[name] == value, name  # a key MLflow takes stays as it is
            continue
        (key,) = (k for k, v in params.items() if k not in expected and v == value)
        assert len(key) <= 250 and key.startswith("model.params.")
        assert f"param {name!r} is logged as {key!r}" in outputs[0].stderr
    assert all("//" not in k and not k.endswith("/") for k in params)


# -- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "refs",
    [["nope-20240101-000000-abcd"], ["GOOD", "missing"], ["GOOD", "./no/such/dir"]],
    ids=["unknown-id", "second-unknown", "missing-path"],
)
def test_unknown_run_sends_nothing(
    one_run: tuple[Path, Path], tmp_path: Path, refs: list[str]
) -> None:
    root, run_dir = one_run
    refs = [str(run_dir) if r == "GOOD" else r for r in refs]
    db = tmp_path / "untouched.db"
    done = export(root, *refs, "--mlflow", f"sqlite:///{db}")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: No run")
    assert done.stdout == ""
    assert not db.exists()  # every run resolves before the store is opened


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("notes.txt", "notes.txt is not an SQLite database"),
        ("folder", "folder is a directory"),
        ("notes.txt/store.db", "notes.txt is not a directory"),
        ("/proc/self/store.db", "/proc/self"),
    ],
    ids=["not-a-database", "a-directory", "below-a-file", "unwritable"],
)
def test_an_sqlite_store_that_cannot_open_is_one_error_line(
    one_run: tuple[Path, Path], tmp_path: Path, target: str, why: str
) -> None:
    if target.startswith("/proc") and not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    _, run_dir = one_run
    (tmp_path / "notes.txt").write_text("not a database\n")
    (tmp_path / "folder").mkdir()
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    done = export(tmp_path, str(run_dir), "--mlflow", f"sqlite:///{target}")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("error: ") and why in done.stderr.splitlines()[0]
    assert "Traceback" not in done.stderr and "retried" not in done.stderr
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # nothing written, the file it named untouched


def test_without_mlflow_the_error_names_the_extra(
    one_run: tuple[Path, Path], tmp_path: Path
) -> None:
    root, run_dir = one_run
    stub = tmp_path / "stub" / "mlflow"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'mlflow'\", name='mlflow')\n"
    )
    env = cli_env(root, PYTHONPATH=f"{stub.parent}{os.pathsep}{REPO_ROOT}")
    done = run_cli(
        ["export", str(run_dir), "--mlflow", "sqlite:///x.db"], root, env=env
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "pip install 'model-harness[mlflow]'" in done.stderr.splitlines()[0]


def test_uri_is_required(one_run: tuple[Path, Path]) -> None:
    root, run_dir = one_run
    env = cli_env(root)
    env.pop("MLFLOW_TRACKING_URI", None)
    done = run_cli(["export", str(run_dir)], root, env=env)
    assert done.returncode == 1
    assert (
        done.stderr
        == "error: export: --mlflow URI is required (or set MLFLOW_TRACKING_URI)\n"
    )


@pytest.mark.parametrize(
    "value", ["sideways", "2.5"], ids=["not-a-number", "not-an-int"]
)
def test_a_bad_mlflow_setting_is_one_error_line(
    one_run: tuple[Path, Path], value: str
) -> None:
    root, run_dir = one_run
    done = export(
        root,
        str(run_dir),
        "--mlflow",
        "http://127.0.0.1:9",
        MLFLOW_HTTP_REQUEST_MAX_RETRIES=value,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ")


def test_help_does_not_import_mlflow() -> None:
    code = (
        "import sys\nfrom mlx.cli import main\n"
        "try:\n    main(['export', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('mlflow' in sys.modules, 'numpy' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=cli_env(REPO_ROOT),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.splitlines()[-1] == "False False", done.stderr
    assert "--mlflow URI" in done.stdout


def test_non_finite_and_missing_values_are_handled() -> None:
    from mlx.outputs.mlflow_record import param_text
    from mlx.utils.values import flatten as flatten_config
    from mlx.utils.values import metric_number as _number

    assert _number(None) is None and _number(True) is None and _number([1]) is None
    assert math.isnan(_number(float("nan")))  # type: ignore[arg-type]
    assert _number(10**400) == math.inf
    assert flatten_config({"a": {"b": 1, "c": {}}, "d": [1, 2]}) == {
        "a.b": 1,
        "a.c": {},
        "d": [1, 2],
    }
    assert [param_text(v) for v in (None, True, 0.01, [4, "x"], {})] == [
        "None",
        "True",
        "0.01",
        '[4, "x"]',
        "{}",
    ]


def test_mlflow_keys_are_accepted_distinct_and_the_same_each_time() -> None:
    from mlflow.utils.validation import _validate_metric_name, _validate_param_name

    from mlx.outputs.mlflow import mlflow_keys

    names = [*HOSTILE_NAMES, "", ".", "..x", "/abs", "eval/../test/acc", "eval/test/f1"]
    keys, reasons = mlflow_keys(names)
    assert mlflow_keys(reversed(names))[0] == keys  # order does not move a key
    assert len(set(keys.values())) == len(names)
    for name, key in keys.items():
        _validate_param_name(key)
        _validate_metric_name(key)
        assert len(key) <= 250
        assert (key == name) == (name not in reasons), name
    assert keys["eval/test/f1"] == "eval/test/f1" and keys["lr/2"] == "lr/2"
