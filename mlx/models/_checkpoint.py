"""The old name of :mod:`mlx.models.checkpoint`: this very module object, so that
code patching ``_checkpoint.write_checkpoint`` patches the one the models call."""

# transitional re-export: removed when the layout branches merge

from __future__ import annotations

import sys

from mlx.models import checkpoint

sys.modules[__name__] = checkpoint
