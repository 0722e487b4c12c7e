"""Weight initializers. Each fills a tensor in place (outside the graph) and returns it.

Fan-in and fan-out follow PyTorch: for a Linear weight of shape (out, in), fan_in = in and
fan_out = out.
"""

from __future__ import annotations

import math

import numpy as np

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

# PyTorch's names and signatures


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain PyTorch's initializers scale by for `nonlinearity`: 1 for linear and
    sigmoid, 5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + slope^2)) for leaky_relu (slope
    `param`, default 0.01), 3/4 for selu."""
    if nonlinearity in ("linear", "identity", "sigmoid") or nonlinearity.startswith("conv"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if nonlinearity == "selu":
        return 0.75
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _kaiming_std(t: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(t)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)


def kaiming_normal_(
    t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> Tensor:
    """N(0, std^2) with std = gain / sqrt(fan), PyTorch's defaults (a=0: He normal)."""
    return normal_(t, 0.0, _kaiming_std(t, a, mode, nonlinearity))


def kaiming_uniform_(
    t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"
) -> Tensor:
    """U(-b, b) with b = gain * sqrt(3 / fan), PyTorch's defaults (a=0: He uniform)."""
    b = math.sqrt(3.0) * _kaiming_std(t, a, mode, nonlinearity)
    return uniform_(t, -b, b)


def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    """U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(t)
    b = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -b, b)


def constant_(t: Tensor, val: float) -> Tensor:
    """Fills with `val`."""
    with no_grad():
        t.fill_(float(val))
    return t


def eye_(t: Tensor) -> Tensor:
    """Fills a 2-D tensor with the identity (ones on the main diagonal), as PyTorch's."""
    if t.ndim != 2:
        raise ValueError(f"eye_: expected a 2-D tensor, got shape {tuple(t.shape)}")
    return _fill(t, _core.from_numpy(np.eye(t.shape[0], t.shape[1])).to(t.device, t.dtype))


def orthogonal_(t: Tensor, gain: float = 1.0) -> Tensor:
    """Fills with a (semi-)orthogonal matrix times `gain` (Saxe et al.), as PyTorch's: the
    tensor seen as (rows, the rest flattened), from the QR factorization of a standard
    normal draw, the signs of R's diagonal folded into Q so the result is uniform."""
    if t.ndim < 2:
        raise ValueError(f"orthogonal_: expected a tensor with at least 2 dims, got shape {tuple(t.shape)}")
    rows = t.shape[0]
    cols = t.numel() // rows if rows else 0
    if rows == 0 or cols == 0:
        return t
    a = _core.randn([rows, cols], _core.dtype.float64).numpy()
    if rows < cols:
        a = a.T
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    q = np.ascontiguousarray(q.reshape(tuple(t.shape)) * gain)
    return _fill(t, _core.from_numpy(q).to(t.device, t.dtype))


def trunc_normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0) -> Tensor:
    """Fills with N(mean, std^2) samples redrawn until they lie in [a, b] (absolute
    bounds, as PyTorch's), so the distribution is the truncated normal."""
    if not a < b:
        raise ValueError(f"trunc_normal_: need a < b, got a={a}, b={b}")
    if std <= 0:
        raise ValueError(f"trunc_normal_: std must be positive, got {std}")
    cdf = lambda x: 0.5 * (1 + math.erf((x - mean) / (std * math.sqrt(2))))  # noqa: E731
    if cdf(b) - cdf(a) < 1e-3:
        raise ValueError(
            f"trunc_normal_: [{a}, {b}] holds less than 0.1% of N({mean}, {std}^2); "
            "redrawing would not finish"
        )
    shape = list(t.shape)
    out = (_core.randn(shape, _core.dtype.float64) * std + mean).numpy()
    bad = (out < a) | (out > b)
    while bad.any():
        out[bad] = (_core.randn([int(bad.sum())], _core.dtype.float64) * std + mean).numpy()
        bad = (out < a) | (out > b)
    return _fill(t, _core.from_numpy(np.ascontiguousarray(out)).to(t.device, t.dtype))


zeros_ = zeros
ones_ = ones
