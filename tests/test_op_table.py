"""Issue 16's op table: one list of rows drives, for every op the issue added, the forward
pass against a float64 NumPy reference (float64 and float32, on each device), the float64
gradcheck, CPU against GPU (forward and the gradient of sum(out * w) in float32), and the
edge variants each row declares: an empty batch, 0-d inputs, non-contiguous views (against
the same op on a contiguous copy, gradients included), broadcasting operands and expanded
views, and NaN/inf inputs (compared with NaN positions and infinities exact).

A row names the op id, the call on ferrograd tensors, the NumPy reference on arrays (the
longer ones live in op_table_cases.py, with the `Row` and `Arg` machinery), the inputs
(shape and how each is drawn, e.g. positive or tie-free), whether the op differentiates,
the edges that apply and its tolerances. Inputs are drawn per row from a fixed seed.

Known bugs are kept as strict xfails (`XFAIL` below), each with the one-line reason.
"""

from __future__ import annotations

import math
import os

import numpy as np
import op_table_cases as oc
import pytest
from op_table_cases import Arg, Row, edges

import ferrograd as fg
from ferrograd.autograd import gradcheck

F = fg.nn.functional


# ------------------------------------------------------------------------------ arg shorthands

# short names: a row's inputs then read as N(2, 3, 4), Dist(2, 5, 3), Int(0, 4, 2, 3)


def N(*shape, **kw) -> Arg:
    return Arg(shape, "normal", **kw)


def Pos(*shape, **kw) -> Arg:
    return Arg(shape, "positive", **kw)


def Away(*shape, **kw) -> Arg:
    return Arg(shape, "away", **kw)


def Dist(*shape, **kw) -> Arg:
    return Arg(shape, "distinct", **kw)


def Unit(*shape, **kw) -> Arg:
    return Arg(shape, "unit", **kw)


def Sparse(*shape, **kw) -> Arg:
    return Arg(shape, "sparse", **kw)


def Choice(values, *shape, **kw) -> Arg:
    return Arg(shape, "choice", values=tuple(values), **kw)


def Int(lo, hi, *shape, **kw) -> Arg:
    return Arg(shape, "int", lo=lo, hi=hi, **kw)


def Perm(hi, *shape, **kw) -> Arg:
    return Arg(shape, "perm", hi=hi, **kw)


def Bool(*shape, **kw) -> Arg:
    return Arg(shape, "bool", **kw)


def Fixed(value, grad=False) -> Arg:
    return Arg(np.shape(value), "fixed", value=np.array(value), batch=None, grad=grad)


def ix(*values) -> fg.Tensor:
    """An int64 index tensor (host)."""
    return fg.tensor(np.array(values, dtype=np.int64))


X = (2, 3, 4)  # the standard input of the reductions, scans and shape ops
ELEM = edges("empty 0d noncontig bcast special")  # the edges of an elementwise binary op
BIN_BCAST = ((3, 1, 4), (2, 1))  # broadcasting operand shapes for binary rows

# ------------------------------------------------------------------------------ the table

ROWS: list[Row] = [
    # ---- reductions and scans
    Row(
        "prod-dim",
        lambda x: x.prod(1),
        lambda a: np.prod(a, 1),
        (N(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "prod-all-keepdim",
        lambda x: x.prod(keepdim=True),
        lambda a: np.prod(a, keepdims=True),
        (Away(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "cumsum",
        lambda x: x.cumsum(2),
        lambda a: np.cumsum(a, 2),
        (N(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "cumprod",
        lambda x: x.cumprod(1),
        lambda a: np.cumprod(a, 1),
        (N(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "cummax",
        lambda x: x.cummax(1),
        lambda a: oc.cum_extreme(a, 1, True),
        (Dist(*X),),
        edges=edges("empty noncontig special"),
    ),
    # ties: the later index (PyTorch compares with >=)
    Row(
        "cummax-ties",
        lambda x: fg.cummax(x, 2),
        lambda a: oc.cum_extreme(a, 2, True),
        (Choice((-1.0, 0.0, 1.0), 2, 3, 6),),
        diff=False,
    ),
    Row(
        "cummin",
        lambda x: x.cummin(2),
        lambda a: oc.cum_extreme(a, 2, False),
        (Dist(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "logcumsumexp",
        lambda x: x.logcumsumexp(2),
        lambda a: np.logaddexp.accumulate(a, 2),
        (N(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "std_mean",
        lambda x: fg.std_mean(x, 1),
        lambda a: (a.std(1, ddof=1), a.mean(1)),
        (N(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "var_mean-keepdim",
        lambda x: x.var_mean(2, correction=0, keepdim=True),
        lambda a: (a.var(2, keepdims=True), a.mean(2, keepdims=True)),
        (N(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "median-dim",
        lambda x: x.median(1),
        lambda a: oc.median_dim(a, 1),
        (Dist(2, 5, 3),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "median-all", lambda x: x.median(), oc.median_all, (Dist(*X),), edges=edges("empty noncontig special")
    ),
    Row(
        "kthvalue",
        lambda x: x.kthvalue(2, 1),
        lambda a: oc.kthvalue(a, 2, 1),
        (Dist(2, 4, 3),),
        edges=edges("empty noncontig special"),
    ),
    # sum(dtype=): the GPU holds float32 only, so a float64 result cannot live there
    Row(
        "sum-dtype-float64",
        lambda x: x.sum(1, dtype=fg.float64),
        lambda a: a.sum(1),
        (N(*X),),
        out_dtype=fg.float64,
        gpu=False,
        edges=edges("empty noncontig"),
    ),
    Row(
        "sum-int-dtype-float32",
        lambda k: fg.sum(k, 0, dtype=fg.float32),
        lambda a: a.sum(0).astype(np.float64),
        (Int(-5, 5, 3, 4, batch=1),),
        out_dtype=fg.float32,
        diff=False,
        edges=edges("empty noncontig"),
    ),
    Row(
        "count_nonzero",
        lambda x: fg.count_nonzero(x, 1),
        lambda a: np.count_nonzero(a, 1).astype(np.int64),
        (Sparse(*X),),
        diff=False,
        edges=edges("empty noncontig special"),
    ),
    Row(
        "sum-dims-keepdim",
        lambda x: x.sum((0, 2), keepdim=True),
        lambda a: a.sum((0, 2), keepdims=True),
        (N(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "mean-dim",
        lambda x: x.mean(-1),
        lambda a: a.mean(-1),
        (N(*X),),
        edges=edges("empty noncontig special"),
    ),
    # the empty variant reduces over the empty dim: -inf and NaN, as PyTorch's
    Row(
        "logsumexp-dims",
        lambda x: x.logsumexp((0, 2)),
        lambda a: oc.logsumexp(a, (0, 2)),
        (N(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "mean-dims",
        lambda x: fg.mean(x, (0, 1)),
        lambda a: a.mean((0, 1)),
        (N(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "amax-dim",
        lambda x: x.amax(1),
        lambda a: a.max(1),
        (Dist(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "amin-dim",
        lambda x: x.amin(2),
        lambda a: a.min(2),
        (Dist(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "std-dim",
        lambda x: x.std(2),
        lambda a: a.std(2, ddof=1),
        (N(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "var-dim-biased",
        lambda x: x.var(1, correction=0),
        lambda a: a.var(1),
        (N(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "logsumexp-dim",
        lambda x: x.logsumexp(1),
        lambda a: oc.logsumexp(a, 1),
        (N(*X),),
        edges=edges("empty noncontig special"),
    ),
    # ---- indexing
    Row(
        "index-list-dim1",
        lambda x: x[:, [2, 0, 2]],
        lambda a: a[:, [2, 0, 2]],
        (N(*X),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "index-tensor-last",
        lambda x: x[..., ix(3, -1, 0)],
        lambda a: a[..., [3, -1, 0]],
        (N(*X),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "index-two-broadcast",
        lambda x: x[:, ix([0], [2]), ix(1, 3, 3)],
        lambda a: a[:, [[0], [2]], [1, 3, 3]],
        (N(*X),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "index-bool-mask-dim1",
        lambda x: x[:, fg.tensor([True, False, True])],
        lambda a: a[:, [True, False, True]],
        (N(*X),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "gather",
        lambda x, i: x.gather(1, i),
        lambda a, i: np.take_along_axis(a, i, 1),
        (N(*X), Int(0, 3, 2, 5, 4)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "index_select",
        lambda x: fg.index_select(x, 2, ix(3, 0, 3)),
        lambda a: np.take(a, [3, 0, 3], 2),
        (N(*X),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "scatter",
        lambda x, i, s: x.scatter(1, i, s),
        lambda a, i, s: oc.scatter(a, i, s, 1),
        (N(3, 5), Perm(5, 3, 3), N(3, 3)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "scatter-value",
        lambda x, i: fg.scatter(x, 1, i, value=2.5),
        lambda a, i: oc.scatter_value(a, i, 1, 2.5),
        (N(3, 5), Perm(5, 3, 2)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "scatter_add",
        lambda x, i, s: x.scatter_add(1, i, s),
        lambda a, i, s: oc.scatter_reduce(a, i, s, 1, "sum"),
        (N(3, 4), Int(0, 4, 3, 6), N(3, 6)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "scatter_add-dim0-small-index",
        lambda x, i, s: fg.scatter_add(x, 0, i, s),
        lambda a, i, s: oc.scatter_reduce(a, i, s[:5, :2], 0, "sum"),
        (N(4, 3, batch=None), Int(0, 4, 5, 2, batch=None), N(6, 3, batch=None)),
    ),
]
for _reduce in ("sum", "prod", "amax", "amin", "mean"):
    ROWS.append(
        Row(
            f"scatter_reduce-{_reduce}",
            lambda x, i, s, reduce=_reduce: x.scatter_reduce(1, i, s, reduce),
            lambda a, i, s, reduce=_reduce: oc.scatter_reduce(a, i, s, 1, reduce),
            (N(3, 4), Int(0, 4, 3, 6), Dist(3, 6) if _reduce in ("amax", "amin") else N(3, 6)),
            edges=edges("empty noncontig"),
        )
    )
ROWS += [
    Row(
        "scatter_reduce-mean-exclude-self",
        lambda x, i, s: x.scatter_reduce(1, i, s, "mean", include_self=False),
        lambda a, i, s: oc.scatter_reduce(a, i, s, 1, "mean", include_self=False),
        (N(3, 4), Int(0, 4, 3, 6), N(3, 6)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "scatter_reduce-sum-exclude-self",
        lambda x, i, s: x.scatter_reduce(1, i, s, "sum", include_self=False),
        lambda a, i, s: oc.scatter_reduce(a, i, s, 1, "sum", include_self=False),
        (N(3, 4), Int(0, 4, 3, 6), N(3, 6)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "index_add",
        lambda x, s: x.index_add(1, ix(3, 0, 3), s, alpha=0.5),
        lambda a, s: oc.index_add(a, [3, 0, 3], s, 1, 0.5),
        (N(3, 5), N(3, 3)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "index_copy",
        lambda x, s: fg.index_copy(x, 1, ix(4, 1), s),
        lambda a, s: oc.index_copy(a, [4, 1], s, 1),
        (N(3, 5), N(3, 2)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "masked_select",
        lambda x, m: x.masked_select(m),
        oc.masked_select,
        (N(*X), Bool(*X)),
        bcast=((3, 4), (2, 3, 1)),
        edges=edges("empty noncontig bcast special"),
    ),
    Row(
        "nonzero-int",
        lambda k: k.nonzero(),
        lambda a: np.argwhere(a).astype(np.int64),
        (Int(-1, 2, 3, 4),),
        diff=False,
        edges=edges("empty 0d noncontig"),
    ),
    # NaN is nonzero
    Row(
        "nonzero-float-as_tuple",
        lambda x: fg.nonzero(x, as_tuple=True),
        lambda a: tuple(i.astype(np.int64) for i in np.nonzero(a)),
        (Sparse(*X),),
        diff=False,
        edges=edges("empty noncontig special"),
    ),
    Row(
        "where-one-arg",
        lambda x: fg.where(x > 0),
        lambda a: tuple(i.astype(np.int64) for i in np.nonzero(a > 0)),
        (N(*X),),
        diff=False,
        edges=edges("empty noncontig special"),
    ),
    Row(
        "bincount",
        lambda k: fg.bincount(k, minlength=7),
        lambda a: np.bincount(a, minlength=7).astype(np.int64),
        (Int(0, 5, 12),),
        diff=False,
        edges=edges("empty noncontig"),
    ),
    # float32 weights give float32 counts (PyTorch's documented example)
    Row(
        "bincount-weights",
        lambda k, w: fg.bincount(k, w),
        lambda a, w: np.bincount(a, w).astype(np.float64),  # NumPy gives int64 counts when empty
        (Int(0, 5, 12), N(12)),
        diff=False,
        edges=edges("empty"),
    ),
    Row(
        "unique-int",
        lambda k: fg.unique(k, return_inverse=True, return_counts=True),
        lambda a: _unique(a),
        (Int(-3, 3, 3, 5),),
        diff=False,
        edges=edges("empty noncontig"),
    ),
    Row(
        "unique-float",
        lambda x: fg.unique(x, return_inverse=True, return_counts=True),
        lambda a: _unique(a),
        (Choice((-1.5, 0.0, 0.5, 2.0), 3, 5),),
        diff=False,
        edges=edges("empty noncontig"),
    ),
    # ---- shape
    Row(
        "flip",
        lambda x: x.flip([0, 2]),
        lambda a: np.flip(a, (0, 2)),
        (N(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "roll",
        lambda x: x.roll((1, -2), (0, 2)),
        lambda a: np.roll(a, (1, -2), (0, 2)),
        (N(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "roll-flat",
        lambda x: fg.roll(x, 5),
        lambda a: np.roll(a, 5),
        (N(*X),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "tril", lambda x: x.tril(1), lambda a: np.tril(a, 1), (N(*X),), edges=edges("empty noncontig special")
    ),
    Row(
        "triu",
        lambda x: fg.triu(x, -1),
        lambda a: np.triu(a, -1),
        (N(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "diag-1d",
        lambda x: fg.diag(x, 1),
        lambda a: np.diag(a, 1),
        (N(4),),
        edges=edges("empty noncontig special"),
    ),
    Row("diag-2d", lambda x: x.diag(-1), lambda a: np.diag(a, -1), (N(4, 5),), edges=edges("noncontig")),
    Row(
        "diagonal",
        lambda x: x.diagonal(1, 1, 2),
        lambda a: np.diagonal(a, 1, 1, 2),
        (N(*X),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "unflatten",
        lambda x: x.unflatten(2, (2, -1)),
        lambda a: a.reshape(a.shape[0], 3, 2, 2),
        (N(*X),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "Tensor.unfold",
        lambda x: x.unfold(2, 3, 2),
        lambda a: oc.unfold(a, 2, 3, 2),
        (N(2, 3, 7),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "repeat_interleave",
        lambda x: x.repeat_interleave(2, 1),
        lambda a: np.repeat(a, 2, 1),
        (N(*X),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "repeat_interleave-counts",
        lambda x: fg.repeat_interleave(x, ix(1, 0, 2), 1),
        lambda a: np.repeat(a, [1, 0, 2], 1),
        (N(*X),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "repeat_interleave-flat",
        lambda x: x.repeat_interleave(2),
        lambda a: np.repeat(a, 2),
        (N(*X),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "meshgrid-xy",
        lambda a, b: fg.meshgrid(a, b, indexing="xy"),
        lambda a, b: tuple(np.meshgrid(a, b, indexing="xy")),
        (N(3), N(4)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "meshgrid-ij",
        lambda a, b, c: fg.meshgrid(a, b, c),
        lambda a, b, c: tuple(np.meshgrid(a, b, c, indexing="ij")),
        (N(3), N(2), N(4)),
        edges=edges("noncontig"),
    ),
    Row(
        "movedim",
        lambda x: fg.movedim(x, [0, 1], [2, 0]),
        lambda a: np.moveaxis(a, [0, 1], [2, 0]),
        (N(*X),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "swapaxes",
        lambda x: x.swapaxes(0, 2),
        lambda a: np.swapaxes(a, 0, 2),
        (N(*X),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "tile",
        lambda x: x.tile((2, 1)),
        lambda a: np.tile(a, (2, 1)),
        (N(*X),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "broadcast_to",
        lambda x: x.broadcast_to((2, x.shape[0], 4)),
        lambda a: np.broadcast_to(a, (2, a.shape[0], 4)),
        (N(3, 1),),
        edges=edges("empty"),
    ),
    # ---- math
    Row(
        "einsum-bmm",
        lambda a, b: fg.einsum("bij,bjk->bik", a, b),
        lambda a, b: np.einsum("bij,bjk->bik", a, b),
        (N(2, 3, 4), N(2, 4, 5)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "einsum-ellipsis",
        lambda a, b: fg.einsum("...ij,jk->...ik", a, b),
        lambda a, b: np.einsum("...ij,jk->...ik", a, b),
        (N(2, 3, 3, 4), N(4, 5, batch=None)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "einsum-ellipsis-broadcast",
        lambda a, b: fg.einsum("...ij,...jk->...ik", a, b),
        lambda a, b: np.einsum("...ij,...jk->...ik", a, b),
        (N(2, 1, 3, 4), N(5, 4, 2, batch=None)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "einsum-diagonal",
        lambda a: fg.einsum("ii->i", a),
        lambda a: np.einsum("ii->i", a),
        (N(4, 4, batch=None),),
        edges=edges("noncontig"),
    ),
    Row(
        "einsum-implicit-sum",
        lambda a, b: fg.einsum("ij,jk", a, b),
        lambda a, b: np.einsum("ij,jk", a, b),
        (N(3, 4), N(4, 2, batch=None)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "lerp-scalar",
        lambda a, b: fg.lerp(a, b, 0.3),
        lambda a, b: a + 0.3 * (b - a),
        (N(*X), N(*X)),
        bcast=BIN_BCAST,
        special=(0, 1),
        edges=ELEM,
    ),
    Row(
        "lerp-tensor-weight",
        lambda a, b, w: a.lerp(b, w),
        lambda a, b, w: a + w * (b - a),
        (N(*X), N(*X), Unit(*X)),
        bcast=((3, 1, 4), (2, 1), (4,)),
        edges=edges("empty 0d noncontig bcast"),
    ),
    Row(
        "logaddexp",
        lambda a, b: fg.logaddexp(a, b),
        np.logaddexp,
        (N(*X), N(*X)),
        bcast=BIN_BCAST,
        special=(0, 1),
        edges=ELEM,
    ),
    # d/d(other) is 0 away from 0; the sign of NaN counts as PyTorch's (np.nan is positive)
    Row(
        "copysign",
        lambda a, b: a.copysign(b),
        np.copysign,
        (Away(*X), Away(*X)),
        bcast=BIN_BCAST,
        special=(0, 1),
        edges=ELEM,
    ),
    # C's fmod: the sign of the dividend; fmod(x, +-inf) = x
    Row(
        "fmod",
        lambda a, b: fg.fmod(a, b),
        np.fmod,
        (N(*X), Away(*X)),
        bcast=BIN_BCAST,
        special=(0, 1),
        edges=ELEM,
    ),
    # Python's %: the sign of the divisor; x % inf = x for x >= 0 and inf for x < 0
    Row(
        "remainder-op",
        lambda a, b: a % b,
        np.mod,
        (N(*X), Away(*X)),
        bcast=BIN_BCAST,
        special=(0, 1),
        edges=ELEM,
    ),
    Row(
        "remainder-scalar",
        lambda a: fg.remainder(a, -0.7),
        lambda a: np.mod(a, -0.7),
        (N(*X),),
        edges=edges("empty 0d noncontig special"),
    ),
    # PyTorch documents floor_divide as floor(input / other), so -inf // 2 = -inf and
    # -1 // inf = -0; NumPy's floor_divide (and PyTorch's kernel) give NaN and -1 there
    Row(
        "floor_divide-op",
        lambda a, b: a // b,
        lambda a, b: np.floor(a / b),
        (N(*X), Away(*X)),
        diff=False,
        bcast=BIN_BCAST,
        special=(0, 1),
        edges=ELEM,
    ),
    # integer operands stay int64 (divisors odd, so never 0, of both signs)
    Row(
        "remainder-int",
        lambda a, b: a % (b * 2 - 7),
        lambda a, b: np.mod(a, b * 2 - 7),
        (Int(-20, 20, 3, 4), Int(0, 7, 3, 4)),
        diff=False,
        bcast=((3, 1), (4,)),
        edges=edges("empty 0d noncontig bcast"),
    ),
    Row(
        "floor_divide-int",
        lambda a, b: fg.floor_divide(a, b * 2 - 7),
        lambda a, b: np.floor_divide(a, b * 2 - 7),
        (Int(-20, 20, 3, 4), Int(0, 7, 3, 4)),
        diff=False,
        bcast=((3, 1), (4,)),
        edges=edges("empty 0d noncontig bcast"),
    ),
    Row(
        "fmod-int",
        lambda a, b: a.fmod(b * 2 - 7),
        lambda a, b: np.fmod(a, b * 2 - 7),
        (Int(-20, 20, 3, 4), Int(0, 7, 3, 4)),
        diff=False,
        bcast=((3, 1), (4,)),
        edges=edges("empty 0d noncontig bcast"),
    ),
    Row(
        "isclose",
        lambda a, d: fg.isclose(a, a + d, rtol=1e-3, atol=1e-5),
        lambda a, d: np.isclose(a, a + d, rtol=1e-3, atol=1e-5),
        (N(*X), Choice((0.0, 1e-6, 1e-2), *X)),
        diff=False,
        bcast=BIN_BCAST,
        edges=ELEM,
    ),
    # infinities: close only to the same infinity; NaN to nothing (equal_nan=False)
    Row(
        "isclose-infinities",
        lambda a, b: fg.isclose(a, b),
        np.isclose,
        (
            Fixed([1.0, math.inf, -math.inf, math.nan, 1.0, math.inf, 2.0, -math.inf]),
            Fixed([math.inf, math.inf, math.inf, math.nan, 1.0 + 1e-9, 1.0, 2.0, 3.0]),
        ),
        diff=False,
    ),
    Row(
        "lshift",
        lambda a, b: a << b,
        np.left_shift,
        (Int(-50, 50, 3, 4), Int(0, 5, 3, 4)),
        diff=False,
        bcast=((3, 1), (4,)),
        edges=edges("empty 0d noncontig bcast"),
    ),
    Row(
        "rshift",
        lambda a, b: fg.bitwise_right_shift(a, b),
        np.right_shift,
        (Int(-50, 50, 3, 4), Int(0, 5, 3, 4)),
        diff=False,
        bcast=((3, 1), (4,)),
        edges=edges("empty 0d noncontig bcast"),
    ),
    Row(
        "bitwise_not-int",
        lambda k: fg.bitwise_not(k),
        np.invert,
        (Int(-50, 50, 3, 4),),
        diff=False,
        edges=edges("empty 0d noncontig"),
    ),
    Row(
        "bitwise_not-bool",
        lambda m: ~m,
        np.invert,
        (Bool(3, 4),),
        diff=False,
        edges=edges("empty 0d noncontig"),
    ),
    Row(
        "cdist-p2",
        lambda a, b: fg.cdist(a, b),
        lambda a, b: oc.cdist(a, b, 2),
        (N(2, 4, 3), N(2, 5, 3)),
        bcast=((4, 3), (2, 5, 3)),
        edges=edges("empty noncontig bcast"),
    ),
    Row(
        "cdist-p1",
        lambda a, b: a.cdist(b, p=1),
        lambda a, b: oc.cdist(a, b, 1),
        (N(4, 3), N(5, 3, batch=None)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "normalize",
        lambda x: F.normalize(x, dim=1),
        lambda a: oc.normalize(a, 1),
        (N(*X),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "softmin",
        lambda x: F.softmin(x, 1),
        lambda a: oc.softmax(-a, 1),
        (N(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "softmax",
        lambda x: x.softmax(-1),
        lambda a: oc.softmax(a, -1),
        (N(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "log_softmax",
        lambda x: fg.log_softmax(x, 1),
        lambda a: oc.log_softmax(a, 1),
        (N(*X),),
        edges=edges("empty noncontig special"),
    ),
    Row(
        "sdpa-causal",
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        lambda q, k, v: oc.sdpa(q, k, v, True),
        (N(2, 4, 3), N(2, 5, 3), N(2, 5, 2)),
        edges=edges("empty noncontig"),
    ),
    # ---- spatial
    Row(
        "conv1d",
        lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, dilation=2),
        lambda x, w, b: oc.conv1d(x, w, b, 2, 1, 2, 1),
        (N(2, 3, 9), N(4, 3, 3, batch=None), N(4, batch=None)),
        tol32=(1e-4, 1e-5),
        edges=edges("empty noncontig"),
    ),
    Row(
        "conv2d-groups",
        lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2),
        lambda x, w, b: oc.conv2d(x, w, b, (2, 1), (1, 0), (1, 2), 2),
        (N(2, 4, 6, 5), N(6, 2, 3, 2, batch=None), N(6, batch=None)),
        tol32=(1e-4, 1e-5),
        edges=edges("empty noncontig"),
    ),
    Row(
        "conv_transpose2d",
        lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
        lambda x, w, b: oc.conv_transpose2d(x, w, b, (2, 2), (1, 1), (1, 1), (1, 1)),
        (N(2, 3, 3, 4), N(3, 2, 3, 3, batch=None), N(2, batch=None)),
        tol32=(1e-4, 1e-5),
        edges=edges("empty noncontig"),
    ),
    Row(
        "conv_transpose2d-groups-dilation",
        lambda x, w, b: F.conv_transpose2d(x, w, b, (1, 2), (0, 1), (0, 1), groups=2, dilation=2),
        lambda x, w, b: oc.conv_transpose2d(x, w, b, (1, 2), (0, 1), (0, 1), (2, 2), 2),
        (N(2, 4, 3, 3), N(4, 1, 2, 2, batch=None), N(2, batch=None)),
        tol32=(1e-4, 1e-5),
        edges=edges("empty noncontig"),
    ),
    Row(
        "max_pool2d",
        lambda x: F.max_pool2d(x, 3, 2, 1),
        lambda a: oc.max_pool2d(a, 3, 2, 1),
        (Dist(2, 2, 5, 6),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "max_pool2d-ceil",
        lambda x: F.max_pool2d(x, 2, 2, ceil_mode=True),
        lambda a: oc.max_pool2d(a, 2, 2, 0, True),
        (Dist(2, 2, 5, 5),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "max_pool2d-dilation",
        lambda x: F.max_pool2d(x, 3, 2, 1, dilation=2),
        lambda a: oc.max_pool2d(a, 3, 2, 1, False, 2),
        (Dist(2, 2, 6, 7),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "avg_pool2d",
        lambda x: F.avg_pool2d(x, 3, 2, 1),
        lambda a: oc.avg_pool2d(a, 3, 2, 1),
        (N(2, 2, 5, 6),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "avg_pool2d-ceil-exclude-pad",
        lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
        lambda a: oc.avg_pool2d(a, 3, 2, 1, True, False),
        (N(2, 2, 6, 6),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "adaptive_avg_pool2d",
        lambda x: F.adaptive_avg_pool2d(x, (3, 2)),
        lambda a: oc.adaptive_avg_pool2d(a, 3, 2),
        (N(2, 3, 7, 5),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "max_pool1d-dilation-ceil",
        lambda x: F.max_pool1d(x, 3, 2, 1, dilation=2, ceil_mode=True),
        lambda a: oc.max_pool1d(a, 3, 2, 1, True, 2),
        (Dist(2, 3, 9),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "avg_pool1d-exclude-pad",
        lambda x: F.avg_pool1d(x, 3, 2, 1, count_include_pad=False),
        lambda a: oc.avg_pool1d(a, 3, 2, 1, False, False),
        (N(2, 3, 8),),
        edges=edges("empty noncontig"),
    ),
    # ---- normalization and lookup layers' functional forms
    Row(
        "batch_norm-2d-training",
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        lambda x, w, b: oc.batch_norm(x, None, None, w, b, True),
        (N(4, 3, 2, 5), N(3, batch=None), N(3, batch=None)),
        tol32=(1e-4, 1e-5),
        edges=edges("noncontig"),
    ),
    Row(
        "batch_norm-1d-eval",
        lambda x, w, b, m, v: F.batch_norm(x, m, v, w, b, training=False, eps=1e-3),
        lambda x, w, b, m, v: oc.batch_norm(x, m, v, w, b, False, 1e-3),
        (N(4, 3, 6), N(3, batch=None), N(3, batch=None), Fixed([0.1, -0.3, 0.2]), Fixed([0.5, 1.5, 2.0])),
        edges=edges("empty noncontig"),
    ),
    Row(
        "layer_norm",
        lambda x, w, b: F.layer_norm(x, (3, 4), w, b),
        lambda x, w, b: oc.layer_norm(x, w, b, 2),
        (N(*X), N(3, 4, batch=None), N(3, 4, batch=None)),
        tol32=(1e-4, 1e-5),
        edges=edges("empty noncontig"),
    ),
    Row(
        "embedding",
        lambda i, w: F.embedding(i, w),
        lambda i, w: w[i],
        (Int(0, 5, 4, 3), N(5, 2, batch=None)),
        edges=edges("empty"),
    ),
    Row(
        "masked_scatter",
        lambda x, m, src: x.masked_scatter(m, src),
        oc.masked_scatter,
        (N(*X), Bool(3, 4, batch=None), N(30, batch=None)),
        edges=edges("noncontig special"),
    ),
]
for _mode, _pad in (
    ("constant", (1, 2, 0, 1)),
    ("reflect", (2, 1, 1, 2)),
    ("replicate", (1, 2, 2, 0)),
    ("circular", (2, 1, 1, 3)),
):
    ROWS.append(
        Row(
            f"pad-{_mode}",
            lambda x, mode=_mode, p=_pad: F.pad(x, p, mode, 0.5) if mode == "constant" else F.pad(x, p, mode),
            lambda a, mode=_mode, p=_pad: oc.pad(a, p, mode, 0.5),
            (N(2, 3, 4, 5),),
            edges=edges("empty noncontig"),
        )
    )
ROWS.append(
    Row(
        "pad-constant-negative",
        lambda x: F.pad(x, (-1, 2, 1, -2), value=-3.0),
        lambda a: oc.pad(a, (-1, 2, 1, -2), "constant", -3.0),
        (N(2, 3, 4, 5),),
        edges=edges("empty noncontig"),
    )
)
ROWS += [
    Row(
        "interpolate-nearest",
        lambda x: F.interpolate(x, size=(7, 3)),
        lambda a: oc.interpolate(a, (7, 3), "nearest"),
        (N(2, 3, 4, 5),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "interpolate-bilinear",
        lambda x: F.interpolate(x, size=(7, 8), mode="bilinear"),
        lambda a: oc.interpolate(a, (7, 8), "bilinear", False),
        (N(2, 3, 4, 5),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "interpolate-bilinear-align",
        lambda x: F.interpolate(x, size=(3, 9), mode="bilinear", align_corners=True),
        lambda a: oc.interpolate(a, (3, 9), "bilinear", True),
        (N(2, 3, 4, 5),),
        edges=edges("empty noncontig"),
    ),
    # a scale_factor is used as given (1 / scale_factor maps output to input positions),
    # as PyTorch documents for recompute_scale_factor=None; here 1.7 and 1.5 differ from
    # in / out
    Row(
        "interpolate-nearest-scale",
        lambda x: F.interpolate(x, scale_factor=1.7),
        lambda a: oc.interpolate(a, mode="nearest", scale_factor=1.7),
        (N(2, 3, 5, 5),),
        edges=edges("empty noncontig"),
    ),
    Row(
        "interpolate-bilinear-scale",
        lambda x: F.interpolate(x, scale_factor=1.5, mode="bilinear"),
        lambda a: oc.interpolate(a, mode="bilinear", align_corners=False, scale_factor=1.5),
        (N(2, 3, 5, 5),),
        edges=edges("empty noncontig"),
    ),
    # ---- losses; a mean over an empty batch is NaN (0 / 0), as PyTorch's
    Row(
        "nll_loss-NCd",
        lambda x, t: F.nll_loss(x, t),
        oc.nll_loss,
        (N(2, 4, 3), Int(0, 4, 2, 3)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "nll_loss-NCd-weight-ignore",
        lambda x, t, w: F.nll_loss(x, t, w, ignore_index=2),
        lambda x, t, w: oc.nll_loss(x, t, w, ignore_index=2),
        (N(2, 4, 3), Int(0, 4, 2, 3), Fixed([0.5, 1.0, 2.0, 1.5])),
        edges=edges("noncontig"),
    ),
    Row(
        "cross_entropy-NCd",
        lambda x, t: F.cross_entropy(x, t),
        oc.cross_entropy,
        (N(2, 4, 3), Int(0, 4, 2, 3)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "cross_entropy-NCd-none",
        lambda x, t: F.cross_entropy(x, t, reduction="none"),
        lambda x, t: oc.cross_entropy(x, t, reduction="none"),
        (N(2, 4, 3), Int(0, 4, 2, 3)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "cross_entropy-NCd-weight-smoothing",
        lambda x, t, w: F.cross_entropy(x, t, w, label_smoothing=0.2),
        lambda x, t, w: oc.cross_entropy(x, t, w, label_smoothing=0.2),
        (N(2, 4, 3), Int(0, 4, 2, 3), Fixed([0.5, 1.0, 2.0, 1.5])),
        edges=edges("noncontig"),
    ),
    Row(
        "kl_div-batchmean",
        lambda x, t: F.kl_div(x, t, reduction="batchmean"),
        lambda x, t: oc.kl_div(x, t, "batchmean"),
        (N(3, 4), Unit(3, 4, grad=False)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "kl_div-log_target",
        lambda x, t: F.kl_div(x, t, reduction="sum", log_target=True),
        lambda x, t: oc.kl_div(x, t, "sum", True),
        (N(3, 4), N(3, 4)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "cosine_embedding_loss",
        lambda a, b, y: F.cosine_embedding_loss(a, b, y, margin=0.2),
        lambda a, b, y: oc.cosine_embedding_loss(a, b, y, 0.2),
        (N(5, 3), N(5, 3), Choice((-1.0, 1.0), 5, grad=False)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "margin_ranking_loss",
        lambda a, b, y: F.margin_ranking_loss(a, b, y, margin=0.3),
        lambda a, b, y: oc.margin_ranking_loss(a, b, y, 0.3),
        (N(6), N(6), Choice((-1.0, 1.0), 6, grad=False)),
        edges=edges("empty noncontig"),
    ),
    Row(
        "bce_with_logits-pos_weight",
        lambda x, y, w, pw: F.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw),
        lambda x, y, w, pw: oc.bce_with_logits(x, y, w, pw),
        (N(5, 3), Unit(5, 3, grad=False), Pos(5, 3, grad=False), Pos(3, batch=None, grad=False)),
        edges=edges("empty noncontig"),
    ),
]


def _unique(a):
    vals, inv, counts = np.unique(a, return_inverse=True, return_counts=True)
    return vals, inv.reshape(a.shape).astype(np.int64), counts.astype(np.int64)


BY_ID = {r.id: r for r in ROWS}
assert len(BY_ID) == len(ROWS), "row ids must be unique"

# ------------------------------------------------------------------------------ known bugs

# (test, row id) -> the bug, in one line; (test, row id, device) where only one device has
# it. Empty now: the thirteen bugs this table found at first (scatter_reduce prod/amax/amin,
# bincount's dtype, isclose with infinities, median with NaN, fmod and % by infinity, prod
# and median of nothing outside the graph, nonzero of 0-d, interpolate's scale_factor,
# unflatten of an empty tensor, copysign broadcasting, 0-d host integer ops) are fixed, and
# the rows that found them now pass.
XFAIL: dict[tuple, str] = {}


def params(test: str, rows) -> list:
    out = []
    for r in rows:
        reason = XFAIL.get((test, r.id))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(r, id=r.id, marks=marks))
    return out


def xfail_on_device(request, test: str, row: Row, device: str) -> None:
    reason = XFAIL.get((test, row.id, device))
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def need_gpu() -> None:
    if not fg.gpu_available():
        if os.environ.get("FERROGRAD_REQUIRE_GPU") == "1":
            pytest.fail("FERROGRAD_REQUIRE_GPU=1 but no GPU adapter was found")
        pytest.skip("no GPU adapter")


def skip_if_cpu_only(row: Row, device: str) -> None:
    if device != "cpu" and not row.gpu:
        pytest.skip(f"{row.id}: not a GPU op (integer-only, or a float64 result)")


# ------------------------------------------------------------------------------ the table itself


def test_the_table_covers_issue_16():
    """Each op of the issue has at least one row, and each row's declarations fit its args."""
    ops = (
        "prod cumsum cumprod cummax cummin logcumsumexp std_mean var_mean median kthvalue sum-dtype "
        "count_nonzero sum mean amax amin std var logsumexp index-list index-tensor index-two scatter "
        "scatter_add scatter_reduce-sum scatter_reduce-prod scatter_reduce-amax scatter_reduce-amin "
        "scatter_reduce-mean index_add index_copy masked_select nonzero where-one-arg bincount unique "
        "gather index_select flip roll tril triu diag diagonal unflatten Tensor.unfold repeat_interleave "
        "meshgrid movedim swapaxes tile broadcast_to einsum-ellipsis lerp logaddexp copysign fmod "
        "remainder floor_divide isclose lshift rshift bitwise_not-int cdist normalize softmin sdpa-causal "
        "softmax log_softmax conv1d conv2d conv_transpose2d max_pool2d avg_pool2d adaptive_avg_pool2d "
        "pad-constant pad-reflect pad-replicate pad-circular interpolate-nearest interpolate-bilinear "
        "nll_loss-NCd cross_entropy-NCd kl_div cosine_embedding_loss margin_ranking_loss "
        "bce_with_logits-pos_weight"
    ).split()
    missing = [op for op in ops if not any(r.id.startswith(op) for r in ROWS)]
    assert not missing, missing
    for r in ROWS:
        if r.bcast is not None:
            assert len(r.bcast) == len(r.args) and "bcast" in r.edges, r.id
        for a in r.args:
            if a.batch is not None:
                assert a.kind != "fixed" and a.batch < len(a.shape), r.id


# ------------------------------------------------------------------------------ 1. forward


@pytest.mark.parametrize("row", params("forward", ROWS))
def test_forward_matches_numpy(row: Row, device, request):
    """float64 (CPU) and float32 (each device) against the float64 reference."""
    skip_if_cpu_only(row, device)
    xfail_on_device(request, "forward", row, device)
    arrs = oc.arrays(row)
    dtypes = (
        [(fg.float64, row.tol64), (fg.float32, row.tol32)] if device == "cpu" else [(fg.float32, row.tolgpu)]
    )
    for dtype, tol in dtypes:
        want = oc.reference(row, oc.cast(arrs, row, dtype))
        y = row.fn(*oc.tensors(arrs, row, dtype, device), **row.kw)
        oc.check_outputs(row, y, want, dtype, tol, f"{row.id} {dtype} on {device}", device)


# ------------------------------------------------------------------------------ 2. gradcheck


def _joined(row: Row):
    """The row's call as one tensor (gradcheck takes one): its float outputs, flattened and
    concatenated."""

    def call(*ts):
        outs = oc.float_outputs(row.fn(*ts, **row.kw))
        return outs[0] if len(outs) == 1 else fg.cat([o.reshape(-1) for o in outs])

    return call


@pytest.mark.parametrize("row", params("gradcheck", [r for r in ROWS if r.diff]))
def test_gradcheck_float64(row: Row):
    ts = oc.tensors(oc.arrays(row), row, fg.float64, grad=True)
    out = _joined(row)(*ts)
    assert out.requires_grad, f"{row.id}: the output does not require grad"
    assert gradcheck(_joined(row), ts)


# ------------------------------------------------------------------------------ 3. CPU = GPU


@pytest.mark.parametrize("row", params("gpu", [r for r in ROWS if r.gpu]))
def test_gpu_matches_cpu(row: Row):
    """float32 on both devices: every output, and for differentiable rows the gradient of
    sum(out * w) (w fixed random weights) for each input that takes one."""
    need_gpu()
    arrs = oc.arrays(row)
    got = {}
    for dev in ("cpu", "gpu"):
        ts = oc.tensors(arrs, row, fg.float32, dev, grad=row.diff)
        y = row.fn(*ts, **row.kw)
        outs = [t.numpy() for t in oc.outputs(y)]
        grads = []
        if row.diff:
            oc.weighted_sum(y, row.id, dev).backward()
            for t, arg in zip(ts, row.args):
                if arg.wants_grad:
                    grads.append(oc.grad_of(t))
        got[dev] = (outs, grads)
    for k, (g, c) in enumerate(zip(got["gpu"][0], got["cpu"][0])):
        assert g.dtype == c.dtype, f"{row.id}: output {k} is {g.dtype} on the GPU, {c.dtype} on the CPU"
        oc.same(g, c, *row.tolgpu, f"{row.id}: output {k}, GPU vs CPU")
    for k, (g, c) in enumerate(zip(got["gpu"][1], got["cpu"][1])):
        oc.same(g, c, *row.tolgpu, f"{row.id}: gradient {k}, GPU vs CPU")


# ------------------------------------------------------------------------------ 4. edges


def _edge_dtype(device: str, row: Row):
    return (fg.float64, row.tol64) if device == "cpu" else (fg.float32, row.tolgpu)


def _with(edge: str) -> list[Row]:
    return [r for r in ROWS if edge in r.edges]


def _run_variant(row: Row, variant: str, device: str):
    skip_if_cpu_only(row, device)
    dtype, tol = _edge_dtype(device, row)
    arrs = oc.arrays(row, variant)
    want = oc.reference(row, oc.cast(arrs, row, dtype))
    ts = oc.tensors(arrs, row, dtype, device, grad=row.diff)
    y = row.fn(*ts, **row.kw)
    oc.check_outputs(row, y, want, dtype, tol, f"{row.id} ({variant}) on {device}", device)
    return arrs, ts, y


@pytest.mark.parametrize("row", params("empty", _with("empty")))
def test_edge_empty_batch(row: Row, device, request):
    """A zero-size batch dim: NumPy's shapes and values (NaN for a mean over nothing), and
    a backward pass that gives each input a gradient of its own (empty) shape."""
    xfail_on_device(request, "empty", row, device)
    arrs, ts, y = _run_variant(row, "empty", device)
    assert any(a.size == 0 for a in arrs), f"{row.id}: the variant has no empty input"
    if row.diff:
        oc.weighted_sum(y, row.id, device).backward()
        for t, arg in zip(ts, row.args):
            if arg.wants_grad and t.grad is not None:
                assert tuple(t.grad.shape) == tuple(t.shape), f"{row.id}: gradient of shape {t.grad.shape}"


@pytest.mark.parametrize("row", params("0d", _with("0d")))
def test_edge_zero_dim(row: Row, device, request):
    """Rows on 0-d operands: NumPy's values, and NumPy's result shapes (0-d for elementwise
    rows; nonzero's (z, 0) index matrix)."""
    xfail_on_device(request, "0d", row, device)
    arrs, _, y = _run_variant(row, "0d", device)
    assert any(a.ndim == 0 for a in arrs)
    want = oc.reference(row, arrs)
    got = [tuple(t.shape) for t in oc.outputs(y)]
    assert got == [w.shape for w in want], f"{row.id}: shapes {got} on 0-d input"
    if row.id != "nonzero-int":
        assert all(t.ndim == 0 for t in oc.outputs(y)), f"{row.id}: a 0-d op gives a 0-d result"


@pytest.mark.parametrize("row", params("bcast", _with("bcast")))
def test_edge_broadcast(row: Row, device, request):
    """Operands of different shapes that broadcast (values, and on the CPU a float64
    gradcheck), then arg 0 as an expanded (stride 0) view of its first entry along dim 0
    (values, and its gradient: the contiguous copy's, summed over dim 0)."""
    xfail_on_device(request, "bcast", row, device)
    arrs, _, _ = _run_variant(row, "bcast", device)
    assert len({a.shape for a in arrs}) > 1, f"{row.id}: the bcast shapes are all the same"
    if row.diff and device == "cpu":
        assert gradcheck(_joined(row), oc.tensors(arrs, row, fg.float64, grad=True))
    dtype, tol = _edge_dtype(device, row)
    arrs = oc.cast(oc.arrays(row), row, dtype)
    a0 = np.broadcast_to(arrs[0][:1], arrs[0].shape)
    want = oc.reference(row, [a0] + arrs[1:])
    contig = oc.tensors([np.ascontiguousarray(a0)] + arrs[1:], row, dtype, device, grad=row.diff)
    first = oc.tensors([np.ascontiguousarray(arrs[0][:1])], row, dtype, device, grad=row.diff)[0]
    view = first.expand(*arrs[0].shape)
    assert not view.is_contiguous()
    y = row.fn(view, *contig[1:], **row.kw)
    oc.check_outputs(row, y, want, dtype, tol, f"{row.id} (expanded arg 0) on {device}", device)
    if row.diff and row.args[0].wants_grad:
        oc.weighted_sum(row.fn(*contig, **row.kw), row.id, device).backward()
        oc.weighted_sum(y, row.id, device).backward()
        g_c = oc.grad_of(contig[0]).sum(0, keepdims=True)
        oc.same(oc.grad_of(first), g_c, *tol, f"{row.id} (expanded arg 0): gradient")


@pytest.mark.parametrize("row", params("special", _with("special")))
def test_edge_nan_and_infinities(row: Row, device, request):
    """NaN and +-inf at fixed positions: NaN exactly where the reference has NaN (equal_nan),
    the same infinities, the rest close."""
    xfail_on_device(request, "special", row, device)
    arrs, _, _ = _run_variant(row, "special", device)
    assert any(a.dtype.kind == "f" and not np.isfinite(a).all() for a in arrs)


@pytest.mark.parametrize("row", params("noncontig", _with("noncontig")))
def test_edge_non_contiguous(row: Row, device, request):
    """Every input as a non-contiguous view (dims reversed, or every other entry): the
    values NumPy gives and the same op gives on contiguous copies, and the same gradients."""
    skip_if_cpu_only(row, device)
    xfail_on_device(request, "noncontig", row, device)
    dtype, tol = _edge_dtype(device, row)
    arrs = oc.arrays(row)
    want = oc.reference(row, oc.cast(arrs, row, dtype))
    contig = oc.tensors(arrs, row, dtype, device, grad=row.diff)
    y_c = row.fn(*contig, **row.kw)
    views, leaves, backs = [], [], []
    for a, arg, fresh in zip(arrs, row.args, oc.tensors(arrs, row, dtype, device, grad=row.diff)):
        nc = None if arg.kind == "fixed" else oc.noncontig(a, arg, dtype, device, row.diff)
        leaf, view, back = nc if nc is not None else (fresh, fresh, lambda g: g)
        views.append(view)
        leaves.append(leaf)
        backs.append(back)
    assert any(not v.is_contiguous() for v in views), f"{row.id}: no non-contiguous input"
    y = row.fn(*views, **row.kw)
    what = f"{row.id} (non-contiguous) on {device}"
    oc.check_outputs(row, y, want, dtype, tol, what, device)
    for k, (t, c) in enumerate(zip(oc.outputs(y), oc.outputs(y_c))):
        oc.same(t.numpy(), c.numpy(), *tol, f"{what}: output {k} vs contiguous")
    if not row.diff:
        return
    oc.weighted_sum(y_c, row.id, device).backward()
    oc.weighted_sum(y, row.id, device).backward()
    for arg, t, leaf, back in zip(row.args, contig, leaves, backs):
        if not arg.wants_grad:
            continue
        oc.same(back(oc.grad_of(leaf)), oc.grad_of(t), *tol, f"{what}: gradient vs contiguous")
