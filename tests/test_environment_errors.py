"""When the environment says no (a full disk, a read-only directory, a module that
fails at import, a control character in a path, a closed stdout), the user gets one
clean error that names the path, and nothing on disk is torn.

Failures are injected into the real CLI by a ``sitecustomize`` module put first on
the subprocess's PYTHONPATH: it wraps ``os.fsync`` (where a full disk shows itself,
even with delayed allocation), ``os.open`` and ``os.mkdir`` for paths below one
directory. Nothing in mlx knows about it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO_ROOT, cli_env, run_cli, small_classification, write_config

import mlx
from mlx.experiment.evaluate import EvaluationNotSaved

_INJECTOR = """
import errno, os, re, stat

_UNDER = {under!r}
_PATTERN = re.compile({pattern!r})
_ARM = re.compile({arm!r}) if {arm!r} else None
_MODE = {mode!r}
_ERRNO = errno.ENOSPC if _MODE == "full" else errno.EROFS
_state = {{"skip": {skip}, "armed": _ARM is None}}


def _hit(path):
    path = os.path.abspath(os.fsdecode(path))
    if not path.startswith(_UNDER + os.sep) or not _PATTERN.search(path):
        return False
    if not _state["armed"]:
        return False
    if _state["skip"] > 0:
        _state["skip"] -= 1
        return False
    return True


def _fail(path):
    raise OSError(_ERRNO, os.strerror(_ERRNO))


_fsync, _open, _mkdir = os.fsync, os.open, os.mkdir


def fsync(fd):
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
        path = os.readlink(f"/proc/self/fd/{{fd}}") if regular else None
    except (OSError, TypeError):
        path = None
    if path and _MODE == "full" and _hit(path):
        _fail(path)
    result = _fsync(fd)
    if path and _ARM is not None and _ARM.search(path):
        _state["armed"] = True
    return result


def open(path, flags, *args, **kwargs):
    writes = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
    if _MODE == "readonly" and writes and _hit(path):
        raise OSError(_ERRNO, os.strerror(_ERRNO), os.fsdecode(path))
    return _open(path, flags, *args, **kwargs)


def mkdir(path, *args, **kwargs):
    if _hit(path):
        raise OSError(_ERRNO, os.strerror(_ERRNO), os.fsdecode(path))
    return _mkdir(path, *args, **kwargs)


os.fsync, os.open, os.mkdir = fsync, open, mkdir
"""


def _injected(
    root: Path,
    under: Path,
    *,
    mode: str = "full",
    pattern: str = ".",
    skip: int = 0,
    arm: str = "",
) -> dict[str, str]:
    """An environment whose Python fails writes below ``under`` (see the module
    docstring): ``mode`` "full" (ENOSPC at fsync and mkdir) or "readonly" (EROFS
    when opening for writing and at mkdir), for paths matching ``pattern``, after
    ``skip`` of them, and only once a file matching ``arm`` has been written."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("the injector finds a descriptor's file through /proc")
    site = root / ".inject"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        _INJECTOR.format(
            under=str(under.resolve()), pattern=pattern, arm=arm, mode=mode, skip=skip
        )
    )
    return cli_env(root, PYTHONPATH=f"{site}{os.pathsep}{REPO_ROOT}")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("")
    write_config(tmp_path / "c.yaml", small_classification())
    return tmp_path


def _clean_failure(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    return result.stderr


def _runs(root: Path) -> list[Path]:
    outputs = root / "outputs"
    return sorted(p for p in outputs.iterdir()) if outputs.is_dir() else []


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def _leftovers(run_dir: Path) -> list[str]:
    return [str(p) for p in run_dir.rglob("*") if p.name.startswith((".tmp", ".old"))]


def _train(root: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    return run_cli(
        ["run-experiment", "--config", "c.yaml", "--quiet", *extra], root, env=env
    )


# -- a full disk during a run ---------------------------------------------------------


@pytest.mark.slow
def test_full_disk_at_the_first_write_leaves_no_run(root: Path) -> None:
    env = _injected(root, root / "outputs", pattern=r"summary\.json")
    stderr = _clean_failure(_train(root, env), "No space left on device")
    assert "summary.json" in stderr
    assert _runs(root) == []


@pytest.mark.parametrize(
    "name", ["config.yaml", "original_config.yaml", "environment.json", "data.json"]
)
@pytest.mark.slow
def test_full_disk_while_setting_a_run_up(root: Path, name: str) -> None:
    env = _injected(root, root / "outputs", pattern=r"/\.?" + name.replace(".", r"\."))
    stderr = _clean_failure(_train(root, env), "failed while being set up", name)
    (run_dir,) = _runs(root)
    summary = _summary(run_dir)
    assert summary["status"] == "failed" and name in summary["error"]
    assert _leftovers(run_dir) == []
    assert "resume" not in stderr  # nothing was trained: nothing to resume


@pytest.mark.slow
def test_full_disk_when_creating_the_output_directory(root: Path) -> None:
    env = _injected(root, root, pattern=r"/outputs$")
    _clean_failure(_train(root, env), "No space left on device", "outputs")
    assert not (root / "outputs").exists()


@pytest.mark.parametrize(
    ("pattern", "skip", "named"),
    [
        # the second epoch checkpoint's weights
        (r"checkpoints/\.tmp-epoch-0002-.*model\.safetensors", 0, "epoch-0002"),
        # its trainer state
        (r"checkpoints/\.tmp-epoch-0002-.*trainer_state\.json", 0, "epoch-0002"),
        # the third line of the metrics log
        (r"metrics\.jsonl", 2, "metrics.jsonl"),
        # the final model
        (r"\.tmp-model-", 0, "model"),
    ],
    ids=["checkpoint-weights", "trainer-state", "metrics-log", "final-model"],
)
@pytest.mark.slow
def test_full_disk_mid_run_fails_it_truthfully(
    root: Path, pattern: str, skip: int, named: str
) -> None:
    env = _injected(root, root / "outputs", pattern=pattern, skip=skip)
    stderr = _clean_failure(_train(root, env), "No space left on device", named)
    (run_dir,) = _runs(root)
    summary = _summary(run_dir)
    assert summary["status"] == "failed"
    assert "No space left on device" in summary["error"]
    assert _leftovers(run_dir) == []
    last = os.readlink(run_dir / "checkpoints" / "last")
    assert f"resume from {last}" in stderr  # the hint names a checkpoint that exists
    assert (run_dir / "checkpoints" / last / "model.safetensors").is_file()
    listing = run_cli(["runs"], root)
    assert "failed" in listing.stdout and "Traceback" not in listing.stderr


@pytest.mark.parametrize(
    "file",
    ["checkpoints/epoch-0001/model.safetensors", "model/model.safetensors"],
    ids=["checkpoint", "final-model"],
)
@pytest.mark.slow
def test_a_file_size_limit_names_the_file_where_it_belongs(
    root: Path, file: str
) -> None:
    # past RLIMIT_FSIZE a write fails with EFBIG, naming the file it wrote: that
    # file was inside a temporary directory, which is gone by the time of the error
    resource = pytest.importorskip("resource")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (24 * 1024, 24 * 1024))

    config = small_classification(epochs=2)
    config["model"]["params"]["layer_sizes"] = [8, 512, 3]  # weights of 49 KB
    config["output"]["save_checkpoints"] = file.startswith("checkpoints")
    write_config(root / "c.yaml", config)
    result = subprocess.run(
        [sys.executable, "-m", "mlx", "run-experiment", "--config", "c.yaml"],
        cwd=root,
        env=cli_env(root),
        capture_output=True,
        text=True,
        preexec_fn=limit,
    )
    (run_dir,) = _runs(root)
    stderr = _clean_failure(result, f"'{run_dir}/{file}", "File too large")
    assert ".tmp" not in stderr
    summary = _summary(run_dir)
    assert summary["status"] == "failed" and ".tmp" not in summary["error"]
    assert _leftovers(run_dir) == []


@pytest.mark.parametrize("skip", [0, 3], ids=["first-line", "mid-run"])
@pytest.mark.slow
def test_full_disk_for_the_log_fails_the_run_truthfully(root: Path, skip: int) -> None:
    env = _injected(root, root / "outputs", pattern=r"train\.log", skip=skip)
    stderr = _clean_failure(_train(root, env), "No space left on device", "train.log")
    (run_dir,) = _runs(root)
    assert _summary(run_dir)["status"] == "failed"
    has_checkpoint = (run_dir / "checkpoints" / "last").exists()
    assert ("resume from" in stderr) == has_checkpoint
    assert ("start it again" in stderr) != has_checkpoint


@pytest.mark.slow
def test_a_disk_full_for_good_leaves_the_run_lost_and_says_so(root: Path) -> None:
    # from the first checkpoint on, nothing more can be written: not even the summary
    env = _injected(root, root / "outputs", arm=r"trainer_state\.json$")
    stderr = _clean_failure(_train(root, env), "No space left on device")
    assert "summary.json could not be updated either" in stderr
    (run_dir,) = _runs(root)
    assert _summary(run_dir)["status"] == "running"  # the last summary written
    assert "lost" in run_cli(["runs"], root).stdout  # and what that now means
    assert _leftovers(run_dir) == []


@pytest.mark.slow
def test_full_disk_on_resume_changes_nothing(root: Path) -> None:
    assert _train(root, cli_env(root), "--set", "training.epochs=2").returncode == 0
    (run_dir,) = _runs(root)
    watched = ("metrics.jsonl", "config.yaml", "summary.json")
    before = {name: (run_dir / name).read_bytes() for name in watched}
    env = _injected(root, run_dir, pattern=r"(metrics\.jsonl|config\.yaml)")
    result = run_cli(
        ["run-experiment", "--resume", run_dir.name, "--set", "training.epochs=4"],
        root,
        env=env,
    )
    _clean_failure(result, f"cannot resume {run_dir.name}", "No space left on device")
    assert {name: (run_dir / name).read_bytes() for name in watched} == before
    assert _leftovers(run_dir) == []


# -- eval in a run it cannot write -----------------------------------------------------


@pytest.fixture
def finished(root: Path) -> Path:
    assert _train(root, cli_env(root)).returncode == 0
    (run_dir,) = _runs(root)
    return run_dir


@pytest.mark.parametrize(
    ("mode", "extra", "reason"),
    [
        ("readonly", [], "Read-only file system"),
        ("readonly", ["--save-predictions"], "Read-only file system"),
        ("full", [], "No space left on device"),
        ("full", ["--save-predictions"], "No space left on device"),
    ],
    ids=["read-only", "read-only-predictions", "full", "full-predictions"],
)
@pytest.mark.slow
def test_eval_prints_the_metrics_it_could_not_save(
    root: Path, finished: Path, mode: str, extra: list, reason: str
) -> None:
    saved = run_cli(["eval", finished.name], root)
    assert saved.returncode == 0
    env = _injected(root, finished, mode=mode, pattern=r"(evals|predictions)")
    before = sorted(p.name for p in (finished / "evals").iterdir())
    result = run_cli(["eval", finished.name, *extra], root, env=env)
    stderr = _clean_failure(result, reason, "could not save the evaluation")
    assert str(finished) in stderr
    # the metrics are the ones a saved evaluation holds
    for line in saved.stdout.splitlines():
        if line.split()[0] in ("accuracy", "f1_score", "log_loss"):
            assert line in result.stdout
    assert "saved       no" in result.stdout
    assert sorted(p.name for p in (finished / "evals").iterdir()) == before
    assert not (finished / "predictions.csv").exists()
    assert _leftovers(finished) == []


def test_evaluate_keeps_the_metrics_on_the_error(
    root: Path, finished: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLX_ROOT", str(root))
    expected = mlx.evaluate(finished)

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(EvaluationNotSaved, match="No space left") as caught:
        mlx.evaluate(finished)
    assert caught.value.result["metrics"] == expected["metrics"]
    assert "path" not in caught.value.result


# -- custom model modules that fail at import ------------------------------------------

_BROKEN_MODULES = {
    "raises": ("x = 1\ny = 1 / 0\n", 2, "ZeroDivisionError: division by zero"),
    "syntax": ("x = 1\ndef f(:\n    pass\n", 2, "syntax error"),
    "exits": ("import sys\n\nsys.exit(3)\n", 3, "called sys.exit(3)"),
    "exits-none": ("import sys\nsys.exit()\n", 2, "called sys.exit(None)"),
    "dependency": ("import not_installed_xyz_123\n", 1, "'not_installed_xyz_123'"),
    "deep": ("import json\njson.loads('{')\n", 2, "JSONDecodeError"),
    # imports, then fails when the class is looked up in it
    "getattr": (
        "def __getattr__(name):\n    raise RuntimeError('nothing here')\n",
        2,
        "RuntimeError: nothing here",
    ),
}


@pytest.mark.parametrize("kind", list(_BROKEN_MODULES))
def test_a_custom_model_module_that_fails_at_import(root: Path, kind: str) -> None:
    source, line, what = _BROKEN_MODULES[kind]
    package = root / "broken"
    package.mkdir()
    (package / "__init__.py").write_text("")
    module = package / f"m_{kind.replace('-', '_')}.py"
    module.write_text(source)
    config = small_classification()
    config["model"] = {
        "name": "custom",
        "params": {"class_path": f"broken.{module.stem}:Model"},
    }
    write_config(root / "c.yaml", config)
    result = _train(root, cli_env(root))
    _clean_failure(result, f"{module}:{line}:", what)
    assert _runs(root) == []
    plan = run_cli(["run-experiment", "--config", "c.yaml", "--dry-run"], root)
    assert plan.returncode == 3 and "Traceback" not in plan.stderr
    assert "can run here: no: model.params.class_path" in plan.stdout
    assert f"{module}:{line}:" in plan.stdout


@pytest.mark.parametrize(
    ("class_path", "message"),
    [
        ("nowhere.at_all:Model", "there is no module 'nowhere'"),
        ("json:JSONDecoder", "not a subclass of mlx.models.BaseModel"),
        ("json:NoSuchThing", "has no attribute 'NoSuchThing'"),
    ],
)
def test_the_dry_run_says_no_when_class_path_is_no_model(
    root: Path, class_path: str, message: str
) -> None:
    config = small_classification()
    config["model"] = {"name": "custom", "params": {"class_path": class_path}}
    write_config(root / "c.yaml", config)
    plan = run_cli(["run-experiment", "--config", "c.yaml", "--dry-run"], root)
    assert "can run here: no" in plan.stdout and message in plan.stdout
    _clean_failure(_train(root, cli_env(root)), message)
    assert _runs(root) == []


_CONSTRUCTOR = """\
import numpy as np
from mlx.models import BaseModel


class Model(BaseModel):
    task = "classification"

    def __init__(self, width=3):
        self.width = width
        {body}

    def forward(self, X):
        return np.full((len(X), 3), 1 / 3)

    def train_step(self, X, y):
        return {{"loss": 0.0}}

    def save(self, path):
        pass

    def load(self, path):
        pass
"""


def _mine_model(root: Path, body: str) -> Path:
    """``mine/model.py`` under ``root``: the model of ``_CONSTRUCTOR`` whose
    constructor runs ``body``."""
    package = root / "mine"
    package.mkdir()
    (package / "__init__.py").write_text("")
    module = package / "model.py"
    module.write_text(_CONSTRUCTOR.format(body=body))
    return module


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ("raise RuntimeError('no GPU here')", "RuntimeError: no GPU here"),
        ("{}['missing']", "KeyError: 'missing'"),
        ("np.zeros(-width)", "ValueError: negative dimensions are not allowed"),
    ],
    ids=["raises", "key-error", "in-numpy"],
)
def test_a_custom_model_whose_constructor_raises(
    root: Path, body: str, what: str
) -> None:
    module = _mine_model(root, body)
    config = small_classification()
    config["model"] = {"name": "custom", "params": {"class_path": "mine.model:Model"}}
    write_config(root / "c.yaml", config)
    # the line in the model's own file, even when the exception comes from deeper
    _clean_failure(
        _train(root, cli_env(root)),
        f"error: Cannot build mine.model:Model from model.params: {module}:10: {what}",
    )
    assert _runs(root) == []
    debug = run_cli(["--debug", "run-experiment", "--config", "c.yaml"], root)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"widht": 2}, "Unknown parameter 'widht' for Model; it accepts width. Did "),
        ({"width": 2, "depth": 1}, "Unknown parameter 'depth' for Model"),
    ],
    ids=["typo", "unknown"],
)
def test_the_dry_run_says_no_when_the_constructor_takes_other_params(
    root: Path, params: dict, message: str
) -> None:
    _mine_model(root, "pass")
    config = small_classification()
    config["model"] = {
        "name": "custom",
        "params": {"class_path": "mine.model:Model", **params},
    }
    write_config(root / "c.yaml", config)
    plan = run_cli(["run-experiment", "--config", "c.yaml", "--dry-run"], root)
    assert plan.returncode == 3 and "Traceback" not in plan.stderr
    assert f"can run here: no: model.params.class_path: {message}" in plan.stdout
    _clean_failure(_train(root, cli_env(root)), message)
    assert _runs(root) == []
    config["model"]["params"] = {"class_path": "mine.model:Model", "width": 3}
    write_config(root / "c.yaml", config)
    plan = run_cli(["run-experiment", "--config", "c.yaml", "--dry-run"], root)
    assert plan.stdout.splitlines()[-1] == "  can run here: yes"


# -- control characters in paths -------------------------------------------------------


@pytest.mark.parametrize("char", ["\x01", "\n", "\x1b", "\x7f"], ids=repr)
@pytest.mark.parametrize(
    "args",
    [
        ["run-experiment", "--config", "c{}.yaml"],
        ["run-experiment", "--resume", "run{}"],
        ["eval", "run{}"],
        ["runs", "show", "run{}"],
        ["runs", "--root", "out{}"],
        ["sweep", "show", "sweep{}"],
        ["sweep", "--resume", "sweep{}"],
        ["plot", "run{}", "-o", "p.png"],
        ["report", "run", "run{}", "-o", "r.html"],
        ["compare", "run", "run{}"],
        ["export", "run", "run{}", "--mlflow", "file:///nowhere"],
    ],
    ids=[
        "config",
        "resume",
        "eval",
        "runs-show",
        "runs-root",
        "sweep-show",
        "sweep-resume",
        "plot",
        "report",
        "compare",
        "export",
    ],
)
def test_control_characters_in_command_line_paths(
    root: Path, args: list, char: str
) -> None:
    argv = [a.format(char) for a in args]
    result = run_cli(argv, root)
    stderr = _clean_failure(result, "contains the control character", repr(char))
    assert len(stderr.strip().splitlines()) == 1  # the path cannot break the line


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("output.directory", "out\0put"),
        ("output.directory", "out\x01put"),
        ("output.directory", "line\nbreak"),
        ("dataset.path", "da\0ta.csv"),
        ("dataset.path", "da\tta.csv"),
    ],
    ids=["dir-nul", "dir-ctrl", "dir-newline", "path-nul", "path-tab"],
)
def test_control_characters_in_config_paths(root: Path, field: str, value: str) -> None:
    config = small_classification()
    if field == "dataset.path":
        config["dataset"] = {
            "name": "custom",
            "path": value,
            "params": {"target": "y"},
        }
    else:
        config["output"]["directory"] = value
    (root / "c.json").write_text(json.dumps(config))
    for extra in (["--dry-run"], []):
        result = run_cli(["run-experiment", "--config", "c.json", *extra], root)
        _clean_failure(result, f"{field}: path {value!r} contains the control")
    assert _runs(root) == [] and not any(root.glob("out*"))


# -- outputs the file system refuses ---------------------------------------------------


@pytest.mark.parametrize(
    ("directory", "message"),
    [
        ("afile/runs", "is a file, not a directory"),
        ("x/" + "d" * 300, "is 300 bytes long"),
        ("/".join(["e" * 200] * 21), "the run's files would have paths of up to"),
    ],
    ids=["below-a-file", "name-too-long", "path-too-long"],
)
def test_output_paths_the_file_system_refuses(
    root: Path, directory: str, message: str
) -> None:
    (root / "afile").write_text("not a directory\n")
    before = sorted(p.name for p in root.iterdir())
    plan = run_cli(
        ["run-experiment", "--config", "c.yaml", "--dry-run", "--set"]
        + [f"output.directory={directory}"],
        root,
    )
    assert plan.returncode == 3 and "can run here: no: output.directory" in plan.stdout
    assert message in plan.stdout
    result = _train(root, cli_env(root), "--set", f"output.directory={directory}")
    _clean_failure(result, "cannot create the run", message)
    assert sorted(p.name for p in root.iterdir()) == before


@pytest.mark.slow
def test_a_read_only_run_root(root: Path) -> None:
    env = _injected(root, root, mode="readonly", pattern=r"outputs")
    stderr = _clean_failure(_train(root, env), "Read-only file system")
    assert "outputs" in stderr
    assert not (root / "outputs").exists()


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file"
)
def test_an_unreadable_config(root: Path) -> None:
    (root / "c.yaml").chmod(0)
    _clean_failure(
        run_cli(["run-experiment", "--config", "c.yaml"], root), "c.yaml", "ermission"
    )


def test_a_config_that_is_a_directory(root: Path) -> None:
    (root / "d.yaml").mkdir()
    _clean_failure(
        run_cli(["run-experiment", "--config", "d.yaml"], root), "d.yaml: is a dir"
    )


# -- a closed stdout -------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["runs"], ["runs", "show", "{run}"], ["--help"], ["eval", "{run}"], ["--version"]],
    ids=["runs", "runs-show", "help", "eval", "version"],
)
@pytest.mark.slow
def test_a_closed_stdout_ends_quietly(root: Path, finished: Path, args: list) -> None:
    argv = [a.format(run=finished.name) for a in args]
    read, write = os.pipe()
    os.close(read)  # the reader is gone before mlx writes a byte
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mlx", *argv],
            cwd=root,
            env=cli_env(root),
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)
    assert done.returncode == 141, done.stderr  # 128 + SIGPIPE, as a shell shows
    assert done.stderr == ""


@pytest.mark.slow
def test_a_closed_stderr_does_not_stop_a_run(root: Path) -> None:
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mlx", "run-experiment", "--config", "c.yaml"],
            cwd=root,
            env=cli_env(root),
            stdout=subprocess.PIPE,
            stderr=write,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)
    assert done.returncode == 0
    assert "completed" in done.stdout
    (run_dir,) = _runs(root)
    assert _summary(run_dir)["status"] == "completed"
    assert "completed" in (run_dir / "train.log").read_text()


# -- the hint when a run has no checkpoint to resume from ------------------------------


def _resume(root: Path, run_dir: Path, epochs: int) -> subprocess.CompletedProcess:
    return run_cli(
        ["run-experiment", "--resume", run_dir.name, "--quiet"]
        + ["--set", f"training.epochs={epochs}"],
        root,
    )


def _hint(result: subprocess.CompletedProcess) -> str:
    _clean_failure(result, "it has no checkpoint")
    (hint,) = [line for line in result.stderr.splitlines() if line.startswith("hint:")]
    return hint


def _break_checkpoints(run_dir: Path, how: str) -> None:
    checkpoints = run_dir / "checkpoints"
    if how == "removed":
        shutil.rmtree(checkpoints)
    elif how == "emptied":
        for entry in checkpoints.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    else:  # only a checkpoint that never completed
        _break_checkpoints(run_dir, "emptied")
        (checkpoints / ".tmp-epoch-0003-0a1b2c3d").mkdir()


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("removed", "its checkpoints were removed"),
        ("emptied", "its checkpoints were removed"),
        ("torn", "never completed"),
    ],
)
def test_the_hint_of_a_run_that_had_checkpoints(
    root: Path, how: str, expected: str
) -> None:
    assert _train(root, cli_env(root), "--set", "training.epochs=2").returncode == 0
    (run_dir,) = _runs(root)
    _break_checkpoints(run_dir, how)
    hint = _hint(_resume(root, run_dir, 3))
    assert expected in hint and "save_checkpoints" not in hint


def test_the_hint_after_checkpoints_were_turned_off_on_resume(root: Path) -> None:
    # checkpoints existed; a resume turned them off; then they were removed
    assert _train(root, cli_env(root), "--set", "training.epochs=2").returncode == 0
    (run_dir,) = _runs(root)
    off = run_cli(
        ["run-experiment", "--resume", run_dir.name, "--quiet"]
        + ["--set", "training.epochs=3", "--set", "output.save_checkpoints=false"],
        root,
    )
    assert off.returncode == 0, off.stderr
    _break_checkpoints(run_dir, "removed")
    hint = _hint(_resume(root, run_dir, 4))
    assert "were removed" in hint and "save_checkpoints" not in hint


def test_the_hint_of_a_run_without_checkpoints(root: Path) -> None:
    result = _train(
        root,
        cli_env(root),
        "--set",
        "training.epochs=2",
        "--set",
        "output.save_checkpoints=false",
    )
    assert result.returncode == 0
    (run_dir,) = _runs(root)
    assert not (run_dir / "checkpoints").exists()
    assert "output.save_checkpoints: false" in _hint(_resume(root, run_dir, 3))


@pytest.mark.slow
def test_a_run_without_checkpoints_still_resumes_after_sigterm(root: Path) -> None:
    # SIGTERM saves a checkpoint even with save_checkpoints: false, and says so
    from helpers import start_cli

    config = small_classification(epochs=2000)
    config["output"]["save_checkpoints"] = False
    write_config(root / "c.yaml", config)
    process = start_cli(["run-experiment", "--config", "c.yaml"], root)
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("epoch 2/"):
            break
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    (run_dir,) = _runs(root)
    assert f"hint: resume with: mlx run-experiment --resume {run_dir.name}" in stderr
    done = _resume(root, run_dir, 3)
    assert done.returncode == 0, done.stderr


# -- other paths the system refuses ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run-experiment", "--config", "c" * 300 + ".yaml"], "File name too long"),
        (["run-experiment", "--config", "loop.yaml"], "leads nowhere (or loops)"),
        (["run-experiment", "--config", "dangling.yaml"], "leads nowhere (or loops)"),
        (["run-experiment", "--config", "afile/c.yaml"], "config file not found"),
        (["eval", "r" * 300], "File name too long"),
        (["run-experiment", "--resume", "r" * 300], "File name too long"),
        (["runs", "show", "r" * 300], "File name too long"),
        (["eval", "x/" + "r" * 300], "No run directory at"),
        (["runs", "--root", "afile"], "--root 'afile' is not a directory"),
        (["runs", "show", "x", "--root", "afile"], "is not a directory"),
    ],
    ids=[
        "config-too-long",
        "config-loop",
        "config-dangling",
        "config-below-file",
        "eval-too-long",
        "resume-too-long",
        "show-too-long",
        "eval-path-too-long",
        "root-is-a-file",
        "show-root-is-a-file",
    ],
)
def test_paths_the_system_refuses(root: Path, args: list, message: str) -> None:
    (root / "afile").write_text("")
    (root / "loop.yaml").symlink_to("loop.yaml")
    (root / "dangling.yaml").symlink_to("nowhere.yaml")
    stderr = _clean_failure(run_cli(args, root), message)
    assert len(stderr.strip().splitlines()) <= 2  # an error and at most a hint


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("loop", "MLX_ROOT '{root}/loop' cannot be resolved"),
        ("ro\x01ot", "MLX_ROOT '{root}/ro\\x01ot' contains the control character"),
        ("ro\not", "MLX_ROOT '{root}/ro\\not' contains the control character"),
    ],
    ids=["loop", "control", "newline"],
)
@pytest.mark.parametrize(
    "args",
    [
        ["runs"],
        ["run-experiment", "--config", "c.yaml"],
        ["run-experiment", "--config", "c.yaml", "--dry-run"],
        ["eval", "some-run"],
        ["sweep", "show", "some-sweep"],
    ],
    ids=["runs", "run", "dry-run", "eval", "sweep-show"],
)
def test_an_mlx_root_the_system_refuses(
    root: Path, where: str, message: str, args: list
) -> None:
    (root / "loop").symlink_to("loop")
    env = cli_env(root, MLX_ROOT=str(root / where))
    stderr = _clean_failure(run_cli(args, root, env=env), message.format(root=root))
    assert len(stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in root.iterdir()) == [
        "c.yaml",
        "loop",
        "pyproject.toml",
    ]


@pytest.mark.parametrize("fd", [1, 2], ids=["stdout", "stderr"])
@pytest.mark.parametrize(
    "args",
    [
        ["runs"],
        ["--help"],
        [],
        ["eval", "{run}"],
        ["runs", "show", "nothing-here"],
        ["runs", "--json"],
        ["runs", "show", "{run}", "--json"],
        ["eval", "{run}", "--json"],
        ["eval", "--dry-run", "--json"],
        ["compare", "{run}", "{run}/", "--json"],
        ["run-experiment", "--config", "c.yaml", "--dry-run"],
        ["run-experiment", "--config", "c.yaml", "--dry-run", "--json"],
        ["run-experiment", "--config", "c.yaml", "--json"],
        ["completion", "bash"],
    ],
    ids=[
        "runs",
        "help",
        "no-command",
        "eval",
        "show-missing",
        "runs-json",
        "show-json",
        "eval-json",
        "eval-dry-run-json",
        "compare-twice-json",
        "dry-run",
        "dry-run-json",
        "run-json",
        "completion",
    ],
)
@pytest.mark.slow
def test_a_stream_closed_from_the_start(
    root: Path, finished: Path, fd: int, args: list
) -> None:
    argv = [a.format(run=finished.name) for a in args]
    done = subprocess.run(
        [sys.executable, "-m", "mlx", *argv],
        cwd=root,
        env=cli_env(root),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.close(fd),  # as `mlx ... >&-` or `2>&-`
    )
    kept = done.stderr if fd == 1 else done.stdout
    assert "Traceback" not in kept
    if fd == 2:  # what belongs on stderr never lands on stdout instead
        assert "error:" not in kept
        assert ("usage:" in kept) == (args == ["--help"])
    failing = args in ([], ["runs", "show", "nothing-here"]) or "compare" in args
    assert done.returncode == (1 if failing else 0), kept
    if "run-experiment" in args and "--dry-run" not in args:  # the work was done
        assert {_summary(r)["status"] for r in _runs(root)} == {"completed"}


def test_run_experiment_in_process_with_a_full_disk(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlx.errors import RunError

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("finds a descriptor's file through /proc")
    monkeypatch.setenv("MLX_ROOT", str(root))
    monkeypatch.chdir(root)
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if path.startswith(str(root / "outputs")):
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(RunError, match=r"summary\.json'?: No space left") as caught:
        mlx.run_experiment(small_classification(), quiet=True)
    assert isinstance(caught.value.__cause__, OSError)
    assert _runs(root) == []


@pytest.mark.parametrize("kind", ["raises", "syntax", "exits", "getattr"])
def test_eval_and_resume_of_a_run_whose_model_module_broke_since(
    root: Path, kind: str
) -> None:
    (root / "mymodels").mkdir()
    module = root / "mymodels" / "__init__.py"
    module.write_text((REPO_ROOT / "examples" / "custom_models.py").read_text())
    config = small_classification(epochs=2)
    config["model"] = {
        "name": "custom",
        "params": {
            "class_path": "mymodels:SoftmaxRegression",
            "n_features": 8,
            "n_classes": 3,
            "seed": 0,
        },
    }
    write_config(root / "c.yaml", config)
    assert _train(root, cli_env(root)).returncode == 0
    (run_dir,) = _runs(root)
    source, line, what = _BROKEN_MODULES[kind]
    module.write_text(source)
    for args in (
        ["eval", run_dir.name],
        ["run-experiment", "--resume", run_dir.name, "--set", "training.epochs=3"],
    ):
        _clean_failure(run_cli(args, root), f"{module}:{line}:", what)
    assert _summary(run_dir)["status"] == "completed"
