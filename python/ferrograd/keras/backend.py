"""Keras's `backend` helpers that dense-network scripts call (`K.epsilon()`,
`K.clear_session()`, `K.set_value(model.optimizer.lr, 1e-4)`), on ferrograd.

The auto-naming counters live here too: `clear_session` resets them, so the next model's
first Dense layer is called "dense" again, as in Keras.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .. import _core
from .._core import Tensor

_EPSILON = 1e-7
_FLOATX = "float32"
_UIDS: dict[str, int] = {}


def epsilon() -> float:
    """The fuzz factor Keras adds against division by zero and log(0) (1e-7)."""
    return _EPSILON


def set_epsilon(value: float) -> None:
    """Sets the fuzz factor `epsilon()` returns (used by losses on probabilities)."""
    global _EPSILON
    _EPSILON = float(value)


def floatx() -> str:
    """The default float type: "float32" (ferrograd computes in float32 by default)."""
    return _FLOATX


def set_floatx(value: str) -> None:
    """Only "float32" is supported: a ValueError names anything else."""
    if value != "float32":
        raise ValueError(f"set_floatx: ferrograd.keras computes in float32, got {value!r}")


def image_data_format() -> str:
    """Keras's default, "channels_last" (for scripts that ask; dense layers ignore it)."""
    return "channels_last"


def backend() -> str:
    """The backend's name: "ferrograd"."""
    return "ferrograd"


def to_snake_case(name: str) -> str:
    """Keras's layer-name form of a class name: BatchNormalization -> batch_normalization."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()


def unique_name(prefix: str) -> str:
    """ "dense", then "dense_1", "dense_2", ... (per session, as Keras names layers)."""
    n = _UIDS.get(prefix, 0)
    _UIDS[prefix] = n + 1
    return prefix if n == 0 else f"{prefix}_{n}"


def clear_session() -> None:
    """Resets the auto-naming counters (models and their weights are ordinary objects: they
    stay alive while referenced)."""
    _UIDS.clear()


def get_value(x) -> Any:
    """The value of a tensor (as NumPy), a learning rate, or a number."""
    if isinstance(x, Tensor):
        return x.detach().numpy()
    if hasattr(x, "numpy"):
        return x.numpy()
    return np.asarray(x)


def set_value(x, value) -> None:
    """Assigns `value` to a variable in place: a learning rate (`model.optimizer.lr`) or a
    tensor (copied into it)."""
    if isinstance(x, Tensor):
        arr = np.asarray(value, dtype=x.numpy().dtype)
        if arr.shape != tuple(x.shape):
            raise ValueError(f"set_value: value of shape {arr.shape} for a tensor of shape {tuple(x.shape)}")
        src = _core.from_numpy(np.ascontiguousarray(arr))
        prev = _core.set_grad_enabled(False)
        try:
            x.copy_(src if x.device == "cpu" else src.to(x.device))
        finally:
            _core.set_grad_enabled(prev)
        return
    if hasattr(x, "assign"):
        x.assign(value)
        return
    raise TypeError(f"set_value: cannot assign to a {type(x).__name__}")


def int_shape(x) -> tuple:
    """The shape of a tensor, array or symbolic Keras tensor, as a tuple."""
    return tuple(x.shape)


def count_params(x) -> int:
    """The number of scalars in a tensor or array."""
    return int(np.prod(tuple(x.shape), dtype=np.int64))
