"""Keras's activation functions by name (`Dense(64, activation="selu")`) and as functions
(`keras.activations.relu(x)`), on ferrograd tensors.

Each function takes and returns a `Tensor`. `get` resolves a name, a function or None
("linear"); `serialize` gives the name a saved model stores. The formulas are Keras 3's
(`hard_sigmoid` is relu6(x + 3) / 6, `leaky_relu`'s default slope 0.2, `gelu` exact by default).
"""

from __future__ import annotations

from collections.abc import Callable

from .._core import Tensor
from . import _scope


def linear(x: Tensor) -> Tensor:
    """The identity (Keras's default: no activation)."""
    return x


def relu(
    x: Tensor, negative_slope: float = 0.0, max_value: float | None = None, threshold: float = 0.0
) -> Tensor:
    """max(x, 0), as Keras's: values at or below `threshold` give 0 (minus
    `negative_slope` * (threshold - x)), and `max_value` caps the rest."""
    if threshold == 0.0 and max_value is None:
        return x.relu() if negative_slope == 0.0 else x.leaky_relu(negative_slope)
    y = x * (x > threshold).float() if threshold != 0.0 else x.relu()
    if max_value is not None:
        y = y.clamp(0.0, float(max_value))
    if negative_slope != 0.0:
        y = y - (threshold - x).relu() * negative_slope
    return y


def relu6(x: Tensor) -> Tensor:
    """min(max(x, 0), 6)."""
    return x.relu6()


def leaky_relu(x: Tensor, negative_slope: float = 0.2) -> Tensor:
    """x if x > 0 else negative_slope * x (Keras 3's default slope 0.2)."""
    return x.leaky_relu(negative_slope)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x if x > 0 else alpha (e^x - 1)."""
    return x.elu(alpha)


def selu(x: Tensor) -> Tensor:
    """Scaled ELU (self-normalizing networks; use with lecun_normal and AlphaDropout)."""
    return x.selu()


def celu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """max(0, x) + min(0, alpha (e^(x / alpha) - 1))."""
    return x.celu(alpha)


def gelu(x: Tensor, approximate: bool = False) -> Tensor:
    """x Phi(x); `approximate=True` uses the tanh approximation."""
    return x.gelu("tanh" if approximate else "none")


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + e^-x)."""
    return x.sigmoid()


def hard_sigmoid(x: Tensor) -> Tensor:
    """relu6(x + 3) / 6 (Keras 3's definition)."""
    return x.hardsigmoid()


def silu(x: Tensor) -> Tensor:
    """x sigmoid(x)."""
    return x.silu()


def hard_silu(x: Tensor) -> Tensor:
    """x relu6(x + 3) / 6."""
    return x.hardswish()


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return x.tanh()


def softplus(x: Tensor) -> Tensor:
    """log(1 + e^x)."""
    return x.softplus(1.0, 20.0)


def softsign(x: Tensor) -> Tensor:
    """x / (1 + |x|)."""
    return x.softsign()


def mish(x: Tensor) -> Tensor:
    """x tanh(softplus(x))."""
    return x.mish()


def exponential(x: Tensor) -> Tensor:
    """e^x."""
    return x.exp()


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """Softmax along `axis`."""
    return x.softmax(axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)) along `axis`, computed stably."""
    return x.log_softmax(axis)


swish = silu
hard_swish = hard_silu

_BY_NAME: dict[str, Callable[..., Tensor]] = {
    "linear": linear,
    "relu": relu,
    "relu6": relu6,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "selu": selu,
    "celu": celu,
    "gelu": gelu,
    "sigmoid": sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "silu": silu,
    "swish": silu,
    "hard_silu": hard_silu,
    "hard_swish": hard_silu,
    "tanh": tanh,
    "softplus": softplus,
    "softsign": softsign,
    "mish": mish,
    "exponential": exponential,
    "softmax": softmax,
    "log_softmax": log_softmax,
}

# What `_core.linear` (and so Dense) can run in the matrix product's epilogue: (name, alpha)
FUSED: dict[Callable[..., Tensor], tuple[str, float | None]] = {
    relu: ("relu", None),
    selu: ("selu", None),
    tanh: ("tanh", None),
    sigmoid: ("sigmoid", None),
    elu: ("elu", 1.0),
}


def get(identifier) -> Callable[..., Tensor]:
    """The activation function for a name ("relu", "selu", "softmax", ...), a function
    (returned as is) or None (linear). ValueError names an unknown name."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        fn = _BY_NAME.get(identifier.lower()) or _scope.lookup(identifier)
        if fn is None:
            raise ValueError(f"unknown activation {identifier!r} (choose from {sorted(_BY_NAME)})")
        return fn
    if isinstance(identifier, dict) and "class_name" in identifier:  # Keras's serialized form
        return get(identifier.get("config", {}).get("name", identifier["class_name"]))
    if callable(identifier):
        return identifier
    raise TypeError(f"activation must be a name, a function or None, got {type(identifier).__name__}")


def serialize(fn: Callable[..., Tensor]) -> str:
    """The name of a built-in activation; a custom function's `__name__` (loading it takes
    `custom_objects`)."""
    for name, f in _BY_NAME.items():
        if f is fn:
            return name
    return getattr(fn, "__name__", type(fn).__name__)


def deserialize(name, custom_objects: dict | None = None) -> Callable[..., Tensor]:
    """The activation a saved name stands for: a built-in, or one from `custom_objects` (or
    a `custom_object_scope`)."""
    if custom_objects and isinstance(name, str) and name in custom_objects:
        return custom_objects[name]
    if isinstance(name, str) and _scope.lookup(name) is not None:
        return _scope.lookup(name)
    if isinstance(name, str) and name.lower() not in _BY_NAME:
        raise ValueError(
            f"unknown activation {name!r}: a custom activation loads only when passed as "
            f"custom_objects={{{name!r}: fn}}"
        )
    return get(name)
