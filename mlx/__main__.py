"""Entry point for ``python -m mlx``."""

from __future__ import annotations

import sys

from mlx.cli import main

if __name__ == "__main__":
    sys.exit(main())
