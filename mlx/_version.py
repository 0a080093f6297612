"""The package version, importable by any module without loading the public API."""

from __future__ import annotations

__version__ = "0.1.0"
