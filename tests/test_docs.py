"""The docs tell the truth: the generated reference pages are what the code says now,
every link between the pages leads somewhere, and every shell and Python example of
README.md and docs/*.md runs (see doc_pages for how examples are marked)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from data_source import data_source
from doc_pages import REPO_ROOT, Example, blocks, pages, resolve
from helpers import cli_env

DOCS = REPO_ROOT / "docs"
GENERATED = ("configuration-reference.md", "cli-reference.md")
EXAMPLES = [example for page in pages() for example in blocks(page)]

# Every example that no test runs, by page and first line, and why. A page marks
# each one with `no-run` in its fence (```bash no-run); keep them rare.
NOT_RUN = {
    ("README.md", "make demo"): "builds .venv, installs the package and trains",
    ("README.md", "make test"): "is the whole test suite",
    ("README.md", "make check"): "is the test suite's fast half",
    ("docs/getting-started.md", "pip install ."): "installs the package",
    ("docs/getting-started.md", "pip install -e ."): "installs the package",
    ("docs/image-models.md", "pip install 'model-harness[torch]'"): "installs torch",
    ("docs/sweeps.md", "pip install 'model-harness[ray]'"): "installs Ray",
    (
        "docs/sweeps.md",
        "mlx sweep --config examples/sweep.yaml --executor ray --address 10.0.0.5:6379",
    ): "needs a Ray cluster",
    ("docs/results-and-export.md", "pip install 'model-harness[mlflow]'"): (
        "installs MLflow"
    ),
    ("docs/results-and-export.md", "pip install 'model-harness[export]'"): (
        "installs onnx and onnxruntime"
    ),
    (
        "docs/results-and-export.md",
        "mlx export quickstart-20261126-104142-8eeb quickstart-20261126-104150-1c2d "
        "--mlflow http://127.0.0.1:5000",
    ): "needs an MLflow tracking server",
    ("docs/cli.md", 'mlx completion zsh > "${fpath[1]}/_mlx"'): (
        "is zsh; the tests' shell is bash"
    ),
    ("docs/performance.md", "make bench"): "takes many minutes",
    ("docs/development.md", "make docs"): "rewrites the docs it checks",
}

# prepended to every shell example: `mlx` resolves run-ID placeholders, then runs mlx
PRELUDE = """
mlx() { "$DOC_PYTHON" "$DOC_RUNNER" "$@"; }
python() {
    if [ "$1" = -m ] && [ "$2" = mlx ]; then shift 2; mlx "$@"
    else "$DOC_PYTHON" "$@"; fi
}
pip() { echo "the tests do not run pip: mark the example no-run" >&2; return 1; }
make() { echo "the tests do not run make: mark the example no-run" >&2; return 1; }
"""


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.pages()


@pytest.mark.parametrize("name", GENERATED)
def test_generated_page_is_current(generated: dict[str, str], name: str) -> None:
    assert sorted(generated) == sorted(GENERATED)
    page = DOCS / name
    current = page.read_text(encoding="utf-8") if page.is_file() else ""
    assert current == generated[name], (
        f"docs/{name} differs from what docs/generate.py writes now: run `make docs`"
    )


def test_design_index_lists_every_design_record() -> None:
    index = (DOCS / "design" / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"\]\(([\w.-]+\.md)\)", index))
    present = {p.name for p in (DOCS / "design").glob("*.md")} - {"README.md"}
    assert listed == present


def _prose(page: Path) -> str:
    """``page`` without its fenced blocks."""
    text = page.read_text(encoding="utf-8")
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of ``page``."""
    headings = re.findall(r"^#+ (.+)$", _prose(page), re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize(
    "page", [*pages(), *sorted((DOCS / "design").glob("*.md"))], ids=lambda p: p.name
)
def test_links_lead_somewhere(page: Path) -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", _prose(page)):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target}"
        if anchor:
            assert anchor in _anchors(linked), f"{page.name}: {target}"


def test_examples_not_run_are_the_listed_ones() -> None:
    marked = {(e.page, e.first_line) for e in EXAMPLES if e.is_example and not e.runs}
    assert marked == set(NOT_RUN)


def test_pages_without_examples_are_the_listed_ones() -> None:
    runs = {e.page for e in EXAMPLES if e.runs}
    without = {p.relative_to(REPO_ROOT).as_posix() for p in pages()} - runs
    assert without == {*(f"docs/{name}" for name in GENERATED), "docs/development.md"}


def _run(example: Example, workdir: Path, mirror: str) -> subprocess.CompletedProcess:
    # the dry run asks the source of a dataset download whether it answers: the
    # pages are run as on a machine online, against a loopback mirror
    env = cli_env(
        workdir,
        HOME=str(workdir),
        DOC_PYTHON=sys.executable,
        DOC_RUNNER=str(REPO_ROOT / "tests" / "doc_pages.py"),
        MLX_DATA_URL=mirror,
    )
    if example.language == "python":
        command = [sys.executable, "-c", resolve(example.body, workdir)]
    else:
        body = example.body
        if example.language == "console":
            lines = body.splitlines()
            body = "\n".join(line[2:] for line in lines if line.startswith("$ "))
        strict = "set -euo pipefail\n" if example.exit_status == 0 else ""
        command = ["bash", "-c", PRELUDE + strict + body]
    return subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "page",
    [p for p in pages() if any(e.runs for e in blocks(p))],
    ids=lambda p: p.name,
)
def test_page_examples_run(page: Path, tmp_path: Path) -> None:
    """A page's examples run in order, in one directory holding a copy of examples/,
    after the files the page shows (``file=PATH``) are written."""
    shutil.copytree(REPO_ROOT / "examples", tmp_path / "examples")
    (tmp_path / "pyproject.toml").write_text("")
    with data_source(200) as mirror:
        _run_page(page, tmp_path, mirror.url)


def _run_page(page: Path, tmp_path: Path, mirror: str) -> None:
    for example in blocks(page):
        if example.file:
            target = tmp_path / example.file
            if target.exists():  # a file of examples/, shown as it is
                assert target.read_text(encoding="utf-8") == example.body, example
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(example.body, encoding="utf-8")
        elif example.runs:
            done = _run(example, tmp_path, mirror)
            where = f"{example.page}:{example.line}"
            assert done.returncode == example.exit_status, (
                f"{where} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
            )
            assert "Traceback" not in done.stderr, f"{where}\n{done.stderr}"


# dotted names in the docs that are not Python: MLflow tags (results-and-export.md)
# and the run's logger (python-api.md)
_NOT_PYTHON = {
    "mlx.run_id",
    "mlx.status",
    "mlx.config_hash",
    "mlx.name",
    "mlx.directory",
    "mlx.epochs_completed",
    "mlx.run",
}


def _documented_names() -> list[str]:
    pages = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    found = set()
    for page in pages:
        text = page.read_text(encoding="utf-8")
        found |= set(re.findall(r"`(mlx(?:\.[A-Za-z_]\w*)+)", text))
    return sorted(found - _NOT_PYTHON)


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            target = getattr(target, attribute)
        return target
    raise ModuleNotFoundError(dotted)


def test_every_python_name_the_docs_promise_imports() -> None:
    names = _documented_names()
    assert "mlx.run_experiment" in names and "mlx.outputs.plots" in names
    broken = []
    for name in names:
        try:
            _resolve(name)
        except (ImportError, AttributeError) as exc:
            broken.append(f"{name}: {exc}")
    assert not broken, "\n".join(broken)
    # and every name of the public API table, each by itself
    api = (REPO_ROOT / "docs" / "python-api.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(mlx[\w.]*)` \| (.+) \|$", api, re.MULTILINE)
    assert len(rows) == 10
    for module, exported in rows:
        for name in re.findall(r"`(\w+)`", exported):
            _resolve(f"{module}.{name}")


def test_every_environment_variable_is_in_the_table() -> None:
    from mlx.utils.environ import VARIABLES

    text = (REPO_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(MLX_[A-Z_]+)` \|", text, flags=re.M))
    assert rows == {variable.name for variable in VARIABLES}
