"""Training-time augmentation of image batches, in NumPy, for any model.

``dataset.params.augmentation: true`` turns it on for the image sets:

``cifar10``, ``cifar100``
    random 32x32 crop of the image padded with 4 zero pixels on every side, then a
    horizontal flip with probability 0.5.
``mnist``
    random crop of the image padded with 2 zero pixels on every side; no flip
    (a mirrored digit is another symbol).
``imagenet``
    random resized crop (a window of 8% to 100% of the image's area with aspect
    ratio in [3/4, 4/3], resized back to the image size, bilinear), then a
    horizontal flip with probability 0.5.

A batch is a flat (N, C*H*W) array of images flattened channel-first; the result is
a new array of the same shape and dtype. Every draw comes from a generator seeded
by ``(seed, epoch, batch)`` alone, so a batch is augmented the same way whatever
ran before it in the process (a resumed run sees exactly the batches an
uninterrupted one saw). Only training batches are augmented.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Mapping, Sequence, cast

import numpy as np

from mlx.config.experiment import DatasetConfig

__all__ = [
    "AUGMENTED_DATASETS",
    "Augmentation",
    "augmentation_for",
    "batch_rng",
    "crop_windows",
    "horizontal_flip",
    "random_crop",
    "random_resized_crop",
    "resize_windows",
]

# Mixed into the seed, so these draws are not the stream anything else seeded with
# (seed, epoch, batch) draws from.
_STREAM = 0xA06

_SCALE = (0.08, 1.0)
_RATIO = (3.0 / 4.0, 4.0 / 3.0)


def batch_rng(seed: int, epoch: int, batch: int) -> np.random.Generator:
    """The generator batch ``batch`` (0-based) of ``epoch`` (1-based) draws from."""
    return np.random.default_rng([int(seed), int(epoch), int(batch), _STREAM])


def random_crop(
    images: np.ndarray, padding: int, rng: np.random.Generator
) -> np.ndarray:
    """Each (C, H, W) image of ``images`` (N, C, H, W) cropped back to (H, W) at a
    random offset from the image padded with ``padding`` zeros on every side.

    Offsets ``(dy, dx)`` are drawn as one (N, 2) array of integers in
    [0, 2 * padding]; image ``i`` becomes ``np.pad(...)[i, :, dy:dy+H, dx:dx+W]``.
    """
    n, _, h, w = images.shape
    offsets = rng.integers(0, 2 * padding + 1, size=(n, 2))
    out = np.zeros_like(images)
    for i in range(n):
        # the window [dy, dy + h) of the padded image, clipped to the original
        dy, dx = int(offsets[i, 0]) - padding, int(offsets[i, 1]) - padding
        top, left = max(dy, 0), max(dx, 0)
        bottom, right = min(dy + h, h), min(dx + w, w)
        out[i, :, top - dy : bottom - dy, left - dx : right - dx] = images[
            i, :, top:bottom, left:right
        ]
    return out


def horizontal_flip(
    images: np.ndarray, rng: np.random.Generator, p: float = 0.5
) -> np.ndarray:
    """``images`` (N, C, H, W) with each image mirrored left-right with probability
    ``p`` (one uniform draw per image, flipped where it is below ``p``), in place."""
    flip = rng.random(len(images)) < p
    images[flip] = images[flip, :, :, ::-1]
    return images


def random_resized_crop(
    images: np.ndarray,
    rng: np.random.Generator,
    scale: tuple[float, float] = _SCALE,
    ratio: tuple[float, float] = _RATIO,
) -> np.ndarray:
    """Each image of ``images`` (N, C, H, W) replaced by a random window resized
    (bilinear, pixel centres aligned) back to (H, W); see :func:`crop_windows` and
    :func:`resize_windows`."""
    n, _, h, w = images.shape
    return resize_windows(images, *crop_windows(n, h, w, rng, scale, ratio))


def crop_windows(
    n: int,
    h: int,
    w: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = _SCALE,
    ratio: tuple[float, float] = _RATIO,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(top, left, height, width)`` of ``n`` random windows in an (h, w) image.

    A window covers a fraction of the area drawn uniformly from ``scale`` with an
    aspect ratio (width / height) drawn log-uniformly from ``ratio``; of 10 such
    draws per image the first that fits is used, else the whole image. Its corner
    is uniform over the positions where it fits.
    """
    area = h * w
    tries = 10
    fractions = rng.uniform(scale[0], scale[1], size=(n, tries))
    log_ratio = rng.uniform(math.log(ratio[0]), math.log(ratio[1]), size=(n, tries))
    corners = rng.random((n, 2))
    aspect = np.exp(log_ratio)
    widths = np.rint(np.sqrt(area * fractions * aspect)).astype(np.int64)
    heights = np.rint(np.sqrt(area * fractions / aspect)).astype(np.int64)
    fits = (widths >= 1) & (widths <= w) & (heights >= 1) & (heights <= h)
    first = np.argmax(fits, axis=1)
    rows = np.arange(n)
    found = fits[rows, first]
    width = np.where(found, widths[rows, first], w)
    height = np.where(found, heights[rows, first], h)
    top = np.floor(corners[:, 0] * (h - height + 1)).astype(np.int64)
    left = np.floor(corners[:, 1] * (w - width + 1)).astype(np.int64)
    return top, left, height, width


def resize_windows(
    images: np.ndarray,
    top: np.ndarray,
    left: np.ndarray,
    height: np.ndarray,
    width: np.ndarray,
) -> np.ndarray:
    """Window ``i`` of image ``i`` resized bilinearly to the image's (H, W), all
    images at once: output pixel centre ``y`` samples the window at
    ``(y + 0.5) * height / H - 0.5``, clamped to the window (as
    ``torch.nn.functional.interpolate(..., "bilinear", align_corners=False)``)."""
    n, c, h, w = images.shape
    rows = np.arange(n)
    last_y, last_x = (top + height - 1)[:, None], (left + width - 1)[:, None]
    # source coordinates of each output pixel centre, per image: (N, H) and (N, W)
    ys = top[:, None] + (np.arange(h) + 0.5) * (height[:, None] / h) - 0.5
    xs = left[:, None] + (np.arange(w) + 0.5) * (width[:, None] / w) - 0.5
    ys = np.clip(ys, top[:, None], last_y)
    xs = np.clip(xs, left[:, None], last_x)
    y0, x0 = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, last_y), np.minimum(x0 + 1, last_x)
    dtype = images.dtype if images.dtype.kind == "f" else np.dtype(np.float32)
    wy = (ys - y0).astype(dtype)[:, None, :, None]
    wx = (xs - x0).astype(dtype)[:, None, None, :]

    flat = images.reshape(n, c, h * w)
    channels = np.arange(c)[None, :, None]

    def gather(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        index = (yy[:, :, None] * w + xx[:, None, :]).reshape(n, 1, h * w)
        taken = flat[rows[:, None, None], channels, index]
        return taken.reshape(n, c, h, w).astype(dtype, copy=False)

    top_row = gather(y0, x0) * (1 - wx) + gather(y0, x1) * wx
    bottom_row = gather(y1, x0) * (1 - wx) + gather(y1, x1) * wx
    out = top_row * (1 - wy) + bottom_row * wy
    return out.astype(images.dtype, copy=False)


class Augmentation:
    """The augmentation of one dataset: ``augment(X, seed, epoch, batch)``."""

    def __init__(
        self,
        name: str,
        image_shape: tuple[int, int, int],
        transform: Callable[[np.ndarray, np.random.Generator], np.ndarray],
        description: str,
    ) -> None:
        self.name = name
        self.image_shape = tuple(int(n) for n in image_shape)
        self.description = description
        self._transform = transform

    def __call__(self, X: np.ndarray, seed: int, epoch: int, batch: int) -> np.ndarray:
        """A new (N, C*H*W) array: the batch ``X`` (N, C*H*W) augmented with the
        draws of ``(seed, epoch, batch)``; ``X`` itself is not changed."""
        images = np.asarray(X).reshape(len(X), *self.image_shape)
        out = self._transform(images, batch_rng(seed, epoch, batch))
        return out.reshape(len(X), -1)

    def __repr__(self) -> str:
        return f"Augmentation({self.name!r}: {self.description})"


def _crop_flip(
    images: np.ndarray, rng: np.random.Generator, padding: int, flip: bool
) -> np.ndarray:
    out = random_crop(images, padding, rng)
    return horizontal_flip(out, rng) if flip else out


def _resized_crop_flip(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return horizontal_flip(random_resized_crop(images, rng), rng)


_TRANSFORMS: Mapping[str, tuple[Callable[..., np.ndarray], str]] = {
    "mnist": (
        functools.partial(_crop_flip, padding=2, flip=False),
        "random crop, 2-pixel zero padding",
    ),
    "cifar10": (
        functools.partial(_crop_flip, padding=4, flip=True),
        "random crop, 4-pixel zero padding; horizontal flip p=0.5",
    ),
    "cifar100": (
        functools.partial(_crop_flip, padding=4, flip=True),
        "random crop, 4-pixel zero padding; horizontal flip p=0.5",
    ),
    "imagenet": (
        _resized_crop_flip,
        "random resized crop (scale 0.08-1, ratio 3/4-4/3, bilinear); "
        "horizontal flip p=0.5",
    ),
}

#: The datasets ``augmentation: true`` applies to.
AUGMENTED_DATASETS = tuple(_TRANSFORMS)


def augmentation_for(
    dataset: DatasetConfig, image_shape: Sequence[int] | None
) -> Augmentation | None:
    """The augmentation ``dataset`` (a DatasetConfig) asks for, or None when its
    ``params.augmentation`` is off or it holds no images."""
    params = getattr(dataset, "params", None) or {}
    if params.get("augmentation") is not True or image_shape is None:
        return None
    entry = _TRANSFORMS.get(dataset.name)
    if entry is None:
        return None
    transform, description = entry
    shape = cast("tuple[int, int, int]", tuple(image_shape))  # (C, H, W)
    return Augmentation(dataset.name, shape, transform, description)
