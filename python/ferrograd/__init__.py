"""ferrograd: tensors, reverse-mode autograd and feed-forward networks, with a Rust engine.

>>> import ferrograd as fg
>>> x = fg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
tensor([[2., 4.],
        [6., 8.]])

This file only re-exports. The functions live in private modules: `_creation` (making
tensors, the generator's state), `_ops` (the elementwise table), `_functional` (the other
functional forms), `_device`, `_dtypes` and `_version`; the layers of the library are the
submodules: `nn` (modules, layers, losses, configs), `optim`, `io` (checkpoints), `train`
(Keras's loop and `train.Model`), `callbacks`, `models` (the builders), `data`.
"""

from __future__ import annotations

# The library's layers, as submodules (each imports only the ones below it; see
# tests/test_layering.py), and the private modules this file re-exports from.
from . import _autograd_functional as _autograd_functional  # binds fg.autograd.functional
from . import (
    _composite,
    _indexing,
    _namespace,
    _ops,
    _sampling,
    _statistics,
    _surface,
    amp,
    autograd,
    callbacks,
    cpu,
    data,
    gpu,
    io,
    linalg,
    losses,
    models,
    nn,
    optim,
    return_types,
    train,
    utils,
)
from . import _core as _core
from . import accelerator as accelerator  # torch.accelerator: the GPU, whatever scripts call it
from . import backends as backends  # torch.backends: mps/cudnn answer False, their flags are inert
from . import diagnostics as diagnostics  # why a network is not learning: fg.diagnose, the monitor
from . import distributed as distributed  # data-parallel training on MPI
from . import gpu as cuda  # PyTorch's name for the GPU controls: fg.cuda.is_available()
from . import keras as keras  # Keras's API on this engine: fg.keras.models.Sequential, ...
from . import onnx as onnx  # export to ONNX: fg.onnx.export (the onnx package is imported on use)
from . import tune as tune  # hyperparameter tuning: fg.tune.learning_rate, fg.tune.recipe
from ._composite import *  # noqa: F403  (composed ops: shape, scans, math; also Tensor methods)
from ._core import (
    ArgumentError,
    DeviceError,
    DTypeError,
    EmptyReductionError,
    GradFn,
    InternalError,
    OutOfRangeError,
    ShapeError,
    Tensor,
    get_num_threads,
    is_grad_enabled,
    manual_seed,
    set_num_threads,
)
from ._core import dtype as dtype
from ._creation import (
    arange,
    empty,
    empty_like,
    eye,
    from_dlpack,
    from_numpy,
    full,
    full_like,
    get_rng_state,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    set_rng_state,
    tensor,
    zeros,
    zeros_like,
)
from ._device import device, devices, gpu_available
from ._dtypes import bfloat16, bool_, float16, float32, float64, int32, int64, uint8
from ._dtypes import bool as bool  # PyTorch's aliases
from ._dtypes import double as double
from ._dtypes import float as float
from ._dtypes import half as half
from ._dtypes import int as int
from ._dtypes import long as long
from ._format import tensor_repr as _tensor_repr
from ._functional import (
    all,
    allclose,
    any,
    argmax,
    argmin,
    argsort,
    bmm,
    cat,
    chunk,
    dot,
    equal,
    flatten,
    gather,
    index_select,
    is_tensor,
    linear,
    log_softmax,
    logical_and,
    logical_or,
    logical_xor,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mm,
    mv,
    numel,
    one_hot,
    outer,
    permute,
    reshape,
    softmax,
    sort,
    split,
    squeeze,
    stack,
    sum,
    t,
    take_along_dim,
    topk,
    transpose,
    unbind,
    unsqueeze,
    var,
    where,
)
from ._functional import concatenate as concatenate  # NumPy's name for cat
from ._namespace import *  # noqa: F403  (finfo, as_tensor, tensordot, addmm, compile, ...)
from ._ops import *  # noqa: F403  (the elementwise functions: its public names are exactly them)
from ._sampling import *  # noqa: F403  (bernoulli, multinomial, normal, poisson)
from ._statistics import *  # noqa: F403  (nan-reductions, quantiles, histc, searchsorted, kron, ...)
from ._surface import *  # noqa: F403  (operator forms, more composed math, in-place variants)
from ._version import __version__ as __version__
from .amp import GradScaler, autocast  # mixed precision, as torch.autocast / torch.amp.GradScaler
from .autograd import enable_grad, inference_mode, no_grad, set_grad_enabled
from .diagnostics import diagnose
from .errors import IntegerDivisionError, TrainingWarning
from .io import load, save
from .linalg import det, inverse, logdet, matrix_power, pinverse, slogdet  # torch.* spellings
from .linalg import torch_cholesky as cholesky
from .linalg import torch_norm as norm
from .linalg import torch_qr as qr
from .linalg import torch_svd as svd
from .nn import parallel as _nn_parallel  # noqa: F401  (binds fg.nn.parallel, PyTorch's name)

__all__ = [
    "autocast",
    "GradScaler",
    "amp",
    "Tensor",
    "GradFn",
    "dtype",
    "float32",
    "float64",
    "int64",
    "bool_",
    "float16",
    "bfloat16",
    "uint8",
    "int32",
    "ShapeError",
    "DTypeError",
    "ArgumentError",
    "OutOfRangeError",
    "EmptyReductionError",
    "DeviceError",
    "InternalError",
    "tensor",
    "from_numpy",
    "from_dlpack",
    "zeros",
    "ones",
    "full",
    "arange",
    "eye",
    "rand",
    "randn",
    "randint",
    "randperm",
    "zeros_like",
    "ones_like",
    "full_like",
    "rand_like",
    "randn_like",
    "manual_seed",
    "matmul",
    "linear",
    "maximum",
    "minimum",
    "where",
    "cat",
    "stack",
    "index_select",
    "one_hot",
    "sum",
    "mean",
    "var",
    "max",
    "min",
    "argmax",
    "argmin",
    "any",
    "all",
    "reshape",
    "flatten",
    "transpose",
    "permute",
    "unsqueeze",
    "squeeze",
    "t",
    "split",
    "chunk",
    "unbind",
    "mm",
    "bmm",
    "mv",
    "dot",
    "outer",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logsumexp",
    "softmax",
    "log_softmax",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "set_num_threads",
    "get_num_threads",
    "autograd",
    "devices",
    "gpu_available",
    "gpu",
    "cpu",
    "cuda",
    "device",
    "linspace",
    "inference_mode",
    "sort",
    "argsort",
    "topk",
    "take_along_dim",
    "gather",
    "empty",
    "empty_like",
    "is_tensor",
    "numel",
    "allclose",
    "equal",
    "get_rng_state",
    "set_rng_state",
    "nn",
    "optim",
    "losses",
    "models",
    "train",
    "tune",
    "callbacks",
    "return_types",
    "utils",
    "data",
    "io",
    "load",
    "save",
    "diagnostics",
    "diagnose",
    "TrainingWarning",
    "IntegerDivisionError",
]
# the elementwise functions (fg.exp, fg.relu, ..., neg, logical_not, clip): _ops's table and the rest
__all__ += _ops._NAMES
__all__ += _composite.__all__
__all__ += _surface.__all__
__all__ += _namespace.__all__
__all__ += _sampling.__all__
__all__ += _statistics.__all__
__all__ += [
    "linalg",
    "det",
    "inverse",
    "logdet",
    "matrix_power",
    "pinverse",
    "slogdet",
    "cholesky",
    "qr",
    "svd",
    "norm",
]

# what the bindings call back into (list keys, pickling, repr, max(dim)'s named tuples):
# handed to them here, so _core never imports this package
_core._set_hooks(tensor, _tensor_repr, return_types, _indexing.advanced)
