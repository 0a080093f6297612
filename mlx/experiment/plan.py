"""What a run of a validated config would do, worked out without doing it.

``mlx run-experiment --dry-run`` prints :func:`render_dry_run`: the resolved
configuration as YAML, then the plan (dataset shape, task and memory, model size,
where outputs would go, and whether the run can go ahead here: the model on this
installation, a custom model's ``class_path``, the output path, and the data: every
file the run reads in place and readable, or, for files ``download: true`` would
fetch, the source answering a HEAD request). Nothing is trained or written; dataset
files are read no further than their headers (and the label array of
``.npy``/``.npz`` data), and a custom model's module is imported (as the run would),
to tell whether its ``class_path`` names a model. ``mlx run-experiment --dry-run``
exits 3 when the plan says the run cannot go ahead here.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from mlx.config.documents import YamlDumper, dump_yaml
from mlx.config.experiment import ExperimentConfig, ModelConfig
from mlx.config.names import IMAGE_MODEL_FAMILIES, model_family
from mlx.datasets import DatasetInfo, image_shape
from mlx.datasets.availability import describe_here
from mlx.errors import ModelError
from mlx.experiment.checks import format_bytes, model_blocker
from mlx.experiment.preflight import output_blocker

__all__ = [
    "Plan",
    "class_path_blocker",
    "make_plan",
    "parameter_count",
    "plan_record",
    "render_dry_run",
    "run_blocker",
]

_UNKNOWN = "unknown until the files are read"


@dataclasses.dataclass(frozen=True)
class Plan:
    """The dry-run plan of one experiment.

    ``run_directory`` is a pattern: the timestamp and the random suffix are chosen
    when the run starts. ``blocker`` says why the run cannot run here (``None``
    when it can): the model, or the data the plan read (headers, label arrays), a
    file that is not there, a download source that does not answer.
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
    """Work out the plan of ``config`` (cheap: nothing is loaded or written; the
    download source is asked whether it answers when the files would be fetched)."""
    info = describe_here(config.dataset)
    blocker = run_blocker(config, info)
    count = parameter_count(config.model, info.n_features)
    backend: tuple[tuple[str, str], ...] = ()
    if (
        model_blocker(config.model.name, config.model.params) is None
        and model_family(config.model.name) in IMAGE_MODEL_FAMILIES
    ):
        count, backend = _image_model_facts(config, info)
    return Plan(
        config=config,
        dataset=info,
        parameter_count=count,
        run_directory=f"{config.output.directory}/{config.name}-<timestamp>-xxxx/",
        blocker=blocker,
        backend=backend,
    )


def run_blocker(
    config: ExperimentConfig, info: DatasetInfo | None = None
) -> str | None:
    """Why a run of the validated ``config`` cannot go ahead here, or None: the
    model on this installation (and an image model's published weights), a custom
    model's ``class_path``, the output path, and the data as far as ``info`` (its
    :func:`~mlx.datasets.availability.describe_here`) found it: every file the run
    reads in place and readable, or the source a download would fetch from
    answering. Nothing is built or written."""
    blocker = model_blocker(config.model.name, config.model.params)
    if blocker is None and model_family(config.model.name) in IMAGE_MODEL_FAMILIES:
        blocker = _pretrained_blocker(config.model)
    return (
        blocker
        or class_path_blocker(config.model)
        or _callbacks_blocker(config)
        or output_blocker(config.output.directory, config.name)
        or _data_blocker(
            info if info is not None else describe_here(config.dataset),
            model_task(config.model),
        )
    )


def _image_model_facts(
    config: ExperimentConfig, info: DatasetInfo
) -> tuple[int | None, tuple[tuple[str, str], ...]]:
    """Parameter count and plan rows of an image model, from building it on
    torch's meta device (no weights are allocated)."""
    # mlx.models (NumPy) and torch load only for an image model: a dry run of
    # anything else imports neither
    from mlx.models.torch._build import meta_facts
    from mlx.models.torch.devices import resolve

    training = config.training
    placement = resolve(training.device, training.precision)
    device = str(placement.device)
    if training.device != device:
        device = f"{device} (training.device: {training.device})"
    rows = [("device", device), ("precision", training.precision)]
    shape = image_shape(info)
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


def _pretrained_blocker(model: ModelConfig) -> str | None:
    """Why an image model's published weights cannot be had here (not cached, and
    ``MLX_OFFLINE`` forbids the download), or None; nothing is fetched."""
    if model.params.get("pretrained") is not True:
        return None
    # mlx.models (NumPy) and torch load only for an image model
    from mlx.models.torch._build import offline_weights_problem

    return offline_weights_problem(str(model.architecture or model.name))


def class_path_blocker(model: ModelConfig) -> str | None:
    """Why a custom model's ``class_path`` cannot be used, or None: it does not
    import, names no model, or its constructor does not take the other params.

    The module is imported, as the run would: its code runs; nothing is built.
    """
    class_path = model.params.get("class_path")
    if model.name != "custom" or not isinstance(class_path, str):
        return None
    # mlx.models needs NumPy: loaded only for a custom model
    from mlx.models import check_custom_params

    try:
        check_custom_params(class_path, model.params)
    except ModelError as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        return f"model.params.class_path: {exc}{hint}"
    return None


def _callbacks_blocker(config: ExperimentConfig) -> str | None:
    """Why ``training.callbacks`` cannot be used, or None: a module that does not
    import, a name that is no callback class, params its constructor refuses."""
    if not config.training.callbacks:
        return None
    # mlx.models needs NumPy: loaded only for a run with callbacks
    from mlx.experiment.callbacks import callbacks_blocker

    return callbacks_blocker(config)


def _data_blocker(info: DatasetInfo, by_model: str | None) -> str | None:
    """Why the data the plan already read would stop the run, if it would."""
    problem = info.problem
    if problem is None:
        labels = info.label_problems
        if by_model is not None:
            problem = labels.get(by_model)
        elif "classification" in labels and "regression" in labels:
            # a custom model: its task is not known here, but no task would do
            problem = labels.get("")
    if problem is None:
        return None
    return f"the dataset would not load: {problem}"


def _shape(info: DatasetInfo) -> str:
    if info.n_samples is None or info.n_features is None:
        return _UNKNOWN
    return f"{info.n_samples:,} samples x {info.n_features:,} features"


def model_task(model: ModelConfig) -> str | None:
    """The task a built-in model trains for (None for custom models): an MLP
    without ``output_activation`` and linear regression regress, others classify."""
    if model.name == "mlp":
        activation = model.params.get("output_activation")
        return "regression" if activation is None else "classification"
    if model.name == "linear_regression":
        return "regression"
    return None


def _task(info: DatasetInfo, by_model: str | None) -> str:
    if info.task is None and info.name == "custom":
        # the model's task decides how a custom dataset's labels are read
        if by_model is None:
            if info.label_task is None:
                return _UNKNOWN
            return f"{info.label_task} by the labels, unless the model's task differs"
        if info.label_task is not None and info.label_task != by_model:
            return (
                f"{by_model}, the model's (the labels alone suggest "
                f"{info.label_task}; set dataset.params.task to say which)"
            )
        return by_model
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
        ("task", _task(info, model_task(plan.config.model))),
        ("memory", memory),
        ("model", model),
        *plan.backend,
        ("outputs", plan.run_directory),
        ("can run here", "yes" if plan.blocker is None else f"no: {plan.blocker}"),
    ]
    lines = ["plan (dry run: nothing was trained or written):"]
    lines += [f"  {label + ':':<14}{value}" for label, value in rows]
    return "\n".join(lines) + "\n"


def _resolved_task(info: DatasetInfo, by_model: str | None) -> str | None:
    """The task the run would train for, as one word (None while unknown)."""
    if info.task is not None:
        return info.task
    if info.name == "custom":
        return by_model or info.label_task
    return None


def plan_record(config: ExperimentConfig, plan: Plan | None = None) -> dict[str, Any]:
    """The dry run as data (``mlx run-experiment --dry-run --json``): the resolved
    config and the plan's rows (``plan``, when already made), numbers as numbers
    and None where unknown; ``can_run`` false with the ``reason`` when the run
    cannot go ahead here."""
    plan = make_plan(config) if plan is None else plan
    info = plan.dataset
    return {
        "config": config.to_dict(),
        "dataset": {
            "name": info.name,
            "n_samples": info.n_samples,
            "n_features": info.n_features,
            "task": _resolved_task(info, model_task(config.model)),
            "n_classes": info.n_classes,
            "memory_bytes": info.memory_bytes,
            "feature_dtype": info.feature_dtype,
        },
        "model": {"name": config.model.name, "parameters": plan.parameter_count},
        "backend": dict(plan.backend),
        "outputs": plan.run_directory,
        "can_run": plan.blocker is None,
        "reason": plan.blocker,
    }


class _Dumper(YamlDumper):
    """Block mappings, but lists of scalars on one line (``[20, 64, 3]``)."""


def _represent_list(dumper: YamlDumper, data: list) -> Any:
    flat = all(not isinstance(x, (list, dict)) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_Dumper.add_representer(list, _represent_list)


def render_dry_run(config: ExperimentConfig, plan: Plan | None = None) -> str:
    """The resolved configuration as YAML, a blank line, then the plan (``plan``,
    when already made)."""
    text = dump_yaml(config.to_dict(), Dumper=_Dumper, allow_unicode=False)
    return text + "\n" + render_plan(make_plan(config) if plan is None else plan)
