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

from ..nn.module import Module as Module
from . import _scope
from ._layers_base import BUILD as BUILD
from ._layers_base import BUILTIN_LAYERS as BUILTIN_LAYERS
from ._layers_base import (
    Add,
    Average,
    Concatenate,
    KerasTensor,
    Layer,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
    add,
    average,
    concatenate,
    maximum,
    minimum,
    multiply,
    subtract,
)
from ._layers_base import Node as Node
from ._layers_base import Shape as Shape
from ._layers_base import _convert as _convert
from ._layers_base import _is_symbolic as _is_symbolic
from ._layers_base import _plain_shape as _plain_shape
from ._layers_base import _shape_of as _shape_of
from ._layers_base import to_tensor as to_tensor
from ._layers_core import (
    ELU,
    Activation,
    AlphaDropout,
    Dense,
    Dropout,
    Flatten,
    GaussianDropout,
    GaussianNoise,
    Input,
    InputLayer,
    Lambda,
    LeakyReLU,
    ReLU,
    Reshape,
    Softmax,
)
from ._layers_norm import BatchNormalization, LayerNormalization


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
