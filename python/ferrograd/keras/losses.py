"""Keras's losses, by name (`loss="categorical_crossentropy"`) and as objects
(`losses.CategoricalCrossentropy(from_logits=True)`), on ferrograd tensors.

Keras's conventions: arguments are `(y_true, y_pred)`; a loss object reduces the per-sample
values with "sum_over_batch_size" (the mean over samples, sample weights included in the
sum) unless given another `reduction`; the functions (`losses.mean_squared_error(y_true,
y_pred)`) return the per-sample values. MSE, MAE and binary crossentropy average over the
last axis; cross-entropies sum over the classes.

Probabilities or logits: by default a cross-entropy takes probabilities, clipped to
[epsilon, 1 - epsilon] (epsilon 1e-7) as Keras does. When a model ends in a softmax (or a
sigmoid, for binary crossentropy), `fit` computes the loss from the logits before it, as
Keras's TensorFlow backend does: the same value, computed stably by the engine's fused
kernels. The computations on logits are ferrograd's own losses (`ferrograd.nn.loss`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _core
from .._core import Tensor
from ..nn import loss as _nn_loss
from . import _scope
from .backend import epsilon, to_snake_case

_REDUCTIONS = ("sum_over_batch_size", "sum", "none", "mean", "mean_with_sample_weight")


def _as_tensor(v, like: Tensor | None = None) -> Tensor:
    """`v` as a tensor: integer arrays become int64 labels, anything else float32; float
    targets go to `like`'s device (int64 labels stay on the host, as the engine wants)."""
    if isinstance(v, Tensor):
        t = v
    else:
        arr = np.asarray(v)
        arr = arr.astype(np.int64) if np.issubdtype(arr.dtype, np.integer) else arr.astype(np.float32)
        t = _core.from_numpy(np.ascontiguousarray(arr))
    if like is not None and t.dtype.is_floating_point and like.device != t.device:
        t = t.to(like.device)
    return t


def _float(t: Tensor) -> Tensor:
    return t if t.dtype.is_floating_point else t.float()


def _same_rank(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """`y_true` squeezed or expanded by a trailing 1 to `y_pred`'s rank (Keras's rule)."""
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        return y_true.reshape(*y_true.shape, 1)
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        return y_true.reshape(*y_true.shape[:-1])
    return y_true


def _labels(y_true: Tensor, n_pred_dims: int) -> Tensor:
    """Integer class labels of shape (N, ...) from (N, ...) or (N, ..., 1) targets."""
    if y_true.ndim == n_pred_dims and y_true.shape[-1] == 1:
        y_true = y_true.reshape(*y_true.shape[:-1])
    if y_true.dtype != _core.dtype.int64:
        y_true = y_true.to(_core.dtype.int64)
    return y_true


class Loss:
    """Base class of Keras's losses: `loss(y_true, y_pred, sample_weight=None)` returns the
    reduced value; subclasses define `call(y_true, y_pred)` (per-sample values)."""

    def __init__(self, name: str | None = None, reduction: str | None = "sum_over_batch_size", dtype=None):
        if reduction is None:
            reduction = "none"
        if reduction == "auto":  # Keras 2's name for the default
            reduction = "sum_over_batch_size"
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"{type(self).__name__}: reduction must be one of {_REDUCTIONS}, got {reduction!r}"
            )
        self.name = name or to_snake_case(type(self).__name__)
        self.reduction = reduction

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        """The per-sample loss values (subclasses define it)."""
        raise NotImplementedError(f"{type(self).__name__} must define call(y_true, y_pred)")

    def __call__(self, y_true, y_pred, sample_weight=None) -> Tensor:
        y_pred = _as_tensor(y_pred) if not isinstance(y_pred, Tensor) else y_pred
        y_true = _as_tensor(y_true, like=y_pred)
        return self.reduce(self.call(y_true, y_pred), sample_weight)

    def reduce(self, values: Tensor, sample_weight=None) -> Tensor:
        """Applies `sample_weight` and this loss's reduction to per-sample `values`."""
        if sample_weight is not None:
            w = _as_tensor(sample_weight, like=values)
            w = _float(w)
            if w.ndim > values.ndim:
                w = w.reshape(*w.shape[: values.ndim])
            weighted = values * w
        else:
            w, weighted = None, values
        r = self.reduction
        if r == "none":
            return weighted
        if r == "sum":
            return weighted.sum()
        if r == "mean_with_sample_weight" and w is not None:
            return weighted.sum() / (w.sum() if w.numel() == values.numel() else float(values.numel()))
        return weighted.sum() / float(max(values.numel(), 1)) if w is not None else values.mean()

    # ---- what fit uses: losses that absorb the model's final activation ------------------
    final: str | None = None  # "softmax"/"sigmoid": the activation this loss can train through

    def _absorbs(self, final: str | None) -> bool:
        return final is not None and final == self.final and not getattr(self, "from_logits", True)

    def _logits_values(self, y_true: Tensor, logits: Tensor, mean: bool) -> Tensor:
        """The loss from the logits before the final activation: per-sample values, or their
        mean when `mean` (one fused call where the engine has one)."""
        raise NotImplementedError

    def get_config(self) -> dict:
        """The constructor arguments (for saving a compiled model)."""
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict) -> Loss:
        """Rebuilds the loss from `get_config()`."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


class LossFunctionWrapper(Loss):
    """A function `fn(y_true, y_pred, **kwargs)` of per-sample values as a Loss."""

    def __init__(self, fn: Callable[..., Tensor], reduction="sum_over_batch_size", name=None, **kwargs):
        super().__init__(name=name or getattr(fn, "__name__", "loss"), reduction=reduction)
        self.fn, self.fn_kwargs = fn, kwargs

    def call(self, y_true, y_pred):
        out = self.fn(y_true, y_pred, **self.fn_kwargs)
        return out if isinstance(out, Tensor) else _as_tensor(out)

    def get_config(self) -> dict:
        raise ValueError(
            f"loss {self.name!r} is a Python function; a model compiled with it saves uncompiled"
        )


# ---------------------------------------------------------------------------- regression


class MeanSquaredError(Loss):
    """mean((y_true - y_pred)**2) over the last axis."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        d = y_pred - _float(_same_rank(y_true, y_pred)).detach()  # broadcasts, as Keras's
        return (d * d).mean(dim=-1)


class MeanAbsoluteError(Loss):
    """mean(|y_true - y_pred|) over the last axis."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error", dtype=None):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        return (y_pred - _float(_same_rank(y_true, y_pred)).detach()).abs().mean(dim=-1)


class MeanAbsolutePercentageError(Loss):
    """100 * mean(|(y_true - y_pred) / max(|y_true|, epsilon)|) over the last axis."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_percentage_error", dtype=None):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        y_true = _float(_same_rank(y_true, y_pred)).detach()
        return ((y_true - y_pred) / y_true.abs().clamp(epsilon(), None)).abs().mean(dim=-1) * 100.0


class MeanSquaredLogarithmicError(Loss):
    """mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1))**2) over the last axis."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_logarithmic_error", dtype=None):
        super().__init__(name, reduction)

    def call(self, y_true, y_pred):
        y_true = _float(_same_rank(y_true, y_pred)).detach()
        d = (y_pred.clamp(epsilon(), None) + 1.0).log() - (y_true.clamp(epsilon(), None) + 1.0).log()
        return (d * d).mean(dim=-1)


class Huber(Loss):
    """0.5 d**2 where |d| <= delta, else delta (|d| - 0.5 delta), averaged over the last axis."""

    def __init__(self, delta: float = 1.0, reduction="sum_over_batch_size", name="huber_loss", dtype=None):
        super().__init__(name, reduction)
        self.delta = float(delta)

    def call(self, y_true, y_pred):
        y_true = _float(_same_rank(y_true, y_pred)).detach()
        return _nn_loss.huber_loss(y_pred, y_true, reduction="none", delta=self.delta).mean(dim=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "delta": self.delta}


# ---------------------------------------------------------------------------- classification


class CategoricalCrossentropy(Loss):
    """-sum(y_true * log(y_pred)) over the classes, for one-hot (or probability) targets.

    `from_logits=False` (the default): `y_pred` holds probabilities, normalized to sum 1 and
    clipped to [1e-7, 1 - 1e-7]; a model ending in softmax trains from its logits.
    `label_smoothing` mixes the targets with the uniform distribution."""

    final = "softmax"

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction="sum_over_batch_size",
        name="categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(name, reduction)
        if axis != -1:
            raise ValueError(
                f"{type(self).__name__}: only axis=-1 (the classes last) is supported, got {axis}"
            )
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(
                f"{type(self).__name__}: label_smoothing must be in [0, 1], got {label_smoothing}"
            )
        self.from_logits, self.label_smoothing, self.axis = bool(from_logits), float(label_smoothing), axis

    def _targets(self, y_true: Tensor, n_classes: int) -> Tensor:
        y = _float(y_true).detach()
        if self.label_smoothing:
            y = y * (1.0 - self.label_smoothing) + self.label_smoothing / n_classes
        return y

    def call(self, y_true, y_pred):
        if self.from_logits:
            return self._logits_values(y_true, y_pred, mean=False)
        if y_true.dtype == _core.dtype.int64:  # labels (fit turns exact one-hot targets into them)
            return self._probability_labels(y_true, y_pred)
        if tuple(y_true.shape) != tuple(y_pred.shape):
            raise ValueError(
                f"{type(self).__name__}: y_true and y_pred must have the same shape, got "
                f"{tuple(y_true.shape)} "
                f"and {tuple(y_pred.shape)} (integer labels take sparse_categorical_crossentropy)"
            )
        p = y_pred / y_pred.sum(dim=-1, keepdim=True)
        p = p.clamp(epsilon(), 1.0 - epsilon())
        return -(self._targets(y_true, y_pred.shape[-1]) * p.log()).sum(dim=-1)

    def _probability_labels(self, labels: Tensor, y_pred: Tensor) -> Tensor:
        p = (y_pred / y_pred.sum(dim=-1, keepdim=True)).clamp(epsilon(), 1.0 - epsilon()).log()
        if self.label_smoothing:
            c = y_pred.shape[-1]
            picked = _nn_loss.nll_loss(p, labels, reduction="none")
            return picked * (1.0 - self.label_smoothing) - p.sum(dim=-1) * (self.label_smoothing / c)
        return _nn_loss.nll_loss(p, labels, reduction="none")

    def _logits_values(self, y_true, logits, mean):
        red = "mean" if mean else "none"
        if y_true.dtype == _core.dtype.int64:
            return _nn_loss.softmax_cross_entropy(logits, y_true, self.label_smoothing, red)
        if tuple(y_true.shape) != tuple(logits.shape):
            raise ValueError(
                f"{type(self).__name__}: y_true and y_pred must have the same shape, got "
                f"{tuple(y_true.shape)} "
                f"and {tuple(logits.shape)} (integer labels take sparse_categorical_crossentropy)"
            )
        return _nn_loss.softmax_cross_entropy(logits, _float(y_true).detach(), self.label_smoothing, red)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "axis": self.axis,
        }


class SparseCategoricalCrossentropy(Loss):
    """-log(y_pred[y_true]) for integer class labels (N,) or (N, 1); `from_logits` as in
    CategoricalCrossentropy. `ignore_class`: labels equal to it add nothing."""

    final = "softmax"

    def __init__(
        self,
        from_logits: bool = False,
        ignore_class: int | None = None,
        reduction="sum_over_batch_size",
        name="sparse_categorical_crossentropy",
        dtype=None,
    ):
        super().__init__(name, reduction)
        self.from_logits, self.ignore_class = bool(from_logits), ignore_class

    def _mask(self, labels: Tensor, values: Tensor) -> Tensor:
        if self.ignore_class is None:
            return values
        return values * (labels != int(self.ignore_class)).float()

    def _safe(self, labels: Tensor) -> Tensor:
        if self.ignore_class is None:
            return labels
        return _core.where(labels == int(self.ignore_class), labels * 0, labels)

    def call(self, y_true, y_pred):
        labels = _labels(y_true, y_pred.ndim)
        if self.from_logits:
            return self._logits_values(labels, y_pred, mean=False)
        p = (y_pred / y_pred.sum(dim=-1, keepdim=True)).clamp(epsilon(), 1.0 - epsilon()).log()
        return self._mask(labels, _nn_loss.nll_loss(p, self._safe(labels), reduction="none"))

    def _logits_values(self, y_true, logits, mean):
        labels = _labels(y_true, logits.ndim)
        if self.ignore_class is None:
            return _nn_loss.softmax_cross_entropy(logits, labels, 0.0, "mean" if mean else "none")
        values = self._mask(labels, _nn_loss.softmax_cross_entropy(logits, self._safe(labels), 0.0, "none"))
        return values.mean() if mean else values

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits, "ignore_class": self.ignore_class}


class BinaryCrossentropy(Loss):
    """-(y log p + (1 - y) log(1 - p)) averaged over the last axis, p clipped to [1e-7,
    1 - 1e-7]; `from_logits=True` takes logits; `label_smoothing` pulls targets toward 0.5."""

    final = "sigmoid"

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction="sum_over_batch_size",
        name="binary_crossentropy",
        dtype=None,
    ):
        super().__init__(name, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"BinaryCrossentropy: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.from_logits, self.label_smoothing, self.axis = bool(from_logits), float(label_smoothing), axis

    def _targets(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        y = _float(_same_rank(y_true, y_pred)).detach()
        if tuple(y.shape) != tuple(y_pred.shape):
            raise ValueError(
                f"BinaryCrossentropy: y_true and y_pred must have the same shape, got {tuple(y_true.shape)} "
                f"and {tuple(y_pred.shape)}"
            )
        if self.label_smoothing:
            y = y * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return y

    def call(self, y_true, y_pred):
        if self.from_logits:
            return self._logits_values(y_true, y_pred, mean=False)
        y = self._targets(y_true, y_pred)
        p = y_pred.clamp(epsilon(), 1.0 - epsilon())
        return -(y * p.log() + (1.0 - y) * (1.0 - p).log()).mean(dim=-1)

    def _logits_values(self, y_true, logits, mean):
        y = self._targets(y_true, logits)
        if mean:  # the mean over samples of means over equal-length last axes: one mean
            return _nn_loss.sigmoid_binary_cross_entropy(logits, y, "mean")
        return _nn_loss.sigmoid_binary_cross_entropy(logits, y, "none").mean(dim=-1)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "axis": self.axis,
        }


# ---------------------------------------------------------------------------- functions


def _function_form(cls: type[Loss], name: str) -> Callable[..., Tensor]:
    def per_sample(y_true, y_pred, **kwargs) -> Tensor:
        y_pred = y_pred if isinstance(y_pred, Tensor) else _as_tensor(y_pred)
        return cls(reduction="none", **kwargs).call(_as_tensor(y_true, like=y_pred), y_pred)

    per_sample.__name__ = per_sample.__qualname__ = name
    per_sample.__doc__ = f"The per-sample values of `{cls.__name__}` (no reduction): {cls.__doc__}"
    return per_sample


# The loss functions are made from the classes (one definition of each formula).
mean_squared_error = _function_form(MeanSquaredError, "mean_squared_error")
mean_absolute_error = _function_form(MeanAbsoluteError, "mean_absolute_error")
mean_absolute_percentage_error = _function_form(MeanAbsolutePercentageError, "mean_absolute_percentage_error")
mean_squared_logarithmic_error = _function_form(MeanSquaredLogarithmicError, "mean_squared_logarithmic_error")
huber = _function_form(Huber, "huber")
categorical_crossentropy = _function_form(CategoricalCrossentropy, "categorical_crossentropy")
sparse_categorical_crossentropy = _function_form(
    SparseCategoricalCrossentropy, "sparse_categorical_crossentropy"
)
binary_crossentropy = _function_form(BinaryCrossentropy, "binary_crossentropy")
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error

_BY_NAME: dict[str, type[Loss]] = {
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "mape": MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "msle": MeanSquaredLogarithmicError,
    "huber": Huber,
    "huber_loss": Huber,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
}
_CLASSES: dict[str, type[Loss]] = {
    c.__name__: c
    for c in (
        MeanSquaredError,
        MeanAbsoluteError,
        MeanAbsolutePercentageError,
        MeanSquaredLogarithmicError,
        Huber,
        CategoricalCrossentropy,
        SparseCategoricalCrossentropy,
        BinaryCrossentropy,
    )
}
_FUNCTIONS: dict[Any, type[Loss]] = {
    mean_squared_error: MeanSquaredError,
    mean_absolute_error: MeanAbsoluteError,
    mean_absolute_percentage_error: MeanAbsolutePercentageError,
    mean_squared_logarithmic_error: MeanSquaredLogarithmicError,
    huber: Huber,
    categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
    binary_crossentropy: BinaryCrossentropy,
}


def get(identifier) -> Loss:
    """A Loss object from a name ("categorical_crossentropy", "mse", ...), a class name, an
    instance, one of this module's functions, a function `fn(y_true, y_pred)` of your own,
    or a saved `{"class_name", "config"}` dict. ValueError names an unknown name."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier) or _BY_NAME.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is not None:
            return cls(name=identifier) if identifier in _BY_NAME else cls()
        custom = _scope.lookup(identifier)
        if custom is not None:
            return get(custom)
        raise ValueError(f"unknown loss {identifier!r} (choose from {sorted(_BY_NAME)})")
    if isinstance(identifier, dict) and "class_name" in identifier:
        name, config = identifier["class_name"], identifier.get("config") or {}
        custom = _scope.lookup(name)
        cls = custom if isinstance(custom, type) and issubclass(custom, Loss) else _CLASSES.get(name)
        if cls is None:
            raise ValueError(f"unknown loss class {name!r}; pass custom_objects={{{name!r}: cls}}")
        return cls.from_config(_scope.check_arguments(name, config))
    if identifier in _FUNCTIONS:
        return _FUNCTIONS[identifier](name=identifier.__name__)
    if callable(identifier):
        return LossFunctionWrapper(identifier)
    raise TypeError(f"loss must be a name, a Loss or a function, got {type(identifier).__name__}")


def serialize(loss: Loss) -> dict:
    """Keras's saved form `{"class_name": ..., "config": ...}`."""
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config: dict, custom_objects: dict | None = None) -> Loss:
    """The loss `serialize` described (custom classes only from `custom_objects`)."""
    with _scope.custom_object_scope(custom_objects):
        return get(config)
