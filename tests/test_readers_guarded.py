"""Every read of a run or sweep file goes through the guarded reader.

A static test walks the package's source and lists every call that opens or reads a
file by path (``open``, ``Path.read_text``, ``json.load``, ``np.load``, ...): each
must be on a short list of justified exceptions, so a new reader of a run file that
skips :mod:`mlx.utils.safe_io` fails here. Then the commands meet a FIFO, a link to
``/dev/zero`` and a 20 GB sparse file in place of the files they read: each ends
with one clear message naming the file and what it is, never a hang.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
from pathlib import Path
from typing import Callable, Iterator

import pytest
from helpers import (
    REPO_ROOT,
    run_cli,
    run_cli_process,
    small_classification,
    write_config,
)
from run_copies import clone, new_root, train_template

# -- the static list -----------------------------------------------------------------

#: attribute or function names that read a file given by its path
_READERS = {
    "open",
    "read_text",
    "read_bytes",
    "load_file",
    "safe_open",
    "read_table",
    "read_csv",
    "read_parquet",
    "fromfile",
    "loadtxt",
    "genfromtxt",
    "memmap",
}
#: modules whose ``load`` reads a file (``json.load``, ``np.load``, ...)
_LOADERS = {"json", "np", "numpy", "torch", "pickle", "yaml", "joblib"}

_DATASET = (
    "a dataset file (the user's, or the dataset cache), not a run or sweep file; "
    "dataset readers check their own inputs"
)
_USER_DATA = (
    "a user's custom dataset file, after datasets._checks.check_regular_file "
    "refused anything but a regular file"
)

#: (module, function, call) -> why it needs no guarded reader
ALLOWED: dict[tuple[str, str, str], str] = {
    ("mlx/utils/safe_io.py", "open_regular", "os.open"): "the guarded opener itself",
    ("mlx/utils/safe_io.py", "append_line_guarded", "os.open"): (
        "the guarded append: O_NOFOLLOW, O_NONBLOCK, refuses a non-regular file"
    ),
    ("mlx/utils/atomic.py", "fsync_dir", "os.open"): "a directory, to fsync it",
    ("mlx/utils/atomic.py", "write_bytes_exclusive", "os.open"): (
        "creates a new file (O_CREAT | O_EXCL): never an existing one"
    ),
    ("mlx/utils/atomic.py", "append_line", "os.open"): (
        "an append (to the run index), nothing read"
    ),
    ("mlx/utils/atomic.py", "_fsync_tree", "os.open"): (
        "a regular file mlx just wrote into a fresh directory, to fsync it"
    ),
    ("mlx/cli/main.py", "_detach_closed_streams", "os.open"): "/dev/null, to write",
    ("mlx/config/documents.py", "load_yaml", "yaml.load"): (
        "parses text already read by the guarded reader; no file"
    ),
    ("mlx/runs/lock.py", "FileLock.acquire", "os.open"): (
        "the lock file: O_NOFOLLOW | O_NONBLOCK, fstat-checked as regular"
    ),
    ("mlx/runs/lock.py", "lock_state", "os.open"): (
        "run.lock: O_NOFOLLOW | O_NONBLOCK, fstat-checked as regular, nothing read"
    ),
    ("mlx/runs/lock.py", "process_start", "open"): (
        "/proc/<pid>/stat and /proc/sys/kernel/random/boot_id, kernel files, "
        "a bounded read"
    ),
    ("mlx/sweeps/executors.py", "LocalExecutor.start", "open"): (
        "a point's log, opened to append after check_appendable"
    ),
    ("mlx/sweeps/executors.py", "_remote_point", "open"): (
        "a point's log, opened to append"
    ),
    ("mlx/outputs/mlflow.py", "check_sqlite_store", "open"): (
        "the user's MLflow store (not a run file), after is_file(): the first 16 bytes"
    ),
    ("mlx/datasets/download.py", "safe_extract", "tarfile.open"): (
        "an archive mlx downloaded into the dataset cache and checksummed"
    ),
    (
        "mlx/datasets/download.py",
        "safe_extract",
        "open",
    ): "an extracted member, to write",
    ("mlx/datasets/images.py", "_read_maybe_gzip", "open"): _DATASET,
    ("mlx/datasets/images.py", "_read_cifar_file", "path.read_bytes"): _DATASET,
    ("mlx/datasets/images.py", "_class_names", "path.read_text"): _DATASET,
    ("mlx/datasets/images.py", "decode_image", "Image.open"): _DATASET,
    ("mlx/datasets/info.py", "_idx_header", "open"): _DATASET,
    ("mlx/datasets/tabular.py", "read_data_file", "read_csv"): (
        "mlx's own CSV reader (datasets.tabular_csv), after check_regular_file"
    ),
    ("mlx/datasets/tabular.py", "read_data_file", "read_parquet"): (
        "mlx's own Parquet reader (datasets.tabular_parquet), after check_regular_file"
    ),
    ("mlx/datasets/tabular_csv.py", "_open_csv", "open"): _USER_DATA,
    ("mlx/datasets/tabular_csv.py", "_count_data_lines", "open"): _USER_DATA,
    ("mlx/datasets/tabular_csv.py", "_estimate_data_lines", "open"): _USER_DATA,
    ("mlx/datasets/tabular_numpy.py", "_open_npy", "open"): _USER_DATA,
    ("mlx/datasets/tabular_numpy.py", "_npy_header_in_zip", "archive.open"): (
        "a member of an .npz archive already opened"
    ),
    ("mlx/datasets/tabular_numpy.py", "npz_header", "archive.open"): (
        "a member of an .npz archive already opened"
    ),
    ("mlx/datasets/tabular_numpy.py", "read_npz", "np.load"): _USER_DATA,
    ("mlx/datasets/tabular_numpy.py", "_check_npz_magic", "open"): _USER_DATA,
    ("mlx/datasets/tabular_parquet.py", "read_parquet", "pq.read_table"): _USER_DATA,
    ("mlx/datasets/tabular_parquet.py", "read_parquet_columns", "pq.read_table"): (
        _USER_DATA
    ),
}


def _is_reader(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in _READERS
    if not isinstance(func, ast.Attribute):
        return False
    if func.attr in _READERS:
        return True
    owner = func.value
    return func.attr == "load" and isinstance(owner, ast.Name) and owner.id in _LOADERS


def _readers(tree: ast.AST, scope: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """``(enclosing function, call)`` of every reading call under ``tree``."""
    for node in ast.iter_child_nodes(tree):
        inner = scope
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            inner = (*scope, node.name)
        if isinstance(node, ast.Call) and _is_reader(node):
            yield ".".join(scope) or "<module>", ast.unparse(node.func)
        yield from _readers(node, inner)


def _found() -> dict[tuple[str, str, str], list[int]]:
    found: dict[tuple[str, str, str], list[int]] = {}
    for path in sorted((REPO_ROOT / "mlx").rglob("*.py")):
        module = path.relative_to(REPO_ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=module)
        for function, call in _readers(tree):
            found.setdefault((module, function, call), [])
    return found


def test_every_file_read_goes_through_the_guard_or_is_justified() -> None:
    found = _found()
    unguarded = sorted(set(found) - set(ALLOWED))
    assert not unguarded, (
        "these calls read a file without mlx.utils.safe_io (open_regular, "
        "read_*_guarded); use it, or add a justified entry to ALLOWED: "
        + ", ".join(f"{m}:{f}: {c}(" for m, f, c in unguarded)
    )
    stale = sorted(set(ALLOWED) - set(found))
    assert not stale, f"ALLOWED lists calls that are gone: {stale}"


def test_the_static_walk_finds_a_new_plain_reader(tmp_path: Path) -> None:
    code = (
        "import json\nfrom pathlib import Path\n"
        "def f(p):\n    return json.load(open(p)), Path(p).read_text()\n"
    )
    assert sorted(_readers(ast.parse(code))) == [
        ("f", "Path(p).read_text"),
        ("f", "json.load"),
        ("f", "open"),
    ]


# -- the commands, through the CLI ---------------------------------------------------

pytestmark = pytest.mark.skipif(
    not hasattr(os, "mkfifo"), reason="needs FIFOs and /dev/zero"
)

RUN = "small-20240103-000000-bad0"
OTHER = "small-20240104-000000-0002"


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _sparse(path: Path) -> None:
    with open(path, "wb") as handle:
        handle.truncate(20 * 1024**3)


KINDS: dict[str, tuple[Callable[[Path], None], str]] = {
    "fifo": (_fifo, "is a FIFO (named pipe), not a regular file"),
    "dev-zero": (_dev_zero, "is a character device, not a regular file"),
    "sparse-20GB": (_sparse, "is larger than the"),
}


def _state(directory: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under ``directory`` (links not followed): its mode, size and
    modification time; the damaged files themselves are never read."""
    found = {}
    for path in sorted(directory.rglob("*")):
        info = path.lstat()
        found[str(path.relative_to(directory))] = (
            info.st_mode,
            info.st_size,
            info.st_mtime_ns,
        )
    return found


def _replace(path: Path, kind: str) -> None:
    if path.exists() or path.is_symlink():
        path.unlink()
    KINDS[kind][0](path)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = train_template(tmp_path_factory.mktemp("template"))
    done = run_cli(["eval", str(run), "--save-predictions"], run.parents[1])
    assert done.returncode == 0, done.stderr
    return run


@pytest.fixture
def root(tmp_path: Path, template: Path) -> Path:
    root = new_root(tmp_path)
    for run_id in (RUN, OTHER):
        clone(template, root, run_id)
    return root


def _clean_error(done, path: Path, kind: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    assert str(path) in errors[0] and KINDS[kind][1] in errors[0], done.stderr


RUN_COMMANDS = {
    "runs-show": lambda out: ["runs", "show", RUN],
    "compare": lambda out: ["compare", RUN, OTHER],
    "plot": lambda out: ["plot", RUN, "-o", str(out / "curves.png")],
    "eval": lambda out: ["eval", RUN],
    "report": lambda out: ["report", RUN, "-o", str(out / "report.html")],
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", RUN_COMMANDS)
def test_a_summary_that_is_no_file_is_one_error_naming_it(
    root: Path, tmp_path: Path, command: str, kind: str
) -> None:
    path = root / "outputs" / RUN / "summary.json"
    _replace(path, kind)
    before = _state(root / "outputs" / RUN)
    _clean_error(run_cli(RUN_COMMANDS[command](tmp_path), root), path, kind)
    assert _state(root / "outputs" / RUN) == before
    assert not list(tmp_path.glob("curves.png")) + list(tmp_path.glob("report.html"))


@pytest.mark.parametrize("kind", KINDS)
def test_the_run_listing_skips_a_run_whose_summary_is_no_file(
    root: Path, kind: str
) -> None:
    path = root / "outputs" / RUN / "summary.json"
    _replace(path, kind)
    done = run_cli(["runs"], root)
    assert done.returncode == 0, done.stderr
    assert OTHER in done.stdout and RUN not in done.stdout
    (warning,) = done.stderr.splitlines()
    assert warning.startswith("warning: Skipped a run: ") and str(path) in warning
    assert KINDS[kind][1] in warning


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", ["runs-show", "plot", "report"])
def test_a_metrics_log_that_is_no_file_is_one_error_naming_it(
    root: Path, tmp_path: Path, command: str, kind: str
) -> None:
    path = root / "outputs" / RUN / "metrics.jsonl"
    _replace(path, kind)
    _clean_error(run_cli(RUN_COMMANDS[command](tmp_path), root), path, kind)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("file", ["config.yaml", "data.json"])
def test_a_run_record_that_is_no_file_fails_eval_naming_it(
    root: Path, file: str, kind: str
) -> None:
    path = root / "outputs" / RUN / file
    _replace(path, kind)
    done = run_cli(["eval", RUN], root)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert str(path) in done.stderr and KINDS[kind][1] in done.stderr


def test_report_on_a_predictions_fifo_is_one_error_naming_it(
    root: Path, tmp_path: Path
) -> None:
    path = root / "outputs" / RUN / "predictions.csv"
    _replace(path, "fifo")
    # a process, with a guard against the hang this test is about
    done = run_cli_process(RUN_COMMANDS["report"](tmp_path), root, timeout=20)
    _clean_error(done, path, "fifo")


@pytest.mark.parametrize("kind", KINDS)
def test_the_run_index_that_is_no_file_is_a_warning_naming_it(
    root: Path, kind: str
) -> None:
    index = root / ".mlx" / "runs.jsonl"
    index.parent.mkdir()
    _replace(index, kind)
    done = run_cli(["runs"], root)
    assert done.returncode == 0, done.stderr
    assert RUN in done.stdout and OTHER in done.stdout
    if kind != "sparse-20GB":  # read up to its limit: zeros, no entries
        assert str(index) in done.stderr and KINDS[kind][1] in done.stderr


# -- sweeps --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("sweep")
    (base / "pyproject.toml").write_text("")
    write_config(base / "base.yaml", small_classification(epochs=1))
    write_config(
        base / "sweep.yaml",
        {
            "name": "sw",
            "base": "base.yaml",
            "parameters": {"training.seed": {"values": [1, 2]}},
            "metric": "val_accuracy",
        },
    )
    done = run_cli(["sweep", "--config", "sweep.yaml", "--quiet"], base)
    assert done.returncode == 0, done.stderr
    return base


@pytest.fixture
def sweep_root(tmp_path: Path, sweep_template: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(sweep_template, root, symlinks=True)
    return root


def _sweep_runs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "outputs" / "sw").iterdir() if p.name != "points")


SWEEP_COMMANDS = {
    "show": lambda root: ["sweep", "show", "sw"],
    "show-by-directory": lambda root: ["sweep", "show", str(root / "outputs/sw")],
    "resume": lambda root: ["sweep", "--resume", "sw"],
    "report": lambda root: ["report", "sw", "-o", str(root / "r.html")],
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", SWEEP_COMMANDS)
def test_a_sweep_record_that_is_no_file_is_named_not_missing(
    sweep_root: Path, command: str, kind: str
) -> None:
    path = sweep_root / "outputs" / "sw" / "sweep.json"
    _replace(path, kind)
    done = run_cli(SWEEP_COMMANDS[command](sweep_root), sweep_root)
    _clean_error(done, path, kind)
    assert "no sweep" not in done.stderr.lower()
    assert not (sweep_root / "r.html").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_a_new_sweep_over_a_broken_record_is_refused(
    sweep_root: Path, kind: str
) -> None:
    path = sweep_root / "outputs" / "sw" / "sweep.json"
    _replace(path, kind)
    before = _state(path.parent)
    done = run_cli(["sweep", "--config", "sweep.yaml"], sweep_root)
    assert done.returncode == 1 and "already exists" in done.stderr, done.stderr
    assert _state(path.parent) == before  # the record is not replaced


@pytest.mark.parametrize("kind", KINDS)
def test_a_point_run_whose_summary_is_no_file_is_a_warning_in_sweep_show(
    sweep_root: Path, kind: str
) -> None:
    first = _sweep_runs(sweep_root)[0]
    path = first / "summary.json"
    _replace(path, kind)
    done = run_cli(["sweep", "show", "sw", "--json"], sweep_root)
    assert done.returncode == 0, done.stderr
    assert "warning: Skipped a run: " in done.stderr and str(path) in done.stderr
    shown = json.loads(done.stdout)
    assert shown["points"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("file", ["sweep.yaml", "base.yaml"])
def test_a_sweep_file_that_is_no_file_is_one_error_naming_it(
    sweep_root: Path, tmp_path: Path, file: str, kind: str
) -> None:
    shutil.rmtree(sweep_root / "outputs")
    path = sweep_root / file
    _replace(path, kind)
    done = run_cli(["sweep", "--config", "sweep.yaml"], sweep_root)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert file in done.stderr
    assert not (sweep_root / "outputs").exists()


def test_resume_over_a_point_config_fifo_does_not_hang(sweep_root: Path) -> None:
    config = next((sweep_root / "outputs" / "sw" / "points").glob("*.yaml"))
    _replace(config, "fifo")
    done = run_cli_process(["sweep", "--resume", "sw"], sweep_root, timeout=20)
    assert "Traceback" not in done.stderr, done.stderr
    # mlx's own derived file: written again, as it is for a point config that differs
    assert done.returncode == 0, done.stderr
    assert config.is_file() and not config.is_symlink()
