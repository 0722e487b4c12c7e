"""Keras's core layers (see `ferrograd.keras.layers`): `InputLayer` / `Input`, `Dense`,
the activation layers (`Activation`, `ReLU`, `LeakyReLU`, `ELU`, `Softmax`), the
regularization layers (`Dropout`, `AlphaDropout`, `GaussianNoise`, `GaussianDropout`) and
the reshaping ones (`Flatten`, `Reshape`, `Lambda`)."""

from __future__ import annotations

import math

import numpy as np

from .. import _core
from .._core import ShapeError, Tensor
from ..nn.module import Parameter
from . import activations as _activations
from . import constraints as _constraints
from . import initializers as _initializers
from . import regularizers as _regularizers
from ._layers_base import KerasTensor, Layer, Node, _plain_shape, _positive_int, _rate
from .backend import unique_name

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
