"""The dry run, now :mod:`mlx.experiment.plan`."""

from __future__ import annotations

# transitional re-export: removed when the layout branches merge
from mlx.experiment.plan import (
    Plan,
    class_path_blocker,
    make_plan,
    model_task,
    parameter_count,
    plan_record,
    render_dry_run,
    render_plan,
    run_blocker,
)
from mlx.experiment.preflight import output_blocker

__all__ = [
    "Plan",
    "class_path_blocker",
    "make_plan",
    "model_task",
    "output_blocker",
    "parameter_count",
    "plan_record",
    "render_dry_run",
    "render_plan",
    "run_blocker",
]
