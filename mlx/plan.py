"""What a run of a validated config would do, worked out without doing it.

``mlx run-experiment --dry-run`` prints :func:`render_dry_run`: the resolved
configuration as YAML, then the plan (dataset shape, task and memory, model size,
where outputs would go, and whether the model can run on this installation).
Nothing here reads dataset files or writes anything.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import yaml

from mlx.config.experiment import ExperimentConfig, ModelConfig
from mlx.config.schema import (
    IMAGE_MODEL_FAMILIES,
    format_bytes,
    model_blocker,
    model_family,
)
from mlx.datasets import DatasetInfo, describe

__all__ = ["Plan", "make_plan", "parameter_count", "render_dry_run"]

_UNKNOWN = "unknown until the files are read"


@dataclasses.dataclass(frozen=True)
class Plan:
    """The dry-run plan of one experiment.

    ``run_directory`` is a pattern: the timestamp and the random suffix are chosen
    when the run starts. ``blocker`` says why the model cannot run here (``None``
    when it can).
    """

    config: ExperimentConfig
    dataset: DatasetInfo
    parameter_count: int | None
    run_directory: str
    blocker: str | None
    #: label -> value rows about a torch model (input shape, device, precision,
    #: checkpoint size); empty for NumPy models
    backend: tuple[tuple[str, str], ...] = ()

    @property
    def runnable(self) -> bool:
        return self.blocker is None


def parameter_count(model: ModelConfig, n_features: int | None) -> int | None:
    """Trainable parameters of a built-in model; ``None`` where unknown.

    An MLP has ``(a + 1) * b`` weights and biases between consecutive layer sizes
    ``a`` and ``b``; linear regression has one weight per feature plus a bias.
    """
    if model.name == "mlp":
        sizes: Sequence[int] = model.params["layer_sizes"]
        return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    if model.name == "linear_regression" and n_features is not None:
        return n_features + 1
    return None


def make_plan(config: ExperimentConfig) -> Plan:
    """Work out the plan of ``config`` (cheap: nothing is loaded or written)."""
    info = describe(config.dataset)
    blocker = model_blocker(config.model.name, config.model.params)
    count = parameter_count(config.model, info.n_features)
    backend: tuple[tuple[str, str], ...] = ()
    if blocker is None and model_family(config.model.name) in IMAGE_MODEL_FAMILIES:
        count, backend = _image_model_facts(config, info)
    return Plan(
        config=config,
        dataset=info,
        parameter_count=count,
        run_directory=f"{config.output.directory}/{config.name}-<timestamp>-xxxx/",
        blocker=blocker,
        backend=backend,
    )


def _image_model_facts(
    config: ExperimentConfig, info: DatasetInfo
) -> tuple[int | None, tuple[tuple[str, str], ...]]:
    """Parameter count and plan rows of an image model, from building it on
    torch's meta device (no weights are allocated)."""
    from mlx.experiment import image_shape
    from mlx.models.torch._build import meta_facts
    from mlx.models.torch.devices import resolve

    training = config.training
    placement = resolve(training.device, training.precision)
    device = str(placement.device)
    if training.device != device:
        device = f"{device} (training.device: {training.device})"
    rows = [("device", device), ("precision", training.precision)]
    shape = image_shape(config, info)
    if shape is None:
        rows.insert(0, ("input", _UNKNOWN))
        return None, tuple(rows)
    params = config.model.params
    variant = config.model.architecture or config.model.name
    classes = info.n_classes if info.task == "classification" else 1
    num_classes = params.get("num_classes", classes)
    if num_classes is None:
        rows.insert(0, ("input", f"{shape[0]} x {shape[1]} x {shape[2]} (C x H x W)"))
        return None, tuple(rows)
    count, size = meta_facts(
        variant,
        num_classes=int(num_classes),
        in_channels=int(params.get("in_channels", shape[0])),
        dropout=params.get("dropout"),
    )
    rows.insert(0, ("input", f"{shape[0]} x {shape[1]} x {shape[2]} (C x H x W)"))
    rows.append(("checkpoint", f"model.safetensors about {format_bytes(size)}"))
    return count, tuple(rows)


def _shape(info: DatasetInfo) -> str:
    if info.n_samples is None or info.n_features is None:
        return _UNKNOWN
    return f"{info.n_samples:,} samples x {info.n_features:,} features"


def _task(info: DatasetInfo) -> str:
    if info.task is None:
        return _UNKNOWN
    if info.task == "classification" and info.n_classes is not None:
        return f"classification, {info.n_classes} classes"
    return info.task


def render_plan(plan: Plan) -> str:
    """The plan as aligned ``label: value`` lines."""
    info = plan.dataset
    memory = (
        _UNKNOWN
        if info.memory_bytes is None
        else f"about {format_bytes(info.memory_bytes)} ({info.feature_dtype} features)"
    )
    count = plan.parameter_count
    model = plan.config.model.name
    if count is not None:
        model += f", {count:,} trainable parameters"
    else:
        model += ", parameter count unknown until the model is built"
    rows = [
        ("dataset", info.name),
        ("shape", _shape(info)),
        ("task", _task(info)),
        ("memory", memory),
        ("model", model),
        *plan.backend,
        ("outputs", plan.run_directory),
        ("can run here", "yes" if plan.blocker is None else f"no: {plan.blocker}"),
    ]
    lines = ["plan (dry run: nothing was trained or written):"]
    lines += [f"  {label + ':':<14}{value}" for label, value in rows]
    return "\n".join(lines) + "\n"


class _Dumper(yaml.SafeDumper):
    """Block mappings, but lists of scalars on one line (``[20, 64, 3]``)."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> Any:
    flat = all(not isinstance(x, (list, dict)) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_Dumper.add_representer(list, _represent_list)


def render_dry_run(config: ExperimentConfig) -> str:
    """The resolved configuration as YAML, a blank line, then the plan."""
    text = yaml.dump(
        config.to_dict(), Dumper=_Dumper, sort_keys=False, default_flow_style=False
    )
    return text + "\n" + render_plan(make_plan(config))
