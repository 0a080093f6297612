"""Run an experiment end to end: config -> data -> model -> training -> run directory.

:func:`run_experiment` is what ``mlx run-experiment`` calls and what notebooks use. It
validates everything that can fail before creating the run directory, so a bad config
or a missing dataset leaves nothing on disk; once the run exists, its ``summary.json``
always tells the truth (running, completed, failed, interrupted).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, Iterator, Mapping, Sequence, TypeVar, Union

from mlx.config import ExperimentConfig
from mlx.errors import MLXError, RunError, RunInterrupted
from mlx.experiment.preflight import check_output
from mlx.runs.records import (
    check_data_record,
    data_task,
    feature_dtype,
    stored_config,
    write_data_record,
)
from mlx.utils.atomic import os_error_text

__all__ = ["Run", "run_experiment"]

ConfigLike = Union[ExperimentConfig, Mapping[str, Any], str, Path]

# Fields that may change when a run is resumed: they do not change what was computed.
_RESUMABLE_FIELDS = (
    "name",
    "description",
    "training.epochs",
    "output.save_checkpoints",
    "output.checkpoint_frequency",
    "output.save_logs",
    "output.params",
)


@dataclasses.dataclass(frozen=True)
class Run:
    """A finished (or stopped) run: where it lives and how it ended."""

    run_id: str
    directory: Path
    status: str
    final_metrics: Mapping[str, Any]
    config: ExperimentConfig


_E = TypeVar("_E", bound=BaseException)


def _of_run(exc: _E, run: Any) -> _E:
    """``exc``, marked with the directory of the run it stopped (``run_directory``),
    so that the CLI can still report that run."""
    if isinstance(exc, Exception):
        try:
            exc.run_directory = run.path  # type: ignore[attr-defined]
        except AttributeError:  # an exception type with __slots__
            pass
    return exc


def run_experiment(
    config_or_path: ConfigLike | None = None,
    overrides: Sequence[str] = (),
    *,
    resume: str | Path | None = None,
    quiet: bool = False,
    record: Mapping[str, Any] | None = None,
) -> Run:
    """Run one experiment and return its :class:`Run`.

    Parameters
    ----------
    config_or_path : an ExperimentConfig, a config mapping, or a JSON/YAML file path.
        Not needed with ``resume``.
    overrides : ``"dotted.key=value"`` strings, as ``mlx run-experiment --set`` (one
        string is one override).
    resume : a run ID or run directory to continue from its last checkpoint.
    quiet : print nothing to stderr (``train.log`` is still written).
    record : extra fields for a new run's ``summary.json``, written when the run is
        created (``mlx sweep`` records ``sweep`` and ``point`` this way); a resumed
        run keeps those it has.

    Raises
    ------
    TypeError
        An argument of the wrong type (``quiet="no"``, ``overrides=5``, a ``record``
        that is no mapping of JSON values or sets a field the run writes itself), or
        both a config and ``resume``.
    ConfigError, DatasetError, ModelError
        Before anything is written.
    RunError, CheckpointError
        On resume, before anything in the run changes: another process owns the run,
        the config changed, ``training.epochs`` is below the epochs already done,
        or the checkpoint, its trainer state or the data do not check out.
    DivergenceError
        The loss became NaN/inf; the run is marked failed.
    RunInterrupted
        SIGINT/SIGTERM arrived; a checkpoint was saved and the run marked interrupted.
    """
    from mlx.config import Override
    from mlx.runs.store import SUMMARY_FIELDS
    from mlx.utils.arguments import (
        check_bool,
        check_fields,
        check_path_or_id,
        check_strings,
    )

    where = "mlx.run_experiment"
    overrides = check_strings(
        where,
        "overrides",
        () if overrides is None else overrides,
        "'KEY=VALUE' string",
        allow=(Override,),
    )
    check_bool(where, "quiet", quiet)
    if record is not None:
        record = check_fields(where, "record", record, SUMMARY_FIELDS)
    if resume is not None:
        resume = check_path_or_id(where, "resume", resume)
        if config_or_path is not None:
            raise TypeError(
                "mlx.run_experiment takes a config or resume=RUN, not both: a "
                "resumed run keeps its own config (change training.epochs or output "
                "options with overrides)"
            )
        prepared = _prepare_resume(resume, overrides)
        try:
            if prepared.complete:
                return _already_complete(prepared, quiet=quiet)
            return _execute(prepared.config, resume=prepared, quiet=quiet)
        finally:
            prepared.run.release()
    if config_or_path is None:
        raise RunError("run_experiment needs a config or a run to resume")
    if not isinstance(config_or_path, (ExperimentConfig, Mapping, str, os.PathLike)):
        raise TypeError(
            "The 'config_or_path' parameter of mlx.run_experiment must be an "
            "ExperimentConfig, a mapping, or the path of a JSON/YAML file; got "
            f"{type(config_or_path).__name__}."
        )
    config = _as_config(config_or_path, overrides)
    return _execute(config, resume=None, quiet=quiet, record=record)


def _as_config(
    config_or_path: ConfigLike, overrides: Sequence[str]
) -> ExperimentConfig:
    from mlx.config import load_config, parse_config

    if isinstance(config_or_path, ExperimentConfig):
        if not overrides:
            return config_or_path
        return parse_config(
            config_or_path.to_dict(),
            source=config_or_path.source or "<config>",
            overrides=overrides,
        )
    if isinstance(config_or_path, Mapping):
        return parse_config(config_or_path, overrides=overrides)
    return load_config(config_or_path, overrides=overrides)


@dataclasses.dataclass
class _Resume:
    """A run about to be resumed: owned (its lock held) and checked, not yet changed."""

    run: Any
    config: ExperimentConfig
    checkpoint: Path
    state: Any  # TrainerState
    summary: dict[str, Any]  # summary.json as it was before the takeover
    complete: bool = False  # completed, with no epoch left to train: nothing to do


def _already_complete(prepared: _Resume, *, quiet: bool) -> Run:
    """The run of a resume with nothing to train, left exactly as it is."""
    from mlx.experiment.console import Console

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


def _execute(
    config: ExperimentConfig,
    *,
    resume: _Resume | None,
    quiet: bool,
    record: Mapping[str, Any] | None = None,
) -> Run:
    from mlx import datasets, models
    from mlx.experiment.loop import TrainerState
    from mlx.models import _contract
    from mlx.runs import RunDir
    from mlx.runs.ids import utc_now

    started = time.perf_counter()
    segment_start = utc_now().isoformat()
    # everything that can fail on bad input happens before the run directory exists
    # (or, on resume, before anything in it changes)
    run: Any = resume.run if resume is not None else None
    if resume is None:
        check_output(config)
    params = _model_params(config)
    model = (
        None
        if models.uses_torch(config.model.name, params)
        else models.get_model(config.model.name, params)
    )
    # the model decides the task: the data's labels are read for it (see data_task);
    # a torch model takes the data's
    splits = datasets.load(
        config.dataset,
        config.training.seed,
        feature_dtype(config, run),
        model_task=None
        if model is None
        else data_task(_contract.model_task(model), run),
    )
    loaded = time.perf_counter()
    if model is None:
        # a torch model is built for the loaded data: its classes, channels, size
        model = _build_model(config, splits)
    _check_outputs_hold_classes(config, splits)
    learning_rate = _install_optimizer(model, config, len(splits.train[0]))

    if resume is None:
        state = TrainerState()
        previous: list[dict[str, Any]] = []
        try:
            run = RunDir.create(
                config.output.directory, config.name, lock=True, fields=record
            )
        except OSError as exc:  # nothing is left: create removes what it made
            raise RunError(f"cannot create the run: {os_error_text(exc)}") from exc
        try:
            source = config.source
            original = source if source and Path(source).is_file() else None
            run.write_config(config.to_dict(), original_path=original)
            describe = getattr(model, "environment", None)
            run.write_environment(describe() if callable(describe) else None)
            write_data_record(run, splits)
            _record_location(run)
        except BaseException as exc:
            note = _update_summary(run.mark_failed, exc)
            run.release()
            if isinstance(exc, OSError):
                raise _of_run(
                    RunError(
                        f"run {run.run_id} failed while being set up: "
                        f"{os_error_text(exc)}" + note
                    ),
                    run,
                ) from exc
            _of_run(exc, run)
            raise
    else:
        check_data_record(run, splits)
        _load_checkpoint(model, resume)
        state = resume.state
        previous = _previous_segments(resume.summary)
        # owned and checked: only now does the run change
        try:
            run.truncate_metrics(state.epoch)
            run.write_config(config.to_dict())
            _record_location(run)  # a run moved since it was made is found again
        except OSError as exc:  # each file is whole; the summary is as it was
            raise RunError(
                f"cannot resume {run.run_id}: {os_error_text(exc)}",
                hint="free some space (or make the run writable) and resume again",
            ) from exc
    try:
        return _train_run(
            config,
            run,
            model,
            splits,
            state,
            learning_rate,
            checkpoint=resume.checkpoint if resume is not None else None,
            quiet=quiet,
            timing=_Timing(started, loaded, segment_start, previous),
        )
    finally:
        run.release()


@dataclasses.dataclass
class _Timing:
    """The clock of one segment (one process's share of a run), and the segments
    before it."""

    started: float
    loaded: float
    started_at: str
    previous: list[dict[str, Any]]

    def timings(self, status: str, first_epoch: int, last_epoch: int) -> dict[str, Any]:
        from mlx.runs.ids import utc_now

        segment = {
            "status": status,
            "started_at": self.started_at,
            "finished_at": utc_now().isoformat(),
            "epochs": [first_epoch, last_epoch],
            "data_seconds": self.loaded - self.started,
            "total_seconds": time.perf_counter() - self.started,
        }
        return _merge_segments([*self.previous, segment])


def _train_run(
    config: ExperimentConfig,
    run: Any,
    model: Any,
    splits: Any,
    state: Any,
    learning_rate: Any,
    *,
    checkpoint: Path | None,
    quiet: bool,
    timing: _Timing,
) -> Run:
    import numpy as np

    from mlx.experiment.console import Console

    state.config_fingerprint = _config_fingerprint(config)
    first_epoch = state.epoch
    console = Console(
        quiet=quiet, log_file=run.log_path if config.output.save_logs else None
    )
    stopper = _SignalStopper()
    # a diverging loss ends the run with a DivergenceError and a hint; NumPy's
    # overflow warnings on the way there would only be noise
    quiet_overflow = np.errstate(over="ignore", invalid="ignore")
    with console:  # the run's log handlers, attached for the whole run
        return _train_logged(
            config,
            run,
            model,
            splits,
            state,
            learning_rate,
            console,
            stopper,
            quiet_overflow,
            checkpoint=checkpoint,
            timing=timing,
            first_epoch=first_epoch,
        )


def _log_failure(console: Any, exc: BaseException) -> None:
    """The error a run failed with, in ``train.log`` as the command prints it."""
    if isinstance(exc, MLXError):
        lines = [f"error: {line}" for line in exc.message.splitlines() or [""]]
        lines += [f"hint: {exc.hint}"] if exc.hint else []
    else:
        # an exception from the model's own code (or a defect): the command prints
        # one line, the log keeps the whole traceback
        from mlx.utils.raised import one_line, traceback_text

        lines = [traceback_text(exc).rstrip("\n"), f"error: {one_line(exc)}"]
    console.record("\n".join(lines))


def _train_logged(
    config: ExperimentConfig,
    run: Any,
    model: Any,
    splits: Any,
    state: Any,
    learning_rate: Any,
    console: Any,
    stopper: Any,
    quiet_overflow: Any,
    *,
    checkpoint: Path | None,
    timing: _Timing,
    first_epoch: int,
) -> Run:
    from mlx.experiment.loop import TrainingStopped, train
    from mlx.runs import Heartbeat

    try:
        # inside the try: a log or summary the disk refuses fails the run truthfully
        console(f"run {run.run_id}: {run.path}")
        if checkpoint is not None:
            console(
                f"resuming from {checkpoint.name} (epoch {state.epoch}, "
                f"step {state.step})"
            )
        streamed = hasattr(splits.train[0], "chunks")  # see mlx.datasets.streaming
        console(
            f"data: {config.dataset.name}, train {len(splits.train[0])} / "
            f"val {len(splits.val[0])} / test {len(splits.test[0])} samples, "
            f"{splits.n_features} features ({splits.task})"
            + (", streamed from disk" if streamed else "")
        )
        facts = _model_facts(config, model)
        count = facts["parameters"]
        console(
            f"model: {config.model.name}, "
            + ("parameter count unknown" if count is None else f"{count:,} parameters")
        )
        placement = getattr(model, "placement_", None)
        if placement is not None:
            console(f"device: {placement.device}, precision {placement.precision}")
        # where this process started: a lost segment's epochs run from here; the
        # segments before it are recorded now, so a process that dies too keeps them
        earlier = (
            {"timings": _merge_segments(timing.previous)} if timing.previous else {}
        )
        run.mark_running(
            epochs_completed=state.epoch,
            segment_start_epoch=state.epoch,
            model=facts,
            **earlier,
        )
        with stopper, Heartbeat(run), quiet_overflow:
            state = train(
                model,
                splits,
                config,
                run,
                state,
                learning_rate=learning_rate,
                log=console,
                stop=stopper.requested,
                progress=console.progress,
            )
            run.save_model(model.save)
    except TrainingStopped as stopped:
        note = _update_summary(
            run.mark_interrupted,
            epochs_completed=stopped.state.epoch,
            timings=timing.timings("interrupted", first_epoch, stopped.state.epoch),
        )
        console.note(
            f"interrupted at epoch {stopped.state.epoch}, step {stopped.state.step}"
        )
        ref = _resume_ref(run)
        console.note(f"resume with: mlx run-experiment --resume {ref}")
        raise _of_run(
            RunInterrupted(
                f"run {run.run_id} interrupted by {stopper.signal_name}; "
                "a checkpoint was saved" + note,
                exit_code=128 + stopper.signal_number,
                hint=f"resume with: mlx run-experiment --resume {ref}",
            ),
            run,
        ) from None
    except KeyboardInterrupt:
        # a second Ctrl-C: stop at once, every file on disk is still whole
        _update_summary(
            run.mark_interrupted,
            epochs_completed=state.epoch,
            timings=timing.timings("interrupted", first_epoch, state.epoch),
        )
        raise
    except BaseException as exc:  # DivergenceError included
        note = _update_summary(
            run.mark_failed,
            exc,
            epochs_completed=state.epoch,
            timings=timing.timings("failed", first_epoch, state.epoch),
        )
        if isinstance(exc, OSError):  # a full disk, a directory gone read-only
            failure = RunError(
                f"run {run.run_id} failed: {os_error_text(exc)}" + note,
                hint=_after_failure_hint(run),
            )
            _log_failure(console, failure)
            raise _of_run(failure, run) from exc
        _of_run(exc, run)
        if isinstance(exc, MLXError):
            # the same error (and class), told what else the environment refused
            # and, for a write it refused, what the user can do
            exc.message += note
            if exc.hint is None and isinstance(exc.__cause__, OSError):
                exc.hint = _after_failure_hint(run)
        _log_failure(console, exc)
        raise

    metrics = run.read_metrics()
    final = {
        k: v
        for k, v in (metrics[-1] if metrics else {}).items()
        if k not in ("epoch", "step", "seconds", "learning_rate")
    }
    note = _update_summary(
        run.mark_completed,
        final_metrics=final,
        epochs_completed=state.epoch,
        best_metric={
            "name": "val_loss" if splits.val[0].shape[0] else "train_loss",
            "value": state.best_metric,
            "epoch": state.best_epoch,
        },
        timings=timing.timings("completed", first_epoch, state.epoch),
        model=_model_facts(config, model),
    )
    if note:
        raise _of_run(
            RunError(
                f"run {run.run_id} trained to the end and its model is saved in "
                f"{run.model_dir}" + note
            ),
            run,
        )
    console.note(f"completed {run.run_id}: {run.path}")
    return Run(
        run_id=run.run_id,
        directory=run.path,
        status="completed",
        final_metrics=final,
        config=config,
    )


def _model_facts(config: ExperimentConfig, model: Any) -> dict[str, Any]:
    """``summary.json``'s ``model``: what the harness knows of the model, None for
    what a model does not tell (a custom model need not count its parameters)."""
    from mlx.models._contract import architecture, n_features, parameter_count

    facts: dict[str, Any] = {"name": config.model.name}
    class_path = config.model.params.get("class_path")
    if isinstance(class_path, str):
        facts["class_path"] = class_path
    facts.update(
        parameters=parameter_count(model),
        n_features=n_features(model),
        architecture=architecture(model),
    )
    return facts


def _update_summary(update: Any, *args: Any, **fields: Any) -> str:
    """Call ``update`` (a ``mark_*`` of the run); when the disk refuses even that,
    return a sentence saying so, for the error the user sees ("" otherwise)."""
    try:
        update(*args, **fields)
    except OSError as exc:
        return (
            f"; its summary.json could not be updated either ({os_error_text(exc)}), "
            "so `mlx runs` shows it as lost once this process ends"
        )
    return ""


def _after_failure_hint(run: Any) -> str:
    """What the user can do after the environment stopped a run, truthfully."""
    try:
        checkpoint = run.latest_checkpoint()
    except (OSError, RunError):
        checkpoint = None
    if checkpoint is None:
        return "free some space (or make the directory writable) and start it again"
    return (
        f"free some space (or make the directory writable), then resume from "
        f"{checkpoint.name}: mlx run-experiment --resume {_resume_ref(run)}"
    )


def _record_location(run: Any) -> None:
    """Index a run the default search would not find, so its ID resolves."""
    from mlx.runs.index import record_run

    record_run(run.path)


def _resume_ref(run: Any) -> str:
    """The run ID when it finds this run again, else the run's directory."""
    from mlx.runs import find_run

    try:
        if find_run(run.run_id).path.resolve() == run.path.resolve():
            return str(run.run_id)
    except (RunError, OSError):
        pass
    return str(run.path)


def _merge_segments(segments: list[dict[str, Any]]) -> dict[str, Any]:
    """``timings`` of a run: each segment's figures summed, then the segments."""
    totals: dict[str, Any] = {}
    for segment in segments:
        for key, value in segment.items():
            if key.endswith("_seconds") and isinstance(value, (int, float)):
                totals[key] = totals.get(key, 0.0) + float(value)
    return {**totals, "segments": segments}


def _previous_segments(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The segments a run recorded before this one; a segment whose process died
    without a word (the summary still says running) is added as ``lost``, from its
    start to its last heartbeat."""
    from mlx.runs.store import parse_timestamp

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
        segments.append(lost)
    return segments


def _build_model(config: ExperimentConfig, splits: Any) -> Any:
    """The model the config asks for, built for the loaded data."""
    from mlx import datasets, models

    params = _model_params(config)
    if models.uses_torch(config.model.name, params):
        from mlx.models.torch import require_torch

        require_torch()
        from mlx.models.torch.model import model_from_config

        return model_from_config(
            config, splits.task, splits.n_classes, datasets.image_shape(splits)
        )
    return models.get_model(config.model.name, params)


def _model_params(config: ExperimentConfig) -> dict[str, Any]:
    params = dict(config.model.params)
    if config.model.name in ("mlp", "linear_regression") and params.get("seed") is None:
        # a model without a seed of its own draws from training.seed, so every random
        # number of a run derives from the config and runs repeat to the bit
        params["seed"] = config.training.seed
    return params


def _install_optimizer(model: Any, config: ExperimentConfig, n_train: int) -> Any:
    """Give the model the optimizer the config asks for, with its schedule."""
    import math

    from mlx.optim import get_optimizer, resolve_optimizer_config
    from mlx.schedules import get_schedule

    if getattr(model, "closed_form", False):
        return lambda step: 0.0
    training = config.training
    resolved = resolve_optimizer_config(training, config.model.params)
    steps_per_epoch = math.ceil(n_train / min(training.batch_size, max(n_train, 1)))
    schedule = get_schedule(
        training.params, resolved["learning_rate"], steps_per_epoch, training.epochs
    )
    model.set_optimizer(get_optimizer({**resolved, "learning_rate": schedule}))
    configure = getattr(model, "configure_training", None)
    if callable(configure):
        configure(schedule, training.params.get("grad_clip_norm"))
    return schedule


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
}


def _read_trainer_state(checkpoint: Path, run_id: str) -> Any:
    """The checkpoint's ``trainer_state.json``, every field checked; CheckpointError
    naming the file and field otherwise."""
    import math

    from mlx.errors import CheckpointError
    from mlx.experiment.loop import TrainerState

    state_file = checkpoint / "trainer_state.json"

    def fail(what: str) -> CheckpointError:
        return CheckpointError(
            f"cannot resume {run_id}: {state_file} {what}",
            hint="the checkpoint is damaged; remove it to resume from an earlier one",
        )

    try:
        data = _read_json(state_file, CheckpointError)
    except (OSError, ValueError) as exc:
        raise fail(f"is missing or corrupt ({exc})") from exc
    if not isinstance(data, dict):
        raise fail(f"must hold a JSON object; got {type(data).__name__}")
    for name, (kind, optional) in _STATE_FIELDS.items():
        if name not in data:
            continue
        value = data[name]
        if value is None and optional:
            continue
        if kind == "count":
            ok = type(value) is int and value >= 0
            expected = "an integer >= 0"
        elif kind == "number":
            ok = type(value) in (int, float) and math.isfinite(value)
            expected = "a finite number"
        else:
            ok = isinstance(value, str)
            expected = "a string"
        if not ok:
            raise fail(f"field {name!r} must be {expected}; got {value!r}")
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


def _load_checkpoint(model: Any, resume: _Resume) -> None:
    """Load the checkpoint's weights and optimizer state into ``model``."""
    from mlx.errors import CheckpointError, MLXError

    try:
        model.load(resume.checkpoint)
    except MLXError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"cannot resume {resume.run.run_id}: checkpoint {resume.checkpoint} "
            f"does not load ({exc})"
        ) from exc


def _epochs_done(run: Any, summary: Mapping[str, Any], state: Any) -> int:
    """The most epochs the run is known to have completed: its checkpoint, its
    summary and its metrics log."""
    import warnings

    from mlx.errors import DataWarning

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


def _prepare_resume(ref: str | Path, overrides: Sequence[str]) -> _Resume:
    """Own the run to continue and check all it is resumed from, changing nothing:
    its config (with overrides), epochs, newest checkpoint and trainer state. The
    caller releases ``run`` when done."""
    from mlx.errors import CheckpointError
    from mlx.runs import find_run

    run = find_run(str(ref))
    # ownership first: a live run is refused before anything is read or changed
    run.acquire()
    try:
        summary = run.read_summary()
        stored = stored_config(run)
        config = stored_config(run, overrides)
        changed = _changed_fields(stored.to_dict(), config.to_dict())
        if changed:
            raise RunError(
                f"cannot resume {run.run_id}: the configuration changed:\n  "
                + "\n  ".join(changed),
                hint="only training.epochs and output options may change on resume; "
                "start a new run for anything else",
            )
        checkpoint = run.latest_checkpoint()
        if checkpoint is None:
            hint = _no_checkpoint_hint(run, stored, summary)
            raise RunError(
                f"cannot resume {run.run_id}: it has no checkpoint "
                f"(looked in {run.path / 'checkpoints'})",
                hint=hint,
            )
        state = _read_trainer_state(checkpoint, run.run_id)
        fingerprint = _config_fingerprint(config)
        if state.config_fingerprint != fingerprint:
            raise CheckpointError(
                f"cannot resume {run.run_id}: checkpoint {checkpoint.name} was written "
                "for another configuration (its config fingerprint "
                f"{state.config_fingerprint} differs from the run's {fingerprint})",
                hint="the checkpoint does not belong to this run's config.yaml",
            )
        done = _epochs_done(run, summary, state)
        if config.training.epochs < done:
            raise RunError(
                f"cannot resume {run.run_id}: training.epochs "
                f"{config.training.epochs} is below the {done} epochs it has "
                "already completed",
                hint="training.epochs may stay or grow on resume; for an earlier "
                f"state evaluate a checkpoint (mlx eval {run.run_id} --checkpoint "
                "epoch-N) or start a new run",
            )
        if (
            summary.get("status") == "completed"
            and state.batch == 0
            and state.epoch == done == config.training.epochs
            and run.model_dir.is_dir()
        ):
            # nothing to train: the run stays byte for byte as it is
            return _Resume(run, config, checkpoint, state, summary, complete=True)
        if state.batch > 0 and config.training.epochs <= state.epoch:
            # taken inside the epoch after the last one to train: finishing from it
            # would publish weights past the epoch the metrics describe
            checkpoint, state = _boundary_checkpoint(run, config, checkpoint, state)
        # a write the run would refuse later is refused before anything changes
        run.check_resume_writes(log=config.output.save_logs)
    except BaseException:
        run.release()
        raise
    return _Resume(run, config, checkpoint, state, summary)


def _boundary_checkpoint(
    run: Any, config: ExperimentConfig, checkpoint: Path, state: Any
) -> tuple[Path, Any]:
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
    run: Any, stored: ExperimentConfig, summary: Mapping[str, Any]
) -> str:
    """Why a run has no checkpoint to resume from, as far as its files tell."""
    directory = run.checkpoints_dir
    try:
        entries = [e.name for e in os.scandir(directory)]
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


def _config_fingerprint(config: ExperimentConfig) -> str:
    """SHA-256 of every field that decides what a run computes."""
    import json

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
        if path in _RESUMABLE_FIELDS:
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


def _check_outputs_hold_classes(config: ExperimentConfig, splits: Any) -> None:
    """DatasetError, before any run exists, when an MLP has fewer outputs than the
    data has classes (training would stop at the first batch)."""
    from mlx.errors import DatasetError

    if config.model.name != "mlp" or splits.n_classes is None:
        return
    params = config.model.params
    activation = params.get("output_activation")
    outputs = int(params["layer_sizes"][-1])
    room = 2 if activation == "sigmoid" else outputs
    if activation not in ("sigmoid", "softmax") or splits.n_classes <= room:
        return
    source = splits.preprocessing.get("source") or config.dataset.name
    names = splits.class_names or ()
    shown = ", ".join(str(c) for c in names[:5]) + (", ..." if len(names) > 5 else "")
    raise DatasetError(
        f"{source}: the data has {splits.n_classes} classes ({shown}), but the "
        f"model's {activation} output has room for {room}",
        hint=f"set model.params.layer_sizes[-1] to {splits.n_classes} with "
        "output_activation: softmax",
    )


def _read_json(path: Path, error: Any) -> Any:
    """A run's JSON file, through the size and type guard of mlx.utils.safe_io."""
    from mlx.utils.safe_io import DOCUMENT_LIMIT, read_json_guarded

    return read_json_guarded(path, DOCUMENT_LIMIT, path.name, error=error)


class _SignalStopper:
    """SIGINT/SIGTERM stop the loop after the current step; a second one aborts."""

    def __init__(self) -> None:
        self.signal_number = 0
        self._previous: dict[int, Any] = {}

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signal_number).name

    def requested(self) -> bool:
        return self.signal_number != 0

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal_number:
            raise KeyboardInterrupt
        self.signal_number = signum

    def __enter__(self) -> _SignalStopper:
        # signal handlers can only be installed from the main thread
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
