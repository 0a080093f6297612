"""One row per config rule, each checked in YAML and in JSON with its position.

A row mutates a valid base config, the config is written out as YAML (block
mappings) or indented JSON, and the test asserts the message and where it points.
The expected position comes from a line scanner over the written text
(:func:`_locate`), independent of the loader's parsers.
"""

# ruff: noqa: E501  (a rule's message pattern reads best unbroken)
from __future__ import annotations

import copy
import json
import math
import re
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from mlx.config import ConfigError, ConfigIssue, ConfigWarning, load_config
from mlx.experiment.checks import check_runnable

DELETE = object()


def base() -> dict:
    return {
        "name": "rules",
        "description": "base config of the rule table",
        "dataset": {
            "name": "synthetic_classification",
            "params": {"n_samples": 100, "n_features": 4, "n_classes": 3, "seed": 1},
        },
        "model": {
            "name": "mlp",
            "params": {"layer_sizes": [4, 8, 3], "output_activation": "softmax"},
        },
        "training": {
            "epochs": 10,
            "batch_size": 16,
            "learning_rate": 0.01,
            "optimizer": "adam",
            "seed": 0,
        },
        "output": {"directory": "outputs/rules", "checkpoint_frequency": 1},
    }


class Row(NamedTuple):
    id: str
    changes: dict  # dotted path -> value, DELETE, or callable(tmp_path) -> value
    match: str  # regex the issue's message must match
    at: str  # dotted path whose position the issue must report
    kind: str = "value"  # "value", "key" (its key) or "parent" (enclosing mapping)


def _set(data: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    if value is DELETE:
        del data[last]
    else:
        data[last] = value


def build(row: Row, tmp_path: Path) -> dict:
    data = base()
    for dotted, value in row.changes.items():
        if callable(value):
            value = value(tmp_path)
        _set(data, dotted, value if value is DELETE else copy.deepcopy(value))
    return data


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    list,
    lambda d, x: d.represent_sequence("tag:yaml.org,2002:seq", x, flow_style=True),
)


def write(tmp_path: Path, data: dict, fmt: str) -> Path:
    path = tmp_path / f"exp.{fmt}"
    if fmt == "json":
        text = json.dumps(data, indent=2)
    else:
        text = yaml.dump(
            data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000
        )
    path.write_text(text, encoding="utf-8")
    return path


def _locate(text: str, fmt: str, dotted: str, kind: str) -> tuple[int, int | None]:
    """1-based (line, column) of a key or value, found by scanning lines."""
    lines = text.splitlines()
    parts: list[Any] = []
    for piece in dotted.split("."):
        name, *indices = re.split(r"\[|\]\[|\]$", piece)
        parts.append(name)
        parts += [int(i) for i in indices if i]
    if kind == "parent":
        parts = parts[:-1]
        if not parts:
            return 1, 1
    row, indent = -1, -1
    for part in parts:
        if isinstance(part, int):
            if fmt == "yaml":  # flow list: elements share the key's line
                return row + 1, None
            line = lines[row + 1 + part]
            return row + 2 + part, len(line) - len(line.lstrip()) + 1
        token = f'"{part}":' if fmt == "json" else f"{part}:"
        for j in range(row + 1, len(lines)):
            stripped = lines[j].lstrip()
            depth = len(lines[j]) - len(stripped)
            if stripped and depth <= indent:
                raise AssertionError(f"{part!r} not found in {dotted}")
            if depth > indent and stripped.startswith(token):
                row, indent = j, depth
                break
        else:
            raise AssertionError(f"{part!r} not found in {dotted}")
    if kind == "key":
        return row + 1, indent + 1
    line = lines[row]
    after = line.index(token, indent) + len(token)
    rest = line[after:]
    if not rest.strip():  # a block mapping: it starts at its first key
        following = lines[row + 1]
        return row + 2, len(following) - len(following.lstrip()) + 1
    return row + 1, after + len(rest) - len(rest.lstrip()) + 1


def _outside(tmp_path: Path) -> str:
    return str(tmp_path.parent / "elsewhere")


def _symlink_out(tmp_path: Path) -> str:
    target = tmp_path.parent / f"{tmp_path.name}-target"
    target.mkdir(exist_ok=True)
    (tmp_path / "link").symlink_to(target, target_is_directory=True)
    return "link/run"


CUSTOM = {"name": "custom", "path": "data.csv"}
IMAGENET = {"name": "imagenet", "path": "imagenet"}
REGRESSION = {"name": "synthetic_regression", "params": {"n_features": 4}}
LINEAR = {"name": "linear_regression"}

ERRORS = [
    Row(
        "image-architecture-contradicts-name",
        {"model": {"name": "vgg16", "architecture": "resnet"}},
        r"model.architecture: 'resnet' contradicts model.name 'vgg16'",
        "model.architecture",
    ),
    Row(
        "image-family-without-variant",
        {"model": {"name": "mobilenet", "architecture": "mobilenet_v9"}},
        r"model.architecture is 'mobilenet_v9', which is not a mobilenet variant",
        "model.architecture",
    ),
    Row(
        "image-num-classes-mismatch",
        {
            "dataset": {"name": "mnist"},
            "model": {"name": "resnet18", "params": {"num_classes": 5}},
        },
        r"model.params.num_classes is 5, but mnist has 10 classes",
        "model.params.num_classes",
    ),
    Row(
        "image-model-without-images",
        {"model": {"name": "resnet18"}},
        r"model.name: resnet18 is an image model, but the synthetic_classification "
        r"dataset holds no images; use an image dataset \(mnist, cifar10, cifar100, "
        r"imagenet\) or an mlp",
        "model.name",
    ),
    Row(
        "image-in-channels-mismatch",
        {
            "dataset": {"name": "mnist"},
            "model": {"name": "resnet18", "params": {"in_channels": 3}},
        },
        r"model.params.in_channels is 3, but mnist images have 1 channel",
        "model.params.in_channels",
    ),
    Row(
        "image-dropout-range",
        {"model": {"name": "efficientnet_b0", "params": {"dropout": 1.5}}},
        r"model.params.dropout must be a finite number in \[0, 1\)",
        "model.params.dropout",
    ),
    Row(
        "training-device-unknown",
        {"training.device": "gpu"},
        r"training.device must be one of 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'",
        "training.device",
    ),
    Row(
        "training-precision-unknown",
        {"training.precision": "fp8"},
        r"training.precision must be one of '32', 'bf16-mixed', '16-mixed'",
        "training.precision",
    ),
    Row(
        "training-grad-clip-norm",
        {"training.params": {"grad_clip_norm": 0}},
        r"training.params.grad_clip_norm must be a finite number > 0",
        "training.params.grad_clip_norm",
    ),
    # required fields: a missing field points at its parent mapping
    Row(
        "missing-name",
        {"name": DELETE},
        r"missing required field 'name'",
        "name",
        "parent",
    ),
    Row(
        "missing-dataset",
        {"dataset": DELETE},
        r"missing required field 'dataset'",
        "dataset",
        "parent",
    ),
    Row(
        "missing-model",
        {"model": DELETE},
        r"missing required field 'model'",
        "model",
        "parent",
    ),
    Row(
        "missing-dataset-name",
        {"dataset.name": DELETE},
        r"missing required field 'dataset.name'",
        "dataset.name",
        "parent",
    ),
    Row(
        "missing-model-name",
        {"model.name": DELETE},
        r"missing required field 'model.name'",
        "model.name",
        "parent",
    ),
    Row(
        "missing-layer-sizes",
        {"model.params.layer_sizes": DELETE},
        r"missing required field 'model.params.layer_sizes'",
        "model.params.layer_sizes",
        "parent",
    ),
    Row(
        "custom-missing-path",
        {"dataset": {"name": "custom"}},
        r"missing required field 'dataset.path'",
        "dataset.path",
        "parent",
    ),
    Row(
        "imagenet-missing-path",
        {"dataset": {"name": "imagenet"}},
        r"missing required field 'dataset.path'",
        "dataset.path",
        "parent",
    ),
    # top level
    Row("name-int", {"name": 5}, r"^name must be a directory name .*, got 5$", "name"),
    Row(
        "name-space",
        {"name": "my exp"},
        r"name must be a directory name .*, got 'my exp'",
        "name",
    ),
    Row("name-slash", {"name": "a/b"}, r"name must be a directory name", "name"),
    Row(
        "name-too-long",
        {"name": "a" * 101},
        r"name must be a directory name of 1 to 100",
        "name",
    ),
    Row("name-dots", {"name": ".."}, r"name must be a directory name", "name"),
    Row(
        "description-empty",
        {"description": ""},
        r"description must be a non-empty string or null, got ''",
        "description",
    ),
    Row(
        "description-int",
        {"description": 3},
        r"description must be a non-empty string",
        "description",
    ),
    Row(
        "dataset-not-mapping",
        {"dataset": ["mnist"]},
        r"^dataset must be a mapping, got a list$",
        "dataset",
    ),
    Row(
        "model-not-mapping",
        {"model": "mlp"},
        r"^model must be a mapping, got 'mlp'$",
        "model",
    ),
    Row(
        "training-not-mapping",
        {"training": 5},
        r"^training must be a mapping, got 5$",
        "training",
    ),
    Row(
        "output-not-mapping",
        {"output": [1]},
        r"^output must be a mapping, got a list$",
        "output",
    ),
    # names
    Row(
        "unknown-dataset",
        {"dataset.name": "mnsit"},
        r"dataset.name: unknown dataset 'mnsit'; did you mean mnist\?",
        "dataset.name",
    ),
    Row(
        "unknown-dataset-no-match",
        {"dataset.name": "zzzz"},
        r"unknown dataset 'zzzz'; known datasets: mnist, cifar10",
        "dataset.name",
    ),
    Row(
        "unknown-model",
        {"model.name": "resnet19"},
        r"model.name: unknown model 'resnet19'; did you mean resnet18\?",
        "model.name",
    ),
    Row(
        "unknown-model-case",
        {"model.name": "MLP"},
        r"unknown model 'MLP'; did you mean mlp\?",
        "model.name",
    ),
    Row(
        "dataset-name-int",
        {"dataset.name": 7},
        r"dataset.name: unknown dataset 7",
        "dataset.name",
    ),
    # synthetic dataset params
    Row(
        "n-samples-zero",
        {"dataset.params.n_samples": 0},
        r"dataset.params.n_samples must be an integer >= 1, got 0$",
        "dataset.params.n_samples",
    ),
    Row(
        "n-samples-string",
        {"dataset.params.n_samples": "5"},
        r"n_samples must be an integer >= 1, got '5'",
        "dataset.params.n_samples",
    ),
    Row(
        "n-samples-float",
        {"dataset.params.n_samples": 5.0},
        r"n_samples must be an integer >= 1, got 5.0",
        "dataset.params.n_samples",
    ),
    Row(
        "n-samples-bool",
        {"dataset.params.n_samples": True},
        r"n_samples must be an integer >= 1, got true",
        "dataset.params.n_samples",
    ),
    Row(
        "n-features-zero",
        {"dataset.params.n_features": 0},
        r"n_features must be an integer >= 1, got 0",
        "dataset.params.n_features",
    ),
    Row(
        "n-informative-zero",
        {"dataset.params.n_informative": 0},
        r"n_informative must be an integer >= 1, got 0",
        "dataset.params.n_informative",
    ),
    Row(
        "n-informative-too-big",
        {"dataset.params.n_informative": 5},
        r"n_informative must be <= n_features \(4\), got 5",
        "dataset.params.n_informative",
    ),
    Row(
        "seed-negative",
        {"dataset.params.seed": -1},
        r"dataset.params.seed must be an integer >= 0 or null, got -1",
        "dataset.params.seed",
    ),
    Row(
        "n-classes-one",
        {"dataset.params.n_classes": 1},
        r"n_classes must be an integer >= 2, got 1",
        "dataset.params.n_classes",
    ),
    Row(
        "class-sep-zero",
        {"dataset.params.class_sep": 0},
        r"class_sep must be a finite number > 0, got 0",
        "dataset.params.class_sep",
    ),
    Row(
        "class-sep-nan",
        {"dataset.params.class_sep": math.nan},
        r"class_sep must be a finite number > 0, got nan",
        "dataset.params.class_sep",
    ),
    Row(
        "noise-std-negative",
        {"dataset": {**REGRESSION, "params": {"noise_std": -0.5}}},
        r"noise_std must be a finite number >= 0, got -0.5",
        "dataset.params.noise_std",
    ),
    Row(
        "noise-std-inf",
        {"dataset": {**REGRESSION, "params": {"noise_std": math.inf}}},
        r"noise_std must be a finite number >= 0, got inf",
        "dataset.params.noise_std",
    ),
    Row(
        "validation-split-one",
        {"dataset.params.validation_split": 1.0},
        r"validation_split must be a finite number in \[0, 1\), got 1.0",
        "dataset.params.validation_split",
    ),
    Row(
        "test-split-negative",
        {"dataset.params.test_split": -0.1},
        r"test_split must be a finite number in \[0, 1\), got -0.1",
        "dataset.params.test_split",
    ),
    Row(
        "splits-sum",
        {"dataset.params.validation_split": 0.5, "dataset.params.test_split": 0.5},
        r"validation_split \+ test_split must be < 1, got 0.5 \+ 0.5 = 1",
        "dataset.params.test_split",
    ),
    Row(
        "standardize-string",
        {"dataset.params.standardize": "yes"},
        r"standardize must be true or false, got 'yes'",
        "dataset.params.standardize",
    ),
    Row(
        "memory-over-1gib",
        {"dataset.params.n_samples": 40_000_000},
        r"needs an estimated 1.\d GiB in memory, over the 1 GiB limit",
        "dataset.params",
    ),
    # other datasets
    Row(
        "custom-task",
        {"dataset": {**CUSTOM, "params": {"task": "clustering"}}},
        r"dataset.params.task must be one of 'classification', 'regression' or null, got 'clustering'",
        "dataset.params.task",
    ),
    Row(
        "custom-allow-nan",
        {"dataset": {**CUSTOM, "params": {"allow_nan": 1}}},
        r"allow_nan must be true or false, got 1",
        "dataset.params.allow_nan",
    ),
    Row(
        "imagenet-image-size",
        {"dataset": {**IMAGENET, "params": {"image_size": 4}}},
        r"image_size must be an integer in \[8, 4096\], got 4",
        "dataset.params.image_size",
    ),
    Row(
        "cifar-augmentation",
        {"dataset": {"name": "cifar10", "params": {"augmentation": "yes"}}},
        r"augmentation must be true or false, got 'yes'",
        "dataset.params.augmentation",
    ),
    Row(
        "imagenet-augmentation",
        {"dataset": {**IMAGENET, "params": {"augmentation": 1}}},
        r"augmentation must be true or false, got 1",
        "dataset.params.augmentation",
    ),
    Row(
        "mnist-download",
        {"dataset": {"name": "mnist", "params": {"download": "no"}}},
        r"download must be true or false, got 'no'",
        "dataset.params.download",
    ),
    Row(
        "dataset-path-int",
        {"dataset": {"name": "custom", "path": 3}},
        r"dataset.path must be a non-empty string or null, got 3",
        "dataset.path",
    ),
    # mlp
    Row(
        "layer-sizes-short",
        {"model.params.layer_sizes": [4]},
        r"layer_sizes must be a list of at least 2 integers >= 1, got a list of 1",
        "model.params.layer_sizes",
    ),
    Row(
        "layer-sizes-string",
        {"model.params.layer_sizes": "4,3"},
        r"layer_sizes must be a list of at least 2 integers >= 1, got '4,3'",
        "model.params.layer_sizes",
    ),
    Row(
        "layer-sizes-zero",
        {"model.params.layer_sizes": [4, 0, 3]},
        r"model.params.layer_sizes\[1\] must be an integer >= 1, got 0",
        "model.params.layer_sizes[1]",
    ),
    Row(
        "layer-sizes-input",
        {"model.params.layer_sizes": [5, 8, 3]},
        r"layer_sizes\[0\] \(the input size\) must equal the dataset's feature count 4, got 5",
        "model.params.layer_sizes[0]",
    ),
    Row(
        "layer-sizes-output",
        {"model.params.layer_sizes": [4, 8, 2]},
        r"layer_sizes\[2\] \(the output size\) must be 3, the number of classes, got 2",
        "model.params.layer_sizes[2]",
    ),
    Row(
        "layer-sizes-binary",
        {"dataset.params.n_classes": 2, "model.params.layer_sizes": [4, 3]},
        r"must be 1 \(sigmoid\) or 2 \(softmax\) for 2 classes, got 3",
        "model.params.layer_sizes[1]",
    ),
    Row(
        "layer-sizes-regression",
        {
            "dataset": REGRESSION,
            "model.params.output_activation": None,
            "model.params.layer_sizes": [4, 2],
        },
        r"must be 1 for a regression dataset, got 2",
        "model.params.layer_sizes[1]",
    ),
    Row(
        "activation",
        {"model.params.activation": "relu6"},
        r"activation must be one of 'relu', 'tanh', 'sigmoid', got 'relu6'; did you mean relu\?",
        "model.params.activation",
    ),
    Row(
        "output-activation",
        {"model.params.output_activation": "linear"},
        r"output_activation must be one of 'sigmoid', 'softmax' or null, got 'linear'",
        "model.params.output_activation",
    ),
    Row(
        "gradient-clip-zero",
        {"model.params.gradient_clip": 0},
        r"gradient_clip must be a finite number > 0 or null, got 0",
        "model.params.gradient_clip",
    ),
    Row(
        "weight-clip-negative",
        {"model.params.weight_clip": -1.0},
        r"weight_clip must be a finite number > 0 or null",
        "model.params.weight_clip",
    ),
    Row(
        "activation-clip-string",
        {"model.params.activation_clip": "big"},
        r"activation_clip must be a finite number > 0 or null",
        "model.params.activation_clip",
    ),
    Row(
        "dtype",
        {"model.params.dtype": "float16"},
        r"dtype must be one of 'float64', 'float32', got 'float16'",
        "model.params.dtype",
    ),
    Row(
        "mlp-seed",
        {"model.params.seed": 1.5},
        r"model.params.seed must be an integer >= 0 or null, got 1.5",
        "model.params.seed",
    ),
    # optimizer_config and training.params share the optimizer rules
    Row(
        "optimizer-type",
        {"model.params.optimizer_config": {"optimizer_type": "adagrad"}},
        r"optimizer_type must be one of 'sgd', 'adam', 'adamw', 'rmsprop', got 'adagrad'",
        "model.params.optimizer_config.optimizer_type",
    ),
    Row(
        "optimizer-lr-zero",
        {"model.params.optimizer_config": {"learning_rate": 0}},
        r"optimizer_config.learning_rate must be a finite number > 0, got 0",
        "model.params.optimizer_config.learning_rate",
    ),
    Row(
        "optimizer-betas",
        {"model.params.optimizer_config": {"betas": [0.9]}},
        r"betas must be a list of two numbers in \[0, 1\), got a list",
        "model.params.optimizer_config.betas",
    ),
    Row(
        "optimizer-betas-one",
        {"training.params": {"betas": [0.9, 1.0]}},
        r"training.params.betas must be a list of two numbers",
        "training.params.betas",
    ),
    Row(
        "optimizer-eps",
        {"training.params": {"eps": 0}},
        r"training.params.eps must be a finite number > 0, got 0",
        "training.params.eps",
    ),
    Row(
        "optimizer-momentum",
        {"training.params": {"momentum": -0.1}},
        r"momentum must be a finite number >= 0, got -0.1",
        "training.params.momentum",
    ),
    Row(
        "optimizer-dampening",
        {"training.params": {"dampening": -1}},
        r"dampening must be a finite number >= 0, got -1",
        "training.params.dampening",
    ),
    Row(
        "optimizer-weight-decay",
        {"training.params": {"weight_decay": -1}},
        r"weight_decay must be a finite number >= 0",
        "training.params.weight_decay",
    ),
    Row(
        "optimizer-alpha",
        {"training.params": {"alpha": 1}},
        r"alpha must be a finite number in \[0, 1\), got 1",
        "training.params.alpha",
    ),
    Row(
        "optimizer-centered",
        {"training.params": {"centered": "no"}},
        r"centered must be true or false",
        "training.params.centered",
    ),
    Row(
        "optimizer-nesterov",
        {"training.params": {"nesterov": True}},
        r"nesterov needs momentum > 0 and dampening 0, got momentum 0",
        "training.params.nesterov",
    ),
    Row(
        "warmup-epochs",
        {"training.params": {"warmup_epochs": -1}},
        r"warmup_epochs must be an integer >= 0, got -1",
        "training.params.warmup_epochs",
    ),
    Row(
        "lr-schedule",
        {"training.params": {"lr_schedule": "cosin"}},
        r"lr_schedule must be one of 'constant', 'step', 'cosine', got 'cosin'; did you mean cosine\?",
        "training.params.lr_schedule",
    ),
    Row(
        "step-size",
        {"training.params": {"step_size": 0}},
        r"step_size must be an integer >= 1, got 0",
        "training.params.step_size",
    ),
    Row(
        "gamma",
        {"training.params": {"gamma": 0}},
        r"gamma must be a finite number > 0, got 0",
        "training.params.gamma",
    ),
    # linear regression and custom models
    Row(
        "l2-negative",
        {
            "dataset": REGRESSION,
            "model": {**LINEAR, "params": {"l2_regularization": -1}},
        },
        r"l2_regularization must be a finite number >= 0, got -1",
        "model.params.l2_regularization",
    ),
    Row(
        "gradient-descent-string",
        {
            "dataset": REGRESSION,
            "model": {**LINEAR, "params": {"use_gradient_descent": "no"}},
        },
        r"use_gradient_descent must be true or false, got 'no'",
        "model.params.use_gradient_descent",
    ),
    Row(
        "optimizer-config-list",
        {
            "dataset": REGRESSION,
            "model": {**LINEAR, "params": {"optimizer_config": [1]}},
        },
        r"optimizer_config must be a mapping, got a list",
        "model.params.optimizer_config",
    ),
    Row(
        "class-path",
        {"model": {"name": "custom", "params": {"class_path": "mypkg.Net"}}},
        r"class_path must be of the form 'package.module:ClassName', got 'mypkg.Net'",
        "model.params.class_path",
    ),
    Row(
        "architecture-empty",
        {"model.architecture": ""},
        r"model.architecture must be a non-empty string or null",
        "model.architecture",
    ),
    # training
    Row(
        "epochs-negative",
        {"training.epochs": -3},
        r"^training.epochs must be an integer >= 1, got -3$",
        "training.epochs",
    ),
    Row(
        "epochs-zero",
        {"training.epochs": 0},
        r"training.epochs must be an integer >= 1, got 0",
        "training.epochs",
    ),
    Row(
        "epochs-float",
        {"training.epochs": 5.0},
        r"training.epochs must be an integer >= 1, got 5.0",
        "training.epochs",
    ),
    Row(
        "epochs-bool",
        {"training.epochs": True},
        r"training.epochs must be an integer >= 1, got true",
        "training.epochs",
    ),
    Row(
        "epochs-null",
        {"training.epochs": None},
        r"training.epochs must be an integer >= 1, got null",
        "training.epochs",
    ),
    Row(
        "batch-size-zero",
        {"training.batch_size": 0},
        r"batch_size must be an integer >= 1, got 0",
        "training.batch_size",
    ),
    Row(
        "learning-rate-zero",
        {"training.learning_rate": 0},
        r"learning_rate must be a finite number > 0, got 0",
        "training.learning_rate",
    ),
    Row(
        "learning-rate-string",
        {"training.learning_rate": "0.1"},
        r"learning_rate must be a finite number > 0, got '0.1'",
        "training.learning_rate",
    ),
    Row(
        "learning-rate-inf",
        {"training.learning_rate": math.inf},
        r"learning_rate must be a finite number > 0, got inf",
        "training.learning_rate",
    ),
    Row(
        "optimizer",
        {"training.optimizer": "adm"},
        r"training.optimizer must be one of 'adam', 'sgd', 'rmsprop', 'adamw', got 'adm'; did you mean adam\?",
        "training.optimizer",
    ),
    Row(
        "training-seed",
        {"training.seed": -1},
        r"training.seed must be an integer >= 0, got -1",
        "training.seed",
    ),
    Row(
        "training-params-list",
        {"training.params": [1]},
        r"training.params must be a mapping, got a list",
        "training.params",
    ),
    # output and paths
    Row(
        "directory-empty",
        {"output.directory": ""},
        r"output.directory must be a non-empty string, got ''",
        "output.directory",
    ),
    Row(
        "directory-dotdot",
        {"output.directory": "../escape"},
        r"output.directory must resolve inside the repository root .*; '../escape' resolves to .*escape",
        "output.directory",
    ),
    Row(
        "directory-absolute",
        {"output.directory": _outside},
        r"output.directory must resolve inside the repository root .*elsewhere' resolves to .*elsewhere$",
        "output.directory",
    ),
    Row(
        "directory-symlink",
        {"output.directory": _symlink_out},
        r"'link/run' resolves to .*-target/run$",
        "output.directory",
    ),
    Row(
        "checkpoint-frequency",
        {"output.checkpoint_frequency": 0},
        r"checkpoint_frequency must be an integer >= 1, got 0",
        "output.checkpoint_frequency",
    ),
    Row(
        "save-logs",
        {"output.save_logs": "true"},
        r"save_logs must be true or false, got 'true'",
        "output.save_logs",
    ),
    Row(
        "save-checkpoints",
        {"output.save_checkpoints": 1},
        r"save_checkpoints must be true or false, got 1",
        "output.save_checkpoints",
    ),
    Row(
        "output-params",
        {"output.params": "x"},
        r"output.params must be a mapping, got 'x'",
        "output.params",
    ),
]

WARNINGS = [
    Row(
        "unknown-top-key",
        {"traning": {}},
        r"^traning: unknown key; did you mean training\?$",
        "traning",
        "key",
    ),
    Row(
        "unknown-training-key",
        {"training.learnig_rate": 0.1},
        r"^training.learnig_rate: unknown key; did you mean learning_rate\?$",
        "training.learnig_rate",
        "key",
    ),
    Row(
        "unknown-dataset-param",
        {"dataset.params.n_sample": 10},
        r"dataset.params.n_sample: unknown key; did you mean n_samples\?",
        "dataset.params.n_sample",
        "key",
    ),
    Row(
        "unknown-model-param",
        {"model.params.activaton": "relu"},
        r"model.params.activaton: unknown key; did you mean activation\?",
        "model.params.activaton",
        "key",
    ),
    Row(
        "unknown-optimizer-key",
        {"training.params": {"momentun": 0.9}},
        r"training.params.momentun: unknown key; did you mean momentum\?",
        "training.params.momentun",
        "key",
    ),
    Row(
        "unknown-key-no-match",
        {"output.zzz": 1},
        r"output.zzz: unknown key; known keys: directory, ",
        "output.zzz",
        "key",
    ),
    Row(
        "large-learning-rate",
        {"training.learning_rate": 2},
        r"training.learning_rate is 2; values above 1.0 usually make training diverge",
        "training.learning_rate",
    ),
    Row(
        "large-optimizer-lr",
        {"model.params.optimizer_config": {"learning_rate": 5.0}},
        r"optimizer_config.learning_rate is 5; values above 1.0",
        "model.params.optimizer_config.learning_rate",
    ),
    Row(
        "checkpoint-after-end",
        {"output.checkpoint_frequency": 20},
        r"output.checkpoint_frequency \(20\) is larger than training.epochs \(10\)",
        "output.checkpoint_frequency",
    ),
    Row(
        "no-output-activation",
        {"model.params.output_activation": DELETE},
        r"output_activation is not set for a classification dataset; set it to softmax",
        "model.params.output_activation",
        "parent",
    ),
    Row(
        "binary-sigmoid",
        {
            "dataset.params.n_classes": 2,
            "model.params.layer_sizes": [4, 1],
            "model.params.output_activation": DELETE,
        },
        r"set it to sigmoid",
        "model.params.output_activation",
        "parent",
    ),
    Row(
        "softmax-one-output",
        {"dataset.params.n_classes": 2, "model.params.layer_sizes": [4, 1]},
        r"softmax over 1 output is always 1; use sigmoid",
        "model.params.output_activation",
    ),
    Row(
        "regression-activation",
        {
            "dataset": REGRESSION,
            "model.params.layer_sizes": [4, 1],
            "model.params.output_activation": "sigmoid",
        },
        r"sigmoid squashes the predictions of a regression model",
        "model.params.output_activation",
    ),
    Row(
        "mnist-test-split",
        {
            "dataset": {"name": "mnist", "params": {"test_split": 0.2}},
            "model": {"name": "resnet18"},
        },
        r"^dataset.params.test_split: ignored: mnist has an official test split$",
        "dataset.params.test_split",
        "key",
    ),
    Row(
        "custom-no-class-path",
        {"model": {"name": "custom", "params": {"hidden": 3}}},
        r"model.params: a custom model needs model.params.class_path",
        "model.params",
    ),
    Row(
        "synthetic-path",
        {"dataset.path": "data.csv"},
        r"dataset.path: ignored: synthetic_classification is generated",
        "dataset.path",
    ),
    Row(
        "custom-path-missing",
        {"dataset": {"name": "custom", "path": "nope.csv"}},
        r"dataset.path: .*nope.csv does not exist",
        "dataset.path",
    ),
]


def _find(issues: list[ConfigIssue], pattern: str) -> ConfigIssue:
    hits = [issue for issue in issues if re.search(pattern, issue.message)]
    assert hits, f"no issue matches {pattern!r}: {[str(i) for i in issues]}"
    return hits[0]


def _expect_position(issue: ConfigIssue, path: Path, fmt: str, row: Row) -> None:
    text = path.read_text(encoding="utf-8")
    line, column = _locate(text, fmt, row.at, row.kind)
    assert issue.file == str(path)
    assert issue.line == line, str(issue)
    if column is not None:
        assert issue.column == column, str(issue)
    assert str(issue).startswith(f"{path}:{line}:")


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("row", ERRORS, ids=[row.id for row in ERRORS])
def test_error_rule(tmp_path: Path, fmt: str, row: Row) -> None:
    path = write(tmp_path, build(row, tmp_path), fmt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)  # rows test errors only
        with pytest.raises(ConfigError) as caught:
            load_config(path, root=tmp_path, runnable=check_runnable)
    issue = _find(caught.value.errors, row.match)
    _expect_position(issue, path, fmt, row)
    assert str(issue) in caught.value.message.splitlines()


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("row", WARNINGS, ids=[row.id for row in WARNINGS])
def test_warning_rule(tmp_path: Path, fmt: str, row: Row) -> None:
    path = write(tmp_path, build(row, tmp_path), fmt)
    with pytest.warns(ConfigWarning) as record:
        config = load_config(path, root=tmp_path, runnable=check_runnable)
    issue = _find(list(config.warnings), row.match)
    _expect_position(issue, path, fmt, row)
    assert str(issue) in [str(w.message) for w in record]


def test_base_config_is_valid(tmp_path: Path) -> None:
    for fmt in ("yaml", "json"):
        config = load_config(
            write(tmp_path, base(), fmt), root=tmp_path, runnable=check_runnable
        )
        assert config.warnings == ()
        assert config.model.params["layer_sizes"] == (4, 8, 3)


def test_locate_oracle_finds_nested_keys() -> None:
    text = "a:\n  b:\n    c: 1\n  d: [1, 2]\n"
    assert _locate(text, "yaml", "a.b.c", "value") == (3, 8)
    assert _locate(text, "yaml", "a.d", "key") == (4, 3)
    assert _locate(text, "yaml", "a.b", "value") == (3, 5)
    assert _locate(text, "yaml", "a.b.x", "parent") == (3, 5)
