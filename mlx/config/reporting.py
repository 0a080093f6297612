"""Errors and warnings about one document, each located where the user wrote it.

:class:`IssueLog` is what every check in this package (and the sweep file's) writes
to: ``error(at, message)`` and ``warn(at, message)`` turn a node path into a
:class:`~mlx.config.ConfigIssue` with its ``file:line:column``, or with the
``--set KEY=VALUE`` override that set the value. :func:`in_file_order` sorts the
issues the way they are shown.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from mlx.config.documents import Document, NodePath, dotted
from mlx.config.issues import ConfigIssue
from mlx.utils.values import nearest

__all__ = ["IssueLog", "in_file_order"]


class IssueLog:
    """The errors and warnings found in ``doc``, in the order found.

    ``overrides`` maps each path set by an override to its label (``--set
    training.epochs=-3``): an issue at or below such a path is located at the
    override, not in the file.
    """

    def __init__(
        self, doc: Document, overrides: Mapping[NodePath, str] | None = None
    ) -> None:
        self.doc = doc
        self.overrides: Mapping[NodePath, str] = overrides or {}
        self.errors: list[ConfigIssue] = []
        self.warnings: list[ConfigIssue] = []

    def locate(self, path: NodePath, key: bool) -> tuple[str, int | None, int | None]:
        """``(file, line, column)`` of the value at ``path`` (of its key, with
        ``key``), else of its nearest ancestor that has a position."""
        for n in range(len(path), -1, -1):
            if path[:n] in self.overrides:
                return self.overrides[path[:n]], None, None
        marks = (self.doc.keys, self.doc.values) if key else (self.doc.values,)
        for table in marks:
            if path in table:
                return self.doc.source, table[path].line, table[path].column
        for n in range(len(path) - 1, -1, -1):
            if path[:n] in self.doc.values:
                mark = self.doc.values[path[:n]]
                return self.doc.source, mark.line, mark.column
        return self.doc.source, None, None

    def issue(
        self,
        at: NodePath,
        message: str,
        about: NodePath | None = None,
        *,
        key: bool = False,
    ) -> ConfigIssue:
        """An issue located at ``at`` about the field ``about`` (``at`` itself by
        default)."""
        file, line, column = self.locate(at, key)
        return ConfigIssue(file, line, column, dotted(about or at), message)

    def error(
        self,
        at: NodePath,
        message: str,
        about: NodePath | None = None,
        *,
        key: bool = False,
    ) -> None:
        """Record an error located at ``at`` (at its key, with ``key``)."""
        self.errors.append(self.issue(at, message, about, key=key))

    def warn(self, at: NodePath, message: str, *, key: bool = False) -> None:
        """Record a warning located at ``at`` (at its key, with ``key``)."""
        self.warnings.append(self.issue(at, message, key=key))

    def unknown_keys(
        self,
        path: NodePath,
        value: Mapping[str, Any],
        known: Iterable[str],
        *,
        fold_case: bool = True,
    ) -> None:
        """Warn about each key of ``value`` not in ``known``, suggesting the nearest
        known key (compared in lower case with ``fold_case``) or listing them."""
        known = list(known)
        for key in value:
            if key in known:
                continue
            child = (*path, key)
            word = str(key).lower() if fold_case else str(key)
            near = nearest(word, known, 0.5)
            advice = (
                f"did you mean {near}?" if near else "known keys: " + ", ".join(known)
            )
            self.warn(child, f"{dotted(child)}: unknown key; {advice}", key=True)


def in_file_order(issues: Iterable[ConfigIssue]) -> list[ConfigIssue]:
    """The file's issues by position, then those of overrides (and of data without
    positions) in the order found."""

    def position(issue: ConfigIssue) -> tuple[int, int, int]:
        if issue.line is None:
            return (1, 0, 0)
        return (0, issue.line, issue.column or 0)

    return sorted(issues, key=position)
