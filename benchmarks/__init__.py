"""Benchmark suite of mlx against its peers (PyTorch, scikit-learn, other CLIs).

Run ``python -m benchmarks`` (``--quick`` for a smoke run, ``--only GROUP`` for one
group, ``--output PATH`` for the JSON). Every figure is the median of several
repetitions after a warm-up, measured side by side with the peer in the same process
(or the same series of processes), with thread counts pinned equal on both sides.
Benchmarks are not tests: nothing here asserts a time.
"""

from __future__ import annotations

__all__: list = []
