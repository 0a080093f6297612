"""The experiment schema as tables: every field of every section with its rule and
default.

A section reads like the reference: ``"epochs": Field(Int(1), 10)`` is an integer
>= 1, 10 when not given. The dataset's and model's ``params`` depend on their
``name`` (:data:`DATASET_FIELDS`, :data:`MODEL_FIELDS`); :func:`field_paths` lists
every dotted path a config may set for a given dataset and model. The checks that
span fields are in :mod:`mlx.config.schema`.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from mlx.config.names import IMAGE_MODEL_FAMILIES
from mlx.config.rules import (
    ABSENT,
    BAD,
    DIRECTORY_NAME,
    REQUIRED,
    Betas,
    Bool,
    Choice,
    Field,
    Float,
    FreeMapping,
    Int,
    IntList,
    MappingList,
    Pattern,
    Rule,
    Section,
    Str,
    absent,
    optional,
)
from mlx.utils.values import is_int

__all__ = [
    "DATASET_FIELDS",
    "IMAGE_CHANNELS",
    "MODEL_FIELDS",
    "NAME",
    "NEEDS_PATH",
    "OPTIMIZERS",
    "OUTPUT",
    "SYNTHETIC",
    "TOP_KEYS",
    "TRAINING",
    "default_mode",
    "field_paths",
    "split_problems",
]

#: Datasets generated in memory, not read from files.
SYNTHETIC = ("synthetic_regression", "synthetic_classification")
#: Datasets read from files at dataset.path.
NEEDS_PATH = ("custom", "imagenet")
_OFFICIAL_TEST_SPLIT = ("mnist", "cifar10", "cifar100")
_CLASS_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")

# Bounds where a value far below the 64-bit limit already means an absurd
# allocation (a 10^12-class head, a 10^6-pixel square image): refused with the field
# named instead of a MemoryError inside torch (docs/design/input-ranges.md).
MAX_IMAGE_SIZE = 4096
MAX_CLASSES = 1_000_000
MAX_CHANNELS = 1024
_SEED = Field(Int(0, nullable=True), None)
_SPLITS = {
    "validation_split": Field(Float(0, 1, hi_open=True), 0.1),
    "test_split": Field(Float(0, 1, hi_open=True), 0.1),
}
_STANDARDIZE = {"standardize": Field(Bool(), False)}
# Which rows go to which split (docs/design/splits.md). Absent when not given, so the
# resolved config of a run recorded before they existed (and its fingerprint) is
# unchanged; the loader applies their defaults (split_seed 0, stratify for
# classification).
_SPLIT_CONTROL = {
    "split_seed": Field(Int(0), absent),
    "stratify": Field(Bool(), absent),
    "folds": Field(Int(2), absent),
    "fold": Field(Int(0), absent),
}
_COLUMNS = {
    "group_column": Field(Str(), absent),
    "id_column": Field(Str(), absent),
}


def _same_as_n_features(section: Mapping[str, Any]) -> Any:
    return section.get("n_features", BAD)


_SYNTHETIC_FIELDS = {
    "n_samples": Field(Int(1), 1000),
    "n_features": Field(Int(1), 10),
    "n_informative": Field(Int(1), _same_as_n_features),
    "seed": _SEED,
    **_SPLITS,
    **_SPLIT_CONTROL,
    **_STANDARDIZE,
}
_IMAGE_SET_FIELDS = {
    "download": Field(Bool(), False),
    "normalize": Field(Bool(), True),
    "validation_split": _SPLITS["validation_split"],
    **_SPLIT_CONTROL,
    # training batches only; see mlx.datasets.augment
    "augmentation": Field(Bool(), False),
}
DATASET_FIELDS: Mapping[str, Mapping[str, Field]] = {
    "synthetic_regression": {
        **_SYNTHETIC_FIELDS,
        "noise_std": Field(Float(0), 0.1),
    },
    "synthetic_classification": {
        **_SYNTHETIC_FIELDS,
        "n_classes": Field(Int(2), 2),
        "class_sep": Field(Float(0, lo_open=True), 1.0),
    },
    **{
        name: {
            **_IMAGE_SET_FIELDS,
            "test_split": Field(
                None, ignored=f"ignored: {name} has an official test split"
            ),
        }
        for name in _OFFICIAL_TEST_SPLIT
    },
    "imagenet": {
        "image_size": Field(Int(8, MAX_IMAGE_SIZE), 64),
        "augmentation": _IMAGE_SET_FIELDS["augmentation"],
        **_SPLITS,
        **_SPLIT_CONTROL,
    },
    "custom": {
        "target": Field(Str(nullable=True), None),
        "task": Field(Choice("classification", "regression", nullable=True), None),
        "allow_nan": Field(Bool(), False),
        **_SPLITS,
        **_SPLIT_CONTROL,
        **_COLUMNS,
        **_STANDARDIZE,
    },
}

_OPTIMIZER_PARAMS = {
    "momentum": Field(Float(0)),
    "nesterov": Field(Bool()),
    "dampening": Field(Float(0)),
    "betas": Field(Betas()),
    "eps": Field(Float(0, lo_open=True)),
    "weight_decay": Field(Float(0)),
    "alpha": Field(Float(0, 1, hi_open=True)),
    "centered": Field(Bool()),
}
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")
IMAGE_CHANNELS = {"mnist": 1, "cifar10": 3, "cifar100": 3, "imagenet": 3}
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,3})?)$")


class _Precision(Choice):
    """ "32", "bf16-mixed" or "16-mixed"; a bare 32 (YAML reads it as a number)
    means "32"."""

    def accepts(self, value: Any) -> bool:
        return super().accepts(value) or (is_int(value) and value == 32)

    def normalize(self, value: Any) -> Any:
        return str(value)


_OPTIMIZER_CONFIG = Section(
    optional(
        {
            "optimizer_type": Field(Choice("sgd", "adam", "adamw", "rmsprop")),
            "learning_rate": Field(Float(0, lo_open=True)),
            **_OPTIMIZER_PARAMS,
        }
    )
)
_IMAGE_MODEL = Section(
    optional(
        {
            "num_classes": Field(Int(1, MAX_CLASSES)),
            "pretrained": Field(Bool()),
            "dropout": Field(Float(0, 1, hi_open=True)),
            "in_channels": Field(Int(1, MAX_CHANNELS)),
        }
    )
)

_CLIP = {
    "gradient_clip": Field(Float(0, lo_open=True, nullable=True), 10.0),
    "weight_clip": Field(Float(0, lo_open=True, nullable=True), 10.0),
    "activation_clip": Field(Float(0, lo_open=True, nullable=True), 50.0),
}
MODEL_FIELDS: Mapping[str, Section] = {
    "linear_regression": Section(
        {
            "seed": _SEED,
            "use_gradient_descent": Field(Bool(), False),
            "l2_regularization": Field(Float(0), 0.0),
            "optimizer_config": Field(_OPTIMIZER_CONFIG, {}),
        }
    ),
    "mlp": Section(
        {
            "layer_sizes": Field(IntList(2, 1), REQUIRED),
            "activation": Field(Choice("relu", "tanh", "sigmoid"), "relu"),
            "output_activation": Field(
                Choice("sigmoid", "softmax", nullable=True), None
            ),
            "seed": _SEED,
            "optimizer_config": Field(_OPTIMIZER_CONFIG, {}),
            **_CLIP,
            "dtype": Field(Choice("float64", "float32"), "float64"),
        }
    ),
    "custom": Section(
        {
            "class_path": Field(
                Pattern(_CLASS_PATH, "of the form 'package.module:ClassName'"),
                absent,
            )
        },
        free=True,
    ),
    **{
        name: _IMAGE_MODEL
        for family, variants in IMAGE_MODEL_FAMILIES.items()
        for name in (family, *variants)
    },
}

#: Metrics where higher is better (``val_accuracy``, ``val_r2``): a monitor of one
#: defaults to mode ``max``; any other (a loss, an error) to ``min``.
_HIGHER_IS_BETTER = re.compile(
    r"(accuracy|acc|r2|f\d*|auc|auroc|precision|recall|iou|dice|map|kappa|mcc)$"
)
_MONITOR = Pattern(
    re.compile(r"^(val|train)_\w+$"),
    "a metric of metrics.jsonl such as 'val_loss' or 'val_accuracy'",
)


def default_mode(metric: Any) -> Any:
    """``max`` for an accuracy-like metric (``val_accuracy``, ``val_r2``,
    ``val_f1``), ``min`` for any other (a loss); absent when ``metric`` is."""
    if not isinstance(metric, str):
        return ABSENT
    name = metric.split("_", 1)[-1].lower()
    return "max" if _HIGHER_IS_BETTER.search(name) else "min"


_MODE = Choice("min", "max")
_CALLBACK = Section(
    {
        "class_path": Field(
            Pattern(_CLASS_PATH, "of the form 'package.module:ClassName'"), REQUIRED
        ),
        "params": Field(FreeMapping(), {}),
    }
)
_EARLY_STOPPING = Section(
    {
        "monitor": Field(_MONITOR, "val_loss"),
        "mode": Field(_MODE, lambda s: default_mode(s.get("monitor"))),
        "patience": Field(Int(0), 5),
        "min_delta": Field(Float(0), 0.0),
    }
)
TRAINING = Section(
    {
        "epochs": Field(Int(1), 10),
        "batch_size": Field(Int(1), 32),
        "learning_rate": Field(Float(0, lo_open=True), 0.001),
        "optimizer": Field(Choice(*OPTIMIZERS), "adam"),
        "seed": Field(Int(0), 42),
        "params": Field(
            Section(
                optional(
                    {
                        **_OPTIMIZER_PARAMS,
                        "warmup_epochs": Field(Int(0)),
                        "lr_schedule": Field(Choice("constant", "step", "cosine")),
                        "step_size": Field(Int(1)),
                        "gamma": Field(Float(0, lo_open=True)),
                        "grad_clip_norm": Field(Float(0, lo_open=True, nullable=True)),
                    }
                )
            ),
            {},
        ),
        "device": Field(
            Pattern(_DEVICE, "one of 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'"),
            "auto",
        ),
        "precision": Field(_Precision("32", "bf16-mixed", "16-mixed"), "32"),
        # absent when not given, so the resolved config (and the fingerprint) of a
        # run recorded before they existed is unchanged (docs/design/callbacks.md)
        "callbacks": Field(MappingList(_CALLBACK), absent),
        "early_stopping": Field(_EARLY_STOPPING, absent),
    }
)
OUTPUT = Section(
    {
        "directory": Field(Str(), "outputs"),
        "save_checkpoints": Field(Bool(), True),
        "checkpoint_frequency": Field(Int(1), 1),
        "save_logs": Field(Bool(), True),
        "params": Field(FreeMapping(), {}),
    }
)
NAME = DIRECTORY_NAME
TOP_KEYS = ("name", "description", "dataset", "model", "training", "output")


def field_paths(dataset: str, model: str) -> dict[str, bool]:
    """Every dotted path of the schema for the named dataset and model (sections
    included) -> whether it is a free-form section, whose keys are open."""
    found: dict[str, bool] = {}

    def walk(prefix: str, section: Rule) -> None:
        free = isinstance(section, Section) and section.free
        found[prefix] = free or isinstance(section, FreeMapping)
        if not isinstance(section, Section):
            return
        for key, field in section.fields.items():
            if field.ignored:
                continue
            child = f"{prefix}.{key}"
            rule = field.rule
            if isinstance(rule, Section):
                walk(child, rule)
            else:
                found[child] = isinstance(rule, FreeMapping)

    for key in ("name", "description"):
        found[key] = False
    found["dataset"] = False
    found["dataset.name"] = False
    found["dataset.path"] = False
    walk("dataset.params", Section(DATASET_FIELDS.get(dataset, {})))
    found["model"] = False
    found["model.name"] = False
    found["model.architecture"] = False
    walk("model.params", MODEL_FIELDS.get(model, Section({}, free=True)))
    walk("training", TRAINING)
    walk("output", OUTPUT)
    return found


def split_problems(
    name: str, given: Mapping[str, Any], params: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """What is wrong between the split fields of dataset ``name``'s params: pairs of
    the key to point at and the message. ``given`` holds the params as written
    (to tell a default from a value set), ``params`` as checked."""
    found: list[tuple[str, str]] = []
    at = "dataset.params"
    folds, fold = params.get("folds"), params.get("fold")
    if is_int(folds) and "fold" not in given:
        found.append(
            (
                "",
                f"missing required field '{at}.fold' (with {at}.folds: the fold "
                f"to validate on, 0 to {folds - 1})",
            )
        )
    if is_int(fold) and "folds" not in given:
        found.append(("fold", f"{at}.fold needs {at}.folds (the number of folds)"))
    if is_int(folds) and is_int(fold) and fold >= folds:
        found.append(("fold", f"{at}.fold must be < {at}.folds ({folds}), got {fold}"))
    if params.get("stratify") is True:
        if name == "synthetic_regression" or params.get("task") == "regression":
            found.append(
                (
                    "stratify",
                    f"{at}.stratify: true needs classification labels; this "
                    "dataset is regression",
                )
            )
        if isinstance(params.get("group_column"), str):
            found.append(
                (
                    "stratify",
                    f"{at}.stratify: true cannot be combined with "
                    f"{at}.group_column: groups are split whole; remove one",
                )
            )
    columns = [(k, params.get(k)) for k in ("target", "group_column", "id_column")]
    for i, (key, column) in enumerate(columns[1:], start=1):
        for other, value in columns[:i]:
            if isinstance(column, str) and column == value:
                found.append(
                    (
                        key,
                        f"{at}.{key} must name another column than {other} "
                        f"({column!r})",
                    )
                )
    return found
