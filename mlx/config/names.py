"""The dataset and model names, the image-model families and the memory limit, shared
by the config schema, the dataset loaders and the models (which sit above the config
layer and import these from here)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

__all__ = [
    "BUILTIN_MODELS",
    "IMAGE_FAMILIES",
    "IMAGE_MODEL_FAMILIES",
    "KNOWN_DATASETS",
    "KNOWN_MODELS",
    "MEMORY_LIMIT_BYTES",
    "model_family",
]

KNOWN_DATASETS = (
    "mnist",
    "cifar10",
    "cifar100",
    "imagenet",
    "custom",
    "synthetic_regression",
    "synthetic_classification",
)

#: Datasets whose arrays would exceed this many bytes are refused (1 GiB).
MEMORY_LIMIT_BYTES = 1024**3

#: Image-model families and their variants (torchvision's builder names).
IMAGE_FAMILIES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "resnet": ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"),
        "vgg": ("vgg11", "vgg13", "vgg16", "vgg19"),
        "mobilenet": ("mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"),
        "efficientnet": tuple(f"efficientnet_b{i}" for i in range(8)),
    }
)
IMAGE_MODEL_FAMILIES = IMAGE_FAMILIES

#: The models that run on NumPy.
BUILTIN_MODELS = ("linear_regression", "mlp")
KNOWN_MODELS = (
    "resnet",
    "vgg",
    "mobilenet",
    "efficientnet",
    "custom",
    *BUILTIN_MODELS,
    *(name for names in IMAGE_FAMILIES.values() for name in names),
)


def model_family(name: str) -> str:
    """``resnet18`` -> ``resnet``; other names map to themselves."""
    for family, variants in IMAGE_FAMILIES.items():
        if name == family or name in variants:
            return family
    return name
