"""Datasets: synthetic generators and real file formats, split deterministically."""

from __future__ import annotations

from mlx.datasets.info import DatasetInfo, describe

__all__ = ["DatasetInfo", "describe"]
