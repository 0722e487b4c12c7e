"""Keras's layers for dense networks, as ferrograd modules: `Dense`, `Activation`, `Dropout`,
`AlphaDropout`, `GaussianNoise`, `GaussianDropout`, `BatchNormalization`,
`LayerNormalization`, `Flatten`, `Reshape`, `Lambda`, the merge layers (`Add`, `Subtract`,
`Multiply`, `Average`, `Maximum`, `Minimum`, `Concatenate`), the activation layers (`ReLU`,
`LeakyReLU`, `ELU`, `Softmax`) and `InputLayer` / `Input`.

Every layer is an `fg.nn.Module`: its weights are ordinary tensors (`parameters()`,
`state_dict()`, `.to(device)`). Shapes are lazy, as in Keras: `Dense(64)` creates its weights
when it first sees an input (a real tensor, or a symbolic one from `Input(shape=...)`).

Layouts: a Dense layer keeps its weight as ferrograd's `Linear` does, (out, in), so it runs
the same fused kernels; `get_weights()` / `set_weights()` speak Keras's layout (kernel
(in, out), then bias) and `layer.kernel` is a (in, out) view.

Modes: a Keras layer computes in inference mode unless told otherwise (`layer(x,
training=True)`, or inside `fit`), so layers and models start in eval mode
(`module.training` is False); `fit` switches to training mode and back.
"""

from __future__ import annotations

import functools
import inspect
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import _core
from .._core import ShapeError, Tensor
from ..autograd import no_grad
from ..nn.module import Module, Parameter
from . import _scope
from . import activations as _activations
from . import constraints as _constraints
from . import initializers as _initializers
from . import regularizers as _regularizers
from .backend import to_snake_case, unique_name

Shape = tuple  # (None, d1, ...): the batch dim first, None where unknown

# ---------------------------------------------------------------------------- symbolic tensors


class KerasTensor:
    """A symbolic tensor: what `Input(shape=...)` and calling a layer on one give. It holds a
    shape (batch dim None) and where it came from, so `Model(inputs, outputs)` can trace the
    graph; it has no values."""

    def __init__(
        self, shape: Shape, layer: Layer, node_index: int, tensor_index: int = 0, name: str | None = None
    ):
        self.shape = tuple(shape)
        self.dtype = "float32"
        self._keras_history = (layer, node_index, tensor_index)
        self.name = name or layer.name

    @property
    def ndim(self) -> int:
        """The number of dims, the batch dim included."""
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __hash__(self) -> int:
        return id(self)

    # `x + y` on symbolic tensors builds merge layers, as Keras 3 does
    def __add__(self, other):
        return Add()([self, other])

    def __sub__(self, other):
        return Subtract()([self, other])

    def __mul__(self, other):
        return Multiply()([self, other])

    def __bool__(self) -> bool:
        raise TypeError("a symbolic KerasTensor has no value to test; build a Model and call it on data")


class Node:
    """One call of a layer on symbolic tensors: its inputs, outputs and keyword arguments."""

    def __init__(self, layer: Layer, inputs: list[KerasTensor], call_kwargs: dict, single_input: bool):
        self.layer = layer
        self.inputs = inputs
        self.call_kwargs = call_kwargs
        self.single_input = single_input  # called as layer(x), not layer([x])
        self.outputs: list[KerasTensor] = []

    @property
    def parents(self) -> list[tuple[Layer, int, int]]:
        """(layer, node index, tensor index) of each input."""
        return [t._keras_history for t in self.inputs]


def _is_symbolic(x) -> bool:
    if isinstance(x, KerasTensor):
        return True
    if isinstance(x, (list, tuple)) and x and all(isinstance(i, KerasTensor) for i in x):
        return True
    if isinstance(x, (list, tuple)) and any(isinstance(i, KerasTensor) for i in x):
        raise TypeError("a layer was called on a mix of symbolic (KerasTensor) and real inputs")
    return False


def _shape_of(x) -> Shape | list[Shape]:
    if isinstance(x, (list, tuple)):
        return [_shape_of(i) for i in x]  # type: ignore[misc]
    return (None, *tuple(x.shape)[1:])


def to_tensor(x) -> Tensor:
    """`x` as a float tensor: tensors pass through, arrays and lists become float32."""
    if isinstance(x, Tensor):
        return x if x.dtype.is_floating_point else x.float()
    arr = np.asarray(x, dtype=np.float32)
    return _core.from_numpy(np.ascontiguousarray(arr))


def _convert(x):
    if isinstance(x, (list, tuple)):
        return [to_tensor(i) for i in x]
    return to_tensor(x)


class _BuildState(threading.local):
    """`defer`: record the shapes layers see without creating weights (set while a saved
    model's graph is checked against its file, before anything is allocated)."""

    defer = False


BUILD = _BuildState()

# which classes are ferrograd.keras's own (built from a file without the caller's say-so)
BUILTIN_LAYERS: dict[str, type[Layer]] = {}


# ---------------------------------------------------------------------------- Layer


class Layer(Module):
    """The base of Keras's layers: a `Module` that builds its weights from its first input's
    shape and can be called on symbolic tensors to make a functional model.

    Subclass it as in Keras: create weights in `build(input_shape)` with `add_weight`, compute
    in `call(inputs)` (taking `training=None` if the layer behaves differently in training),
    and give `get_config()` the constructor arguments to make it saveable.

    >>> class Scale(keras.layers.Layer):
    ...     def build(self, input_shape):
    ...         self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")
    ...     def call(self, x):
    ...         return x * self.w
    """

    _call_takes_training: dict[type, bool] = {}
    # set through object.__setattr__ in __init__ (declared for type checkers)
    name: str
    built: bool
    activity_regularizer: Any
    _trainable: bool
    _inbound_nodes: list[Node]
    _build_shape: Any
    _pending: dict[int, tuple[Tensor, bool]]
    _weight_names: list[str]
    _transposed: set[str]
    _regularized: list[tuple[str, Any]]
    _constrained: list[tuple[str, Any]]
    _losses: list[Tensor]
    _batch_input_shape: tuple | None

    def __init__(
        self,
        trainable: bool = True,
        name: str | None = None,
        dtype=None,
        input_shape=None,
        batch_input_shape=None,
        batch_size: int | None = None,
        input_dim: int | None = None,
        **kwargs,
    ):
        super().__init__()
        cls = type(self).__name__
        # Keras's arguments that change nothing here
        for k in ("autocast", "dynamic", "weights", "input_length"):
            kwargs.pop(k, None)
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments passed to {cls}: {kwargs}")
        if dtype not in (None, "float32") and getattr(dtype, "name", None) != "float32":
            raise ValueError(f"{cls}: ferrograd.keras layers compute in float32, got dtype={dtype!r}")
        if name is not None and (not isinstance(name, str) or not name or "." in name or "/" in name):
            raise ValueError(
                f"{cls}: a layer name must be a non-empty string without '.' or '/', got {name!r}"
            )
        object.__setattr__(self, "training", False)  # Keras: inference unless told otherwise
        object.__setattr__(self, "name", name or unique_name(to_snake_case(cls)))
        object.__setattr__(self, "built", False)
        object.__setattr__(self, "_trainable", bool(trainable))
        object.__setattr__(self, "_inbound_nodes", [])
        object.__setattr__(self, "_build_shape", None)
        object.__setattr__(self, "_pending", {})  # id -> (tensor, trainable) from add_weight
        object.__setattr__(self, "_weight_names", [])  # Keras's weight order (attribute names)
        object.__setattr__(self, "_transposed", set())  # attributes kept transposed (Dense's weight)
        object.__setattr__(self, "_regularized", [])  # (attribute, regularizer)
        object.__setattr__(self, "_constrained", [])  # (attribute, constraint)
        object.__setattr__(self, "_losses", [])
        object.__setattr__(self, "activity_regularizer", None)
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        batch_shape = None
        if batch_input_shape is not None:
            batch_shape = tuple(batch_input_shape)
        elif input_shape is not None:
            if isinstance(input_shape, int):
                input_shape = (input_shape,)
            batch_shape = (batch_size, *tuple(input_shape))
        object.__setattr__(self, "_batch_input_shape", batch_shape)

    # ---- attributes ---------------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        pending = self.__dict__.get("_pending")
        if pending and isinstance(value, Tensor) and id(value) in pending:
            # a weight from add_weight: registered under the attribute it is assigned to
            _, trainable = pending.pop(id(value))
            Module.__setattr__(self, name, value)
            if not trainable:
                self.register_buffer(name, value)
            self._weight_names.append(name)
            return
        Module.__setattr__(self, name, value)

    @property
    def trainable(self) -> bool:
        """Whether the optimizer updates this layer's weights (setting it freezes or unfreezes
        them, and a frozen BatchNormalization normalizes with its moving statistics)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        object.__setattr__(self, "_trainable", bool(value))
        for m in self.modules():
            if isinstance(m, Layer) and m is not self:
                object.__setattr__(m, "_trainable", bool(value))
            for p in m._parameters.values():
                p.requires_grad = bool(value)

    @property
    def dtype(self) -> str:
        """Keras's compute dtype: "float32"."""
        return "float32"

    # ---- weights ------------------------------------------------------------------------
    def add_weight(
        self,
        shape=None,
        initializer=None,
        dtype=None,
        trainable: bool = True,
        regularizer=None,
        constraint=None,
        name: str | None = None,
        **kwargs,
    ) -> Tensor:
        """Creates a weight of `shape` (Keras's add_weight): a trainable parameter, or a
        non-trainable buffer. It is registered under the attribute it is assigned to
        (`self.w = self.add_weight(...)`), else under `name`."""
        shape = tuple(int(s) for s in (shape or ()))
        if initializer is None:
            initializer = "glorot_uniform" if len(shape) >= 2 else "zeros"
        t = _initializers.get(initializer)(list(shape))
        t = Parameter(t) if trainable else t.detach()
        self._pending[id(t)] = (t, trainable)
        key = name or f"weight_{len(self._weight_names) + len(self._pending) - 1}"
        reg = _regularizers.get(regularizer)
        con = _constraints.get(constraint)
        # the regularizer and constraint find the tensor by attribute once it has one
        object.__setattr__(self, "_late", [*self.__dict__.get("_late", []), (t, key, reg, con)])
        return t

    def _settle_weights(self) -> None:
        """After build: weights not assigned to an attribute get their `name`; regularizers
        and constraints are tied to the attribute names."""
        for t, key, reg, con in self.__dict__.get("_late", []):
            if id(t) in self._pending:
                while key in self.__dict__ or hasattr(type(self), key):
                    key += "_"
                setattr(self, key, t)
            attr = next(n for n in self._weight_names if getattr(self, n, None) is t)
            if reg is not None:
                self._regularized.append((attr, reg))
            if con is not None:
                self._constrained.append((attr, con))
        object.__setattr__(self, "_late", [])

    def _own_weights(self) -> list[tuple[str, Tensor]]:
        names = list(self._weight_names)
        known = set(names)
        names += [n for n in self._parameters if n not in known]
        names += [n for n in self._buffers if n not in known and n not in self._parameters]
        return [(n, getattr(self, n)) for n in names if getattr(self, n, None) is not None]

    def _weight_entries(self) -> list[tuple[Layer, str, Tensor]]:
        """(layer, attribute, tensor) for every weight, in Keras's order: this layer's own
        (trainable first, as created), then each sub-layer's."""
        out = [(self, n, t) for n, t in self._own_weights()]
        seen = {id(t) for _, _, t in out}
        for m in self._modules.values():
            if isinstance(m, Layer):
                for entry in m._weight_entries():
                    if id(entry[2]) not in seen:
                        seen.add(id(entry[2]))
                        out.append(entry)
            else:  # a plain ferrograd module inside a custom layer
                for _, t in list(m.named_parameters()) + list(m.named_buffers()):
                    if id(t) not in seen:
                        seen.add(id(t))
                        out.append((self, "", t))
        return out

    @property
    def weights(self) -> list[Tensor]:
        """Every weight tensor (trainable and not), in Keras's order. These are the live
        tensors in ferrograd's layout; `get_weights()` gives Keras's layout."""
        return [t for _, _, t in self._weight_entries()]

    @property
    def trainable_weights(self) -> list[Tensor]:
        """The weights the optimizer updates."""
        return [t for t in self.weights if t.requires_grad]

    @property
    def non_trainable_weights(self) -> list[Tensor]:
        """The other weights (moving statistics, frozen layers)."""
        return [t for t in self.weights if not t.requires_grad]

    @property
    def variables(self) -> list[Tensor]:
        """`weights` (Keras's name)."""
        return self.weights

    def get_weights(self) -> list[np.ndarray]:
        """The weights as NumPy arrays in Keras's layout (a Dense kernel is (in, out))."""
        self._require_built("get_weights")
        out = []
        for layer, attr, t in self._weight_entries():
            a = t.detach().numpy()
            out.append(np.ascontiguousarray(a.T) if attr in layer._transposed else a)
        return out

    def set_weights(self, weights: Sequence) -> None:
        """Sets the weights from arrays in Keras's layout (the order `get_weights` gives)."""
        self._require_built("set_weights")
        entries = self._weight_entries()
        weights = list(weights)
        if len(weights) != len(entries):
            raise ValueError(
                f"You called `set_weights(weights)` on layer '{self.name}' with a weight list of "
                f"length {len(weights)}, but the layer was expecting {len(entries)} weights."
            )
        arrays = []
        for (layer, attr, t), w in zip(entries, weights):
            a = np.asarray(w.detach().numpy() if isinstance(w, Tensor) else w, dtype=np.float32)
            want = tuple(t.shape)[::-1] if attr in layer._transposed else tuple(t.shape)
            if a.shape != want:
                raise ValueError(
                    f"Layer '{layer.name}' weight '{attr}' has shape {want}, but set_weights got {a.shape}"
                )
            arrays.append(np.ascontiguousarray(a.T if attr in layer._transposed else a))
        with no_grad():
            for (_, _, t), a in zip(entries, arrays):
                src = _core.from_numpy(a)
                t.copy_(src if t.device == "cpu" else src.to(t.device))

    def count_params(self) -> int:
        """The number of weight scalars (trainable or not)."""
        self._require_built("count_params")
        return int(sum(t.numel() for t in self.weights))

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise ValueError(
                f"{what}: layer '{self.name}' has not been built yet (its weights are created "
                "when it first sees an input); call it on data, or give the model an input shape"
            )

    # ---- losses from layers --------------------------------------------------------------
    def add_loss(self, loss) -> None:
        """Adds a loss term (a 0-d tensor) that the next training step adds to its loss."""
        self._losses.append(loss)

    @property
    def losses(self) -> list[Tensor]:
        """This layer's and its sub-layers' loss terms: the weight regularization penalties,
        and the activity regularization and `add_loss` terms of the last call."""
        out: list[Tensor] = []
        for m in self.modules():
            if isinstance(m, Layer):
                out += m._regularization_terms() + list(m._losses)
        return out

    def _regularization_terms(self) -> list[Tensor]:
        terms = []
        for attr, reg in self._regularized:
            w = getattr(self, attr)
            if attr in self._transposed and not isinstance(reg, _regularizers.L1L2):
                w = w.t()  # a custom regularizer sees Keras's layout (L1/L2 do not care)
            terms.append(reg(w))
        return terms

    def _apply_constraints(self) -> None:
        with no_grad():
            for attr, con in self._constrained:
                w = getattr(self, attr)
                if attr in self._transposed:
                    w.copy_(con(w.t()).t())
                else:
                    w.copy_(con(w))

    # ---- building and calling -----------------------------------------------------------
    def build(self, input_shape) -> None:
        """Creates the weights for inputs of `input_shape` (batch dim first, None)."""

    def _maybe_build(self, input_shape) -> None:
        if self.built:
            return
        object.__setattr__(self, "_build_shape", _plain_shape(input_shape))
        if BUILD.defer and BUILTIN_LAYERS.get(type(self).__name__) is type(self):
            return  # loading: shapes first, weights once the file has been checked
        self.build(input_shape)
        self._after_build()

    def _after_build(self) -> None:
        self._settle_weights()
        object.__setattr__(self, "built", True)
        if not self._trainable:  # Layer(trainable=False): its weights are created frozen
            for p in self._parameters.values():
                p.requires_grad = False

    def _build_now(self) -> None:
        """Builds a layer whose build a load deferred."""
        if not self.built and self._build_shape is not None:
            self.build(_shape_arg(self._build_shape))
            self._after_build()

    def call(self, inputs, *args, **kwargs):
        """The layer's computation on real tensors (subclasses define it)."""
        raise NotImplementedError(f"{type(self).__name__} must define call(inputs)")

    def forward(self, *args, **kwargs):
        """`call` (what `fg.nn.Module` runs)."""
        return self(*args, **kwargs)

    def compute_output_shape(self, input_shape):
        """The output shape for `input_shape` (batch dim None). The default runs the layer on
        zeros (batch of 2, in inference mode) and reads the shape."""
        return self._traced_output_shape(input_shape)

    def _traced_output_shape(self, input_shape):
        def zeros(s):
            return _core.zeros([2 if d is None else int(d) for d in s], None)

        shapes = input_shape
        x = [zeros(s) for s in shapes] if isinstance(shapes, list) else zeros(shapes)
        was = self.training
        self.train(False)
        try:
            with no_grad():
                y = self._call_checked(x, {})
        finally:
            self.train(was)
        if isinstance(y, (list, tuple)):
            return [(None, *tuple(t.shape)[1:]) for t in y]
        return (None, *tuple(y.shape)[1:])

    def _takes_training(self) -> bool:
        cls = type(self)
        if cls not in Layer._call_takes_training:
            try:
                params = inspect.signature(cls.call).parameters
            except (TypeError, ValueError):
                params = {}  # type: ignore[assignment]
            Layer._call_takes_training[cls] = "training" in params
        return Layer._call_takes_training[cls]

    def _call_checked(self, x, kwargs: dict):
        if self._takes_training() and "training" not in kwargs:
            kwargs = {**kwargs, "training": self.training}
        y = self.call(x, **kwargs)
        if self.activity_regularizer is not None and self.training:
            for out in y if isinstance(y, (list, tuple)) else [y]:
                if isinstance(out, Tensor):
                    self._losses.append(self.activity_regularizer(out) / float(max(out.shape[0], 1)))
        return y

    def __call__(self, *args, **kwargs):
        if args:
            inputs, args = args[0], args[1:]
        elif "inputs" in kwargs:
            inputs = kwargs.pop("inputs")
        else:
            raise TypeError(f"{type(self).__name__}: call it on an input, layer(x)")
        if args:
            raise TypeError(
                f"{type(self).__name__}: pass extra call arguments by keyword (e.g. training=...)"
            )
        if _is_symbolic(inputs):
            return self._symbolic_call(inputs, kwargs)
        training = kwargs.pop("training", None)
        x = _convert(inputs)
        if not self.built:
            self._maybe_build(_shape_of(x))
        if training is None:
            return self._call_checked(x, kwargs)
        modes = [(m, m.training) for m in self.modules()]
        self.train(bool(training))
        try:
            return self._call_checked(x, kwargs)
        finally:
            for m, mode in modes:
                object.__setattr__(m, "training", mode)

    def _symbolic_call(self, inputs, kwargs: dict):
        single = isinstance(inputs, KerasTensor)
        tensors = [inputs] if single else list(inputs)
        shapes = tensors[0].shape if single else [t.shape for t in tensors]
        for k, v in kwargs.items():
            if k != "training" and isinstance(v, (KerasTensor, Tensor)):
                raise TypeError(f"{type(self).__name__}: tensor keyword argument {k!r} is not supported")
        self._check_input_shape(shapes)
        self._maybe_build(shapes)
        out_shape = self.compute_output_shape(shapes)
        node = Node(self, tensors, dict(kwargs), single)
        index = len(self._inbound_nodes)
        self._inbound_nodes.append(node)
        if isinstance(out_shape, list):
            node.outputs = [KerasTensor(s, self, index, i) for i, s in enumerate(out_shape)]
            return list(node.outputs)
        node.outputs = [KerasTensor(out_shape, self, index, 0)]
        return node.outputs[0]

    def _check_input_shape(self, shapes) -> None:
        """Refuses inputs that cannot be this layer's (a ValueError naming the layer)."""

    # ---- what a model's forward uses -----------------------------------------------------
    def _final_activation(self) -> str | None:
        """ "softmax"/"sigmoid" when this layer ends in that activation (losses on
        probabilities then train from the logits before it, as Keras does)."""
        return None

    def _call_logits(self, x):
        """The output before the final activation `_final_activation` names."""
        return self._call_checked(x, {})

    def _fused_with(self, nxt: Layer) -> Callable[[Tensor], Tensor] | None:
        """A single call for this layer followed by `nxt`, when the engine has one."""
        return None

    # ---- config -------------------------------------------------------------------------
    def get_config(self) -> dict:
        """The constructor arguments that rebuild this layer (Keras's form)."""
        cfg: dict[str, Any] = {"name": self.name, "trainable": self.trainable, "dtype": "float32"}
        if self._batch_input_shape is not None:
            cfg["batch_input_shape"] = list(self._batch_input_shape)
        return cfg

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        """Builds the layer from `get_config()`."""
        return cls(**config)

    def _expected_shapes(self) -> dict[str, tuple[int, ...]] | None:
        """The state-dict names and shapes this layer's build creates for its recorded input
        shape, without building (None: not known without building)."""
        return None

    # ---- graph info ---------------------------------------------------------------------
    def _node_output(self, what: str):
        if not self._inbound_nodes:
            raise AttributeError(
                f"layer '{self.name}' has never been called on a symbolic input, so it has no {what}"
            )
        return self._inbound_nodes[0]

    @property
    def input(self):
        """The symbolic input of this layer's first call."""
        node = self._node_output("input")
        return node.inputs[0] if node.single_input else node.inputs

    @property
    def output(self):
        """The symbolic output of this layer's first call."""
        outs = self._node_output("output").outputs
        return outs[0] if len(outs) == 1 else outs

    @property
    def input_shape(self):
        """The input shape of this layer (batch dim None)."""
        if self._build_shape is not None:
            return _shape_arg(self._build_shape)
        if self._batch_input_shape is not None:
            return tuple(self._batch_input_shape)
        raise AttributeError(f"layer '{self.name}' has no input shape yet")

    @property
    def output_shape(self):
        """The output shape of this layer (batch dim None)."""
        if self._inbound_nodes:
            outs = self._inbound_nodes[0].outputs
            return outs[0].shape if len(outs) == 1 else [o.shape for o in outs]
        return self.compute_output_shape(self.input_shape)

    def extra_repr(self) -> str:
        """The layer's name, in its module repr."""
        return f"name={self.name!r}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if cls.__module__.startswith("ferrograd.keras.") and not cls.__name__.startswith("_"):
            BUILTIN_LAYERS[cls.__name__] = cls
        if "build" in cls.__dict__ and not getattr(cls, "_manages_build", False):
            cls.build = _marks_built(cls.__dict__["build"])  # type: ignore[method-assign]

    _manages_build = False  # models track `built` themselves


def _marks_built(build):
    """`build` that also marks the layer built, as Keras's: `layer.build((None, 3))` called
    directly leaves a usable layer (its weights settled under their attribute names)."""

    @functools.wraps(build)
    def build_and_mark(self, input_shape=None, *args, **kwargs):
        outer = not self.__dict__.get("_building", False)
        object.__setattr__(self, "_building", True)
        try:
            build(self, input_shape, *args, **kwargs)
        finally:
            if outer:
                object.__setattr__(self, "_building", False)
        if outer:
            if input_shape is not None and self._build_shape is None:
                object.__setattr__(self, "_build_shape", _plain_shape(input_shape))
            self._after_build()

    return build_and_mark


def _plain_shape(s):
    if isinstance(s, list):
        return [_plain_shape(i) for i in s]
    return [None if d is None else int(d) for d in s]


def _shape_arg(s):
    if s and isinstance(s[0], (list, tuple)):
        return [tuple(i) for i in s]
    return tuple(s)


def _positive_int(layer: str, name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
        raise ValueError(f"{layer}: {name} must be a positive integer, got {v!r}")
    return int(v)


def _rate(layer: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v < 1.0 or v != v:
        raise ValueError(
            f"Invalid value received for argument `rate` of {layer}: expected a float value between 0 and 1 "
            f"(1 excluded), got {v!r}"
        )
    return float(v)


# ---------------------------------------------------------------------------- InputLayer


class InputLayer(Layer):
    """The entry point of a functional model: `Input(shape=(784,))` makes one and returns
    its symbolic output. `shape` excludes the batch dim (`batch_shape` includes it)."""

    def __init__(
        self,
        shape=None,
        batch_size: int | None = None,
        dtype=None,
        sparse=None,
        batch_shape=None,
        input_tensor=None,
        name: str | None = None,
        input_shape=None,
        batch_input_shape=None,
        **kwargs,
    ):
        if shape is None:
            shape = input_shape
        if batch_shape is None:
            batch_shape = batch_input_shape
        if sparse:
            raise ValueError("InputLayer: sparse inputs are not supported")
        if input_tensor is not None:
            raise ValueError("InputLayer: input_tensor is not supported; give shape=")
        if batch_shape is None:
            if shape is None:
                raise ValueError("InputLayer: give shape= (without the batch dim) or batch_shape=")
            if isinstance(shape, int):
                shape = (shape,)
            batch_shape = (batch_size, *tuple(shape))
        batch_shape = tuple(None if d is None else int(d) for d in batch_shape)
        for d in batch_shape[1:]:
            if d is not None and d <= 0:
                raise ValueError(f"InputLayer: dims must be positive, got shape {batch_shape}")
        super().__init__(name=name or unique_name("input_layer"), dtype=dtype, **kwargs)
        object.__setattr__(self, "_batch_input_shape", batch_shape)
        object.__setattr__(self, "_build_shape", _plain_shape(batch_shape))
        object.__setattr__(self, "built", True)
        node = Node(self, [], {}, True)
        node.outputs = [KerasTensor(batch_shape, self, 0, 0)]
        self._inbound_nodes.append(node)

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        assert self._batch_input_shape is not None
        return {"batch_shape": list(self._batch_input_shape), "name": self.name}

    def _expected_shapes(self) -> dict:
        return {}


def Input(  # noqa: N802  (Keras's name)
    shape=None,
    batch_size: int | None = None,
    dtype=None,
    sparse=None,
    batch_shape=None,
    name: str | None = None,
    tensor=None,
    **kwargs,
) -> KerasTensor:
    """A symbolic input of `shape` (without the batch dim) for a functional model:

    >>> inputs = keras.Input(shape=(784,))
    >>> outputs = keras.layers.Dense(10, activation="softmax")(inputs)
    >>> model = keras.Model(inputs, outputs)
    """
    layer = InputLayer(
        shape=shape,
        batch_size=batch_size,
        dtype=dtype,
        sparse=sparse,
        batch_shape=batch_shape,
        name=name,
        input_tensor=tensor,
        **kwargs,
    )
    return layer._inbound_nodes[0].outputs[0]


# ---------------------------------------------------------------------------- Dense


class Dense(Layer):
    """`activation(inputs @ kernel + bias)` over the last dim (Keras's Dense).

    The kernel is created at the first call (or from `input_shape`/`input_dim`), with
    `kernel_initializer` (default glorot_uniform) and `bias_initializer` (zeros). It is
    stored as ferrograd's Linear weight (`weight`, shape (units, in)); `kernel` is its (in,
    units) view and `get_weights()` returns [kernel (in, units), bias (units,)].
    """

    def __init__(
        self,
        units: int,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        if kwargs.pop("lora_rank", None) is not None:
            raise ValueError("Dense: lora_rank is not supported")
        if "init" in kwargs:  # Keras 1's name
            kernel_initializer = kwargs.pop("init")
        super().__init__(**kwargs)
        self.units = _positive_int("Dense", "units", units)
        self.activation = _activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _initializers.get(kernel_initializer)
        self.bias_initializer = _initializers.get(bias_initializer)
        self.kernel_regularizer = _regularizers.get(kernel_regularizer)
        self.bias_regularizer = _regularizers.get(bias_regularizer)
        object.__setattr__(self, "activity_regularizer", _regularizers.get(activity_regularizer))
        self.kernel_constraint = _constraints.get(kernel_constraint)
        self.bias_constraint = _constraints.get(bias_constraint)
        self.weight: Tensor | None = None
        self.bias: Tensor | None = None
        if self._batch_input_shape is not None:
            self._maybe_build(self._batch_input_shape)

    def _check_input_shape(self, shape) -> None:
        if isinstance(shape, list):
            raise ValueError(f"Dense layer '{self.name}' takes one input, got {len(shape)}")
        if len(shape) < 2 or shape[-1] is None:
            raise ValueError(
                f"Dense layer '{self.name}': the last dimension of the inputs must be defined, got shape "
                f"{shape}"
            )
        if self.built and self.weight is not None and shape[-1] != self.weight.shape[1]:
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: expected axis -1 of input "
                f"shape to have value {self.weight.shape[1]}, but received input with shape {shape}"
            )

    def build(self, input_shape) -> None:
        self._check_input_shape(tuple(input_shape))
        n_in = int(input_shape[-1])
        self.weight = Parameter(self.kernel_initializer.transposed((n_in, self.units)))
        object.__setattr__(self, "_weight_names", ["weight"])
        object.__setattr__(self, "_transposed", {"weight"})
        reg: list = []
        con: list = []
        if self.kernel_regularizer is not None:
            reg.append(("weight", self.kernel_regularizer))
        if self.kernel_constraint is not None:
            con.append(("weight", self.kernel_constraint))
        if self.use_bias:
            self.bias = Parameter(self.bias_initializer((self.units,)))
            self._weight_names.append("bias")
            if self.bias_regularizer is not None:
                reg.append(("bias", self.bias_regularizer))
            if self.bias_constraint is not None:
                con.append(("bias", self.bias_constraint))
        object.__setattr__(self, "_regularized", reg)
        object.__setattr__(self, "_constrained", con)

    @property
    def kernel(self) -> Tensor:
        """The kernel in Keras's layout (in, units): a view of `weight`."""
        self._require_built("kernel")
        assert self.weight is not None
        return self.weight.t()

    def _linear(self, x: Tensor, act: tuple[str, float | None] | None = None) -> Tensor:
        w = self.weight
        if x.ndim == 0 or w is None or x.shape[-1] != w.shape[1]:
            want = "?" if w is None else w.shape[1]
            raise ShapeError(
                f"Dense layer '{self.name}': expected input (..., {want}), got shape {tuple(x.shape)}"
            )
        if act is None:
            return _core.linear(x, w, self.bias)
        return _core.linear(x, w, self.bias, *act)

    def call(self, inputs):
        fused = _activations.FUSED.get(self.activation)
        if fused is not None:
            return self._linear(inputs, fused)
        y = self._linear(inputs)
        return y if self.activation is _activations.linear else self.activation(y)

    def _final_activation(self) -> str | None:
        return _final_name(self.activation)

    def _call_logits(self, x):
        return self._linear(x)

    def _fused_with(self, nxt: Layer):
        if type(self) is not Dense or self.activation is not _activations.linear:
            return None
        if self.activity_regularizer is not None or nxt.activity_regularizer is not None:
            return None
        act = _fusable(nxt)
        if act is None:
            return None
        return lambda x: self._linear(x, act)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.units)

    def _expected_shapes(self) -> dict | None:
        s = self._build_shape
        if s is None or isinstance(s[0], list) or s[-1] is None:
            return None
        return {"weight": (self.units, int(s[-1])), **({"bias": (self.units,)} if self.use_bias else {})}

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": _activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": _initializers.serialize(self.kernel_initializer),
            "bias_initializer": _initializers.serialize(self.bias_initializer),
            "kernel_regularizer": _regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": _regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": _regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": _constraints.serialize(self.kernel_constraint),
            "bias_constraint": _constraints.serialize(self.bias_constraint),
        }


def _final_name(fn) -> str | None:
    if fn is _activations.softmax:
        return "softmax"
    if fn is _activations.sigmoid:
        return "sigmoid"
    return None


def _fusable(layer: Layer) -> tuple[str, float | None] | None:
    """(name, alpha) of an activation layer `_core.linear` can run in its epilogue."""
    if type(layer) is Activation:
        return _activations.FUSED.get(layer.activation)
    if type(layer) is ReLU and layer.max_value is None and layer.negative_slope == 0 and layer.threshold == 0:
        return ("relu", None)
    return None


# ---------------------------------------------------------------------------- activations


class Activation(Layer):
    """Applies an activation function: `Activation("relu")`."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = _activations.get(activation)

    def call(self, inputs):
        return self.activation(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def _final_activation(self) -> str | None:
        return _final_name(self.activation)

    def _call_logits(self, x):
        return x

    def _expected_shapes(self) -> dict:
        return {}

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": _activations.serialize(self.activation)}


class _ShapeKeeping(Layer):
    """A layer without weights whose output shape is its input's."""

    def compute_output_shape(self, input_shape):
        return input_shape

    def _expected_shapes(self) -> dict:
        return {}


class ReLU(_ShapeKeeping):
    """Keras's ReLU layer: `max_value` caps, `negative_slope` leaks below `threshold`."""

    def __init__(self, max_value=None, negative_slope: float = 0.0, threshold: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0:
            raise ValueError(f"ReLU: max_value must be >= 0, got {max_value}")
        if negative_slope < 0:
            raise ValueError(f"ReLU: negative_slope must be >= 0, got {negative_slope}")
        self.max_value, self.negative_slope, self.threshold = (
            max_value,
            float(negative_slope),
            float(threshold),
        )

    def call(self, inputs):
        return _activations.relu(inputs, self.negative_slope, self.max_value, self.threshold)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
        }


class LeakyReLU(_ShapeKeeping):
    """x if x > 0 else negative_slope * x (Keras's layer default 0.3; `alpha` is Keras 2's name)."""

    def __init__(self, negative_slope: float = 0.3, **kwargs):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        self.negative_slope = float(negative_slope)

    def call(self, inputs):
        return inputs.leaky_relu(self.negative_slope)

    def get_config(self) -> dict:
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(_ShapeKeeping):
    """x if x > 0 else alpha (e^x - 1)."""

    def __init__(self, alpha: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)

    def call(self, inputs):
        return inputs.elu(self.alpha)

    def get_config(self) -> dict:
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(_ShapeKeeping):
    """Softmax along `axis`."""

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs):
        return inputs.softmax(self.axis)

    def _final_activation(self) -> str | None:
        return "softmax" if self.axis == -1 else None

    def _call_logits(self, x):
        return x

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


# ---------------------------------------------------------------------------- regularization


class Dropout(_ShapeKeeping):
    """Sets a fraction `rate` of the inputs to 0 in training and scales the rest by
    1/(1 - rate); the identity in inference."""

    def __init__(self, rate: float, noise_shape=None, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = _rate(type(self).__name__, rate)
        if noise_shape is not None:
            raise ValueError(f"{type(self).__name__}: noise_shape is not supported (got {noise_shape!r})")
        self.noise_shape, self.seed = None, seed

    def call(self, inputs):
        if not self.training or self.rate == 0.0:
            return inputs
        return _core.dropout(inputs, self.rate, True)

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class AlphaDropout(Dropout):
    """Dropout for SELU networks: dropped units are set to SELU's negative saturation and
    the result is scaled and shifted to keep mean 0 and variance 1 (Keras's formula)."""

    def call(self, inputs):
        if not self.training or self.rate == 0.0:
            return inputs
        return _core.alpha_dropout(inputs, self.rate, True)


class GaussianNoise(_ShapeKeeping):
    """Adds N(0, stddev^2) noise in training; the identity in inference."""

    def __init__(self, stddev: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(stddev, (int, float)) or stddev < 0:
            raise ValueError(f"GaussianNoise: stddev must be a number >= 0, got {stddev!r}")
        self.stddev, self.seed = float(stddev), seed

    def call(self, inputs):
        if not self.training or self.stddev == 0.0:
            return inputs
        noise = _core.randn(list(inputs.shape), None)
        return inputs + (noise if inputs.device == "cpu" else noise.to(inputs.device)) * self.stddev

    def get_config(self) -> dict:
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_ShapeKeeping):
    """Multiplies by N(1, rate / (1 - rate)) noise in training; the identity in inference."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.seed = _rate("GaussianDropout", rate), seed

    def call(self, inputs):
        if not self.training or self.rate == 0.0:
            return inputs
        std = math.sqrt(self.rate / (1.0 - self.rate))
        noise = _core.randn(list(inputs.shape), None) * std + 1.0
        return inputs * (noise if inputs.device == "cpu" else noise.to(inputs.device))

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


# ---------------------------------------------------------------------------- normalization


class BatchNormalization(Layer):
    """Keras's batch normalization over the last axis.

    Training (in `fit`, or `training=True`): normalizes with the batch mean and (biased)
    variance and updates `moving_mean = moving_mean * momentum + mean * (1 - momentum)`, and
    the same for `moving_variance` with the biased batch variance. Inference: normalizes
    with the moving statistics. `epsilon` is added to the variance. Weights: gamma, beta
    (trainable), moving_mean, moving_variance (not trainable).
    """

    moving_mean: Tensor
    moving_variance: Tensor

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        synchronized: bool = False,
        **kwargs,
    ):
        kwargs.pop("fused", None)  # Keras 2's kernel choice: ferrograd always fuses
        if kwargs.pop("renorm", False):
            raise ValueError("BatchNormalization: renorm=True is not supported")
        for k in ("renorm_clipping", "renorm_momentum", "virtual_batch_size", "adjustment"):
            if kwargs.pop(k, None) is not None:
                raise ValueError(f"BatchNormalization: {k} is not supported")
        super().__init__(**kwargs)
        if not isinstance(axis, int):
            raise ValueError(f"BatchNormalization: axis must be an int (the features axis), got {axis!r}")
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"BatchNormalization: momentum must be in [0, 1], got {momentum!r}")
        if not float(epsilon) > 0.0:
            raise ValueError(f"BatchNormalization: epsilon must be > 0, got {epsilon!r}")
        self.axis, self.momentum, self.epsilon = axis, float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = _initializers.get(beta_initializer)
        self.gamma_initializer = _initializers.get(gamma_initializer)
        self.moving_mean_initializer = _initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = _initializers.get(moving_variance_initializer)
        self.beta_regularizer = _regularizers.get(beta_regularizer)
        self.gamma_regularizer = _regularizers.get(gamma_regularizer)
        self.beta_constraint = _constraints.get(beta_constraint)
        self.gamma_constraint = _constraints.get(gamma_constraint)
        self.synchronized = bool(synchronized)
        self.gamma: Tensor | None = None
        self.beta: Tensor | None = None
        if self._batch_input_shape is not None:
            self._maybe_build(self._batch_input_shape)

    def _check_input_shape(self, shape) -> None:
        if isinstance(shape, list):
            raise ValueError(f"BatchNormalization layer '{self.name}' takes one input, got {len(shape)}")
        nd = len(shape)
        if nd < 2 or self.axis % nd != nd - 1:
            raise ValueError(
                f"BatchNormalization layer '{self.name}': only the last axis can be normalized (axis=-1), "
                f"got axis={self.axis} for inputs of shape {shape}"
            )
        if shape[-1] is None:
            raise ValueError(
                f"BatchNormalization layer '{self.name}': the features axis must be defined, got {shape}"
            )

    def build(self, input_shape) -> None:
        self._check_input_shape(tuple(input_shape))
        c = int(input_shape[-1])
        names = []
        if self.scale:
            self.gamma = Parameter(self.gamma_initializer((c,)))
            names.append("gamma")
        if self.center:
            self.beta = Parameter(self.beta_initializer((c,)))
            names.append("beta")
        self.register_buffer("moving_mean", self.moving_mean_initializer((c,)).detach())
        self.register_buffer("moving_variance", self.moving_variance_initializer((c,)).detach())
        object.__setattr__(self, "_weight_names", [*names, "moving_mean", "moving_variance"])
        reg = [
            (n, r)
            for n, r in (("gamma", self.gamma_regularizer), ("beta", self.beta_regularizer))
            if r and n in names
        ]
        con = [
            (n, k)
            for n, k in (("gamma", self.gamma_constraint), ("beta", self.beta_constraint))
            if k and n in names
        ]
        object.__setattr__(self, "_regularized", reg)
        object.__setattr__(self, "_constrained", con)

    def _normalize(self, x: Tensor, activation: str | None) -> Tensor:
        shape = tuple(x.shape)
        flat = x if x.ndim == 2 else x.reshape(-1, shape[-1])
        mm, mv = self.moving_mean, self.moving_variance
        if self.training and self.trainable:
            # The kernel updates running = (1 - m) running + m batch with the unbiased
            # variance (PyTorch's); Keras's momentum k is m = 1 - k, and its moving variance
            # takes the biased one: scaling the moving variance by n/(n-1) before and back
            # after gives k * moving + (1 - k) * biased exactly.
            n = flat.shape[0]
            unbias = n / (n - 1.0) if n > 1 else 1.0
            with no_grad():
                mv.mul_(unbias)
            try:
                y = _core.batch_norm(
                    flat, self.gamma, self.beta, mm, mv, True, 1.0 - self.momentum, self.epsilon, activation
                )
            finally:
                with no_grad():
                    mv.div_(unbias)
        else:
            y = _core.batch_norm(flat, self.gamma, self.beta, mm, mv, False, 0.0, self.epsilon, activation)
        return y if x.ndim == 2 else y.reshape(*shape)

    def call(self, inputs):
        return self._normalize(inputs, None)

    def _fused_with(self, nxt: Layer):
        if type(self) is not BatchNormalization or self.activity_regularizer or nxt.activity_regularizer:
            return None
        if _fusable(nxt) == ("relu", None):
            return lambda x: self._normalize(x, "relu")
        return None

    def compute_output_shape(self, input_shape):
        return input_shape

    def _expected_shapes(self) -> dict | None:
        s = self._build_shape
        if s is None or isinstance(s[0], list) or s[-1] is None:
            return None
        c = (int(s[-1]),)
        out = {}
        if self.scale:
            out["gamma"] = c
        if self.center:
            out["beta"] = c
        return {**out, "moving_mean": c, "moving_variance": c}

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": _initializers.serialize(self.beta_initializer),
            "gamma_initializer": _initializers.serialize(self.gamma_initializer),
            "moving_mean_initializer": _initializers.serialize(self.moving_mean_initializer),
            "moving_variance_initializer": _initializers.serialize(self.moving_variance_initializer),
            "beta_regularizer": _regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": _regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": _constraints.serialize(self.beta_constraint),
            "gamma_constraint": _constraints.serialize(self.gamma_constraint),
            "synchronized": self.synchronized,
        }


class LayerNormalization(Layer):
    """Normalizes each sample over the last axis: (x - mean) / sqrt(var + epsilon) * gamma +
    beta (Keras's default epsilon 1e-3)."""

    def __init__(
        self,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        **kwargs,
    ):
        kwargs.pop("rms_scaling", None)
        super().__init__(**kwargs)
        if not isinstance(axis, int):
            raise ValueError(f"LayerNormalization: axis must be -1 (the last axis), got {axis!r}")
        self.axis, self.epsilon, self.center, self.scale = (
            int(axis),
            float(epsilon),
            bool(center),
            bool(scale),
        )
        self.beta_initializer = _initializers.get(beta_initializer)
        self.gamma_initializer = _initializers.get(gamma_initializer)
        self.beta_regularizer = _regularizers.get(beta_regularizer)
        self.gamma_regularizer = _regularizers.get(gamma_regularizer)
        self.beta_constraint = _constraints.get(beta_constraint)
        self.gamma_constraint = _constraints.get(gamma_constraint)
        self.gamma: Tensor | None = None
        self.beta: Tensor | None = None

    def build(self, input_shape) -> None:
        if self.axis % len(input_shape) != len(input_shape) - 1 or input_shape[-1] is None:
            raise ValueError(
                f"LayerNormalization layer '{self.name}': only a defined last axis can be normalized, "
                f"got axis={self.axis} for inputs of shape {tuple(input_shape)}"
            )
        c = (int(input_shape[-1]),)
        names = []
        if self.scale:
            self.gamma = Parameter(self.gamma_initializer(c))
            names.append("gamma")
        if self.center:
            self.beta = Parameter(self.beta_initializer(c))
            names.append("beta")
        object.__setattr__(self, "_weight_names", names)
        reg = [
            (n, r)
            for n, r in (("gamma", self.gamma_regularizer), ("beta", self.beta_regularizer))
            if r and n in names
        ]
        con = [
            (n, k)
            for n, k in (("gamma", self.gamma_constraint), ("beta", self.beta_constraint))
            if k and n in names
        ]
        object.__setattr__(self, "_regularized", reg)
        object.__setattr__(self, "_constrained", con)

    def call(self, inputs):
        mean = inputs.mean(dim=-1, keepdim=True)
        d = inputs - mean
        y = d / ((d * d).mean(dim=-1, keepdim=True) + self.epsilon).sqrt()
        if self.gamma is not None:
            y = y * self.gamma
        if self.beta is not None:
            y = y + self.beta
        return y

    def compute_output_shape(self, input_shape):
        return input_shape

    def _expected_shapes(self) -> dict | None:
        s = self._build_shape
        if s is None or isinstance(s[0], list) or s[-1] is None:
            return None
        c = (int(s[-1]),)
        return {**({"gamma": c} if self.scale else {}), **({"beta": c} if self.center else {})}

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": _initializers.serialize(self.beta_initializer),
            "gamma_initializer": _initializers.serialize(self.gamma_initializer),
            "beta_regularizer": _regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": _regularizers.serialize(self.gamma_regularizer),
            "beta_constraint": _constraints.serialize(self.beta_constraint),
            "gamma_constraint": _constraints.serialize(self.gamma_constraint),
        }


# ---------------------------------------------------------------------------- reshaping


class Flatten(Layer):
    """Flattens every dim but the batch dim: (N, a, b) -> (N, a * b)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format

    def call(self, inputs):
        return inputs.reshape(inputs.shape[0], -1)

    def compute_output_shape(self, input_shape):
        rest = tuple(input_shape)[1:]
        return (input_shape[0], None if any(d is None for d in rest) else int(np.prod(rest, dtype=np.int64)))

    def _expected_shapes(self) -> dict:
        return {}

    def get_config(self) -> dict:
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """Reshapes each sample to `target_shape` (without the batch dim; one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in self.target_shape) > 1 or any(d == 0 or d < -1 for d in self.target_shape):
            raise ValueError(
                f"Reshape: target_shape must have positive dims and at most one -1, got {target_shape}"
            )

    def call(self, inputs):
        return inputs.reshape(inputs.shape[0], *self.target_shape)

    def compute_output_shape(self, input_shape):
        rest = tuple(input_shape)[1:]
        known = int(np.prod([d for d in self.target_shape if d != -1], dtype=np.int64))
        if -1 in self.target_shape:
            if any(d is None for d in rest):
                return (input_shape[0], *[None if d == -1 else d for d in self.target_shape])
            total = int(np.prod(rest, dtype=np.int64))
            if total % known:
                raise ValueError(
                    f"Reshape layer '{self.name}': cannot reshape {tuple(input_shape)} to {self.target_shape}"
                )
            return (input_shape[0], *[total // known if d == -1 else d for d in self.target_shape])
        if all(d is not None for d in rest) and int(np.prod(rest, dtype=np.int64)) != known:
            raise ValueError(
                f"Reshape layer '{self.name}': cannot reshape {tuple(input_shape)} to {self.target_shape}"
            )
        return (input_shape[0], *self.target_shape)

    def _expected_shapes(self) -> dict:
        return {}

    def get_config(self) -> dict:
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Lambda(Layer):
    """Wraps a function of tensors as a layer: `Lambda(lambda x: x * 2)`. It holds code, so
    a model containing one cannot be saved with its architecture (save its weights)."""

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda: function must be callable, got {type(function).__name__}")
        self.function, self.arguments = function, dict(arguments or {})
        self._output_shape = output_shape

    def call(self, inputs):
        return self.function(inputs, **self.arguments)

    def compute_output_shape(self, input_shape):
        if self._output_shape is None:
            return self._traced_output_shape(input_shape)
        if callable(self._output_shape):
            return self._output_shape(input_shape)
        return (input_shape[0] if not isinstance(input_shape, list) else None, *tuple(self._output_shape))

    def get_config(self) -> dict:
        raise ValueError(
            f"Lambda layer '{self.name}' holds Python code, which ferrograd does not save; save the "
            "weights (model.save_weights) and rebuild the model in code, or write a Layer subclass"
        )


# ---------------------------------------------------------------------------- merging


class _Merge(Layer):
    """A layer combining a list of same-shaped inputs elementwise."""

    def _check_input_shape(self, shapes) -> None:
        name = type(self).__name__
        if not isinstance(shapes, list) or len(shapes) < 2:
            raise ValueError(f"A {name} layer '{self.name}' should be called on a list of at least 2 inputs")
        first = tuple(shapes[0])
        for s in shapes[1:]:
            s = tuple(s)
            if len(s) != len(first) or any(
                a is not None and b is not None and a != b for a, b in zip(s[1:], first[1:])
            ):
                raise ValueError(
                    f"{name} layer '{self.name}': inputs must have the same shape, got "
                    f"{[tuple(x) for x in shapes]}"
                )

    def build(self, input_shape) -> None:
        self._check_input_shape(list(input_shape))

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError(f"A {type(self).__name__} layer should be called on a list of at least 2 inputs")
        for t in inputs[1:]:
            if tuple(t.shape) != tuple(inputs[0].shape):
                raise ShapeError(
                    f"{type(self).__name__} layer '{self.name}': inputs must have the same shape, got "
                    f"{[tuple(t.shape) for t in inputs]}"
                )
        return self._merge(list(inputs))

    def _merge(self, xs: list[Tensor]) -> Tensor:
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        first = list(input_shape[0])
        for s in input_shape[1:]:
            first = [a if a is not None else b for a, b in zip(first, s)]
        return tuple(first)

    def _expected_shapes(self) -> dict:
        return {}


class Add(_Merge):
    """The elementwise sum of its inputs: `Add()([x, y])` (a skip connection)."""

    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Subtract(_Merge):
    """inputs[0] - inputs[1] (exactly two inputs)."""

    def _check_input_shape(self, shapes) -> None:
        super()._check_input_shape(shapes)
        if len(shapes) != 2:
            raise ValueError(
                f"Subtract layer '{self.name}' should be called on exactly 2 inputs, got {len(shapes)}"
            )

    def _merge(self, xs):
        if len(xs) != 2:
            raise ValueError(
                f"Subtract layer '{self.name}' should be called on exactly 2 inputs, got {len(xs)}"
            )
        return xs[0] - xs[1]


class Multiply(_Merge):
    """The elementwise product of its inputs."""

    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = out * x
        return out


class Average(_Merge):
    """The elementwise mean of its inputs."""

    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out / float(len(xs))


class Maximum(_Merge):
    """The elementwise maximum of its inputs."""

    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = _core.where(x > out, x, out)
        return out


class Minimum(_Merge):
    """The elementwise minimum of its inputs."""

    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = _core.where(x < out, x, out)
        return out


class Concatenate(Layer):
    """Joins its inputs along `axis` (default the last): `Concatenate()([x, y])`."""

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _check_input_shape(self, shapes) -> None:
        if not isinstance(shapes, list) or len(shapes) < 2:
            raise ValueError(
                f"A Concatenate layer '{self.name}' should be called on a list of at least 2 inputs"
            )
        nd = len(shapes[0])
        ax = self.axis % nd
        if ax == 0:
            raise ValueError(f"Concatenate layer '{self.name}': cannot join along the batch axis")
        for s in shapes:
            if len(s) != nd or any(
                i != ax and a is not None and b is not None and a != b
                for i, (a, b) in enumerate(zip(s, shapes[0]))
            ):
                raise ValueError(
                    f"Concatenate layer '{self.name}' requires inputs with matching shapes except for the "
                    f"concatenation axis {self.axis}, got {[tuple(x) for x in shapes]}"
                )

    def build(self, input_shape) -> None:
        self._check_input_shape(list(input_shape))

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError("A Concatenate layer should be called on a list of at least 2 inputs")
        return _core.cat(list(inputs), self.axis)

    def compute_output_shape(self, input_shape):
        nd = len(input_shape[0])
        ax = self.axis % nd
        out = list(input_shape[0])
        sizes = [s[ax] for s in input_shape]
        out[ax] = None if any(d is None for d in sizes) else int(sum(sizes))
        return tuple(out)

    def _expected_shapes(self) -> dict:
        return {}

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


def add(inputs, **kwargs):
    """`Add(**kwargs)(inputs)` (Keras's functional form)."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """`Subtract(**kwargs)(inputs)`."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """`Multiply(**kwargs)(inputs)`."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """`Average(**kwargs)(inputs)`."""
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """`Maximum(**kwargs)(inputs)`."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """`Minimum(**kwargs)(inputs)`."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis: int = -1, **kwargs):
    """`Concatenate(axis, **kwargs)(inputs)`."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def deserialize(config: dict, custom_objects: dict | None = None) -> Layer:
    """A layer (or a nested model) from Keras's saved form `{"class_name": ..., "config":
    ...}`: only ferrograd.keras's classes, or those the caller passes in `custom_objects`
    (or a `custom_object_scope`). Arguments must be plain data; ValueError names a problem."""
    with _scope.custom_object_scope(custom_objects):
        if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
            raise ValueError(f"not a layer config: {config!r:.80}")
        name = config["class_name"]
        cls = _scope.lookup(name) or BUILTIN_LAYERS.get(name)
        if cls is None:
            raise ValueError(
                f"unknown layer class {name!r}: only ferrograd.keras's layers are built from a saved "
                f"model; pass custom_objects={{{name!r}: cls}} to build another"
            )
        if not (isinstance(cls, type) and issubclass(cls, Layer)):
            raise TypeError(f"custom object {name!r} is not a Layer subclass")
        args = _scope.check_arguments(name, config.get("config", {}))
        return cls.from_config(args)


def serialize(layer: Layer) -> dict:
    """Keras's saved form of a layer: `{"class_name": ..., "config": layer.get_config()}`."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


__all__ = [
    "Layer",
    "InputLayer",
    "Input",
    "KerasTensor",
    "Dense",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "Softmax",
    "Dropout",
    "AlphaDropout",
    "GaussianNoise",
    "GaussianDropout",
    "BatchNormalization",
    "LayerNormalization",
    "Flatten",
    "Reshape",
    "Lambda",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "add",
    "subtract",
    "multiply",
    "average",
    "maximum",
    "minimum",
    "concatenate",
    "serialize",
    "deserialize",
]
