"""Models: the BaseModel interface, built-in models, and building them from config.

>>> from mlx.models import get_model
>>> model = get_model("mlp", {"layer_sizes": [4, 8, 3], "output_activation": "softmax",
...                           "seed": 0})
>>> model.task, model.n_parameters
('classification', 67)
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import re
import sys
from types import MappingProxyType
from typing import Any, Mapping

from mlx.errors import ModelError
from mlx.models.base import BaseModel
from mlx.models.linear import LinearRegression
from mlx.models.mlp import MLP

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

#: Image-model families and their variants: torchvision's builders, trained through
#: the PyTorch backend (mlx.models.torch, the ``torch`` extra).
IMAGE_FAMILIES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "resnet": ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"),
        "vgg": ("vgg11", "vgg13", "vgg16", "vgg19"),
        "mobilenet": ("mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"),
        "efficientnet": tuple(f"efficientnet_b{i}" for i in range(8)),
    }
)

_CLASS_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _image_family(name: str) -> str | None:
    for family, variants in IMAGE_FAMILIES.items():
        if name == family or name in variants:
            return family
    return None


def _plain(value: Any) -> Any:
    """Read-only config mappings and tuples back to dicts and lists."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def get_model(name: str, params: Mapping[str, Any] | None = None) -> BaseModel:
    """Build a model from its config name and ``model.params``.

    name : "linear_regression", "mlp", "custom" (``params.class_path`` names a
        BaseModel subclass as ``"package.module:ClassName"``, the other params go to
        its constructor; a ``torch.nn.Module`` subclass is wrapped in a
        TorchModel), or an image family/variant (a TorchModel; params are its
        constructor's, ``architecture`` names the variant of a family).
    """
    kwargs: dict[str, Any] = _plain(params or {})
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
        if _is_torch_module(_import_object(class_path)):
            from mlx.models.torch.model import TorchModel

            return TorchModel(class_path=class_path, module_params=kwargs)
        cls = import_model_class(class_path)
    elif name in MODELS:
        cls = MODELS[name]
    else:
        known = [*MODELS, "custom", *IMAGE_FAMILIES]
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ModelError(
            f"Unknown model {name!r}; known models are {', '.join(known)}.{hint}"
        )
    return _construct(cls, kwargs)


def _construct(cls: type[BaseModel], kwargs: dict[str, Any]) -> BaseModel:
    accepted = cls._param_names()
    takes_any = any(
        p.kind == p.VAR_KEYWORD
        for p in inspect.signature(cls.__init__).parameters.values()
    )
    unknown = [key for key in kwargs if key not in accepted]
    if unknown and not takes_any:
        key = unknown[0]
        close = difflib.get_close_matches(key, accepted, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ModelError(
            f"Unknown parameter {key!r} for {cls.__name__}; it accepts "
            f"{', '.join(accepted) or 'no parameters'}.{hint}"
        )
    return cls(**kwargs)


def uses_torch(name: str, params: Mapping[str, Any]) -> bool:
    """True when model ``name`` with ``params`` runs on the PyTorch backend: an
    image family or variant, or a custom ``torch.nn.Module``. Imports torch only
    when the custom class's own module does."""
    if _image_family(name) is not None:
        return True
    if name == "custom" and params.get("class_path"):
        return _is_torch_module(_import_object(params["class_path"]))
    return False


def _is_torch_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return (
        torch is not None
        and isinstance(obj, type)
        and issubclass(obj, torch.nn.Module)
        and not issubclass(obj, BaseModel)
    )


def import_module_class(class_path: Any) -> type:
    """Import the ``torch.nn.Module`` subclass ``"package.module:ClassName"``."""
    obj = _import_object(class_path)
    if not _is_torch_module(obj):
        raise ModelError(
            f"class_path {class_path!r} names {obj!r}, which is not a subclass of "
            "torch.nn.Module."
        )
    return obj


def import_model_class(class_path: Any) -> type[BaseModel]:
    """Import ``"package.module:ClassName"`` (the repository root on sys.path) and
    return it, refusing anything that is not a BaseModel subclass."""
    obj = _import_object(class_path)
    if not (isinstance(obj, type) and issubclass(obj, BaseModel)):
        raise ModelError(
            f"class_path {class_path!r} names {obj!r}, which is not a subclass of "
            "mlx.models.BaseModel (or of torch.nn.Module)."
        )
    if inspect.isabstract(obj):
        raise ModelError(
            f"class_path {class_path!r} names an abstract class; implement "
            "forward and train_step."
        )
    return obj


def _import_object(class_path: Any) -> Any:
    """The object ``"package.module:ClassName"`` names (repository root on
    sys.path)."""
    from mlx.utils.paths import repository_root

    if not isinstance(class_path, str) or not _CLASS_PATH.match(class_path):
        raise ModelError(
            "params.class_path must look like 'package.module:ClassName'; "
            f"got {class_path!r}."
        )
    module_name, _, attribute = class_path.partition(":")
    root = str(repository_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(
            f"Cannot import module {module_name!r} of class_path {class_path!r}: {exc}."
        ) from exc
    obj: Any = module
    for part in attribute.split("."):
        obj = getattr(obj, part, None)
    if obj is None:
        raise ModelError(f"Module {module_name!r} has no attribute {attribute!r}.")
    return obj


def load_model(path: str | os.PathLike[str]) -> BaseModel:
    """Rebuild the model saved at ``path`` from its ``config.json`` and restore its
    weights and optimizer state.

    A custom model's class is imported from the saved ``class_path``, which runs
    that module's code: load only checkpoints of models you trust to import.
    """
    from mlx.errors import CheckpointError
    from mlx.models import _checkpoint
    from mlx.optim import get_optimizer

    config = _checkpoint.read_config(path)
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
