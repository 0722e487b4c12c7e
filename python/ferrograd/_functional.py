"""The functional forms of the tensor methods that are not elementwise (`fg.matmul`, `fg.where`,
`fg.cat`, the reductions, the shape ops, ...), and a few tests on tensors (`is_tensor`,
`numel`, `allclose`, `equal`). The elementwise ones are `_ops`'s table."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

import numpy as np

from . import _core
from ._core import Tensor
from ._creation import _t


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy's rules (1-D, 2-D, batched with broadcasting)."""
    return a @ b


def linear(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    activation: str | None = None,
    alpha: builtins.float | None = None,
) -> Tensor:
    """`x @ weight.T + bias` with weight of shape (out_features, in_features), then
    `activation` if given: "relu", "selu", "tanh", "sigmoid", "elu" (alpha, default 1) or
    "leaky_relu" (alpha is the slope, default 0.01), fused into the matrix product's GPU
    kernel."""
    return _core.linear(x, weight, bias, activation, alpha)


def maximum(a, b) -> Tensor:
    """Elementwise maximum with broadcasting (NaN propagates)."""
    a = _t(a, b if isinstance(b, Tensor) else None)
    return a.maximum(b)


def minimum(a, b) -> Tensor:
    """Elementwise minimum with broadcasting (NaN propagates)."""
    a = _t(a, b if isinstance(b, Tensor) else None)
    return a.minimum(b)


def where(cond: Tensor, a=None, b=None):
    """`a` where `cond` is true, else `b` (numbers are allowed for `a` and `b`); with only
    `cond`, the indices of its nonzero entries, one tensor per dim (as
    `torch.where(cond)`, that is `nonzero(cond, as_tuple=True)`)."""
    if a is None and b is None:
        idx = np.nonzero(_t(cond).cpu().numpy())
        return tuple(_core.from_numpy(np.ascontiguousarray(i, dtype=np.int64)) for i in idx)
    if a is None or b is None:
        raise TypeError("where: give both a and b, or neither")
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    return _core.where(_t(cond), _t(a, like), _t(b, like))


def cat(tensors: Sequence[Tensor], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Joins tensors along an existing dim (`axis` is NumPy's name for `dim`)."""
    return _core.cat(list(tensors), dim, axis=axis)


concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Joins same-shaped tensors along a new dim (`axis` is NumPy's name for `dim`)."""
    return _core.stack(list(tensors), dim, axis=axis)


def index_select(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """Entries `index` (int64, 1-D) of `x` along `dim`."""
    return x.index_select(dim, index)


def one_hot(labels: Tensor, num_classes: int = -1) -> Tensor:
    """One-hot encoding (int64) of int64 labels."""
    return _core.one_hot(labels, num_classes)


def sum(
    x: Tensor, dim=None, keepdim: bool = False, *, dtype=None, axis=None, keepdims: bool | None = None
) -> Tensor:  # noqa: A001
    """Sum over `dim` (all dims when None)."""
    return x.sum(dim, keepdim, dtype=dtype, axis=axis, keepdims=keepdims)


def mean(
    x: Tensor, dim=None, keepdim: bool = False, *, dtype=None, axis=None, keepdims: bool | None = None
) -> Tensor:
    """Mean over `dim`."""
    return x.mean(dim, keepdim, dtype=dtype, axis=axis, keepdims=keepdims)


def var(
    x: Tensor,
    dim=None,
    correction: builtins.float | bool | None = None,
    keepdim: bool = False,
    *,
    unbiased: bool | None = None,
    axis=None,
    keepdims: bool | None = None,
) -> Tensor:
    """Variance over `dim` (correction=1, the default, or unbiased=True: unbiased), as
    `torch.var`; a bool in correction's place is PyTorch's positional `unbiased`."""
    if isinstance(correction, bool):
        correction, unbiased = None, correction
    return x.var(dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims)


def max(x: Tensor, dim=None, keepdim: bool = False, *, axis=None, keepdims: bool | None = None):  # noqa: A001
    """As ``torch.max``: the maximum of all elements; with an int `dim`, the named tuple
    ``(values, indices)`` along it (``return_types.max``); with a tuple of dims, the values
    over them; with a tensor in place of `dim`, the elementwise ``maximum``."""
    if isinstance(dim, Tensor):
        return maximum(x, dim)
    return x.max(dim, keepdim, axis=axis, keepdims=keepdims)


def min(x: Tensor, dim=None, keepdim: bool = False, *, axis=None, keepdims: bool | None = None):  # noqa: A001
    """As ``torch.min``: see ``max``."""
    if isinstance(dim, Tensor):
        return minimum(x, dim)
    return x.min(dim, keepdim, axis=axis, keepdims=keepdims)


def sort(
    x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False, *, axis: int | None = None
):
    """`(values, indices)` of `x` sorted along `dim` (``return_types.sort``); stable."""
    return x.sort(dim, descending, stable, axis=axis)


def argsort(
    x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False, *, axis: int | None = None
) -> Tensor:
    """The indices (int64) that sort `x` along `dim`; stable."""
    return x.argsort(dim, descending, stable, axis=axis)


def topk(
    x: Tensor,
    k: int,
    dim: int = -1,
    largest: bool = True,
    sorted: bool = True,
    *,
    axis: int | None = None,  # noqa: A002
):
    """`(values, indices)` of the `k` largest (smallest with `largest=False`) entries of `x`
    along `dim` (``return_types.topk``)."""
    return x.topk(k, dim, largest, sorted, axis=axis)


def gather(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """PyTorch's `gather`: the entries of `x` at `index` along `dim` (differentiable)."""
    return x.gather(dim, index)


def take_along_dim(x: Tensor, indices: Tensor, dim: int) -> Tensor:
    """The entries of `x` at `indices` along `dim` (differentiable)."""
    return x.take_along_dim(indices, dim)


def argmax(
    x: Tensor,
    dim: int | None = None,
    keepdim: bool = False,
    *,
    axis: int | None = None,
    keepdims: bool | None = None,
) -> Tensor:
    """Indices of the maxima (int64)."""
    return x.argmax(dim, keepdim, axis=axis, keepdims=keepdims)


def argmin(
    x: Tensor,
    dim: int | None = None,
    keepdim: bool = False,
    *,
    axis: int | None = None,
    keepdims: bool | None = None,
) -> Tensor:
    """Indices of the minima (int64)."""
    return x.argmin(dim, keepdim, axis=axis, keepdims=keepdims)


def any(x: Tensor, dim=None, keepdim: bool = False, *, axis=None, keepdims: bool | None = None) -> Tensor:  # noqa: A001
    """Whether any element over `dim` (all dims when None) is true (nonzero): a bool tensor."""
    return x.any(dim, keepdim, axis=axis, keepdims=keepdims)


def all(x: Tensor, dim=None, keepdim: bool = False, *, axis=None, keepdims: bool | None = None) -> Tensor:  # noqa: A001
    """Whether every element over `dim` (all dims when None) is true (nonzero): a bool tensor."""
    return x.all(dim, keepdim, axis=axis, keepdims=keepdims)


def reshape(x: Tensor, *shape) -> Tensor:
    """`x.reshape(shape)`: a view when possible."""
    return x.reshape(*shape)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Flattens dims start_dim..end_dim into one."""
    return x.flatten(start_dim, end_dim)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swaps two dims (a view)."""
    return x.transpose(dim0, dim1)


def permute(x: Tensor, dims: Sequence[int]) -> Tensor:
    """Reorders the dims (a view)."""
    return x.permute(*dims)


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """Inserts a size-1 dim."""
    return x.unsqueeze(dim)


def squeeze(x: Tensor, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Removes size-1 dims (all, or just `dim`)."""
    return x.squeeze(dim, axis=axis)


def t(x: Tensor) -> Tensor:
    """The transpose of a matrix (0-D and 1-D tensors come back as they are)."""
    return x.t()


def split(x: Tensor, split_size_or_sections, dim: int = 0, *, axis: int | None = None) -> tuple[Tensor, ...]:
    """Views of `split_size` entries along `dim` (the last may be shorter), or of the sizes
    in a list."""
    return x.split(split_size_or_sections, dim, axis=axis)


def chunk(x: Tensor, chunks: int, dim: int = 0, *, axis: int | None = None) -> tuple[Tensor, ...]:
    """At most `chunks` equal views along `dim` (the last may be shorter)."""
    return x.chunk(chunks, dim, axis=axis)


def unbind(x: Tensor, dim: int = 0, *, axis: int | None = None) -> tuple[Tensor, ...]:
    """The slices along `dim`, each without that dim."""
    return x.unbind(dim, axis=axis)


def mm(a: Tensor, b: Tensor) -> Tensor:
    """Matrix times matrix (both 2-D)."""
    return a.mm(b)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    """Batched matrix product of (b, n, k) and (b, k, m)."""
    return a.bmm(b)


def mv(a: Tensor, v: Tensor) -> Tensor:
    """Matrix times vector."""
    return a.mv(v)


def dot(a: Tensor, b: Tensor) -> Tensor:
    """Inner product of two 1-D tensors (a 0-dim tensor)."""
    return a.dot(b)


def outer(a: Tensor, b: Tensor) -> Tensor:
    """Outer product of two 1-D tensors."""
    return a.outer(b)


def logical_and(a: Tensor, b) -> Tensor:
    """Elementwise `a and b` of truth values (nonzero is true): a bool tensor."""
    return _t(a, b if isinstance(b, Tensor) else None).logical_and(b)


def logical_or(a: Tensor, b) -> Tensor:
    """Elementwise `a or b` of truth values: a bool tensor."""
    return _t(a, b if isinstance(b, Tensor) else None).logical_or(b)


def logical_xor(a: Tensor, b) -> Tensor:
    """Elementwise `a xor b` of truth values: a bool tensor."""
    return _t(a, b if isinstance(b, Tensor) else None).logical_xor(b)


def logsumexp(
    x: Tensor, dim=None, keepdim: bool = False, *, axis=None, keepdims: bool | None = None
) -> Tensor:
    """log(sum(exp(x))) computed stably."""
    return x.logsumexp(dim, keepdim, axis=axis, keepdims=keepdims)


def softmax(x: Tensor, dim: int = -1, *, axis: int | None = None) -> Tensor:
    """Softmax along `dim`."""
    return x.softmax(dim, axis=axis)


def log_softmax(x: Tensor, dim: int = -1, *, axis: int | None = None) -> Tensor:
    """log(softmax(x)) along `dim`."""
    return x.log_softmax(dim, axis=axis)


def is_tensor(obj) -> bool:
    """Whether `obj` is a ferrograd tensor."""
    return isinstance(obj, Tensor)


def numel(t: Tensor) -> int:
    """The number of elements of `t`."""
    return t.numel()


def allclose(
    a: Tensor, b, rtol: builtins.float = 1e-5, atol: builtins.float = 1e-8, equal_nan: bool = False
) -> bool:
    """Whether every element of `a` is within ``atol + rtol * |b|`` of `b` (NumPy's rule)."""
    bv = b.numpy() if isinstance(b, Tensor) else b
    return builtins.bool(np.allclose(a.numpy(), bv, rtol=rtol, atol=atol, equal_nan=equal_nan))


def equal(a: Tensor, b: Tensor) -> bool:
    """Whether `a` and `b` have the same shape and the same values."""
    return tuple(a.shape) == tuple(b.shape) and builtins.bool(np.array_equal(a.numpy(), b.numpy()))
