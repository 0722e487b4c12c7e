"""Keras's metrics, by name (`metrics=["accuracy"]`) and as objects
(`metrics.CategoricalAccuracy()`), on ferrograd tensors.

A metric object accumulates over batches: `update_state(y_true, y_pred, sample_weight=None)`,
`result()` (a 0-d tensor: `float(m.result())`), `reset_state()`. The functions
(`metrics.categorical_accuracy(y_true, y_pred)`) return per-sample values.

`"accuracy"` (or `"acc"`) in `compile` picks binary, categorical or sparse categorical
accuracy from the loss and the shapes, as Keras does; the logs then name it as written.
Sums stay on the model's device between reads, so a GPU run does not wait each batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _core
from .._core import Tensor
from ..autograd import no_grad
from . import _scope
from . import losses as _losses
from .backend import to_snake_case


def _t(v, like: Tensor | None = None) -> Tensor:
    if isinstance(v, Tensor):
        return v
    arr = np.asarray(v)
    arr = arr.astype(np.int64) if np.issubdtype(arr.dtype, np.integer) else arr.astype(np.float32)
    t = _core.from_numpy(np.ascontiguousarray(arr))
    return t.to(like.device) if like is not None and t.dtype.is_floating_point and like.device != "cpu" else t


def _class_ids(y_true: Tensor, pred_ndim: int) -> Tensor:
    """Integer labels from one-hot (N, C) targets, labels (N,) or labels (N, 1)."""
    if y_true.dtype == _core.dtype.int64:
        return (
            y_true.reshape(*y_true.shape[:-1])
            if y_true.ndim == pred_ndim and y_true.shape[-1] == 1
            else y_true
        )
    if y_true.ndim == pred_ndim and y_true.shape[-1] > 1:
        return y_true.argmax(dim=-1)
    if y_true.ndim == pred_ndim:
        y_true = y_true.reshape(*y_true.shape[:-1])
    return y_true.to(_core.dtype.int64)


# ---------------------------------------------------------------------------- functions


def accuracy(y_true, y_pred) -> Tensor:
    """1.0 where y_pred equals y_true exactly, else 0.0 (elementwise)."""
    y_pred = _t(y_pred)
    y_true = _t(y_true, y_pred)
    return (_losses._same_rank(y_true.float(), y_pred) == y_pred).float()


def binary_accuracy(y_true, y_pred, threshold: float = 0.5) -> Tensor:
    """The fraction of the last axis where (y_pred > threshold) equals y_true, per sample."""
    y_pred = _t(y_pred)
    y_true = _losses._same_rank(_t(y_true, y_pred).float(), y_pred)
    hits = ((y_pred > threshold).float() == y_true).float()
    return hits.mean(dim=-1) if hits.ndim > 1 else hits


def categorical_accuracy(y_true, y_pred) -> Tensor:
    """1.0 where argmax(y_pred) equals argmax(y_true) (one-hot targets), per sample."""
    y_pred = _t(y_pred)
    return (y_pred.argmax(dim=-1) == _class_ids(_t(y_true, y_pred), y_pred.ndim)).float()


def sparse_categorical_accuracy(y_true, y_pred) -> Tensor:
    """1.0 where argmax(y_pred) equals the integer label y_true, per sample."""
    y_pred = _t(y_pred)
    return (y_pred.argmax(dim=-1) == _class_ids(_t(y_true, y_pred), y_pred.ndim)).float()


def top_k_categorical_accuracy(y_true, y_pred, k: int = 5) -> Tensor:
    """1.0 where the target class is among the k highest predictions (one-hot targets)."""
    y_pred = _t(y_pred)
    labels = _class_ids(_t(y_true, y_pred), y_pred.ndim)
    _, idx = y_pred.topk(min(k, y_pred.shape[-1]))
    return (idx == labels.unsqueeze(-1)).any(-1).float()


def sparse_top_k_categorical_accuracy(y_true, y_pred, k: int = 5) -> Tensor:
    """`top_k_categorical_accuracy` for integer labels."""
    return top_k_categorical_accuracy(y_true, y_pred, k)


mean_squared_error = _losses.mean_squared_error
mean_absolute_error = _losses.mean_absolute_error
mean_absolute_percentage_error = _losses.mean_absolute_percentage_error
mean_squared_logarithmic_error = _losses.mean_squared_logarithmic_error
mse, mae, mape, msle = (
    mean_squared_error,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_logarithmic_error,
)
categorical_crossentropy = _losses.categorical_crossentropy
sparse_categorical_crossentropy = _losses.sparse_categorical_crossentropy
binary_crossentropy = _losses.binary_crossentropy


# ---------------------------------------------------------------------------- objects


class ModelOutput:
    """What a training or test step hands its metrics: the model's output, possibly as the
    logits before a final softmax/sigmoid (`final` names it; `value()` applies it)."""

    def __init__(self, logits: Tensor, final: str | None):
        self.logits, self.final = logits, final
        self._value: Tensor | None = None

    def value(self) -> Tensor:
        """The model's actual output."""
        if self._value is None:
            if self.final == "softmax":
                self._value = self.logits.softmax(-1)
            elif self.final == "sigmoid":
                self._value = self.logits.sigmoid()
            else:
                self._value = self.logits
        return self._value


class Metric:
    """Base class of Keras's metrics: accumulates with `update_state`, reads with `result`."""

    _direction = "up"  # whether larger is better (callbacks' mode="auto" asks)

    def __init__(self, name: str | None = None, dtype=None):
        self.name = name or to_snake_case(type(self).__name__)
        self.reset_state()

    def update_state(self, *args, **kwargs) -> None:
        """Adds a batch to the accumulated state."""
        raise NotImplementedError(f"{type(self).__name__} must define update_state")

    def result(self) -> Tensor:
        """The metric's value over everything accumulated (a 0-d tensor)."""
        raise NotImplementedError(f"{type(self).__name__} must define result")

    def reset_state(self) -> None:
        """Forgets the accumulated state."""

    def reset_states(self) -> None:
        """`reset_state` (Keras 2's name)."""
        self.reset_state()

    def __call__(self, *args, **kwargs) -> Tensor:
        self.update_state(*args, **kwargs)
        return self.result()

    def _update_output(self, y_true: Tensor, out: ModelOutput, sample_weight) -> None:
        self.update_state(y_true, out.value(), sample_weight)

    def get_config(self) -> dict:
        """The constructor arguments (for saving a compiled model)."""
        return {"name": self.name, "dtype": "float32"}

    @classmethod
    def from_config(cls, config: dict) -> Metric:
        """Rebuilds the metric from `get_config()`."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


class Mean(Metric):
    """The (weighted) mean of the values given to `update_state(values, sample_weight=None)`."""

    def reset_state(self) -> None:
        self._total: Any = 0.0
        self._count: Any = 0.0

    def update_state(self, values, sample_weight=None) -> None:
        with no_grad():
            v = _t(values).detach().float()
            if sample_weight is not None:
                w = _t(sample_weight, v).float()
                if w.ndim < v.ndim:
                    w = w.reshape(*w.shape, *([1] * (v.ndim - w.ndim)))
                w = w * (v * 0.0 + 1.0) if tuple(w.shape) != tuple(v.shape) else w
                self._total = self._total + (v * w).sum()
                self._count = self._count + w.sum()
            else:
                self._total = self._total + v.sum()
                self._count = self._count + float(v.numel())

    def result(self) -> Tensor:
        total = self._total if isinstance(self._total, Tensor) else _core.full([], float(self._total), None)
        count = self._count
        with no_grad():
            if isinstance(count, Tensor):
                return _core.where(count > 0, total / count.clamp(1e-30, None), total * 0.0)
            return total / count if count > 0 else total * 0.0


class Sum(Metric):
    """The (weighted) sum of the values given to `update_state(values, sample_weight=None)`."""

    def reset_state(self) -> None:
        self._total: Any = 0.0

    def update_state(self, values, sample_weight=None) -> None:
        with no_grad():
            v = _t(values).detach().float()
            if sample_weight is not None:
                v = v * _t(sample_weight, v).float()
            self._total = self._total + v.sum()

    def result(self) -> Tensor:
        return self._total if isinstance(self._total, Tensor) else _core.full([], float(self._total), None)


class MeanMetricWrapper(Mean):
    """The weighted mean of `fn(y_true, y_pred, **kwargs)`'s per-sample values."""

    def __init__(self, fn: Callable[..., Tensor], name: str | None = None, dtype=None, **kwargs):
        self.fn, self._fn_kwargs = fn, kwargs
        super().__init__(name=name or getattr(fn, "__name__", "mean_metric_wrapper"))

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:  # type: ignore[override]
        with no_grad():
            y_pred = _t(y_pred)
            super().update_state(self.fn(_t(y_true, y_pred), y_pred, **self._fn_kwargs), sample_weight)

    def get_config(self) -> dict:
        return {**super().get_config(), **self._fn_kwargs}


class _Hits(MeanMetricWrapper):
    """An accuracy over argmax: counted on the device by the engine's fused kernel."""

    def _update_output(self, y_true, out, sample_weight) -> None:
        # argmax is unchanged by softmax/sigmoid, so the logits do
        if sample_weight is None and out.logits.ndim == 2:
            with no_grad():
                labels = _class_ids(y_true, 2)
                if labels.ndim == 1:
                    self._total = self._total + _core.correct_count(out.logits, labels)
                    self._count = self._count + float(labels.shape[0])
                    return
        self.update_state(y_true, out.logits, sample_weight)


class CategoricalAccuracy(_Hits):
    """How often argmax(y_pred) equals argmax(y_true) (one-hot targets)."""

    def __init__(self, name: str = "categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": "float32"}


class SparseCategoricalAccuracy(_Hits):
    """How often argmax(y_pred) equals the integer label."""

    def __init__(self, name: str = "sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": "float32"}


class BinaryAccuracy(MeanMetricWrapper):
    """How often (y_pred > threshold) equals the 0/1 target."""

    def __init__(self, name: str = "binary_accuracy", dtype=None, threshold: float = 0.5):
        super().__init__(binary_accuracy, name=name, threshold=float(threshold))
        self.threshold = float(threshold)

    def _update_output(self, y_true, out, sample_weight) -> None:
        t = self.threshold
        if out.final == "sigmoid" and 0.0 < t < 1.0:
            # p > t  <=>  logit > log(t / (1 - t)): no sigmoid needed
            with no_grad():
                z = math.log(t / (1.0 - t))
                y = _losses._same_rank(y_true.float(), out.logits)
                hits = ((out.logits > z).float() == y).float()
                Mean.update_state(self, hits.mean(dim=-1) if hits.ndim > 1 else hits, sample_weight)
            return
        self.update_state(y_true, out.value(), sample_weight)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": "float32", "threshold": self.threshold}


class Accuracy(MeanMetricWrapper):
    """How often y_pred equals y_true exactly."""

    def __init__(self, name: str = "accuracy", dtype=None):
        super().__init__(accuracy, name=name)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": "float32"}


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the target is among the k highest predictions (one-hot targets)."""

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy", dtype=None):
        super().__init__(top_k_categorical_accuracy, name=name, k=int(k))

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": "float32", "k": self._fn_kwargs["k"]}


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is among the k highest predictions."""

    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy", dtype=None):
        super().__init__(sparse_top_k_categorical_accuracy, name=name, k=int(k))

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": "float32", "k": self._fn_kwargs["k"]}


class _Error(MeanMetricWrapper):
    _direction = "down"
    _fn: Callable[..., Tensor]

    def __init__(self, name: str | None = None, dtype=None):
        super().__init__(type(self)._fn, name=name or to_snake_case(type(self).__name__))

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": "float32"}


class MeanSquaredError(_Error):
    """The mean of (y_true - y_pred)**2."""

    _fn = staticmethod(mean_squared_error)


class MeanAbsoluteError(_Error):
    """The mean of |y_true - y_pred|."""

    _fn = staticmethod(mean_absolute_error)


class MeanAbsolutePercentageError(_Error):
    """The mean of 100 |(y_true - y_pred) / y_true|."""

    _fn = staticmethod(mean_absolute_percentage_error)


class MeanSquaredLogarithmicError(_Error):
    """The mean of (log(y_pred + 1) - log(y_true + 1))**2."""

    _fn = staticmethod(mean_squared_logarithmic_error)


class RootMeanSquaredError(_Error):
    """sqrt of the mean of (y_true - y_pred)**2."""

    _fn = staticmethod(mean_squared_error)

    def result(self) -> Tensor:
        return super().result().sqrt()


class _Confusion(Metric):
    """Counts of true/false positives and false negatives at a threshold (0/1 targets)."""

    def __init__(self, thresholds: float | None = None, name: str | None = None, dtype=None, **kwargs):
        if kwargs.get("top_k") is not None or kwargs.get("class_id") is not None:
            raise ValueError(f"{type(self).__name__}: top_k and class_id are not supported")
        self.threshold = 0.5 if thresholds is None else float(thresholds)
        super().__init__(name=name)

    def reset_state(self) -> None:
        self._tp: Any = 0.0
        self._fp: Any = 0.0
        self._fn: Any = 0.0

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        with no_grad():
            y_pred = _t(y_pred)
            y = _losses._same_rank(_t(y_true, y_pred).float(), y_pred)
            pred = (y_pred > self.threshold).float()
            w = (
                1.0
                if sample_weight is None
                else _t(sample_weight, y_pred).float().reshape(-1, *([1] * (y.ndim - 1)))
            )
            self._tp = self._tp + (pred * y * w).sum()
            self._fp = self._fp + (pred * (1.0 - y) * w).sum()
            self._fn = self._fn + ((1.0 - pred) * y * w).sum()

    def _ratio(self, num, den) -> Tensor:
        num = num if isinstance(num, Tensor) else _core.full([], float(num), None)
        den = den if isinstance(den, Tensor) else _core.full([], float(den), None)
        return _core.where(den > 0, num / den.clamp(1e-30, None), num * 0.0)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": "float32", "thresholds": self.threshold}


class Precision(_Confusion):
    """true positives / (true positives + false positives) at `thresholds` (default 0.5)."""

    def result(self) -> Tensor:
        return self._ratio(self._tp, self._tp + self._fp)


class Recall(_Confusion):
    """true positives / (true positives + false negatives) at `thresholds` (default 0.5)."""

    def result(self) -> Tensor:
        return self._ratio(self._tp, self._tp + self._fn)


class LossMetric(Mean):
    """A loss used as a metric (`metrics=["categorical_crossentropy"]`): its mean value."""

    _direction = "down"

    def __init__(self, loss: _losses.Loss, name: str | None = None):
        self.loss = loss
        super().__init__(name=name or loss.name)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:  # type: ignore[override]
        with no_grad():
            y_pred = _t(y_pred)
            super().update_state(self.loss.call(_t(y_true, y_pred), y_pred), sample_weight)

    def _update_output(self, y_true, out, sample_weight) -> None:
        with no_grad():
            if self.loss._absorbs(out.final):
                super().update_state(self.loss._logits_values(y_true, out.logits, mean=False), sample_weight)
            else:
                super().update_state(self.loss.call(y_true, out.value()), sample_weight)

    def get_config(self) -> dict:
        raise ValueError("a loss used as a metric is saved by its name")


_CLASSES: dict[str, type[Metric]] = {
    c.__name__: c
    for c in (
        Accuracy,
        BinaryAccuracy,
        CategoricalAccuracy,
        SparseCategoricalAccuracy,
        TopKCategoricalAccuracy,
        SparseTopKCategoricalAccuracy,
        MeanSquaredError,
        MeanAbsoluteError,
        MeanAbsolutePercentageError,
        MeanSquaredLogarithmicError,
        RootMeanSquaredError,
        Precision,
        Recall,
        Mean,
        Sum,
    )
}
_BY_NAME: dict[str, type[Metric]] = {
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "mape": MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "msle": MeanSquaredLogarithmicError,
    "root_mean_squared_error": RootMeanSquaredError,
    "precision": Precision,
    "recall": Recall,
}
_FUNCTIONS: dict[Any, type[Metric]] = {
    binary_accuracy: BinaryAccuracy,
    categorical_accuracy: CategoricalAccuracy,
    sparse_categorical_accuracy: SparseCategoricalAccuracy,
    top_k_categorical_accuracy: TopKCategoricalAccuracy,
    sparse_top_k_categorical_accuracy: SparseTopKCategoricalAccuracy,
    mean_squared_error: MeanSquaredError,
    mean_absolute_error: MeanAbsoluteError,
    mean_absolute_percentage_error: MeanAbsolutePercentageError,
    mean_squared_logarithmic_error: MeanSquaredLogarithmicError,
}


def accuracy_for(name: str, loss: _losses.Loss | None, y_shape: tuple, out_shape: tuple) -> Metric:
    """The accuracy `"accuracy"`/`"acc"` stands for, named `name`: from the loss when it is a
    cross-entropy (Keras 2's rule), else from the shapes (Keras 3's: one output unit means
    binary, labels of lower rank sparse, otherwise categorical)."""
    if isinstance(loss, _losses.BinaryCrossentropy):
        return BinaryAccuracy(name=name)
    if isinstance(loss, _losses.SparseCategoricalCrossentropy):
        return SparseCategoricalAccuracy(name=name)
    if isinstance(loss, _losses.CategoricalCrossentropy):
        return CategoricalAccuracy(name=name)
    if out_shape and out_shape[-1] == 1:
        return BinaryAccuracy(name=name)
    if len(y_shape) < len(out_shape) or (y_shape and y_shape[-1] == 1 and out_shape[-1] != 1):
        return SparseCategoricalAccuracy(name=name)
    return CategoricalAccuracy(name=name)


def get(identifier) -> Metric:
    """A Metric from a name ("categorical_accuracy", "mae", ...; "accuracy" is resolved by
    `compile`), a class name, an instance, a function of (y_true, y_pred), or a loss name."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier) or _BY_NAME.get(identifier.lower())
        if cls is not None:
            return cls(name=identifier)
        if identifier in _CLASSES:
            return _CLASSES[identifier]()
        if identifier.lower() in ("accuracy", "acc"):
            return Accuracy(name=identifier)
        custom = _scope.lookup(identifier)
        if custom is not None:
            return get(custom)
        try:
            return LossMetric(_losses.get(identifier), name=identifier)
        except ValueError:
            raise ValueError(f"unknown metric {identifier!r} (choose from {sorted(_BY_NAME)})") from None
    if isinstance(identifier, dict) and "class_name" in identifier:
        name, config = identifier["class_name"], identifier.get("config") or {}
        custom = _scope.lookup(name)
        cls = custom if isinstance(custom, type) and issubclass(custom, Metric) else _CLASSES.get(name)
        if cls is None:
            raise ValueError(f"unknown metric class {name!r}; pass custom_objects={{{name!r}: cls}}")
        return cls.from_config(_scope.check_arguments(name, config))
    if identifier in _FUNCTIONS:
        return _FUNCTIONS[identifier](name=identifier.__name__)
    if isinstance(identifier, _losses.Loss):
        return LossMetric(identifier)
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise TypeError(f"metric must be a name, a Metric or a function, got {type(identifier).__name__}")


def serialize(metric: Metric) -> dict:
    """Keras's saved form `{"class_name": ..., "config": ...}`."""
    return {"class_name": type(metric).__name__, "config": metric.get_config()}
