"""Importing a custom model's class from ``params.class_path``: a BaseModel
subclass or a ``torch.nn.Module``, with every failure of its module at import (a
syntax error, an exception, ``sys.exit``) or of its constructor a ModelError naming
the file and line."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import sys
import traceback
from typing import Any, Mapping

from mlx.errors import MLXError, ModelError
from mlx.models.base import BaseModel
from mlx.models.torch import INSTALL_HINT
from mlx.utils.paths import repository_root

__all__ = [
    "check_signature",
    "construct",
    "import_model_class",
    "import_module_class",
    "import_object",
    "is_torch_module",
]

_CLASS_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def is_torch_module(obj: object) -> bool:
    """Whether ``obj`` is a ``torch.nn.Module`` subclass (and no BaseModel); torch
    is never imported for the question, only asked when already loaded."""
    torch = sys.modules.get("torch")
    return (
        torch is not None
        and isinstance(obj, type)
        and issubclass(obj, torch.nn.Module)
        and not issubclass(obj, BaseModel)
    )


def import_module_class(class_path: Any) -> type:
    """Import the ``torch.nn.Module`` subclass ``"package.module:ClassName"``."""
    obj = import_object(class_path)
    if not is_torch_module(obj):
        raise ModelError(
            f"class_path {class_path!r} names {obj!r}, which is not a subclass of "
            "torch.nn.Module."
        )
    return obj


def import_model_class(class_path: Any) -> type[BaseModel]:
    """Import ``"package.module:ClassName"`` (the repository root on sys.path) and
    return it, refusing anything that is not a BaseModel subclass."""
    obj = import_object(class_path)
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


def check_signature(cls: type, kwargs: Mapping[str, Any], what: str) -> None:
    """ModelError ``"<what>: <why>."`` when ``cls(**kwargs)`` would not bind to the
    constructor's signature; nothing is built. A class without a signature to read
    (a builtin) passes: the call itself tells."""
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as exc:
        raise ModelError(f"{what}: {exc}.") from None
    except ValueError:
        pass


def construct(cls: type, kwargs: dict[str, Any]) -> Any:
    """``cls(**kwargs)``, where an exception the constructor raises (other than the
    package's own errors) is a ModelError naming the class, and the file and line
    where it was raised; ``mlx --debug`` shows the traceback."""
    try:
        return cls(**kwargs)
    except MLXError:
        raise
    except Exception as exc:
        raise ModelError(
            f"Cannot build {cls.__module__}:{cls.__qualname__} from model.params: "
            f"{_where(exc, cls.__module__)}{type(exc).__name__}: {exc}."
        ) from exc


def import_object(class_path: Any) -> Any:
    """The object ``"package.module:ClassName"`` names (repository root on
    sys.path)."""
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
        try:
            obj = getattr(obj, part, None)
        except Exception as exc:  # a module __getattr__ or a property that raises
            raise ModelError(
                f"Cannot get {attribute!r} from module {module_name!r} of class_path "
                f"{class_path!r}: {_where(exc, module_name)}"
                f"{type(exc).__name__}: {exc}."
            ) from exc
    if obj is None:
        raise ModelError(f"Module {module_name!r} has no attribute {attribute!r}.")
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
        hint = None
        if missing.partition(".")[0] in ("torch", "torchvision"):
            hint = f"install PyTorch with: {INSTALL_HINT}"
        raise ModelError(
            f"Cannot import {what}: {_where(exc, module_name)}"
            f"it imports {missing!r}, which is not installed.",
            hint=hint,
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
