"""The experiment schema's validation: every section checked, every problem found.

:func:`validate` walks plain config data once, collects every error and warning with
its location, fills in defaults, resolves paths and returns the typed
:class:`~mlx.config.experiment.ExperimentConfig`. The fields are tables in
:mod:`mlx.config.fields`, built of the rules in :mod:`mlx.config.rules`; this module
reads the sections in order (name, dataset, model, training, output), then checks
what spans them. Whether the result can run on this installation with its data is
asked of :mod:`mlx.config.runnable`, once, at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from mlx.config.documents import Document, NodePath, dotted
from mlx.config.experiment import (
    SPLIT_FILE_KEYS,
    DatasetConfig,
    ExperimentConfig,
    ModelConfig,
    OutputConfig,
    TrainingConfig,
    freeze,
)
from mlx.config.fields import (
    DATASET_FIELDS,
    MODEL_FIELDS,
    NAME,
    NEEDS_PATH,
    OUTPUT,
    SYNTHETIC,
    TOP_KEYS,
    TRAINING,
    split_problems,
)
from mlx.config.issues import ConfigIssue
from mlx.config.names import (
    IMAGE_MODEL_FAMILIES,
    KNOWN_DATASETS,
    KNOWN_MODELS,
    model_family,
)
from mlx.config.reporting import IssueLog, in_file_order
from mlx.config.rules import (
    BAD,
    REQUIRED,
    Bad,
    Rule,
    Section,
    Str,
    drop_absent,
    has_bad,
)
from mlx.config.runnable import RunnableCheck, Sections
from mlx.errors import MLXError
from mlx.utils.paths import is_within, resolve_path
from mlx.utils.values import is_number, nearest, show

__all__ = ["validate"]

#: The most memory an MLP may need to train (1 TiB): beyond it no machine mlx runs
#: on holds the model, and NumPy would fail at build (docs/design/input-ranges.md).
_MAX_MODEL_BYTES = 2**40
#: Names people give splits, for the did-you-mean of dataset.path's keys.
_SPLIT_ALIASES = {
    "training": "train",
    "trn": "train",
    "validation": "val",
    "valid": "val",
    "validate": "val",
    "dev": "val",
    "eval": "val",
    "testing": "test",
    "holdout": "test",
}


def validate(
    doc: Document,
    overrides: Mapping[NodePath, str],
    root: Path,
    runnable: RunnableCheck | None = None,
) -> tuple[ExperimentConfig | None, list[ConfigIssue], list[ConfigIssue]]:
    """Check ``doc.data`` against the schema and build the typed config; with
    ``runnable``, also whether it can run here (its issues filed among the schema's).

    Returns ``(config, errors, warnings)``: ``config`` is ``None`` when ``errors``
    is not empty. Nothing is raised or issued here; the caller decides.
    """
    validator = _Validator(doc, overrides, root, runnable)
    validator.errors.extend(doc.errors)
    config = validator.run()
    return config, in_file_order(validator.errors), in_file_order(validator.warnings)


class _Validator(IssueLog):
    """One pass over one document: each method checks a section or a relation."""

    def __init__(
        self,
        doc: Document,
        overrides: Mapping[NodePath, str],
        root: Path,
        check: RunnableCheck | None,
    ) -> None:
        super().__init__(doc, overrides)
        self.root = root
        self.runnable_check = check
        # where the model section's warnings end: the runnable check's warning
        # that the model cannot run here is filed there
        self.model_warnings_end = 0

    # -- the schema, top to bottom

    def run(self) -> ExperimentConfig | None:
        data: dict[str, Any] = self.doc.data
        self.unknown_keys((), data, TOP_KEYS)
        dataset_raw = self.required_mapping(data, "dataset")
        model_raw = self.required_mapping(data, "model")
        # an unknown dataset or model aborts: its parameters cannot be checked
        dataset_name = self.known_name(dataset_raw, "dataset", KNOWN_DATASETS)
        model_name = self.known_name(model_raw, "model", KNOWN_MODELS)
        if isinstance(dataset_name, Bad) or isinstance(model_name, Bad):
            return None
        name = self.top_field(data, "name", NAME, REQUIRED)
        description = self.top_field(data, "description", Str(nullable=True), None)
        dataset = self.dataset(dataset_raw, dataset_name)
        model = self.model(model_raw, model_name)
        training = TRAINING.check(self, ("training",), data.get("training"))
        output = OUTPUT.check(self, ("output",), data.get("output"))
        if output is not BAD and isinstance(output["directory"], str):
            output["directory"] = self.output_directory(output["directory"])
        self.cross_checks(dataset, model, training, output)
        self.runnable(dataset, model, training)
        if self.errors:
            return None
        # every section that failed recorded an error
        assert isinstance(dataset, DatasetConfig) and isinstance(model, ModelConfig)
        return ExperimentConfig(
            name=name,
            description=description,
            dataset=dataset,
            model=model,
            training=TrainingConfig(**freeze(drop_absent(training))),
            output=OutputConfig(**freeze(drop_absent(output))),
            source=self.doc.source,
            warnings=tuple(in_file_order(self.warnings)),
        )

    def top_field(
        self, data: Mapping[str, Any], key: str, rule: Rule, default: Any
    ) -> Any:
        if key in data:
            return rule.check(self, (key,), data[key])
        if default is REQUIRED:
            self.error((), f"missing required field '{key}'", (key,))
            return BAD
        return default

    def required_mapping(
        self, data: Mapping[str, Any], key: str
    ) -> dict[str, Any] | Bad:
        if key not in data:
            self.error((), f"missing required field '{key}'", (key,))
            return BAD
        if not isinstance(data[key], dict):
            self.error((key,), f"{key} must be a mapping, got {show(data[key])}")
            return BAD
        return data[key]

    def known_name(
        self, section: dict[str, Any] | Bad, what: str, known: Sequence[str]
    ) -> str | Bad | None:
        """The section's known name; None when the section or its name is missing,
        BAD when the name is not known."""
        if isinstance(section, Bad):
            return None
        path = (what, "name")
        if "name" not in section:
            self.error((what,), f"missing required field '{what}.name'", path)
            return None
        name = section["name"]
        if isinstance(name, str) and name in known:
            return name
        near = nearest(name.lower(), known, 0.5) if isinstance(name, str) else None
        if what == "dataset":
            listing = "known datasets: " + ", ".join(known)
        else:
            listing = (
                "known models: linear_regression, mlp, custom, resnet, vgg, "
                "mobilenet, efficientnet and their variants (resnet18, vgg16, ...)"
            )
        self.error(
            path,
            f"{what}.name: unknown {what} {show(name)}; "
            + (f"did you mean {near}?" if near else listing),
        )
        return BAD

    def dataset(
        self, raw: dict[str, Any] | Bad, name: str | None
    ) -> DatasetConfig | Bad:
        if isinstance(raw, Bad) or name is None:
            return BAD
        base = ("dataset",)
        self.unknown_keys(base, raw, ("name", "path", "params"))
        path: Any
        if isinstance(raw.get("path"), dict):
            path = self.split_paths(name, raw["path"])
        else:
            path = Str(nullable=True).check(self, (*base, "path"), raw.get("path"))
        if name in NEEDS_PATH and "path" not in raw:
            self.error(
                base,
                f"missing required field 'dataset.path' ({name} data is read from "
                "files)",
                (*base, "path"),
            )
            path = BAD
        params = Section(DATASET_FIELDS[name]).check(
            self, (*base, "params"), raw.get("params")
        )
        if isinstance(path, str):
            path = self.dataset_path(name, path)
        if params is not BAD:
            params = drop_absent(params)
            self.dataset_checks(params)
            written = raw.get("params")
            given = written if isinstance(written, dict) else {}
            for key, message in split_problems(name, given, params):
                at = (*base, "params", key) if key else (*base, "params")
                self.error(at, message)
        if path is BAD or has_bad(params):
            return BAD
        return DatasetConfig(name=name, path=freeze(path), params=freeze(params))

    def dataset_path(
        self, name: str, raw: str, at: NodePath = ("dataset", "path")
    ) -> str | Bad:
        try:  # refuses control characters (a NUL byte included) too
            resolved = resolve_path(raw, self.root)
        except MLXError as exc:
            self.error(at, f"{dotted(at)}: {exc}")
            return BAD
        if name in SYNTHETIC:
            self.warn(at, f"{dotted(at)}: ignored: {name} is generated, not read")
        elif name in NEEDS_PATH and not resolved.exists():
            self.warn(at, f"{dotted(at)}: {resolved} does not exist (yet)")
        return str(resolved)

    def split_paths(self, name: str, raw: dict[str, Any]) -> dict[str, str] | Bad:
        """``dataset.path`` as a mapping of split name to file (or class folder):
        only train, val and test, train required, each resolved like a plain
        dataset.path (docs/design/split-files.md)."""
        at = ("dataset", "path")
        if name not in NEEDS_PATH:
            self.error(
                at,
                f"dataset.path: a mapping of split files is for data read from "
                f"files ({', '.join(NEEDS_PATH)}); {name} takes one path",
            )
            return BAD
        ok = True
        for key in raw:
            if key not in SPLIT_FILE_KEYS:
                near = _SPLIT_ALIASES.get(str(key).lower()) or nearest(
                    str(key).lower(), SPLIT_FILE_KEYS, 0.5
                )
                advice = f"did you mean {near}?" if near else "use train, val or test"
                self.error(
                    (*at, key),
                    f"dataset.path: unknown split {show(key)}; {advice}",
                    key=True,
                )
                ok = False
        if "train" not in raw:
            self.error(
                at,
                "dataset.path: a mapping of split files needs 'train' (val and test "
                "are optional: carved from train when absent)",
                (*at, "train"),
            )
            ok = False
        paths: dict[str, str] = {}
        for key in SPLIT_FILE_KEYS:
            if key not in raw:
                continue
            value = Str().check(self, (*at, key), raw[key])
            resolved = (
                BAD if value is BAD else self.dataset_path(name, value, (*at, key))
            )
            if isinstance(resolved, str):
                paths[key] = resolved
            else:
                ok = False
        return paths if ok else BAD

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
        if is_number(validation) and is_number(test) and validation + test >= 1:
            at = (*base, "test_split")
            self.error(
                at,
                f"{dotted(base)}: validation_split + test_split must be < 1, got "
                f"{validation:g} + {test:g} = {validation + test:g}",
            )

    def model(self, raw: dict[str, Any] | Bad, name: str | None) -> ModelConfig | Bad:
        if isinstance(raw, Bad) or name is None:
            return BAD
        base = ("model",)
        self.unknown_keys(base, raw, ("name", "architecture", "params"))
        architecture = Str(nullable=True).check(
            self, (*base, "architecture"), raw.get("architecture")
        )
        section = MODEL_FIELDS.get(name, Section({}, free=True))
        params = section.check(self, (*base, "params"), raw.get("params"))
        if architecture is BAD or has_bad(params):
            return BAD
        if name == "mlp":
            self.mlp_memory(params)
        if model_family(name) in IMAGE_MODEL_FAMILIES:
            architecture = self.image_variant(name, architecture)
            if architecture is BAD:
                return BAD
        self.model_warnings_end = len(self.warnings)
        return ModelConfig(
            name=name, architecture=architecture, params=freeze(drop_absent(params))
        )

    def mlp_memory(self, params: Mapping[str, Any]) -> None:
        """An error when the MLP's weights, gradients and two optimizer moments
        would need more than :data:`_MAX_MODEL_BYTES`: refused here, not by
        NumPy's MemoryError (or 'maximum dimension exceeded') at build."""
        sizes = params["layer_sizes"]
        weights = sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
        need = weights * (4 if params["dtype"] == "float32" else 8) * 4
        if need > _MAX_MODEL_BYTES:
            at = ("model", "params", "layer_sizes")
            self.error(
                at,
                f"{dotted(at)}: an MLP of {weights} weights needs about "
                f"{_gib(need)} GiB to train (weights, gradients, two optimizer "
                f"moments), over the {_gib(_MAX_MODEL_BYTES)} GiB a NumPy model may "
                "take; use smaller layers",
            )

    def image_variant(self, name: str, architecture: str | None) -> str | Bad:
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
                f"model.architecture: {show(architecture)} contradicts model.name "
                f"{name!r} (a {family} variant); use {family!r} or {name!r}, or "
                "leave it out",
            )
            return BAD
        if architecture in variants:
            return architecture
        what = (
            "is missing"
            if architecture is None
            else f"is {show(architecture)}, which is not a {family} variant"
        )
        self.error(
            at if architecture is not None else ("model",),
            f"model.architecture {what}; model.name {family!r} needs one of "
            f"{', '.join(variants)}",
            at,
        )
        return BAD

    def output_directory(self, raw: str) -> str | Bad:
        at = ("output", "directory")
        try:
            resolved = resolve_path(raw, self.root)
        except MLXError as exc:
            self.error(at, f"output.directory: {exc}")
            return BAD
        if not is_within(resolved, self.root):
            self.error(
                at,
                f"output.directory must resolve inside the repository root "
                f"{self.root}; {raw!r} resolves to {resolved}",
            )
            return BAD
        return str(resolved)

    # -- between sections

    def cross_checks(
        self,
        dataset: DatasetConfig | Bad,
        model: ModelConfig | Bad,
        training: dict[str, Any] | Bad,
        output: dict[str, Any] | Bad,
    ) -> None:
        if not isinstance(training, Bad):
            if training["params"] is not BAD:
                training["params"] = drop_absent(training["params"])
                self.nesterov(("training", "params"), training["params"])
            self.large_learning_rate(("training", "learning_rate"), training)
        if isinstance(model, ModelConfig) and "optimizer_config" in model.params:
            config = model.params["optimizer_config"]
            at = ("model", "params", "optimizer_config")
            self.large_learning_rate((*at, "learning_rate"), config)
            self.nesterov(at, config)
        if not isinstance(training, Bad) and not isinstance(output, Bad):
            self.checkpoint_frequency(training, output)

    def checkpoint_frequency(
        self, training: Mapping[str, Any], output: Mapping[str, Any]
    ) -> None:
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
        if not (is_number(momentum) and is_number(dampening)):
            return
        if params.get("nesterov") is True and (momentum <= 0 or dampening != 0):
            child = (*at, "nesterov")
            self.error(
                child,
                f"{dotted(child)} needs momentum > 0 and dampening 0, got momentum "
                f"{params.get('momentum', 0.0):g} and dampening "
                f"{params.get('dampening', 0.0):g}",
            )

    def runnable(
        self,
        dataset: DatasetConfig | Bad,
        model: ModelConfig | Bad,
        training: dict[str, Any] | Bad,
    ) -> None:
        """Whether the sections that validated can run here, when the caller gave
        a check (see mlx.config.runnable)."""
        if self.runnable_check is None:
            return
        device = precision = None
        if not isinstance(training, Bad):
            device, precision = training.get("device"), training.get("precision")
        found = self.runnable_check(
            Sections(
                dataset=dataset if isinstance(dataset, DatasetConfig) else None,
                model=model if isinstance(model, ModelConfig) else None,
                device=device if isinstance(device, str) else None,
                precision=precision if isinstance(precision, str) else None,
            ),
            self.doc,
            self.overrides,
        )
        end = self.model_warnings_end
        self.warnings[end:end] = found.blocked
        self.errors.extend(found.errors)
        self.warnings.extend(found.warnings)


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g}"
