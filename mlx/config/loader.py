"""Load, override and validate experiment configurations.

>>> config = load_config("examples/quickstart.yaml", ["training.epochs=3"])
>>> config.training.epochs
3
"""

from __future__ import annotations

import copy
import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Union

from mlx.config.documents import Document, NodePath, dotted, parse_value, read_document
from mlx.config.experiment import ExperimentConfig, thaw
from mlx.config.issues import ConfigIssue
from mlx.config.runnable import RunnableCheck
from mlx.config.schema import validate
from mlx.errors import ConfigError, ConfigWarning
from mlx.utils.paths import repository_root

__all__ = [
    "DEFAULT_SOURCE",
    "Override",
    "default_config",
    "issue_warnings",
    "load_config",
    "parse_config",
]

DEFAULT_SOURCE = "<built-in default>"


@dataclasses.dataclass(frozen=True)
class Override:
    """Set the field at dotted ``key`` to ``value`` (already parsed).

    ``label`` is where errors about the value point, e.g.
    ``--set training.epochs=-3``.
    """

    key: str
    value: Any
    label: str

    @classmethod
    def parse(cls, text: str) -> Override:
        """``"training.epochs=5"`` -> ``Override("training.epochs", 5, ...)``.

        The value is read as a YAML scalar or flow collection (``[20, 10, 1]``,
        ``{a: 1}``), safely; ``KEY=`` sets null.
        """
        label = f"--set {text}"
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            issue = ConfigIssue(label, None, None, "", "expected KEY=VALUE")
            raise ConfigError(str(issue), errors=[issue])
        return cls(key.strip(), parse_value(raw, label), label)


OverrideLike = Union[str, Override]


def load_config(
    path: str | os.PathLike[str],
    overrides: Iterable[OverrideLike] = (),
    *,
    root: str | os.PathLike[str] | None = None,
    runnable: RunnableCheck | None = None,
) -> ExperimentConfig:
    """Read, override and validate the JSON/YAML experiment config at ``path``.

    Parameters
    ----------
    path : str or path
        A ``.json``, ``.yaml`` or ``.yml`` file.
    overrides : iterable of str or Override
        ``"dotted.key=value"`` strings (as given to ``--set``), applied in order.
    root : str or path, optional
        Where relative paths resolve; defaults to
        :func:`mlx.utils.paths.repository_root`.
    runnable : callable, optional
        Also ask whether the config can run here (backend installed, device,
        dataset shape), e.g. :func:`mlx.experiment.checks.check_runnable`, which
        every command and ``mlx.run_experiment`` pass; without it the file is
        validated as a document only.

    Raises
    ------
    ConfigError
        With ``.errors`` listing every problem of the file and the overrides.

    Warnings are issued as :class:`~mlx.errors.ConfigWarning` and kept on the
    result's ``warnings``.
    """
    return _finish(read_document(os.fspath(path)), overrides, root, runnable)


def parse_config(
    data: Mapping[str, Any],
    *,
    source: str = "<dict>",
    overrides: Iterable[OverrideLike] = (),
    root: str | os.PathLike[str] | None = None,
    runnable: RunnableCheck | None = None,
    warn: bool = True,
) -> ExperimentConfig:
    """Validate a config built in Python, exactly like a file's content.

    ``source`` names it in messages; there are no line numbers. ``runnable`` as for
    :func:`load_config`. With ``warn`` false the warnings are kept on the result's
    ``warnings`` but not issued: a run's stored config is read that way, its
    warnings having been shown when the run was made
    (docs/design/stored-config-warnings.md). Errors are raised either way.
    """
    if not isinstance(data, Mapping):
        issue = ConfigIssue(
            source,
            None,
            None,
            "",
            f"config must be a mapping, got {type(data).__name__}",
        )
        raise ConfigError(str(issue), errors=[issue])
    return _finish(Document(source, thaw(data)), overrides, root, runnable, warn)


def default_config(
    name: str,
    *,
    overrides: Iterable[OverrideLike] = (),
    root: str | os.PathLike[str] | None = None,
    runnable: RunnableCheck | None = None,
) -> ExperimentConfig:
    """The built-in experiment run by ``mlx run-experiment NAME`` without a config.

    Synthetic classification (1000 samples, 20 features, 3 classes, seed 0) with an
    MLP ``[20, 32, 3]`` and softmax output, trained by Adam (lr 0.01) for 5 epochs
    with batches of 32.
    """
    data = {
        "name": name,
        "description": "Built-in default: synthetic classification with an MLP",
        "dataset": {
            "name": "synthetic_classification",
            "params": {"n_samples": 1000, "n_features": 20, "n_classes": 3, "seed": 0},
        },
        "model": {
            "name": "mlp",
            "params": {"layer_sizes": [20, 32, 3], "output_activation": "softmax"},
        },
        "training": {
            "epochs": 5,
            "batch_size": 32,
            "learning_rate": 0.01,
            "optimizer": "adam",
        },
    }
    return _finish(Document(DEFAULT_SOURCE, data), overrides, root, runnable)


def _finish(
    doc: Document,
    overrides: Iterable[OverrideLike],
    root: str | os.PathLike[str] | None,
    runnable: RunnableCheck | None = None,
    warn: bool = True,
) -> ExperimentConfig:
    from mlx.utils.arguments import check_strings

    base = Path(root).resolve() if root is not None else repository_root()
    items = check_strings(
        "load_config",
        "overrides",
        () if overrides is None else overrides,
        "'KEY=VALUE' string",
        allow=(Override,),
    )
    located = _apply_overrides(doc, [_as_override(o) for o in items])
    config, errors, found = validate(doc, located, base, runnable)
    if warn:
        # stacklevel: _finish -> load_config/parse_config -> the caller
        issue_warnings(found, stacklevel=3)
    if errors or config is None:
        raise ConfigError("\n".join(str(e) for e in errors), errors=errors)
    return config


def issue_warnings(issues: Iterable[ConfigIssue], *, stacklevel: int = 1) -> None:
    """Issue each of ``issues`` as a :class:`~mlx.errors.ConfigWarning`, e.g. those
    of a config read with ``warn=False`` that the caller decides to show after all.

    ``stacklevel`` as for :func:`warnings.warn` called in the caller's place.
    """
    for issue in issues:
        warnings.warn(str(issue), ConfigWarning, stacklevel=stacklevel + 1)


def _as_override(item: OverrideLike) -> Override:
    if isinstance(item, Override):
        return item
    if isinstance(item, str):
        return Override.parse(item)
    raise TypeError(f"overrides must be 'KEY=VALUE' strings, got {item!r}")


def _apply_overrides(doc: Document, overrides: list[Override]) -> dict[NodePath, str]:
    """Set each override in ``doc.data``; return where each set path came from."""
    located: dict[NodePath, str] = {}
    if not overrides:
        return located
    doc.data = copy.deepcopy(doc.data)
    problems: list[ConfigIssue] = []
    for override in overrides:
        parts = override.key.split(".")
        if any(not part for part in parts):
            problems.append(
                ConfigIssue(
                    override.label, None, None, override.key, "empty part in the key"
                )
            )
            continue
        node = doc.data
        for depth, part in enumerate(parts[:-1]):
            here = tuple(parts[: depth + 1])
            if node.get(part) is None:
                node[part] = {}
                located.setdefault(here, override.label)
            elif not isinstance(node[part], dict):
                problems.append(
                    ConfigIssue(
                        override.label,
                        None,
                        None,
                        dotted(here),
                        f"cannot set {override.key}: {dotted(here)} is not a mapping",
                    )
                )
                break
            node = node[part]
        else:
            node[parts[-1]] = copy.deepcopy(override.value)
            located[tuple(parts)] = override.label
    if problems:
        raise ConfigError("\n".join(str(p) for p in problems), errors=problems)
    return located
