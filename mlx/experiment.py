"""Run an experiment end to end: config -> data -> model -> training -> run directory.

:func:`run_experiment` is what ``mlx run-experiment`` calls and what notebooks use. It
validates everything that can fail before creating the run directory, so a bad config
or a missing dataset leaves nothing on disk; once the run exists, its ``summary.json``
always tells the truth (running, completed, failed, interrupted).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, Iterator, Mapping, Sequence, Union

from mlx.config import ExperimentConfig
from mlx.errors import RunError, RunInterrupted

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
    overrides : ``"dotted.key=value"`` strings, as ``mlx run-experiment --set``.
    resume : a run ID or run directory to continue from its last checkpoint.
    quiet : print nothing to stderr (``train.log`` is still written).
    record : extra fields for a new run's ``summary.json``, written when the run is
        created (``mlx sweep`` records ``sweep`` and ``point`` this way); a resumed
        run keeps those it has.

    Raises
    ------
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
    if resume is not None:
        prepared = _prepare_resume(resume, overrides)
        try:
            return _execute(prepared.config, resume=prepared, quiet=quiet)
        finally:
            prepared.run.release()
    if config_or_path is None:
        raise RunError("run_experiment needs a config or a run to resume")
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


def _execute(
    config: ExperimentConfig,
    *,
    resume: _Resume | None,
    quiet: bool,
    record: Mapping[str, Any] | None = None,
) -> Run:
    from mlx import datasets, models
    from mlx.runs import RunDir
    from mlx.runs.ids import utc_now
    from mlx.training import TrainerState

    started = time.perf_counter()
    segment_start = utc_now().isoformat()
    # everything that can fail on bad input happens before the run directory exists
    # (or, on resume, before anything in it changes)
    run: Any = resume.run if resume is not None else None
    splits = datasets.load(
        config.dataset, config.training.seed, feature_dtype(config, run)
    )
    loaded = time.perf_counter()
    model = models.get_model(config.model.name, _model_params(config))
    learning_rate = _install_optimizer(model, config, len(splits.train[0]))

    if resume is None:
        state = TrainerState()
        previous: list[dict[str, Any]] = []
        run = RunDir.create(
            config.output.directory, config.name, lock=True, fields=record
        )
        try:
            source = config.source
            original = source if source and Path(source).is_file() else None
            run.write_config(config.to_dict(), original_path=original)
            run.write_environment()
            _write_data_record(run, splits)
            _record_location(run)
        except BaseException as exc:
            run.mark_failed(exc)
            run.release()
            raise
    else:
        check_data_record(run, splits)
        _load_checkpoint(model, resume)
        state = resume.state
        previous = _previous_segments(resume.summary)
        # owned and checked: only now does the run change
        run.truncate_metrics(state.epoch)
        run.write_config(config.to_dict())
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

    from mlx.console import Console
    from mlx.runs import Heartbeat
    from mlx.training import TrainingStopped, train

    state.config_fingerprint = _config_fingerprint(config)
    first_epoch = state.epoch
    console = Console(
        quiet=quiet, log_file=run.log_path if config.output.save_logs else None
    )
    console(f"run {run.run_id}: {run.path}")
    if checkpoint is not None:
        console(
            f"resuming from {checkpoint.name} (epoch {state.epoch}, step {state.step})"
        )
    console(
        f"data: {config.dataset.name}, train {len(splits.train[0])} / "
        f"val {len(splits.val[0])} / test {len(splits.test[0])} samples, "
        f"{splits.n_features} features ({splits.task})"
    )
    facts = _model_facts(config, model)
    count = facts["parameters"]
    console(
        f"model: {config.model.name}, "
        + ("parameter count unknown" if count is None else f"{count:,} parameters")
    )

    run.mark_running(epochs_completed=state.epoch, model=facts)
    stopper = _SignalStopper()
    # a diverging loss ends the run with a DivergenceError and a hint; NumPy's
    # overflow warnings on the way there would only be noise
    quiet_overflow = np.errstate(over="ignore", invalid="ignore")
    try:
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
        run.mark_interrupted(
            epochs_completed=stopped.state.epoch,
            timings=timing.timings("interrupted", first_epoch, stopped.state.epoch),
        )
        console(
            f"interrupted at epoch {stopped.state.epoch}, step {stopped.state.step}"
        )
        ref = _resume_ref(run)
        console(f"resume with: mlx run-experiment --resume {ref}")
        raise RunInterrupted(
            f"run {run.run_id} interrupted by {stopper.signal_name}; "
            "a checkpoint was saved",
            exit_code=128 + stopper.signal_number,
            hint=f"resume with: mlx run-experiment --resume {ref}",
        ) from None
    except KeyboardInterrupt:
        # a second Ctrl-C: stop at once, every file on disk is still whole
        run.mark_interrupted(
            epochs_completed=state.epoch,
            timings=timing.timings("interrupted", first_epoch, state.epoch),
        )
        raise
    except BaseException as exc:  # DivergenceError included
        run.mark_failed(
            exc,
            epochs_completed=state.epoch,
            timings=timing.timings("failed", first_epoch, state.epoch),
        )
        raise

    metrics = run.read_metrics()
    final = {
        k: v
        for k, v in (metrics[-1] if metrics else {}).items()
        if k not in ("epoch", "step", "seconds", "learning_rate")
    }
    run.mark_completed(
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
    console(f"completed {run.run_id}: {run.path}")
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
        if begin is not None and end is not None:
            lost["total_seconds"] = max((end - begin).total_seconds(), 0.0)
        segments.append(lost)
    return segments


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
    from mlx.training import TrainerState

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

    done = [state.epoch]
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
            hint = (
                "runs saved with output.save_checkpoints: false cannot be resumed"
                if not stored.output.save_checkpoints
                else "its checkpoints were removed, or it stopped before the first"
            )
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
    except BaseException:
        run.release()
        raise
    return _Resume(run, config, checkpoint, state, summary)


def stored_config(run: Any, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """The run's resolved ``config.yaml`` (with ``overrides``), validated again.

    Its paths are absolute already. They are checked against the run's own output
    directory rather than the current repository root, so a run can be resumed or
    evaluated from any working directory.
    """
    from mlx.config import parse_config

    data = run.read_config()
    try:
        root = data["output"]["directory"]
    except (KeyError, TypeError):
        raise RunError(f"{run.config_path} has no output.directory") from None
    return parse_config(
        data, source=str(run.config_path), overrides=overrides, root=root
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


def feature_dtype(config: ExperimentConfig, run: Any = None) -> str:
    """The dtype to load a run's features in: float32 for a float32 MLP, so its
    data is never held in float64 as well; for an existing ``run``, the dtype its
    ``data.json`` recorded (float64 when it predates the record), so the data it
    rebuilds matches the fingerprints."""
    if run is not None:
        try:
            stored = _read_json(run.path / "data.json", RunError)
            return str(stored["preprocessing"]["feature_dtype"])
        except (RunError, KeyError, TypeError):
            return "float64"  # check_data_record reports a missing or corrupt file
    if config.model.name == "mlp" and config.model.params.get("dtype") == "float32":
        return "float32"
    return "float64"


def data_record(
    splits: Any, names: Sequence[str] = ("train", "val", "test")
) -> dict[str, Any]:
    """A cheap fingerprint of the named splits, to notice when eval or resume would
    see other data."""
    record: dict[str, Any] = {
        "task": splits.task,
        "n_features": splits.n_features,
        "n_classes": splits.n_classes,
        "preprocessing": splits.preprocessing,
    }
    for name in names:
        X, y = getattr(splits, name)
        record[name] = {"shape": list(X.shape), "sha256": _fingerprint(X, y)}
    return record


def _fingerprint(X: Any, y: Any) -> str:
    import numpy as np

    # hash up to 256 evenly spaced rows and every label: cheap (a few ms for wide
    # data), yet a changed file, seed or split shows up
    rows = np.linspace(0, len(X) - 1, num=min(len(X), 256)).astype(np.int64)
    digest = hashlib.sha256()
    digest.update(str((X.shape, X.dtype.str, y.shape, y.dtype.str)).encode())
    digest.update(np.ascontiguousarray(X[rows]).tobytes())
    digest.update(np.ascontiguousarray(y).tobytes())
    return digest.hexdigest()


def _write_data_record(run: Any, splits: Any) -> None:
    from mlx.utils.atomic import write_json_atomic

    write_json_atomic(run._inside(run.path / "data.json"), data_record(splits))


def check_data_record(
    run: Any, splits: Any, names: Sequence[str] = ("train", "val", "test")
) -> None:
    """RunError unless ``splits`` still match what the run recorded in data.json."""
    import json

    path = run.path / "data.json"
    try:
        stored = _read_json(path, RunError)
    except RunError as exc:
        raise RunError(f"{path} is missing or corrupt ({exc})") from exc
    # only the splits asked about are hashed: eval checks just the one it scores
    current = json.loads(json.dumps(data_record(splits, names)))
    for name in names:
        if stored.get(name) != current[name]:
            raise RunError(
                f"the {name} split rebuilt for run {run.run_id} differs from the one "
                f"it was trained with (stored {stored.get(name)}, now {current[name]})",
                hint="the dataset files or the seed changed since the run began; "
                "using it would train or score other data",
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
