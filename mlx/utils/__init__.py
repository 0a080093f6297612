"""Small helpers shared by several parts of mlx."""

from __future__ import annotations

__all__: list = []
