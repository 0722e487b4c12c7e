"""Weight initializers. Each fills a tensor in place (outside the graph) and returns it.

Fan-in and fan-out follow PyTorch: for a Linear weight of shape (out, in), fan_in = in and
fan_out = out.
"""

from __future__ import annotations

import math

from .. import _core
from .._core import Tensor
from ..autograd import no_grad


def _fans(t: Tensor) -> tuple[int, int]:
    if t.ndim < 2:
        raise ValueError(f"init: fan-in/fan-out need a tensor with at least 2 dims, got shape {t.shape}")
    receptive = 1
    for d in t.shape[2:]:
        receptive *= d
    return t.shape[1] * receptive, t.shape[0] * receptive


def _fill(t: Tensor, values: Tensor) -> Tensor:
    with no_grad():
        t.copy_(values)
    return t


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fills with N(mean, std^2) samples."""
    return _fill(t, _core.randn(list(t.shape), t.dtype) * std + mean)


def uniform_(t: Tensor, low: float = 0.0, high: float = 1.0) -> Tensor:
    """Fills with U(low, high) samples."""
    return _fill(t, _core.rand(list(t.shape), t.dtype) * (high - low) + low)


def zeros(t: Tensor) -> Tensor:
    """Fills with zeros."""
    with no_grad():
        t.fill_(0.0)
    return t


def ones(t: Tensor) -> Tensor:
    """Fills with ones."""
    with no_grad():
        t.fill_(1.0)
    return t


def lecun_normal(t: Tensor) -> Tensor:
    """N(0, 1/fan_in): the initialization SELU networks need to self-normalize.

    >>> lecun_normal(fg.zeros(256, 784))  # std 1/28
    """
    fan_in, _ = _fans(t)
    return normal_(t, 0.0, math.sqrt(1.0 / fan_in))


def he_normal(t: Tensor) -> Tensor:
    """N(0, 2/fan_in) (Kaiming normal), for ReLU networks."""
    fan_in, _ = _fans(t)
    return normal_(t, 0.0, math.sqrt(2.0 / fan_in))


def he_uniform(t: Tensor) -> Tensor:
    """U(-b, b) with b = sqrt(6/fan_in) (Kaiming uniform), for ReLU networks."""
    fan_in, _ = _fans(t)
    b = math.sqrt(6.0 / fan_in)
    return uniform_(t, -b, b)


def glorot_normal(t: Tensor) -> Tensor:
    """N(0, 2/(fan_in + fan_out)) (Xavier normal), for tanh/sigmoid networks."""
    fan_in, fan_out = _fans(t)
    return normal_(t, 0.0, math.sqrt(2.0 / (fan_in + fan_out)))


def glorot_uniform(t: Tensor) -> Tensor:
    """U(-b, b) with b = sqrt(6/(fan_in + fan_out)) (Xavier uniform)."""
    fan_in, fan_out = _fans(t)
    b = math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -b, b)


def torch_linear_default(weight: Tensor, bias: Tensor | None) -> None:
    """PyTorch's Linear default: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    fan_in, _ = _fans(weight)
    b = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    uniform_(weight, -b, b)
    if bias is not None:
        uniform_(bias, -b, b)


INITIALIZERS = {
    "lecun_normal": lecun_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "zeros": zeros,
    "ones": ones,
}

# PyTorch-style aliases
kaiming_normal_ = he_normal
kaiming_uniform_ = he_uniform
xavier_normal_ = glorot_normal
xavier_uniform_ = glorot_uniform
zeros_ = zeros
ones_ = ones
