"""Typed, immutable experiment configuration objects.

A configuration file is parsed and validated once, at the edge
(:func:`mlx.config.load_config`),
into these frozen dataclasses; everything downstream receives them, never raw dicts.
``params`` sections are read-only mappings with the schema's defaults filled in.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from mlx.config.issues import ConfigIssue

__all__ = [
    "SPLIT_FILE_KEYS",
    "DatasetConfig",
    "ExperimentConfig",
    "ModelConfig",
    "OutputConfig",
    "TrainingConfig",
    "freeze",
    "thaw",
]


def freeze(value: Any) -> Any:
    """Return a deeply immutable copy: dicts become read-only mappings, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Inverse of :func:`freeze`: plain dicts and lists, ready for JSON or YAML.

    A config built in Python may hold NumPy values: a NumPy scalar becomes the
    Python number (or bool, or string) it holds and an array its nested list, so
    that ``np.int64(2)`` epochs validate as ``2`` would (recognised by their
    ``dtype`` and ``tolist``, without importing NumPy).
    """
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    if hasattr(value, "dtype") and hasattr(value, "tolist"):
        return thaw(value.tolist())
    return value


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


def _optional() -> Any:
    """A field that stays out of :meth:`ExperimentConfig.to_dict` while None (not
    given), so a config recorded before it existed resolves as it did."""
    return dataclasses.field(default=None, metadata={"optional": True})


#: The keys of ``dataset.path`` given as a mapping of split name to file, in order.
SPLIT_FILE_KEYS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
    """``dataset`` section. ``path`` is absolute once resolved against the root:
    one file or folder, or a read-only mapping of split name (``train``, and
    optionally ``val``, ``test``: :data:`SPLIT_FILE_KEYS`) to one."""

    name: str
    path: str | Mapping[str, str] | None = None
    params: Mapping[str, Any] = dataclasses.field(default_factory=_empty)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """``model`` section."""

    name: str
    architecture: str | None = None
    params: Mapping[str, Any] = dataclasses.field(default_factory=_empty)


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """``training`` section, with the spec's defaults."""

    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 0.001
    optimizer: str = "adam"
    seed: int = 42
    params: Mapping[str, Any] = dataclasses.field(default_factory=_empty)
    device: str = "auto"
    precision: str = "32"
    #: ``[{class_path, params}]``, see mlx.experiment.callbacks
    callbacks: Sequence[Mapping[str, Any]] | None = _optional()
    #: ``{monitor, mode, patience, min_delta}``
    early_stopping: Mapping[str, Any] | None = _optional()


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    """``output`` section. ``directory`` is absolute once resolved against the root."""

    directory: str = "outputs"
    save_checkpoints: bool = True
    checkpoint_frequency: int = 1
    save_logs: bool = True
    params: Mapping[str, Any] = dataclasses.field(default_factory=_empty)


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """A whole, validated experiment.

    ``source`` is the file it came from, if any; ``warnings`` are the problems that
    did not stop validation (unknown keys, suspicious values), in file order. Neither
    takes part in equality or in :meth:`to_dict`.
    """

    name: str
    dataset: DatasetConfig
    model: ModelConfig
    description: str | None = None
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    output: OutputConfig = dataclasses.field(default_factory=OutputConfig)
    source: str | None = dataclasses.field(default=None, compare=False)
    warnings: tuple[ConfigIssue, ...] = dataclasses.field(
        default=(), compare=False, repr=False
    )

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved configuration, defaults included, as plain data."""
        return {
            "name": self.name,
            "description": self.description,
            "dataset": _section(self.dataset),
            "model": _section(self.model),
            "training": _section(self.training),
            "output": _section(self.output),
        }


def _section(section: Any) -> dict[str, Any]:
    # dataclasses.asdict deep-copies, which read-only mappings do not support
    return {
        f.name: thaw(getattr(section, f.name))
        for f in dataclasses.fields(section)
        if not (f.metadata.get("optional") and getattr(section, f.name) is None)
    }
