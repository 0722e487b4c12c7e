"""Gradient utilities (`ferrograd.nn.utils`), as PyTorch's `torch.nn.utils`."""

from __future__ import annotations

import math
from collections.abc import Iterable

from .. import _core
from .._core import Tensor
from .._creation import tensor
from .._functional import stack
from ..autograd import no_grad


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"expected tensors (parameters), got {type(p).__name__}")
    return [p.grad for p in params if p.grad is not None]


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scales the gradients in place so that their total `norm_type`-norm (over all of
    them, as if concatenated) is at most `max_norm`; returns that total norm, before
    clipping, as a 0-dim tensor on the gradients' device.

    Nothing is read back from a GPU (the scale is a device tensor) unless
    `error_if_nonfinite` asks for a check of the norm."""
    max_norm = float(max_norm)
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    p = 2.0 if norm_type == "fro" else float(norm_type)
    grads = _grads(parameters)
    if not grads:
        return tensor(0.0)
    devices = {g.device for g in grads}
    if len(devices) > 1:
        raise RuntimeError(f"clip_grad_norm_: the gradients are on several devices: {sorted(devices)}")
    with no_grad():
        norms = [g.norm(p) for g in grads]
        if len(norms) == 1:
            total = norms[0]
        else:
            total = stack(norms).norm(p)
        if error_if_nonfinite and not math.isfinite(total.item()):
            raise RuntimeError(
                f"clip_grad_norm_: the total {norm_type}-norm of the gradients is {total.item()}, "
                "so they cannot be clipped; pass error_if_nonfinite=False to clip anyway"
            )
        # min(1, max_norm / (total + 1e-6)) as a tensor, so a GPU never waits
        scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale)
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamps every gradient element to [-clip_value, clip_value] in place."""
    v = float(clip_value)
    if not v >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    with no_grad():
        for g in _grads(parameters):
            g.copy_(g.clamp(-v, v))


__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """The parameters flattened and joined into one vector, as PyTorch's (differentiable)."""
    ps = list(parameters)
    if not ps:
        raise ValueError("parameters_to_vector: got no parameters")
    device = ps[0].device
    for p in ps:
        if p.device != device:
            raise ValueError(f"parameters_to_vector: parameters on {device} and {p.device}")
    return _core.cat([p.reshape(-1) for p in ps], 0)


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copies consecutive slices of `vec` into the parameters, in place (outside the
    graph), as PyTorch's; the lengths must add up."""
    if not isinstance(vec, Tensor) or vec.ndim != 1:
        raise TypeError(f"vector_to_parameters: expected a 1-D Tensor, got {type(vec).__name__}")
    ps = list(parameters)
    total = sum(p.numel() for p in ps)
    if total != vec.numel():
        raise ValueError(
            f"vector_to_parameters: the vector has {vec.numel()} entries, the parameters {total}"
        )
    at = 0
    with no_grad():
        for p in ps:
            n = p.numel()
            p.copy_(vec.narrow(0, at, n).reshape(*p.shape))
            at += n
