"""MLP training throughput against PyTorch, and matrix-multiply peaks.

A training step is forward + loss + backward + optimizer step + reading the loss as
a Python float, on both sides: ReLU hidden layers, softmax cross-entropy, plain SGD
(learning rate 0.01), the same batch size and dtype, batches taken as slices of one
pre-generated array. Our MLP runs without its gradient/weight clipping (torch has
none); a separate row shows the default (clipping on) for information.

Efficiency is the training FLOP rate (6 x parameters x samples per second: 2 for the
forward matmuls, 4 for the backward ones) over NumPy's float32 matmul peak, measured
in the same run on 2048 x 2048 matrices.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from benchmarks._common import Row, Settings, paired_medians, torch_or_none

__all__ = ["run"]

BIG = (784, 256, 128, 10)
SMALL = (20, 10, 5, 3)

# (layer sizes, batch, dtype, target ratio)
_SETTINGS: list[tuple[Sequence[int], int, str, str]] = [
    (BIG, 32, "float32", ">= 1.0"),
    (BIG, 128, "float32", ">= 1.0"),
    (BIG, 512, "float32", ">= 0.9"),
    (BIG, 32, "float64", ">= 0.9"),
    (BIG, 128, "float64", ">= 0.9"),
    (BIG, 512, "float64", ">= 0.9"),
    (SMALL, 32, "float32", ">= 3.0"),
    (SMALL, 32, "float64", ">= 3.0"),
]


def _n_parameters(sizes: Sequence[int]) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def matmul_peak(dtype: str, settings: Settings) -> tuple[float, float | None]:
    """GFLOP/s of one square matmul in NumPy and in torch (None without torch)."""
    n = 256 if settings.quick else 2048
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty_like(a)
    torch = torch_or_none()
    peer: Callable[[], Any] | None = None
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        tout = torch.empty_like(ta)

        def peer() -> None:
            torch.matmul(ta, tb, out=tout)

    timing = paired_medians(lambda: np.matmul(a, b, out=out), peer, settings)
    flops = 2.0 * n**3
    peer_rate = None if timing.peer is None else flops / timing.peer / 1e9
    return flops / timing.ours / 1e9, peer_rate


def _data(sizes: Sequence[int], n: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], n).astype(np.int64)
    return X, y


def _ours_epoch(
    sizes: Sequence[int],
    dtype: str,
    X: np.ndarray,
    y: np.ndarray,
    batch: int,
    clip: bool = False,
) -> Callable[[], None]:
    from mlx.models import MLP

    bound = 10.0 if clip else None
    model = MLP(
        layer_sizes=list(sizes),
        activation="relu",
        output_activation="softmax",
        seed=0,
        optimizer_config={"optimizer_type": "sgd", "learning_rate": 0.01},
        gradient_clip=bound,
        weight_clip=bound,
        dtype=dtype,
    )
    starts = range(0, len(X), batch)

    def epoch() -> None:
        for i in starts:
            float(model.train_step(X[i : i + batch], y[i : i + batch])["loss"])

    return epoch


def _torch_epoch(
    sizes: Sequence[int], dtype: str, X: np.ndarray, y: np.ndarray, batch: int
) -> Callable[[], None] | None:
    torch = torch_or_none()
    if torch is None:
        return None
    from torch import nn

    torch.manual_seed(0)
    layers: list[Any] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers).to(getattr(torch, dtype))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    tX, ty = torch.from_numpy(X), torch.from_numpy(y)
    starts = range(0, len(X), batch)

    def epoch() -> None:
        for i in starts:
            optimizer.zero_grad()
            loss = loss_fn(model(tX[i : i + batch]), ty[i : i + batch])
            loss.backward()
            optimizer.step()
            loss.item()

    return epoch


def run(settings: Settings) -> list[Row]:
    rows: list[Row] = []
    peaks = {}
    for dtype in ("float32", "float64"):
        ours, peer = matmul_peak(dtype, settings)
        peaks[dtype] = ours
        rows.append(
            Row(
                "mlp",
                f"matmul peak 2048^2 {dtype}"
                if not settings.quick
                else f"matmul peak 256^2 {dtype}",
                "GFLOP/s",
                ours,
                peer,
                "torch" if peer is not None else "",
                note="NumPy BLAS vs torch BLAS; reference for efficiency",
            )
        )
    for sizes, batch, dtype, target in _SETTINGS:
        if settings.quick and (batch != 32 or dtype != "float32"):
            continue
        rows.append(_throughput(sizes, batch, dtype, target, peaks, settings))
    if not settings.quick:
        rows.append(_throughput(BIG, 128, "float32", "", peaks, settings, clip=True))
    return rows


def _throughput(
    sizes: Sequence[int],
    batch: int,
    dtype: str,
    target: str,
    peaks: dict,
    settings: Settings,
    clip: bool = False,
) -> Row:
    small = max(sizes) <= 64
    if settings.quick:
        n = 8 * batch
    else:
        n = 32768 if small else 16384
    X, y = _data(sizes, n, dtype)
    timing = paired_medians(
        _ours_epoch(sizes, dtype, X, y, batch, clip=clip),
        None if clip else _torch_epoch(sizes, dtype, X, y, batch),
        settings,
    )
    ours = n / timing.ours
    peer = None if timing.peer is None else n / timing.peer
    flops = 6.0 * _n_parameters(sizes) * ours
    efficiency = flops / (peaks["float32"] * 1e9)
    if sizes == BIG and batch == 512 and dtype == "float32":
        eff_target = ">= 0.8"
    else:
        eff_target = ""
    name = "[" + ",".join(str(s) for s in sizes) + f"] batch {batch} {dtype}"
    if clip:
        name += " (default clipping on)"
    return Row(
        "mlp",
        name,
        "samples/s",
        ours,
        peer,
        "torch" if peer is not None else "",
        target if peer is not None else "",
        note=f"{efficiency:.0%} of NumPy f32 matmul peak",
        extra={
            "efficiency_of_f32_peak": efficiency,
            "efficiency_target": eff_target,
            "peer_efficiency_of_f32_peak": (
                None
                if peer is None
                else 6.0 * _n_parameters(sizes) * peer / (peaks["float32"] * 1e9)
            ),
            "gflops": flops / 1e9,
            "samples_per_repeat": n,
        },
        # throughputs: ours / peer is peer time / our time
        paired_ratio=None if timing.ratio is None else 1.0 / timing.ratio,
    )
