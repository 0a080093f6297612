"""``python -m benchmarks``: run the groups, print a table, write the JSON."""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from benchmarks._common import (
    OPENBLAS_VARIABLES,
    REPO_ROOT,
    Row,
    Settings,
    cpu_count,
    environment,
    pinned_threads,
)

__all__ = ["GROUPS", "format_table", "main"]

#: Group name -> module with ``run(settings) -> list[Row]``, in running order.
GROUPS = {
    "mlp": "benchmarks.mlp",
    "linear": "benchmarks.linear",
    "synthetic": "benchmarks.synthetic",
    "startup": "benchmarks.startup",
    "harness": "benchmarks.harness",
    "memory": "benchmarks.memory",
    "torch_backend": "benchmarks.torch_backend",
    "fingerprint": "benchmarks.fingerprint",
    "sweep": "benchmarks.sweep",
}

DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "results" / "latest.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark mlx against PyTorch, scikit-learn and other CLIs.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, one repetition (smoke run)"
    )
    parser.add_argument(
        "--only", choices=list(GROUPS), action="append", help="run only this group"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"JSON results file (default {DEFAULT_OUTPUT.relative_to(REPO_ROOT)})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for both sides (default: the number of usable cores)",
    )
    parser.add_argument(
        "--repeats", type=int, default=7, help="repetitions per figure (default 7)"
    )
    return parser


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table: setting, ours, peer, ratio, target, met, note."""
    lines = [
        "| group | setting | unit | ours | peer | ratio | target | met | note |",
        "|---|---|---|---:|---:|---:|---|---|---|",
    ]
    for row in rows:
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
        met = {True: "yes", False: "NO", None: ""}[row.meets]
        peer = "-" if row.peer is None else f"{_number(row.peer)} ({row.peer_name})"
        lines.append(
            f"| {row.group} | {row.setting} | {row.unit} | {_number(row.ours)} | "
            f"{peer} | {ratio} | {row.target} | {met} | {row.note} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    threads = args.threads or cpu_count()
    settings = Settings(quick=args.quick, repeats=max(args.repeats, 1), threads=threads)
    for name in OPENBLAS_VARIABLES:
        import os

        if name in os.environ:
            print(
                f"warning: {name} is set; it changes OpenBLAS's kernel choice "
                "(`make bench` unsets it)",
                file=sys.stderr,
            )
    groups = args.only or list(GROUPS)
    rows: list[Row] = []
    seconds: dict[str, float] = {}
    with pinned_threads(threads):
        env = environment(threads)
        for group in groups:
            print(f"running {group} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            module: Any = importlib.import_module(GROUPS[group])
            rows.extend(module.run(settings))
            seconds[group] = time.perf_counter() - started
    table = format_table(rows)
    print(table)
    document = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "command": " ".join(["python -m benchmarks", *(argv or sys.argv[1:])]),
        "quick": settings.quick,
        "repeats": 1 if settings.quick else settings.repeats,
        "environment": env,
        "group_seconds": seconds,
        "results": [row.to_dict() for row in rows],
        "table": table,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
