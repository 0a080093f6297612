"""The life of a run, as one context manager around the training loop.

Once a run exists its ``summary.json`` always tells the truth: ``running`` while a
process trains it, then ``completed``, ``failed`` or ``interrupted``.
:class:`RunLifecycle` keeps it so, and keeps the bookkeeping out of the loop::

    with RunLifecycle(run, console, state, timing) as lifecycle:
        ...                                # a failure from here on is recorded
        lifecycle.start(model=facts)       # running; signals and heartbeats watched
        train(..., stop=lifecycle.stop_requested)
    lifecycle.complete(...)                # completed

How a segment (one process's share of a run) ends, and what the run records:

=============================  ==================================================
the loop stopped on a signal   ``interrupted``; a checkpoint was saved, the resume
                               command is printed, :class:`RunInterrupted` (exit
                               code 128 + the signal's number) is raised
a second Ctrl-C                ``interrupted``; the ``KeyboardInterrupt`` goes on
any other exception            ``failed``, the error in ``summary.json`` and
                               ``train.log``; an ``OSError`` becomes a
                               :class:`RunError` that says what the user can do
the loop ended                 :meth:`RunLifecycle.complete`: ``completed``
=============================  ==================================================

Every exception that leaves carries the run's directory (``run_directory``), so the
command can still report the run. When the disk refuses even the summary's update,
the error says so.
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import ExitStack, contextmanager
from types import TracebackType
from typing import Any, Callable, Iterator, Mapping, TypeVar

import numpy as np

from mlx.errors import MLXError, RunError, RunInterrupted
from mlx.experiment.console import Console
from mlx.experiment.loop import TrainerState, TrainingStopped
from mlx.runs import Heartbeat, find_run
from mlx.runs.ids import utc_now
from mlx.runs.store import RunDir
from mlx.utils.atomic import os_error_text
from mlx.utils.raised import one_line, traceback_text
from mlx.utils.signals import StopSignals, pause_point

__all__ = ["RunLifecycle", "Timing", "merge_segments", "setting_up"]

_E = TypeVar("_E", bound=BaseException)


def _now() -> str:
    return utc_now().isoformat()


@dataclasses.dataclass
class Timing:
    """The clock of one segment (one process's share of a run), started when it is
    made, and the segments recorded before it."""

    previous: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    started: float = dataclasses.field(default_factory=time.perf_counter)
    started_at: str = dataclasses.field(default_factory=_now)
    #: when the data was in memory (``time.perf_counter``)
    loaded: float = 0.0

    def timings(self, status: str, first_epoch: int, last_epoch: int) -> dict[str, Any]:
        """``summary.json``'s ``timings`` once this segment ends with ``status``."""
        segment = {
            "status": status,
            "started_at": self.started_at,
            "finished_at": _now(),
            "epochs": [first_epoch, last_epoch],
            "data_seconds": self.loaded - self.started,
            "total_seconds": time.perf_counter() - self.started,
        }
        return merge_segments([*self.previous, segment])


def merge_segments(segments: list[dict[str, Any]]) -> dict[str, Any]:
    """``timings`` of a run: each segment's figures summed, then the segments."""
    totals: dict[str, Any] = {}
    for segment in segments:
        for key, value in segment.items():
            if key.endswith("_seconds") and isinstance(value, (int, float)):
                totals[key] = totals.get(key, 0.0) + float(value)
    return {**totals, "segments": segments}


class RunLifecycle:
    """The summary's truth around one segment of a run (see the module).

    ``state`` is the trainer state the loop advances in place: what it says when
    the segment ends is what the summary records.
    """

    def __init__(
        self, run: RunDir, console: Console, state: TrainerState, timing: Timing
    ) -> None:
        self.run, self.console, self.state, self.timing = run, console, state, timing
        self.first_epoch = state.epoch
        # the command's StopSignals (see mlx.utils.signals), installed before the
        # run existed; a lifecycle used on its own installs one in start()
        self._signals = StopSignals.active()
        # no signal cuts the segment's bookkeeping, from here to the recording of
        # how it ended (complete() or __exit__); the loop polls in between
        self._held = ExitStack()
        self._watch = ExitStack()

    def __enter__(self) -> RunLifecycle:
        if self._signals is not None:
            self._held.enter_context(self._signals.recording())
        return self

    def start(self, *, model: Mapping[str, Any]) -> None:
        """Mark the run running from the epoch it stands at (``model``: what is known
        of the model), then watch it: SIGINT/SIGTERM ask the loop to stop, a thread
        keeps the heartbeat fresh, and NumPy's overflow warnings stay quiet."""
        # where this process started: a lost segment's epochs run from here; the
        # segments before it are recorded now, so a process that dies too keeps them
        pause_point("lifecycle")
        previous = self.timing.previous
        earlier = {"timings": merge_segments(previous)} if previous else {}
        self.run.mark_running(
            epochs_completed=self.state.epoch,
            segment_start_epoch=self.state.epoch,
            model=model,
            **earlier,
        )
        if self._signals is None:
            self._signals = self._held.enter_context(StopSignals())
            self._held.enter_context(self._signals.recording())
        self._watch.enter_context(self._signals.polling())
        self._watch.enter_context(Heartbeat(self.run))
        # a diverging loss ends the run with a DivergenceError and a hint; NumPy's
        # overflow warnings on the way there would only be noise
        self._watch.enter_context(np.errstate(over="ignore", invalid="ignore"))

    def stop_requested(self) -> bool:
        """Whether a signal asked the loop to stop (it polls this after each step)."""
        return self._signals is not None and self._signals.requested()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # the loop's signal handling ends here; a signal while the end is recorded
        # is only noted (the run completes in complete(), which lets go then)
        try:
            self._watch.close()
            if isinstance(exc, TrainingStopped):
                self._interrupted(exc.state)
            elif isinstance(exc, KeyboardInterrupt):
                # a second signal: stop at once, every file on disk is still whole
                self._record(self.run.mark_interrupted, "interrupted")
            elif exc is not None:  # DivergenceError included
                self._failed(exc)
        finally:
            if exc is not None:
                self._held.close()

    def complete(
        self,
        *,
        final_metrics: Mapping[str, Any],
        metric: str,
        model: Mapping[str, Any],
        stopped: Mapping[str, Any] | None = None,
    ) -> None:
        """Mark the run completed: its final metrics, its best ``metric`` (the
        name; the value and epoch are the trainer state's), ``model`` and, for a
        run a callback stopped, ``stopped`` (``stopped_early``, ...). RunError
        when the summary cannot be updated."""
        try:
            self._completed(final_metrics, metric, model, stopped or {})
        finally:
            self._held.close()

    def _completed(
        self,
        final_metrics: Mapping[str, Any],
        metric: str,
        model: Mapping[str, Any],
        stopped: Mapping[str, Any],
    ) -> None:
        state = self.state
        note = _update_summary(
            self.run.mark_completed,
            final_metrics=final_metrics,
            epochs_completed=state.epoch,
            best_metric={
                "name": metric,
                "value": state.best_metric,
                "epoch": state.best_epoch,
            },
            timings=self.timing.timings("completed", self.first_epoch, state.epoch),
            model=model,
            **stopped,
        )
        if note:
            raise _of_run(
                RunError(
                    f"run {self.run.run_id} trained to the end and its model is "
                    f"saved in {self.run.model_dir}" + note
                ),
                self.run,
            )
        self.console.note(f"completed {self.run.run_id}: {self.run.path}")

    def _record(self, mark: Callable[..., Any], status: str, *args: Any) -> str:
        """``mark`` the run's summary with the epochs done and the timings of a
        segment ending with ``status``; see :func:`_update_summary`."""
        epoch = self.state.epoch
        return _update_summary(
            mark,
            *args,
            epochs_completed=epoch,
            timings=self.timing.timings(status, self.first_epoch, epoch),
        )

    def _interrupted(self, state: TrainerState) -> None:
        """Record the stop a signal asked for; raise RunInterrupted."""
        run, stopper = self.run, self._signals
        assert stopper is not None  # the loop stops only when a signal asked
        note = self._record(run.mark_interrupted, "interrupted")
        self.console.note(f"interrupted at epoch {state.epoch}, step {state.step}")
        ref = _resume_ref(run)
        self.console.note(f"resume with: mlx run-experiment --resume {ref}")
        raise _of_run(
            RunInterrupted(
                f"run {run.run_id} interrupted by {stopper.signal_name}; "
                "a checkpoint was saved" + note,
                exit_code=128 + stopper.signal_number,
                hint=f"resume with: mlx run-experiment --resume {ref}",
            ),
            run,
        ) from None

    def _failed(self, exc: BaseException) -> None:
        """Record the failure ``exc``; raise a RunError for an OSError, else return
        (``exc`` goes on, told what else the environment refused)."""
        run = self.run
        note = self._record(run.mark_failed, "failed", exc)
        if isinstance(exc, OSError):  # a full disk, a directory gone read-only
            failure = RunError(
                f"run {run.run_id} failed: {os_error_text(exc)}" + note,
                hint=_after_failure_hint(run),
            )
            _log_failure(self.console, failure)
            raise _of_run(failure, run) from exc
        _of_run(exc, run)
        if isinstance(exc, MLXError):
            # the same error (and class), told what else the environment refused
            # and, for a write it refused, what the user can do
            exc.message += note
            if exc.hint is None and isinstance(exc.__cause__, OSError):
                exc.hint = _after_failure_hint(run)
        _log_failure(self.console, exc)


@contextmanager
def setting_up(run: RunDir) -> Iterator[RunDir]:
    """Around the writing of a new run's first files: a failure marks the run
    failed, releases it and names it on the error (an OSError becomes a
    RunError)."""
    try:
        yield run
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


def _of_run(exc: _E, run: RunDir) -> _E:
    """``exc``, marked with the directory of the run it stopped (``run_directory``),
    so that the CLI can still report that run."""
    if isinstance(exc, Exception):
        try:
            exc.run_directory = run.path  # type: ignore[attr-defined]
        except AttributeError:  # an exception type with __slots__
            pass
    return exc


def _update_summary(update: Callable[..., Any], *args: Any, **fields: Any) -> str:
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


def _log_failure(console: Console, exc: BaseException) -> None:
    """The error a run failed with, in ``train.log`` as the command prints it."""
    if isinstance(exc, MLXError):
        lines = [f"error: {line}" for line in exc.message.splitlines() or [""]]
        lines += [f"hint: {exc.hint}"] if exc.hint else []
    else:
        # an exception from the model's own code (or a defect): the command prints
        # one line, the log keeps the whole traceback
        lines = [traceback_text(exc).rstrip("\n"), f"error: {one_line(exc)}"]
    console.record("\n".join(lines))


def _after_failure_hint(run: RunDir) -> str:
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


def _resume_ref(run: RunDir) -> str:
    """The run ID when it finds this run again, else the run's directory."""
    try:
        if find_run(run.run_id).path.resolve() == run.path.resolve():
            return str(run.run_id)
    except (RunError, OSError):
        pass
    return str(run.path)
