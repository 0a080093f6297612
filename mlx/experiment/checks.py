"""Can a valid config run here? The plan's checks that ask the installation and the
data.

The schema (:mod:`mlx.config`) says what a config may hold; this module says whether
it can run on this installation with this data: the model's backend (PyTorch for the
image models and a custom ``torch.nn.Module``), the device and precision this machine
offers, and the dataset's shape as :func:`mlx.datasets.describe` finds it (the MLP's
input and output sizes, an image model's channels and classes, the memory the arrays
need). It sits above config, datasets and models, so the config package imports
neither.

:func:`check_runnable` takes the sections that validated
(:class:`mlx.config.runnable.Sections`; one that did not is None and its checks are
skipped) and the document with its overrides, for locations, and returns the issues
it found. Every command and API entry point that runs or plans a config passes it to
the loader (``load_config(..., runnable=check_runnable)``), which files the issues
among the schema's, in the order they were always reported.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

from mlx.config.documents import Document, NodePath, dotted
from mlx.config.experiment import DatasetConfig, ExperimentConfig, ModelConfig
from mlx.config.fields import IMAGE_CHANNELS, SYNTHETIC
from mlx.config.names import IMAGE_MODEL_FAMILIES, MEMORY_LIMIT_BYTES, model_family
from mlx.config.reporting import IssueLog
from mlx.config.runnable import RunnableIssues, Sections
from mlx.datasets import DatasetInfo, describe
from mlx.datasets.availability import data_error, fetches
from mlx.errors import ConfigError, ConfigWarning, MLXError

__all__ = [
    "check_runnable",
    "check_runnable_for_run",
    "ensure_data",
    "ensure_device",
    "ensure_runnable",
    "format_bytes",
    "model_blocker",
]


def check_runnable(
    sections: Sections,
    doc: Document,
    overrides: Mapping[NodePath, str] | None = None,
    *,
    data_first: bool = False,
) -> RunnableIssues:
    """Whether the config whose validated ``sections`` these are can run here.

    ``doc`` and ``overrides`` (each path set by ``--set`` -> its label) locate the
    issues. Nothing is raised or issued here; the caller decides. ``data_first``
    (a run's check, :func:`check_runnable_for_run`) leaves the device check, which
    imports torch, to :func:`ensure_device` when the data is not all here yet.
    """
    blocked = IssueLog(doc, overrides)
    if sections.model is not None:
        _model_runs_here(blocked, sections.model)
    log = IssueLog(doc, overrides)
    model = sections.model
    info = None
    if sections.dataset is not None:
        info = _describe(log, sections.dataset)
        if info is not None and model is not None and model.name == "mlp":
            _mlp_fits_dataset(log, model.params, info)
        if info is not None and model is not None:
            _image_classes(log, model, info)
    waits = data_first and not _data_here(sections.dataset, info)
    if model is not None and sections.device is not None and not waits:
        if sections.precision is not None:
            _device_runs_model(log, model, sections.device, sections.precision)
    return RunnableIssues(
        tuple(blocked.warnings), tuple(log.errors), tuple(log.warnings)
    )


def check_runnable_for_run(
    sections: Sections,
    doc: Document,
    overrides: Mapping[NodePath, str] | None = None,
) -> RunnableIssues:
    """:func:`check_runnable` as a run asks it: nothing imports torch before the
    run has looked at its data (:func:`ensure_data`, then :func:`ensure_device`
    where the device check waited)."""
    return check_runnable(sections, doc, overrides, data_first=True)


def ensure_runnable(config: ExperimentConfig, *, data_first: bool = False) -> None:
    """Raise :class:`ConfigError` when ``config``, validated as a document only (a
    ``load_config`` without ``runnable``), cannot run here; issue its warnings.
    ``data_first`` as for :func:`check_runnable`."""
    doc = Document(config.source or "<config>", config.to_dict())
    found = check_runnable(Sections.of(config), doc, data_first=data_first)
    _raise_or_warn(found)


def ensure_data(dataset: DatasetConfig) -> None:
    """Raise the error a run would stop on because its data cannot be had here (a
    file missing or unreadable, a download source that does not answer): what the
    plan says as ``can run here: no``. Cheap: torch is not imported."""
    error = data_error(dataset)
    if error is not None:
        raise error


def ensure_device(config: ExperimentConfig) -> None:
    """The device check :func:`check_runnable_for_run` left for later (the data was
    still to be downloaded): ConfigError when the device or precision cannot run
    here; nothing when the check was done then."""
    if _data_here(config.dataset, None):
        return
    doc = Document(config.source or "<config>", config.to_dict())
    log = IssueLog(doc)
    training = config.training
    _device_runs_model(log, config.model, training.device, training.precision)
    _raise_or_warn(RunnableIssues((), tuple(log.errors), tuple(log.warnings)))


def _data_here(dataset: DatasetConfig | None, info: DatasetInfo | None) -> bool:
    """Whether the data a run reads is all here (nothing to fetch first); asked of
    this machine only, never of the network."""
    if dataset is None:
        return True
    try:
        return not fetches(dataset) and data_error(dataset, info, probe=False) is None
    except MLXError:  # a cache that cannot be named: the run says why
        return False


def _raise_or_warn(found: RunnableIssues) -> None:
    for issue in (*found.blocked, *found.warnings):
        # stacklevel: here -> ensure_* -> run_experiment's helpers -> the caller
        warnings.warn(str(issue), ConfigWarning, stacklevel=5)
    if found.errors:
        errors = list(found.errors)
        raise ConfigError("\n".join(str(e) for e in errors), errors=errors)


def model_blocker(name: str, params: Mapping[str, Any]) -> str | None:
    """Why a valid model cannot run on this installation, or ``None`` if it can."""
    if model_family(name) in IMAGE_MODEL_FAMILIES:
        # mlx.models loads NumPy: imported when an image model asks, so that a
        # NumPy model's dry run starts without it
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


def _model_runs_here(log: IssueLog, model: ModelConfig) -> None:
    blocker = model_blocker(model.name, model.params)
    if blocker:
        at = ("model", "name") if model.name != "custom" else ("model", "params")
        log.warn(
            at, f"{dotted(at)}: {blocker}; the config is valid but cannot run here"
        )


def _device_runs_model(
    log: IssueLog, model: ModelConfig, device: str, precision: str
) -> None:
    """A device or precision a torch model cannot have here."""
    torch_model = model_family(model.name) in IMAGE_MODEL_FAMILIES
    if model.name == "custom":
        if device in ("auto", "cpu") and precision == "32":
            return  # nothing to check: no need to import the class
        uses = _custom_uses_torch(model.params)
        if uses is None:
            return  # the class does not import: the run's check says why
        torch_model = uses
    if not torch_model:
        if device not in ("auto", "cpu") or precision != "32":
            log.warn(
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
        log.error(("training", field), f"training.{field}: {message}")


def _custom_uses_torch(params: Mapping[str, Any]) -> bool | None:
    """Whether a custom model's class is a torch.nn.Module (its module is imported,
    as the run would), or None when it does not import."""
    if not isinstance(params.get("class_path"), str):
        return None
    from mlx.models import uses_torch

    try:
        return uses_torch("custom", params)
    except MLXError:
        return None


def _image_classes(log: IssueLog, model: ModelConfig, info: DatasetInfo) -> None:
    """An image model needs image data, and num_classes must match it."""
    if model_family(model.name) not in IMAGE_MODEL_FAMILIES:
        return
    if info.name not in IMAGE_CHANNELS:
        log.error(
            ("model", "name"),
            f"model.name: {model.name} is an image model, but the {info.name} "
            "dataset holds no images; use an image dataset "
            f"({', '.join(IMAGE_CHANNELS)}) or an mlp",
        )
        return
    channels = model.params.get("in_channels")
    expected_channels = IMAGE_CHANNELS.get(info.name)
    if channels is not None and expected_channels not in (None, channels):
        at = ("model", "params", "in_channels")
        log.error(
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
        log.error(
            at,
            f"{dotted(at)} is {given}, but {info.name} has {expected} "
            + ("classes" if info.task == "classification" else "output"),
        )


def _describe(log: IssueLog, dataset: DatasetConfig) -> DatasetInfo | None:
    """What the dataset holds, as :func:`mlx.datasets.describe` finds it without
    loading it; an error (None) when it cannot say, and the memory guard."""
    try:
        info = describe(dataset)
    except MLXError as exc:
        log.error(("dataset",), f"dataset: {exc}")
        return None
    if info.memory_bytes is not None and info.memory_bytes >= MEMORY_LIMIT_BYTES:
        at = ("dataset", "params")
        estimate = format_bytes(info.memory_bytes)
        if dataset.name in SYNTHETIC:
            # generated in memory as a whole: refuse before allocating
            log.error(
                at,
                f"dataset: {dataset.name} needs an estimated {estimate} in "
                "memory, over the 1 GiB limit; reduce n_samples or n_features",
                ("dataset",),
            )
        elif dataset.name == "imagenet":
            pass  # streamed from disk (mlx.datasets.streaming)
        else:
            # read from files, whose loader may use a narrower dtype
            log.warn(
                at,
                f"dataset: {dataset.name} needs an estimated {estimate} in "
                "memory as float64, over 1 GiB",
            )
    return info


def _mlp_fits_dataset(
    log: IssueLog, params: Mapping[str, Any], info: DatasetInfo
) -> None:
    """The MLP's input size is the feature count, its output fits the task."""
    sizes: Sequence[int] = params["layer_sizes"]
    at = ("model", "params", "layer_sizes")
    if info.n_features is not None and sizes[0] != info.n_features:
        log.error(
            (*at, 0),
            f"{dotted((*at, 0))} (the input size) must equal the dataset's "
            f"feature count {info.n_features}, got {sizes[0]}",
        )
    last = (*at, len(sizes) - 1)
    out = sizes[-1]
    activation = params.get("output_activation")
    if info.task == "classification":
        _classification_output(log, last, out, activation, info.n_classes)
    elif info.task == "regression":
        if out != 1:
            log.error(
                last,
                f"{dotted(last)} (the output size) must be 1 for a regression "
                f"dataset, got {out}",
            )
        if activation is not None:
            log.warn(
                ("model", "params", "output_activation"),
                f"model.params.output_activation: {activation} squashes the "
                "predictions of a regression model; leave it null",
            )
    elif activation is None and out != 1:
        # the data's labels are read for the model's task: one number per row
        log.error(
            last,
            f"{dotted(last)} (the output size) must be 1 for a regression model "
            f"(an MLP without output_activation), got {out}",
        )


def _classification_output(
    log: IssueLog, last: NodePath, out: int, activation: str | None, classes: int | None
) -> None:
    allowed: tuple[int, ...] = ()
    if classes == 2:
        allowed = (1, 2)
        expected = "1 (sigmoid) or 2 (softmax) for 2 classes"
    elif classes is not None:
        allowed = (classes,)
        expected = f"{classes}, the number of classes"
    if allowed and out not in allowed:
        log.error(
            last,
            f"{dotted(last)} (the output size) must be {expected}, got {out}",
        )
    if activation is None:
        suggestion = "sigmoid" if out == 1 else "softmax"
        log.warn(
            ("model", "params", "output_activation"),
            "model.params.output_activation is not set for a classification "
            f"dataset; set it to {suggestion}",
        )
    elif activation == "softmax" and out == 1:
        log.warn(
            ("model", "params", "output_activation"),
            "model.params.output_activation: softmax over 1 output is "
            "always 1; use sigmoid",
        )
