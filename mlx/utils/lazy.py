"""Module attributes that are imported on first use (PEP 562).

``mlx`` and ``mlx.datasets`` expose names whose modules need NumPy; loading those
only when a name is first used keeps ``mlx --help`` and dry runs fast.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping

__all__ = ["lazy_attributes"]


def lazy_attributes(
    namespace: dict[str, Any], sources: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a module whose ``namespace`` (its globals())
    gets each name of ``sources`` (name -> module that defines it) on first use."""
    module = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        if name in sources:
            value = getattr(importlib.import_module(sources[name]), name)
            namespace[name] = value  # later lookups skip __getattr__
            return value
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted([*namespace, *sources])

    return __getattr__, __dir__
