"""Run an experiment end to end: config -> data -> model -> training -> run directory.

:func:`run_experiment` is what ``mlx run-experiment`` calls and what notebooks use. It
validates everything that can fail before creating the run directory, so a bad config
or a missing dataset leaves nothing on disk; once the run exists, its ``summary.json``
always tells the truth (running, completed, failed, interrupted).
"""

from __future__ import annotations

import dataclasses
import hashlib
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, Iterator, Mapping, Sequence, Union

from mlx.config import ExperimentConfig
from mlx.errors import DivergenceError, RunError, RunInterrupted

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
) -> Run:
    """Run one experiment and return its :class:`Run`.

    Parameters
    ----------
    config_or_path : an ExperimentConfig, a config mapping, or a JSON/YAML file path.
        Not needed with ``resume``.
    overrides : ``"dotted.key=value"`` strings, as ``mlx run-experiment --set``.
    resume : a run ID or run directory to continue from its last checkpoint.
    quiet : print nothing to stderr (``train.log`` is still written).

    Raises
    ------
    ConfigError, DatasetError, ModelError
        Before anything is written.
    DivergenceError
        The loss became NaN/inf; the run is marked failed.
    RunInterrupted
        SIGINT/SIGTERM arrived; a checkpoint was saved and the run marked interrupted.
    """
    if resume is not None:
        run, config, checkpoint = _prepare_resume(resume, overrides)
    else:
        if config_or_path is None:
            raise RunError("run_experiment needs a config or a run to resume")
        config = _as_config(config_or_path, overrides)
        run, checkpoint = None, None
    return _execute(config, run=run, checkpoint=checkpoint, quiet=quiet)


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


def _execute(
    config: ExperimentConfig,
    *,
    run: Any,
    checkpoint: Path | None,
    quiet: bool,
) -> Run:
    import numpy as np

    from mlx import datasets, models
    from mlx.console import Console
    from mlx.runs import Heartbeat, RunDir
    from mlx.training import TrainerState, TrainingStopped, train

    started = time.perf_counter()
    # everything that can fail on bad input happens before the run directory exists
    splits = datasets.load(
        config.dataset, config.training.seed, feature_dtype(config, run)
    )
    loaded = time.perf_counter()
    model = models.get_model(config.model.name, _model_params(config))
    learning_rate = _install_optimizer(model, config, len(splits.train[0]))
    state = TrainerState()

    if run is None:
        run = RunDir.create(config.output.directory, config.name)
        source = config.source
        original = source if source and Path(source).is_file() else None
        run.write_config(config.to_dict(), original_path=original)
        run.write_environment()
        _write_data_record(run, splits)
    else:
        check_data_record(run, splits)
        state = _restore(model, checkpoint, run, _config_fingerprint(config))
        run.write_config(config.to_dict())
    state.config_fingerprint = _config_fingerprint(config)
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
    console(f"model: {config.model.name}, {model.n_parameters:,} parameters")

    run.mark_running()
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
        run.mark_interrupted(epochs_completed=stopped.state.epoch)
        console(
            f"interrupted at epoch {stopped.state.epoch}, step {stopped.state.step}"
        )
        console(f"resume with: mlx run-experiment --resume {run.run_id}")
        raise RunInterrupted(
            f"run {run.run_id} interrupted by {stopper.signal_name}; "
            "a checkpoint was saved",
            exit_code=128 + stopper.signal_number,
            hint=f"resume with: mlx run-experiment --resume {run.run_id}",
        ) from None
    except KeyboardInterrupt:
        # a second Ctrl-C: stop at once, every file on disk is still whole
        run.mark_interrupted(epochs_completed=state.epoch)
        raise
    except DivergenceError as exc:
        run.mark_failed(exc, epochs_completed=state.epoch)
        raise
    except BaseException as exc:
        run.mark_failed(exc, epochs_completed=state.epoch)
        raise

    metrics = run.read_metrics()
    final = {
        k: v
        for k, v in (metrics[-1] if metrics else {}).items()
        if k not in ("epoch", "step", "seconds", "learning_rate")
    }
    finished = time.perf_counter()
    run.mark_completed(
        final_metrics=final,
        epochs_completed=state.epoch,
        best_metric={
            "name": "val_loss" if splits.val[0].shape[0] else "train_loss",
            "value": state.best_metric,
            "epoch": state.best_epoch,
        },
        timings={
            "data_seconds": loaded - started,
            "total_seconds": finished - started,
        },
    )
    console(f"completed {run.run_id}: {run.path}")
    return Run(
        run_id=run.run_id,
        directory=run.path,
        status="completed",
        final_metrics=final,
        config=config,
    )


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


def _restore(model: Any, checkpoint: Path | None, run: Any, fingerprint: str) -> Any:

    from mlx.errors import CheckpointError
    from mlx.training import TrainerState

    assert checkpoint is not None
    state_file = checkpoint / "trainer_state.json"
    try:
        state = TrainerState.from_dict(_read_json(state_file, CheckpointError))
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"cannot resume {run.run_id}: {state_file} is missing or corrupt ({exc})"
        ) from exc
    if state.config_fingerprint != fingerprint:
        raise CheckpointError(
            f"cannot resume {run.run_id}: checkpoint {checkpoint.name} was written "
            "for another configuration (its config fingerprint "
            f"{state.config_fingerprint} differs from the run's {fingerprint})",
            hint="the checkpoint does not belong to this run's config.yaml",
        )
    model.load(checkpoint)
    run.truncate_metrics(state.epoch)
    return state


def _prepare_resume(
    ref: str | Path, overrides: Sequence[str]
) -> tuple[Any, ExperimentConfig, Path]:
    """The run to continue, its config (with overrides) and its newest checkpoint."""
    from mlx.runs import find_run

    run = find_run(str(ref))
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
        raise RunError(
            f"cannot resume {run.run_id}: it has no checkpoint "
            f"(looked in {run.path / 'checkpoints'})",
            hint="runs saved with output.save_checkpoints: false cannot be resumed",
        )
    return run, config, checkpoint


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
