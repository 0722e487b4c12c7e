"""The float64 NumPy references of the engine's elementwise op table (`_core.unary_ops()`)
and the inputs each op is tested on: shared by the tests that go over the table's rows
(test_elementwise_table.py, test_forward_numpy.py, test_gradcheck.py, test_gpu.py,
test_gpu_layouts.py, test_shaders_wgpupy.py), so a new row needs one reference, here
(test_elementwise_table.py fails until it has one).
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from ferrograd import _core

# the public rows: name -> [(parameter, default or None)]
ROWS = {name: params for name, _code, params in _core.unary_ops() if not name.startswith("_")}

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _relu6(x):
    return np.clip(x, 0.0, 6.0)


def _softplus(x, beta=1.0, threshold=20.0):
    bx = beta * x
    return np.where(bx > threshold, x, np.log1p(np.exp(np.minimum(bx, threshold))) / beta)


def _logsigmoid(x):  # -softplus(-x), unthresholded, computed stably
    return np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))


# PyTorch's definitions in float64; a parameter's default must be the table's (tested)
REFERENCE = {
    "neg": lambda x: -x,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "relu": lambda x: np.maximum(x, 0.0),
    "selu": lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0))),
    "elu": lambda x, alpha=1.0: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0))),
    "leaky_relu": lambda x, slope=0.01: np.where(x > 0, x, slope * x),
    "gelu_tanh": lambda x: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3))),
    "clamp": lambda x, lo=None, hi=None: np.minimum(np.maximum(x, lo), hi),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "erf": _erf,
    "exp2": np.exp2,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "expm1": np.expm1,
    "floor": np.floor,
    "ceil": np.ceil,
    "round": np.round,  # half to even
    "trunc": np.trunc,
    "frac": lambda x: x - np.trunc(x),
    "softplus": _softplus,
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "hardswish": lambda x: x * _relu6(x + 3.0) / 6.0,
    "hardsigmoid": lambda x: _relu6(x + 3.0) / 6.0,
    "relu6": _relu6,
    "hardtanh": lambda x, min_val=-1.0, max_val=1.0: np.clip(x, min_val, max_val),
    "logsigmoid": _logsigmoid,
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "celu": lambda x, alpha=1.0: np.maximum(0.0, x) + np.minimum(0.0, alpha * np.expm1(x / alpha)),
}

# The arguments each row is tested with (default: none, i.e. the table's defaults); clamp's
# bounds have no default.
ARGS = {
    "clamp": [(-0.5, 1.5)],
    "elu": [(), (0.7,)],
    "leaky_relu": [(), (0.2,)],
    "softplus": [(), (2.0, 5.0), (0.5, 20.0)],
    "hardtanh": [(), (-2.0, 0.5)],
    "celu": [(), (0.5,), (2.0,)],
}
VARIANTS = [(name, args) for name in sorted(ROWS) for args in ARGS.get(name, [()])]


def variant_id(variant) -> str:
    name, args = variant
    return name if not args else f"{name}{args}".replace(" ", "")


# Inputs: in-domain ranges, for random data and gradcheck (default (-4, 4)) ...
DOMAIN = {
    "log": (0.2, 4.0),
    "log2": (0.2, 4.0),
    "log10": (0.2, 4.0),
    "sqrt": (0.2, 4.0),
    "log1p": (-0.9, 4.0),
    "asin": (-0.9, 0.9),
    "acos": (-0.9, 0.9),
    "atanh": (-0.9, 0.9),
    "acosh": (1.1, 3.0),
    "tan": (-1.3, 1.3),
    "mish": (-25.0, 25.0),  # across softplus's threshold (20)
}
# ... and the closed ranges of the forward check against NumPy (default [-25, 25]), with the
# domain's ends where the op is defined there (log(0) = -inf, atanh(1) = inf, ...)
FORWARD_RANGE = {
    "log": (0.0, 25.0),
    "log2": (0.0, 25.0),
    "log10": (0.0, 25.0),
    "sqrt": (0.0, 25.0),
    "log1p": (-1.0, 25.0),
    "asin": (-1.0, 1.0),
    "acos": (-1.0, 1.0),
    "atanh": (-1.0, 1.0),
    "acosh": (1.0, 25.0),
    "tan": (-1.5, 1.5),
}
# the points where the forward grid must also look: ties of round, kinks, thresholds
POINTS = [-25, -20.5, -19.5, -6, -3.5, -3, -2.5, -2, -1.5, -1, -0.5, -0.25, 0, 0.25, 0.5, 1, 1.5, 2]
POINTS += [2.5, 3, 3.5, 5.5, 6, 6.5, 10.5, 19.5, 20, 20.5, 25]

ROUNDING = {"floor", "ceil", "round", "trunc"}
SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, 1e30, -1e30], np.float32)


def kinks(name: str, args: tuple) -> list[float]:
    """Where the op (with these arguments) is not differentiable, or barely (softplus's
    threshold): gradcheck's inputs keep 0.05 away."""
    params = dict(zip([p for p, _ in ROWS[name]], args))
    if name in ("relu", "leaky_relu", "elu", "selu", "celu", "abs"):
        return [0.0]
    if name == "clamp":
        return list(args)
    if name == "hardtanh":
        return [params.get("min_val", -1.0), params.get("max_val", 1.0)]
    if name == "relu6":
        return [0.0, 6.0]
    if name in ("hardswish", "hardsigmoid"):
        return [-3.0, 3.0]
    if name == "softplus":
        return [params.get("threshold", 20.0) / params.get("beta", 1.0)]
    if name == "mish":
        return [20.0]
    if name in ROUNDING or name == "frac":  # every integer and half-integer
        return list(np.arange(-60, 61) * 0.5)
    return []


def rng_for(*key) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def sample(name: str, args: tuple, shape, seed_key=(), margin: float = 0.05) -> np.ndarray:
    """float64 values uniform in the op's domain, each at least `margin` from its kinks."""
    lo, hi = DOMAIN.get(name, (-4.0, 4.0))
    r = rng_for(name, args, shape, seed_key)
    n = int(np.prod(shape, dtype=np.int64))
    k = np.asarray(kinks(name, args))
    out: list[float] = []
    while len(out) < n:
        v = r.uniform(lo, hi, 64)
        if k.size:
            v = v[np.abs(v[:, None] - k[None, :]).min(1) > margin]
        out.extend(v.tolist())
    return np.asarray(out[:n], np.float64).reshape(shape)


def forward_grid(name: str) -> np.ndarray:
    lo, hi = FORWARD_RANGE.get(name, (-25.0, 25.0))
    pts = np.concatenate([np.linspace(lo, hi, 41), [p for p in POINTS if lo <= p <= hi]])
    return np.unique(pts.astype(np.float32))


def ref(name: str, x: np.ndarray, args: tuple) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(REFERENCE[name](np.asarray(x, np.float64), *args), np.float64)


def op(name: str, args: tuple):
    return lambda t: _core.unary(t, name, *args)
