"""`mlx report` opened in a real headless Chromium: it loads from disk without a
network request or a console message, it renders to a non-blank screenshot, and the
numbers in its DOM are the run's files, recomputed here independently."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO_ROOT, run_cli, small_classification, write_config

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WINDOW = (1200, 1600)


class _Tables(HTMLParser):
    """Every <table> of the page: its class, the run section it sits in, and its
    rows, each cell as (text, attributes)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self._section: str | None = None
        self._open: list[dict] = []
        self._cell: dict | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "section":
            self._section = a.get("data-run-id") or a.get("id")
        elif tag == "table":
            table = {"class": a.get("class", ""), "run": self._section, "rows": []}
            self.tables.append(table)
            self._open.append(table)
        elif tag == "tr" and self._open:
            self._open[-1]["rows"].append([])
        elif tag in ("td", "th") and self._open:
            self._cell = {"text": "", "attrs": a, "tag": tag}
            self._open[-1]["rows"][-1].append(self._cell)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._open:
            self._open.pop()
        elif tag in ("td", "th"):
            self._cell = None
        elif tag == "section":
            self._section = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data


def _tables(dom: str, run: str | None, cls: str) -> list[dict]:
    parser = _Tables()
    parser.feed(dom)
    return [t for t in parser.tables if t["run"] == run and cls in t["class"].split()]


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # as root
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            # any host name resolves to nothing: a request could not reach anyone
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _train(root: Path, name: str, **training: object) -> Path:
    config = small_classification(**training)
    config["name"] = name
    config["description"] = "<b>bold</b> & <script>alert(1)</script>"
    write_config(root / f"{name}.yaml", config)
    done = run_cli(["run-experiment", "--config", f"{name}.yaml", "--quiet"], root)
    assert done.returncode == 0, done.stderr
    (run_dir,) = (root / "outputs").glob(f"{name}-*")
    return run_dir


def _files(run_dir: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(run_dir)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(run_dir.rglob("*"))
    }


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("report")
    (root / "pyproject.toml").write_text("")
    saved = _train(root, "saved", epochs=4)
    computed = _train(root, "computed", epochs=3, learning_rate=0.05)
    done = run_cli(["eval", str(saved), "--save-predictions"], root)
    assert done.returncode == 0, done.stderr
    before = _files(computed)
    out = root / "report.html"
    done = run_cli(["report", str(saved), str(computed), "-o", str(out)], root)
    assert done.returncode == 0, done.stderr
    assert _files(computed) == before  # the in-process predictions wrote nothing
    return {"root": root, "saved": saved, "computed": computed, "html": out}


def test_page_names_nothing_on_the_network(report: dict) -> None:
    text = report["html"].read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", text, re.I)
    assert "<script" not in text.lower()
    assert "<link" not in text.lower()
    # the config's text is escaped, not markup
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;" in text


@pytest.fixture(scope="module")
def dom(report: dict, tmp_path_factory: pytest.TempPathFactory) -> str:
    if CHROMIUM is None:
        pytest.skip("no chromium binary on PATH (`make browser` installs Debian's)")
    profile = tmp_path_factory.mktemp("chromium-dom")
    done = _chromium("--dump-dom", report["html"].as_uri(), profile=profile)
    assert done.returncode == 0, done.stderr
    # page console messages (a refused resource, a script error) are logged as
    # CONSOLE lines; blocked or failed requests as net errors
    assert "CONSOLE" not in done.stderr, done.stderr
    assert "ERR_NAME_NOT_RESOLVED" not in done.stderr, done.stderr
    assert "Refused to" not in done.stderr, done.stderr
    return done.stdout


@pytest.mark.slow
def test_screenshot_is_not_blank(report: dict, tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("no chromium binary on PATH (`make browser` installs Debian's)")
    shot = tmp_path / "page.png"
    done = _chromium(
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--screenshot={shot}",
        report["html"].as_uri(),
        profile=tmp_path / "profile",
    )
    assert done.returncode == 0, done.stderr
    assert "CONSOLE" not in done.stderr, done.stderr
    with Image.open(shot) as image:
        assert image.size == WINDOW
        rgb = image.convert("RGB")
        colours = rgb.getcolors(WINDOW[0] * WINDOW[1])
    assert colours is not None and len(colours) > 1
    white = sum(n for n, c in colours if c == (255, 255, 255))
    assert white < 0.97 * WINDOW[0] * WINDOW[1]  # text, tables and a chart drawn
    # the chart's blue line (matplotlib's first colour, #1f77b4) is on screen
    assert any(
        abs(c[0] - 31) + abs(c[1] - 119) + abs(c[2] - 180) < 30 for _, c in colours
    )


def _column(table: dict, name: str) -> list[dict]:
    header = [c["text"] for c in table["rows"][0]]
    index = header.index(name)
    return [row[index] for row in table["rows"][1:]]


@pytest.mark.parametrize("which", ["saved", "computed"])
@pytest.mark.slow
def test_final_val_loss_is_the_metrics_file(dom: str, report: dict, which: str) -> None:
    run_dir = report[which]
    records = [
        json.loads(line)
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        if line.strip()
    ]
    (table,) = _tables(dom, run_dir.name, "metrics")
    cells = _column(table, "val_loss")
    assert [float(c["attrs"]["data-value"]) for c in cells] == [
        r["val_loss"] for r in records
    ]
    assert cells[-1]["text"] == f"{records[-1]['val_loss']:.6g}"
    epochs = [int(c["text"]) for c in _column(table, "epoch")]
    assert epochs == [r["epoch"] for r in records]


@pytest.mark.slow
def test_eval_accuracy_is_the_eval_file(dom: str, report: dict) -> None:
    run_dir = report["saved"]
    (path,) = (run_dir / "evals").glob("*.json")
    metrics = json.loads(path.read_text())["metrics"]
    (table,) = _tables(dom, run_dir.name, "latest")
    shown = {row[0]["text"]: row[1] for row in table["rows"][1:]}
    assert float(shown["accuracy"]["attrs"]["data-value"]) == metrics["accuracy"]
    assert shown["accuracy"]["text"] == f"{metrics['accuracy']:.6g}"
    assert set(shown) == set(metrics) - {"confusion_matrix"}
    assert _tables(dom, report["computed"].name, "latest") == []  # never evaluated


def _matrix(table: dict) -> tuple[list[str], np.ndarray]:
    labels = [c["text"] for c in table["rows"][0][1:]]
    counts = [[int(c["text"]) for c in row[1:]] for row in table["rows"][1:]]
    assert [row[0]["text"] for row in table["rows"][1:]] == labels
    return labels, np.array(counts)


def _predictions(path: Path) -> tuple[list[int], list[int]]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [int(r["y_true"]) for r in rows], [int(r["y_pred"]) for r in rows]


@pytest.mark.slow
def test_confusion_matrix_from_predictions_csv(dom: str, report: dict) -> None:
    y_true, y_pred = _predictions(report["saved"] / "predictions.csv")
    (table,) = _tables(dom, report["saved"].name, "confusion")
    labels, counts = _matrix(table)
    assert labels == ["0", "1", "2"]
    np.testing.assert_array_equal(
        counts, confusion_matrix(y_true, y_pred, labels=[0, 1, 2])
    )
    assert counts.sum() == len(y_true)
    assert "from predictions.csv of the test split, checkpoint final" in dom


@pytest.mark.slow
def test_confusion_matrix_computed_when_no_predictions(dom: str, report: dict) -> None:
    run_dir = report["computed"]
    (table,) = _tables(dom, run_dir.name, "confusion")
    labels, counts = _matrix(table)
    assert "computed on the test split, checkpoint final" in dom
    # the oracle: mlx eval's own saved predictions, made after the report
    done = run_cli(["eval", str(run_dir), "--save-predictions"], report["root"])
    assert done.returncode == 0, done.stderr
    y_true, y_pred = _predictions(run_dir / "predictions.csv")
    np.testing.assert_array_equal(
        counts, confusion_matrix(y_true, y_pred, labels=[int(v) for v in labels])
    )


@pytest.mark.slow
def test_comparison_table_and_varied_parameter_chart(dom: str, report: dict) -> None:
    (table,) = _tables(dom, "comparison", "comparison")
    header = [c["text"] for c in table["rows"][0]]
    # name differs too, but it is no parameter; training.epochs and the rate are
    assert header[:5] == [
        "run", "status", "epochs", "training.epochs", "training.learning_rate"
    ]  # fmt: skip
    runs = [report["saved"], report["computed"]]
    assert [c["text"] for c in _column(table, "run")] == [r.name for r in runs]
    for cell, run_dir in zip(_column(table, "val_loss"), runs):
        summary = json.loads((run_dir / "summary.json").read_text())
        assert (
            float(cell["attrs"]["data-value"]) == summary["final_metrics"]["val_loss"]
        )
    rates = [
        float(c["attrs"]["data-value"])
        for c in _column(table, "training.learning_rate")
    ]
    assert rates == [0.01, 0.05]
    assert "training.learning_rate against val_loss" in dom
    assert dom.count("<svg") == 2 + 2  # two parameter charts, two runs' curves


@pytest.mark.slow
def test_the_console_check_sees_a_page_error(tmp_path: Path) -> None:
    # the check above can fail: a page that logs an error and breaks its own CSP
    if CHROMIUM is None:
        pytest.skip("no chromium binary on PATH (`make browser` installs Debian's)")
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta http-equiv='Content-Security-Policy' "
        "content=\"default-src 'none'\"></head><body>"
        "<img src='http://example.invalid/a.png'></body></html>"
    )
    done = _chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile")
    assert "CONSOLE" in done.stderr
    assert "example.invalid" in done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--metric", "nope"], "unknown metric 'nope': the runs record train_loss"),
        (["--metric", "val_acc"], "val_accuracy, accuracy"),
    ],
    ids=["unknown", "near-miss"],
)
def test_report_unknown_metric_names_the_available_ones(
    report: dict, args: list[str], message: str
) -> None:
    runs = [str(report["saved"]), str(report["computed"])]
    done = run_cli(["report", *runs, *args, "-o", "bad.html"], report["root"])
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (report["root"] / "bad.html").exists()


@pytest.mark.parametrize("name", ["report.txt", "report", "report.svg"])
def test_report_must_be_named_html(report: dict, name: str) -> None:
    done = run_cli(["report", str(report["saved"]), "-o", name], report["root"])
    assert done.returncode == 1
    assert done.stderr == f"error: {name}: a report is an HTML file; name it *.html\n"
    assert not (report["root"] / name).exists()


def test_report_compares_by_an_eval_metric(report: dict) -> None:
    runs = [str(report["saved"]), str(report["computed"])]
    out = report["root"] / "by-accuracy.html"
    done = run_cli(
        ["report", *runs, "--metric", "accuracy", "-o", str(out)], report["root"]
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text(encoding="utf-8")
    assert "Chosen metric: <code>accuracy</code>" in text
    assert "training.learning_rate against accuracy" in text


def test_one_run_has_no_comparison(report: dict) -> None:
    out = report["root"] / "one.html"
    done = run_cli(["report", str(report["saved"]), "-o", str(out)], report["root"])
    assert done.returncode == 0, done.stderr
    text = out.read_text(encoding="utf-8")
    assert 'id="comparison"' not in text
    assert text.count("<svg") == 1


def test_a_run_without_a_model_says_why_it_has_no_matrix(
    report: dict, tmp_path: Path
) -> None:
    from run_copies import clone, new_root

    root = new_root(tmp_path)
    run_dir = clone(report["computed"], root, "computed-20240101-000000-bbbb")
    shutil.rmtree(run_dir / "model")
    (run_dir / "predictions.csv").unlink(missing_ok=True)  # another test evaluates it
    before = _files(run_dir)
    done = run_cli(["report", str(run_dir), "-o", "r.html"], root)
    assert done.returncode == 0, done.stderr
    text = (root / "r.html").read_text(encoding="utf-8")
    assert "<h3>Confusion matrix</h3><p>Not available: run " in text
    assert "has no checkpoint &#x27;final&#x27;" in text
    assert _files(run_dir) == before


def test_a_regression_run_has_no_confusion_matrix(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    shutil.copy(REPO_ROOT / "examples" / "regression.yaml", tmp_path / "reg.yaml")
    done = run_cli(["run-experiment", "--config", "reg.yaml", "--quiet"], tmp_path)
    assert done.returncode == 0, done.stderr
    (run_dir,) = (tmp_path / "outputs").glob("*/regression-*")
    done = run_cli(["report", str(run_dir), "-o", "r.html"], tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Confusion matrix" not in text
    assert "<h3>Metrics</h3>" in text
