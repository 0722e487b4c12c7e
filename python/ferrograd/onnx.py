"""Export to ONNX (`fg.onnx.export`), so a trained network runs in ONNX Runtime, TensorRT,
OpenVINO and the rest of the production tools.

The graph is written with the `onnx` package's helpers and checked by its checker (install
it with ``pip install onnx``; running the file needs ``onnxruntime``). What is exported is
inference: batch norm with its running statistics, dropout and alpha dropout as identity,
whatever mode the model is in. The batch dimension is dynamic. Supported modules: the
layer API's (Linear, BatchNorm1d, the activations ReLU, SELU, ELU, CELU, GELU, LeakyReLU,
Sigmoid, Tanh, SiLU, Softplus, Hardtanh, ReLU6, Hardsigmoid, Hardswish, Softsign, Softmax,
LogSoftmax, Identity, Dropout, AlphaDropout, Flatten, Residual blocks, Sequential) and the
Keras face's Sequential models of Dense, Dropout, BatchNormalization and Activation layers.
Any other module is refused by name, never exported wrong.

    fg.onnx.export(model, fg.randn(1, 784), "model.onnx")

or from the shell: ``ferrograd export model.safetensors model.onnx``.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from . import keras as K
from ._core import Tensor, from_numpy
from ._modelinfo import device_of
from .autograd import no_grad
from .nn import layers as L
from .nn.module import Module
from .nn.preprocessing import Standardizer

__all__ = ["export"]

_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def _onnx():
    try:
        import onnx  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError as e:
        raise ImportError("fg.onnx.export needs the onnx package: pip install onnx") from e
    return onnx


def _array(t: Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)


class _Graph:
    """The nodes and initializers of the graph being written, with fresh names."""

    def __init__(self, onnx: Any, opset: int):
        self.onnx, self.h, self.opset = onnx, onnx.helper, opset
        self.nodes: list = []
        self.inits: list = []
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def const(self, stem: str, value: Any) -> str:
        n = self.name(stem)
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(value, dtype=np.float32), n))
        return n

    def op(self, kind: str, inputs: list[str], **attrs) -> str:
        out = self.name(kind.lower())
        self.nodes.append(self.h.make_node(kind, inputs, [out], name=out, **attrs))
        return out


def _unsupported(where: str, m: Module) -> ValueError:
    return ValueError(
        f"onnx.export: {where or 'the model'} is a {type(m).__name__}, which cannot be exported "
        f"(see ferrograd.onnx for the supported modules)"
    )


def _activation(g: _Graph, m: Any, x: str, where: str) -> str:
    """The ONNX nodes of one of the layer API's activations."""
    t = type(m)
    simple = {L.ReLU: "Relu", L.Sigmoid: "Sigmoid", L.Tanh: "Tanh", L.Softsign: "Softsign"}
    if t in simple:
        return g.op(simple[t], [x])
    if t is L.SELU:
        return g.op("Selu", [x], alpha=_SELU_ALPHA, gamma=_SELU_SCALE)
    if t is L.ELU:
        return g.op("Elu", [x], alpha=float(m.alpha))
    if t is L.CELU:
        return g.op("Celu", [x], alpha=float(m.alpha))
    if t is L.LeakyReLU:
        return g.op("LeakyRelu", [x], alpha=float(m.negative_slope))
    if t is L.GELU:
        if g.opset >= 20:
            return g.op("Gelu", [x], approximate=m.approximate)
        if m.approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
            x3 = g.op("Mul", [g.op("Mul", [x, x]), x])
            inner = g.op("Add", [x, g.op("Mul", [x3, g.const("c", np.float32(0.044715))])])
            th = g.op("Tanh", [g.op("Mul", [inner, g.const("k", np.float32(math.sqrt(2 / math.pi)))])])
            one_plus = g.op("Add", [th, g.const("one", np.float32(1.0))])
        else:  # 0.5 x (1 + erf(x / sqrt(2)))
            e = g.op("Erf", [g.op("Mul", [x, g.const("r", np.float32(1 / math.sqrt(2)))])])
            one_plus = g.op("Add", [e, g.const("one", np.float32(1.0))])
        return g.op("Mul", [g.op("Mul", [x, one_plus]), g.const("half", np.float32(0.5))])
    if t is L.SiLU:
        return g.op("Mul", [x, g.op("Sigmoid", [x])])
    if t is L.Softplus:
        if float(m.beta) != 1.0:
            raise ValueError(f"onnx.export: {where} is Softplus(beta={m.beta}); ONNX's Softplus has beta 1")
        return g.op("Softplus", [x])
    if t in (L.Hardtanh, L.ReLU6):
        lo, hi = (0.0, 6.0) if t is L.ReLU6 else (float(m.min_val), float(m.max_val))
        return g.op("Clip", [x, g.const("lo", np.float32(lo)), g.const("hi", np.float32(hi))])
    if t is L.Hardsigmoid:
        return g.op("HardSigmoid", [x], alpha=1 / 6, beta=0.5)
    if t is L.Hardswish:
        return g.op("HardSwish", [x])
    if t in (L.Softmax, L.LogSoftmax):
        if m.dim is None:
            raise ValueError(
                f"onnx.export: {where} is {t.__name__}() without dim; PyTorch's implicit dim depends on "
                "the input's rank, so give it (dim=-1 for the class dim of (N, C) scores)"
            )
        return g.op(t.__name__, [x], axis=int(m.dim))
    raise _unsupported(where, m)


def _module(g: _Graph, m: Any, x: str, where: str) -> str:
    """The ONNX nodes computing module `m` at inference from the value named `x`."""
    t = type(m)
    if isinstance(m, L.Sequential):
        for name, child in m._modules.items():
            x = _module(g, child, x, f"{where}.{name}" if where else name)
        return x
    if t is L.Linear:
        w = g.const("weight", _array(m.weight))
        inputs = [x, w] + ([g.const("bias", _array(m.bias))] if m.bias is not None else [])
        return g.op("Gemm", inputs, transB=1)
    if t is L.BatchNorm1d:
        if m.running_mean is None or m.running_var is None:
            raise ValueError(
                f"onnx.export: {where} has track_running_stats=False (it normalizes with each "
                "batch's statistics, even in evaluation); only running statistics export"
            )
        c = m.num_features
        scale = _array(m.weight) if m.weight is not None else np.ones(c, np.float32)
        shift = _array(m.bias) if m.bias is not None else np.zeros(c, np.float32)
        ins = [x, g.const("gamma", scale), g.const("beta", shift)]
        ins += [g.const("mean", _array(m.running_mean)), g.const("var", _array(m.running_var))]
        return g.op("BatchNormalization", ins, epsilon=float(m.eps))
    if t in (L.Dropout, L.AlphaDropout, L.Identity):
        return g.op("Identity", [x])
    if t is L.Flatten:
        if (m.start_dim, m.end_dim) != (1, -1):
            raise ValueError(
                f"onnx.export: {where} flattens dims {m.start_dim}..{m.end_dim}; only 1..-1 exports"
            )
        return g.op("Flatten", [x], axis=1)
    if t is L.Residual:
        y = _module(g, m.body, x, f"{where}.body")
        skip = _module(g, m.projection, x, f"{where}.projection") if m.projection is not None else x
        return g.op("Add", [skip, y])
    if t is Standardizer:  # (x - mean) / std, NaN -> 0
        z = g.op("Div", [g.op("Sub", [x, g.const("mean", _array(m.mean))]), g.const("std", _array(m.std))])
        return g.op("Where", [g.op("IsNaN", [z]), g.const("zero", np.float32(0.0)), z])
    if isinstance(m, L._Activation):
        return _activation(g, m, x, where)
    keras = _keras_layer(g, m, x, where)
    if keras is not None:
        return keras
    raise _unsupported(where, m)


def _keras_layer(g: _Graph, m: Any, x: str, where: str) -> str | None:
    """The Keras face's layers (Dense with its activation, Dropout, BatchNormalization,
    Activation) and Sequential models; None for anything else."""
    layers = K.layers
    if isinstance(m, K.Sequential):
        for layer in m.layers:
            x = _module(g, layer, x, f"{where}.{layer.name}" if where else layer.name)
        return x
    if type(m) is layers.Dense:
        kernel = _array(m.kernel)  # (in, out): x @ kernel + bias
        ins = [x, g.const("kernel", kernel)] + (
            [g.const("bias", _array(m.bias))] if m.bias is not None else []
        )
        y = g.op("Gemm", ins)
        return _keras_activation(g, m.activation, y, where)
    if type(m) is layers.Dropout:
        return g.op("Identity", [x])
    if type(m) is layers.BatchNormalization:
        c = int(m.moving_mean.shape[0])
        scale = _array(m.gamma) if m.scale and m.gamma is not None else np.ones(c, np.float32)
        shift = _array(m.beta) if m.center and m.beta is not None else np.zeros(c, np.float32)
        ins = [x, g.const("gamma", scale), g.const("beta", shift)]
        ins += [g.const("mean", _array(m.moving_mean)), g.const("var", _array(m.moving_variance))]
        return g.op("BatchNormalization", ins, epsilon=float(m.epsilon))
    if type(m) is layers.Activation:
        return _keras_activation(g, m.activation, x, where)
    return None


def _keras_activation(g: _Graph, act, x: str, where: str) -> str:
    """A Keras activation (by its name) after a layer."""
    name = getattr(act, "__name__", act) if act is not None else "linear"
    table = {
        "relu": "Relu",
        "sigmoid": "Sigmoid",
        "tanh": "Tanh",
        "softsign": "Softsign",
        "softplus": "Softplus",
    }
    if name in (None, "linear"):
        return x
    if name in table:
        return g.op(table[name], [x])
    if name == "softmax":
        return g.op("Softmax", [x], axis=-1)
    if name == "selu":
        return g.op("Selu", [x], alpha=_SELU_ALPHA, gamma=_SELU_SCALE)
    if name == "elu":
        return g.op("Elu", [x], alpha=1.0)
    if name == "gelu":
        return _activation(g, L.GELU(), x, where)
    raise ValueError(f"onnx.export: {where} has activation {name!r}, which cannot be exported")


def export(
    model: Module,
    example_input,
    path: str | os.PathLike,
    opset: int = 17,
    input_name: str = "input",
    output_name: str = "output",
) -> None:
    """Writes `model`'s inference graph to `path` as ONNX (float32, dynamic batch size).

    `example_input` (a Tensor or array of shape (N, features...)) fixes the feature dims and
    is run through the model once to check the export's shape. Raises ValueError naming the
    first module that cannot be exported; nothing is written then.
    """
    onnx = _onnx()
    if not isinstance(opset, int) or opset < 13:
        raise ValueError(f"onnx.export: opset must be an int of at least 13, got {opset!r}")
    if not isinstance(model, Module):
        raise TypeError(f"onnx.export: expected a Module, got {type(model).__name__}")
    x = (
        example_input
        if isinstance(example_input, Tensor)
        else from_numpy(np.asarray(example_input, np.float32))
    )
    if x.ndim < 2:
        raise ValueError(f"onnx.export: example_input must be (N, features...), got shape {tuple(x.shape)}")
    g = _Graph(onnx, opset)
    first = g.op("Identity", [input_name])
    last = _module(g, model, first, "")
    g.nodes.append(onnx.helper.make_node("Identity", [last], [output_name], name="output"))
    was = model.training
    model.eval()
    try:
        with no_grad():
            out = model(x.to(device_of(model)))
    finally:
        model.train(was)
    elem = onnx.TensorProto.FLOAT
    graph = onnx.helper.make_graph(
        g.nodes,
        type(model).__name__,
        [onnx.helper.make_tensor_value_info(input_name, elem, ["batch", *x.shape[1:]])],
        [onnx.helper.make_tensor_value_info(output_name, elem, ["batch", *out.shape[1:]])],
        g.inits,
    )
    proto = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", opset)], producer_name="ferrograd"
    )
    proto.ir_version = min(proto.ir_version, 9)  # readable by older runtimes too
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, os.fspath(path))
