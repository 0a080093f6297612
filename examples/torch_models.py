"""Custom PyTorch modules for ``model.name: custom``.

Any ``torch.nn.Module`` subclass works: name it with ``model.params.class_path``
and put its constructor arguments beside it (see ``examples/mnist_small_cnn.yaml``).
The harness reshapes image batches to (N, C, H, W) float32, picks the loss from the
task (cross-entropy on the module's logits for classification, mean squared error
for regression), and trains, checkpoints and evaluates the module like any model.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SmallCNN", "TinyMLP"]


class SmallCNN(nn.Module):
    """Two strided convolutions, global average pooling and a linear classifier:
    about 1,500 parameters with 8 channels, seconds per MNIST epoch on a CPU."""

    def __init__(
        self,
        in_channels: int = 1,
        channels: int = 16,
        num_classes: int = 10,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, stride=2, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1),
            nn.BatchNorm2d(2 * channels),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * channels, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class TinyMLP(nn.Module):
    """A one-hidden-layer network on flat features (tabular data)."""

    def __init__(self, n_features: int, hidden: int = 16, n_outputs: int = 1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_features, hidden), nn.Tanh(), nn.Linear(hidden, n_outputs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
