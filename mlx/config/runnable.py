"""What the config validator asks of the plan's "can this run here?" check.

The check itself lives above config, datasets and models
(:func:`mlx.experiment.checks.check_runnable`); the validator only knows its shape:
a :data:`RunnableCheck` takes the :class:`Sections` that validated and the document
(with its overrides, for locations) and returns :class:`RunnableIssues`, which the
validator files among its own. Without a check, a config is validated as a document
only.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Optional

from mlx.config.documents import Document, NodePath
from mlx.config.experiment import DatasetConfig, ExperimentConfig, ModelConfig
from mlx.config.issues import ConfigIssue

__all__ = ["RunnableCheck", "RunnableIssues", "Sections"]


@dataclasses.dataclass(frozen=True)
class Sections:
    """The parts of a config that the checks here read; None where that part did
    not validate (its checks are skipped: the schema's error says why)."""

    dataset: DatasetConfig | None = None
    model: ModelConfig | None = None
    device: str | None = None  # training.device
    precision: str | None = None  # training.precision

    @classmethod
    def of(cls, config: ExperimentConfig) -> Sections:
        """The sections of a whole, valid config."""
        training = config.training
        return cls(config.dataset, config.model, training.device, training.precision)


@dataclasses.dataclass(frozen=True)
class RunnableIssues:
    """What :func:`check_runnable` found.

    ``blocked``: the warning that the model cannot run on this installation, which
    belongs with the model section's issues (the validator files it there, so that
    issues without a position keep the order in which the sections are read);
    ``errors`` and ``warnings``: those of the checks between sections, in the order
    found.
    """

    blocked: tuple[ConfigIssue, ...] = ()
    errors: tuple[ConfigIssue, ...] = ()
    warnings: tuple[ConfigIssue, ...] = ()


#: ``check(sections, doc, overrides) -> RunnableIssues``.
RunnableCheck = Callable[
    [Sections, Document, Optional[Mapping[NodePath, str]]], RunnableIssues
]
