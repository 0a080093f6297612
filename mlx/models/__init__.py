"""Models: the BaseModel interface, built-in models, and building them from config.

>>> from mlx.models import get_model
>>> model = get_model("mlp", {"layer_sizes": [4, 8, 3], "output_activation": "softmax",
...                           "seed": 0})
>>> model.task, model.n_parameters
('classification', 67)
"""

from __future__ import annotations

import inspect
import os
from types import MappingProxyType
from typing import Any, Mapping

from mlx.config.experiment import thaw
from mlx.config.names import (
    IMAGE_FAMILIES,  # torchvision's builders, run by mlx.models.torch
    model_family,
)
from mlx.errors import CheckpointError, ModelError
from mlx.models import checkpoint
from mlx.models._imports import (
    check_signature,
    construct,
    import_model_class,
    import_object,
    is_torch_module,
)
from mlx.models.base import BaseModel
from mlx.models.linear import LinearRegression
from mlx.models.mlp import MLP
from mlx.numerics.optim import get_optimizer
from mlx.utils.values import nearest

__all__ = [
    "IMAGE_FAMILIES",
    "MODELS",
    "BaseModel",
    "LinearRegression",
    "MLP",
    "get_model",
    "load_model",
]

#: Built-in model names and their classes.
MODELS: Mapping[str, type[BaseModel]] = MappingProxyType(
    {"linear_regression": LinearRegression, "mlp": MLP}
)


def _image_family(name: str) -> str | None:
    family = model_family(name)
    return family if family in IMAGE_FAMILIES else None


def get_model(name: str, params: Mapping[str, Any] | None = None) -> BaseModel:
    """Build a model from its config name and ``model.params``.

    name : "linear_regression", "mlp", "custom" (``params.class_path`` names a
        BaseModel subclass as ``"package.module:ClassName"``, the other params go to
        its constructor; a ``torch.nn.Module`` subclass is wrapped in a
        TorchModel), or an image family/variant (a TorchModel; params are its
        constructor's, ``architecture`` names the variant of a family).
    """
    kwargs: dict[str, Any] = thaw(params or {})
    family = _image_family(name)
    if family is not None:
        from mlx.models.torch import require_torch

        require_torch()
        from mlx.models.torch.model import TorchModel

        variant = kwargs.pop("architecture", None) or name
        if variant not in IMAGE_FAMILIES[family]:
            raise ModelError(
                f"Model {name!r} needs an architecture naming one of its variants: "
                f"{', '.join(IMAGE_FAMILIES[family])}."
            )
        return _construct(TorchModel, {"architecture": variant, **kwargs})
    if name == "custom":
        class_path = kwargs.pop("class_path", None)
        if class_path is None:
            raise ModelError(
                "A 'custom' model needs params.class_path naming a BaseModel subclass, "
                "e.g. 'examples.custom_models:SoftmaxRegression'."
            )
        if is_torch_module(import_object(class_path)):
            from mlx.models.torch.model import TorchModel

            return TorchModel(class_path=class_path, module_params=kwargs)
        cls = import_model_class(class_path)
    elif name in MODELS:
        cls = MODELS[name]
    else:
        known = [*MODELS, "custom", *IMAGE_FAMILIES]
        close = nearest(str(name), known)
        hint = f" Did you mean {close!r}?" if close else ""
        raise ModelError(
            f"Unknown model {name!r}; known models are {', '.join(known)}.{hint}"
        )
    return _construct(cls, kwargs)


def _construct(cls: type[BaseModel], kwargs: dict[str, Any]) -> BaseModel:
    _check_params(cls, kwargs)
    return construct(cls, kwargs)


def check_custom_params(class_path: str, params: Mapping[str, Any]) -> None:
    """Raise the ModelError building the custom model ``class_path`` from
    ``params`` (its ``model.params``) would raise for parameters its constructor
    does not take; nothing is built. The class's module is imported."""
    kwargs = {k: v for k, v in thaw(params).items() if k != "class_path"}
    obj = import_object(class_path)
    if is_torch_module(obj):
        from mlx.models.torch.model import check_module_params

        kwargs.pop("optimizer_config", None)  # the harness's, not the module's
        check_module_params(obj, class_path, kwargs)
        return
    _check_params(import_model_class(class_path), kwargs)


def _check_params(cls: type[BaseModel], kwargs: dict[str, Any]) -> None:
    if cls.__init__ is object.__init__:
        # no constructor of its own: it takes no parameters
        accepted: list[str] = []
        takes_any = False
    else:
        accepted = cls._param_names()
        takes_any = any(
            p.kind == p.VAR_KEYWORD
            for p in inspect.signature(cls.__init__).parameters.values()
        )
    unknown = [key for key in kwargs if key not in accepted]
    if unknown and not takes_any:
        key = unknown[0]
        close = nearest(key, accepted)
        hint = f" Did you mean {close!r}?" if close else ""
        raise ModelError(
            f"Unknown parameter {key!r} for {cls.__name__}; it accepts "
            f"{', '.join(accepted) or 'no parameters'}.{hint}"
        )
    if cls.__init__ is not object.__init__:
        check_signature(cls, kwargs, f"{cls.__name__} cannot be built from its params")


def uses_torch(name: str, params: Mapping[str, Any]) -> bool:
    """True when model ``name`` with ``params`` runs on the PyTorch backend: an
    image family or variant, or a custom ``torch.nn.Module``. Imports torch only
    when the custom class's own module does."""
    if _image_family(name) is not None:
        return True
    if name == "custom" and params.get("class_path"):
        return is_torch_module(import_object(params["class_path"]))
    return False


def load_model(path: str | os.PathLike[str]) -> BaseModel:
    """Rebuild the model saved at ``path`` from its ``config.json`` and restore its
    weights and optimizer state.

    A custom model's class is imported from the saved ``class_path``, which runs
    that module's code: load only checkpoints of models you trust to import.
    """
    config = checkpoint.read_config(path)
    model_type = config.get("model_type")
    if model_type in MODELS:
        cls: type[BaseModel] = MODELS[str(model_type)]
    elif model_type == "custom":
        cls = import_model_class(config.get("class_path"))
    elif model_type == "torch":
        from mlx.models.torch import require_torch

        require_torch()
        from mlx.models.torch.model import TorchModel

        cls = TorchModel
    else:
        raise CheckpointError(
            f"The checkpoint has an unknown model type {model_type!r}."
        )
    hyperparameters = config.get("hyperparameters")
    if not isinstance(hyperparameters, dict):
        raise CheckpointError("The checkpoint's config.json has no hyperparameters.")
    if model_type == "torch":
        # the checkpoint holds the weights: no need to fetch published ones
        hyperparameters = {**hyperparameters, "pretrained": False}
    try:
        model = _construct(cls, hyperparameters)
    except ModelError as exc:
        raise CheckpointError(
            f"The checkpoint's hyperparameters are invalid: {exc}"
        ) from exc
    optimizer = config.get("optimizer")
    if isinstance(optimizer, dict) and isinstance(
        optimizer.get("learning_rate"), (int, float)
    ):
        model.set_optimizer(get_optimizer(optimizer))
    model.load(path)
    return model
