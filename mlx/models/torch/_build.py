"""Building torchvision's image models, with their input channels, classes,
dropout and published weights, under torchvision's own names.

Every architecture comes from torchvision's builder for the variant
(``torchvision.models.resnet18`` and so on); nothing here copies an architecture.
The adaptations keep ``state_dict`` names and shapes a torchvision user
recognises: a 1-channel stem is the same first convolution with ``in_channels=1``,
and resnet's dropout is applied in front of ``fc`` by a hook, not by a new layer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlx.config.names import IMAGE_FAMILIES, model_family
from mlx.errors import ModelError
from mlx.models.torch import require_torch
from mlx.models.torch.contract import name_counts
from mlx.utils import environ

__all__ = [
    "build_image_model",
    "family_of",
    "offline_weights_problem",
    "pretrained_file",
    "stem_convolution",
]


def family_of(variant: str) -> str:
    """``resnet18`` -> ``resnet``; a ModelError for anything but a variant."""
    family = model_family(variant)
    if variant not in IMAGE_FAMILIES.get(family, ()):
        raise ModelError(f"{variant!r} is not an image-model variant.")
    return family


def stem_convolution(module: Any) -> tuple[str, Any]:
    """``(name, conv)``: the first ``Conv2d`` of ``module``, the one that sees the
    image."""
    torch = require_torch()
    for name, child in module.named_modules():
        if isinstance(child, torch.nn.Conv2d):
            return name, child
    raise ModelError(f"{type(module).__name__} has no Conv2d layer.")


def pretrained_file(variant: str) -> tuple[Any, Path]:
    """The weights enum member of ``variant`` (torchvision's DEFAULT) and the path
    torch's hub cache keeps its file under (``$TORCH_HOME/hub/checkpoints``)."""
    require_torch()
    import torch.hub
    from torchvision.models import get_model_weights

    weights = get_model_weights(variant).DEFAULT
    name = os.path.basename(urlparse(weights.url).path)
    return weights, Path(torch.hub.get_dir()) / "checkpoints" / name


def offline_weights_problem(variant: str) -> str | None:
    """Why the published weights of ``variant`` cannot be had, without fetching
    anything: the file is not in the hub cache and ``MLX_OFFLINE`` is set. None
    when they are cached or may be downloaded."""
    _, path = pretrained_file(variant)
    if path.is_file() or not environ.offline():
        return None
    return str(_missing_weights(variant, path, "MLX_OFFLINE is set"))


def _pretrained_state(variant: str) -> dict[str, Any]:
    """torchvision's published weights of ``variant``, from the hub cache, downloaded
    into it when missing (unless ``MLX_OFFLINE`` is set)."""
    weights, path = pretrained_file(variant)
    problem = offline_weights_problem(variant)
    if problem is not None:
        raise ModelError(problem)
    try:
        # torchvision's weights API: the hub cache, the file's hash on download,
        # and torch's restricted (weights-only) reader, which runs no pickled code
        state: dict[str, Any] = weights.get_state_dict(
            progress=False, check_hash=True, weights_only=True
        )
    except Exception as exc:  # urllib, hash or format errors alike
        if path.is_file():
            raise ModelError(
                f"The pretrained weights of {variant} in {path} do not load ({exc})."
            ) from None
        raise _missing_weights(variant, path, str(exc)) from None
    return state


def _missing_weights(variant: str, path: Path, why: str) -> ModelError:
    weights, _ = pretrained_file(variant)
    return ModelError(
        f"model.params.pretrained: the weights file {path.name} of {variant} is not "
        f"in {path.parent} and cannot be downloaded ({why}); download "
        f"{weights.url} and put it in {path.parent} (TORCH_HOME sets the cache "
        "folder), or set pretrained: false.",
    )


def build_image_model(
    variant: str,
    *,
    num_classes: int,
    in_channels: int = 3,
    dropout: float | None = None,
    pretrained: bool = False,
) -> Any:
    """torchvision's ``variant`` with ``num_classes`` outputs and an
    ``in_channels`` stem, on the current default device.

    pretrained : start from torchvision's published ImageNet weights; the classifier
        is fresh when ``num_classes`` is not 1000, and on 1 channel the stem's RGB
        kernels are summed over the colour axis.
    """
    torch = require_torch()
    import torchvision

    family = family_of(variant)
    builder = getattr(torchvision.models, variant)
    kwargs: dict[str, Any] = {"weights": None, "num_classes": num_classes}
    if dropout is not None and family != "resnet":
        kwargs["dropout"] = float(dropout)
    state = _pretrained_state(variant) if pretrained else None
    module = builder(**kwargs)
    if in_channels != 3:
        name, old = stem_convolution(module)
        new = torch.nn.Conv2d(
            in_channels,
            old.out_channels,
            old.kernel_size,
            old.stride,
            old.padding,
            old.dilation,
            old.groups,
            old.bias is not None,
            old.padding_mode,
        )
        # every family initialises its stem this way; slicing the kernels of the
        # RGB stem keeps that distribution (fan_out does not depend on the input)
        with torch.no_grad():
            new.weight.copy_(old.weight[:, :1].expand_as(new.weight))
            if in_channels > 1:
                torch.nn.init.kaiming_normal_(new.weight, mode="fan_out")
            if new.bias is not None and old.bias is not None:
                new.bias.copy_(old.bias)
        parent_name, _, attribute = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, attribute, new)
    if state is not None:
        _load_pretrained(module, state, variant, in_channels)
    if family == "resnet" and dropout:
        module.fc.register_forward_pre_hook(_DropoutHook(float(dropout)))
    return module


class _DropoutHook:
    """Dropout on the input of the module it is registered on (resnet's ``fc``),
    active in training mode only; a hook adds no layer, so no name changes."""

    def __init__(self, p: float) -> None:
        self.p = p

    def __call__(self, module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        import torch.nn.functional as F

        return (F.dropout(args[0], self.p, module.training), *args[1:])


def _load_pretrained(
    module: Any, state: dict[str, Any], variant: str, in_channels: int
) -> None:
    """Copy the published ``state`` into ``module``: every tensor by its name and
    shape, the stem summed over colours on 1 channel; only the classifier (1000
    rows published, ``num_classes`` here) may differ in shape, and starts fresh.
    Anything else missing or of another shape is an error naming the file."""
    torch = require_torch()
    stem, _ = stem_convolution(module)
    own = module.state_dict()
    merged, missing, shapes = {}, [], []
    for key, value in own.items():
        source = state.get(key)
        if source is None:
            missing.append(key)
            continue
        if key == f"{stem}.weight" and source.shape[1] != in_channels:
            if in_channels != 1:
                raise ModelError(
                    "model.params.in_channels: pretrained weights take 3 or 1 "
                    f"input channels; got {in_channels}."
                )
            source = source.sum(dim=1, keepdim=True)
        if source.shape == value.shape:
            merged[key] = source.to(value.dtype)
        elif source.shape[0] == 1000 and source.shape[1:] == value.shape[1:]:
            merged[key] = value  # the classifier of another class count
        else:
            shapes.append(f"{key} {tuple(source.shape)} for {tuple(value.shape)}")
    if missing or shapes:
        _, path = pretrained_file(variant)
        summary = name_counts(("missing", missing), ("of another shape", shapes))
        raise ModelError(
            f"{path}: the pretrained weights do not fit {variant}: "
            f"{summary}; is it the file of another model? Remove it to "
            "download it again, or set pretrained: false."
        )
    with torch.no_grad():
        module.load_state_dict(merged, strict=True)


def meta_facts(
    variant: str, *, num_classes: int, in_channels: int, dropout: float | None
) -> tuple[int, int]:
    """(trainable parameters, bytes of the state_dict) of ``variant``, built on
    torch's meta device: shapes only, no weights allocated."""
    torch = require_torch()
    with torch.device("meta"):
        module = build_image_model(
            variant, num_classes=num_classes, in_channels=in_channels, dropout=dropout
        )
    n_parameters = sum(p.numel() for p in module.parameters() if p.requires_grad)
    n_bytes = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    return int(n_parameters), int(n_bytes)
