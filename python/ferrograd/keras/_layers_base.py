"""The base of Keras's layers (see `ferrograd.keras.layers`): symbolic tensors
(`KerasTensor`, `Node`), `Layer` and its helpers, and the merge layers (`Add`, `Subtract`,
`Multiply`, `Average`, `Maximum`, `Minimum`, `Concatenate` and their functions), which live
here because `x + y`, `x - y` and `x * y` on symbolic tensors build them."""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import _core
from .._core import ShapeError, Tensor
from ..autograd import no_grad
from ..nn.module import Module, Parameter
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
