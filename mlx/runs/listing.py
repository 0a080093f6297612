"""Finding, listing and showing runs (``mlx runs``, ``mlx runs show RUN``).

Runs are looked for under an outputs root (default ``<repository root>/outputs``) at
depth 1 (``outputs/<run_id>``) and depth 2 (``outputs/<experiment dir>/<run_id>``);
without an explicit root, the runs recorded in the run index (``<repository
root>/.mlx/runs.jsonl``, see :mod:`mlx.runs.index`) are found too, wherever their
``output.directory`` put them. Reading never blocks a running writer: a run's lock is
only tested (see :mod:`mlx.runs.lock`), never waited for.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import re
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence, Union

from mlx.errors import DataWarning, RunError
from mlx.runs.ids import parse_run_id, utc_now
from mlx.runs.index import index_path, indexed_runs
from mlx.runs.lock import lock_state
from mlx.runs.store import EVALS_DIR, SUMMARY_FILE, RunDir, open_run
from mlx.runs.summary import effective_status, parse_timestamp, summary_problems
from mlx.utils.paths import UNSAFE_CHARACTERS, repository_root
from mlx.utils.safe_io import METRICS_LIMIT, read_bytes_guarded
from mlx.utils.values import close_matches, table

__all__ = [
    "RunInfo",
    "default_runs_root",
    "find_run",
    "format_run",
    "format_runs_table",
    "iter_run_dirs",
    "duration_seconds",
    "format_duration",
    "format_value",
    "list_runs",
    "run_details",
    "run_record",
    "safe_text",
    "sound_fields",
]

PathLike = Union[str, "os.PathLike[str]"]

# Which final metric stands for a run in a listing, when no best_metric is recorded.
_KEY_METRICS = ("accuracy", "f1_score", "r2", "rmse", "mse", "mae", "log_loss", "loss")
_MAX_LISTED = 10
_EPOCH_UTC = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
# control characters (and DEL) in a summary's text would move a terminal's cursor
_MAX_TEXT = 200


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """One line of ``mlx runs``.

    ``status`` is the effective status (``lost`` included); ``metric_name`` and
    ``metric_value`` are the run's best metric, else its main final metric, else None;
    ``metric_kind`` says which: ``"best"`` or ``"final"`` (None without a metric).
    ``started_at``/``finished_at`` are aware UTC datetimes (None if unknown).
    """

    run_id: str
    name: str
    status: str
    epochs_completed: int | None
    metric_name: str | None
    metric_value: float | None
    started_at: _dt.datetime | None
    finished_at: _dt.datetime | None
    path: Path
    #: the summary's final metrics ({} when none are recorded)
    final_metrics: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: which value ``metric_value`` is: "best", "final", or None without one
    metric_kind: str | None = None

    @classmethod
    def from_summary(
        cls,
        path: Path,
        summary: Mapping[str, Any],
        now: _dt.datetime | None = None,
        *,
        lock: str | None = None,
    ) -> RunInfo:
        """The listing line of the run at ``path``. Any mapping is accepted: a field
        of the wrong type or range (see :func:`mlx.runs.summary.summary_problems`)
        counts as missing, and a status that is none of the known ones as
        ``unknown``. ``lock``: the state of the run's lock (see
        :func:`effective_status`)."""
        summary = sound_fields(summary)
        metric_kind, metric_name, metric_value = _key_metric(summary)
        epochs = summary.get("epochs_completed")
        started = parse_timestamp(summary.get("started_at"))
        if started is None:
            parsed = parse_run_id(path.name)
            started = parsed.started if parsed else None
        return cls(
            # the directory's name, which every command takes: a copied run keeps
            # the ID of the one it was copied from in its summary
            run_id=safe_text(path.name),
            name=safe_text(summary.get("name")) or path.name,
            status=effective_status(summary, now, lock=lock),
            epochs_completed=epochs if type(epochs) is int else None,
            metric_name=metric_name,
            metric_value=metric_value,
            started_at=started,
            finished_at=parse_timestamp(summary.get("finished_at")),
            path=path,
            final_metrics=dict(summary.get("final_metrics") or {}),
            metric_kind=metric_kind,
        )


def sound_fields(summary: Mapping[str, Any]) -> dict[str, Any]:
    """``summary`` without the fields :func:`summary_problems` objects to."""
    if not isinstance(summary, Mapping):
        return {"status": "unknown"}
    sound = {str(k): v for k, v in summary.items()}
    for key, _problem in summary_problems(sound):
        sound.pop(key, None)
    sound.setdefault("status", "unknown")
    return sound


def safe_text(value: Any, keep_newlines: bool = False) -> str:
    """``value`` as one safe line of text ('' for None): long text is cut, and
    each character a terminal would act on or hide
    (:data:`mlx.utils.paths.UNSAFE_CHARACTERS`: a control, a bidirectional
    override, a zero-width joiner) becomes '?', in text and JSON alike, so the
    listing's columns stay aligned and an ID shown is one a shell can pass back."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > _MAX_TEXT:
        text = text[: _MAX_TEXT - 3] + "..."
    if keep_newlines:
        return "\n".join(UNSAFE_CHARACTERS.sub("?", line) for line in text.split("\n"))
    return UNSAFE_CHARACTERS.sub("?", text)


def _as_float(value: Any) -> float | None:
    """``value`` as a float; None when it is no number or an integer beyond any
    float (which a listing shows as unknown rather than infinite)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer beyond any float
        return None


def _key_metric(
    summary: Mapping[str, Any],
) -> tuple[str | None, str | None, float | None]:
    """``(kind, name, value)`` of the metric that stands for a run: its best metric
    (kind ``"best"``), else its main final metric (``"final"``), else Nones."""
    best = summary.get("best_metric")
    if isinstance(best, Mapping) and _as_float(best.get("value")) is not None:
        name = safe_text(best.get("name")) or "metric"
        return "best", name, _as_float(best.get("value"))
    final = summary.get("final_metrics")
    if isinstance(final, Mapping):
        for name in _KEY_METRICS:
            for key in (name, f"val_{name}", f"test_{name}"):
                if _as_float(final.get(key)) is not None:
                    return "final", key, _as_float(final[key])
        for key, value in final.items():
            if _as_float(value) is not None:
                return "final", safe_text(key), _as_float(value)
    return None, None, None


def default_runs_root() -> Path:
    """``<repository root>/outputs``, where runs are looked for by default."""
    return repository_root() / "outputs"


def _looks_like_run(path: Path) -> bool:
    return (path / SUMMARY_FILE).is_file() or parse_run_id(path.name) is not None


def _subdirs(path: Path) -> list[Path]:
    try:
        entries = list(os.scandir(path))
    except OSError:
        return []
    return sorted(
        Path(e.path) for e in entries if not e.name.startswith(".") and e.is_dir()
    )


def iter_run_dirs(root: PathLike | None = None) -> Iterator[Path]:
    """Directories under ``root`` (depth 1 and 2) that are, or claim to be, runs:
    they hold a ``summary.json`` or are named like a run ID. Without ``root``: those
    under ``<repository root>/outputs``, then the indexed runs found nowhere else."""
    base = Path(root) if root is not None else default_runs_root()
    seen = set()
    for path in _search(base):
        seen.add(_key(path))
        yield path
    if root is None:
        for path in indexed_runs():
            if _key(path) not in seen:
                seen.add(_key(path))
                yield path


def _key(path: Path) -> str:
    return os.path.normcase(os.path.realpath(path))


def _search(base: Path) -> Iterator[Path]:
    for child in _subdirs(base):
        if _looks_like_run(child):
            yield child
            continue
        for grandchild in _subdirs(child):
            if _looks_like_run(grandchild):
                yield grandchild


def _id_time(path: Path) -> _dt.datetime:
    parsed = parse_run_id(path.name)
    return parsed.started if parsed else _EPOCH_UTC


def list_runs(
    root: PathLike | None = None, *, now: _dt.datetime | None = None
) -> list[RunInfo]:
    """Every run under ``root`` (default ``<repository root>/outputs``), newest first.

    A run whose summary is missing, unreadable (a directory, a FIFO, too large, not
    UTF-8 JSON) or corrupt (a field of the wrong type or range) is skipped with a
    :class:`~mlx.errors.DataWarning` naming it, and the listing goes on; a missing
    ``root`` gives an empty list.
    """
    moment = now if now is not None else utc_now()
    infos = []
    for path in iter_run_dirs(root):
        try:
            summary = RunDir(path).read_summary()
        except RunError as exc:
            warnings.warn(
                f"Skipped a run: {safe_text(str(exc))}", DataWarning, stacklevel=2
            )
            continue
        infos.append(RunInfo.from_summary(path, summary, moment, lock=lock_state(path)))
    infos.sort(key=lambda i: (i.started_at or _EPOCH_UTC, i.run_id), reverse=True)
    return infos


def _listing(paths: Sequence[Path]) -> str:
    ordered = sorted(paths, key=lambda p: (_id_time(p), p.name), reverse=True)
    lines = [f"  {p.name}  ({os.fspath(p)})" for p in ordered[:_MAX_LISTED]]
    if len(ordered) > _MAX_LISTED:
        lines.append(f"  ... and {len(ordered) - _MAX_LISTED} more")
    return "\n".join(lines)


def find_run(ref: PathLike, root: PathLike | None = None) -> RunDir:
    """The run that ``ref`` names: a run directory path, or a run ID (or a unique
    prefix of one, such as ``mnist-20240501``) searched under ``root`` (default
    ``<repository root>/outputs``, depth 2, and the run index).

    Raises RunError when nothing matches (listing near matches) or when several runs
    match (listing them, newest first).
    """
    text = os.fspath(ref)
    candidate = Path(text).expanduser()
    base = Path(root) if root is not None else default_runs_root()
    is_pathlike = os.sep in text or "/" in text or text in (".", "..")
    if candidate.is_dir() and (is_pathlike or (candidate / SUMMARY_FILE).is_file()):
        return open_run(candidate)
    if is_pathlike:
        raise RunError(f"No run directory at {text!r}.")
    if not text:
        raise RunError("The run to open must be a run ID or a path; got ''.")
    runs = list(iter_run_dirs(root))
    exact = [p for p in runs if p.name == text]
    matches = exact or [p for p in runs if p.name.startswith(text)]
    if len(matches) == 1:
        return open_run(matches[0])
    if len(matches) > 1:
        raise RunError(
            f"{text!r} matches {len(matches)} runs under {os.fspath(base)!r}:\n"
            + _listing(matches),
            hint="give the full run ID or the run directory path",
        )
    ids = sorted({p.name for p in runs})
    near = close_matches(text, ids, n=5, cutoff=0.5)
    near += [i for i in ids if text in i and i not in near][: 5 - len(near)]
    message = f"No run {text!r} under {os.fspath(base)!r}"
    if not base.is_dir():
        message += " (the directory does not exist)"
    if root is None:
        message += f" nor in the run index {os.fspath(index_path())!r}"
    if near:
        message += "; did you mean:\n" + "\n".join(f"  {n}" for n in near)
    else:
        message += "."
    raise RunError(message, hint="`mlx runs` lists the runs")


# -- formatting --------------------------------------------------------------------


def _fmt_time(moment: _dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment is not None else "-"


def format_value(value: Any) -> str:
    """A summary value as a listing shows it: floats to 6 significant digits, text
    made safe (:func:`safe_text`)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int) and abs(value) >= 10**18:
        number = _as_float(value)
        return "(huge)" if number is None else f"{number:.6g}"
    return safe_text(value)


def format_duration(seconds: float) -> str:
    """``1h 02m 03s``, ``2m 03s`` or ``3s``."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def format_runs_table(runs: Sequence[RunInfo]) -> str:
    """Plain-text table of ``runs`` (no colours), one run per line, columns aligned:
    RUN ID, STATUS, EPOCHS, the metric, STARTED (UTC).

    The metric column's header says which value it holds: ``BEST METRIC`` (each
    run's best metric, as ``mlx runs show`` gives it) or ``FINAL METRIC`` (the last
    epoch's, for runs that recorded no best); when the runs listed differ, it is
    ``BEST/FINAL METRIC`` and each value says its own.
    """
    if not runs:
        return "No runs found."
    kinds = sorted({info.metric_kind for info in runs if info.metric_kind})
    mixed = len(kinds) > 1
    # one kind: "BEST METRIC" or "FINAL METRIC"; none (no run has a metric): "METRIC"
    header = "BEST/FINAL METRIC" if mixed else " ".join([*kinds, "metric"]).upper()
    rows = []
    for info in runs:
        metric = "-"
        if info.metric_name is not None and info.metric_value is not None:
            metric = f"{info.metric_name}={format_value(info.metric_value)}"
            if mixed:
                metric += f" ({info.metric_kind})"
        rows.append(
            [
                info.run_id,
                info.status,
                "-" if info.epochs_completed is None else str(info.epochs_completed),
                metric,
                _fmt_time(info.started_at),
            ]
        )
    return table(["RUN ID", "STATUS", "EPOCHS", header, "STARTED (UTC)"], rows)


def _count_records(run: RunDir) -> int:
    raw = read_bytes_guarded(
        run.metrics_path, METRICS_LIMIT, "the metrics log", missing_ok=True
    )
    return sum(1 for line in (raw or b"").split(b"\n") if line.strip())


def _checkpoint_names(run: RunDir) -> str:
    """The run's checkpoints in epoch order (``3 (epoch-2, epoch-9, epoch-10)``)."""
    names = [_short_name(path.name) for _epoch, path in run.list_checkpoints()]
    if not names:
        return "none"
    shown = names if len(names) <= 8 else [*names[:3], "...", *names[-3:]]
    return f"{len(names)} ({', '.join(shown)})"


def _short_name(name: str) -> str:
    # epoch-0010 -> epoch-10, epoch-0003-step-00000120 -> epoch-3-step-120
    return re.sub(r"-0*(\d)", r"-\1", name)


def format_run(run: RunDir | PathLike, *, now: _dt.datetime | None = None) -> str:
    """Plain-text description of one run for ``mlx runs show RUN``."""
    run = run if isinstance(run, RunDir) else open_run(run)
    summary = sound_fields(run.read_summary())
    moment = now if now is not None else utc_now()
    lock = lock_state(run.path)
    info = RunInfo.from_summary(run.path, summary, moment, lock=lock)
    pid, host = safe_text(summary.get("pid")), safe_text(summary.get("host"))
    process = f"pid {pid or '?'} on {host or '?'}"
    if info.status == "running" and lock == "held":
        process += " (holds the run lock)"
    fields: list[tuple[str, str]] = [
        ("Run", info.run_id),
        ("Name", info.name),
        ("Status", info.status),
        ("Path", os.fspath(run.path)),
        ("Process", process),
        ("Started", _fmt_time(info.started_at) + " UTC" if info.started_at else "-"),
    ]
    if info.finished_at is not None:
        fields.append(("Finished", _fmt_time(info.finished_at) + " UTC"))
    duration = _duration(summary, info, moment)
    if duration is not None:
        fields.append(("Duration", duration))
    if info.status in ("running", "lost"):
        fields.append(("Heartbeat", safe_text(summary.get("heartbeat_at")) or "-"))
    fields.append(
        ("Epochs", "-" if info.epochs_completed is None else str(info.epochs_completed))
    )
    best = summary.get("best_metric")
    if isinstance(best, Mapping) and "value" in best:
        name = safe_text(best.get("name")) or "metric"
        text = f"{name} = {format_value(best.get('value'))}"
        if best.get("epoch") is not None:
            text += f" (epoch {best['epoch']})"
        fields.append(("Best metric", text))
    if summary.get("error"):
        fields.append(("Error", safe_text(summary["error"], keep_newlines=True)))
    checkpoint = run.latest_checkpoint()
    fields.append(
        (
            "Checkpoint",
            os.fspath(checkpoint.relative_to(run.path)) if checkpoint else "none",
        )
    )
    fields.append(("Checkpoints", _checkpoint_names(run)))
    fields.append(("Model", "model/" if run.model_dir.is_dir() else "not saved"))
    facts = summary.get("model")
    if isinstance(facts, Mapping):
        # None is what a model did not tell (a custom model need not count them)
        count = facts.get("parameters")
        known = type(count) is int
        fields.append(("Parameters", f"{count:,}" if known else "unknown"))
    evals = run.list_evals()
    fields.append(
        (
            "Evaluations",
            f"{len(evals)} (latest {EVALS_DIR}/{evals[-1].name})" if evals else "0",
        )
    )
    fields.append(("Metrics log", f"{_count_records(run)} records"))
    width = max(len(k) for k, _ in fields) + 2
    lines = [f"{(k + ':').ljust(width)}{v}" for k, v in fields]
    for title, key in (("Final metrics", "final_metrics"), ("Timings", "timings")):
        section = summary.get(key)
        if isinstance(section, Mapping):
            section = {k: v for k, v in section.items() if k != "segments"}
        if isinstance(section, Mapping) and section:
            lines.append(f"{title}:")
            inner = max(len(safe_text(k)) for k in section) + 2
            lines.extend(
                f"  {safe_text(k).ljust(inner)}{format_value(v)}"
                for k, v in section.items()
            )
    segments = _segments(summary)
    if len(segments) > 1:
        lines.append("Segments:")
        for number, segment in enumerate(segments, 1):
            lines.append(f"  {number}. {_fmt_segment(segment)}")
    return "\n".join(lines)


def _segments(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    timings = summary.get("timings")
    recorded = timings.get("segments") if isinstance(timings, Mapping) else None
    if not isinstance(recorded, list):
        return []
    return [s for s in recorded if isinstance(s, Mapping)]


def _fmt_segment(segment: Mapping[str, Any]) -> str:
    parts = [str(segment.get("status", "?"))]
    epochs = segment.get("epochs")
    if isinstance(epochs, list) and len(epochs) == 2:
        parts.append(f"epochs {epochs[0]} -> {epochs[1]}")
    seconds = _as_float(segment.get("total_seconds"))
    if seconds is not None:
        parts.append(format_duration(seconds))
    started = parse_timestamp(segment.get("started_at"))
    if started is not None:
        parts.append(f"from {_fmt_time(started)} UTC")
    return ", ".join(parts)


def _current_segment_start(summary: Mapping[str, Any]) -> _dt.datetime | None:
    resumed = summary.get("resumed_at")
    if isinstance(resumed, list) and resumed:
        return parse_timestamp(resumed[-1])
    return parse_timestamp(summary.get("started_at"))


def duration_seconds(
    summary: Mapping[str, Any], info: RunInfo, now: _dt.datetime
) -> tuple[float, int] | None:
    """The time the run's processes worked on it, in seconds, and over how many
    segments: the recorded segments, plus the one going on (up to now) or lost (up
    to its last heartbeat). Pauses between segments are not counted."""
    segments = _segments(summary)
    if info.status in ("running", "lost"):
        begin = _current_segment_start(summary)
        if begin is None:
            return None
        end = now
        if info.status == "lost":
            beats = [parse_timestamp(summary.get(k)) for k in ("heartbeat_at",)]
            beats.append(parse_timestamp(summary.get("updated_at")))
            end = max((b for b in beats if b is not None), default=begin)
        previous = sum(_as_float(s.get("total_seconds")) or 0.0 for s in segments)
        return previous + max((end - begin).total_seconds(), 0.0), len(segments) + 1
    if segments:
        seconds = sum(_as_float(s.get("total_seconds")) or 0.0 for s in segments)
        return seconds, len(segments)
    if info.started_at is not None:
        # a run recorded before segments were: first start to last finish
        return ((info.finished_at or now) - info.started_at).total_seconds(), 1
    return None


def _duration(
    summary: Mapping[str, Any], info: RunInfo, now: _dt.datetime
) -> str | None:
    """:func:`duration_seconds` as text."""
    found = duration_seconds(summary, info, now)
    if found is None:
        return None
    seconds, count = found
    text = format_duration(seconds)
    if info.status == "lost":
        text += " (until its last heartbeat)"
    if count > 1:
        text += f" over {count} segments"
    return text


# -- as data (``--json``) -----------------------------------------------------------


def _iso(moment: _dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def run_record(info: RunInfo) -> dict[str, Any]:
    """One run of ``mlx runs --json``: the table's columns as data."""
    return {
        "run_id": info.run_id,
        "name": info.name,
        "status": info.status,
        "directory": os.fspath(info.path),
        "epochs_completed": info.epochs_completed,
        "metric": None
        if info.metric_name is None or info.metric_value is None
        else {
            "name": info.metric_name,
            "value": info.metric_value,
            "kind": info.metric_kind,
        },
        "final_metrics": dict(info.final_metrics),
        "started_at": _iso(info.started_at),
        "finished_at": _iso(info.finished_at),
    }


def run_details(
    run: RunDir | PathLike, *, now: _dt.datetime | None = None
) -> dict[str, Any]:
    """``mlx runs show RUN --json``: what :func:`format_run` shows, as data."""
    run = run if isinstance(run, RunDir) else open_run(run)
    summary = sound_fields(run.read_summary())
    moment = now if now is not None else utc_now()
    lock = lock_state(run.path)
    info = RunInfo.from_summary(run.path, summary, moment, lock=lock)
    duration = duration_seconds(summary, info, moment)
    best = summary.get("best_metric")
    facts = summary.get("model")
    count = facts.get("parameters") if isinstance(facts, Mapping) else None
    checkpoint = run.latest_checkpoint()
    evals = run.list_evals()
    timings = summary.get("timings")
    return {
        **run_record(info),
        "pid": summary.get("pid"),
        "host": summary.get("host"),
        "holds_lock": info.status == "running" and lock == "held",
        "heartbeat_at": summary.get("heartbeat_at"),
        "duration_seconds": None if duration is None else duration[0],
        "best_metric": dict(best) if isinstance(best, Mapping) else None,
        "error": summary.get("error"),
        "checkpoint": os.fspath(checkpoint.relative_to(run.path))
        if checkpoint
        else None,
        "checkpoints": [path.name for _epoch, path in run.list_checkpoints()],
        "model_saved": run.model_dir.is_dir(),
        "parameters": count if type(count) is int else None,
        "evaluations": [f"{EVALS_DIR}/{path.name}" for path in evals],
        "metrics_records": _count_records(run),
        "timings": {k: v for k, v in timings.items() if k != "segments"}
        if isinstance(timings, Mapping)
        else {},
        "segments": [dict(s) for s in _segments(summary)],
    }
