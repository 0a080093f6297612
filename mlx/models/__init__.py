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

from mlx.errors import BackendUnavailableError, ModelError
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

#: Image-model families and their variants. They are known names, but building one
#: needs a deep-learning backend that this package does not ship.
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
        its constructor), or an image family/variant (raises
        BackendUnavailableError).
    """
    kwargs: dict[str, Any] = _plain(params or {})
    family = _image_family(name)
    if family is not None:
        raise BackendUnavailableError(
            f"Model {name!r} ({family} family) needs a deep-learning backend, which "
            "is not installed; the built-in models are "
            f"{', '.join(repr(m) for m in MODELS)}.",
            hint="Use 'mlp' or 'linear_regression', or a custom model class.",
        )
    if name == "custom":
        class_path = kwargs.pop("class_path", None)
        if class_path is None:
            raise ModelError(
                "A 'custom' model needs params.class_path naming a BaseModel subclass, "
                "e.g. 'examples.custom_models:SoftmaxRegression'."
            )
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
        close = difflib.get_close_matches(key, accepted, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ModelError(
            f"Unknown parameter {key!r} for {cls.__name__}; it accepts "
            f"{', '.join(accepted) or 'no parameters'}.{hint}"
        )
    if cls.__init__ is not object.__init__:
        try:
            inspect.signature(cls).bind(**kwargs)
        except TypeError as exc:
            raise ModelError(
                f"{cls.__name__} cannot be built from its params: {exc}."
            ) from None
    return cls(**kwargs)


def import_model_class(class_path: Any) -> type[BaseModel]:
    """Import ``"package.module:ClassName"`` (the repository root on sys.path) and
    return it, refusing anything that is not a BaseModel subclass."""
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
    module = _import_module(module_name, class_path)
    obj: Any = module
    for part in attribute.split("."):
        obj = getattr(obj, part, None)
    if obj is None:
        raise ModelError(f"Module {module_name!r} has no attribute {attribute!r}.")
    if not (isinstance(obj, type) and issubclass(obj, BaseModel)):
        raise ModelError(
            f"class_path {class_path!r} names {obj!r}, which is not a subclass of "
            "mlx.models.BaseModel."
        )
    if inspect.isabstract(obj):
        raise ModelError(
            f"class_path {class_path!r} names an abstract class; implement "
            "forward and train_step."
        )
    return obj


def _import_module(module_name: str, class_path: str) -> Any:
    """Import the module of ``class_path``; whatever goes wrong in it (a syntax
    error, an exception, ``sys.exit`` at import) is a ModelError naming the file
    and line where it happened."""
    what = f"module {module_name!r} of class_path {class_path!r}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise ModelError(
                f"Cannot import {what}: there is no module {missing!r} "
                f"(searched the repository root and sys.path).",
                hint="class_path is 'package.module:ClassName', relative to the "
                "repository root",
            ) from None
        raise ModelError(
            f"Cannot import {what}: {_where(exc, module_name)}"
            f"it imports {missing!r}, which is not installed."
        ) from exc
    except SyntaxError as exc:
        where = f"{exc.filename}:{exc.lineno}: " if exc.filename else ""
        raise ModelError(
            f"Cannot import {what}: {where}syntax error: {exc.msg}."
        ) from exc
    except SystemExit as exc:
        raise ModelError(
            f"Cannot import {what}: {_where(exc, module_name)}it called "
            f"sys.exit({exc.code!r}) while being imported."
        ) from exc
    except Exception as exc:
        raise ModelError(
            f"Cannot import {what}: {_where(exc, module_name)}"
            f"{type(exc).__name__}: {exc}."
        ) from exc


def _where(exc: BaseException, module_name: str) -> str:
    """``file:line: `` where ``exc`` was raised in the module (or a parent package)
    being imported; else in the repository; else the deepest frame; or ``""``."""
    import importlib.util
    import traceback

    from mlx.utils.paths import repository_root

    own = set()
    parts = module_name.split(".")
    for depth in range(1, len(parts) + 1):
        try:
            spec = importlib.util.find_spec(".".join(parts[:depth]))
        except Exception:  # the parent package itself fails to import
            spec = None
        if spec is not None and spec.origin:
            own.add(os.path.realpath(spec.origin))
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith("<")
    ]
    root = str(repository_root())
    for wanted in (
        lambda name: os.path.realpath(name) in own,
        lambda name: os.path.realpath(name).startswith(root + os.sep),
        lambda name: True,
    ):
        chosen = [f for f in frames if wanted(f.filename)]
        if chosen:
            return f"{chosen[-1].filename}:{chosen[-1].lineno}: "
    return ""


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
    else:
        raise CheckpointError(
            f"The checkpoint has an unknown model type {model_type!r}."
        )
    hyperparameters = config.get("hyperparameters")
    if not isinstance(hyperparameters, dict):
        raise CheckpointError("The checkpoint's config.json has no hyperparameters.")
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
