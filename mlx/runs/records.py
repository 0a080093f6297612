"""What a run recorded of its inputs: ``data.json`` (the data record) and its config.

A run records the fingerprint of every split it was trained with, the data's task,
its preprocessing and the dtype its features were loaded in. Resume and eval rebuild
the data from the run's config and compare it with this record
(:func:`check_data_record`), so neither ever trains on or scores other data than the
run saw. Records made by older versions (``fingerprint_version`` 1: 256 sampled rows)
are still read and compared the way they were made.

:func:`stored_config` reads the run's resolved ``config.yaml`` back, validated
again, which is where resume and eval rebuild the data from.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from mlx.config import ExperimentConfig, parse_config
from mlx.config.runnable import RunnableCheck
from mlx.datasets.fingerprint import (
    FINGERPRINT_VERSION,
    sampled_fingerprint,
    split_fingerprint,
)
from mlx.datasets.splits import SPLIT_RULE, Splits
from mlx.errors import RunError
from mlx.models import uses_torch
from mlx.runs.store import RunDir
from mlx.utils.atomic import write_json_atomic
from mlx.utils.safe_io import DOCUMENT_LIMIT, check_inside, read_json_guarded

__all__ = [
    "SPLIT_NAMES",
    "check_data_record",
    "check_record_fields",
    "data_record",
    "data_task",
    "feature_dtype",
    "fingerprint_version",
    "record_problem",
    "recorded_task",
    "split_rule",
    "stored_config",
    "stored_record",
    "write_data_record",
]

#: the splits a run records, in the order it records them
SPLIT_NAMES = ("train", "val", "test")


def stored_config(
    run: RunDir,
    overrides: Sequence[str] = (),
    *,
    runnable: RunnableCheck | None = None,
) -> ExperimentConfig:
    """The run's resolved ``config.yaml`` (with ``overrides``), validated again
    (with ``runnable``, also whether it can run here: see mlx.config.load_config).

    Its paths are absolute already. They are checked against the run's own output
    directory rather than the current repository root, so a run can be resumed or
    evaluated from any working directory.
    """
    data = run.read_config()
    try:
        root = data["output"]["directory"]
    except (KeyError, TypeError):
        raise RunError(f"{run.config_path} has no output.directory") from None
    return parse_config(
        data,
        source=str(run.config_path),
        overrides=overrides,
        root=root,
        runnable=runnable,
        warn=False,  # shown when the run was made (design/stored-config-warnings.md)
    )


def feature_dtype(
    config: ExperimentConfig, run: RunDir | None = None, *, torch: bool | None = None
) -> str:
    """The dtype to load a run's features in: float32 for a float32 MLP, so its
    data is never held in float64 as well; for an existing ``run``, the dtype its
    ``data.json`` recorded (float64 when it predates the record), so the data it
    rebuilds matches the fingerprints.

    ``torch`` says whether the model runs on PyTorch, when the caller decided that
    already; None asks :func:`mlx.models.uses_torch`.
    """
    if run is not None:
        try:
            stored = _read_json(run)
            return str(stored["preprocessing"]["feature_dtype"])
        except (RunError, KeyError, TypeError):
            return "float64"  # check_data_record reports a missing or corrupt file
    if config.model.name == "mlp" and config.model.params.get("dtype") == "float32":
        return "float32"
    if torch is None:
        torch = uses_torch(config.model.name, config.model.params)
    if torch:
        return "float32"  # what torch models compute in
    return "float64"


def data_task(model_task: str | None, run: RunDir | None = None) -> str | None:
    """The task a run's data is read for: the model's (``model_task``; None for a
    model that does not say, whose data's labels then decide).

    For an existing ``run`` recorded before fingerprint version 2 (when a custom
    dataset's task was inferred from its labels alone) ``None``, so its data is
    rebuilt as it was recorded.
    """
    if run is not None and fingerprint_version(stored_record(run)) < 2:
        return None
    return model_task


def split_rule(run: RunDir | None = None) -> int | None:
    """The split rule to rebuild a run's data with: None (the current one) for a
    new run; for an existing ``run``, the rule its ``data.json`` recorded
    (``preprocessing.split.rule``), 1 when it recorded none (the split was seeded
    by ``training.seed``, before ``split_seed``), so its data is rebuilt as it was
    recorded."""
    if run is None:
        return None
    try:
        stored = stored_record(run, check=False)
    except RunError:
        return None  # check_data_record reports the file
    if record_problem(stored):
        return None
    split = stored.get("preprocessing", {}).get("split")
    rule = split.get("rule", 1) if isinstance(split, dict) else 1
    return int(rule)


def data_record(
    splits: Splits, names: Sequence[str] = SPLIT_NAMES, version: int = 0
) -> dict[str, Any]:
    """The fingerprint of the named splits, to notice when eval or resume would see
    other data: SHA-256 over every byte of each split (``version`` 2, the default),
    or of 256 sampled rows (``version`` 1, runs recorded before)."""
    version = version or FINGERPRINT_VERSION
    digest = split_fingerprint if version >= 2 else sampled_fingerprint
    record: dict[str, Any] = {
        "fingerprint_version": version,
        "task": splits.task,
        "n_features": splits.n_features,
        "n_classes": splits.n_classes,
        "preprocessing": splits.preprocessing,
    }
    shape = getattr(splits, "image_shape", None)
    # (C, H, W) of an image set's rows, for models that take images; not compared
    # on eval or resume (the split fingerprints cover the data)
    record["image_shape"] = None if shape is None else [int(n) for n in shape]
    for name in names:
        X, y = getattr(splits, name)
        record[name] = {"shape": list(X.shape), "sha256": digest(X, y)}
    return record


def write_data_record(run: RunDir, splits: Splits) -> None:
    """Write the run's ``data.json`` (never through a link out of the run)."""
    write_json_atomic(check_inside(run.path, run.data_path), data_record(splits))


def stored_record(run: RunDir, *, check: bool = True) -> Any:
    """The run's ``data.json``; RunError naming the file (and, with ``check``, the
    field) when it is missing, unreadable or corrupt."""
    try:
        stored = _read_json(run)
    except RunError as exc:
        raise RunError(f"{run.data_path} is missing or corrupt ({exc})") from exc
    if check:
        check_record_fields(run, stored)
    return stored


def recorded_task(run: RunDir) -> str | None:
    """The task ``data.json`` recorded for the run's data, None if unreadable (the
    data check reports that); RunError naming the field when one is corrupt."""
    try:
        stored = stored_record(run, check=False)
    except RunError:
        return None
    check_record_fields(run, stored)
    task = stored.get("task")
    return task if isinstance(task, str) else None


def check_record_fields(run: RunDir, stored: Any) -> None:
    """RunError naming ``data.json`` and the field unless ``stored`` is sound."""
    problem = record_problem(stored)
    if problem:
        raise RunError(
            f"{run.data_path} is corrupt: {problem}",
            hint="data.json was edited or damaged, so which data the run was "
            "trained with is unknown",
        )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def record_problem(stored: Any) -> str | None:
    """What is wrong with the fields of a ``data.json`` that eval and resume read;
    None when they are sound. Unknown fields are ignored; ``fingerprint_version``
    is checked by :func:`check_data_record`, which names it."""
    if not isinstance(stored, dict):
        return f"it must hold a JSON object; got {_short(stored)}"
    task = stored.get("task")
    if task is not None and task not in ("classification", "regression"):
        return f"'task' must be 'classification' or 'regression'; got {_short(task)}"
    preprocessing = stored.get("preprocessing")
    if preprocessing is not None:
        problem = _preprocessing_problem(preprocessing)
        if problem:
            return problem
    for name in SPLIT_NAMES:
        split = stored.get(name)
        if split is None:
            continue
        shape = split.get("shape") if isinstance(split, dict) else None
        digest = split.get("sha256") if isinstance(split, dict) else None
        if not (
            isinstance(shape, list)
            and all(type(n) is int and n >= 0 for n in shape)
            and isinstance(digest, str)
        ):
            return (
                f'{name!r} must be a JSON object {{"shape": [integers >= 0], '
                f'"sha256": text}}; got {_short(split)}'
            )
    return None


def _preprocessing_problem(preprocessing: Any) -> str | None:
    """What is wrong with a record's ``preprocessing``, or None."""
    if not isinstance(preprocessing, dict):
        return f"'preprocessing' must be a JSON object; got {_short(preprocessing)}"
    labels = preprocessing.get("labels")
    if labels is not None and not (
        isinstance(labels, dict) and isinstance(labels.get("classes"), list)
    ):
        return (
            "'preprocessing.labels' must be a JSON object {\"classes\": [...]}; "
            f"got {_short(labels)}"
        )
    split = preprocessing.get("split")
    rule = split.get("rule", 1) if isinstance(split, dict) else 1
    if type(rule) is not int or not 1 <= rule <= SPLIT_RULE:
        return (
            f"'preprocessing.split.rule' must be an integer from 1 to {SPLIT_RULE}; "
            f"got {_short(rule)} (a newer mlx, or an edit)"
        )
    dtype = preprocessing.get("feature_dtype")
    if dtype is not None and dtype not in ("float64", "float32"):
        return (
            "'preprocessing.feature_dtype' must be 'float64' or 'float32'; got "
            f"{_short(dtype)}"
        )
    return None


def fingerprint_version(stored: Any) -> int:
    """The fingerprint version of a ``data.json``: 1 when it has none (older runs)."""
    if not isinstance(stored, dict):
        return FINGERPRINT_VERSION  # check_data_record reports the file
    version = stored.get("fingerprint_version", 1)
    if type(version) is not int or not 1 <= version <= FINGERPRINT_VERSION:
        return FINGERPRINT_VERSION
    return version


def check_data_record(
    run: RunDir, splits: Splits, names: Sequence[str] = SPLIT_NAMES
) -> None:
    """RunError unless ``splits`` still match what the run recorded in data.json,
    compared the way the record was made (its ``fingerprint_version``)."""
    stored = stored_record(run)
    version = stored.get("fingerprint_version", 1)
    if type(version) is not int or not 1 <= version <= FINGERPRINT_VERSION:
        raise RunError(
            f"{run.data_path}: fingerprint_version {version!r} is not one this mlx "
            f"knows (1 to {FINGERPRINT_VERSION})",
            hint="the run was recorded by a newer mlx, or data.json was edited",
        )
    # only the splits asked about are hashed: eval checks just the one it scores
    current = json.loads(json.dumps(data_record(splits, names, version)))
    for name in names:
        _check_split(run, name, stored.get(name), current[name], version)
    # classes are hashed as their indices: a relabelled column (1 -> 4, 2 -> 9, or
    # other names in the same order) keeps every index, so the labels are compared
    labels_before = _recorded_labels(stored)
    labels_now = _recorded_labels(current)
    if labels_before is not None and labels_before != labels_now:
        raise RunError(
            f"the data rebuilt for run {run.run_id} differs from the data it was "
            f"trained with: its classes were {_short_list(labels_before)}, now "
            f"{_short_list(labels_now)}",
            hint="the dataset files changed since the run began; using them would "
            "train or score other data",
        )


def _check_split(
    run: RunDir, name: str, before: Any, now: Mapping[str, Any], version: int
) -> None:
    """RunError unless split ``name`` rebuilt (``now``) is the one recorded."""
    if before == now:
        return
    if not isinstance(before, dict) or before.get("shape") != now["shape"]:
        shown = before.get("shape") if isinstance(before, dict) else before
        detail = f"its shape was {shown}, now {now['shape']}"
    else:
        method = (
            "SHA-256 of every byte of X and y"
            if version >= 2
            else "SHA-256 of 256 sampled rows and the labels, as recorded by older mlx"
        )
        detail = (
            f"its contents changed ({method}: recorded "
            f"{str(before.get('sha256'))[:16]}..., now {now['sha256'][:16]}...)"
        )
    raise RunError(
        f"the {name} split rebuilt for run {run.run_id} differs from the one "
        f"it was trained with: {detail}",
        hint="the dataset files or the seed changed since the run began; "
        "using it would train or score other data",
    )


def _recorded_labels(record: Mapping[str, Any]) -> Any:
    """The class labels a data record holds (``preprocessing.labels.classes``)."""
    preprocessing = record.get("preprocessing")
    labels = preprocessing.get("labels") if isinstance(preprocessing, dict) else None
    return labels.get("classes") if isinstance(labels, dict) else None


def _short_list(values: Any, limit: int = 8) -> str:
    if not isinstance(values, list):
        return "none"
    shown = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values[:limit])
    more = f", ... ({len(values)} in all)" if len(values) > limit else ""
    return f"[{shown}{more}]"


def _read_json(run: RunDir) -> Any:
    """The run's ``data.json``, through the size and type guard of
    :mod:`mlx.utils.safe_io` (RunError when it is missing or corrupt)."""
    path = run.data_path
    return read_json_guarded(path, DOCUMENT_LIMIT, path.name, error=RunError)
