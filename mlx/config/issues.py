"""One problem found in a configuration, with the place it was found."""

from __future__ import annotations

import dataclasses

__all__ = ["ConfigIssue"]


@dataclasses.dataclass(frozen=True)
class ConfigIssue:
    """An error or warning about one config field.

    ``file`` is the config file as the user named it (or ``<dict>``, or the
    ``--set KEY=VALUE`` override that produced the value); ``line`` and ``column``
    are 1-based and ``None`` where unknown. ``path`` is the dotted field path
    (``training.epochs``, ``model.params.layer_sizes[0]``; empty for the whole
    file) and ``message`` is the complete sentence, path included, so that
    ``str(issue)`` reads ``exp.yaml:14:13: training.epochs must be an integer >= 1,
    got -3``.
    """

    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    @property
    def location(self) -> str:
        """``file:line:column``, leaving out the parts that are unknown."""
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"
