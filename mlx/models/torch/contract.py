"""What a torch module must return, and which weights fit it, for the harness to
use it.

Every batch a module sees, in training and in eval mode, passes through
:func:`check_outputs` before a loss or a softmax touches it, so a module whose
outputs do not fit (another width, an extra axis, integers, a shape that changes
with the batch size or the mode) is named with the batch it failed on, instead
of a torch function deep inside the loss reporting a shape it was given.
Weights that do not fit a module (a checkpoint of changed module code, a cached
pretrained file of another model) are summarised by :func:`weights_mismatch`:
counts and the first names, not torch's list of every tensor.
"""

from __future__ import annotations

from typing import Any

from mlx.errors import ModelError
from mlx.models.torch import require_torch

__all__ = ["check_outputs", "name_counts", "weights_mismatch"]


def check_outputs(
    output: Any,
    *,
    module: str,
    task: str,
    n: int,
    where: str,
    tail: tuple[int, ...] | None = None,
    basis: str = "",
    top: int | None = None,
) -> tuple[int, ...]:
    """Check the outputs of ``module`` for a batch of ``n`` samples and return the
    shape of one sample's outputs, which later batches must keep.

    task : "classification": (n, n_classes) logits; "regression": values of the
        targets' shape, (n,) or (n, 1) for one target.
    where : the batch, for the message ("at training step 3 (a batch of 16)").
    tail : the outputs of one sample known so far ((n_classes,), or the targets'
        trailing shape), and ``basis`` the words saying where it is known from;
        None when this is the first batch and nothing else says.
    top : the largest label of the batch, when the class count is not known.
    """
    torch = require_torch()
    if not isinstance(output, torch.Tensor):
        raise ModelError(
            f"{module} returned a {type(output).__name__} from forward {where}; the "
            "harness needs one torch.Tensor of outputs per sample."
        )
    shape = tuple(int(d) for d in output.shape)
    if not output.is_floating_point():
        kind = "logits" if task == "classification" else "values"
        dtype = str(output.dtype).removeprefix("torch.")
        raise ModelError(
            f"{module} returned outputs of dtype {dtype} {where}; the harness needs "
            f"floating-point {kind} (float32, float16 or bfloat16)."
        )
    if task == "classification":
        if tail is None:
            fits = len(shape) == 2 and shape[0] == n
            wanted = f"({n}, n_classes)"
        else:
            fits = shape == (n, *tail)
            wanted = f"{(n, *tail)}"
        if not fits:
            raise ModelError(
                f"{module} returned outputs of shape {shape} {where}; "
                f"classification needs logits of shape {wanted}, one per "
                f"class{basis}."
            )
        if top is not None and top >= shape[1]:
            raise ModelError(
                f"{module} returns {shape[1]} logits per sample {where}, but the "
                f"labels go up to {top}; it needs one output per class (at least "
                f"{top + 1})."
            )
        return shape[1:]
    base = tail or ()
    accepted = [(n, *base)] + ([(n, 1)] if not base else [])
    if shape not in accepted:
        raise ModelError(
            f"{module} returned outputs of shape {shape} {where}; regression needs "
            f"values of shape {' or '.join(map(str, accepted))}{basis}."
        )
    return base


def name_counts(*groups: tuple[str, list[str]]) -> str:
    """``"2 missing (a, b); 1 of another shape (c ...)"``: each non-empty group of
    names as its count and its first three names."""
    parts = []
    for label, names in groups:
        if names:
            more = ", ..." if len(names) > 3 else ""
            parts.append(f"{len(names)} {label} ({', '.join(names[:3])}{more})")
    return "; ".join(parts)


def weights_mismatch(expected: dict[str, Any], found: dict[str, Any]) -> str:
    """How ``found`` (tensors by name) differs from ``expected`` (the module's
    state_dict), in counts and the first three names of each kind; "" if not.
    Missing and reshaped tensors follow the module's order, unexpected ones are
    sorted (a file's order is its writer's)."""
    shapes = [
        f"{k} {tuple(found[k].shape)} for {tuple(expected[k].shape)}"
        for k in expected
        if k in found and tuple(found[k].shape) != tuple(expected[k].shape)
    ]
    return name_counts(
        ("missing", [k for k in expected if k not in found]),
        ("unexpected", sorted(k for k in found if k not in expected)),
        ("of another shape", shapes),
    )
