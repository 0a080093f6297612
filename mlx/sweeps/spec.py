"""Read and validate a sweep file: located errors, warnings and did-you-mean.

The file is read by the experiment configs' document loader, so the same limits and
``file:line:column`` positions apply; problems are :class:`~mlx.config.ConfigIssue`
objects raised together as one :class:`~mlx.errors.ConfigError`. A parameter's path is
checked against the experiment schema of the base config (its dataset's and model's
``params`` included), and the nearest known path is suggested for a typo.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

from mlx.config import ConfigIssue, ExperimentConfig, load_config
from mlx.config.documents import Document, NodePath, read_document
from mlx.config.fields import field_paths
from mlx.config.reporting import IssueLog
from mlx.config.rules import BAD, DIRECTORY_NAME, Bool, Choice, Float, Int
from mlx.datasets import describe
from mlx.errors import ConfigError, ConfigWarning
from mlx.experiment.checks import check_runnable
from mlx.utils.paths import unprintable
from mlx.utils.values import did_you_mean, show

__all__ = [
    "METHODS",
    "Parameter",
    "SweepSpec",
    "default_goal",
    "known_paths",
    "load_sweep",
]

METHODS = ("grid", "random")
_TOP_KEYS = (
    "name",
    "description",
    "base",
    "method",
    "parameters",
    "num_samples",
    "seed",
    "metric",
    "goal",
)
_PARAM_KEYS = ("values", "min", "max", "log", "integer")
# what `mlx run-experiment` records per epoch, by task
_METRICS = {
    "classification": ("val_accuracy", "val_loss", "train_loss"),
    "regression": ("val_r2", "val_loss", "train_loss"),
}
_MAX_POINTS = 100_000
# a near miss of a method is suggested from a ratio of 0.4 (difflib), as typed
_METHOD = Choice(*METHODS, cutoff=0.4, fold_case=False)
_NUM_SAMPLES = Int(1, _MAX_POINTS)
_SEED = Int(0)
_BOUND = Float()
_FLAG = Bool()
# fields that do not change what a run computes: not part of a point's identity
_NOT_SWEPT = ("name", "description", "output")


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One varied field: ``values`` (grid or random choice) or a ``[low, high]``
    range (random only), uniform or log-uniform, float or integer."""

    path: str
    values: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    def to_dict(self) -> dict[str, Any]:
        if self.values is not None:
            return {"values": list(self.values)}
        return {
            "min": self.low,
            "max": self.high,
            "log": self.log,
            "integer": self.integer,
        }


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file."""

    name: str
    source: str  # the file as the user named it
    path: Path  # the file, absolute
    text: str  # the file as given
    sha256: str  # of its bytes
    base: Path  # the base experiment config, absolute
    overrides: tuple[str, ...]  # --set, applied to the base
    method: str
    parameters: tuple[Parameter, ...]
    num_samples: int | None
    seed: int
    metric: str
    goal: str
    description: str | None
    base_config: ExperimentConfig
    document: Document = dataclasses.field(repr=False, compare=False)
    #: the warnings loading the base config gave (already shown): each point
    #: would repeat them
    base_warnings: frozenset[str] = dataclasses.field(
        default=frozenset(), repr=False, compare=False
    )

    def location(self, path: str) -> str:
        """``file:line:column`` of parameter ``path`` in the sweep file."""
        mark = self.document.keys.get(("parameters", path))
        if mark is None:
            return self.source
        return f"{self.source}:{mark.line}:{mark.column}"

    def definition(self) -> dict[str, Any]:
        """What decides the points, as plain data (compared on resume)."""
        return {
            "base": os.fspath(self.base),
            "overrides": list(self.overrides),
            "method": self.method,
            "parameters": {p.path: p.to_dict() for p in self.parameters},
            "num_samples": self.num_samples,
            "seed": self.seed,
            "metric": self.metric,
            "goal": self.goal,
        }


def default_goal(metric: str) -> str:
    """``min`` for losses and errors, ``max`` for scores."""
    words = ("loss", "mse", "rmse", "mae", "error")
    return "min" if any(w in metric for w in words) else "max"


def load_sweep(
    path: str | os.PathLike[str], overrides: Sequence[str] = ()
) -> SweepSpec:
    """Read and validate the sweep file at ``path``; ``overrides`` (``--set``) apply
    to the base config.

    Raises ConfigError listing every problem (sweep file and base config). Warnings
    are issued as :class:`~mlx.errors.ConfigWarning`.
    """
    source = os.fspath(path)
    doc = read_document(source)
    raw = doc.raw  # the bytes validated, not a second read of the file
    data: dict[str, Any] = doc.data
    check = IssueLog(doc)
    errors = check.errors
    check.errors.extend(doc.errors)
    check.unknown_keys((), data, _TOP_KEYS, fold_case=False)

    name = _name(check, data, Path(source))
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        check.error(("description",), "description must be a string or null")
    method = _METHOD.check(check, ("method",), data.get("method", "grid"))
    if method is BAD:
        method = None
    num_samples = _num_samples(check, data, method)
    seed = 0
    if "seed" in data:
        seed = _SEED.check(check, ("seed",), data["seed"])
        if seed is BAD:
            seed = 0
        elif method == "grid":
            check.warn(("seed",), "seed: ignored: a grid sweep draws nothing at random")

    base_path = _base(check, data, Path(source))
    base_config: ExperimentConfig | None = None
    base_warnings: set[str] = set()
    if base_path is not None:
        try:
            base_config = _load_base(base_path, overrides, base_warnings)
        except ConfigError as exc:
            errors.extend(exc.errors)
    parameters = _parameters(check, data, method, base_config)
    metric, goal = _metric(check, data, base_config)

    if not errors and method == "grid" and parameters:
        count = math.prod(len(p.values or ()) for p in parameters)
        if count > _MAX_POINTS:
            check.error(
                ("parameters",),
                f"parameters: the grid has {count} points, more than {_MAX_POINTS}",
            )
    for issue in sorted(check.warnings, key=_position):
        warnings.warn(str(issue), ConfigWarning, stacklevel=2)
    if errors or base_config is None or method is None or base_path is None:
        ordered = sorted(errors, key=lambda i: (i.file != source, *_position(i)))
        if not ordered:  # pragma: no cover - every failed branch records an error
            ordered = [ConfigIssue(source, None, None, "", "invalid sweep file")]
        raise ConfigError("\n".join(str(e) for e in ordered), errors=ordered)
    return SweepSpec(
        name=name,
        source=source,
        path=Path(source).resolve(),
        text=raw.decode("utf-8"),
        sha256=hashlib.sha256(raw).hexdigest(),
        base=base_path,
        overrides=tuple(overrides),
        method=method,
        parameters=tuple(parameters),
        num_samples=num_samples,
        seed=seed,
        metric=metric,
        goal=goal,
        description=description if isinstance(description, str) else None,
        base_config=base_config,
        document=doc,
        base_warnings=frozenset(base_warnings),
    )


def _position(issue: ConfigIssue) -> tuple[int, int]:
    return (issue.line or 0, issue.column or 0)


def _name(check: IssueLog, data: Mapping[str, Any], file: Path) -> str:
    if "name" not in data:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", file.stem).strip("-.") or "sweep"
        return stem[:100]
    name = DIRECTORY_NAME.check(check, ("name",), data["name"])
    return "sweep" if name is BAD else str(name)


def _num_samples(check: IssueLog, data: Mapping[str, Any], method: Any) -> int | None:
    if "num_samples" not in data:
        if method == "random":
            check.error((), "missing required field 'num_samples' (method: random)")
        return None
    value = data["num_samples"]
    if method == "grid":
        check.error(
            ("num_samples",),
            "num_samples: a grid sweep runs every combination; num_samples applies "
            "to method: random",
        )
        return None
    checked = _NUM_SAMPLES.check(check, ("num_samples",), value)
    return None if checked is BAD else int(checked)


def _base(check: IssueLog, data: Mapping[str, Any], file: Path) -> Path | None:
    if "base" not in data:
        check.error((), "missing required field 'base' (the experiment config to vary)")
        return None
    value = data["base"]
    if not isinstance(value, str) or not value.strip():
        check.error(("base",), f"base must be a config file path, got {show(value)}")
        return None
    problem = unprintable(value, "base: path")
    if problem is not None:
        check.error(("base",), problem)
        return None
    given = file.parent / Path(value).expanduser()
    try:
        resolved = given.resolve()
        if resolved.is_file():
            return resolved
        if resolved.is_dir():
            what = "is a directory"
        elif resolved.exists():
            what = "is not a regular file"
        elif given.is_symlink():
            what = "is a symbolic link that leads nowhere (or loops)"
        else:
            what = "does not exist"
    except (OSError, RuntimeError) as exc:  # RuntimeError: a loop before 3.13
        resolved = given.absolute()
        what = "is a symbolic link that leads nowhere (or loops)"
        if isinstance(exc, OSError):
            what = f"cannot be used: {exc.strerror or exc}"
    check.error(
        ("base",),
        f"base: the experiment config {value!r} {what} (resolved against the "
        f"sweep file: {resolved})",
    )
    return None


def _load_base(
    base: Path, overrides: Sequence[str], shown: set[str]
) -> ExperimentConfig:
    """The base config; its warnings are shown once here, and their texts added to
    ``shown`` (each point repeats them)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConfigWarning)
            return load_config(base, overrides, runnable=check_runnable)
    finally:
        for record in caught:
            shown.add(str(record.message))
            warnings.warn(record.message, record.category, stacklevel=3)


def _parameters(
    check: IssueLog,
    data: Mapping[str, Any],
    method: str | None,
    base: ExperimentConfig | None,
) -> list[Parameter]:
    if "parameters" not in data:
        check.error((), "missing required field 'parameters' (the fields to vary)")
        return []
    section = data["parameters"]
    at: NodePath = ("parameters",)
    if not isinstance(section, dict) or not section:
        check.error(
            at,
            "parameters must be a non-empty mapping of dotted config paths, e.g. "
            "training.learning_rate: {values: [0.01, 0.001]}, got "
            f"{show(section) if section != {} else 'an empty mapping'}",
        )
        return []
    known = known_paths(base) if base is not None else None
    found: list[Parameter] = []
    for key, spec in section.items():
        here: NodePath = (*at, key)
        path_ok = _check_path(check, here, str(key), known)
        param = _parameter(check, here, str(key), spec, method)
        if param is not None and path_ok:
            found.append(param)
    return found


def _check_path(
    check: IssueLog, here: NodePath, path: str, known: Mapping[str, bool] | None
) -> bool:
    if not path or any(not part for part in path.split(".")):
        check.error(here, f"parameters: {path!r} is not a dotted config path", key=True)
        return False
    first = path.split(".")[0]
    if first in _NOT_SWEPT:
        check.error(
            here,
            f"parameters.{path}: {first} does not change what a run computes (it "
            "is not part of a point's identity), so it cannot be swept",
            key=True,
        )
        return False
    if known is None:
        return True
    if path in known:
        return True
    parts = path.split(".")
    for n in range(len(parts) - 1, 0, -1):
        if known.get(".".join(parts[:n])) is True:  # a free-form section
            return True
    suggestion = did_you_mean(
        path, [p for p in known if not p.startswith(_NOT_SWEPT)], 0.6
    )
    check.error(
        here,
        f"parameters.{path}: no such field in the experiment schema{suggestion}",
        key=True,
    )
    return False


def _parameter(
    check: IssueLog, here: NodePath, path: str, spec: Any, method: str | None
) -> Parameter | None:
    label = f"parameters.{path}"
    if not isinstance(spec, dict):
        check.error(
            here,
            f"{label} must be a mapping such as {{values: [...]}}"
            + (" or {min: ..., max: ...}" if method == "random" else "")
            + f", got {show(spec)}",
        )
        return None
    check.unknown_keys(here, spec, _PARAM_KEYS, fold_case=False)
    has_values = "values" in spec
    has_range = "min" in spec or "max" in spec
    if has_values and has_range:
        check.error(here, f"{label}: give either values or min/max, not both")
        return None
    if has_values:
        return _values(check, here, path, spec)
    if not has_range:
        check.error(here, f"{label} needs values (a list) or a min/max range")
        return None
    if method == "grid":
        check.error(
            here,
            f"{label}: a min/max range needs method: random; a grid takes values",
        )
        return None
    return _range(check, here, path, spec)


def _values(
    check: IssueLog, here: NodePath, path: str, spec: Mapping[str, Any]
) -> Parameter | None:
    label = f"parameters.{path}"
    values = spec["values"]
    for flag in ("log", "integer"):
        if flag in spec:
            check.warn((*here, flag), f"{label}.{flag}: ignored with values")
    if not isinstance(values, list) or not values:
        shown = "an empty list" if values == [] else show(values)
        check.error(
            (*here, "values"),
            f"{label}.values must be a non-empty list, got {shown}",
        )
        return None
    return Parameter(path, values=tuple(values))


def _range(
    check: IssueLog, here: NodePath, path: str, spec: Mapping[str, Any]
) -> Parameter | None:
    label = f"parameters.{path}"
    ok = True
    bounds = {}
    for side in ("min", "max"):
        if side not in spec:
            check.error(here, f"{label}: a range needs both min and max")
            return None
        value = spec[side]
        if _BOUND.check(check, (*here, side), value) is BAD:
            ok = False
        bounds[side] = value
    flags = {}
    for flag in ("log", "integer"):
        value = spec.get(flag, False)
        if _FLAG.check(check, (*here, flag), value) is BAD:
            ok = False
        flags[flag] = value is True
    if not ok:
        return None
    low, high = bounds["min"], bounds["max"]
    if low > high:
        check.error(
            (*here, "min"),
            f"{label}: min ({low}) must not be greater than max ({high})",
        )
        return None
    if flags["integer"]:
        for side, value in (("min", low), ("max", high)):
            if float(value) != int(value):
                check.error(
                    (*here, side),
                    f"{label}.{side} must be an integer with integer: true, got "
                    f"{value}",
                )
                ok = False
    if flags["log"] and low <= 0:
        check.error(
            (*here, "min"), f"{label}.min must be > 0 with log: true, got {low}"
        )
        ok = False
    if not ok:
        return None
    return Parameter(
        path,
        low=float(low) if not flags["integer"] else int(low),
        high=float(high) if not flags["integer"] else int(high),
        log=flags["log"],
        integer=flags["integer"],
    )


def _metric(
    check: IssueLog, data: Mapping[str, Any], base: ExperimentConfig | None
) -> tuple[str, str]:
    metric = data.get("metric", "val_loss")
    if not isinstance(metric, str) or not metric:
        check.error(("metric",), f"metric must be a metric name, got {show(metric)}")
        metric = "val_loss"
    elif base is not None and "metric" in data:
        task = _task(base)
        known = _METRICS.get(task or "", tuple(sorted(set(sum(_METRICS.values(), ())))))
        if metric not in known:
            check.error(
                ("metric",),
                f"metric: {metric!r} is not recorded by a {task or 'run'}"
                + did_you_mean(metric, known, 0.5)
                + f" (runs record {', '.join(known)})",
            )
    goal = data.get("goal", default_goal(metric))
    if goal not in ("max", "min"):
        check.error(("goal",), f"goal must be 'max' or 'min', got {show(goal)}")
        goal = default_goal(metric)
    return metric, goal


def _task(base: ExperimentConfig) -> str | None:
    try:
        return describe(base.dataset).task
    except Exception:  # the points' validation reports a dataset problem
        return None


def known_paths(base: ExperimentConfig) -> dict[str, bool]:
    """Every dotted path of the experiment schema for ``base``'s dataset and model
    (sections included) -> whether it is a free-form section, whose keys are open."""
    return field_paths(base.dataset.name, base.model.name)
