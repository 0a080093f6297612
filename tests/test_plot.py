"""`mlx plot` and mlx.outputs.plots: files that are what their extension says, lines
that are the run's metrics.jsonl, partial curves of a run still training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import REPO_ROOT, cli_env, run_cli, small_classification, start_cli
from helpers import write_config as write_yaml

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402

from mlx.outputs.plots import PlotError, learning_curves  # noqa: E402
from mlx.runs import open_run  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG = "{http://www.w3.org/2000/svg}"


def _train(root: Path, name: str, **training: object) -> Path:
    config = small_classification(**training)
    config["name"] = name
    write_yaml(root / f"{name}.yaml", config)
    done = run_cli(["run-experiment", "--config", f"{name}.yaml", "--quiet"], root)
    assert done.returncode == 0, done.stderr
    (run_dir,) = (root / "outputs").glob(f"{name}-*")
    return run_dir


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("plots")
    (root / "pyproject.toml").write_text("")
    first = _train(root, "first", epochs=4)
    second = _train(root, "second", epochs=6, learning_rate=0.05)
    return root, first, second


def _records(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.parametrize(
    "metrics, size",
    [([], (768, 672)), (["--metric", "val_accuracy"], (768, 360))],
    ids=["default-two-panels", "one-panel"],
)
def test_png_is_a_png_of_the_figure_size(
    two_runs: tuple[Path, Path, Path], metrics: list[str], size: tuple[int, int]
) -> None:
    root, first, second = two_runs
    out = root / "curves.png"
    done = run_cli(["plot", str(first), str(second), *metrics, "-o", str(out)], root)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(out) as image:
        image.verify()
    with Image.open(out) as image:
        # figsize (6.4 x 2.6 per panel + 0.4) inches at 120 dpi
        assert image.size == size
        assert len(image.convert("RGB").getcolors(1 << 20) or []) > 2


@pytest.mark.parametrize(
    "metrics",
    [["train_loss", "val_loss"], ["val_accuracy"], ["val_loss", "learning_rate"]],
    ids=["default", "one", "two-named"],
)
def test_svg_has_one_line_per_run_per_panel(
    two_runs: tuple[Path, Path, Path], metrics: list[str]
) -> None:
    root, first, second = two_runs
    out = root / "curves.svg"
    args = ["plot", str(first), str(second), "-o", str(out)]
    if metrics != ["train_loss", "val_loss"]:
        args += ["--metric", *metrics]
    done = run_cli(args, root)
    assert done.returncode == 0, done.stderr
    tree = ET.parse(out)  # well-formed XML
    assert tree.getroot().tag == f"{SVG}svg"
    groups = {
        g.get("id"): g for g in tree.iter(f"{SVG}g") if ":" in (g.get("id") or "")
    }
    expected = {f"{m}:{run.name}" for m in metrics for run in (first, second)}
    assert set(groups) == expected
    for group in groups.values():
        # the line itself is one path; markers are uses of one marker path
        assert len(group.findall(f"{SVG}path")) == 1


def test_pdf_starts_with_the_pdf_header(two_runs: tuple[Path, Path, Path]) -> None:
    root, first, _ = two_runs
    out = root / "curves.PDF"  # the extension is matched case-insensitively
    done = run_cli(["plot", str(first), "-o", str(out)], root)
    assert done.returncode == 0, done.stderr
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")


def test_lines_are_the_runs_metrics(two_runs: tuple[Path, Path, Path]) -> None:
    _, first, second = two_runs
    runs = {p.name: open_run(p).read_metrics() for p in (first, second)}
    figure = learning_curves(runs, ["train_loss", "val_loss", "val_accuracy"])
    assert len(figure.axes) == 3
    for ax, metric in zip(figure.axes, ["train_loss", "val_loss", "val_accuracy"]):
        assert ax.get_ylabel() == metric
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == [first.name, second.name]
        for line, run_dir in zip(lines, (first, second)):
            records = _records(run_dir)  # the file, read independently
            assert list(line.get_xdata()) == [r["epoch"] for r in records]
            assert list(line.get_ydata()) == [r[metric] for r in records]
    assert figure.axes[-1].get_xlabel() == "epoch"
    assert len(_records(second)) == 6


def test_library_names_the_metrics_available_for_an_unknown_one(
    two_runs: tuple[Path, Path, Path],
) -> None:
    _, first, _ = two_runs
    with pytest.raises(PlotError, match="unknown metric 'val_acc'.*val_accuracy"):
        learning_curves({"a": _records(first)}, ["train_loss", "val_acc"])
    with pytest.raises(PlotError, match="no runs"):
        learning_curves({}, ["train_loss"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--metric", "accuracy"], "unknown metric 'accuracy': the runs record "),
        (["--metric", "val_loss", "nope"], "unknown metric 'nope'"),
        (["--metric", "x", "--metric", "y"], "unknown metrics 'x', 'y'"),
    ],
    ids=["eval-metric", "one-of-two", "two-flags"],
)
def test_unknown_metric_is_one_error_naming_the_available_ones(
    two_runs: tuple[Path, Path, Path], args: list[str], message: str
) -> None:
    root, first, _ = two_runs
    out = root / "kept.png"
    out.write_bytes(b"old")
    done = run_cli(["plot", str(first), *args, "-o", str(out)], root)
    assert done.returncode == 1
    assert message in done.stderr
    assert "train_loss, val_loss, val_accuracy, learning_rate" in done.stderr
    assert "Traceback" not in done.stderr
    assert out.read_bytes() == b"old"  # a failed plot leaves the old file alone
    assert [p.name for p in root.glob(".kept.png*")] == []


@pytest.mark.parametrize(
    "name", ["curves.gif", "curves", "curves.png.txt", "curves.jpg"]
)
def test_unknown_extension_is_a_clear_error(
    two_runs: tuple[Path, Path, Path], name: str
) -> None:
    root, first, _ = two_runs
    done = run_cli(["plot", str(first), "-o", name], root)
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: {name}: unknown image type")
    assert "use .png, .svg or .pdf" in done.stderr
    assert not (root / name).exists()


def test_an_unknown_run_is_an_error(two_runs: tuple[Path, Path, Path]) -> None:
    root, first, _ = two_runs
    done = run_cli(["plot", str(first), "no-such-run", "-o", "x.png"], root)
    assert done.returncode == 1
    assert "no-such-run" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (root / "x.png").exists()


def test_output_replaces_the_old_file_whole(two_runs: tuple[Path, Path, Path]) -> None:
    root, first, _ = two_runs
    out = root / "replaced.svg"
    out.write_text("<old/>" * 100_000)
    done = run_cli(["plot", str(first), "-o", str(out)], root)
    assert done.returncode == 0, done.stderr
    assert ET.parse(out).getroot().tag == f"{SVG}svg"
    assert oct(out.stat().st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("command", ["plot", "report"])
@pytest.mark.slow
def test_without_matplotlib_one_error_names_the_extra(
    two_runs: tuple[Path, Path, Path], tmp_path: Path, command: str
) -> None:
    root, first, _ = two_runs
    fake = tmp_path / "site" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named matplotlib')")
    env = cli_env(root, PYTHONPATH=f"{tmp_path / 'site'}{os.pathsep}{REPO_ROOT}")
    out = "x.png" if command == "plot" else "x.html"
    done = run_cli([command, str(first), "-o", out], root, env=env)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: plotting needs matplotlib, which is not installed: "
        "pip install 'model-harness[plot]'"
    ]
    assert not (root / out).exists()


@pytest.mark.slow
def test_other_commands_never_import_matplotlib(
    two_runs: tuple[Path, Path, Path],
) -> None:
    root, _, _ = two_runs
    code = (
        "import sys, contextlib, io\n"
        "from mlx.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['runs'])\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('matplotlib' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env=cli_env(root),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.strip() == "False", done.stderr


def _parsed(line: bytes) -> dict | None:
    try:
        return json.loads(line)
    except ValueError:
        return None


def _wait_for_lines(path: Path, count: int, proc: subprocess.Popen) -> None:
    while True:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)


@pytest.mark.slow
def test_a_run_still_training_plots_what_it_has(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    config = small_classification(epochs=100_000)
    config["dataset"]["params"]["n_samples"] = 3000
    write_yaml(tmp_path / "long.yaml", config)
    proc = start_cli(["run-experiment", "--config", "long.yaml", "--quiet"], tmp_path)
    try:
        while not list((tmp_path / "outputs").glob("small-*/metrics.jsonl")):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        (run_dir,) = (tmp_path / "outputs").glob("small-*")
        metrics = run_dir / "metrics.jsonl"
        _wait_for_lines(metrics, 2, proc)
        assert open_run(run_dir).status() == "running"

        done = run_cli(["plot", str(run_dir), "-o", "partial.png"], tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        with Image.open(tmp_path / "partial.png") as image:
            assert image.size == (768, 672)

        # a line torn mid-write is left out, quietly, while the run trains
        with open(metrics, "ab") as handle:
            handle.write(b'{"epoch": 99999, "train_loss": 0.')
        from mlx.outputs.report import read_run_metrics

        records = read_run_metrics(open_run(run_dir))
        figure = learning_curves({run_dir.name: records}, ["train_loss"])
        (curve,) = figure.axes[0].get_lines()
        epochs = list(curve.get_xdata())
        assert 99999 not in epochs
        assert len(epochs) >= 2
        assert epochs == list(range(1, len(epochs) + 1))
        done = run_cli(
            ["plot", str(run_dir), "--metric", "train_loss", "-o", "p.svg"], tmp_path
        )
        assert done.returncode == 0, done.stderr
        assert "warning" not in done.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    # what was plotted is exactly the first epochs of the file, as it ends up
    # (the torn line, unparsable, sits somewhere among them)
    final = [_parsed(line) for line in metrics.read_bytes().split(b"\n")]
    final = [r for r in final if r is not None]
    assert list(curve.get_ydata()) == [r["train_loss"] for r in final[: len(epochs)]]


@pytest.mark.slow
def test_plot_uses_the_object_api_and_agg(two_runs: tuple[Path, Path, Path]) -> None:
    root, first, _ = two_runs
    code = (
        "import sys, contextlib, io, matplotlib\n"
        "from mlx.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['plot', {str(first)!r}, '-o', 'api.png']) == 0\n"
        "print('matplotlib.pyplot' in sys.modules, matplotlib.get_backend().lower())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env=cli_env(root, MPLBACKEND="TkAgg"),  # a display backend asked for: ignored
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.split() == ["False", "agg"], done.stderr


def test_confusion_matrix_figure_writes_each_count() -> None:
    from mlx.outputs.plots import confusion_matrix_figure

    counts = [[5, 1, 0], [2, 7, 1], [0, 0, 9]]
    figure = confusion_matrix_figure(counts, ["a$", "b", "c"], title="test $split")
    ax = figure.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts == [str(n) for row in counts for n in row]
    assert [t.get_text() for t in ax.get_xticklabels()] == [r"a\$", "b", "c"]
    assert ax.images[0].get_array().tolist() == counts
    figure.savefig(__import__("io").BytesIO(), format="png")  # draws: no mathtext error


@pytest.mark.parametrize(
    "values, xs",
    [
        ([0.1, 0.01, 0.05], [0.01, 0.05, 0.1]),
        (["adam", "sgd", "adam"], [0, 1, 0]),
        (["$x", "[1, 2]", "$x"], [0, 1, 0]),
    ],
    ids=["numeric-sorted", "categorical", "dollar-text"],
)
def test_parameter_figure_points(values: list, xs: list) -> None:
    from mlx.outputs.plots import parameter_figure

    scores = [0.3, 0.2, None]
    figure = parameter_figure("training.x", values, "val_loss", scores)
    (line,) = figure.axes[0].get_lines()
    assert list(line.get_xdata()) == xs
    ys = list(line.get_ydata())
    if isinstance(values[0], float):
        # sorted by the parameter, each score moving with its value
        assert ys[0] == 0.2 and ys[2] == 0.3 and ys[1] != ys[1]
    else:
        assert ys[:2] == [0.3, 0.2] and ys[2] != ys[2]  # null is NaN
    figure.savefig(__import__("io").BytesIO(), format="svg")


@pytest.mark.parametrize("command", ["plot", "report"])
def test_output_that_cannot_be_a_file_is_named(
    two_runs: tuple[Path, Path, Path], command: str
) -> None:
    root, first, _ = two_runs
    ext = ".png" if command == "plot" else ".html"
    (root / f"adir{ext}").mkdir(exist_ok=True)
    cases = {
        f"adir{ext}": f"error: adir{ext}: is a directory; name the file to write",
        f"missing/x{ext}": f"error: missing/x{ext}: the directory missing does not "
        "exist",
    }
    for out, message in cases.items():
        done = run_cli([command, str(first), "-o", out], root)
        assert done.returncode == 1
        assert done.stderr.splitlines() == [message]
    assert not (root / "missing").exists()


@pytest.fixture(scope="module")
def overflowed(two_runs: tuple[Path, Path, Path]) -> Path:
    """A run of one epoch whose losses overflow (targets near 1e200: their squares
    do not fit a float64), so metrics.jsonl holds null for every loss."""
    root = two_runs[0]
    rows = ["a,b,t"] + [f"{i % 3},{i % 5},{(-1) ** i * (i + 1)}e200" for i in range(40)]
    (root / "big.csv").write_text("\n".join(rows) + "\n")
    config = {
        "name": "overflow",
        "dataset": {"name": "custom", "path": "big.csv", "params": {"target": "t"}},
        "model": {"name": "linear_regression"},
        "training": {"epochs": 1},
        "output": {"directory": "outputs"},
    }
    write_yaml(root / "overflow.yaml", config)
    done = run_cli(["run-experiment", "--config", "overflow.yaml", "--quiet"], root)
    assert done.returncode == 0, done.stderr
    (run_dir,) = (root / "outputs").glob("overflow-*")
    (record,) = _records(run_dir)
    assert record["train_loss"] is None and record["val_loss"] is None  # the oracle
    return run_dir


@pytest.mark.parametrize("ext", [".svg", ".png"])
def test_a_metric_with_no_finite_value_is_said_not_drawn_blank(
    two_runs: tuple[Path, Path, Path], overflowed: Path, ext: str
) -> None:
    root, first, _ = two_runs
    nan_run = overflowed
    out = root / f"nan{ext}"
    done = run_cli(["plot", str(nan_run), "-o", str(out)], root)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote {out}\n"
    assert done.stderr.splitlines() == [
        f"warning: {metric} has no finite value in any run (every one is NaN or "
        "infinite): its panel is empty"
        for metric in ("train_loss", "val_loss")
    ]
    # beside a run that has values, only the run without them is marked
    mixed = root / f"mixed{ext}"
    done = run_cli(["plot", str(first), str(nan_run), "-o", str(mixed)], root)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    if ext == ".svg":
        text = out.read_text(encoding="utf-8")
        assert "no finite value of train_loss (NaN or infinite)" in text
        assert "no finite value of val_loss (NaN or infinite)" in text
        both = mixed.read_text(encoding="utf-8")
        assert "no finite value of" not in both
        assert f"{nan_run.name} (no finite value)" in both
        assert f"{first.name} (no finite value)" not in both


def test_a_run_and_its_copy_are_both_shown_and_one_run_named_twice_once(
    two_runs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    import re
    import shutil

    root, first, _ = two_runs
    copy = tmp_path / "archive" / first.name  # the same run ID, elsewhere
    shutil.copytree(first, copy)
    lines = (copy / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    (copy / "metrics.jsonl").write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")
    refs = [first.name, str(first), str(copy)]  # `first` twice: by ID and by path

    out = tmp_path / "both.svg"
    done = run_cli(["plot", *refs, "--metric", "val_loss", "-o", str(out)], root)
    assert done.returncode == 0, done.stderr
    groups = [
        g.get("id") for g in ET.parse(out).iter(f"{SVG}g") if ":" in (g.get("id") or "")
    ]
    assert groups == [f"val_loss:{first}", f"val_loss:{copy}"]

    page = tmp_path / "both.html"
    done = run_cli(["report", *refs, "-o", str(page)], root)
    assert done.returncode == 0, done.stderr
    html = page.read_text(encoding="utf-8")
    sections = re.findall(r'<section class="run".*?</section>', html, re.DOTALL)
    assert len(sections) == 2
    for section, directory, epochs in ((sections[0], first, 4), (sections[1], copy, 2)):
        assert f'data-run-id="{first.name}"' in section
        assert f"<h2>{directory}</h2>" in section
        (metrics,) = re.findall(r'<table class="metrics">.*?</table>', section)
        assert metrics.count("<tr>") == 1 + epochs  # the header, then each epoch


def test_a_report_chart_with_no_finite_score_says_so(
    two_runs: tuple[Path, Path, Path], overflowed: Path, tmp_path: Path
) -> None:
    import re

    root, first, _ = two_runs
    page = tmp_path / "r.html"
    args = ["report", str(first), str(overflowed), "--metric", "val_r2"]
    done = run_cli([*args, "-o", str(page)], root)
    assert done.returncode == 0, done.stderr
    html = page.read_text(encoding="utf-8")
    (comparison,) = re.findall(r'<section id="comparison">.*?</section>', html, re.S)
    charts = comparison.count("<svg")
    assert charts > 0  # one per differing field (dataset.name, model.name, ...)
    # neither run has a finite val_r2 (the oracle: the overflowed run's summary)
    summary = json.loads((overflowed / "summary.json").read_text(encoding="utf-8"))
    assert summary["final_metrics"]["val_r2"] is None
    said = "no finite value of val_r2 (NaN, infinite or missing)"
    assert comparison.count(said) == charts
