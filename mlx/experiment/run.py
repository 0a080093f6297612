"""Run an experiment end to end: config -> data -> model -> training -> run directory.

:func:`run_experiment` is what ``mlx run-experiment`` calls and what notebooks use.
A new run reads top to bottom in :func:`_start`: everything that can fail on bad
input (the output path, the backend, the data, the model) fails before the run
directory exists, so a bad config or a missing dataset leaves nothing on disk; once
the run exists, its ``summary.json`` always tells the truth (running, completed,
failed, interrupted; see :mod:`mlx.experiment.lifecycle`). A resumed run goes
through :func:`mlx.experiment.resume.resume_run`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

from mlx.config import ExperimentConfig, Override, load_config, parse_config
from mlx.errors import RunError, RunInterrupted, map_os_errors
from mlx.experiment.build import Built, build, decide_backend
from mlx.experiment.checks import (
    check_runnable_for_run,
    ensure_data,
    ensure_device,
    ensure_runnable,
)
from mlx.experiment.lifecycle import Timing, setting_up
from mlx.experiment.loop import TrainerState
from mlx.experiment.preflight import check_output
from mlx.experiment.resume import config_fingerprint, resume_run
from mlx.experiment.segment import Run, train_segment
from mlx.runs.index import record_run
from mlx.runs.records import write_data_record
from mlx.runs.store import RunDir
from mlx.runs.summary import SUMMARY_FIELDS
from mlx.utils.arguments import (
    check_bool,
    check_fields,
    check_path_or_id,
    check_strings,
)
from mlx.utils.atomic import os_error_text
from mlx.utils.signals import StopSignals, pause_point, watch

__all__ = ["ConfigLike", "Run", "run_experiment"]

ConfigLike = Union[ExperimentConfig, Mapping[str, Any], str, Path]

_WHERE = "mlx.run_experiment"


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
        SIGINT/SIGTERM arrived: during training, a checkpoint was saved and the run
        marked interrupted; before training began, no run is left (exit code 128 +
        the signal's number either way).
    """
    overrides = check_strings(
        _WHERE,
        "overrides",
        () if overrides is None else overrides,
        "'KEY=VALUE' string",
        allow=(Override,),
    )
    check_bool(_WHERE, "quiet", quiet)
    if record is not None:
        record = check_fields(_WHERE, "record", record, SUMMARY_FIELDS)
    if resume is not None:
        ref = _checked_resume(resume, config_or_path)
        # a signal before training goes on leaves the run as it was: resumable
        with watch(f"{ref} was not resumed; resume it again"):
            return resume_run(ref, overrides, quiet=quiet)
    # SIGINT/SIGTERM are handled from here on, before the run directory exists
    # (see mlx.utils.signals): until it does, a signal stops the work at once
    with watch("no run was created") as signals:
        config = _as_config(config_or_path, overrides)
        return _start(config, signals, quiet=quiet, record=record)


def _checked_resume(resume: Any, config_or_path: Any) -> str:
    """The run to resume, as given; TypeError when a config comes with it."""
    ref = check_path_or_id(_WHERE, "resume", resume)
    if config_or_path is not None:
        raise TypeError(
            "mlx.run_experiment takes a config or resume=RUN, not both: a "
            "resumed run keeps its own config (change training.epochs or output "
            "options with overrides)"
        )
    return ref


def _as_config(
    config_or_path: ConfigLike | None, overrides: Sequence[str]
) -> ExperimentConfig:
    """The validated config of ``config_or_path`` with ``overrides``."""
    if config_or_path is None:
        raise RunError("run_experiment needs a config or a run to resume")
    if isinstance(config_or_path, ExperimentConfig):
        if not overrides:
            ensure_runnable(config_or_path, data_first=True)
            return config_or_path
        return parse_config(
            config_or_path.to_dict(),
            source=config_or_path.source or "<config>",
            overrides=overrides,
            runnable=check_runnable_for_run,
        )
    if isinstance(config_or_path, Mapping):
        return parse_config(
            config_or_path, overrides=overrides, runnable=check_runnable_for_run
        )
    if not isinstance(config_or_path, (str, os.PathLike)):
        raise TypeError(
            "The 'config_or_path' parameter of mlx.run_experiment must be an "
            "ExperimentConfig, a mapping, or the path of a JSON/YAML file; got "
            f"{type(config_or_path).__name__}."
        )
    return load_config(
        config_or_path, overrides=overrides, runnable=check_runnable_for_run
    )


def _start(
    config: ExperimentConfig,
    signals: StopSignals,
    *,
    quiet: bool,
    record: Mapping[str, Any] | None,
) -> Run:
    """A new run of ``config``, trained to the end (or to the signal that stops
    it)."""
    timing = Timing()
    # everything that can fail on bad input happens before the run directory exists;
    # the data is looked at before anything imports torch (a custom model's module,
    # the device check), so a missing file fails at once
    check_output(config)
    ensure_data(config.dataset)
    ensure_device(config)
    built = build(config, decide_backend(config))
    pause_point("before-create")
    # from the directory's creation on, no signal cuts the work: one that comes
    # before training began removes the run, and training polls for one
    with signals.recording():
        run = _create(config, built, record)
        try:
            if signals.requested():
                raise _discarded(run, signals)
            state = TrainerState(config_fingerprint=config_fingerprint(config))
            return train_segment(config, run, built, state, timing, quiet=quiet)
        finally:
            run.release()


def _discarded(run: RunDir, signals: StopSignals) -> RunInterrupted:
    """Remove ``run``, which a signal stopped before it trained (it holds nothing
    of value: its config, environment and data records); the error that says so."""
    with map_os_errors(
        RunError,
        lambda exc: (
            f"run {run.run_id} was interrupted by {signals.signal_name} "
            f"before training began and could not be removed: {os_error_text(exc)}"
        ),
    ):
        shutil.rmtree(run.path)
    return signals.interrupted(
        f"interrupted by {signals.signal_name} before training began: the new run "
        f"{run.run_id} was removed"
    )


def _create(
    config: ExperimentConfig, built: Built, record: Mapping[str, Any] | None
) -> RunDir:
    """The new run's directory, owned by this process, with its config, its
    environment and its data record; nothing is left when it cannot be made."""
    with map_os_errors(
        RunError, lambda exc: f"cannot create the run: {os_error_text(exc)}"
    ):  # nothing is left: create removes what it made
        run = RunDir.create(
            config.output.directory, config.name, lock=True, fields=record
        )
    pause_point("created")
    with setting_up(run):
        source = config.source
        original = source if source and Path(source).is_file() else None
        run.write_config(config.to_dict(), original_path=original)
        pause_point("config-written")
        describe = getattr(built.model, "environment", None)
        run.write_environment(describe() if callable(describe) else None)
        write_data_record(run, built.splits)
        # indexed where the default search would not find it, so its ID resolves
        record_run(run.path)
    pause_point("set-up")
    return run
