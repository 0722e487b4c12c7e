"""Keras's `Model` (functional and subclassed), `Functional` and `Sequential`: the
functional graph and its compiled forward pass, calling, `summary`, the architecture as
Keras's config and `save_model` (see `ferrograd.keras.models`; the training API is
`_training._Trainer`, `Model`'s base, and `load_model` is in `_saving`)."""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

import numpy as np

from .. import _core
from .. import io as _io
from .._core import Tensor
from ..autograd import no_grad
from . import _scope
from . import layers as _layers
from . import losses as _losses
from . import metrics as _metrics
from . import optimizers as _optimizers
from ._graph import _flatten_tensors, _Graph, _topological_nodes
from ._training import _device_of, _float_tensor, _Trainer
from .backend import unique_name
from .layers import InputLayer, KerasTensor, Layer, Node

# ---------------------------------------------------------------------------- Model


class Model(_Trainer):
    """A Keras model. Three ways to make one, as in Keras:

    - functional: `Model(inputs, outputs)` from symbolic tensors (`Input` and layer calls);
    - `Sequential([...])` (its own class);
    - subclassing: define layers in `__init__` and the computation in `call(inputs)`.

    Then `compile(optimizer, loss, metrics)`, `fit(x, y, ...)`, `evaluate`, `predict`.
    """

    _manages_build = True
    # set through object.__setattr__ in __init__ (declared for type checkers)
    _graph: _Graph | None
    _plans: dict[bool, _Plan]

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

    def build(self, input_shape=None) -> None:
        """Builds a subclassed model's weights by running it on zeros of `input_shape`."""
        if self._graph is not None or input_shape is None:
            return
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        xs = [_core.zeros([2 if d is None else int(d) for d in s], None) for s in shapes]
        with no_grad():
            self.call(xs[0] if len(xs) == 1 else xs)

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


# ---------------------------------------------------------------------------- plans


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


# ---------------------------------------------------------------------------- save

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
