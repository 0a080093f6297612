"""An HTML report of one or more runs: one self-contained file.

The page holds everything it shows: styles in a ``<style>`` element, figures as
inline SVG (:mod:`mlx.outputs.plots`), no script, no external resource (a
Content-Security-Policy forbids any), so it opens from disk, offline, in any browser,
and can be mailed as it is. Every text from a run (names, config values, error
messages) is HTML-escaped.

Per run: the resolved config, the metrics table and learning curves, every evaluation,
for a classification run a confusion matrix, and the environment. For several runs
also a comparison table and one chart per varied config parameter against the chosen
metric. For a sweep that is a cross-validation (it varies ``dataset.params.fold``),
also its groups of points that differ only in the fold, each with the mean and
standard deviation of the sweep's metric over its completed folds, as ``mlx sweep
show`` gives them, the best group marked.

The confusion matrix comes from the run's ``predictions.csv`` (written by
``mlx eval --save-predictions``); without one, the report computes the predictions in
process on the split and checkpoint of the latest evaluation (test and final when
there is none), as ``mlx eval`` would, and writes nothing into the run.

Every evaluation result and the confusion matrix say which weights produced them:
the checkpoint, the epoch of its weights, and, when the run has trained past them
since (a resumed run), that it has and the command that scores the newer model
(:mod:`mlx.runs.weights`). ``predictions.csv`` is matched to the evaluation that
wrote it by the SHA-256 that evaluation recorded.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from mlx._version import __version__
from mlx.errors import MLXError, RunError
from mlx.experiment.evaluate import split_predictions
from mlx.outputs.plots import (
    available_metrics,
    figure_bytes,
    learning_curves,
    load_matplotlib,
    parameter_figure,
)
from mlx.runs.store import RunDir
from mlx.runs.weights import checkpoint_state, weights_brief, weights_text
from mlx.utils.atomic import write_text_atomic
from mlx.utils.safe_io import (
    DOCUMENT_LIMIT,
    METRICS_LIMIT,
    read_bytes_guarded,
    read_json_guarded,
)
from mlx.utils.values import flatten, is_number

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["build_report", "labelled_runs", "read_run_metrics", "write_report"]

# config fields that tell runs apart without being a parameter of the experiment
_NOT_PARAMETERS = ("name", "description", "output.")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    """A value as the page shows it: floats to 6 significant digits, lists and
    mappings as JSON, null as an em dash."""
    if value is None:
        return "\u2014"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _cell(value: Any, tag: str = "td", attrs: str = "") -> str:
    """A table cell; a number also carries its exact value in ``data-value``."""
    if is_number(value):
        exact = repr(float(value)) if isinstance(value, float) else str(value)
        attrs += f' class="num" data-value="{_e(exact)}"'
    return f"<{tag}{attrs}>{_e(_fmt(value))}</{tag}>"


def _html_table(
    header: Sequence[str] | None, rows: Sequence[Sequence[Any]], cls: str = ""
) -> str:
    """A table; no header row when ``header`` is None."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header or ())
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    klass = f' class="{_e(cls)}"' if cls else ""
    thead = f"<thead><tr>{head}</tr></thead>" if head else ""
    return f"<table{klass}>{thead}<tbody>{body}</tbody></table>"


def _flatten(data: Mapping[str, Any]) -> dict[str, Any]:
    """A run's config or environment as ``{"dotted.path": leaf}``; an empty one is
    one empty row."""
    return flatten(data) or {"": {}}


def _svg(figure: Figure) -> str:
    """``figure`` as an inline ``<svg>`` element: text kept as text, no XML
    prolog, no metadata block."""
    matplotlib = load_matplotlib()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        text = figure_bytes(figure, "svg").decode("utf-8")
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    return f'<div class="figure">{text}</div>'


# -- one run ---------------------------------------------------------------------------


def labelled_runs(runs: Sequence[RunDir]) -> list[tuple[str, RunDir]]:
    """``runs`` (RunDir objects) without repeats, each with the label it is shown
    under: its run ID, or its directory where two directories hold runs of one ID (a
    run and a copy of it), so that neither hides the other. A directory named twice
    (by ID and by path) counts once."""
    unique: dict[Path, RunDir] = {}
    for run in runs:
        unique.setdefault(Path(run.path).resolve(), run)
    ids = [run.run_id for run in unique.values()]
    return [
        (run.run_id if ids.count(run.run_id) == 1 else str(run.path), run)
        for run in unique.values()
    ]


class _Run:
    """What the report reads from one run directory, read once."""

    def __init__(self, run: RunDir, label: str | None = None) -> None:
        self.run = run
        self.id: str = label or run.run_id
        self.summary = run.read_summary()
        self.status = run.status()
        self.config = run.read_config()
        self.records = read_run_metrics(run, self.status)
        self.evals = [e for e in (_read_json(p) for p in run.list_evals()) if e]
        self.environment = _read_json(run.environment_path)
        data = _read_json(run.data_path)
        self.task = data.get("task") if isinstance(data, dict) else None

    @property
    def latest_eval(self) -> dict[str, Any] | None:
        return self.evals[-1] if self.evals else None

    def score(self, metric: str) -> Any:
        """``metric``'s final value: from the summary, else the latest evaluation,
        else the last record holding it; None when the run has none."""
        final = self.summary.get("final_metrics") or {}
        if metric in final:
            return final[metric]
        latest = self.latest_eval
        if latest and metric in (latest.get("metrics") or {}):
            return latest["metrics"][metric]
        for record in reversed(self.records):
            if metric in record:
                return record[metric]
        return None

    def metric_names(self) -> list[str]:
        names = dict.fromkeys((self.summary.get("final_metrics") or {}).keys())
        if self.latest_eval:
            names.update(dict.fromkeys((self.latest_eval.get("metrics") or {}).keys()))
        return [n for n in names if n != "confusion_matrix"]


def read_run_metrics(run: RunDir, status: str | None = None) -> list[dict[str, Any]]:
    """``run``'s ``metrics.jsonl`` records. A run still training may be caught
    mid-line: that line is left out quietly; other runs' torn lines are warned
    about (:class:`~mlx.errors.DataWarning`)."""
    if status is None:
        status = run.status()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = run.read_metrics()
    if status != "running":
        for record in caught:
            warnings.warn_explicit(
                record.message, record.category, record.filename, record.lineno
            )
    return records


def _read_json(path: Path) -> Any:
    try:
        return read_json_guarded(path, DOCUMENT_LIMIT, path.name, error=RunError)
    except (RunError, OSError, ValueError):
        return None


def _config_section(run: _Run) -> str:
    rows = [(k, _fmt(v)) for k, v in _flatten(run.config).items()]
    return (
        "<h3>Config</h3><details open><summary>config.yaml (resolved)</summary>"
        + _html_table(("field", "value"), rows, "config")
        + "</details>"
    )


def _metrics_section(run: _Run) -> str:
    if not run.records:
        return "<h3>Metrics</h3><p>No epoch finished yet.</p>"
    names = available_metrics(run.records)
    rows = [[r.get("epoch")] + [r.get(n) for n in names] for r in run.records]
    table = _html_table(["epoch", *names], rows, "metrics")
    curves = [n for n in names if n != "learning_rate"]
    figure = _svg(learning_curves({run.id: run.records}, curves)) if curves else ""
    return f"<h3>Metrics</h3>{figure}{table}"


def _evals_section(run: _Run) -> str:
    if not run.evals:
        return "<h3>Evaluations</h3><p>None yet (<code>mlx eval RUN</code>).</p>"
    parts = ["<h3>Evaluations</h3>"]
    for number, result in enumerate(reversed(run.evals)):
        metrics = {
            k: v
            for k, v in (result.get("metrics") or {}).items()
            if k != "confusion_matrix"
        }
        title = (
            f"{result.get('split')} split, {result.get('n_samples')} samples, "
            f"{result.get('created_at')}: "
            f"{weights_text(result, run.run, run.summary)}"
        )
        latest = " (latest)" if number == 0 else ""
        parts.append(f"<h4>{_e(title)}{_e(latest)}</h4>")
        klass = "eval latest" if number == 0 else "eval"
        parts.append(_html_table(("metric", "value"), list(metrics.items()), klass))
    return "".join(parts)


def _predictions_csv(path: Path) -> tuple[list[str], list[str], str] | None:
    """The ``y_true`` and ``y_pred`` columns of a ``predictions.csv`` and the
    SHA-256 of its bytes; None when the file is missing, not UTF-8 CSV or has no
    such single columns. Read through the guarded reader: a FIFO, a device or an
    oversized file in its place is a RunError naming it."""
    data = read_bytes_guarded(
        path, METRICS_LIMIT, "the saved predictions", missing_ok=True
    )
    if data is None:
        return None
    try:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error):
        return None
    if not rows or "y_true" not in rows[0] or "y_pred" not in rows[0]:
        return None
    digest = hashlib.sha256(data).hexdigest()
    return [r["y_true"] for r in rows], [r["y_pred"] for r in rows], digest


def _predictions_source(run: _Run, digest: str) -> dict[str, Any] | None:
    """The evaluation that wrote the ``predictions.csv`` of SHA-256 ``digest``:
    the one that recorded that digest, else (an evaluation recorded before digests
    were) the latest that wrote predictions without one; None when none did."""
    saved = [e for e in run.evals if e.get("predictions")]
    for record in reversed(saved):
        if record.get("predictions_sha256") == digest:
            return record
    if saved and "predictions_sha256" not in saved[-1]:
        return saved[-1]
    return None


def _class_key(label: str) -> tuple[int, float | str]:
    try:
        return (0, float(label))
    except ValueError:
        return (1, label)


def _confusion_counts(
    y_true: Sequence[object], y_pred: Sequence[object]
) -> tuple[list[str], list[list[int]]]:
    """Class labels (sorted, numbers numerically) and counts: ``counts[i][j]`` is the
    number of samples of class ``i`` predicted as class ``j``."""
    true = [_label(v) for v in y_true]
    pred = [_label(v) for v in y_pred]
    labels = sorted(set(true) | set(pred), key=_class_key)
    index = {label: i for i, label in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for t, p in zip(true, pred):
        counts[index[t]][index[p]] += 1
    return labels, counts


def _label(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    return text[:-2] if re.fullmatch(r"-?[0-9]+\.0", text) else text


def _confusion_section(run: _Run) -> str:
    if run.task != "classification":
        return ""
    read = _predictions_csv(run.run.predictions_path)
    if read is not None:
        y_true, y_pred, digest = read
        columns = (y_true, y_pred)
        source = _predictions_source(run, digest)
        if source is None:
            where = (
                "from predictions.csv, which no recorded evaluation wrote: the "
                "model behind it is unknown"
            )
        else:
            weights = weights_text(
                source, run.run, run.summary, again="--save-predictions"
            )
            split = source.get("split")
            where = f"from predictions.csv of the {split} split, {weights}"
    else:
        latest = run.latest_eval or {}
        split = str(latest.get("split") or "test")
        checkpoint = str(latest.get("checkpoint") or "final")
        try:
            _, y, predicted, _ = split_predictions(run.run, split, checkpoint)
        except MLXError as exc:
            return f"<h3>Confusion matrix</h3><p>Not available: {_e(exc.message)}</p>"
        columns = (list(y.reshape(-1).tolist()), list(predicted.reshape(-1).tolist()))
        state = checkpoint_state(run.run, checkpoint)
        where = f"computed on the {split} split, checkpoint {checkpoint}, " + (
            f"the model of epoch {state['epoch']}"
            if state is not None
            else "the model's epoch was not recorded"
        )
    labels, counts = _confusion_counts(*columns)
    largest = max((max(row) for row in counts), default=0) or 1
    head = "".join(f"<th>{_e(label)}</th>" for label in labels)
    body = ""
    for label, row in zip(labels, counts):
        cells = "".join(
            _cell(
                n,
                attrs=f' style="background: rgba(31, 119, 180, {n / largest:.3f})'
                + (';color: #fff"' if n / largest > 0.5 else '"'),
            )
            for n in row
        )
        body += f"<tr><th>{_e(label)}</th>{cells}</tr>"
    return (
        f"<h3>Confusion matrix</h3><p>Rows: true class; columns: predicted class "
        f"({_e(where)}).</p>"
        f'<table class="confusion"><thead><tr><th>true \\ predicted</th>{head}'
        f"</tr></thead><tbody>{body}</tbody></table>"
    )


def _environment_section(run: _Run) -> str:
    if not isinstance(run.environment, dict):
        return "<h3>Environment</h3><p>No environment.json.</p>"
    rows = [(k, _fmt(v)) for k, v in _flatten(run.environment).items()]
    return (
        "<h3>Environment</h3><details><summary>environment.json</summary>"
        + _html_table(("field", "value"), rows, "environment")
        + "</details>"
    )


def _run_section(run: _Run) -> str:
    s = run.summary
    facts = [
        ("status", run.status),
        ("epochs completed", s.get("epochs_completed")),
        ("started", s.get("started_at")),
        ("finished", s.get("finished_at")),
        ("directory", str(run.run.path)),
    ]
    if s.get("error"):
        facts.append(("error", s.get("error")))
    best = s.get("best_metric")
    if isinstance(best, dict):
        facts.append(
            (
                "best",
                f"{best.get('name')} {_fmt(best.get('value'))} "
                f"(epoch {best.get('epoch')})",
            )
        )
    parts = [
        f'<section class="run" id="run-{_e(run.id)}" '
        f'data-run-id="{_e(run.run.run_id)}">',
        f"<h2>{_e(run.id)}</h2>",
        _html_table(None, facts, "facts"),
        _config_section(run),
        _metrics_section(run),
        _evals_section(run),
        _confusion_section(run),
        _environment_section(run),
        "</section>",
    ]
    return "".join(parts)


# -- several runs ----------------------------------------------------------------------


def _choose_metric(runs: Sequence[_Run], metric: str | None) -> str:
    available: dict[str, None] = {}
    for run in runs:
        available.update(dict.fromkeys(run.metric_names()))
    if metric is None:
        if "val_loss" in available:
            return "val_loss"
        best = runs[0].summary.get("best_metric")
        if isinstance(best, dict) and isinstance(best.get("name"), str):
            return str(best["name"])
        return next(iter(available), "train_loss")
    if metric not in available:
        names = ", ".join(available) or "none"
        raise RunError(f"unknown metric {metric!r}: the runs record {names}")
    return metric


def _varied_parameters(runs: Sequence[_Run]) -> dict[str, list[Any]]:
    """Config fields (dotted paths) whose values differ between the runs, each with
    its value per run (None where a run lacks it); names and output settings are
    left out."""
    flat = [_flatten(r.config) for r in runs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    varied: dict[str, list[Any]] = {}
    for key in keys:
        if key in _NOT_PARAMETERS[:2] or key.startswith(_NOT_PARAMETERS[2]):
            continue
        values = [f.get(key) for f in flat]
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1:
            varied[key] = values
    return varied


def _comparison_section(runs: Sequence[_Run], metric: str) -> str:
    varied = _varied_parameters(runs)
    names = list(dict.fromkeys(n for r in runs for n in r.metric_names()))
    header = ["run", "status", "epochs", *varied, *names, "latest evaluation"]
    rows = [
        [r.id, r.status, r.summary.get("epochs_completed")]
        + [values[i] for values in varied.values()]
        + [r.score(n) for n in names]
        + [weights_brief(r.latest_eval, r.summary) if r.latest_eval else None]
        for i, r in enumerate(runs)
    ]
    rows = [
        [_fmt(v) if isinstance(v, (list, dict)) else v for v in row] for row in rows
    ]
    parts = [
        '<section id="comparison"><h2>Comparison</h2>',
        f"<p>Chosen metric: <code>{_e(metric)}</code> (final value; the latest "
        "evaluation's for evaluation metrics, of the split, checkpoint and epoch "
        "that its column names).</p>",
        _html_table(header, rows, "comparison"),
    ]
    if not varied:
        parts.append("<p>The runs' configs do not differ.</p>")
    scores = [r.score(metric) for r in runs]
    for parameter, values in varied.items():
        shown = [_fmt(v) if isinstance(v, (list, dict)) else v for v in values]
        parts.append(f"<h3>{_e(parameter)} against {_e(metric)}</h3>")
        parts.append(_svg(parameter_figure(parameter, shown, metric, scores)))
    parts.append("</section>")
    return "".join(parts)


def _cv_section(sweep: Mapping[str, Any]) -> str:
    """The groups of a cross-validation sweep, from its ``mlx sweep show --json``
    object: parameters, folds completed of all, mean, std and the runs."""
    groups = sweep.get("cv") or []
    run_ids = {p.get("hash"): p.get("run_id") for p in sweep.get("points") or []}
    best = sweep.get("best") or {}
    paths = list(dict.fromkeys(k for g in groups for k in g["parameters"]))
    varied = [
        k
        for k in paths
        if len({json.dumps(g["parameters"].get(k), sort_keys=True) for g in groups}) > 1
    ] or paths
    metric = sweep.get("metric")
    header = ["best", *varied, "folds", f"mean {metric}", f"std {metric}", "runs"]
    rows = [
        ["*" if g["points"] == best.get("points") else ""]
        + [_fmt(g["parameters"].get(k)) for k in varied]
        + [f"{g['folds']}/{len(g['points'])}", g["mean"], g["std"]]
        + [", ".join(str(run_ids.get(h) or "\u2014") for h in g["points"])]
        for g in groups
    ]
    return (
        f'<section class="cross-validation" data-sweep="{_e(sweep.get("name"))}">'
        f"<h2>Cross-validation: sweep {_e(sweep.get('name'))}</h2>"
        f"<p>The points that differ only in <code>dataset.params.fold</code> form a "
        f"group: the mean and standard deviation (ddof 0) of the final "
        f"<code>{_e(metric)}</code> over its completed folds. The best "
        f"({_e(sweep.get('goal'))} mean) is chosen among the groups whose every fold "
        "completed.</p>" + _html_table(header, rows, "cv") + "</section>"
    )


_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px;
  padding: 0 1em; color: #1b1b1b; background: #fff; }
h1 { font-size: 1.6em; } h2 { border-bottom: 2px solid #1f77b4; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border: 1px solid #ccc; padding: .15em .5em; text-align: left;
  vertical-align: top; }
th { background: #eef3f8; } td.num { text-align: right;
  font-variant-numeric: tabular-nums; }
table.config td, table.environment td { font-family: monospace; }
table.confusion td { min-width: 3em; text-align: center; }
.figure svg { max-width: 100%; height: auto; }
section.run { margin-bottom: 3em; }
"""

# forbids every network fetch and every script: the page is what the file holds
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def build_report(
    runs: Sequence[RunDir],
    metric: str | None = None,
    sweeps: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The report on ``runs`` (RunDir objects) as one HTML document; ``sweeps``
    are the ``mlx sweep show --json`` objects of the sweeps they come from, whose
    cross-validation groups it shows."""
    if not runs:
        raise RunError("no runs to report on")
    load_matplotlib()  # the one clear error when matplotlib is missing, before reading
    read = [_Run(run, label) for label, run in labelled_runs(runs)]
    chosen = _choose_metric(read, metric)
    title = "Report: " + ", ".join(r.id for r in read)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p>Made by mlx {_e(__version__)} from {len(read)} run"
        f"{'' if len(read) == 1 else 's'}.</p>",
    ]
    parts += [_cv_section(sweep) for sweep in sweeps if sweep.get("cv")]
    if len(read) > 1:
        parts.append(_comparison_section(read, chosen))
    parts += [_run_section(r) for r in read]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(
    runs: Sequence[RunDir],
    path: str | Path,
    metric: str | None = None,
    sweeps: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write :func:`build_report` to ``path`` atomically; returns the path."""
    return write_text_atomic(path, build_report(runs, metric, sweeps))
