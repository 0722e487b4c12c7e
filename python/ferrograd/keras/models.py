"""Keras's models on ferrograd: `Sequential`, the functional `Model(inputs, outputs)`,
subclassed `Model`s, and their training API (`compile`, `fit`, `evaluate`, `predict`,
`train_on_batch`, ...), `summary`, `save` / `load_model`, `get_weights` / `set_weights`.

A model is an ordinary `fg.nn.Module`: its layers are its children (named by their Keras
names, so `state_dict()` keys read `dense.weight`, `batch_normalization.gamma`), its
weights are ordinary tensors, `.to("gpu")` moves it and `fg.save(model, path)` stores it.
`fit` runs the same fused kernels as `ferrograd.models`' builders: a Dense layer is one
`linear` call with its activation in the epilogue, a BatchNormalization followed by a ReLU
one fused call, and the loss on a final softmax is computed from its logits.

`fit` prints the progress log of `ferrograd.train` (Keras's classic format):

    Train on 8000 samples, validate on 2000 samples
    Epoch 1/5
    8000/8000 [==============================] - 1s - loss: 0.3383 - accuracy: 0.8993 - val_loss: ...

Saving is data only: `model.save(path)` writes the weights, the architecture as Keras's
JSON config and the compile settings and optimizer state to a safetensors file;
`load_model(path)` builds only ferrograd.keras's classes (others only when passed as
`custom_objects`), and checks the file's tensors against the architecture before creating
any weight.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from typing import Any

import numpy as np

from .. import _core
from .. import io as _io
from .._core import Tensor
from ..autograd import no_grad
from ..train import ProgressBar, _Interrupt
from . import _scope
from . import callbacks as _callbacks
from . import layers as _layers
from . import losses as _losses
from . import metrics as _metrics
from . import optimizers as _optimizers
from .backend import unique_name
from .layers import BUILD, InputLayer, KerasTensor, Layer, Node


def _device_of(model) -> str:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return "cpu"


def _float_tensor(a, device: str = "cpu") -> Tensor:
    if isinstance(a, Tensor):
        t = a if a.dtype.is_floating_point else a.float()
    else:
        arr = np.asarray(a)
        if arr.dtype == object:
            raise TypeError("fit/evaluate/predict: x must be numeric arrays (got an object array)")
        t = _core.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    return t if t.device == device else t.to(device)


def _np(a) -> np.ndarray:
    return a.detach().numpy() if isinstance(a, Tensor) else np.asarray(a)


def _reject_iterators(x, what: str) -> None:
    if x is None:
        raise ValueError(f"{what}: x is required")
    if hasattr(x, "__next__") or (
        hasattr(x, "__iter__") and hasattr(x, "__len__") and hasattr(x, "on_epoch_end")
    ):
        raise TypeError(
            f"{what}: generators and keras.utils.Sequence inputs are not supported; pass arrays (x, y), or "
            "loop over your batches with train_on_batch"
        )


# ---------------------------------------------------------------------------- Model


class Model(Layer):
    """A Keras model. Three ways to make one, as in Keras:

    - functional: `Model(inputs, outputs)` from symbolic tensors (`Input` and layer calls);
    - `Sequential([...])` (its own class);
    - subclassing: define layers in `__init__` and the computation in `call(inputs)`.

    Then `compile(optimizer, loss, metrics)`, `fit(x, y, ...)`, `evaluate`, `predict`.
    """

    _manages_build = True
    # set through object.__setattr__ in __init__ (declared for type checkers)
    _graph: _Graph | None
    _compiled: dict[str, Any] | None
    _plans: dict[bool, _Plan]
    optimizer: Any
    stop_training: bool
    history: Any
    loss: Any

    def __new__(cls, *args, **kwargs):
        if cls is Model and (len(args) >= 2 or "inputs" in kwargs or "outputs" in kwargs):
            return object.__new__(Functional)
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        inputs = kwargs.pop("inputs", args[0] if len(args) > 0 else None)
        outputs = kwargs.pop("outputs", args[1] if len(args) > 1 else None)
        if len(args) > 2:
            raise TypeError(f"Model: too many positional arguments ({len(args)}); give inputs and outputs")
        name = kwargs.pop("name", None)
        trainable = kwargs.pop("trainable", True)
        if inputs is not None and outputs is None or outputs is not None and inputs is None:
            raise ValueError("Model: give both inputs and outputs (or neither, to subclass)")
        default = None if name else ("functional" if inputs is not None else None)
        if default is not None:
            name = unique_name(default)
        Layer.__init__(self, trainable=trainable, name=name, **kwargs)
        object.__setattr__(self, "_graph", None)
        object.__setattr__(self, "_compiled", None)
        object.__setattr__(self, "_plans", {})
        object.__setattr__(self, "optimizer", None)
        object.__setattr__(self, "stop_training", False)
        object.__setattr__(self, "history", None)
        object.__setattr__(self, "loss", None)
        if inputs is not None:
            self._init_graph(inputs, outputs)

    def __setattr__(self, name: str, value) -> None:
        # Keras's plain attributes (optimizer, history, stop_training, ...) never displace a
        # layer registered under the same name
        if not isinstance(value, (Tensor, _layers.Module)) and name in self.__dict__.get("_modules", {}):
            object.__setattr__(self, name, value)
            return
        Layer.__setattr__(self, name, value)
        if isinstance(value, _layers.Module):
            self.__dict__.get("_plans", {}).clear()

    # ---- the functional graph -----------------------------------------------------------
    def _init_graph(self, inputs, outputs) -> None:
        in_list, in_names = _flatten_tensors(inputs, "inputs")
        out_list, out_names = _flatten_tensors(outputs, "outputs")
        for t in in_list:
            layer = t._keras_history[0]
            if not isinstance(layer, InputLayer):
                raise ValueError(
                    f"Model: inputs must come from Input(...) (got a tensor made by layer '{layer.name}'); "
                    "a model's inputs are its InputLayers' outputs"
                )
        nodes = _topological_nodes(out_list, in_list)
        layers_in_order: list[Layer] = []
        seen: set[int] = set()
        for t in in_list:  # the inputs first, in the order given
            lay = t._keras_history[0]
            if id(lay) not in seen:
                seen.add(id(lay))
                layers_in_order.append(lay)
        for node in nodes:
            if id(node.layer) not in seen:
                seen.add(id(node.layer))
                layers_in_order.append(node.layer)
        names: dict[str, Layer] = {}
        for lay in layers_in_order:
            if lay is self:
                raise ValueError("Model: a model cannot contain itself")
            if lay.name in names:
                raise ValueError(
                    f'The name "{lay.name}" is used 2 times in the model. All layer names should be unique.'
                )
            names[lay.name] = lay
        for lay in layers_in_order:
            self._modules[lay.name] = lay
        graph = _Graph(in_list, in_names, out_list, out_names, nodes, layers_in_order)
        object.__setattr__(self, "_graph", graph)
        object.__setattr__(self, "built", all(lay.built for lay in layers_in_order))
        object.__setattr__(
            self,
            "_build_shape",
            _layers._plain_shape(in_list[0].shape if len(in_list) == 1 else [t.shape for t in in_list]),
        )

    @property
    def layers(self) -> list[Layer]:
        """The model's layers, in order (a functional model's include its InputLayers)."""
        if self._graph is not None:
            return list(self._graph.layers)
        return [m for m in self._modules.values() if isinstance(m, Layer)]

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """The layer called `name`, or the one at `index` of `layers`."""
        if index is not None and name is not None:
            raise ValueError("get_layer: give name or index, not both")
        layers = self.layers
        if index is not None:
            if not -len(layers) <= index < len(layers):
                raise ValueError(
                    f"get_layer: index {index} is out of range for a model of {len(layers)} layers"
                )
            return layers[index]
        for lay in layers:
            if lay.name == name:
                return lay
        raise ValueError(f"No such layer: {name}. Existing layers are: {[lay.name for lay in layers]}.")

    @property
    def inputs(self) -> list[KerasTensor]:
        """The symbolic inputs (functional models)."""
        if self._graph is None:
            raise AttributeError(f"model '{self.name}' has no symbolic inputs (it is not a functional model)")
        return list(self._graph.inputs)

    @property
    def outputs(self) -> list[KerasTensor]:
        """The symbolic outputs (functional models)."""
        if self._graph is None:
            raise AttributeError(
                f"model '{self.name}' has no symbolic outputs (it is not a functional model)"
            )
        return list(self._graph.outputs)

    @property
    def input(self):
        """The symbolic input (a list for several)."""
        ins = self.inputs
        return ins[0] if len(ins) == 1 else ins

    @property
    def output(self):
        """The symbolic output (a list for several)."""
        outs = self.outputs
        return outs[0] if len(outs) == 1 else outs

    @property
    def input_shape(self):
        """The input shape (batch dim None; a list for several inputs)."""
        if self._graph is not None:
            shapes = [t.shape for t in self._graph.inputs]
            return shapes[0] if len(shapes) == 1 else shapes
        return super().input_shape

    @property
    def output_shape(self):
        """The output shape (batch dim None; a list for several outputs)."""
        if self._graph is not None:
            shapes = [t.shape for t in self._graph.outputs]
            return shapes[0] if len(shapes) == 1 else shapes
        return super().output_shape

    def compute_output_shape(self, input_shape):
        if self._graph is not None:
            return self.output_shape
        return super().compute_output_shape(input_shape)

    def _expected_shapes(self) -> dict | None:
        out: dict[str, tuple[int, ...]] = {}
        for lay in self.layers:
            shapes = None if lay.built else lay._expected_shapes()
            if shapes is None:
                lay._build_now()  # built already, or a custom class (the caller named it)
                if not lay.built:
                    return None
                shapes = {k: tuple(v.shape) for k, v in lay.state_dict().items()}
            out.update({f"{lay.name}.{k}": tuple(s) for k, s in shapes.items()})
        return out

    def _build_now(self) -> None:
        for lay in self.layers:
            lay._build_now()
        object.__setattr__(self, "built", all(lay.built for lay in self.layers))
        self._plans.clear()

    # ---- calling ------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if args and not _layers._is_symbolic(args[0]):
            # arrays become float tensors on the model's device
            device = _device_of(self)
            if self._graph is not None:
                x = self._input_tensors(args[0], device)
                args = (x if len(x) > 1 else x[0], *args[1:])
            elif isinstance(args[0], (list, tuple)):
                args = ([_float_tensor(a, device) for a in args[0]], *args[1:])
            elif not isinstance(args[0], dict):
                args = (_float_tensor(args[0], device), *args[1:])
        return Layer.__call__(self, *args, **kwargs)

    def call(self, inputs, training=None, mask=None):
        """Runs the model on real tensors (functional and Sequential models; a subclass
        defines its own)."""
        if self._graph is None:
            raise NotImplementedError(
                f"{type(self).__name__} must define call(inputs) (or be built from inputs/outputs)"
            )
        xs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        outs, _ = self._run(xs, logits=False)
        return outs[0] if len(outs) == 1 else outs

    def _plan(self, logits: bool) -> _Plan:
        plan = self._plans.get(logits)
        if plan is None:
            plan = self._make_plan(logits)
            self._plans[logits] = plan
        return plan

    def _make_plan(self, logits: bool) -> _Plan:
        g = self._graph
        assert g is not None
        return _Plan.for_graph(g, logits)

    def _run(self, xs: list[Tensor], logits: bool) -> tuple[list[Tensor], str | None]:
        """The outputs for inputs `xs` (and the final activation they stop before, with
        `logits`: "softmax"/"sigmoid" when the model ends in one)."""
        if self._graph is None:
            out = self(xs[0] if len(xs) == 1 else xs)
            return (list(out) if isinstance(out, (list, tuple)) else [out]), None
        if not self.built:
            self._build_now()
        return self._plan(logits).run(xs)

    def _input_tensors(self, x, device: str) -> list[Tensor]:
        """`x` as the list of float tensors the model's inputs take."""
        n_in = len(self._graph.inputs) if self._graph is not None else 1
        if isinstance(x, dict):
            if self._graph is None:
                raise TypeError("a dict of inputs needs a functional model (it maps input names to arrays)")
            missing = [n for n in self._graph.input_names if n not in x]
            if missing:
                raise ValueError(
                    f"missing inputs {missing}; the model's inputs are {self._graph.input_names}"
                )
            return [_float_tensor(x[n], device) for n in self._graph.input_names]
        if isinstance(x, (list, tuple)) and n_in > 1:
            if len(x) != n_in:
                raise ValueError(f"the model has {n_in} inputs but got a list of {len(x)} arrays")
            return [_float_tensor(a, device) for a in x]
        if isinstance(x, (list, tuple)) and x and isinstance(x[0], (Tensor, np.ndarray)) and len(x) == 1:
            return [_float_tensor(x[0], device)]
        return [_float_tensor(x, device)]

    def build(self, input_shape=None) -> None:
        """Builds a subclassed model's weights by running it on zeros of `input_shape`."""
        if self._graph is not None or input_shape is None:
            return
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        xs = [_core.zeros([2 if d is None else int(d) for d in s], None) for s in shapes]
        with no_grad():
            self.call(xs[0] if len(xs) == 1 else xs)

    def _ensure_built(self, xs: list[Tensor]) -> None:
        if self.built:
            return
        if self._graph is not None:
            self._build_now()
            return
        # a subclassed model: its layers build on a first (inference) call
        was = [(m, m.training) for m in self.modules()]
        self.train(False)
        try:
            with no_grad():
                out = self.call(xs[0][:2] if len(xs) == 1 else [x[:2] for x in xs])
        finally:
            for m, mode in was:
                object.__setattr__(m, "training", mode)
        object.__setattr__(self, "built", True)
        object.__setattr__(
            self, "_build_shape", _layers._plain_shape(_layers._shape_of(xs[0] if len(xs) == 1 else xs))
        )
        outs = out if isinstance(out, (list, tuple)) else [out]
        object.__setattr__(self, "_subclass_out_shapes", [(None, *tuple(o.shape)[1:]) for o in outs])

    def _out_shapes(self) -> list[tuple]:
        if self._graph is not None:
            return [t.shape for t in self._graph.outputs]
        return list(self.__dict__.get("_subclass_out_shapes", []))

    # ---- compile ------------------------------------------------------------------------
    def compile(
        self,
        optimizer="rmsprop",
        loss=None,
        loss_weights=None,
        metrics=None,
        weighted_metrics=None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile="auto",
        auto_scale_loss: bool = True,
        **kwargs,
    ) -> None:
        """Sets the optimizer (a name, with Keras's defaults, or an instance), the loss (a
        name, a Loss, or a function of (y_true, y_pred)) and the metrics for `fit` and
        `evaluate`. `run_eagerly`, `jit_compile` and `steps_per_execution` change nothing
        here (ferrograd runs eagerly, each op one kernel)."""
        for k in ("sample_weight_mode", "target_tensors", "distribute", "experimental_steps_per_execution"):
            kwargs.pop(k, None)
        if kwargs:
            raise TypeError(f"compile: unexpected arguments {sorted(kwargs)}")
        opt = _optimizers.get(optimizer)
        loss_obj, loss_weight = None, 1.0
        if isinstance(loss, (list, tuple)):
            if len(loss) != 1:
                raise ValueError("compile: models with several outputs (one loss each) are not supported yet")
            loss = loss[0]
        if isinstance(loss, dict):
            if len(loss) != 1:
                raise ValueError("compile: models with several outputs (one loss each) are not supported yet")
            loss = next(iter(loss.values()))
        if loss is not None:
            loss_obj = _losses.get(loss)
        if loss_weights is not None:
            lw = loss_weights
            if isinstance(lw, dict):
                lw = list(lw.values())
            if isinstance(lw, (list, tuple)):
                if len(lw) != 1:
                    raise ValueError("compile: loss_weights for several outputs are not supported yet")
                lw = lw[0]
            loss_weight = float(lw)
        specs = _metric_list(metrics, "metrics")
        wspecs = _metric_list(weighted_metrics, "weighted_metrics")
        for m in specs + wspecs:  # unknown names fail here, not at fit
            if not (isinstance(m, str) and m.lower() in ("accuracy", "acc")):
                _metrics.get(m)
        object.__setattr__(self, "optimizer", opt)
        object.__setattr__(self, "loss", loss)
        object.__setattr__(
            self,
            "_compiled",
            {
                "loss": loss_obj,
                "loss_spec": loss,
                "loss_weight": loss_weight,
                "metric_specs": specs,
                "weighted_specs": wspecs,
                "metrics": None,  # resolved at the first fit/evaluate (needs the shapes)
                "weighted": None,
            },
        )

    @property
    def compiled(self) -> bool:
        """Whether `compile` was called."""
        return self._compiled is not None

    @property
    def metrics(self) -> list[_metrics.Metric]:
        """The compiled metrics (after the first fit/evaluate), weighted ones last."""
        c = self._compiled
        if c is None or c["metrics"] is None:
            return []
        return list(c["metrics"]) + list(c["weighted"])

    @property
    def metrics_names(self) -> list[str]:
        """ "loss" and the metrics' names, in the order `evaluate` returns them."""
        return ["loss", *[m.name for m in self.metrics]]

    def _require_compiled(self, what: str) -> dict:
        c = self._compiled
        if c is None:
            raise RuntimeError(f"You must call `compile()` before using the model ({what}).")
        if c["loss"] is None and what != "predict":
            raise ValueError(f"{what}: the model was compiled without a loss; pass loss= to compile")
        if self._graph is not None and len(self._graph.outputs) > 1:
            raise ValueError(f"{what}: models with several outputs are not supported by fit/evaluate yet")
        return c

    def _resolve_metrics(self, c: dict, y_shape: tuple) -> None:
        if c["metrics"] is not None:
            return
        out_shape = tuple(self._out_shapes()[0]) if self._out_shapes() else ()
        y_shape = (None, *tuple(y_shape)[1:])

        def make(spec):
            if isinstance(spec, str) and spec.lower() in ("accuracy", "acc"):
                return _metrics.accuracy_for(spec, c["loss"], y_shape, out_shape)
            return _metrics.get(spec)

        plain = [make(s) for s in c["metric_specs"]]
        weighted = [make(s) for s in c["weighted_specs"]]
        c["metrics"], c["weighted"] = plain, weighted
        for m in weighted:
            if m.name in [x.name for x in plain]:
                m.name = "weighted_" + m.name

    # ---- data ---------------------------------------------------------------------------
    def _targets(self, c: dict, y, device: str, n: int) -> Tensor:
        """`y` in the form the compiled loss takes (labels int64 on the host; floats on
        `device`)."""
        loss = c["loss"]
        arr = _np(_single_target(y))
        if arr.shape[0] != n:
            raise ValueError(
                f"Data cardinality is ambiguous: x sizes: {n}, y sizes: {arr.shape[0]}. "
                "Make sure all arrays contain the same number of samples."
            )
        out_shape = tuple(self._out_shapes()[0]) if self._out_shapes() else ()
        if isinstance(loss, _losses.SparseCategoricalCrossentropy):
            if arr.ndim == len(out_shape) and arr.ndim > 1 and arr.shape[-1] == 1:
                arr = arr.reshape(arr.shape[:-1])
            if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
                raise ValueError("fit: sparse_categorical_crossentropy labels contain NaN or inf")
            labels = arr.astype(np.int64)
            n_classes = out_shape[-1] if out_shape else None
            if labels.size and n_classes:
                valid = (labels >= 0) & (labels < n_classes)
                if loss.ignore_class is not None:
                    valid |= labels == int(loss.ignore_class)
                if not valid.all():
                    raise ValueError(
                        f"Received a label value of {labels[~valid].reshape(-1)[0]} which is outside the "
                        f"valid range of [0, {n_classes})"
                    )
            return _core.from_numpy(np.ascontiguousarray(labels))
        if isinstance(loss, _losses.CategoricalCrossentropy):
            arr = arr.astype(np.float32)
            if out_shape and arr.ndim == 1:
                raise ValueError(
                    f"categorical_crossentropy takes one-hot targets of shape (N, {out_shape[-1]}), got "
                    "labels of "
                    f"shape {arr.shape}: use keras.utils.to_categorical(y) or sparse_categorical_crossentropy"
                )
            if out_shape and arr.shape[1:] != tuple(out_shape[1:]):
                raise ValueError(
                    f"categorical_crossentropy: targets of shape {arr.shape} do not match the model's output "
                    f"{out_shape}"
                )
            # exact one-hot rows train through the fused labels kernel (the same value)
            if arr.ndim == 2 and self._labels_ok(c) and _is_one_hot(arr):
                return _core.from_numpy(np.ascontiguousarray(arr.argmax(axis=1).astype(np.int64)))
            return _float_tensor(arr, device)
        arr = arr.astype(np.float32)
        if out_shape and arr.ndim == len(out_shape) - 1 and out_shape[-1] == 1:
            arr = arr.reshape(*arr.shape, 1)
        return _float_tensor(arr, device)

    @staticmethod
    def _labels_ok(c: dict) -> bool:
        """Whether every metric reads labels as well as one-hot targets."""
        fine = (
            _metrics.CategoricalAccuracy,
            _metrics.SparseCategoricalAccuracy,
            _metrics.TopKCategoricalAccuracy,
        )
        for m in (c["metrics"] or []) + (c["weighted"] or []):
            if isinstance(m, fine):
                continue
            if isinstance(m, _metrics.LossMetric) and isinstance(m.loss, _losses.CategoricalCrossentropy):
                continue
            return False
        return True

    def _sample_weights(
        self, y_np: np.ndarray, class_weight, sample_weight, n: int, device: str
    ) -> Tensor | None:
        w = None
        if sample_weight is not None:
            w = np.asarray(_np(sample_weight), dtype=np.float32).reshape(-1)
            if w.shape[0] != n:
                raise ValueError(f"sample_weight has {w.shape[0]} entries for {n} samples")
        if class_weight is not None:
            if not isinstance(class_weight, dict):
                raise TypeError(
                    f"class_weight must be a dict of class: weight, got {type(class_weight).__name__}"
                )
            y = np.asarray(y_np)
            if y.ndim > 1 and y.shape[-1] > 1:
                cls = y.argmax(axis=-1)
            else:
                cls = np.round(y.reshape(y.shape[0], -1)[:, 0]).astype(np.int64)
            cw = np.ones(cls.shape[0], dtype=np.float32)
            for k, v in class_weight.items():
                cw[cls == int(k)] = float(v)
            w = cw if w is None else w * cw
        return None if w is None else _float_tensor(w, device)

    # ---- steps --------------------------------------------------------------------------
    def _loss_value(self, c: dict, y: Tensor, out: _metrics.ModelOutput, sw: Tensor | None) -> Tensor:
        loss: _losses.Loss = c["loss"]
        if loss._absorbs(out.final):
            if sw is None and loss.reduction == "sum_over_batch_size":
                value = loss._logits_values(y, out.logits, mean=True)
            else:
                value = loss.reduce(loss._logits_values(y, out.logits, mean=False), sw)
        else:
            value = loss.reduce(loss.call(y, out.value()), sw)
        return value if c["loss_weight"] == 1.0 else value * c["loss_weight"]

    def _extra_losses(self, layers: list[Layer]) -> Tensor | None:
        """The regularization penalties and `add_loss` terms of the last forward."""
        total = None
        for lay in layers:
            for term in lay._regularization_terms() + lay._losses:
                total = term if total is None else total + term
        return total

    def _clear_losses(self, layers: list[Layer]) -> None:
        for lay in layers:
            if lay._losses:
                lay._losses.clear()

    def _train_step(self, c: dict, xs: list[Tensor], y: Tensor, sw: Tensor | None, layers: list[Layer]):
        self._clear_losses(layers)
        outs, final = self._run(xs, logits=True)
        out = _metrics.ModelOutput(outs[0], final)
        total = self._loss_value(c, y, out, sw)
        extra = self._extra_losses(layers)
        if extra is not None:
            total = total + extra
        opt = self.optimizer
        for p in opt._vars:
            p.grad = None
        total.backward()
        opt._fit_step()
        for lay in layers:
            if lay._constrained:
                lay._apply_constraints()
        with no_grad():
            for m in c["metrics"]:
                m._update_output(y, out, None)
            for m in c["weighted"]:
                m._update_output(y, out, sw)
        return total.detach()

    def _test_step(self, c: dict, xs: list[Tensor], y: Tensor, sw: Tensor | None, layers: list[Layer]):
        self._clear_losses(layers)
        with no_grad():
            outs, final = self._run(xs, logits=True)
            out = _metrics.ModelOutput(outs[0], final)
            total = self._loss_value(c, y, out, sw)
            extra = self._extra_losses(layers)
            if extra is not None:
                total = total + extra
            for m in c["metrics"]:
                m._update_output(y, out, None)
            for m in c["weighted"]:
                m._update_output(y, out, sw)
        return total

    def _prepare(self, c: dict, x, y, device: str, what: str) -> tuple[list[Tensor], Tensor]:
        _reject_iterators(x, what)
        xs = self._input_tensors(x, device)
        n = xs[0].shape[0]
        for t in xs[1:]:
            if t.shape[0] != n:
                raise ValueError(
                    f"{what}: the inputs have different numbers of samples ({[t.shape[0] for t in xs]})"
                )
        self._ensure_built(xs)
        if self._graph is not None:
            for t, kt in zip(xs, self._graph.inputs):
                want = kt.shape[1:]
                if len(want) != t.ndim - 1 or any(
                    w is not None and w != d for w, d in zip(want, tuple(t.shape)[1:])
                ):
                    raise ValueError(
                        f'Input 0 of layer "{self.name}" is incompatible with the layer: expected '
                        "shape=(None, "
                        f"{', '.join(str(d) for d in want)}), found shape={tuple(t.shape)}"
                    )
        if y is None:
            raise ValueError(f"{what}: y is required (the targets)")
        y = _single_target(y)
        self._resolve_metrics(c, np.shape(_np(y)))  # before _targets, which asks the metrics
        yt = self._targets(c, y, device, n)
        return xs, yt

    def _reset_metrics(self, c: dict) -> None:
        for m in c["metrics"] + c["weighted"]:
            m.reset_state()

    def _logs(self, c: dict, loss_sum, seen: int) -> dict:
        logs = {"loss": float(loss_sum.item() if isinstance(loss_sum, Tensor) else loss_sum) / max(seen, 1)}
        for m in c["metrics"] + c["weighted"]:
            logs[m.name] = float(m.result().item())
        return logs

    # ---- fit ----------------------------------------------------------------------------
    def fit(
        self,
        x=None,
        y=None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose="auto",
        callbacks=None,
        validation_split: float = 0.0,
        validation_data=None,
        shuffle=True,
        class_weight=None,
        sample_weight=None,
        initial_epoch: int = 0,
        steps_per_epoch=None,
        validation_steps=None,
        validation_batch_size=None,
        validation_freq=1,
        **kwargs,
    ) -> _callbacks.History:
        """Trains the model for `epochs` epochs on (x, y) and returns a `History` (its
        `.history` maps "loss", the metrics and their "val_" forms to per-epoch lists).

        As Keras's: `validation_split` holds out the last fraction of the samples (before
        shuffling); `validation_data=(x_val, y_val[, sample_weight])` gives the set;
        `class_weight` ({class: weight}) and `sample_weight` weigh the loss; `shuffle`
        reshuffles each epoch (with ferrograd's generator: `fg.manual_seed` repeats a run);
        `verbose` 0 silent, 1 progress bar, 2 one line per epoch. Ctrl-C stops after the
        current batch, keeping the weights."""
        if "nb_epoch" in kwargs:  # Keras 1's name
            epochs = kwargs.pop("nb_epoch")
        if kwargs:
            raise TypeError(f"fit: unexpected arguments {sorted(kwargs)}")
        if steps_per_epoch is not None or validation_steps is not None:
            raise ValueError(
                "fit: steps_per_epoch/validation_steps go with generators, which are not supported"
            )
        c = self._require_compiled("fit")
        batch_size = 32 if batch_size is None else batch_size
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"fit: batch_size must be a positive integer, got {batch_size!r}")
        if not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"fit: epochs must be an integer >= 0, got {epochs!r}")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
        verbose = 1 if verbose == "auto" else int(verbose)
        device = _device_of(self)
        xs, yt = self._prepare(c, x, y, device, "fit")
        n = xs[0].shape[0]
        y_np = _np(_single_target(y))
        sw = self._sample_weights(y_np, class_weight, sample_weight, n, device)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (list, tuple)) or len(validation_data) not in (2, 3):
                raise ValueError(
                    "fit: validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight)"
                )
            vx, vy = self._prepare(c, validation_data[0], validation_data[1], device, "fit (validation_data)")
            vsw = None
            if len(validation_data) == 3 and validation_data[2] is not None:
                vsw = self._sample_weights(
                    _np(validation_data[1]), None, validation_data[2], vx[0].shape[0], device
                )
            val = (vx, vy, vsw)
        elif validation_split > 0.0:
            split = int(math.floor(n * (1.0 - validation_split)))
            if split == 0 or split == n:
                raise ValueError(
                    f"fit: validation_split={validation_split} leaves no training or no validation samples"
                )
            val = ([t[split:] for t in xs], yt[split:], None if sw is None else sw[split:])
            xs, yt, sw = [t[:split] for t in xs], yt[:split], None if sw is None else sw[:split]
            n = split
        opt: _optimizers.Optimizer = self.optimizer
        opt._bind(list(self.parameters()))
        layers = [m for m in self.modules() if isinstance(m, Layer)]
        history = _callbacks.History()
        cbs = _callbacks.CallbackList(
            [*(callbacks or []), history],
            self,
            {"verbose": verbose, "epochs": epochs, "steps": math.ceil(n / batch_size)},
        )
        out = sys.stdout
        if verbose:
            extra = f", validate on {val[0][0].shape[0]} samples" if val is not None else ""
            out.write(f"Train on {n} samples{extra}\n")
        object.__setattr__(self, "stop_training", False)
        has_bn = any(isinstance(m, _layers.BatchNormalization) for m in layers)
        was_training = self.training
        logs: dict = {}
        cbs.call("on_train_begin", {})
        with _Interrupt() as interrupt:
            try:
                for epoch in range(initial_epoch, epochs):
                    if verbose:
                        out.write(f"Epoch {epoch + 1}/{epochs}\n")
                        out.flush()
                    cbs.call("on_epoch_begin", epoch, {})
                    self.train(True)
                    self._reset_metrics(c)
                    bar = ProgressBar(n, out) if verbose == 1 else None
                    order = _core.randperm(n) if shuffle else None
                    seen, loss_sum = 0, None
                    for b, idx in enumerate(_batches(n, batch_size, order, has_bn)):
                        cbs.call("on_train_batch_begin", b, {})
                        xb = [t[idx] for t in xs]
                        yb = yt[idx]
                        swb = None if sw is None else sw[idx]
                        loss = self._train_step(c, xb, yb, swb, layers)
                        k = xb[0].shape[0]
                        seen += k
                        with no_grad():
                            loss_sum = loss * float(k) if loss_sum is None else loss_sum + loss * float(k)
                        if cbs.batch_hooks or (bar is not None and bar.due()):
                            blogs = self._logs(c, loss_sum, seen)
                            if bar is not None:
                                bar.update(seen, blogs)
                            cbs.call("on_train_batch_end", b, blogs)
                        if interrupt.hit or self.stop_training:
                            break
                    logs = self._logs(c, loss_sum, seen) if seen else {"loss": float("nan")}
                    if (
                        val is not None
                        and not interrupt.hit
                        and (epoch + 1) % _freq(validation_freq, epoch) == 0
                    ):
                        vlogs = self._evaluate_arrays(
                            c, *val, max(validation_batch_size or batch_size, 256), layers
                        )
                        logs.update({"val_" + k: v for k, v in vlogs.items()})
                        self.train(True)
                    if bar is not None:
                        bar.finish(seen, logs)
                    elif verbose == 2:
                        out.write(f"{seen}/{n} - {ProgressBar.fmt_logs(logs)[3:]}\n")
                    if interrupt.hit:
                        history.interrupted = True
                        history.on_epoch_end(epoch, logs)
                        if verbose:
                            out.write(
                                "Interrupted: stopped after the current batch; the model keeps its weights.\n"
                            )
                        break
                    cbs.call("on_epoch_end", epoch, logs)
                    if self.stop_training:
                        break
            finally:
                self.train(was_training)
        cbs.call("on_train_end", logs)
        object.__setattr__(self, "history", history)
        return history

    def _evaluate_arrays(self, c, xs, yt, sw, batch_size, layers, cbs=None) -> dict:
        was = self.training
        self.train(False)
        self._reset_metrics(c)
        n = xs[0].shape[0]
        loss_sum: Any = 0.0
        try:
            for b, sl in enumerate(_batches(n, batch_size, None, False)):
                if cbs is not None:
                    cbs.call("on_test_batch_begin", b, {})
                k = min(sl.stop, n) - sl.start
                loss = self._test_step(c, [t[sl] for t in xs], yt[sl], None if sw is None else sw[sl], layers)
                loss_sum = loss_sum + loss * float(k)
                if cbs is not None and cbs.batch_hooks:
                    cbs.call("on_test_batch_end", b, self._logs(c, loss_sum, min(sl.stop, n)))
        finally:
            self.train(was)
        return self._logs(c, loss_sum, n)

    # ---- evaluate / predict -------------------------------------------------------------
    def evaluate(
        self,
        x=None,
        y=None,
        batch_size: int | None = None,
        verbose="auto",
        sample_weight=None,
        steps=None,
        callbacks=None,
        return_dict: bool = False,
        **kwargs,
    ):
        """The loss (regularization included, as Keras reports it) and the metrics on (x, y),
        in inference mode: a scalar when there are no metrics, else `[loss, metric, ...]`
        (`model.metrics_names` order), or a dict with `return_dict=True`."""
        if kwargs:
            raise TypeError(f"evaluate: unexpected arguments {sorted(kwargs)}")
        if steps is not None:
            raise ValueError("evaluate: steps goes with generators, which are not supported")
        c = self._require_compiled("evaluate")
        batch_size = 32 if batch_size is None else int(batch_size)
        if batch_size < 1:
            raise ValueError(f"evaluate: batch_size must be a positive integer, got {batch_size}")
        verbose = 1 if verbose == "auto" else int(verbose)
        device = _device_of(self)
        xs, yt = self._prepare(c, x, y, device, "evaluate")
        sw = self._sample_weights(_np(_single_target(y)), None, sample_weight, xs[0].shape[0], device)
        layers = [m for m in self.modules() if isinstance(m, Layer)]
        cbs = _callbacks.CallbackList(callbacks, self, {"verbose": verbose, "steps": None})
        cbs.call("on_test_begin", {})
        start = time.perf_counter()
        logs = self._evaluate_arrays(c, xs, yt, sw, batch_size, layers, cbs)
        cbs.call("on_test_end", logs)
        if verbose:
            n = xs[0].shape[0]
            bar = ProgressBar(n, sys.stdout)
            bar.start = start
            bar.finish(n, logs)
        if return_dict:
            return logs
        values = [logs[k] for k in ["loss", *[m.name for m in self.metrics]]]
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size: int | None = None, verbose="auto", steps=None, callbacks=None, **kwargs):
        """The model's outputs for `x` (inference mode) as a NumPy array (a list for several
        outputs)."""
        if kwargs:
            raise TypeError(f"predict: unexpected arguments {sorted(kwargs)}")
        if steps is not None:
            raise ValueError("predict: steps goes with generators, which are not supported")
        _reject_iterators(x, "predict")
        batch_size = 32 if batch_size is None else int(batch_size)
        if batch_size < 1:
            raise ValueError(f"predict: batch_size must be a positive integer, got {batch_size}")
        xs = self._input_tensors(x, _device_of(self))
        self._ensure_built(xs)
        n = xs[0].shape[0]
        cbs = _callbacks.CallbackList(callbacks, self, {"verbose": 0, "steps": None})
        cbs.call("on_predict_begin", {})
        was = self.training
        self.train(False)
        parts: list[list[np.ndarray]] = []
        try:
            with no_grad():
                for b, sl in enumerate(_batches(n, max(batch_size, 1), None, False)):
                    cbs.call("on_predict_batch_begin", b, {})
                    outs, _ = self._run([t[sl] for t in xs], logits=False)
                    parts.append([o.numpy() for o in outs])
                    cbs.call("on_predict_batch_end", b, {})
        finally:
            self.train(was)
        cbs.call("on_predict_end", {})
        if not parts:
            shapes = self._out_shapes() or [(None,)]
            res = [np.zeros((0, *[d or 0 for d in s[1:]]), dtype=np.float32) for s in shapes]
        else:
            res = [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]
        return res[0] if len(res) == 1 else res

    def predict_on_batch(self, x):
        """`predict` on one batch."""
        return self.predict(x, batch_size=max(_n_rows(x, self), 1), verbose=0)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict: bool = False):
        """One optimizer step on the batch (x, y); returns the loss and metrics of that batch
        (a scalar without metrics, a list, or a dict with `return_dict`)."""
        c = self._require_compiled("train_on_batch")
        device = _device_of(self)
        xs, yt = self._prepare(c, x, y, device, "train_on_batch")
        sw = self._sample_weights(_np(_single_target(y)), class_weight, sample_weight, xs[0].shape[0], device)
        self.optimizer._bind(list(self.parameters()))
        layers = [m for m in self.modules() if isinstance(m, Layer)]
        self._reset_metrics(c)
        was = self.training
        self.train(True)
        try:
            loss = self._train_step(c, xs, yt, sw, layers)
        finally:
            self.train(was)
        logs = self._logs(c, loss, 1)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict: bool = False):
        """The loss and metrics on one batch, in inference mode."""
        c = self._require_compiled("test_on_batch")
        device = _device_of(self)
        xs, yt = self._prepare(c, x, y, device, "test_on_batch")
        sw = self._sample_weights(_np(_single_target(y)), None, sample_weight, xs[0].shape[0], device)
        layers = [m for m in self.modules() if isinstance(m, Layer)]
        logs = self._evaluate_arrays(c, xs, yt, sw, max(xs[0].shape[0], 1), layers)
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def reset_metrics(self) -> None:
        """Resets the compiled metrics' state."""
        if self._compiled is not None and self._compiled["metrics"] is not None:
            self._reset_metrics(self._compiled)

    # ---- summary ------------------------------------------------------------------------
    def summary(  # type: ignore[override]
        self,
        line_length: int | None = None,
        positions=None,
        print_fn=None,
        expand_nested: bool = False,
        show_trainable: bool = False,
        layer_range=None,
    ) -> None:
        """Prints Keras's table of layers: "Layer (type)", "Output Shape", "Param #" (and
        "Connected to" for a functional model that is not a chain), then the total,
        trainable and non-trainable parameter counts."""
        if not self.built:
            raise ValueError(
                "This model has not yet been built. Build the model first by calling `build()` or by calling "
                "the model on a batch of data."
            )
        print_fn = print_fn or print
        for line in _summary_lines(self, line_length, positions):
            print_fn(line)

    # ---- saving -------------------------------------------------------------------------
    def get_config(self) -> dict:
        """The architecture as Keras's config (functional models; Sequential has its own)."""
        if self._graph is None:
            raise NotImplementedError(
                f"{type(self).__name__} is a subclassed model: define get_config() to save its "
                "architecture, or "
                "save its weights (save_weights) and rebuild it in code"
            )
        return _functional_config(self)

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Model:
        """Rebuilds a functional model from `get_config()` (ferrograd.keras's layers, and
        those in `custom_objects`)."""
        with _scope.custom_object_scope(custom_objects):
            return _functional_from_config(config)

    def to_json(self, **kwargs) -> str:
        """The architecture as a JSON string (`models.model_from_json` reads it)."""
        return json.dumps({"class_name": _class_name(self), "config": self.get_config()}, **kwargs)

    def save(self, filepath, overwrite: bool = True, include_optimizer: bool = True, **kwargs) -> None:
        """Saves the architecture, weights, compile settings and (by default) the optimizer
        state to one safetensors file; `models.load_model(filepath)` restores it."""
        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(f"save: {filepath} exists and overwrite=False")
        save_model(self, filepath, include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite: bool = True, **kwargs) -> None:
        """Saves the weights (by their state-dict names) to a safetensors file."""
        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(f"save_weights: {filepath} exists and overwrite=False")
        self._require_built("save_weights")
        _io.save(dict(self.state_dict()), filepath)

    def load_weights(self, filepath, skip_mismatch: bool = False, **kwargs) -> None:
        """Loads weights saved by `save_weights` or `save` (names and shapes must match)."""
        self._require_built("load_weights")
        arrays, meta = _io.read_safetensors(filepath)
        if meta.get("format") != _io.FORMAT:
            raise _io.CheckpointError(f"load_weights: {filepath} was not written by ferrograd")
        if "tree" in meta:
            state = _io.load(filepath)
            if not isinstance(state, dict):
                raise _io.CheckpointError(f"load_weights: {filepath} does not hold a dict of weights")
        else:
            state = {
                k: _core.from_numpy(np.require(v, requirements="C"))
                for k, v in arrays.items()
                if not k.startswith("optimizer.")
            }
        self.load_state_dict(state, strict=not skip_mismatch)

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise ValueError(
                f"{what}: model '{self.name}' has not been built yet; call it on data, fit it, or give it "
                "an input shape"
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


class Functional(Model):
    """A model built from symbolic inputs and outputs (what `Model(inputs, outputs)` makes)."""


def _freq(validation_freq, epoch: int) -> int:
    if isinstance(validation_freq, int) and validation_freq >= 1:
        return validation_freq
    if isinstance(validation_freq, (list, tuple)):
        return 1 if (epoch + 1) in validation_freq else 10**9
    raise ValueError(
        f"fit: validation_freq must be a positive int or a list of epochs, got {validation_freq!r}"
    )


def _batches(n: int, batch_size: int, order: Tensor | None, drop_single: bool):
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        if drop_single and stop - start == 1 and start > 0:
            return  # a batch of one cannot be batch-normalized in training
        yield slice(start, stop) if order is None else order[start:stop]


def _single_target(y):
    """The targets of a single-output model given as an array, a list of one, or a dict of one."""
    if isinstance(y, dict):
        if len(y) != 1:
            raise ValueError("several targets (a dict of outputs) are not supported yet")
        y = next(iter(y.values()))
    if isinstance(y, (list, tuple)) and len(y) == 1 and not np.isscalar(y[0]):
        y = y[0]
    return y


def _n_rows(x, model) -> int:
    if isinstance(x, dict):
        x = next(iter(x.values()))
    if isinstance(x, (list, tuple)) and model._graph is not None and len(model._graph.inputs) > 1:
        x = x[0]
    return int(np.shape(_np(x))[0]) if not isinstance(x, Tensor) else x.shape[0]


def _is_one_hot(arr: np.ndarray) -> bool:
    if arr.size == 0:
        return False
    return bool(np.all((arr == 0.0) | (arr == 1.0)) and np.all(arr.sum(axis=1) == 1.0))


def _metric_list(metrics, what: str) -> list:
    if metrics is None:
        return []
    if isinstance(metrics, dict):
        if len(metrics) != 1:
            raise ValueError(f"compile: {what} for several outputs are not supported yet")
        metrics = next(iter(metrics.values()))
    if (
        isinstance(metrics, (str, _metrics.Metric))
        or callable(metrics)
        and not isinstance(metrics, (list, tuple))
    ):
        return [metrics]
    out = list(metrics)
    if len(out) == 1 and isinstance(out[0], (list, tuple)):
        out = list(out[0])
    return out


# ---------------------------------------------------------------------------- graphs and plans


def _flatten_tensors(x, what: str) -> tuple[list[KerasTensor], list[str]]:
    if isinstance(x, KerasTensor):
        return [x], [x._keras_history[0].name]
    if isinstance(x, dict):
        items = list(x.items())
        tensors = [t for _, t in items]
        names = [str(k) for k, _ in items]
    elif isinstance(x, (list, tuple)):
        tensors = list(x)
        names = [t._keras_history[0].name if isinstance(t, KerasTensor) else "" for t in tensors]
    else:
        raise TypeError(
            f"Model: {what} must be symbolic tensors (from Input and layer calls), got {type(x).__name__}"
        )
    if not tensors or not all(isinstance(t, KerasTensor) for t in tensors):
        raise TypeError(
            f"Model: {what} must be symbolic tensors (from keras.Input and layer calls); real tensors or "
            "arrays "
            "go to model(x) or model.predict(x)"
        )
    return tensors, names


def _topological_nodes(outputs: list[KerasTensor], inputs: list[KerasTensor]) -> list[Node]:
    """The nodes between `inputs` and `outputs`, each after the nodes it needs."""
    input_ids = {id(t) for t in inputs}
    order: list[Node] = []
    done: set[int] = set()
    visiting: set[int] = set()

    def node_of(t: KerasTensor) -> Node:
        layer, idx, _ = t._keras_history
        return layer._inbound_nodes[idx]

    def visit(t: KerasTensor) -> None:
        if id(t) in input_ids:
            return
        node = node_of(t)
        if id(node) in done:
            return
        if isinstance(node.layer, InputLayer):
            raise ValueError(
                f"Graph disconnected: cannot obtain value for tensor {t} at layer '{node.layer.name}': it "
                "is an "
                "Input that is not among the model's inputs"
            )
        if id(node) in visiting:
            raise ValueError("Model: the layer graph has a cycle")
        visiting.add(id(node))
        for parent in node.inputs:
            visit(parent)
        visiting.discard(id(node))
        done.add(id(node))
        order.append(node)

    for t in outputs:
        visit(t)
    return order


class _Graph:
    """A functional model's graph: inputs, outputs, nodes in execution order, layers."""

    def __init__(self, inputs, input_names, outputs, output_names, nodes, layers):
        self.inputs: list[KerasTensor] = inputs
        self.input_names: list[str] = input_names
        self.outputs: list[KerasTensor] = outputs
        self.output_names: list[str] = output_names
        self.nodes: list[Node] = nodes
        self.layers: list[Layer] = layers


class _Plan:
    """A compiled forward pass: steps (fn, input keys, output key), fusing a layer with the
    activation layer after it where the engine has one kernel for both, and stopping before
    a final softmax/sigmoid when asked for logits."""

    def __init__(self, steps, input_keys, output_keys, final):
        self.steps = steps
        self.input_keys = input_keys
        self.output_keys = output_keys
        self.final = final

    def run(self, xs: list[Tensor]) -> tuple[list[Tensor], str | None]:
        """The outputs for inputs `xs`, and the final activation they stop before (or None)."""
        if len(xs) != len(self.input_keys):
            raise ValueError(f"the model takes {len(self.input_keys)} inputs, got {len(xs)}")
        values: dict[int, Any] = dict(zip(self.input_keys, xs))
        for fn, keys, single, out_keys in self.steps:
            args = values[keys[0]] if single else [values[k] for k in keys]
            y = fn(args)
            if len(out_keys) == 1:
                values[out_keys[0]] = y
            else:
                for k, v in zip(out_keys, y):
                    values[k] = v
        return [values[k] for k in self.output_keys], self.final

    @staticmethod
    def for_graph(g: _Graph, logits: bool) -> _Plan:
        """The plan for graph `g` (stopping before a final softmax/sigmoid with `logits`)."""
        consumers: dict[int, list[Node]] = {}
        for node in g.nodes:
            for t in node.inputs:
                consumers.setdefault(id(t), []).append(node)
        output_ids = {id(t) for t in g.outputs}
        final = None
        final_node = None
        if logits and len(g.outputs) == 1:
            t = g.outputs[0]
            layer, idx, _ = t._keras_history
            node = layer._inbound_nodes[idx]
            name = layer._final_activation()
            if name is not None and not consumers.get(id(t)) and not node.call_kwargs and node in g.nodes:
                final, final_node = name, node
        steps = []
        skip: set[int] = set()
        for node in g.nodes:
            if id(node) in skip:
                continue
            lay = node.layer
            out_keys = [id(t) for t in node.outputs]
            in_keys = [id(t) for t in node.inputs]
            if node is final_node:
                steps.append((_logits_fn(lay), in_keys, node.single_input, out_keys))
                continue
            # fuse with the one consumer of this node's output when it is an activation
            if len(node.outputs) == 1 and not node.call_kwargs and node.single_input:
                users = consumers.get(out_keys[0], [])
                if len(users) == 1 and out_keys[0] not in output_ids:
                    nxt = users[0]
                    if (
                        nxt.single_input
                        and not nxt.call_kwargs
                        and nxt is not final_node
                        and not (id(nxt.outputs[0]) in output_ids and nxt.layer._final_activation())
                    ):
                        fused = lay._fused_with(nxt.layer)
                        if fused is not None:
                            steps.append((fused, in_keys, True, [id(t) for t in nxt.outputs]))
                            skip.add(id(nxt))
                            continue
            steps.append((_call_fn(lay, node.call_kwargs), in_keys, node.single_input, out_keys))
        return _Plan(steps, [id(t) for t in g.inputs], [id(t) for t in g.outputs], final)


def _call_fn(layer: Layer, kwargs: dict):
    if kwargs or isinstance(layer, Model):
        return lambda x: layer(x, **kwargs)
    return lambda x: layer._call_checked(x, {})


def _logits_fn(layer: Layer):
    return lambda x: layer._call_logits(x)


# ---------------------------------------------------------------------------- Sequential


class Sequential(Model):
    """A linear stack of layers: `Sequential([Dense(64, activation="relu",
    input_shape=(784,)), Dense(10, activation="softmax")])`, or `Sequential()` then
    `add(layer)` for each. The input shape comes from `Input(shape=...)` / `InputLayer`
    added first, from the first layer's `input_shape=`/`input_dim=`, or from the first
    data it sees."""

    _stack: list[Layer]
    _input_layer: InputLayer | None

    def __init__(self, layers=None, name: str | None = None, trainable: bool = True, **kwargs):
        Model.__init__(self, name=name or unique_name("sequential"), trainable=trainable, **kwargs)
        object.__setattr__(self, "_stack", [])
        object.__setattr__(self, "_input_layer", None)
        if layers is not None:
            if isinstance(layers, (Layer, KerasTensor)):
                layers = [layers]
            for lay in layers:
                self.add(lay, rebuild=False)
            self._rebuild()

    @property
    def layers(self) -> list[Layer]:
        """The layers, in order (without the InputLayer, as Keras 3)."""
        return list(self._stack)

    def add(self, layer, rebuild: bool = True) -> None:
        """Appends `layer` (an `Input(...)` or `InputLayer` only first)."""
        if isinstance(layer, KerasTensor):
            src = layer._keras_history[0]
            if not isinstance(src, InputLayer):
                raise ValueError("Sequential.add: only an Input(...) tensor or a Layer can be added")
            layer = src
        if not isinstance(layer, Layer):
            raise ValueError(
                f"Only instances of `keras.Layer` can be added to a Sequential model. Received: {layer!r}"
            )
        if isinstance(layer, InputLayer):
            if self._stack or self._input_layer is not None:
                raise ValueError("Sequential.add: an InputLayer can only be the first layer")
            object.__setattr__(self, "_input_layer", layer)
        else:
            if layer is self:
                raise ValueError("Sequential.add: a model cannot contain itself")
            if any(lay.name == layer.name for lay in self._stack):
                raise ValueError(
                    f'All layers added to a Sequential model should have unique names. Name "{layer.name}" '
                    "is already "
                    "the name of a layer in this model. Update the `name` argument to pass a unique name."
                )
            self._stack.append(layer)
            self._modules[layer.name] = layer
            g = self._graph
            if rebuild and g is not None:
                # connect the new layer to the current output (earlier layers keep their nodes)
                y = layer(g.outputs[0])
                outs = [y] if isinstance(y, KerasTensor) else list(y)
                g.nodes.append(layer._inbound_nodes[-1])
                g.outputs, g.layers = outs, [*g.layers, layer]
                self._plans.clear()
                object.__setattr__(self, "built", all(lay.built for lay in self._stack))
                return
        if rebuild:
            self._rebuild()

    def pop(self, rebuild: bool = True) -> Layer:
        """Removes and returns the last layer."""
        if not self._stack:
            raise TypeError("There are no layers in the model.")
        layer = self._stack.pop()
        del self._modules[layer.name]
        if rebuild:
            self._rebuild()
        return layer

    def _input_batch_shape(self):
        if self._input_layer is not None:
            return self._input_layer._batch_input_shape
        if self._stack and self._stack[0]._batch_input_shape is not None:
            return self._stack[0]._batch_input_shape
        return None

    def _rebuild(self) -> None:
        """With a known input shape, connects the layers symbolically (so `model.input`,
        `layer.output` and summaries work, as Keras's Sequential)."""
        self._plans.clear()
        object.__setattr__(self, "_graph", None)
        object.__setattr__(self, "built", False)
        shape = self._input_batch_shape()
        if shape is None or not self._stack:
            return
        if self._input_layer is None:
            object.__setattr__(
                self, "_input_layer", InputLayer(batch_shape=shape, name=unique_name("input_layer"))
            )
        in_layer = self._input_layer
        assert in_layer is not None
        x = in_layer._inbound_nodes[0].outputs[0]
        inputs = x
        for lay in self._stack:
            x = lay(x)
        g = _Graph(
            [inputs],
            [in_layer.name],
            [x] if isinstance(x, KerasTensor) else list(x),
            [""],
            _topological_nodes([x] if isinstance(x, KerasTensor) else list(x), [inputs]),
            [self._input_layer, *self._stack],
        )
        object.__setattr__(self, "_graph", g)
        object.__setattr__(self, "_build_shape", _layers._plain_shape(shape))
        object.__setattr__(self, "built", all(lay.built for lay in self._stack))

    def build(self, input_shape=None) -> None:
        """Builds the weights for inputs of `input_shape` (batch dim first)."""
        if self._graph is not None:
            self._build_now()
            return
        if input_shape is None:
            raise ValueError("You must provide an `input_shape` argument.")
        shape = tuple(input_shape)
        object.__setattr__(
            self, "_input_layer", InputLayer(batch_shape=shape, name=unique_name("input_layer"))
        )
        self._rebuild()

    def _ensure_built(self, xs: list[Tensor]) -> None:
        if self._graph is None:
            if not self._stack:
                raise ValueError("Sequential model has no layers")
            self.build((None, *tuple(xs[0].shape)[1:]))
        elif not self.built:
            self._build_now()

    def __call__(self, *args, **kwargs):
        if args and not _layers._is_symbolic(args[0]) and self._graph is None and self._stack:
            x = args[0]
            shape = _layers._shape_of(_layers._convert(x))
            self.build(shape if not isinstance(shape, list) else shape[0])
        return Model.__call__(self, *args, **kwargs)

    def predict_classes(self, x, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        """Keras 2's class predictions: the argmax of the outputs (a 0/1 column for a single
        sigmoid unit)."""
        p = self.predict(x, batch_size=batch_size, verbose=verbose)
        return (p > 0.5).astype(np.int32) if p.shape[-1] == 1 else p.argmax(axis=-1)

    def predict_proba(self, x, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
        """Keras 2's name for `predict` on a model whose outputs are probabilities."""
        return self.predict(x, batch_size=batch_size, verbose=verbose)

    def compute_output_shape(self, input_shape):
        shape = input_shape
        for lay in self._stack:
            shape = lay.compute_output_shape(shape)
        return shape

    @property
    def inputs(self) -> list[KerasTensor]:
        """The symbolic input (once the input shape is known)."""
        if self._graph is None:
            raise AttributeError(f"Sequential model '{self.name}' has not been built yet, so it has no input")
        return list(self._graph.inputs)

    def get_config(self) -> dict:
        layers = []
        shape = self._input_batch_shape()
        if shape is not None:
            name = self._input_layer.name if self._input_layer is not None else unique_name("input_layer")
            layers.append({"class_name": "InputLayer", "config": {"batch_shape": list(shape), "name": name}})
        layers += [{"class_name": _class_name(lay), "config": lay.get_config()} for lay in self._stack]
        return {"name": self.name, "trainable": self.trainable, "layers": layers}

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Sequential:
        with _scope.custom_object_scope(custom_objects):
            cfg = dict(config)
            layer_cfgs = cfg.pop("layers", None)
            if not isinstance(layer_cfgs, list):
                raise ValueError("Sequential config: 'layers' must be a list")
            model = cls(name=cfg.get("name"), trainable=cfg.get("trainable", True))
            for lc in layer_cfgs:
                model.add(_layers.deserialize(lc), rebuild=False)
            model._rebuild()
            return model


# ---------------------------------------------------------------------------- configs


def _class_name(layer: Layer) -> str:
    if type(layer) is Functional:
        return "Functional"
    return type(layer).__name__


def _functional_config(model: Model) -> dict:
    g = model._graph
    assert g is not None
    own_nodes = {id(n) for n in g.nodes}
    for t in g.inputs:
        lay, idx, _ = t._keras_history
        own_nodes.add(id(lay._inbound_nodes[idx]))

    def node_index(layer: Layer, idx: int) -> int:
        # a layer's node index counts only the nodes that belong to this model
        mine = [n for n in layer._inbound_nodes if id(n) in own_nodes]
        return mine.index(layer._inbound_nodes[idx])

    layers = []
    for lay in g.layers:
        inbound = []
        for node in lay._inbound_nodes:
            if id(node) not in own_nodes or isinstance(lay, InputLayer):
                continue
            entries = []
            for t in node.inputs:
                src, idx, ti = t._keras_history
                entries.append(
                    [src.name, node_index(src, idx), ti, _scope.plain(node.call_kwargs, "call arguments")]
                )
            inbound.append({"args": entries, "single": node.single_input})
        layers.append(
            {
                "class_name": _class_name(lay),
                "config": lay.get_config(),
                "name": lay.name,
                "inbound_nodes": inbound,
            }
        )

    def refs(ts: list[KerasTensor]) -> list:
        out = []
        for t in ts:
            src, idx, ti = t._keras_history
            out.append([src.name, node_index(src, idx), ti])
        return out

    return {
        "name": model.name,
        "trainable": model.trainable,
        "layers": layers,
        "input_layers": refs(g.inputs),
        "output_layers": refs(g.outputs),
    }


def _functional_from_config(config: dict) -> Model:
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ValueError("Functional config: 'layers' must be a list")
    created: dict[str, Layer] = {}
    pending: list[tuple[Layer, list]] = []
    for entry in config["layers"]:
        if not isinstance(entry, dict):
            raise ValueError(f"Functional config: a layer entry is not a dict: {entry!r:.80}")
        layer = _layers.deserialize(
            {"class_name": entry.get("class_name"), "config": entry.get("config", {})}
        )
        if layer.name in created:
            raise ValueError(f"Functional config: layer name {layer.name!r} repeats")
        created[layer.name] = layer
        nodes = entry.get("inbound_nodes", [])
        if not isinstance(nodes, list):
            raise ValueError(f"Functional config: inbound_nodes of {layer.name!r} is not a list")
        pending.append((layer, list(nodes)))
    # each layer's own node list, as this model numbers them
    made: dict[str, list[Any]] = {n: [] for n in created}
    for name, lay in created.items():
        if isinstance(lay, InputLayer):
            made[name].append(lay._inbound_nodes[0].outputs)

    def tensor(ref) -> KerasTensor:
        if not (isinstance(ref, list) and len(ref) >= 3 and isinstance(ref[0], str)):
            raise ValueError(f"Functional config: malformed tensor reference {ref!r:.80}")
        name, ni, ti = ref[0], ref[1], ref[2]
        if name not in made or not isinstance(ni, int) or not isinstance(ti, int):
            raise KeyError(name)
        if ni >= len(made[name]):
            raise KeyError(name)
        outs = made[name][ni]
        if not 0 <= ti < len(outs):
            raise ValueError(f"Functional config: layer {name!r} has no output {ti}")
        return outs[ti]

    progress = True
    while progress and any(nodes for _, nodes in pending):
        progress = False
        for layer, nodes in pending:
            while nodes:
                node = nodes[0]
                if not isinstance(node, dict) or not isinstance(node.get("args"), list) or not node["args"]:
                    raise ValueError(f"Functional config: malformed node of layer {layer.name!r}")
                try:
                    ins = [tensor(a) for a in node["args"]]
                except KeyError:
                    break  # its inputs come from a node not made yet
                kwargs = (
                    node["args"][0][3]
                    if len(node["args"][0]) > 3 and isinstance(node["args"][0][3], dict)
                    else {}
                )
                kwargs = {k: v for k, v in kwargs.items() if k == "training"}
                out = layer(ins[0] if node.get("single", len(ins) == 1) else ins, **kwargs)
                made[layer.name].append(out if isinstance(out, list) else [out])
                nodes.pop(0)
                progress = True
    if any(nodes for _, nodes in pending):
        stuck = [lay.name for lay, nodes in pending if nodes]
        raise ValueError(f"Functional config: the graph cannot be rebuilt (unresolved inputs of {stuck})")
    try:
        inputs = [tensor(r) for r in config.get("input_layers", [])]
        outputs = [tensor(r) for r in config.get("output_layers", [])]
    except KeyError as e:
        raise ValueError(f"Functional config: inputs/outputs name an unknown layer {e}") from None
    if not inputs or not outputs:
        raise ValueError("Functional config: no input_layers or output_layers")
    return Functional(
        inputs if len(inputs) > 1 else inputs[0],
        outputs if len(outputs) > 1 else outputs[0],
        name=config.get("name"),
        trainable=config.get("trainable", True),
    )


# ---------------------------------------------------------------------------- summary


def _summary_lines(model: Model, line_length, positions) -> list[str]:
    lines: list[str] = [f'Model: "{model.name}"']
    layers = model.layers
    g = model._graph
    chain = (
        g is None or all(len(n.inputs) <= 1 for n in g.nodes) and len(g.inputs) == 1 and len(g.outputs) == 1
    )
    if chain and g is not None:
        used: dict[int, int] = {}
        for n in g.nodes:
            used[id(n.layer)] = used.get(id(n.layer), 0) + 1
        chain = all(v == 1 for v in used.values())
    if chain:
        line_length = line_length or 65
        positions = positions or [0.45, 0.85, 1.0]
        headers = ["Layer (type)", "Output Shape", "Param #"]
    else:
        line_length = line_length or 98
        positions = positions or [0.33, 0.55, 0.67, 1.0]
        headers = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]

    def row(fields) -> str:
        line = ""
        for i, f in enumerate(fields):
            if i > 0:
                line = line[:-1] + " "
            line += str(f)
            line = line[: positions[i]]
            line += " " * (positions[i] - len(line))
        return line

    lines += ["_" * line_length, row(headers), "=" * line_length]
    if g is not None and isinstance(model, Sequential):
        shown = list(model.layers)
    else:
        shown = layers
    own = {id(n) for n in g.nodes} if g is not None else set()
    for i, lay in enumerate(shown):
        try:
            shape = lay.output_shape if g is not None else "multiple"
            if g is not None:
                nodes = [n for n in lay._inbound_nodes if id(n) in own] or lay._inbound_nodes[:1]
                shape = (
                    nodes[0].outputs[0].shape
                    if len(nodes[0].outputs) == 1
                    else [o.shape for o in nodes[0].outputs]
                )
        except (AttributeError, IndexError):
            shape = "multiple"
        fields = [
            f"{lay.name} ({type(lay).__name__})",
            _shape_str(shape),
            lay.count_params() if lay.built else 0,
        ]
        if chain:
            lines.append(row(fields))
        else:
            conns = []
            for n in lay._inbound_nodes:
                if id(n) not in own:
                    continue
                for t in n.inputs:
                    src, ni, ti = t._keras_history
                    conns.append(f"{src.name}[{ni}][{ti}]")
            lines.append(row([*fields, conns[0] if conns else ""]))
            for extra in conns[1:]:
                lines.append(row(["", "", "", extra]))
        lines.append(("=" if i == len(shown) - 1 else "_") * line_length)
    trainable = sum(t.numel() for t in model.weights if t.requires_grad)
    total = sum(t.numel() for t in model.weights)
    lines += [
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        "_" * line_length,
    ]
    return lines


def _shape_str(shape) -> str:
    if isinstance(shape, list):
        return str([_shape_str(s) for s in shape])
    return (
        "("
        + ", ".join("None" if d is None else str(d) for d in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


# ---------------------------------------------------------------------------- save / load

_KERAS_FORMAT = "ferrograd.keras/1"


def save_model(
    model: Model, filepath, overwrite: bool = True, include_optimizer: bool = True, **kwargs
) -> None:
    """Writes `model` to `filepath` (safetensors): weights under their state-dict names, the
    architecture (Keras's config JSON), the compile settings and, with `include_optimizer`,
    the optimizer's state. Read it back with `load_model`."""
    if not isinstance(model, Model):
        raise TypeError(f"save_model: expected a keras Model, got {type(model).__name__}")
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"save_model: {filepath} exists and overwrite=False")
    model._require_built("save")
    arch = {"class_name": _class_name(model), "config": model.get_config()}
    tensors = {k: t.numpy() for k, t in model.state_dict().items()}
    meta = {"format": _io.FORMAT, "keras": json.dumps({"format": _KERAS_FORMAT, "model": arch})}
    compiled = model._compiled
    if compiled is not None:
        try:
            compile_cfg = {
                "optimizer": _optimizers.serialize(model.optimizer),
                "loss": _saved_objective(compiled),
                "loss_weights": compiled["loss_weight"] if compiled["loss_weight"] != 1.0 else None,
                "metrics": [_metric_spec(m) for m in compiled["metric_specs"]],
                "weighted_metrics": [_metric_spec(m) for m in compiled["weighted_specs"]],
            }
            meta["keras_compile"] = json.dumps(compile_cfg)
        except (ValueError, TypeError) as e:
            warnings.warn(
                f"save: the compile settings cannot be saved ({e}); the file loads uncompiled", stacklevel=3
            )
        opt = model.optimizer
        if include_optimizer and opt is not None and opt.built and "keras_compile" in meta:
            if [id(p) for p in opt._vars] == [id(p) for p in model.parameters()]:
                sd = opt.state_dict()
                for i, st in sd["state"].items():
                    for key, v in st.items():
                        tensors[f"optimizer.{i}.{key}"] = v.numpy()
                meta["optimizer"] = json.dumps(
                    {"class": sd["class"], "param_groups": sd["param_groups"], "scalars": {}}
                )
    _io.write_safetensors(filepath, tensors, meta)


def _saved_objective(compiled: dict):
    spec = compiled["loss_spec"]
    if isinstance(spec, str):
        return spec
    loss = compiled["loss"]
    if isinstance(loss, _losses.LossFunctionWrapper):
        name = getattr(loss.fn, "__name__", None)
        if name and _losses._BY_NAME.get(name) is None:
            return name  # a custom function: loading takes custom_objects={name: fn}
    return _losses.serialize(loss)


def _metric_spec(m):
    if isinstance(m, str):
        return m
    if isinstance(m, _metrics.Metric):
        return _metrics.serialize(m)
    name = getattr(m, "__name__", None)
    if name is None:
        raise ValueError(f"metric {m!r} cannot be saved")
    return name


def load_model(
    filepath,
    custom_objects: dict | None = None,
    compile: bool = True,  # noqa: A002  (Keras's name)
    safe_mode: bool = True,
):
    """Reads a model written by `model.save`: rebuilds the architecture from ferrograd.keras's
    classes (others only from `custom_objects`), checks that the file holds exactly the
    weights it implies before creating any, loads them, and (with `compile`) restores the
    compile settings and optimizer state. Refuses anything else with a `CheckpointError`
    (a ValueError) naming it."""
    arrays, meta = _io.read_safetensors(filepath)
    if meta.get("format") != _io.FORMAT or "keras" not in meta:
        raise _io.CheckpointError(f"load_model: {filepath} is not a model saved by ferrograd.keras")
    doc = _io.parse_json(meta["keras"], f"load_model: {filepath}: the model config")
    if (
        not isinstance(doc, dict)
        or doc.get("format") != _KERAS_FORMAT
        or not isinstance(doc.get("model"), dict)
    ):
        raise _io.CheckpointError(f"load_model: {filepath} has an unknown keras config format")
    weights = {k: v for k, v in arrays.items() if not k.startswith("optimizer.")}
    token = BUILD.defer
    BUILD.defer = True  # layers record their shapes; weights wait for the check below
    try:
        with _scope.custom_object_scope(custom_objects):
            model = _model_from_dict(doc["model"])
    except (ValueError, TypeError, KeyError) as e:
        raise _io.CheckpointError(f"load_model: {filepath}: {e}") from None
    finally:
        BUILD.defer = token
    expected = model._expected_shapes()
    if expected is None:
        raise _io.CheckpointError(f"load_model: {filepath}: the model's input shape is unknown")
    problems = []
    for k, shape in expected.items():
        if k not in weights:
            problems.append(f"'{k}' of shape {tuple(shape)} is missing")
        elif tuple(weights[k].shape) != tuple(shape):
            problems.append(f"'{k}' should have shape {tuple(shape)}, the file's has {weights[k].shape}")
        elif weights[k].dtype not in (np.float32, np.float64):
            problems.append(f"'{k}' should be a float tensor, the file's is {weights[k].dtype}")
    problems += [f"'{k}' is not part of the architecture" for k in weights if k not in expected]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise _io.CheckpointError(
            f"load_model: {filepath} does not hold the weights its config implies: {shown}"
        )
    model._build_now()
    model.load_state_dict(
        {k: _core.from_numpy(np.require(v.astype(np.float32), requirements="C")) for k, v in weights.items()}
    )
    if compile and "keras_compile" in meta:
        cfg = _io.parse_json(meta["keras_compile"], f"load_model: {filepath}: the compile settings")
        try:
            with _scope.custom_object_scope(custom_objects):
                _compile_from(model, cfg)
        except (ValueError, TypeError) as e:
            raise _io.CheckpointError(
                f"load_model: {filepath}: the compile settings cannot be restored ({e}); pass the custom "
                "objects "
                "they name, or compile=False"
            ) from None
        if "optimizer" in meta:
            _restore_optimizer(model, filepath, meta, arrays)
    return model


def _model_from_dict(d: dict) -> Model:
    name = d.get("class_name")
    if name == "Sequential":
        return Sequential.from_config(_scope.check_arguments("Sequential", d.get("config", {})))
    if name in ("Functional", "Model"):
        return Functional.from_config(_scope.check_arguments("Functional", d.get("config", {})))
    custom = _scope.lookup(name)
    if isinstance(custom, type) and issubclass(custom, Model):
        model = custom.from_config(_scope.check_arguments(str(name), d.get("config", {})))
        return model
    raise ValueError(f"unknown model class {name!r}; pass custom_objects={{{name!r}: cls}}")


def _compile_from(model: Model, cfg) -> None:
    if not isinstance(cfg, dict):
        raise ValueError("malformed compile settings")
    opt = _optimizers.get(cfg.get("optimizer"))
    loss = cfg.get("loss")
    if isinstance(loss, str) and loss not in _losses._BY_NAME:
        custom = _scope.lookup(loss)
        if custom is None:
            raise ValueError(f"the loss {loss!r} is a custom function; pass custom_objects={{{loss!r}: fn}}")
        loss = custom
    elif isinstance(loss, dict):
        loss = _losses.get(loss)
    metrics = []
    for m in (cfg.get("metrics") or []) + (cfg.get("weighted_metrics") or []):
        if isinstance(m, str) and m.lower() not in ("accuracy", "acc") and _scope.lookup(m) is None:
            _metrics.get(m)
    metrics = [_metrics.get(m) if isinstance(m, dict) else m for m in cfg.get("metrics") or []]
    weighted = [_metrics.get(m) if isinstance(m, dict) else m for m in cfg.get("weighted_metrics") or []]
    model.compile(
        optimizer=opt,
        loss=loss,
        metrics=metrics or None,
        weighted_metrics=weighted or None,
        loss_weights=cfg.get("loss_weights"),
    )


def _restore_optimizer(model: Model, filepath, meta: dict, arrays: dict) -> None:
    o = _io.parse_json(meta["optimizer"], f"load_model: {filepath}: the optimizer state")
    if not isinstance(o, dict) or not isinstance(o.get("param_groups"), list):
        raise _io.CheckpointError(f"load_model: {filepath} has a malformed optimizer state")
    state: dict[int, dict] = {}
    for k, v in arrays.items():
        if k.startswith("optimizer."):
            parts = k.split(".", 2)
            if len(parts) != 3 or not parts[1].isdigit() or not parts[2]:
                raise _io.CheckpointError(
                    f"load_model: {filepath}: tensor '{k}' is not named optimizer.<index>.<slot>"
                )
            state.setdefault(int(parts[1]), {})[parts[2]] = _core.from_numpy(np.require(v, requirements="C"))
    opt = model.optimizer
    opt._bind(list(model.parameters()))
    try:
        opt.load_state_dict({"class": o.get("class"), "param_groups": o["param_groups"], "state": state})
    except ValueError as e:
        raise _io.CheckpointError(f"load_model: {filepath}: the optimizer state does not fit: {e}") from None


def model_from_json(json_string: str, custom_objects: dict | None = None) -> Model:
    """A model (fresh weights) from `model.to_json()`'s architecture."""
    doc = _io.parse_json(json_string, "model_from_json")
    if not isinstance(doc, dict):
        raise ValueError("model_from_json: not a model description")
    with _scope.custom_object_scope(custom_objects):
        return _model_from_dict(doc)


def model_from_config(config: dict, custom_objects: dict | None = None) -> Model:
    """A model (fresh weights) from `{"class_name": ..., "config": model.get_config()}`."""
    with _scope.custom_object_scope(custom_objects):
        return _model_from_dict(config)


def clone_model(model: Model, input_tensors=None, clone_function=None) -> Model:
    """A new model with the same architecture and freshly initialized weights."""
    if input_tensors is not None or clone_function is not None:
        raise ValueError("clone_model: input_tensors and clone_function are not supported")
    return model_from_config({"class_name": _class_name(model), "config": model.get_config()})


__all__ = [
    "Model",
    "Functional",
    "Sequential",
    "load_model",
    "save_model",
    "model_from_json",
    "model_from_config",
    "clone_model",
]
