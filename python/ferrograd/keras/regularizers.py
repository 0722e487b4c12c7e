"""Keras's weight regularizers: `kernel_regularizer=regularizers.l2(0.01)`.

A regularizer maps a weight to a scalar penalty that `fit` adds to the loss (and `evaluate`
reports inside the loss, as Keras does): `L1(l1)` gives l1 * sum(|w|), `L2(l2)` gives
l2 * sum(w**2) (no 1/2), `L1L2` both. Keras's default factor is 0.01.
"""

from __future__ import annotations

from .. import _core
from .._core import Tensor
from . import _scope


def _factor(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v != v:
        raise ValueError(f"{name} must be a number >= 0, got {v!r}")
    return float(v)


class Regularizer:
    """Base class: `reg(weight)` returns a 0-d tensor penalty (subclass and define
    `__call__`, and `get_config` to save it)."""

    def __call__(self, x: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define __call__(x)")

    def get_config(self) -> dict:
        """The constructor arguments (for saving)."""
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Regularizer:
        """Rebuilds the regularizer from `get_config()`."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in self.get_config().items())})"


class L1L2(Regularizer):
    """l1 * sum(|w|) + l2 * sum(w**2)."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1, self.l2 = _factor("L1L2: l1", l1), _factor("L1L2: l2", l2)

    def __call__(self, x: Tensor) -> Tensor:
        out = None
        if self.l1:
            out = x.abs().sum() * self.l1
        if self.l2:
            sq = (x * x).sum() * self.l2
            out = sq if out is None else out + sq
        return out if out is not None else (x * 0.0).sum()

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """l1 * sum(|w|) (Keras's default l1 = 0.01)."""

    def __init__(self, l1: float = 0.01):
        super().__init__(l1=l1)

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(L1L2):
    """l2 * sum(w**2) (Keras's default l2 = 0.01)."""

    def __init__(self, l2: float = 0.01):
        super().__init__(l2=l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """factor * mean of the off-diagonal |<w_i, w_j>| of the L2-normalized rows (`mode="rows"`)
    or columns of a 2-D kernel, as Keras's."""

    def __init__(self, factor: float = 0.01, mode: str = "rows"):
        if mode not in ("rows", "columns"):
            raise ValueError(f"OrthogonalRegularizer: mode must be 'rows' or 'columns', got {mode!r}")
        self.factor, self.mode = _factor("OrthogonalRegularizer: factor", factor), mode

    def __call__(self, x: Tensor) -> Tensor:
        if x.ndim != 2:
            raise ValueError(f"OrthogonalRegularizer: needs a 2-D weight, got shape {tuple(x.shape)}")
        if self.mode == "columns":
            x = x.t()
        n = x / ((x * x).sum(dim=1, keepdim=True) + 1e-12).sqrt()
        prod = (n @ n.t()).abs()
        size = x.shape[0]
        eye = _core.eye(size, size, None)
        off = (prod * (1.0 - (eye if x.device == "cpu" else eye.to(x.device)))).sum()
        return off / float(max(size * (size - 1), 1)) * self.factor

    def get_config(self) -> dict:
        return {"factor": self.factor, "mode": self.mode}


def l1(l1: float = 0.01) -> L1:  # noqa: E741 (Keras's name)
    """`L1(l1)`."""
    return L1(l1)


def l2(l2: float = 0.01) -> L2:
    """`L2(l2)`."""
    return L2(l2)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    """`L1L2(l1, l2)` (Keras's defaults 0.01 each)."""
    return L1L2(l1=l1, l2=l2)


_CLASSES: dict[str, type[Regularizer]] = {c.__name__: c for c in (L1, L2, L1L2, OrthogonalRegularizer)}
_NAMES = {"l1": L1, "l2": L2, "l1_l2": L1L2, "orthogonal_regularizer": OrthogonalRegularizer}


def get(identifier, custom_objects: dict | None = None):
    """A regularizer from None, a name ("l2"), an instance, a function `fn(w) -> scalar`, or a
    saved `{"class_name", "config"}` dict."""
    return _scope.resolve(identifier, custom_objects, Regularizer, _NAMES, _CLASSES, "regularizer")


def serialize(reg) -> dict | None:
    """Keras's saved form, `{"class_name": ..., "config": ...}` (None for None)."""
    if reg is None:
        return None
    if not isinstance(reg, Regularizer):
        raise ValueError(f"a regularizer given as a function ({reg!r}) cannot be saved; subclass Regularizer")
    return {"class_name": type(reg).__name__, "config": reg.get_config()}
