"""Running a sweep's points: the jobs, the loop that keeps the executor's slots
full and reports each point as it ends, and the progress it prints on stderr.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Sequence

from mlx.sweeps import executors
from mlx.sweeps.executors import Executor, Task
from mlx.sweeps.outcome import Outcome, exit_text, settle
from mlx.sweeps.points import Point, show_parameter
from mlx.sweeps.spec import SweepSpec
from mlx.sweeps.store import SweepDir
from mlx.utils.safe_io import append_line_guarded

__all__ = ["Job", "Progress", "Runner", "params_text", "task_of"]


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclasses.dataclass
class Job:
    point: Point
    action: str  # "new" or "resume"
    run: Path | None = None


def params_text(point: Point) -> str:
    return " ".join(f"{k}={show_parameter(v)}" for k, v in point.parameters.items())


class Progress:
    """One line per finished point when stderr is piped; a bar on a terminal."""

    def __init__(self, total: int, skipped: int, quiet: bool) -> None:
        self.total = total
        self.done = skipped
        self.failed = 0
        self.running = 0
        self.quiet = quiet
        self.tty = sys.stderr.isatty() and not quiet
        self._bar = False

    def line(self, text: str, *, always: bool = False) -> None:
        if self.quiet and not always:
            return
        self.clear()
        _stderr(text)
        self.draw()

    def clear(self) -> None:
        if self._bar:
            sys.stderr.write("\r\033[K")
            self._bar = False

    def draw(self) -> None:
        if not self.tty:
            return
        width = 30
        filled = int(width * (self.done + self.failed) / max(self.total, 1))
        bar = "#" * filled + "." * (width - filled)
        sys.stderr.write(
            f"\r[{bar}] {self.done}/{self.total} done, {self.failed} failed, "
            f"{self.running} running"
        )
        sys.stderr.flush()
        self._bar = True


class Runner:
    """Keeps the executor's slots full, reports each point as it ends, and stops
    the rest after too many failures or on an interrupt."""

    def __init__(
        self,
        executor: Executor,
        sweep: SweepDir,
        spec: SweepSpec,
        threads: int,
        progress: Progress,
        max_failures: int,
    ) -> None:
        self.executor = executor
        self.sweep, self.spec, self.threads = sweep, spec, threads
        self.progress = progress
        self.max_failures = max_failures
        self.pending: list[Job] = []
        self.by_hash: dict[str, Job] = {}
        # the sweep's run directories when each point started: its new run is not
        # among them
        self.before: dict[str, frozenset[Path]] = {}
        self.failures = 0
        self.stopped = False

    def run(self, jobs: Sequence[Job]) -> bool:
        """Run ``jobs``; True when interrupted (Ctrl-C, SIGTERM)."""
        executor = self.executor
        self.pending = list(jobs)
        self.by_hash = {j.point.hash: j for j in jobs}
        while self.pending or executor.running:
            try:
                self.fill()
                if self.stopped and not executor.running:
                    break
                self.collect()
            except KeyboardInterrupt:
                self.progress.line(
                    "interrupted: stopping the running points (they checkpoint); "
                    f"resume with: mlx sweep --resume {self.sweep.path}"
                )
                self.stop()
                return True
        return False

    def collect(self) -> None:
        """Report the points that end within the next half second."""
        for task, code in self.executor.wait(0.5):
            self.finished(task, code)
            self.progress.draw()

    def stop(self) -> None:
        """Interrupt the running points and report each as it ends (a second
        interrupt kills what still runs)."""
        self.pending.clear()
        self.stopped = True
        self.executor.interrupt()
        while self.executor.running:
            try:
                self.collect()
            except KeyboardInterrupt:
                self.executor.close()
                return

    def fill(self) -> None:
        """Start pending jobs while there are free slots."""
        executor = self.executor
        while self.pending and executor.running < executor.slots and not self.stopped:
            job = self.pending.pop(0)
            self.before[job.point.hash] = frozenset(self.sweep.run_dirs())
            executor.start(task_of(self.sweep, self.spec, job, self.threads))
            self.progress.running = executor.running
            self.progress.draw()

    def finished(self, task: Task, code: int) -> None:
        """Report a point that ended with exit status ``code``, by the status its
        run now records (see :func:`mlx.sweeps.outcome.settle`)."""
        job = self.by_hash[task.digest]
        outcome = settle(
            self.sweep,
            task.digest,
            code,
            before=self.before.get(task.digest, frozenset()),
            resumed=job.run if job.action == "resume" else None,
            stopped=self.stopped,
            reason=task.reason,
        )
        seconds = time.monotonic() - task.started
        progress = self.progress
        progress.running = self.executor.running
        if outcome.status == "completed":
            progress.done += 1
            progress.line(_finished_line(self.sweep, job, progress, seconds))
        elif outcome.status in ("interrupted", "not started"):
            progress.line(_interrupted_line(job, code, outcome, self.stopped))
        else:
            self.failures += 1
            progress.failed += 1
            text = _failed_text(self.sweep, job, code, progress, outcome.error)
            progress.line(text, always=True)
            if (
                self.max_failures
                and self.failures >= self.max_failures
                and not self.stopped
            ):
                self.stopped = True
                self.pending.clear()
                progress.line(
                    f"stopping: {self.failures} failure(s) (--fail-fast or "
                    "--max-failures); interrupting the running points"
                )
                self.executor.interrupt()


def _interrupted_line(job: Job, code: int, outcome: Outcome, stopped: bool) -> str:
    if outcome.status == "not started":
        return f"interrupted {job.point.short} before its run began (not started)"
    if stopped:
        return f"interrupted {job.point.short} (it checkpointed; --resume continues it)"
    # a signal from outside the sweep stopped it: the run says so, and so do we
    return (
        f"interrupted {job.point.short} {params_text(job.point)} ({exit_text(code)}"
        "; it checkpointed, --resume continues it)"
    )


def task_of(sweep: SweepDir, spec: SweepSpec, job: Job, threads: int) -> Task:
    digest = job.point.hash
    if job.action == "resume":
        argv = executors.worker_argv(spec.name, digest, resume=job.run)
    else:
        argv = executors.worker_argv(
            spec.name, digest, config=sweep.config_path(digest)
        )
    log = sweep.log_path(digest)
    header = f"--- {job.action}: {' '.join(argv[1:])}"
    append_line_guarded(log, header, "the point's log")
    return Task(digest, argv, log, executors.point_env(threads))


def _finished_line(
    sweep: SweepDir, job: Job, progress: Progress, seconds: float
) -> str:
    state = sweep.states([job.point.hash])[job.point.hash]
    metrics = (state.summary or {}).get("final_metrics") or {}
    shown = " ".join(
        f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float))
    )
    count = f"[{progress.done + progress.failed}/{progress.total}]"
    return (
        f"{count} completed {job.point.short} {params_text(job.point)}"
        f"{'  ' + shown if shown else ''} ({seconds:.1f}s)"
    )


def _failed_text(
    sweep: SweepDir, job: Job, code: int, progress: Progress, error: str | None
) -> str:
    count = f"[{progress.done + progress.failed}/{progress.total}]"
    lines = [
        f"{count} FAILED {job.point.short} {params_text(job.point)} "
        f"({exit_text(code)}); log: {sweep.log_path(job.point.hash)}"
    ]
    tail = sweep.log_tail(job.point.hash)
    lines += [f"    {line}" for line in tail]
    if error and not any(error in line for line in tail):
        lines.append(f"    error: {error}")
    return "\n".join(lines)
