"""Keras's weight constraints (`kernel_constraint=constraints.MaxNorm(3)`), applied to a
weight after each optimizer step, as Keras does.

A constraint maps Keras's layout of a weight (a Dense kernel is (in, out)) to its projected
value; `axis=0` (the default of MaxNorm/UnitNorm/MinMaxNorm) therefore normalizes each
output unit's incoming weights.
"""

from __future__ import annotations

from .._core import Tensor
from . import _scope


class Constraint:
    """Base class: `c(w)` returns the projected weight (subclass and define `__call__`)."""

    def __call__(self, w: Tensor) -> Tensor:
        return w

    def get_config(self) -> dict:
        """The constructor arguments (for saving)."""
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Constraint:
        """Rebuilds the constraint from `get_config()`."""
        return cls(**config)


def _norms(w: Tensor, axis) -> Tensor:
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    sq = w * w
    for a in sorted((a % w.ndim for a in axes), reverse=True):
        sq = sq.sum(dim=a, keepdim=True)
    return sq.sqrt()


class MaxNorm(Constraint):
    """Scales each slice along `axis` whose L2 norm exceeds `max_value` back to it."""

    def __init__(self, max_value: float = 2.0, axis=0):
        self.max_value, self.axis = float(max_value), axis

    def __call__(self, w: Tensor) -> Tensor:
        norms = _norms(w, self.axis)
        desired = norms.clamp(0.0, self.max_value)
        return w * (desired / (norms + 1e-7))

    def get_config(self) -> dict:
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Clips negative weights to 0."""

    def __call__(self, w: Tensor) -> Tensor:
        return w.relu()


class UnitNorm(Constraint):
    """Scales each slice along `axis` to L2 norm 1."""

    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w: Tensor) -> Tensor:
        return w / (_norms(w, self.axis) + 1e-7)

    def get_config(self) -> dict:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Moves each slice's norm toward [min_value, max_value] at `rate` (1: all the way)."""

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis=0):
        self.min_value, self.max_value, self.rate, self.axis = (
            float(min_value),
            float(max_value),
            float(rate),
            axis,
        )

    def __call__(self, w: Tensor) -> Tensor:
        norms = _norms(w, self.axis)
        desired = norms.clamp(self.min_value, self.max_value) * self.rate + norms * (1.0 - self.rate)
        return w * (desired / (norms + 1e-7))

    def get_config(self) -> dict:
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "rate": self.rate,
            "axis": self.axis,
        }


max_norm, non_neg, unit_norm, min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm
_CLASSES: dict[str, type[Constraint]] = {c.__name__: c for c in (MaxNorm, NonNeg, UnitNorm, MinMaxNorm)}
_NAMES = {
    "max_norm": MaxNorm,
    "maxnorm": MaxNorm,
    "non_neg": NonNeg,
    "nonneg": NonNeg,
    "unit_norm": UnitNorm,
    "min_max_norm": MinMaxNorm,
}


def get(identifier, custom_objects: dict | None = None):
    """A constraint from None, a name ("max_norm"), an instance, a function, or a saved
    `{"class_name", "config"}` dict."""
    return _scope.resolve(identifier, custom_objects, Constraint, _NAMES, _CLASSES, "constraint")


def serialize(c) -> dict | None:
    """Keras's saved form (None for None)."""
    if c is None:
        return None
    if not isinstance(c, Constraint):
        raise ValueError(f"a constraint given as a function ({c!r}) cannot be saved; subclass Constraint")
    return {"class_name": type(c).__name__, "config": c.get_config()}
