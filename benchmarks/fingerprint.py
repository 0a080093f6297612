"""The data fingerprint of a run: SHA-256 over every byte of a split.

Hashes a 500 MB float32 split (``X`` of 1,310,720 x 100 plus int64 labels) with
:func:`mlx.datasets.fingerprint.split_fingerprint`, which hashes the arrays in
place, against ``hashlib.sha256(X.tobytes() + y.tobytes())``, which copies them
first. ``python -m benchmarks.fingerprint`` prints the figures on their own.
"""

from __future__ import annotations

import hashlib
import sys

import numpy as np

from benchmarks._common import Row, Settings, paired_medians

__all__ = ["run"]

_MB = 1_000_000  # decimal megabytes, as MB/s figures are usually given


def _split(quick: bool) -> tuple[np.ndarray, np.ndarray]:
    n_bytes = 16 * _MB if quick else 500 * _MB
    n_features = 100
    n_rows = n_bytes // (4 * n_features)
    rng = np.random.default_rng(0)
    X = rng.random((n_rows, n_features), dtype=np.float32)
    y = rng.integers(0, 10, n_rows)
    return X, y


def run(settings: Settings) -> list[Row]:
    from mlx.datasets.fingerprint import split_fingerprint

    X, y = _split(settings.quick)
    timing = paired_medians(
        lambda: split_fingerprint(X, y),
        lambda: hashlib.sha256(X.tobytes() + y.tobytes()).hexdigest(),
        settings,
    )
    mb = X.nbytes / _MB
    throughput = (X.nbytes + y.nbytes) / _MB / timing.ours
    return [
        Row(
            "fingerprint",
            f"SHA-256 of a {mb:.0f} MB float32 split",
            "s",
            timing.ours,
            timing.peer,
            "sha256 of a copy",
            "<= 1.0",
            note=f"{throughput:,.0f} MB/s",
            extra={"megabytes_per_second": throughput, "x_megabytes": mb},
            paired_ratio=timing.ratio,
        )
    ]


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    (row,) = run(Settings(quick=quick, repeats=5))
    print(
        f"{row.setting}: {row.ours:.3f} s, {row.extra['megabytes_per_second']:,.0f} "
        f"MB/s (a hash of a copy: {row.peer:.3f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
