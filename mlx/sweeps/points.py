"""Expand a sweep into points, each named by the hash of its resolved config.

A point's identity is the SHA-256 of its resolved experiment config in canonical form:
JSON with sorted keys, no spaces, and numbers normalised so that ``1`` and ``1.0`` are
the same; ``name``, ``description`` and ``output.*`` are left out, since they do not
change what a run computes. Grid points come in the order of the parameters'
cartesian product (the first parameter varies slowest). Random point ``i`` is drawn
from its own generator, seeded by ``(sweep seed, i, parameter path)``: re-expanding a
file gives the same points in the same order, and raising ``num_samples`` only
appends points.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import random
import warnings
from typing import Any, Mapping, Sequence

from mlx.config import ConfigIssue, ExperimentConfig, Override, load_config
from mlx.errors import ConfigError, ConfigWarning
from mlx.experiment.checks import check_runnable
from mlx.sweeps.spec import Parameter, SweepSpec

__all__ = [
    "IDENTITY_EXCLUDED",
    "Point",
    "canonical",
    "config_hash",
    "expand",
    "identity",
    "point_name",
    "show_parameter",
    "varied",
]

#: Top-level config fields that are not part of a point's identity.
IDENTITY_EXCLUDED = ("name", "description", "output")
_MAX_DRAWS = 1000  # random draws per sample before a space is called exhausted


@dataclasses.dataclass(frozen=True)
class Point:
    """One configuration of a sweep."""

    index: int
    hash: str
    parameters: Mapping[str, Any]  # dotted path -> value, in the file's order
    config: ExperimentConfig

    @property
    def short(self) -> str:
        return self.hash[:12]


def _normalise(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 2**63:
            return int(value)
        return value
    if isinstance(value, Mapping):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    return value


def canonical(value: Any) -> str:
    """``value`` as canonical JSON: sorted keys, no spaces, integral floats written
    as integers (``1.0`` -> ``1``), tuples as lists."""
    return json.dumps(
        _normalise(value), sort_keys=True, separators=(",", ":"), allow_nan=True
    )


def identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """A resolved config without the fields that are not part of its identity."""
    return {k: v for k, v in config.items() if k not in IDENTITY_EXCLUDED}


def config_hash(config: ExperimentConfig | Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of a resolved config's identity in canonical form."""
    data = config.to_dict() if isinstance(config, ExperimentConfig) else config
    return hashlib.sha256(canonical(identity(data)).encode("utf-8")).hexdigest()


def point_name(sweep: str, digest: str) -> str:
    """The experiment name of a point's run: ``<sweep>-<first 8 hex digits>``."""
    return f"{sweep[:90]}-{digest[:8]}"


def _draw(param: Parameter, seed: int, index: int) -> Any:
    rng = random.Random(f"mlx-sweep:{seed}:{index}:{param.path}")
    if param.values is not None:
        return param.values[
            min(int(rng.random() * len(param.values)), len(param.values) - 1)
        ]
    assert param.low is not None and param.high is not None
    u = rng.random()
    if param.log:
        x = math.exp(
            math.log(param.low) + u * (math.log(param.high) - math.log(param.low))
        )
    else:
        x = param.low + u * (param.high - param.low)
    if param.integer:
        if param.log:
            return int(min(max(round(x), param.low), param.high))
        return int(
            min(param.low + math.floor(u * (param.high - param.low + 1)), param.high)
        )
    return min(max(x, param.low), param.high)


def _assignments(spec: SweepSpec) -> list[dict[str, Any]]:
    if spec.method == "grid":
        combos = itertools.product(*(p.values or () for p in spec.parameters))
        return [{p.path: v for p, v in zip(spec.parameters, combo)} for combo in combos]
    assert spec.num_samples is not None
    return [
        {p.path: _draw(p, spec.seed, i) for p in spec.parameters}
        for i in range(spec.num_samples)
    ]


def show_parameter(value: Any) -> str:
    """A parameter's value as a point's description shows it: a string as it is,
    anything else as JSON."""
    return json.dumps(value) if not isinstance(value, str) else value


def expand(
    spec: SweepSpec, *, sweep_dir: str | None = None
) -> tuple[list[Point], list[int]]:
    """Every point of ``spec``, each config validated, and the indices of the
    assignments that duplicate an earlier point (same hash: skipped).

    ``sweep_dir`` is where the points' runs go (``output.directory``); the point
    configs are named :func:`point_name`. Raises ConfigError listing the problems
    of every invalid point, each located at its parameters in the sweep file.
    """
    points: list[Point] = []
    duplicates: list[int] = []
    seen: set[str] = set()
    problems: list[ConfigIssue] = []
    failed = 0
    seen_warnings: set[str] = set(spec.base_warnings)
    for index, assignment in enumerate(_assignments(spec)):
        where = ", ".join(f"{k}={show_parameter(v)}" for k, v in assignment.items())
        overrides: list[str | Override] = list(spec.overrides)
        overrides += [
            Override(path, value, f"{spec.location(path)}: point {index} ({where})")
            for path, value in assignment.items()
        ]
        # the name and directory are not part of the identity: set them at once
        extra: list[Override] = []
        if sweep_dir is not None:
            extra.append(Override("output.directory", sweep_dir, "the sweep directory"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConfigWarning)
            try:
                config = load_config(
                    spec.base, [*overrides, *extra], runnable=check_runnable
                )
            except ConfigError as exc:
                problems.extend(exc.errors)
                failed += 1
                continue
        for record in caught:
            text = str(record.message)
            if text not in seen_warnings:
                seen_warnings.add(text)
                warnings.warn(text, record.category, stacklevel=2)
        digest = config_hash(config)
        if digest in seen:
            duplicates.append(index)
            continue
        seen.add(digest)
        config = dataclasses.replace(config, name=point_name(spec.name, digest))
        points.append(Point(index, digest, dict(assignment), config))
    if problems:
        raise ConfigError(
            f"{failed} point(s) of sweep {spec.name!r} do not validate:\n"
            + "\n".join(str(p) for p in problems),
            errors=problems,
        )
    return points, duplicates


def varied(points: Sequence[Point]) -> list[str]:
    """The parameter paths whose value differs between the points."""
    paths: list[str] = []
    for point in points:
        for path in point.parameters:
            if path not in paths:
                paths.append(path)
    return [
        p for p in paths if len({canonical(pt.parameters.get(p)) for pt in points}) > 1
    ]
