"""Which weights a result is from.

Every saved set of weights (an epoch checkpoint and the final ``model/``) holds a
``trainer_state.json`` saying after how many epochs and steps they were taken; an
evaluation records the epoch and step of the weights it scored. From these, a report
or a comparison says which model produced a number, and whether the run has trained
past it since (a run resumed after it was evaluated), instead of letting the label
``final`` stand for weights that are no longer the final ones.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from mlx.errors import RunError
from mlx.runs.store import TRAINER_STATE_FILE, RunDir
from mlx.runs.summary import parse_timestamp
from mlx.utils.safe_io import SUMMARY_LIMIT, read_json_guarded
from mlx.utils.values import is_int

__all__ = [
    "brief_text",
    "checkpoint_state",
    "evaluated_epoch",
    "newest_weights",
    "trained_since",
    "weights_brief",
    "weights_state",
    "weights_text",
]


def weights_state(directory: Path) -> dict[str, int | None] | None:
    """``{"epoch": E, "step": S}`` of the weights saved in ``directory`` (an epoch
    checkpoint or ``model/``), from its ``trainer_state.json``; None when it has none
    (a model saved before the file was written there) or it does not hold them."""
    try:
        state = read_json_guarded(
            directory / TRAINER_STATE_FILE,
            SUMMARY_LIMIT,
            "the trainer state",
            error=RunError,
        )
    except (RunError, OSError):
        return None
    if not isinstance(state, Mapping):
        return None
    epoch, step = state.get("epoch"), state.get("step")
    if not (is_int(epoch) and epoch >= 0):
        return None
    return {"epoch": epoch, "step": step if is_int(step) and step >= 0 else None}


def evaluated_epoch(record: Mapping[str, Any]) -> int | None:
    """The epoch of the weights an evaluation scored: its recorded ``epoch``, else
    N of an ``epoch-N`` checkpoint; None when unknown (an older evaluation of
    ``final``)."""
    epoch = record.get("epoch")
    if is_int(epoch) and epoch >= 0:
        return epoch
    checkpoint = record.get("checkpoint")
    if isinstance(checkpoint, str):
        match = re.fullmatch(r"epoch-([0-9]{1,18})", checkpoint)
        if match:
            return int(match.group(1))
    return None


def trained_since(record: Mapping[str, Any], summary: Mapping[str, Any]) -> int | None:
    """The epochs the run has completed now, when that is past the weights the
    evaluation ``record`` scored; None when the run has not trained since (or
    nothing says so).

    Without a recorded epoch (an older evaluation of ``final``), a process segment
    of the run that started after the evaluation means the run trained since.
    """
    completed = summary.get("epochs_completed")
    if not is_int(completed):
        return None
    epoch = evaluated_epoch(record)
    if epoch is not None:
        return completed if completed > epoch else None
    created = parse_timestamp(record.get("created_at"))
    timings = summary.get("timings")
    segments = timings.get("segments") if isinstance(timings, Mapping) else None
    if created is None or not isinstance(segments, list):
        return None
    for segment in segments:
        if not isinstance(segment, Mapping):
            continue
        started = parse_timestamp(segment.get("started_at"))
        if started is not None and started > created:
            return completed
    return None


def checkpoint_state(run: RunDir, checkpoint: str) -> dict[str, int | None] | None:
    """:func:`weights_state` of a checkpoint named as ``mlx eval`` names them
    (``final`` or ``epoch-N``); None for another name."""
    if checkpoint == "final":
        return weights_state(run.model_dir)
    match = re.fullmatch(r"epoch-([0-9]{1,18})", checkpoint)
    return weights_state(run.checkpoint_dir(int(match.group(1)))) if match else None


def newest_weights(run: RunDir, summary: Mapping[str, Any]) -> str:
    """The checkpoint to evaluate for the run's newest weights: ``final`` when
    ``model/`` holds the last epoch the run completed (or nothing says otherwise),
    else the newest epoch checkpoint (a run resumed and stopped before it finished
    keeps its older ``model/``)."""
    completed = summary.get("epochs_completed")
    final = (weights_state(run.model_dir) or {}).get("epoch")
    if not is_int(completed) or final is None or final >= completed:
        return "final"
    epochs = [
        epoch
        for epoch, path in run.list_checkpoints()
        if "-step-" not in path.name and epoch > final
    ]
    return f"epoch-{max(epochs)}" if epochs else "final"


def weights_text(
    record: Mapping[str, Any],
    run: RunDir,
    summary: Mapping[str, Any],
    *,
    again: str = "",
) -> str:
    """Which model an evaluation ``record`` of ``run`` scored, in words:
    ``checkpoint final, the model of epoch 1; the run has trained to epoch 15
    since: run `mlx eval RUN` again``. ``again`` is added to that command
    (``--save-predictions``)."""
    checkpoint = record.get("checkpoint")
    epoch = evaluated_epoch(record)
    text = f"checkpoint {checkpoint}, " + (
        f"the model of epoch {epoch}"
        if epoch is not None
        else "the model's epoch was not recorded"
    )
    since = trained_since(record, summary)
    if since is None:
        return text
    newest = newest_weights(run, summary)
    option = "" if newest == "final" else f"--checkpoint {newest}"
    command = " ".join(p for p in ("mlx eval", run.run_id, option, again) if p)
    verb = "again" if newest == checkpoint else "for its newest model"
    return f"{text}; the run has trained to epoch {since} since: run `{command}` {verb}"


def weights_brief(record: Mapping[str, Any], summary: Mapping[str, Any]) -> str:
    """:func:`weights_text` for a table cell: ``test, final, epoch 1 (the run is
    at epoch 15 now)``."""
    return brief_text(
        record.get("split"),
        record.get("checkpoint"),
        evaluated_epoch(record),
        trained_since(record, summary),
    )


def brief_text(split: Any, checkpoint: Any, epoch: Any, since: Any) -> str:
    """:func:`weights_brief` of an evaluation's split, checkpoint, weights' epoch
    (None: not recorded) and the epoch the run has trained to since (None: it has
    not)."""
    text = f"{split}, {checkpoint}, " + (
        f"epoch {epoch}" if epoch is not None else "epoch not recorded"
    )
    return text if since is None else f"{text} (the run is at epoch {since} now)"
