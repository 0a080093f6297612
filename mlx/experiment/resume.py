"""Resume a run from its newest checkpoint, as if it had never stopped.

:func:`resume_run` reads as its steps:

1. prepare (:func:`prepare_resume`): own the run (take its lock), read its config
   with the overrides, its newest checkpoint and that checkpoint's trainer state,
   and refuse, changing nothing, what cannot be resumed: another process owns the
   run, the config changed beyond the fields that may change
   (:data:`RESUMABLE_FIELDS`), ``training.epochs`` is below the epochs done, the
   checkpoint is damaged or was written for another config, or a file the run
   would write later resolves outside it;
2. check: rebuild the data as the run recorded it and compare it with its
   ``data.json``;
3. load the checkpoint: the model's weights and optimizer state;
4. continue: only now does the run change (``metrics.jsonl`` trimmed to the
   checkpoint's epoch, ``config.yaml`` rewritten), and the loop goes on from the
   checkpoint's epoch and batch.

Resume is exact: an epoch's batch order derives from ``(training.seed, epoch)``
alone and the trainer state carries the unfinished epoch's running loss, so an
interrupted and resumed run ends byte-identical to an uninterrupted one. A run that
already completed the epochs asked for is left byte for byte as it is.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from mlx.config import ExperimentConfig
from mlx.config.loader import issue_warnings
from mlx.errors import CheckpointError, DataWarning, MLXError, RunError
from mlx.experiment.build import build, decide_backend
from mlx.experiment.checks import check_runnable
from mlx.experiment.console import Console
from mlx.experiment.lifecycle import Timing
from mlx.experiment.loop import TrainerState
from mlx.experiment.segment import Run, train_segment
from mlx.models import BaseModel
from mlx.runs import find_run
from mlx.runs.index import record_run
from mlx.runs.records import check_data_record, stored_config
from mlx.runs.store import TRAINER_STATE_FILE, RunDir
from mlx.runs.summary import parse_timestamp
from mlx.utils.atomic import os_error_text
from mlx.utils.safe_io import DOCUMENT_LIMIT, read_json_guarded

__all__ = [
    "RESUMABLE_FIELDS",
    "Resume",
    "config_fingerprint",
    "prepare_resume",
    "previous_segments",
    "resume_run",
]

#: Fields that may change when a run is resumed: they do not change what was
#: computed.
RESUMABLE_FIELDS = (
    "name",
    "description",
    "training.epochs",
    "training.early_stopping.patience",
    "output.save_checkpoints",
    "output.checkpoint_frequency",
    "output.save_logs",
    "output.params",
)


@dataclasses.dataclass
class Resume:
    """A run about to be resumed: owned (its lock held) and checked, not yet changed."""

    run: RunDir
    config: ExperimentConfig
    checkpoint: Path
    state: TrainerState
    summary: dict[str, Any]  # summary.json as it was before the takeover
    complete: bool = False  # completed, with no epoch left to train: nothing to do


def resume_run(ref: str | Path, overrides: Sequence[str], *, quiet: bool) -> Run:
    """Continue the run ``ref`` (a run ID or directory) from its newest checkpoint
    to its ``training.epochs`` (which ``overrides`` may raise); see the module."""
    prepared = prepare_resume(ref, overrides)  # owned and checked, not changed
    run, config = prepared.run, prepared.config
    try:
        if prepared.complete:
            return _already_complete(prepared, quiet=quiet)
        timing = Timing(previous_segments(prepared.summary))
        built = build(config, decide_backend(config), run)
        check_data_record(run, built.splits)  # the data it was trained with
        _load_checkpoint(built.model, prepared)
        _continue(prepared)  # only now does the run change
        return train_segment(
            config,
            run,
            built,
            prepared.state,
            timing,
            checkpoint=prepared.checkpoint,
            quiet=quiet,
        )
    finally:
        run.release()


def prepare_resume(ref: str | Path, overrides: Sequence[str]) -> Resume:
    """Own the run to continue and check all it is resumed from, changing nothing:
    its config (with overrides), epochs, newest checkpoint and trainer state. The
    caller releases ``run`` when done."""
    run = find_run(str(ref))
    # ownership first: a live run is refused before anything is read or changed
    run.acquire()
    try:
        return _checked(run, overrides)
    except BaseException:
        run.release()
        raise


def _checked(run: RunDir, overrides: Sequence[str]) -> Resume:
    """The :class:`Resume` of the owned ``run``, or the error that refuses it."""
    summary = run.read_summary()
    stored = stored_config(run, runnable=check_runnable)
    config = stored_config(run, overrides, runnable=check_runnable)
    # only what the overrides brought is news; the rest was shown at the start
    issue_warnings([w for w in config.warnings if w not in stored.warnings])
    _check_unchanged(run, stored, config)
    checkpoint = run.latest_checkpoint()
    if checkpoint is None:
        raise RunError(
            f"cannot resume {run.run_id}: it has no checkpoint "
            f"(looked in {run.checkpoints_dir})",
            hint=_no_checkpoint_hint(run, stored, summary),
        )
    state = _read_trainer_state(checkpoint, run.run_id)
    _check_fingerprint(run, checkpoint, state, config)
    done = _epochs_done(run, summary, state)
    _check_epochs(run, config, done)
    if (
        summary.get("status") == "completed"
        and state.batch == 0
        and state.epoch == done
        and (state.epoch == config.training.epochs or state.stopped_epoch is not None)
        and run.model_dir.is_dir()
    ):
        # nothing to train: the run stays byte for byte as it is
        return Resume(run, config, checkpoint, state, summary, complete=True)
    if state.batch > 0 and config.training.epochs <= state.epoch:
        # taken inside the epoch after the last one to train: finishing from it
        # would publish weights past the epoch the metrics describe
        checkpoint, state = _boundary_checkpoint(run, config, checkpoint, state)
    # a write the run would refuse later is refused before anything changes
    run.check_resume_writes(log=config.output.save_logs)
    return Resume(run, config, checkpoint, state, summary)


def _check_unchanged(
    run: RunDir, stored: ExperimentConfig, config: ExperimentConfig
) -> None:
    """RunError when ``config`` changes a field that decides what was computed."""
    changed = _changed_fields(stored.to_dict(), config.to_dict())
    if changed:
        raise RunError(
            f"cannot resume {run.run_id}: the configuration changed:\n  "
            + "\n  ".join(changed),
            hint="only training.epochs, training.early_stopping.patience and "
            "output options may change on resume; "
            "start a new run for anything else",
        )


def _check_fingerprint(
    run: RunDir, checkpoint: Path, state: TrainerState, config: ExperimentConfig
) -> None:
    """CheckpointError when ``checkpoint`` was written for another config."""
    fingerprint = config_fingerprint(config)
    if state.config_fingerprint != fingerprint:
        raise CheckpointError(
            f"cannot resume {run.run_id}: checkpoint {checkpoint.name} was written "
            "for another configuration (its config fingerprint "
            f"{state.config_fingerprint} differs from the run's {fingerprint})",
            hint="the checkpoint does not belong to this run's config.yaml",
        )


def _check_epochs(run: RunDir, config: ExperimentConfig, done: int) -> None:
    """RunError when ``training.epochs`` is below the ``done`` epochs."""
    if config.training.epochs < done:
        raise RunError(
            f"cannot resume {run.run_id}: training.epochs "
            f"{config.training.epochs} is below the {done} epochs it has "
            "already completed",
            hint="training.epochs may stay or grow on resume; for an earlier "
            f"state evaluate a checkpoint (mlx eval {run.run_id} --checkpoint "
            "epoch-N) or start a new run",
        )


def _load_checkpoint(model: BaseModel, resume: Resume) -> None:
    """Load the checkpoint's weights and optimizer state into ``model``."""
    try:
        model.load(resume.checkpoint)
    except MLXError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"cannot resume {resume.run.run_id}: checkpoint {resume.checkpoint} "
            f"does not load ({exc})"
        ) from exc


def _continue(prepared: Resume) -> None:
    """The owned and checked run, changed at last: its metrics trimmed to the
    checkpoint's epoch, its config (with the overrides) written, its location
    indexed (a run moved since it was made is found again)."""
    run = prepared.run
    try:
        run.truncate_metrics(prepared.state.epoch)
        run.write_config(prepared.config.to_dict())
        record_run(run.path)
    except OSError as exc:  # each file is whole; the summary is as it was
        raise RunError(
            f"cannot resume {run.run_id}: {os_error_text(exc)}",
            hint="free some space (or make the run writable) and resume again",
        ) from exc


def _already_complete(prepared: Resume, *, quiet: bool) -> Run:
    """The run of a resume with nothing to train, left exactly as it is."""
    run, config, summary = prepared.run, prepared.config, prepared.summary
    final = summary.get("final_metrics")
    Console(quiet=quiet).note(
        f"run {run.run_id} already completed its {config.training.epochs} epochs; "
        "nothing changed (raise training.epochs with --set to train further)"
    )
    return Run(
        run_id=run.run_id,
        directory=run.path,
        status="completed",
        final_metrics=dict(final) if isinstance(final, Mapping) else {},
        config=config,
    )


_CHECKPOINT_NAME = re.compile(r"^epoch-(\d+)(?:-step-(\d+))?$")
# TrainerState fields and the values each may hold
_STATE_FIELDS: dict[str, tuple[str, bool]] = {
    "epoch": ("count", False),
    "batch": ("count", False),
    "step": ("count", False),
    "loss_sum": ("number", False),
    "loss_count": ("count", False),
    "best_metric": ("number", True),
    "best_epoch": ("count", True),
    "config_fingerprint": ("text", True),
    "callbacks": ("list", True),
    "stopped_epoch": ("count", True),
}


def _read_trainer_state(checkpoint: Path, run_id: str) -> TrainerState:
    """The checkpoint's ``trainer_state.json``, every field checked; CheckpointError
    naming the file and field otherwise."""
    state_file = checkpoint / TRAINER_STATE_FILE

    def fail(what: str) -> CheckpointError:
        return CheckpointError(
            f"cannot resume {run_id}: {state_file} {what}",
            hint="the checkpoint is damaged; remove it to resume from an earlier one",
        )

    try:
        data = read_json_guarded(
            state_file, DOCUMENT_LIMIT, state_file.name, error=CheckpointError
        )
    except (OSError, ValueError) as exc:
        raise fail(f"is missing or corrupt ({exc})") from exc
    if not isinstance(data, dict):
        raise fail(f"must hold a JSON object; got {type(data).__name__}")
    for name, (kind, optional) in _STATE_FIELDS.items():
        if name not in data or (data[name] is None and optional):
            continue
        expected = _unexpected(kind, data[name])
        if expected:
            raise fail(f"field {name!r} must be {expected}; got {data[name]!r}")
    state = TrainerState.from_dict(data)
    match = _CHECKPOINT_NAME.match(checkpoint.name)
    if match and (
        int(match.group(1)) != state.epoch
        or (match.group(2) is not None and int(match.group(2)) != state.step)
    ):
        raise fail(
            f"says epoch {state.epoch}, step {state.step}, which is not the "
            f"checkpoint it lies in ({checkpoint.name})"
        )
    return state


def _unexpected(kind: str, value: Any) -> str | None:
    """What a trainer-state field of ``kind`` must be, when ``value`` is not; None
    when it is."""
    if kind == "count":
        ok = type(value) is int and value >= 0
        expected = "an integer >= 0"
    elif kind == "list":
        ok = isinstance(value, list)
        expected = "a list"
    elif kind == "number":
        ok = type(value) in (int, float) and math.isfinite(value)
        expected = "a finite number"
    else:
        ok = isinstance(value, str)
        expected = "a string"
    return None if ok else expected


def _epochs_done(
    run: RunDir, summary: Mapping[str, Any], state: TrainerState | None
) -> int:
    """The most epochs the run is known to have completed: its checkpoint, its
    summary and its metrics log."""
    done = [state.epoch] if state is not None else [0]
    recorded = summary.get("epochs_completed")
    if type(recorded) is int:
        done.append(recorded)
    with warnings.catch_warnings():
        # a torn line is reported when the log is trimmed, not twice
        warnings.simplefilter("ignore", DataWarning)
        for record in run.read_metrics():
            epoch = record.get("epoch")
            if type(epoch) is int:
                done.append(epoch)
    return max(done)


def _boundary_checkpoint(
    run: RunDir, config: ExperimentConfig, checkpoint: Path, state: TrainerState
) -> tuple[Path, TrainerState]:
    """The checkpoint at the end of epoch ``state.epoch``, for a resume whose
    ``training.epochs`` ends there while the newest checkpoint, ``checkpoint``, lies
    inside the next epoch."""
    epochs = config.training.epochs
    boundary = run.checkpoint_dir(state.epoch)
    if boundary.is_dir() and not boundary.is_symlink():
        found = _read_trainer_state(boundary, run.run_id)
        if found.config_fingerprint == state.config_fingerprint and found.batch == 0:
            return boundary, found
    raise RunError(
        f"cannot resume {run.run_id}: training.epochs {epochs} ends at epoch "
        f"{epochs}, but its newest checkpoint {checkpoint.name} is {state.batch} "
        f"batch(es) into epoch {state.epoch + 1} and there is no usable checkpoint "
        f"{boundary.name} to finish from",
        hint=f"raise training.epochs above {epochs} to continue from "
        f"{checkpoint.name}, or evaluate a checkpoint (mlx eval {run.run_id} "
        "--checkpoint epoch-N)",
    )


def _no_checkpoint_hint(
    run: RunDir, stored: ExperimentConfig, summary: Mapping[str, Any]
) -> str:
    """Why a run has no checkpoint to resume from, as far as its files tell."""
    try:
        entries = [e.name for e in os.scandir(run.checkpoints_dir)]
    except OSError:
        entries = None
    fresh = "; start a new run"
    if entries and any(name.startswith(".tmp-") for name in entries):
        return (
            "a checkpoint was being written when the run stopped and never "
            "completed, so none is whole" + fresh
        )
    output, epochs = stored.output, stored.training.epochs
    done = _epochs_done(run, summary, None)
    first = min(output.checkpoint_frequency, epochs)
    resumed = summary.get("resumed_at")
    if (
        entries is not None  # checkpoints/ is made by the first save
        or (output.save_checkpoints and done >= first)  # one was due and saved
        or (isinstance(resumed, list) and resumed)  # a resume starts from one
    ):
        return "its checkpoints were removed" + fresh
    if output.save_checkpoints:
        return (
            f"it stopped after {done} epoch(s), before its first checkpoint (epoch "
            f"{first}), and not by SIGINT/SIGTERM, which would have saved one" + fresh
        )
    return (
        "it ran with output.save_checkpoints: false and was not stopped by "
        "SIGINT/SIGTERM (the only time such a run saves a checkpoint)" + fresh
    )


def previous_segments(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The segments a run recorded before this one; a segment whose process died
    without a word (the summary still says running) is added as ``lost``, from its
    start to its last heartbeat."""
    timings = summary.get("timings")
    timings = timings if isinstance(timings, Mapping) else {}
    recorded = timings.get("segments")
    if isinstance(recorded, list):
        segments = [dict(s) for s in recorded if isinstance(s, Mapping)]
    else:
        # a run recorded before segments were: its figures are one segment
        segments = []
        legacy = {
            k: v
            for k, v in timings.items()
            if k.endswith("_seconds") and isinstance(v, (int, float))
        }
        if legacy:
            segments.append({"status": str(summary.get("status")), **legacy})
    if summary.get("status") == "running":
        segments.append(_lost_segment(summary))
    return segments


def _lost_segment(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The segment of a process that died while the summary said running: from
    its start to its last heartbeat (or update)."""
    resumed = summary.get("resumed_at")
    begin_text = (
        resumed[-1]
        if isinstance(resumed, list) and resumed
        else summary.get("started_at")
    )
    begin = parse_timestamp(begin_text)
    beats = [parse_timestamp(summary.get(k)) for k in ("heartbeat_at",)]
    beats.append(parse_timestamp(summary.get("updated_at")))
    end = max((b for b in beats if b is not None), default=None)
    lost: dict[str, Any] = {
        "status": "lost",
        "started_at": begin_text,
        "finished_at": end.isoformat() if end else None,
        "epochs_completed": summary.get("epochs_completed"),
    }
    first, last = (
        summary.get("segment_start_epoch"),
        summary.get("epochs_completed"),
    )
    if type(first) is int and type(last) is int and 0 <= first <= last:
        lost["epochs"] = [first, last]
    if begin is not None and end is not None:
        lost["total_seconds"] = max((end - begin).total_seconds(), 0.0)
    return lost


def config_fingerprint(config: ExperimentConfig) -> str:
    """SHA-256 of every field that decides what a run computes (all but
    :data:`RESUMABLE_FIELDS`); each checkpoint records it, and resume refuses a
    checkpoint whose fingerprint is not its run's."""
    text = json.dumps(
        _relevant(config.to_dict()), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [
        f"{path}: {before!r} -> {after!r}"
        for path, before, after in _diff(_relevant(old), _relevant(new))
    ]


def _relevant(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``config`` without the fields that may change on resume."""
    kept: dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if path in RESUMABLE_FIELDS:
            continue
        kept[key] = (
            _relevant(value, path + ".") if isinstance(value, Mapping) else value
        )
    return kept


def _diff(old: Any, new: Any, prefix: str = "") -> Iterator[tuple[str, Any, Any]]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            yield from _diff(old.get(key), new.get(key), path)
    elif old != new:
        yield prefix, old, new
