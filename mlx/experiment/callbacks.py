"""Callbacks: the user's code called by the training loop at documented points.

``training.callbacks: [{class_path: pkg.mod:Cls, params: {...}}]`` names classes
built with ``Cls(**params)``; each may define any of these methods, called in this
order, the callbacks in the order of the list:

``on_train_start(run)``
    once per segment (a new run, and each resume), before the first epoch it
    trains; ``run`` is a :class:`RunInfo`.
``on_epoch_end(epoch, metrics) -> bool | None``
    after each epoch is recorded in ``metrics.jsonl`` and before its checkpoint;
    ``epoch`` counts completed epochs from 1 as ``metrics.jsonl`` does, ``metrics``
    is that line's metrics (``train_loss``, ``val_loss``, ...; read-only). True asks
    the run to stop after this epoch (it ends ``completed``, ``stopped_early``).
``on_train_end(run, status)``
    once per segment, ``status`` being ``completed``, ``failed`` or
    ``interrupted``.
``state_dict() -> dict`` / ``load_state_dict(state)``
    the callback's state, stored as JSON in each checkpoint's trainer state and
    given back on resume before ``on_train_start``, so it resumes exactly.

Early stopping (``training.early_stopping``) is a callback of its own, called after
the user's. An exception a callback raises fails the run with one line naming the
file and line it was raised at (:func:`mlx.utils.raised.one_line`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from mlx.config import ExperimentConfig
from mlx.config.fields import default_mode
from mlx.errors import ConfigError, ModelError, RunError
from mlx.models import check_signature, construct, import_object

__all__ = [
    "HOOKS",
    "Callbacks",
    "EarlyStopping",
    "RunInfo",
    "callbacks_blocker",
    "load_callbacks",
]

#: The methods a callback may define.
HOOKS = ("on_train_start", "on_epoch_end", "on_train_end", "state_dict")


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """What a callback is told of its run: read-only.

    ``run_id`` is the run's ID, ``directory`` its directory (where ``metrics.jsonl``,
    ``checkpoints/`` and ``summary.json`` lie: read them, write nothing there),
    ``config`` its validated, immutable configuration.
    """

    run_id: str
    directory: Path
    config: ExperimentConfig


def _at(index: int) -> str:
    return f"training.callbacks[{index}].class_path"


def load_callbacks(config: ExperimentConfig) -> list[Any]:
    """The user's callbacks of ``config``, built in order; ConfigError naming
    ``training.callbacks[i].class_path`` when one does not import, names no class
    or does not take its params."""
    built = []
    for index, entry in enumerate(config.training.callbacks or ()):
        class_path, params = entry["class_path"], dict(entry.get("params") or {})
        try:
            cls = import_object(class_path)
            if not isinstance(cls, type):
                raise ModelError(f"{class_path!r} names {cls!r}, which is no class.")
            if not any(callable(getattr(cls, hook, None)) for hook in HOOKS):
                raise ModelError(
                    f"{class_path!r} defines none of the callback methods "
                    f"({', '.join(HOOKS)})."
                )
            check_signature(cls, params, f"{class_path} cannot take its params")
            built.append(construct(cls, params))
        except ModelError as exc:
            hint = f" ({exc.hint})" if exc.hint else ""
            raise ConfigError(f"{_at(index)}: {exc.message}{hint}") from exc
    return built


def callbacks_blocker(config: ExperimentConfig) -> str | None:
    """Why ``config``'s callbacks cannot be used, or None (for the dry run: their
    modules are imported and the classes built, as the run would)."""
    try:
        load_callbacks(config)
    except ConfigError as exc:
        return exc.message
    return None


class EarlyStopping:
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` epochs in a row (``mode``: ``min`` or ``max``).

    The first epoch always improves; each epoch that does not adds one to
    ``wait``, and the run stops at the epoch where ``wait`` reaches ``patience``.
    """

    def __init__(
        self, monitor: str, mode: str, patience: int, min_delta: float
    ) -> None:
        self.monitor, self.mode = monitor, mode
        self.patience, self.min_delta = patience, min_delta
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, Any]) -> bool:
        value = monitored(metrics, self.monitor, "training.early_stopping.monitor")
        if self.best is None or _better(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
        else:
            self.wait += 1
        if self.wait >= self.patience and self.best_epoch != epoch:
            self.stopped_epoch = epoch
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.wait, self.stopped_epoch = state["wait"], state["stopped_epoch"]


def monitored(metrics: Mapping[str, Any], name: str, field: str) -> float:
    """The value of metric ``name`` in an epoch's ``metrics``; RunError naming
    ``field`` when the epoch has no such finite number."""
    value = metrics.get(name)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    known = ", ".join(k for k, v in metrics.items() if isinstance(v, (int, float)))
    raise RunError(
        f"{field}: {name!r} is not a metric of this run's epochs (they record "
        f"{known}); got {value!r}",
        hint="name a metric of metrics.jsonl, e.g. val_loss",
    )


def _better(value: float, best: float, mode: str, min_delta: float) -> bool:
    if mode == "max":
        return value > best + min_delta
    return value < best - min_delta


class Callbacks:
    """A run's callbacks, the user's then the built-in ones, called as one."""

    def __init__(self, config: ExperimentConfig, user: Iterable[Any]) -> None:
        self.user = list(user)
        stopping = config.training.early_stopping
        self.early_stopping = (
            None
            if stopping is None
            else EarlyStopping(
                stopping["monitor"],
                stopping.get("mode") or default_mode(stopping["monitor"]),
                stopping["patience"],
                stopping["min_delta"],
            )
        )

    @property
    def all(self) -> list[Any]:
        stopping = [self.early_stopping] if self.early_stopping else []
        return [*self.user, *stopping]

    def load(self, states: list[Any] | None) -> None:
        """Give each callback its state from the trainer state (resume)."""
        if not states:
            return
        for callback, state in zip(self.all, states):
            load = getattr(callback, "load_state_dict", None)
            if state is not None and callable(load):
                load(state)

    def states(self) -> list[Any]:
        """Each callback's ``state_dict()`` as JSON data (None without one); a
        state that is not JSON is a RunError naming the callback."""
        found = []
        for callback in self.all:
            method = getattr(callback, "state_dict", None)
            state = method() if callable(method) else None
            try:
                found.append(json.loads(json.dumps(state, allow_nan=False)))
            except (TypeError, ValueError) as exc:
                name = f"{type(callback).__module__}:{type(callback).__qualname__}"
                raise RunError(
                    f"callback {name}: state_dict() must return JSON data "
                    f"(dicts, lists, strings, finite numbers); {exc}"
                ) from exc
        return found

    def start(self, run: RunInfo) -> None:
        self._call("on_train_start", run)

    def epoch_end(self, epoch: int, metrics: Mapping[str, Any]) -> bool:
        """Every callback's ``on_epoch_end``; whether any asked to stop."""
        view = MappingProxyType(dict(metrics))
        answers = [method(epoch, view) for method in self._methods("on_epoch_end")]
        return any(answer is True for answer in answers)

    def end(self, run: RunInfo, status: str) -> None:
        self._call("on_train_end", run, status)

    def _methods(self, hook: str) -> list[Any]:
        found = [getattr(c, hook, None) for c in self.all]
        return [m for m in found if callable(m)]

    def _call(self, hook: str, *args: Any) -> None:
        for method in self._methods(hook):
            method(*args)
