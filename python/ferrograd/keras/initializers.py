"""Keras's weight initializers, by name (`kernel_initializer="lecun_normal"`) and as objects
(`initializers.HeNormal()`), drawing from ferrograd's generator (`fg.manual_seed` makes them
repeatable).

Shapes are Keras's: a Dense kernel is (in, out), so fan_in = shape[0] and fan_out = shape[1].
The formulas are Keras 3's: `lecun_normal`, `he_normal` and `glorot_normal` draw from a
normal truncated at two standard deviations, scaled by 1/0.8796... so that the standard
deviation after truncation is sqrt(scale / fan); `RandomNormal` and `RandomUniform` default to
stddev 0.05 and [-0.05, 0.05].
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _core
from .._core import Tensor
from . import _scope

# the standard deviation of a standard normal truncated to [-2, 2]
_TRUNCATED_STD = 0.87962566103423978


def compute_fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a Keras weight shape: (in, out) for a kernel; for more dims the
    last two times the receptive field."""
    shape = tuple(shape)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated_normal(shape: list[int], mean: float, stddev: float) -> Tensor:
    """N(mean, stddev^2) with values beyond two standard deviations drawn again."""
    z = _core.randn(shape, None)
    prev = _core.set_grad_enabled(False)
    try:
        for _ in range(100):  # each round keeps 95.4% of what it draws
            bad = z.abs() > 2.0
            if not bool(bad.any().item()):
                break
            z = _core.where(bad, _core.randn(shape, None), z)
        return z * stddev + mean
    finally:
        _core.set_grad_enabled(prev)


class Initializer:
    """Base class: `init(shape)` returns a new float32 tensor of Keras's `shape`.

    A subclass defines `__call__(shape, dtype=None)` (and `get_config` for saving). A `seed`
    makes every call draw the same values (from a generator of its own, leaving the global
    one untouched)."""

    seed: int | None = None

    def __call__(self, shape, dtype=None) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define __call__(shape, dtype=None)")

    def _draw(self, shape: list[int]) -> Tensor:
        """Values for the (possibly reversed) `shape`; fans come from `self._fans`."""
        raise NotImplementedError

    def _seeded(self, fn):
        if self.seed is None:
            return fn()
        state = _core.get_rng_state()
        _core.manual_seed(int(self.seed))
        try:
            return fn()
        finally:
            _core.set_rng_state(state)

    def transposed(self, shape) -> Tensor:
        """The values for a Keras kernel of `shape` (in, out), laid out as ferrograd's Linear
        weight (out, in). Initializers whose values are independent draws draw straight into
        that layout (so `fg.nn.Linear(..., init="glorot_uniform")` and a Dense layer get the
        same weights from the same seed); others are drawn in Keras's layout and transposed."""
        shape = [int(s) for s in shape]
        return self(shape).t().contiguous()

    def get_config(self) -> dict:
        """The constructor arguments (for saving)."""
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Initializer:
        """Rebuilds an initializer from `get_config()`."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _IID(Initializer):
    """An initializer whose values are independent draws (so its layout is free)."""

    def __call__(self, shape, dtype=None) -> Tensor:
        shape = [int(s) for s in shape]
        fans = compute_fans(shape)
        return self._seeded(lambda: self._sample(shape, fans))

    def transposed(self, shape) -> Tensor:
        """Draws straight into the (out, in) layout, with the fans of Keras's (in, out) shape."""
        shape = [int(s) for s in shape]
        fans = compute_fans(shape)
        return self._seeded(lambda: self._sample(shape[::-1], fans))

    def _sample(self, shape: list[int], fans: tuple[int, int]) -> Tensor:
        raise NotImplementedError


class Constant(_IID):
    """Every value `value`."""

    def __init__(self, value: float = 0.0):
        self.value = float(value)

    def _sample(self, shape, fans) -> Tensor:
        return _core.full(shape, self.value, None)

    def get_config(self) -> dict:
        return {"value": self.value}


class Zeros(Constant):
    """Every value 0 (the default bias initializer)."""

    def __init__(self):
        super().__init__(0.0)

    def get_config(self) -> dict:
        return {}


class Ones(Constant):
    """Every value 1."""

    def __init__(self):
        super().__init__(1.0)

    def get_config(self) -> dict:
        return {}


class RandomNormal(_IID):
    """N(mean, stddev^2); Keras's defaults mean 0, stddev 0.05."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        self.mean, self.stddev, self.seed = float(mean), float(stddev), seed

    def _sample(self, shape, fans) -> Tensor:
        return _core.randn(shape, None) * self.stddev + self.mean

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class TruncatedNormal(RandomNormal):
    """N(mean, stddev^2) truncated at two standard deviations (values beyond are redrawn)."""

    def _sample(self, shape, fans) -> Tensor:
        return _truncated_normal(shape, self.mean, self.stddev)


class RandomUniform(_IID):
    """U(minval, maxval); Keras's defaults [-0.05, 0.05]."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None):
        self.minval, self.maxval, self.seed = float(minval), float(maxval), seed

    def _sample(self, shape, fans) -> Tensor:
        return _core.rand(shape, None) * (self.maxval - self.minval) + self.minval

    def get_config(self) -> dict:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class VarianceScaling(_IID):
    """Keras's VarianceScaling: scale / n with n = fan_in, fan_out or their mean (`mode`);
    "truncated_normal" draws N(0, scale/n) truncated at 2 std and rescaled by 1/0.8796 so its
    std is sqrt(scale/n); "untruncated_normal" draws N(0, scale/n); "uniform" U(-l, l) with
    l = sqrt(3 scale / n)."""

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
    ):
        if not (isinstance(scale, (int, float)) and scale > 0):
            raise ValueError(f"VarianceScaling: scale must be a positive float, got {scale!r}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling: mode must be 'fan_in', 'fan_out' or 'fan_avg', got {mode!r}")
        if distribution == "normal":  # Keras's legacy name
            distribution = "truncated_normal"
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(
                "VarianceScaling: distribution must be 'truncated_normal', 'untruncated_normal' "
                f"or 'uniform', got {distribution!r}"
            )
        self.scale, self.mode, self.distribution, self.seed = float(scale), mode, distribution, seed

    def _sample(self, shape, fans) -> Tensor:
        fan_in, fan_out = fans
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        scale = self.scale / max(1.0, n)
        if self.distribution == "truncated_normal":
            return _truncated_normal(shape, 0.0, math.sqrt(scale) / _TRUNCATED_STD)
        if self.distribution == "untruncated_normal":
            return _core.randn(shape, None) * math.sqrt(scale)
        limit = math.sqrt(3.0 * scale)
        return _core.rand(shape, None) * (2.0 * limit) - limit

    def get_config(self) -> dict:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, "seed": self.seed}


class _Preset(VarianceScaling):
    """A named VarianceScaling setting: only `seed` is an argument."""

    preset: tuple[float, str, str] = (1.0, "fan_in", "truncated_normal")

    def __init__(self, seed: int | None = None):
        super().__init__(*self.preset, seed=seed)

    def get_config(self) -> dict:
        return {"seed": self.seed}


class GlorotUniform(_Preset):
    """U(-l, l) with l = sqrt(6 / (fan_in + fan_out)) (Keras's default kernel initializer)."""

    preset = (1.0, "fan_avg", "uniform")


class GlorotNormal(_Preset):
    """Truncated normal with std sqrt(2 / (fan_in + fan_out))."""

    preset = (1.0, "fan_avg", "truncated_normal")


class HeNormal(_Preset):
    """Truncated normal with std sqrt(2 / fan_in) (ReLU networks)."""

    preset = (2.0, "fan_in", "truncated_normal")


class HeUniform(_Preset):
    """U(-l, l) with l = sqrt(6 / fan_in)."""

    preset = (2.0, "fan_in", "uniform")


class LecunNormal(_Preset):
    """Truncated normal with std sqrt(1 / fan_in) (SELU networks)."""

    preset = (1.0, "fan_in", "truncated_normal")


class LecunUniform(_Preset):
    """U(-l, l) with l = sqrt(3 / fan_in)."""

    preset = (1.0, "fan_in", "uniform")


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix times `gain`, from the QR decomposition of a normal draw
    (Keras's construction, on the kernel's (in, out) layout)."""

    def __init__(self, gain: float = 1.0, seed: int | None = None):
        self.gain, self.seed = float(gain), seed

    def __call__(self, shape, dtype=None) -> Tensor:
        shape = [int(s) for s in shape]
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: needs a shape of at least 2 dims, got {tuple(shape)}")
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        flat = [max(rows, cols), min(rows, cols)]
        a = self._seeded(lambda: _core.randn(flat, None)).numpy().astype(np.float64)
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        out = (self.gain * q).reshape(shape).astype(np.float32)
        return _core.from_numpy(np.ascontiguousarray(out))

    def get_config(self) -> dict:
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    """`gain` times the identity matrix (2-D shapes only)."""

    def __init__(self, gain: float = 1.0):
        self.gain = float(gain)

    def __call__(self, shape, dtype=None) -> Tensor:
        shape = [int(s) for s in shape]
        if len(shape) != 2:
            raise ValueError(f"Identity: needs a 2-D shape, got {tuple(shape)}")
        return _core.from_numpy(np.eye(shape[0], shape[1], dtype=np.float32) * np.float32(self.gain))

    def get_config(self) -> dict:
        return {"gain": self.gain}


# Keras's names (snake_case, and the class names; `normal`/`uniform` are Keras 2's aliases)
_CLASSES: dict[str, type[Initializer]] = {
    cls.__name__: cls
    for cls in (
        Constant,
        Zeros,
        Ones,
        RandomNormal,
        TruncatedNormal,
        RandomUniform,
        VarianceScaling,
        GlorotUniform,
        GlorotNormal,
        HeNormal,
        HeUniform,
        LecunNormal,
        LecunUniform,
        Orthogonal,
        Identity,
    )
}
_NAMES: dict[str, type[Initializer]] = {
    "constant": Constant,
    "zeros": Zeros,
    "zero": Zeros,
    "ones": Ones,
    "one": Ones,
    "random_normal": RandomNormal,
    "normal": RandomNormal,
    "truncated_normal": TruncatedNormal,
    "random_uniform": RandomUniform,
    "uniform": RandomUniform,
    "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal,
    "he_normal": HeNormal,
    "he_uniform": HeUniform,
    "lecun_normal": LecunNormal,
    "lecun_uniform": LecunUniform,
    "orthogonal": Orthogonal,
    "identity": Identity,
}

# the lower-case names Keras also exports
constant, zeros, ones = Constant, Zeros, Ones
glorot_uniform, glorot_normal = GlorotUniform, GlorotNormal
he_normal, he_uniform, lecun_normal, lecun_uniform = HeNormal, HeUniform, LecunNormal, LecunUniform
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
orthogonal, identity, variance_scaling = Orthogonal, Identity, VarianceScaling


def get(identifier, custom_objects: dict | None = None) -> Initializer:
    """An initializer from a name ("he_normal", "GlorotUniform", ...), an instance, a class,
    a plain function `fn(shape, dtype=None)`, or a saved `{"class_name", "config"}` dict."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, str):
        custom = (custom_objects or {}).get(identifier) or _scope.lookup(identifier)
        if custom is not None:
            return get(custom)
        cls = _NAMES.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"unknown initializer {identifier!r} (choose from {sorted(_NAMES)})")
        return cls()
    if isinstance(identifier, dict) and "class_name" in identifier:
        name, config = identifier["class_name"], identifier.get("config") or {}
        custom = (custom_objects or {}).get(name) or _scope.lookup(name)
        if custom is not None:
            return custom.from_config(config)
        cls = _CLASSES.get(name) or _NAMES.get(str(name).lower())
        if cls is None:
            raise ValueError(f"unknown initializer class {name!r}; pass custom_objects={{{name!r}: cls}}")
        return cls.from_config(dict(config))
    if callable(identifier):
        return _Function(identifier)
    raise TypeError(
        f"initializer must be a name, an Initializer or a function, got {type(identifier).__name__}"
    )


class _Function(Initializer):
    """A plain function `fn(shape, dtype=None)` used as an initializer (not saveable)."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, shape, dtype=None) -> Tensor:
        out: Any = self.fn(tuple(shape), dtype)
        if not isinstance(out, Tensor):
            out = _core.from_numpy(np.ascontiguousarray(np.asarray(out, dtype=np.float32)))
        if tuple(out.shape) != tuple(shape):
            raise ValueError(f"initializer {self.fn!r} returned shape {tuple(out.shape)} for {tuple(shape)}")
        return out


def serialize(init: Initializer) -> dict:
    """`{"class_name": ..., "config": ...}`, Keras's saved form."""
    if isinstance(init, _Function):
        raise ValueError(
            f"an initializer given as a function ({init.fn!r}) cannot be saved; use an Initializer subclass"
        )
    return {"class_name": type(init).__name__, "config": init.get_config()}
