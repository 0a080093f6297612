"""The PyTorch backend's training throughput against a plain PyTorch loop.

Both sides train the same torchvision model (same initial weights, Adam, learning
rate 1e-3) over the same shuffled batches of one pre-generated float32 array, in the
same process and with the same threads. Ours is the harness's per-step path: the
training loop's ``np.take`` gather into reused buffers, then
``TorchModel.train_step`` (flat batch -> (N, C, H, W) view, per-step seeding,
schedule, forward, cross-entropy, backward, step, the loss as a float). The peer
gathers with ``index_select`` and runs the textbook five lines. The ratio is ours /
peer in images per second (target >= 0.95).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from benchmarks._common import Row, Settings, paired_medians, torch_or_none

__all__ = ["run"]

# (variant, (C, H, W), batch)
_SETTINGS = [
    ("resnet18", (1, 28, 28), 64),
    ("mobilenet_v3_small", (3, 32, 32), 128),
]


def _data(shape: tuple[int, int, int], n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.random((n, int(np.prod(shape))), dtype=np.float32)
    return X, rng.integers(0, 10, n).astype(np.int64)


def _ours(
    variant: str,
    shape: tuple[int, int, int],
    X: np.ndarray,
    y: np.ndarray,
    batch: int,
    order: np.ndarray,
) -> Callable[[], None]:
    from mlx.models.torch.model import TorchModel
    from mlx.optim import get_optimizer

    model = TorchModel(
        architecture=variant,
        num_classes=10,
        in_channels=shape[0],
        input_shape=list(shape),
        device="cpu",
        seed=0,
    )
    model.set_optimizer(
        get_optimizer({"optimizer_type": "adam", "learning_rate": 1e-3})
    )
    X_batch = np.empty((batch, X.shape[1]), np.float32)
    y_batch = np.empty(batch, np.int64)

    def epoch() -> None:
        for start in range(0, len(order), batch):
            index = order[start : start + batch]
            np.take(X, index, axis=0, out=X_batch)
            np.take(y, index, axis=0, out=y_batch)
            float(model.train_step(X_batch, y_batch)["loss"])

    return epoch


def _plain(
    variant: str,
    shape: tuple[int, int, int],
    X: np.ndarray,
    y: np.ndarray,
    batch: int,
    order: np.ndarray,
) -> Callable[[], None]:
    torch = torch_or_none()
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, variant)(num_classes=10)
    if shape[0] != 3:
        model.conv1 = torch.nn.Conv2d(shape[0], 64, 7, 2, 3, bias=False)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    tX = torch.from_numpy(X).view(len(X), *shape)
    ty = torch.from_numpy(y)
    torder = torch.from_numpy(order)

    def epoch() -> None:
        for start in range(0, len(order), batch):
            index = torder[start : start + batch]
            xb, yb = tX.index_select(0, index), ty.index_select(0, index)
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            loss.item()

    return epoch


def run(settings: Settings) -> list[Row]:
    torch = torch_or_none()
    rows: list[Row] = []
    for variant, shape, batch in _SETTINGS:
        setting = f"{variant} {'x'.join(map(str, shape))} batch {batch}"
        if torch is None:
            rows.append(
                Row(
                    "torch_backend",
                    setting,
                    "images/s",
                    None,
                    note="torch is not installed",
                )
            )
            continue
        n_batches = 1 if settings.quick else 6
        b = 8 if settings.quick else batch
        X, y = _data(shape, b * n_batches)
        order = np.random.default_rng([1, 1]).permutation(len(X))
        ours: Any = _ours(variant, shape, X, y, b, order)
        peer: Any = _plain(variant, shape, X, y, b, order)
        timing = paired_medians(ours, peer, settings)
        images = len(X)
        rows.append(
            Row(
                "torch_backend",
                setting if not settings.quick else f"{setting} (quick: batch {b})",
                "images/s",
                images / timing.ours,
                images / timing.peer if timing.peer else None,
                "plain PyTorch",
                ">= 0.95",
                f"CPU, {torch.get_num_threads()} threads, Adam",
                paired_ratio=(1.0 / timing.ratio) if timing.ratio else None,
            )
        )
    return rows
