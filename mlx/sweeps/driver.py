"""``mlx sweep``: expand, validate, run the points, resume, report.

A sweep is driven by one process at a time (it holds ``sweep.lock``). Every point is
validated before the first runs. What to do with each point is decided from its run
directories: completed points are skipped, interrupted and lost ones resumed from
their last checkpoint (``run-experiment --resume``), failed ones run again unless
``--skip-failed`` (from the start, or from their last checkpoint when their process
died: see :mod:`mlx.sweeps.outcome`), and the rest started.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any, Iterator, Mapping, Sequence

from mlx.config.documents import dump_yaml
from mlx.datasets import DatasetInfo
from mlx.datasets.availability import describe_here
from mlx.errors import (
    BackendUnavailableError,
    CannotRunHere,
    MLXError,
    RunError,
    map_os_errors,
)
from mlx.experiment.plan import run_blocker
from mlx.runs.ids import utc_now
from mlx.sweeps import executors
from mlx.sweeps.cv import cross_validation
from mlx.sweeps.executors import Executor
from mlx.sweeps.outcome import died
from mlx.sweeps.points import Point, canonical, expand, identity
from mlx.sweeps.runner import Job, Progress, Runner, params_text
from mlx.sweeps.show import build_report, format_report, report_json
from mlx.sweeps.spec import SweepSpec, load_sweep
from mlx.sweeps.store import PointState, SweepDir, find_sweep
from mlx.utils.safe_io import DOCUMENT_LIMIT, read_text_guarded
from mlx.utils.values import plain

__all__ = ["changes", "plan", "run_sweep", "show_sweep"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
# how long a resumed sweep waits for the points a killed driver left running
_ORPHAN_WAIT_SECONDS = 60.0


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ sweep.json


def _record(
    spec: SweepSpec, points: Sequence[Point], duplicates: Sequence[int]
) -> dict[str, Any]:
    return {
        "name": spec.name,
        "file": os.fspath(spec.path),
        "source": spec.source,
        "sha256": spec.sha256,
        "text": spec.text,
        "definition": spec.definition(),
        "base_config": identity(spec.base_config.to_dict()),
        "metric": spec.metric,
        "goal": spec.goal,
        "updated_at": utc_now().isoformat(),
        "points": [
            {"hash": p.hash, "index": p.index, "parameters": dict(p.parameters)}
            for p in points
        ],
        "duplicates": list(duplicates),
    }


def _diff(old: Any, new: Any, prefix: str) -> Iterator[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in list(old) + [k for k in new if k not in old]:
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in new:
                yield f"{path}: removed (was {old[key]!r})"
            elif key not in old:
                yield f"{path}: added ({new[key]!r})"
            else:
                yield from _diff(old[key], new[key], path)
    elif old != new:
        yield f"{prefix}: {old!r} -> {new!r}"


def changes(
    stored: Mapping[str, Any], spec: SweepSpec, points: Sequence[Point]
) -> list[str]:
    """How ``spec`` differs from the sweep ``stored`` in ``sweep.json``, leaving out
    what only adds points (values added to a grid parameter, a larger
    ``num_samples``); [] when the sweep may go on with ``spec``."""
    old = dict(stored.get("definition") or {})
    new = spec.definition()
    found: list[str] = []
    for key in ("base", "overrides", "method", "seed", "metric", "goal"):
        if key == "seed" and new.get("method") == "grid" == old.get("method"):
            continue
        if old.get(key) != new.get(key):
            found.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
    before, after = old.get("num_samples"), new.get("num_samples")
    if before != after and not (
        isinstance(before, int) and isinstance(after, int) and after > before
    ):
        found.append(f"num_samples: {before!r} -> {after!r}")
    old_params = old.get("parameters") or {}
    new_params = new["parameters"]
    for path in old_params:
        if path not in new_params:
            found.append(f"parameters.{path}: removed")
    for path, definition in new_params.items():
        if path not in old_params:
            found.append(f"parameters.{path}: added")
            continue
        was = old_params[path]
        if new["method"] == "grid" and "values" in was and "values" in definition:
            kept = {canonical(v) for v in definition["values"]}
            dropped = [v for v in was["values"] if canonical(v) not in kept]
            if dropped:
                found.append(
                    f"parameters.{path}.values: {was['values']!r} -> "
                    f"{definition['values']!r} (removes {dropped!r})"
                )
        elif canonical(was) != canonical(definition):
            found.append(f"parameters.{path}: {was!r} -> {definition!r}")
    base = identity(spec.base_config.to_dict())
    stored_base = stored.get("base_config")
    if isinstance(stored_base, Mapping) and canonical(stored_base) != canonical(base):
        found += [
            f"base config {line}"
            for line in _diff(stored_base, base, "")
            if not line.startswith("name")
        ] or ["base config: changed"]
    if not found:
        hashes = {p.hash for p in points}
        missing = [
            str(p.get("hash"))[:12]
            for p in stored.get("points", [])
            if isinstance(p, Mapping) and p.get("hash") not in hashes
        ]
        if missing:
            found.append(
                f"{len(missing)} point(s) of the sweep are no longer in it: "
                + ", ".join(missing)
            )
    return found


# ------------------------------------------------------------------ planning


def plan(
    points: Sequence[Point], states: Mapping[str, PointState], retry_failed: bool
) -> tuple[list[Job], list[Point], list[Point]]:
    """``(jobs, skipped as completed, left as failed)`` for the points."""
    jobs: list[Job] = []
    done: list[Point] = []
    left: list[Point] = []
    for point in points:
        state = states[point.hash]
        if state.status == "completed":
            done.append(point)
        elif state.status in ("interrupted", "lost", "running") and state.run:
            checkpoint = _has_checkpoint(state)
            jobs.append(Job(point, "resume" if checkpoint else "new", state.run.path))
        elif state.status == "failed" and not retry_failed:
            left.append(point)
        elif state.status == "failed" and state.run and died(state.run):
            # its process died (a signal, os._exit): what it trained is sound
            checkpoint = _has_checkpoint(state)
            jobs.append(Job(point, "resume" if checkpoint else "new", state.run.path))
        else:
            jobs.append(Job(point, "new"))
    return jobs, done, left


def _has_checkpoint(state: PointState) -> bool:
    try:
        return state.run is not None and state.run.latest_checkpoint() is not None
    except (OSError, RunError):
        return False


# ------------------------------------------------------------------ the command


def run_sweep(args: argparse.Namespace) -> int:
    """``mlx sweep --config F`` / ``mlx sweep --resume SWEEP``."""
    if args.executor == "ray" and not args.dry_run:
        if importlib.util.find_spec("ray") is None:  # before anything is written
            raise BackendUnavailableError(
                "--executor ray needs Ray, which is not installed",
                hint="pip install 'model-harness[ray]'",
            )
        if args.address:
            executors.probe_ray(args.address)
    spec, sweep, stored = _open(args)
    points, duplicates = expand(spec, sweep_dir=os.fspath(sweep.path))
    if stored is None or args.dry_run:
        # a dry run's verdict is exit status 3, as run-experiment --dry-run's
        _check_runnable(spec, points, CannotRunHere if args.dry_run else RunError)
    if args.dry_run:
        return _dry_run(spec, sweep, points, duplicates, args.json)
    if stored is None and sweep.exists():
        raise RunError(
            f"sweep {spec.name!r} already exists in {sweep.path}",
            hint=f"continue it with `mlx sweep --resume {sweep.path}`, or give the "
            "sweep another name",
        )
    if stored is not None:
        found = changes(stored, spec, points)
        if found:
            raise RunError(
                f"cannot resume sweep {spec.name!r}: the sweep changed since it "
                "started:\n  " + "\n  ".join(found),
                hint="only adding values to a grid parameter or raising num_samples "
                "may change on resume (they add points); start a new sweep, with "
                "another name, for anything else",
            )
    with map_os_errors(
        RunError, "Cannot create the sweep directory {path}: {reason}", path=sweep.path
    ):
        sweep.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(sweep.path)
        except FileExistsError:
            pass
    # from before the lock is taken: a SIGTERM (also while Ray starts) ends the
    # command through the finally clauses, which release the lock and stop Ray
    previous = signal.signal(signal.SIGTERM, _interrupt_on_term)
    try:
        return _locked(args, spec, sweep, stored, points, duplicates)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _locked(
    args: argparse.Namespace,
    spec: SweepSpec,
    sweep: SweepDir,
    stored: dict[str, Any] | None,
    points: list[Point],
    duplicates: Sequence[int],
) -> int:
    """Record the sweep and drive it, holding its lock."""
    lock = sweep.lock().acquire()
    try:
        if lock.stale_owner:
            owner = lock.stale_owner
            _stderr(
                f"note: took over sweep {spec.name!r} from a driver that is gone "
                f"(pid {owner.get('pid')} on {owner.get('host')})"
            )
        if stored is None and sweep.exists():  # another driver was quicker
            raise RunError(f"sweep {spec.name!r} already exists in {sweep.path}")
        added = len(points) - len(stored["points"]) if stored else len(points)
        sweep.write(_record(spec, points, duplicates))
        if stored is not None and added > 0:
            _stderr(f"sweep {spec.name}: {added} point(s) added")
        _write_point_configs(sweep, points)
        return _drive(args, spec, sweep, points, duplicates)
    finally:
        lock.release()


def _open(
    args: argparse.Namespace,
) -> tuple[SweepSpec, SweepDir, dict[str, Any] | None]:
    """The sweep file's spec, the sweep's directory and, on ``--resume``, what its
    ``sweep.json`` holds (None for a new sweep)."""
    if not args.resume:
        spec = load_sweep(args.config, args.overrides)
        sweep = SweepDir(Path(spec.base_config.output.directory) / spec.name)
        return spec, sweep, None
    sweep = find_sweep(args.resume)
    stored = sweep.read()
    file = stored.get("file")
    if not isinstance(file, str):
        raise RunError(f"{sweep.record_path}: corrupt sweep record, no 'file'.")
    overrides = stored.get("definition", {}).get("overrides") or []
    spec = load_sweep(file, [str(o) for o in overrides])
    if spec.name != sweep.name:
        raise RunError(
            f"cannot resume sweep {sweep.name!r}: its file {file} now names "
            f"sweep {spec.name!r}"
        )
    return spec, sweep, stored


def _check_runnable(
    spec: SweepSpec, points: Sequence[Point], error: type[RunError] = RunError
) -> None:
    """Every point can run here, as ``run-experiment --dry-run`` decides it (the
    model on this installation, an image model's weights, a custom model's
    class_path, the output path, the data's headers), before anything is written:
    a sweep whose points would all fail the same way never starts."""
    described: dict[str, DatasetInfo] = {}
    blocked: list[tuple[Point, str]] = []
    for point in points:
        key = json.dumps(point.config.to_dict()["dataset"], sort_keys=True, default=str)
        if key not in described:
            # files in place, or the download source answering: asked once
            described[key] = describe_here(point.config.dataset)
        blocker = run_blocker(point.config, described[key])
        if blocker is not None:
            blocked.append((point, blocker))
    if not blocked:
        return
    if len(blocked) == len(points) and len({b for _, b in blocked}) == 1:
        raise error(f"no point of sweep {spec.name!r} can run here: {blocked[0][1]}")
    raise error(
        f"{len(blocked)} point(s) of sweep {spec.name!r} cannot run here:\n  "
        + "\n  ".join(
            f"point {p.index} ({params_text(p)}): {blocker}" for p, blocker in blocked
        )
    )


def _write_point_configs(sweep: SweepDir, points: Sequence[Point]) -> None:
    for point in points:
        # read back by the YAML 1.2 loader: a string such as "1e3" or "0o17" must
        # be quoted, which a YAML 1.1 dumper does not do
        text = dump_yaml(plain(point.config.to_dict()))
        path = sweep.config_path(point.hash)
        try:
            known = read_text_guarded(
                path, DOCUMENT_LIMIT, "a point's config", missing_ok=True
            )
        except RunError:
            known = None  # not a regular file: the sweep's own file, written again
        if known == text:
            continue
        sweep.write_point_config(point.hash, text)


def _dry_run(
    spec: SweepSpec,
    sweep: SweepDir,
    points: Sequence[Point],
    duplicates: Sequence[int],
    as_json: bool,
) -> int:
    if as_json:
        planned = [
            {
                "hash": p.hash,
                "run_id": None,
                "status": "not started",
                "parameters": dict(p.parameters),
                "final_metrics": {},
                "error": None,
            }
            for p in points
        ]
        report = {
            "name": spec.name,
            "directory": os.fspath(sweep.path),
            "metric": spec.metric,
            "goal": spec.goal,
            "points": planned,
            "best": None,
            "cv": cross_validation(planned, spec.metric),
        }
        print(report_json(report))
        return EXIT_OK
    print(f"sweep {spec.name}: {spec.method}, {len(points)} points, all valid")
    print(f"directory: {sweep.path}")
    print(f"base: {spec.base}")
    print(f"metric: {spec.metric} ({spec.goal})")
    if duplicates:
        print(
            f"note: {len(duplicates)} assignment(s) duplicate an earlier point and are "
            "skipped: " + ", ".join(str(i) for i in duplicates)
        )
    width = len(str(max((p.index for p in points), default=0)))
    for point in points:
        print(f"  {str(point.index).rjust(width)}  {point.short}  {params_text(point)}")
    print("dry run: nothing was run or written")
    return EXIT_OK


def _make_executor(args: argparse.Namespace, jobs: int, threads: int) -> Executor:
    if args.executor == "ray":
        executor = executors.RayExecutor(jobs, threads, args.address)
        _stderr(f"ray: started in {executor.startup_seconds:.1f}s")
        return executor
    return executors.LocalExecutor(jobs)


def _drive(
    args: argparse.Namespace,
    spec: SweepSpec,
    sweep: SweepDir,
    points: list[Point],
    duplicates: Sequence[int],
) -> int:
    hashes = [p.hash for p in points]
    states = sweep.states(hashes)
    states = _wait_for_orphans(sweep, hashes, states)
    jobs, done, left = plan(points, states, args.retry_failed)
    threads = args.threads_per_point
    n_jobs = args.jobs or executors.default_jobs(threads)
    progress = Progress(len(points), len(done), args.quiet)
    if not args.quiet:
        _announce(args, spec, sweep, jobs, done, left, n_jobs)
    interrupted = False
    executor: Executor | None = None
    try:
        executor = _make_executor(args, n_jobs, threads) if jobs else None
        if executor is not None:
            max_failures = 1 if args.fail_fast else args.max_failures
            runner = Runner(executor, sweep, spec, threads, progress, max_failures)
            try:
                interrupted = runner.run(jobs)
            except BaseException:
                # the driver cannot go on (a full disk): its points checkpoint and
                # are recorded as they end, not killed and left for lost
                try:
                    runner.stop()
                except Exception:  # the first error is the one to report
                    pass
                raise
    finally:
        progress.clear()
        if executor is not None:
            executor.close()
            if isinstance(executor, executors.RayExecutor) and not args.quiet:
                _stderr(f"ray: stopped in {executor.shutdown_seconds:.1f}s")
    report = build_report(sweep)
    if args.json:
        print(report_json(report))
    else:
        print(format_report(report, getattr(args, "sort", None)))
    if interrupted:
        return EXIT_INTERRUPTED
    statuses = {p["status"] for p in report["points"]}
    return EXIT_OK if statuses == {"completed"} else EXIT_FAILED


def _announce(
    args: argparse.Namespace,
    spec: SweepSpec,
    sweep: SweepDir,
    jobs: Sequence[Job],
    done: Sequence[Point],
    left: Sequence[Point],
    n_jobs: int,
) -> None:
    """What the driver is about to do, on stderr."""
    if done:
        _stderr(f"sweep {spec.name}: {len(done)} point(s) already completed, skipped")
    if left:
        _stderr(f"sweep {spec.name}: {len(left)} failed point(s) left (--skip-failed)")
    if jobs:
        resumed = sum(j.action == "resume" for j in jobs)
        _stderr(
            f"sweep {spec.name}: running {len(jobs)} point(s)"
            + (f" ({resumed} resumed from checkpoints)" if resumed else "")
            + f" on {args.executor}, {n_jobs} at a time: {sweep.path}"
        )


def _interrupt_on_term(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _wait_for_orphans(
    sweep: SweepDir, hashes: Sequence[str], states: dict[str, PointState]
) -> dict[str, PointState]:
    """Points still running from a driver that died stop on their own (they get
    SIGTERM and checkpoint); wait for them before deciding what to do."""
    deadline = time.monotonic() + _ORPHAN_WAIT_SECONDS
    noted = False
    while any(s.status == "running" for s in states.values()):
        if time.monotonic() > deadline:
            running = [h[:12] for h, s in states.items() if s.status == "running"]
            raise RunError(
                f"sweep {sweep.name!r}: point(s) {', '.join(running)} are still "
                "running in another process",
                hint="wait for them to finish, or stop those processes, then resume",
            )
        if not noted:
            _stderr("waiting for points a previous driver left running to stop...")
            noted = True
        time.sleep(0.2)
        states = sweep.states(hashes)
    return states


def show_sweep(args: argparse.Namespace) -> int:
    """``mlx sweep show SWEEP [--json] [--sort METRIC]``."""
    if not args.sweep:
        raise MLXError("sweep show: the following arguments are required: SWEEP")
    sweep = find_sweep(args.sweep)
    report = build_report(sweep)
    print(report_json(report) if args.json else format_report(report, args.sort))
    return EXIT_OK if all(p["status"] != "failed" for p in report["points"]) else 1
