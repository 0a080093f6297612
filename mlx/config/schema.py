"""The experiment schema: every field with its type, default and constraint.

:func:`validate` walks plain config data once, collects every error and warning with
its location, fills in defaults, resolves paths and returns the typed
:class:`~mlx.config.experiment.ExperimentConfig`. Rules are small objects
(:class:`_Int`, :class:`_Float`, :class:`_Choice`, :class:`_Section`, ...) so each
section of the schema below reads like the table in the README.
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from mlx.config.documents import Document, NodePath, dotted
from mlx.config.experiment import (
    DatasetConfig,
    ExperimentConfig,
    ModelConfig,
    OutputConfig,
    TrainingConfig,
    freeze,
)
from mlx.config.issues import ConfigIssue
from mlx.config.names import IMAGE_FAMILIES, KNOWN_DATASETS, MEMORY_LIMIT_BYTES
from mlx.errors import MLXError
from mlx.utils.paths import is_within, resolve_path

__all__ = [
    "BUILTIN_MODELS",
    "IMAGE_MODEL_FAMILIES",
    "KNOWN_DATASETS",
    "KNOWN_MODELS",
    "MEMORY_LIMIT_BYTES",
    "format_bytes",
    "model_blocker",
    "model_family",
    "validate",
]

IMAGE_MODEL_FAMILIES: Mapping[str, tuple[str, ...]] = IMAGE_FAMILIES
BUILTIN_MODELS = ("linear_regression", "mlp")
KNOWN_MODELS = (
    "resnet",
    "vgg",
    "mobilenet",
    "efficientnet",
    "custom",
    *BUILTIN_MODELS,
    *(name for names in IMAGE_MODEL_FAMILIES.values() for name in names),
)

_SYNTHETIC = ("synthetic_regression", "synthetic_classification")
_OFFICIAL_TEST_SPLIT = ("mnist", "cifar10", "cifar100")
_NEEDS_PATH = ("custom", "imagenet")
_CLASS_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_DIR_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def model_family(name: str) -> str:
    """``resnet18`` -> ``resnet``; other names map to themselves."""
    for family, variants in IMAGE_MODEL_FAMILIES.items():
        if name == family or name in variants:
            return family
    return name


def model_blocker(name: str, params: Mapping[str, Any]) -> str | None:
    """Why a valid model cannot run on this installation, or ``None`` if it can."""
    if model_family(name) in IMAGE_MODEL_FAMILIES:
        from mlx.models.torch import INSTALL_HINT, missing_backend

        missing = missing_backend()
        if missing:
            verb = "are" if " and " in missing else "is"
            return (
                f"{name} runs on PyTorch, and {missing} {verb} not installed; "
                f"install it with: {INSTALL_HINT}"
            )
        return None
    if name == "custom" and not params.get("class_path"):
        return (
            "a custom model needs model.params.class_path "
            "('package.module:ClassName') to run"
        )
    return None


# --------------------------------------------------------------------------- rules


class _Bad:
    """Marker for a value that failed its rule (the error is already recorded)."""


_BAD = _Bad()
_REQUIRED = object()


def _show(value: Any) -> str:
    """A value as it would be written in the config, short."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if value.bit_length() <= 128 else "a huge integer"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return repr(text)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _nearest(word: str, options: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(word.lower(), list(options), n=1, cutoff=0.5)
    return matches[0] if matches else None


class _Rule:
    """A check for one field; ``check`` records its own error and returns _BAD."""

    expected = "a value"

    def __init__(self, *, nullable: bool = False) -> None:
        self.nullable = nullable

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def normalize(self, value: Any) -> Any:
        return value

    def hint(self, value: Any) -> str:
        return ""

    def describe(self) -> str:
        return f"{self.expected} or null" if self.nullable else self.expected

    def check(self, v: _Validator, path: NodePath, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if self.accepts(value):
            return self.normalize(value)
        v.error(
            path,
            f"{dotted(path)} must be {self.describe()}, got {_show(value)}"
            f"{self.hint(value)}",
        )
        return _BAD


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bounds(lo: Any, hi: Any, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f" {'<' if hi_open else '<='} {hi}"
    return ""


class _Int(_Rule):
    def __init__(self, lo: int | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.lo = lo
        self.expected = "an integer" + _bounds(lo, None, False, False)

    def accepts(self, value: Any) -> bool:
        return _is_int(value) and (self.lo is None or value >= self.lo)


class _Float(_Rule):
    def __init__(
        self,
        lo: float | None = None,
        hi: float | None = None,
        *,
        lo_open: bool = False,
        hi_open: bool = False,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.lo, self.hi, self.lo_open, self.hi_open = lo, hi, lo_open, hi_open
        self.expected = "a finite number" + _bounds(lo, hi, lo_open, hi_open)

    def accepts(self, value: Any) -> bool:
        if not (_is_int(value) or isinstance(value, float)):
            return False
        try:
            x = float(value)
        except OverflowError:
            return False
        if not math.isfinite(x):
            return False
        if self.lo is not None and (x <= self.lo if self.lo_open else x < self.lo):
            return False
        return not (
            self.hi is not None and (x >= self.hi if self.hi_open else x > self.hi)
        )

    def normalize(self, value: Any) -> Any:
        return float(value)


class _Bool(_Rule):
    expected = "true or false"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)


class _Str(_Rule):
    expected = "a non-empty string"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value.strip() != ""


class _Pattern(_Str):
    def __init__(self, pattern: re.Pattern, expected: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.pattern = pattern
        self.expected = expected

    def accepts(self, value: Any) -> bool:
        return (
            isinstance(value, str)
            and self.pattern.match(value) is not None
            and value.strip(".") != ""
        )


class _Choice(_Rule):
    def __init__(self, *options: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.options = options
        self.expected = "one of " + ", ".join(repr(o) for o in options)

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.options

    def hint(self, value: Any) -> str:
        near = _nearest(value, self.options) if isinstance(value, str) else None
        return f"; did you mean {near}?" if near else ""


class _Mapping(_Rule):
    """A free-form mapping: any keys, any values."""

    expected = "a mapping"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict)


class _IntList(_Rule):
    """A list of integers; a bad element is reported at its own index."""

    def __init__(self, min_len: int, lo: int) -> None:
        super().__init__()
        self.min_len = min_len
        self.item = _Int(lo)
        self.expected = f"a list of at least {min_len} integers >= {lo}"

    def check(self, v: _Validator, path: NodePath, value: Any) -> Any:
        if not isinstance(value, list) or len(value) < self.min_len:
            shown = (
                f"a list of {len(value)}" if isinstance(value, list) else _show(value)
            )
            v.error(path, f"{dotted(path)} must be {self.expected}, got {shown}")
            return _BAD
        items = [self.item.check(v, (*path, i), x) for i, x in enumerate(value)]
        return _BAD if _has_bad(items) else items


class _Betas(_Rule):
    expected = "a list of two numbers in [0, 1)"

    def accepts(self, value: Any) -> bool:
        item = _Float(0, 1, hi_open=True)
        return (
            isinstance(value, list)
            and len(value) == 2
            and all(item.accepts(x) for x in value)
        )

    def normalize(self, value: Any) -> Any:
        return [float(x) for x in value]


class _Field:
    """A schema entry: its rule and default (``_REQUIRED`` when it has none).

    ``default`` may be a callable of the section resolved so far (``n_informative``
    defaults to ``n_features``); ``ignored`` makes the key a warning that is dropped.
    """

    def __init__(
        self, rule: _Rule | None, default: Any = None, ignored: str = ""
    ) -> None:
        self.rule = rule
        self.default = default
        self.ignored = ignored


class _Section(_Rule):
    """A mapping with known fields: defaults filled, unknown keys warned about.

    A field that fails its rule is kept as ``_BAD`` so that checks between the
    other fields still run; see :func:`_has_bad`.
    """

    expected = "a mapping"

    def __init__(self, fields: Mapping[str, _Field], *, free: bool = False) -> None:
        super().__init__(nullable=True)
        self.fields = fields
        self.free = free

    def check(self, v: _Validator, path: NodePath, value: Any) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            v.error(path, f"{dotted(path)} must be a mapping, got {_show(value)}")
            return _BAD
        out: dict[str, Any] = {}
        for key, field in self.fields.items():
            child = (*path, key)
            if field.ignored:
                if key in value:
                    v.warn(child, f"{dotted(child)}: {field.ignored}", key=True)
                continue
            if key in value:
                assert field.rule is not None
                out[key] = field.rule.check(v, child, value[key])
            elif field.default is _REQUIRED:
                v.error(path, f"missing required field '{dotted(child)}'", child)
                out[key] = _BAD
            elif not callable(field.default):
                out[key] = field.default
        derived = {
            key: field.default(out)
            for key, field in self.fields.items()
            if callable(field.default) and key not in value and not field.ignored
        }
        out = {
            key: derived.get(key, out.get(key))
            for key in self.fields
            if key in out or key in derived
        }
        if not self.free:
            v.unknown_keys(path, value, self.fields)
        else:
            out.update((k, x) for k, x in value.items() if k not in self.fields)
        return out


def _has_bad(value: Any) -> bool:
    if value is _BAD:
        return True
    if isinstance(value, dict):
        return any(_has_bad(x) for x in value.values())
    if isinstance(value, list):
        return any(_has_bad(x) for x in value)
    return False


# --------------------------------------------------------------------------- schema

_SEED = _Field(_Int(0, nullable=True), None)
_SPLITS = {
    "validation_split": _Field(_Float(0, 1, hi_open=True), 0.1),
    "test_split": _Field(_Float(0, 1, hi_open=True), 0.1),
}
_STANDARDIZE = {"standardize": _Field(_Bool(), False)}


def _same_as_n_features(section: Mapping[str, Any]) -> Any:
    return section.get("n_features", _BAD)


_SYNTHETIC_FIELDS = {
    "n_samples": _Field(_Int(1), 1000),
    "n_features": _Field(_Int(1), 10),
    "n_informative": _Field(_Int(1), _same_as_n_features),
    "seed": _SEED,
    **_SPLITS,
    **_STANDARDIZE,
}
_IMAGE_SET_FIELDS = {
    "download": _Field(_Bool(), False),
    "normalize": _Field(_Bool(), True),
    "validation_split": _SPLITS["validation_split"],
    # training batches only; see mlx.datasets.augment
    "augmentation": _Field(_Bool(), False),
}
_DATASET_FIELDS: Mapping[str, Mapping[str, _Field]] = {
    "synthetic_regression": {
        **_SYNTHETIC_FIELDS,
        "noise_std": _Field(_Float(0), 0.1),
    },
    "synthetic_classification": {
        **_SYNTHETIC_FIELDS,
        "n_classes": _Field(_Int(2), 2),
        "class_sep": _Field(_Float(0, lo_open=True), 1.0),
    },
    **{
        name: {
            **_IMAGE_SET_FIELDS,
            "test_split": _Field(
                None, ignored=f"ignored: {name} has an official test split"
            ),
        }
        for name in _OFFICIAL_TEST_SPLIT
    },
    "imagenet": {
        "image_size": _Field(_Int(8), 64),
        "augmentation": _IMAGE_SET_FIELDS["augmentation"],
        **_SPLITS,
    },
    "custom": {
        "target": _Field(_Str(nullable=True), None),
        "task": _Field(_Choice("classification", "regression", nullable=True), None),
        "allow_nan": _Field(_Bool(), False),
        **_SPLITS,
        **_STANDARDIZE,
    },
}

_OPTIMIZER_PARAMS = {
    "momentum": _Field(_Float(0)),
    "nesterov": _Field(_Bool()),
    "dampening": _Field(_Float(0)),
    "betas": _Field(_Betas()),
    "eps": _Field(_Float(0, lo_open=True)),
    "weight_decay": _Field(_Float(0)),
    "alpha": _Field(_Float(0, 1, hi_open=True)),
    "centered": _Field(_Bool()),
}
_OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")
_IMAGE_CHANNELS = {"mnist": 1, "cifar10": 3, "cifar100": 3, "imagenet": 3}
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,3})?)$")


class _Precision(_Choice):
    """ "32", "bf16-mixed" or "16-mixed"; a bare 32 (YAML reads it as a number)
    means "32"."""

    def accepts(self, value: Any) -> bool:
        return super().accepts(value) or (_is_int(value) and value == 32)

    def normalize(self, value: Any) -> Any:
        return str(value)


def _optional(fields: Mapping[str, _Field]) -> dict[str, _Field]:
    """The same fields with no defaults: absent keys stay absent."""
    return {key: _Field(f.rule, _absent) for key, f in fields.items()}


def _absent(section: Mapping[str, Any]) -> Any:
    return _ABSENT


_ABSENT = object()

_OPTIMIZER_CONFIG = _Section(
    _optional(
        {
            "optimizer_type": _Field(_Choice("sgd", "adam", "adamw", "rmsprop")),
            "learning_rate": _Field(_Float(0, lo_open=True)),
            **_OPTIMIZER_PARAMS,
        }
    )
)
_IMAGE_MODEL = _Section(
    _optional(
        {
            "num_classes": _Field(_Int(1)),
            "pretrained": _Field(_Bool()),
            "dropout": _Field(_Float(0, 1, hi_open=True)),
            "in_channels": _Field(_Int(1)),
        }
    )
)

_CLIP = {
    "gradient_clip": _Field(_Float(0, lo_open=True, nullable=True), 10.0),
    "weight_clip": _Field(_Float(0, lo_open=True, nullable=True), 10.0),
    "activation_clip": _Field(_Float(0, lo_open=True, nullable=True), 50.0),
}
_MODEL_FIELDS: Mapping[str, _Section] = {
    "linear_regression": _Section(
        {
            "seed": _SEED,
            "use_gradient_descent": _Field(_Bool(), False),
            "l2_regularization": _Field(_Float(0), 0.0),
            "optimizer_config": _Field(_OPTIMIZER_CONFIG, {}),
        }
    ),
    "mlp": _Section(
        {
            "layer_sizes": _Field(_IntList(2, 1), _REQUIRED),
            "activation": _Field(_Choice("relu", "tanh", "sigmoid"), "relu"),
            "output_activation": _Field(
                _Choice("sigmoid", "softmax", nullable=True), None
            ),
            "seed": _SEED,
            "optimizer_config": _Field(_OPTIMIZER_CONFIG, {}),
            **_CLIP,
            "dtype": _Field(_Choice("float64", "float32"), "float64"),
        }
    ),
    "custom": _Section(
        {
            "class_path": _Field(
                _Pattern(_CLASS_PATH, "of the form 'package.module:ClassName'"),
                _absent,
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

_TRAINING = _Section(
    {
        "epochs": _Field(_Int(1), 10),
        "batch_size": _Field(_Int(1), 32),
        "learning_rate": _Field(_Float(0, lo_open=True), 0.001),
        "optimizer": _Field(_Choice(*_OPTIMIZERS), "adam"),
        "seed": _Field(_Int(0), 42),
        "params": _Field(
            _Section(
                _optional(
                    {
                        **_OPTIMIZER_PARAMS,
                        "warmup_epochs": _Field(_Int(0)),
                        "lr_schedule": _Field(_Choice("constant", "step", "cosine")),
                        "step_size": _Field(_Int(1)),
                        "gamma": _Field(_Float(0, lo_open=True)),
                        "grad_clip_norm": _Field(
                            _Float(0, lo_open=True, nullable=True)
                        ),
                    }
                )
            ),
            {},
        ),
        "device": _Field(
            _Pattern(_DEVICE, "one of 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'"),
            "auto",
        ),
        "precision": _Field(_Precision("32", "bf16-mixed", "16-mixed"), "32"),
    }
)
_OUTPUT = _Section(
    {
        "directory": _Field(_Str(), "outputs"),
        "save_checkpoints": _Field(_Bool(), True),
        "checkpoint_frequency": _Field(_Int(1), 1),
        "save_logs": _Field(_Bool(), True),
        "params": _Field(_Mapping(), {}),
    }
)
_NAME = _Pattern(
    _DIR_NAME, "a directory name of 1 to 100 letters, digits, '.', '_' or '-'"
)
_TOP_KEYS = ("name", "description", "dataset", "model", "training", "output")


# --------------------------------------------------------------------------- validator


class _Validator:
    def __init__(self, doc: Document, overrides: Mapping[NodePath, str], root: Path):
        self.doc = doc
        self.overrides = overrides
        self.root = root
        self.errors: list[ConfigIssue] = []
        self.warnings: list[ConfigIssue] = []

    # -- reporting

    def locate(self, path: NodePath, key: bool) -> tuple[str, int | None, int | None]:
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
        self, at: NodePath, message: str, about: NodePath | None, key: bool
    ) -> ConfigIssue:
        file, line, column = self.locate(at, key)
        return ConfigIssue(file, line, column, dotted(about or at), message)

    def error(self, at: NodePath, message: str, about: NodePath | None = None) -> None:
        self.errors.append(self.issue(at, message, about, key=False))

    def warn(self, at: NodePath, message: str, *, key: bool = False) -> None:
        self.warnings.append(self.issue(at, message, None, key=key))

    def unknown_keys(
        self, path: NodePath, value: Mapping[str, Any], known: Iterable[str]
    ) -> None:
        known = list(known)
        for key in value:
            if key not in known:
                child = (*path, key)
                near = _nearest(str(key), known)
                advice = (
                    f"did you mean {near}?"
                    if near
                    else "known keys: " + ", ".join(known)
                )
                self.warn(child, f"{dotted(child)}: unknown key; {advice}", key=True)

    # -- the schema, top to bottom

    def run(self) -> ExperimentConfig | None:
        data: dict[str, Any] = self.doc.data
        self.unknown_keys((), data, _TOP_KEYS)
        dataset_raw = self.required_mapping(data, "dataset")
        model_raw = self.required_mapping(data, "model")
        # an unknown dataset or model aborts: its parameters cannot be checked
        dataset_name = self.known_name(dataset_raw, "dataset", KNOWN_DATASETS)
        model_name = self.known_name(model_raw, "model", KNOWN_MODELS)
        if dataset_name is _BAD or model_name is _BAD:
            return None
        name = self.top_field(data, "name", _NAME, _REQUIRED)
        description = self.top_field(data, "description", _Str(nullable=True), None)
        dataset = self.dataset(dataset_raw, dataset_name)
        model = self.model(model_raw, model_name)
        training = _TRAINING.check(self, ("training",), data.get("training"))
        output = _OUTPUT.check(self, ("output",), data.get("output"))
        if output is not _BAD and isinstance(output["directory"], str):
            output["directory"] = self.output_directory(output["directory"])
        self.cross_checks(dataset, model, training, output)
        if self.errors:
            return None
        return ExperimentConfig(
            name=name,
            description=description,
            dataset=dataset,
            model=model,
            training=TrainingConfig(
                **{**training, "params": freeze(training["params"])}
            ),
            output=OutputConfig(**{**output, "params": freeze(output["params"])}),
            source=self.doc.source,
            warnings=tuple(_in_file_order(self.warnings)),
        )

    def top_field(
        self, data: Mapping[str, Any], key: str, rule: _Rule, default: Any
    ) -> Any:
        if key in data:
            return rule.check(self, (key,), data[key])
        if default is _REQUIRED:
            self.error((), f"missing required field '{key}'", (key,))
            return _BAD
        return default

    def required_mapping(self, data: Mapping[str, Any], key: str) -> Any:
        if key not in data:
            self.error((), f"missing required field '{key}'", (key,))
            return _BAD
        if not isinstance(data[key], dict):
            self.error((key,), f"{key} must be a mapping, got {_show(data[key])}")
            return _BAD
        return data[key]

    def known_name(self, section: Any, what: str, known: Sequence[str]) -> Any:
        if section is _BAD:
            return None
        path = (what, "name")
        if "name" not in section:
            self.error((what,), f"missing required field '{what}.name'", path)
            return None
        name = section["name"]
        if isinstance(name, str) and name in known:
            return name
        near = _nearest(name, known) if isinstance(name, str) else None
        if what == "dataset":
            listing = "known datasets: " + ", ".join(known)
        else:
            listing = (
                "known models: linear_regression, mlp, custom, resnet, vgg, "
                "mobilenet, efficientnet and their variants (resnet18, vgg16, ...)"
            )
        self.error(
            path,
            f"{what}.name: unknown {what} {_show(name)}; "
            + (f"did you mean {near}?" if near else listing),
        )
        return _BAD

    def dataset(self, raw: Any, name: str | None) -> Any:
        if raw is _BAD or name is None:
            return _BAD
        base = ("dataset",)
        self.unknown_keys(base, raw, ("name", "path", "params"))
        path = _Str(nullable=True).check(self, (*base, "path"), raw.get("path"))
        if name in _NEEDS_PATH and "path" not in raw:
            self.error(
                base,
                f"missing required field 'dataset.path' ({name} data is read from "
                "files)",
                (*base, "path"),
            )
            path = _BAD
        params = _Section(_DATASET_FIELDS[name]).check(
            self, (*base, "params"), raw.get("params")
        )
        if isinstance(path, str):
            path = self.dataset_path(name, path)
        if params is not _BAD:
            self.dataset_checks(params)
        if path is _BAD or _has_bad(params):
            return _BAD
        return DatasetConfig(name=name, path=path, params=freeze(params))

    def dataset_path(self, name: str, raw: str) -> Any:
        at = ("dataset", "path")
        try:  # refuses control characters (a NUL byte included) too
            resolved = resolve_path(raw, self.root)
        except MLXError as exc:
            self.error(at, f"dataset.path: {exc}")
            return _BAD
        if name in _SYNTHETIC:
            self.warn(at, f"dataset.path: ignored: {name} is generated, not read")
        elif name in _NEEDS_PATH and not resolved.exists():
            self.warn(at, f"dataset.path: {resolved} does not exist (yet)")
        return str(resolved)

    def dataset_checks(self, params: dict[str, Any]) -> None:
        base = ("dataset", "params")
        n_features = params.get("n_features")
        n_informative = params.get("n_informative")
        if isinstance(n_informative, int) and isinstance(n_features, int):
            if n_informative > n_features:
                at = (*base, "n_informative")
                self.error(
                    at,
                    f"{dotted(at)} must be <= n_features ({n_features}), "
                    f"got {n_informative}",
                )
        validation = params.get("validation_split", 0.0)
        test = params.get("test_split", 0.0)
        if _is_number(validation) and _is_number(test) and validation + test >= 1:
            at = (*base, "test_split")
            self.error(
                at,
                f"{dotted(base)}: validation_split + test_split must be < 1, got "
                f"{validation:g} + {test:g} = {validation + test:g}",
            )

    def model(self, raw: Any, name: str | None) -> Any:
        if raw is _BAD or name is None:
            return _BAD
        base = ("model",)
        self.unknown_keys(base, raw, ("name", "architecture", "params"))
        architecture = _Str(nullable=True).check(
            self, (*base, "architecture"), raw.get("architecture")
        )
        section = _MODEL_FIELDS.get(name, _Section({}, free=True))
        params = section.check(self, (*base, "params"), raw.get("params"))
        if architecture is _BAD or _has_bad(params):
            return _BAD
        if model_family(name) in IMAGE_MODEL_FAMILIES:
            architecture = self.image_variant(name, architecture)
            if architecture is _BAD:
                return _BAD
        params = _drop_absent(params)
        blocker = model_blocker(name, params)
        if blocker:
            at = (*base, "name") if name != "custom" else (*base, "params")
            self.warn(
                at, f"{dotted(at)}: {blocker}; the config is valid but cannot run here"
            )
        return ModelConfig(name=name, architecture=architecture, params=freeze(params))

    def image_variant(self, name: str, architecture: str | None) -> Any:
        """The variant an image model names: ``resnet18`` (architecture absent,
        ``resnet`` or ``resnet18``) or ``resnet`` with architecture ``resnet34``;
        anything else is an error at model.architecture."""
        family = model_family(name)
        variants = IMAGE_MODEL_FAMILIES[family]
        at = ("model", "architecture")
        if name != family:
            if architecture in (None, family, name):
                return name
            self.error(
                at,
                f"model.architecture: {_show(architecture)} contradicts model.name "
                f"{name!r} (a {family} variant); use {family!r} or {name!r}, or "
                "leave it out",
            )
            return _BAD
        if architecture in variants:
            return architecture
        what = (
            "is missing"
            if architecture is None
            else f"is {_show(architecture)}, which is not a {family} variant"
        )
        self.error(
            at if architecture is not None else ("model",),
            f"model.architecture {what}; model.name {family!r} needs one of "
            f"{', '.join(variants)}",
            at,
        )
        return _BAD

    def check_device(self, model: Any, training: Mapping[str, Any]) -> None:
        """A device or precision a torch model cannot have here."""
        device, precision = training.get("device"), training.get("precision")
        if not isinstance(device, str) or not isinstance(precision, str):
            return
        torch_model = model_family(model.name) in IMAGE_MODEL_FAMILIES
        if model.name == "custom":
            if device in ("auto", "cpu") and precision == "32":
                return  # nothing to check: no need to import the class
            uses = self.custom_uses_torch(model.params)
            if uses is None:
                return  # the class does not import: the run's check says why
            torch_model = uses
        if not torch_model:
            if device not in ("auto", "cpu") or precision != "32":
                self.warn(
                    (
                        "training",
                        "device" if device not in ("auto", "cpu") else "precision",
                    ),
                    f"training.device/precision: ignored: {model.name} runs on "
                    "NumPy on the CPU",
                )
            return
        from mlx.models.torch import missing_backend

        if missing_backend() is not None:
            return  # the model's blocker says what to install
        from mlx.models.torch.devices import device_problem

        problem = device_problem(device, precision)
        if problem:
            field, message = problem
            self.error(("training", field), f"training.{field}: {message}")

    @staticmethod
    def custom_uses_torch(params: Mapping[str, Any]) -> bool | None:
        """Whether a custom model's class is a torch.nn.Module (its module is
        imported, as the run would), or None when it does not import."""
        if not isinstance(params.get("class_path"), str):
            return None
        from mlx.models import uses_torch

        try:
            return uses_torch("custom", params)
        except MLXError:
            return None

    def image_classes(self, model: Any, info: Any) -> None:
        """An image model needs image data, and num_classes must match it."""
        if model_family(model.name) not in IMAGE_MODEL_FAMILIES:
            return
        if info.name not in _IMAGE_CHANNELS:
            self.error(
                ("model", "name"),
                f"model.name: {model.name} is an image model, but the {info.name} "
                "dataset holds no images; use an image dataset "
                f"({', '.join(_IMAGE_CHANNELS)}) or an mlp",
            )
            return
        channels = model.params.get("in_channels")
        expected_channels = _IMAGE_CHANNELS.get(info.name)
        if channels is not None and expected_channels not in (None, channels):
            at = ("model", "params", "in_channels")
            self.error(
                at,
                f"{dotted(at)} is {channels}, but {info.name} images have "
                f"{expected_channels} channel(s)",
            )
        given = model.params.get("num_classes")
        if given is None or info.task is None:
            return
        expected = info.n_classes if info.task == "classification" else 1
        if expected is not None and given != expected:
            at = ("model", "params", "num_classes")
            self.error(
                at,
                f"{dotted(at)} is {given}, but {info.name} has {expected} "
                + ("classes" if info.task == "classification" else "output"),
            )

    def output_directory(self, raw: str) -> Any:
        at = ("output", "directory")
        try:
            resolved = resolve_path(raw, self.root)
        except MLXError as exc:
            self.error(at, f"output.directory: {exc}")
            return _BAD
        if not is_within(resolved, self.root):
            self.error(
                at,
                f"output.directory must resolve inside the repository root "
                f"{self.root}; {raw!r} resolves to {resolved}",
            )
            return _BAD
        return str(resolved)

    def cross_checks(
        self, dataset: Any, model: Any, training: Any, output: Any
    ) -> None:
        if training is not _BAD:
            if training["params"] is not _BAD:
                training["params"] = _drop_absent(training["params"])
                self.nesterov(("training", "params"), training["params"])
            self.large_learning_rate(("training", "learning_rate"), training)
        if model is not _BAD and "optimizer_config" in model.params:
            config = model.params["optimizer_config"]
            at = ("model", "params", "optimizer_config")
            self.large_learning_rate((*at, "learning_rate"), config)
            self.nesterov(at, config)
        if training is not _BAD and output is not _BAD:
            frequency, epochs = output["checkpoint_frequency"], training["epochs"]
            if (
                output["save_checkpoints"] is True
                and isinstance(frequency, int)
                and isinstance(epochs, int)
                and frequency > epochs
            ):
                self.warn(
                    ("output", "checkpoint_frequency"),
                    f"output.checkpoint_frequency ({frequency}) is larger than "
                    f"training.epochs ({epochs}): no periodic checkpoint falls "
                    "within the run",
                )
        if dataset is not _BAD:
            info = self.describe(dataset)
            if info is not None and model is not _BAD and model.name == "mlp":
                self.mlp_fits_dataset(model.params, info)
            if info is not None and model is not _BAD:
                self.image_classes(model, info)
        if model is not _BAD and training is not _BAD:
            self.check_device(model, training)

    def large_learning_rate(self, at: NodePath, section: Mapping[str, Any]) -> None:
        rate = section.get("learning_rate")
        if isinstance(rate, float) and rate > 1.0:
            self.warn(
                at,
                f"{dotted(at)} is {rate:g}; values above 1.0 usually make training "
                "diverge",
            )

    def nesterov(self, at: NodePath, params: Mapping[str, Any]) -> None:
        momentum = params.get("momentum", 0.0)
        dampening = params.get("dampening", 0.0)
        if not (_is_number(momentum) and _is_number(dampening)):
            return
        if params.get("nesterov") is True and (momentum <= 0 or dampening != 0):
            child = (*at, "nesterov")
            self.error(
                child,
                f"{dotted(child)} needs momentum > 0 and dampening 0, got momentum "
                f"{params.get('momentum', 0.0):g} and dampening "
                f"{params.get('dampening', 0.0):g}",
            )

    def describe(self, dataset: DatasetConfig) -> Any:
        from mlx.datasets import describe

        try:
            info = describe(dataset)
        except MLXError as exc:
            self.error(("dataset",), f"dataset: {exc}")
            return None
        if info.memory_bytes is not None and info.memory_bytes >= MEMORY_LIMIT_BYTES:
            at = ("dataset", "params")
            estimate = format_bytes(info.memory_bytes)
            if dataset.name in _SYNTHETIC:
                # generated in memory as a whole: refuse before allocating
                self.error(
                    at,
                    f"dataset: {dataset.name} needs an estimated {estimate} in "
                    "memory, over the 1 GiB limit; reduce n_samples or n_features",
                    ("dataset",),
                )
            elif dataset.name == "imagenet":
                pass  # streamed from disk (mlx.datasets.streaming)
            else:
                # read from files, whose loader may use a narrower dtype
                self.warn(
                    at,
                    f"dataset: {dataset.name} needs an estimated {estimate} in "
                    "memory as float64, over 1 GiB",
                )
        return info

    def mlp_fits_dataset(self, params: Mapping[str, Any], info: Any) -> None:
        sizes: Sequence[int] = params["layer_sizes"]
        at = ("model", "params", "layer_sizes")
        if info.n_features is not None and sizes[0] != info.n_features:
            self.error(
                (*at, 0),
                f"{dotted((*at, 0))} (the input size) must equal the dataset's "
                f"feature count {info.n_features}, got {sizes[0]}",
            )
        last = (*at, len(sizes) - 1)
        out = sizes[-1]
        activation = params.get("output_activation")
        if info.task == "classification":
            classes = info.n_classes
            allowed: tuple[int, ...] = ()
            if classes == 2:
                allowed = (1, 2)
                expected = "1 (sigmoid) or 2 (softmax) for 2 classes"
            elif classes is not None:
                allowed = (classes,)
                expected = f"{classes}, the number of classes"
            if allowed and out not in allowed:
                self.error(
                    last,
                    f"{dotted(last)} (the output size) must be {expected}, got {out}",
                )
            if activation is None:
                suggestion = "sigmoid" if out == 1 else "softmax"
                self.warn(
                    ("model", "params", "output_activation"),
                    "model.params.output_activation is not set for a classification "
                    f"dataset; set it to {suggestion}",
                )
            elif activation == "softmax" and out == 1:
                self.warn(
                    ("model", "params", "output_activation"),
                    "model.params.output_activation: softmax over 1 output is "
                    "always 1; use sigmoid",
                )
        elif info.task == "regression":
            if out != 1:
                self.error(
                    last,
                    f"{dotted(last)} (the output size) must be 1 for a regression "
                    f"dataset, got {out}",
                )
            if activation is not None:
                self.warn(
                    ("model", "params", "output_activation"),
                    f"model.params.output_activation: {activation} squashes the "
                    "predictions of a regression model; leave it null",
                )
        elif activation is None and out != 1:
            # the data's labels are read for the model's task: one number per row
            self.error(
                last,
                f"{dotted(last)} (the output size) must be 1 for a regression model "
                f"(an MLP without output_activation), got {out}",
            )


def _is_number(value: Any) -> bool:
    return _is_int(value) or isinstance(value, float)


def _drop_absent(section: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: _drop_absent(value) if isinstance(value, dict) else value
        for key, value in section.items()
        if value is not _ABSENT
    }


def format_bytes(n: int) -> str:
    """``1536`` -> ``1.5 KiB``."""
    if n.bit_length() > 60:  # beyond an exbibyte; float() would overflow eventually
        return f"about 2^{n.bit_length() - 1} bytes"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def validate(
    doc: Document, overrides: Mapping[NodePath, str], root: Path
) -> tuple[ExperimentConfig | None, list[ConfigIssue], list[ConfigIssue]]:
    """Check ``doc.data`` against the schema and build the typed config.

    Returns ``(config, errors, warnings)``: ``config`` is ``None`` when ``errors``
    is not empty. Nothing is raised or issued here; the caller decides.
    """
    validator = _Validator(doc, overrides, root)
    validator.errors.extend(doc.errors)
    config = validator.run()
    return config, _in_file_order(validator.errors), _in_file_order(validator.warnings)


def _in_file_order(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    # the file's issues by position, then those of overrides in the order given
    def position(issue: ConfigIssue) -> tuple[int, int, int]:
        if issue.line is None:
            return (1, 0, 0)
        return (0, issue.line, issue.column or 0)

    return sorted(issues, key=position)
