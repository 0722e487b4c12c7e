"""The machinery behind tests/test_op_table.py (issue 16's one op table): what a row of the
table is (`Row`, with its inputs as `Arg`s), how a row's inputs are drawn (per row, from a
fixed seed) and laid out for each edge variant (empty, 0-d, non-contiguous, broadcast,
NaN/inf), how results are compared, and the NumPy references too long for a lambda (direct
loops for the spatial ops, PyTorch's rules for scans, scatters and losses).

Every reference works in float64 on NumPy arrays and follows PyTorch's documented
behaviour; where NumPy's differs (NaN in a median, the ties of cummax), the reference says
so.
"""

from __future__ import annotations

import math
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import ferrograd as fg

# ------------------------------------------------------------------------------ rows

FLOAT_KINDS = {"normal", "positive", "away", "distinct", "unit", "sparse", "choice"}
EDGES = {"empty", "0d", "noncontig", "bcast", "special"}


@dataclass(frozen=True, eq=False)
class Arg:
    """One input of a row: its shape and how it is drawn.

    kind: "normal"; "positive" (0.5..2); "away" (|x| in 0.2..1.8, both signs: clear of the
    kinks at 0); "distinct" (a shuffled 0.25-spaced grid: no ties); "unit" (0.05..0.95);
    "sparse" (normal, about 40% exact zeros); "choice" (floats drawn from `values`); "int"
    (int64 in [lo, hi)); "perm" (int64, distinct along the last dim, from [0, hi)); "bool";
    "fixed" (`value` as given, in every variant). The float kinds take the test's dtype.
    batch: the dim the "empty" variant sets to 0 and the "0-d" variant drops (None: the arg
    is a parameter that keeps its shape). grad: a float arg the gradients are taken for.
    """

    shape: tuple[int, ...] = ()
    kind: str = "normal"
    lo: int = 0
    hi: int = 1
    values: tuple = ()
    value: Any = field(default=None)
    batch: int | None = 0
    grad: bool = True

    @property
    def is_float(self) -> bool:
        return self.kind in FLOAT_KINDS or (self.kind == "fixed" and np.asarray(self.value).dtype.kind == "f")

    @property
    def wants_grad(self) -> bool:
        return self.is_float and self.grad


@dataclass(frozen=True, eq=False)
class Row:
    """One op: `fn(*tensors, **kw)` against `ref(*arrays, **kw)` (float64 NumPy), on `args`.

    diff: gradcheck it (float64) and compare its gradients across devices. edges: the edge
    variants that apply (see EDGES). bcast: other shapes of the args that broadcast
    together (the "bcast" variant also feeds arg 0 as an expanded view). special: the args
    that get NaN and infinities in the "special" variant. tol64 / tol32 / tolgpu: (rtol,
    atol) against NumPy in float64 and float32 on the CPU, and for the GPU (against NumPy
    and against the CPU). gpu: whether the op runs on the GPU (int64 tensors live on the
    host: integer-only rows do not). out_dtype: the result's dtype when it is not the float
    inputs' (PyTorch's rule), per output.
    """

    id: str
    fn: Callable[..., Any]
    ref: Callable[..., Any]
    args: tuple[Arg, ...]
    kw: dict = field(default_factory=dict)
    diff: bool = True
    edges: frozenset = frozenset()
    bcast: tuple | None = None
    special: tuple[int, ...] = (0,)
    tol64: tuple[float, float] = (1e-10, 1e-12)
    tol32: tuple[float, float] = (2e-5, 2e-5)
    tolgpu: tuple[float, float] = (1e-4, 2e-5)
    gpu: bool = True
    out_dtype: Any = None

    def __post_init__(self):
        assert set(self.edges) <= EDGES, self.id
        if not any(a.is_float or a.kind == "bool" for a in self.args):
            object.__setattr__(self, "gpu", False)
        if self.diff:
            assert any(a.wants_grad for a in self.args), f"{self.id}: differentiable but no grad arg"


def edges(names: str) -> frozenset:
    return frozenset(names.split())


# ------------------------------------------------------------------------------ inputs


def row_rng(row_id: str, what: str = "") -> np.random.Generator:
    """A generator per row (and purpose) from a fixed seed: rows do not shift each other."""
    return np.random.default_rng(zlib.crc32(f"op-table/{row_id}/{what}".encode()))


# NaN and infinities at fixed flat positions: arg 0 gets one set, the other args another,
# so a binary op sees (NaN, x), (inf, inf), (-inf, -inf), (-inf, x), (x, inf), (x, -inf),
# (x, NaN)
SPECIAL_0 = {1: math.nan, 5: math.inf, 7: -math.inf, 8: -math.inf}
SPECIAL_N = {3: math.inf, 5: math.inf, 8: -math.inf, 10: -math.inf, 12: math.nan}


def draw(arg: Arg, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """One input array: float64, int64 or bool."""
    k = arg.kind
    if k == "fixed":
        return np.array(arg.value)
    if k == "normal":
        return rng.standard_normal(shape)
    if k == "positive":
        return rng.uniform(0.5, 2.0, shape)
    if k == "away":
        return rng.uniform(0.2, 1.8, shape) * rng.choice([-1.0, 1.0], shape)
    if k == "distinct":
        n = int(np.prod(shape))
        return rng.permutation((np.arange(n) - n // 2) * 0.25).reshape(shape)
    if k == "unit":
        return rng.uniform(0.05, 0.95, shape)
    if k == "sparse":
        return rng.standard_normal(shape) * (rng.random(shape) > 0.4)
    if k == "choice":
        return rng.choice(np.asarray(arg.values, dtype=np.float64), shape)
    if k == "int":
        return rng.integers(arg.lo, arg.hi, shape, dtype=np.int64)
    if k == "perm":
        keys = rng.random((*shape[:-1], arg.hi))
        return np.argsort(keys, -1)[..., : shape[-1]].astype(np.int64)
    if k == "bool":
        return rng.random(shape) > 0.5
    raise ValueError(f"unknown arg kind {k!r}")


def arrays(row: Row, variant: str = "standard") -> list[np.ndarray]:
    """The row's inputs for a variant: "standard", "empty", "0d", "bcast", "special"."""
    rng = row_rng(row.id, variant)
    out = []
    for j, arg in enumerate(row.args):
        shape = tuple(arg.shape)
        if variant == "empty" and arg.batch is not None and shape and arg.kind != "fixed":
            shape = shape[: arg.batch] + (0,) + shape[arg.batch + 1 :]
        elif variant == "0d" and arg.batch is not None and arg.kind != "fixed":
            shape = ()
        elif variant == "bcast" and row.bcast is not None and row.bcast[j] is not None:
            shape = tuple(row.bcast[j])
        a = draw(arg, shape, rng)
        if variant == "special" and j in row.special and arg.is_float:
            a = a.copy()
            flat = a.reshape(-1)
            for pos, v in (SPECIAL_0 if j == 0 else SPECIAL_N).items():
                if pos < flat.size:
                    flat[pos] = v
        out.append(a)
    return out


def cast(arrs: list[np.ndarray], row: Row, dtype) -> list[np.ndarray]:
    """The arrays as the test's precision rounds them (float args in `dtype`), in float64:
    what the reference sees."""
    np_dtype = np.float32 if dtype == fg.float32 else np.float64
    return [a.astype(np_dtype).astype(np.float64) if arg.is_float else a for a, arg in zip(arrs, row.args)]


def tensors(arrs, row: Row, dtype, device: str = "cpu", grad: bool = False) -> list:
    """Contiguous tensors of the arrays: float args in `dtype` on `device` (requiring grad
    when `grad` and the arg takes one), bool args on `device`, int64 args on the host."""
    out = []
    for a, arg in zip(arrs, row.args):
        if arg.is_float:
            out.append(fg.tensor(a, dtype=dtype, device=device, requires_grad=grad and arg.grad))
        elif a.dtype == bool:
            out.append(fg.tensor(a, device=device))
        else:
            out.append(fg.tensor(a))
    return out


def noncontig(a: np.ndarray, arg: Arg, dtype, device: str, grad: bool):
    """(leaf, view, to_input): a non-contiguous view holding `a`'s values (every dim
    reversed for 2-D and up, every other entry of a longer leaf for 1-D) and a map from the
    leaf's gradient to `a`'s layout (None: the arg stays contiguous)."""
    kw = {"device": device if (arg.is_float or a.dtype == bool) else "cpu"}
    if arg.is_float:
        kw.update(dtype=dtype, requires_grad=grad and arg.grad)
    if a.ndim >= 2:
        perm = tuple(range(a.ndim))[::-1]  # reversal is its own inverse
        leaf = fg.tensor(np.ascontiguousarray(a.transpose(perm)), **kw)
        return leaf, leaf.permute(*perm), lambda g: g.transpose(perm)
    if a.ndim == 1:
        big = np.zeros((2 * a.shape[0],), a.dtype)
        big[::2] = a
        leaf = fg.tensor(big, **kw)
        return leaf, leaf[::2], lambda g: g[::2]
    return None


def outputs(y) -> list:
    return list(y) if isinstance(y, (tuple, list)) else [y]


def reference(row: Row, arrs) -> list[np.ndarray]:
    """The row's reference on float64 arrays, warnings of empty means and invalid values
    silenced (they are what is tested)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return [np.asarray(w) for w in outputs(row.ref(*arrs, **row.kw))]


def expected_dtype(row: Row, k: int, want: np.ndarray, dtype):
    if row.out_dtype is not None:
        return row.out_dtype[k] if isinstance(row.out_dtype, tuple) else row.out_dtype
    return {"f": dtype, "b": fg.bool_, "i": fg.int64, "u": fg.int64}[want.dtype.kind]


def same(got: np.ndarray, want: np.ndarray, rtol: float, atol: float, what: str) -> None:
    """Same shape; NaN exactly where `want` has NaN (equal_nan), the same infinities, the
    finite values close; integers and bools equal."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, want {want.shape}"
    if want.dtype.kind in "biu" and got.dtype.kind in "biu":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    g, w = got.astype(np.float64), want.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=f"{what}: NaN positions")
    inf = np.isinf(w) | np.isinf(g)
    np.testing.assert_array_equal(g[inf], w[inf], err_msg=f"{what}: infinities")
    fin = ~(np.isnan(w) | inf)
    np.testing.assert_allclose(g[fin], w[fin], rtol=rtol, atol=atol, err_msg=what)


def check_outputs(row: Row, y, want: list[np.ndarray], dtype, tol, what: str, device: str = "cpu") -> None:
    ys = outputs(y)
    assert len(ys) == len(want), f"{what}: {len(ys)} outputs, want {len(want)}"
    for k, (t, w) in enumerate(zip(ys, want)):
        assert isinstance(t, fg.Tensor), f"{what}: output {k} is {type(t).__name__}"
        assert t.dtype == expected_dtype(row, k, w, dtype), f"{what}: output {k} dtype {t.dtype}"
        if device != "cpu" and t.dtype.is_floating_point:
            assert t.device == device, f"{what}: output {k} on {t.device}"
        same(t.numpy(), w, *tol, f"{what}: output {k}")


def float_outputs(y) -> list:
    return [t for t in outputs(y) if t.dtype.is_floating_point]


def grad_of(t) -> np.ndarray:
    """t's gradient; None (no differentiable path reaches t, as copysign's `other`, whose
    derivative is 0) counts as zeros, as gradcheck counts it."""
    return np.zeros(tuple(t.shape)) if t.grad is None else t.grad.numpy()


def weighted_sum(y, seed_name: str, device: str):
    """sum(out * w) over the float outputs, w fixed random weights: a scalar to backprop."""
    rng = row_rng(seed_name, "weights")
    total = None
    for t in float_outputs(y):
        w = rng.standard_normal(tuple(t.shape)).astype(np.float32)
        term = (t * fg.tensor(w, dtype=t.dtype, device=device)).sum()
        total = term if total is None else total + term
    return total


# ------------------------------------------------------------------------------ references: scans


def cum_extreme(a: np.ndarray, axis: int, greater: bool):
    """torch.cummax / cummin: the running extreme and its index; ties take the later index
    (PyTorch compares with >= / <=); a NaN wins and stays."""
    x = np.moveaxis(a, axis, -1)
    vals, idx = np.empty_like(x), np.zeros(x.shape, np.int64)
    for pos in np.ndindex(x.shape[:-1]):
        best, bi = None, 0
        for j, v in enumerate(x[pos]):
            take = (
                best is None
                or math.isnan(v)
                or (not math.isnan(best) and (v >= best if greater else v <= best))
            )
            if take:
                best, bi = v, j
            vals[pos + (j,)], idx[pos + (j,)] = best, bi
    return np.moveaxis(vals, -1, axis), np.moveaxis(idx, -1, axis)


def median_dim(a: np.ndarray, axis: int):
    """torch.median(dim): the lower median ((n - 1) // 2-th smallest) and its index; a
    slice holding NaN gives NaN and the NaN's index (NumPy's np.median averages the two
    middle values instead; torch.nanmedian's docs say torch.median returns NaN)."""
    x = np.moveaxis(a, axis, -1)
    order = np.argsort(x, -1, kind="stable")
    k = (x.shape[-1] - 1) // 2
    idx = order[..., k]
    has_nan = np.isnan(x).any(-1)
    idx = np.where(has_nan, np.argmax(np.isnan(x), -1), idx)
    vals = np.take_along_axis(x, idx[..., None], -1)[..., 0]
    return vals, idx.astype(np.int64)


def median_all(a: np.ndarray):
    flat = np.sort(a.reshape(-1))
    if flat.size == 0 or np.isnan(flat).any():
        return np.array(math.nan)
    return np.array(flat[(flat.size - 1) // 2])


def kthvalue(a: np.ndarray, k: int, axis: int):
    """torch.kthvalue: the k-th smallest (NaN sorts last, as in PyTorch's sort) and its index."""
    order = np.argsort(a, axis, kind="stable")
    idx = np.take(order, [k - 1], axis)
    return np.take_along_axis(a, idx, axis).squeeze(axis), idx.squeeze(axis).astype(np.int64)


def logsumexp(a: np.ndarray, axis) -> np.ndarray:
    """PyTorch's logsumexp: the maximum's shift is dropped where it is infinite, so a +inf
    entry gives +inf and an all -inf slice -inf (not NaN)."""
    m = np.max(a, axis=axis, keepdims=True, initial=-np.inf)  # over nothing: -inf, as PyTorch's
    m = np.where(np.isinf(m), 0.0, m)
    return np.squeeze(np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m, axis=axis)


def softmax(a: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(a - a.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def log_softmax(a: np.ndarray, axis: int) -> np.ndarray:
    s = a - a.max(axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis, keepdims=True))


# ------------------------------------------------------------------------------ references: indexing


def _scatter_targets(index: np.ndarray, dim: int):
    """(index position, target position) pairs of PyTorch's scatter rule:
    out[..., index[p], ...] (index[p] at dim `dim`) takes src[p]."""
    for p in np.ndindex(index.shape):
        t = list(p)
        t[dim] = int(index[p])
        yield p, tuple(t)


def scatter(x, index, src, dim: int):
    out = x.copy()
    for p, t in _scatter_targets(index, dim):
        out[t] = src[p]
    return out


def scatter_value(x, index, dim: int, value: float):
    out = x.copy()
    for _, t in _scatter_targets(index, dim):
        out[t] = value
    return out


def scatter_reduce(x, index, src, dim: int, reduce: str, include_self: bool = True):
    """torch.scatter_reduce: each position that receives entries becomes their reduction
    (with its own value when `include_self`; "mean" divides by the count of both); the
    others keep their value."""
    got: dict[tuple, list[float]] = {}
    for p, t in _scatter_targets(index, dim):
        got.setdefault(t, [x[t]] if include_self else []).append(src[p])
    fold = {"sum": np.sum, "prod": np.prod, "amax": np.max, "amin": np.min, "mean": np.mean}[reduce]
    out = x.copy()
    for t, vs in got.items():
        out[t] = fold(np.array(vs))
    return out


def index_add(x, index, source, dim: int, alpha: float = 1.0):
    out = x.copy()
    for j, i in enumerate(index):
        sl = [slice(None)] * x.ndim
        sl[dim] = int(i)
        out[tuple(sl)] += alpha * np.take(source, j, dim)
    return out


def index_copy(x, index, source, dim: int):
    out = x.copy()
    for j, i in enumerate(index):
        sl = [slice(None)] * x.ndim
        sl[dim] = int(i)
        out[tuple(sl)] = np.take(source, j, dim)
    return out


def masked_select(x, mask):
    shape = np.broadcast_shapes(x.shape, mask.shape)
    return np.broadcast_to(x, shape)[np.broadcast_to(mask, shape)]


def unfold(a, dim: int, size: int, step: int):
    """Tensor.unfold: windows of `size` entries `step` apart along `dim`, as a new last dim."""
    w = np.lib.stride_tricks.sliding_window_view(a, size, axis=dim)
    sl = [slice(None)] * w.ndim
    sl[dim] = slice(None, None, step)
    return np.ascontiguousarray(w[tuple(sl)])


# ------------------------------------------------------------------------------ references: math


def cdist(x1, x2, p: float):
    d = np.abs(x1[..., :, None, :] - x2[..., None, :, :])
    return d.sum(-1) if p == 1 else np.sqrt((d**2).sum(-1))


def normalize(a, dim: int, eps: float = 1e-12):
    return a / np.maximum(np.sqrt((a**2).sum(dim, keepdims=True)), eps)


def sdpa(q, k, v, causal: bool):
    s = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if causal:
        s = np.where(np.tri(s.shape[-2], s.shape[-1], dtype=bool), s, -np.inf)
    return softmax(s, -1) @ v


# ------------------------------------------------------------------------------ references: spatial


def conv2d(x, w, b, stride, padding, dilation, groups):
    """Direct cross-correlation (N, C, H, W) * (OC, C / groups, KH, KW), PyTorch's shapes."""
    n, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, oc, oh, ow))
    per_group = oc // groups
    for o in range(oc):
        g = o // per_group
        chans = xp[:, g * cg : (g + 1) * cg]
        for i in range(oh):
            for j in range(ow):
                for a in range(kh):
                    for bb in range(kw):
                        out[:, o, i, j] += chans[:, :, i * sh + a * dh, j * sw + bb * dw] @ w[o, :, a, bb]
        if b is not None:
            out[:, o] += b[o]
    return out


def conv1d(x, w, b, stride, padding, dilation, groups):
    y = conv2d(x[:, :, None], w[:, :, None], b, (1, stride), (0, padding), (1, dilation), groups)
    return y[:, :, 0]


def conv_transpose2d(x, w, b, stride, padding, output_padding, dilation, groups=1):
    """Each input entry scattered through the kernel: out[g, o, i s + a d - p] +=
    x[g, c, i] w[g, c, o, a] per group g, with PyTorch's output size."""
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    ow = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    cg = c // groups
    full = np.zeros((n, og * groups, oh + 2 * ph, ow + 2 * pw))
    for g in range(groups):
        xs, ws, outs = slice(g * cg, (g + 1) * cg), w[g * cg : (g + 1) * cg], slice(g * og, (g + 1) * og)
        for i in range(h):
            for j in range(wd):
                for a in range(kh):
                    for bb in range(kw):
                        full[:, outs, i * sh + a * dh, j * sw + bb * dw] += x[:, xs, i, j] @ ws[:, :, a, bb]
    out = full[:, :, ph : ph + oh, pw : pw + ow]
    return out + (0.0 if b is None else b[None, :, None, None])


def _pool_size(size: int, k: int, s: int, p: int, ceil_mode: bool, d: int = 1) -> int:
    """PyTorch's pooling output size: a ceil_mode window must start inside the input or
    its left padding."""
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def max_pool2d(x, k, s, p, ceil_mode=False, d=1):
    """The maximum over each window of taps d apart, the padding (and a ceil_mode window's
    overhang) -inf."""
    n, c, h, w = x.shape
    oh, ow = _pool_size(h, k, s, p, ceil_mode, d), _pool_size(w, k, s, p, ceil_mode, d)
    big = np.full((n, c, h + 2 * p + k * d + s, w + 2 * p + k * d + s), -np.inf)
    big[:, :, p : p + h, p : p + w] = x
    out = np.full((n, c, oh, ow), -np.inf)
    for i in range(oh):
        for j in range(ow):
            win = big[:, :, i * s : i * s + d * (k - 1) + 1 : d, j * s : j * s + d * (k - 1) + 1 : d]
            out[:, :, i, j] = win.max(axis=(2, 3))
    return out


def max_pool1d(x, k, s, p, ceil_mode=False, d=1):
    """max_pool2d's reference over (N, C, L): a (1, k) window."""
    n, c, length = x.shape
    out_len = _pool_size(length, k, s, p, ceil_mode, d)
    big = np.full((n, c, length + 2 * p + k * d + s), -np.inf)
    big[:, :, p : p + length] = x
    return np.stack([big[:, :, i * s : i * s + d * (k - 1) + 1 : d].max(axis=2) for i in range(out_len)], 2)


def avg_pool1d(x, k, s, p, ceil_mode=False, count_include_pad=True):
    """avg_pool2d's reference over (N, C, L)."""
    return avg_pool2d_hw(x[:, :, None], (1, k), (1, s), (0, p), ceil_mode, count_include_pad)[:, :, 0]


def avg_pool2d_hw(x, k, s, p, ceil_mode=False, count_include_pad=True):
    """avg_pool2d with a (kh, kw) kernel, (sh, sw) stride and (ph, pw) padding."""
    n, c, h, w = x.shape
    oh, ow = _pool_size(h, k[0], s[0], p[0], ceil_mode), _pool_size(w, k[1], s[1], p[1], ceil_mode)
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * s[0] - p[0], j * s[1] - p[1]
            r1, c1 = min(r0 + k[0], h + p[0]), min(c0 + k[1], w + p[1])
            padded = (r1 - r0) * (c1 - c0)
            r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, h), min(c1, w)
            total = x[:, :, r0:r1, c0:c1].sum(axis=(2, 3))
            out[:, :, i, j] = total / (padded if count_include_pad else (r1 - r0) * (c1 - c0))
    return out


def batch_norm(x, mean, var, w, b, training: bool, eps: float = 1e-5):
    """Per channel (dim 1) over every other dim: the batch's mean and biased variance when
    training, else the given running statistics."""
    axes = tuple(i for i in range(x.ndim) if i != 1)
    shape = [1, -1] + [1] * (x.ndim - 2)
    if training:
        mean, var = x.mean(axis=axes), x.var(axis=axes)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    return y * w.reshape(shape) + b.reshape(shape)


def layer_norm(x, w, b, k: int, eps: float = 1e-5):
    """Over the last k dims, biased variance."""
    axes = tuple(range(x.ndim - k, x.ndim))
    y = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    return y * w + b


def masked_scatter(x, mask, source):
    """x with its masked positions (mask broadcast to x) filled by source's first elements
    in row-major order."""
    out = x.copy()
    m = np.broadcast_to(mask, x.shape)
    out[m] = source.ravel()[: int(m.sum())]
    return out


def avg_pool2d(x, k, s, p, ceil_mode=False, count_include_pad=True):
    """PyTorch's divisor: the window clipped to the padded input (count_include_pad), or
    to the input itself."""
    n, c, h, w = x.shape
    oh, ow = _pool_size(h, k, s, p, ceil_mode), _pool_size(w, k, s, p, ceil_mode)
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * s - p, j * s - p
            r1, c1 = min(r0 + k, h + p), min(c0 + k, w + p)
            padded = (r1 - r0) * (c1 - c0)
            r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, h), min(c1, w)
            total = x[:, :, r0:r1, c0:c1].sum(axis=(2, 3))
            out[:, :, i, j] = total / (padded if count_include_pad else (r1 - r0) * (c1 - c0))
    return out


def adaptive_avg_pool2d(x, oh: int, ow: int):
    """Window i of n over a dim of size L: [floor(i L / n), ceil((i + 1) L / n))."""
    n, c, h, w = x.shape
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, r1 = (i * h) // oh, -((-(i + 1) * h) // oh)
            c0, c1 = (j * w) // ow, -((-(j + 1) * w) // ow)
            out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return out


def pad(x, widths, mode: str, value: float = 0.0):
    """F.pad's (left, right, top, bottom, ...) from the last dim, as np.pad's modes:
    reflect = "reflect", replicate = "edge", circular = "wrap"; a negative constant pad
    crops."""
    pw = [(0, 0)] * x.ndim
    crop = [slice(None)] * x.ndim
    for i in range(len(widths) // 2):
        lo, hi = widths[2 * i], widths[2 * i + 1]
        dim = x.ndim - 1 - i
        pw[dim] = (max(lo, 0), max(hi, 0))
        crop[dim] = slice(max(-lo, 0), x.shape[dim] - max(-hi, 0))
    x = x[tuple(crop)]
    if mode == "constant":
        return np.pad(x, pw, constant_values=value)
    return np.pad(x, pw, mode={"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode])


def _linear_taps(out: int, size: int, align_corners: bool, scale: float):
    """Source positions of a linear resize: `scale` is input / output size, or 1 /
    scale_factor when one is given (PyTorch uses it directly unless asked to recompute)."""
    if align_corners:
        src = np.arange(out) * ((size - 1) / (out - 1) if out > 1 else 0.0)
    else:  # half-pixel centres, clamped at 0 (PyTorch's area_pixel_compute_source_index)
        src = np.maximum((np.arange(out) + 0.5) * scale - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), size - 1)
    hi = np.minimum(lo + 1, size - 1)
    return lo, hi, src - lo


def interpolate(x, size=None, mode: str = "nearest", align_corners: bool | None = None, scale_factor=None):
    """F.interpolate of (N, C, H, W) to `size`, or by `scale_factor` (the output size is
    floor(in * scale_factor), and the scale 1 / scale_factor maps output to input
    positions): "nearest" takes source floor(i * scale), "bilinear" weighs the two
    neighbours along each dim."""
    h, w = x.shape[2], x.shape[3]
    if scale_factor is not None:
        oh, ow = math.floor(h * scale_factor), math.floor(w * scale_factor)
        sy = sx = 1.0 / scale_factor
    else:
        oh, ow = size
        sy, sx = h / oh, w / ow
    if mode == "nearest":
        iy = np.minimum(np.floor(np.arange(oh) * sy).astype(np.int64), h - 1)
        ix = np.minimum(np.floor(np.arange(ow) * sx).astype(np.int64), w - 1)
        return x[:, :, iy][:, :, :, ix]
    y0, y1, fy = _linear_taps(oh, h, bool(align_corners), sy)
    x0, x1, fx = _linear_taps(ow, w, bool(align_corners), sx)
    rows = x[:, :, y0] * (1 - fy)[:, None] + x[:, :, y1] * fy[:, None]
    return rows[:, :, :, x0] * (1 - fx) + rows[:, :, :, x1] * fx


# ------------------------------------------------------------------------------ references: losses


def nll_loss(logp, target, weight=None, ignore_index=-100, reduction="mean"):
    """PyTorch's NLL over (N, C, d1...) and (N, d1...): -w[t] logp[n, t, d...], ignored
    labels add nothing; "mean" divides by the summed weights of the kept labels."""
    c = logp.shape[1]
    w = np.ones(c) if weight is None else weight
    keep = target != ignore_index
    safe = np.where(keep, target, 0)
    picked = np.take_along_axis(logp, safe[:, None], 1)[:, 0]
    per = -picked * w[safe] * keep
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    return per.sum() / (w[safe] * keep).sum()


def cross_entropy(x, target, weight=None, reduction="mean", label_smoothing=0.0):
    """PyTorch's cross entropy with class labels: (1 - e) * the weighted NLL of the
    log-softmax + e / C * its weighted sum over the classes; "mean" divides both by the
    summed label weights."""
    logp = log_softmax(x, 1)
    c = x.shape[1]
    w = np.ones(c) if weight is None else weight
    nll = nll_loss(logp, target, w, reduction="none")
    wshape = (1, c) + (1,) * (x.ndim - 2)
    smooth = -(logp * w.reshape(wshape)).sum(1)
    per = (1 - label_smoothing) * nll + label_smoothing / c * smooth
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    return per.sum() / w[target].sum()


def kl_div(logp, target, reduction="mean", log_target=False):
    if log_target:
        point = np.exp(target) * (target - logp)
    else:
        point = np.where(target > 0, target * (np.log(np.where(target > 0, target, 1.0)) - logp), 0.0)
    if reduction == "batchmean":
        return point.sum() / logp.shape[0]
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](point)


def cosine_embedding_loss(x1, x2, y, margin=0.0):
    cos = (x1 * x2).sum(-1) / np.sqrt((x1**2).sum(-1) * (x2**2).sum(-1))
    return np.where(y == 1, 1 - cos, np.maximum(0.0, cos - margin)).mean()


def margin_ranking_loss(x1, x2, y, margin=0.0):
    return np.maximum(0.0, -y * (x1 - x2) + margin).mean()


def bce_with_logits(x, y, weight=None, pos_weight=None, reduction="mean"):
    """-(pos_weight y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))) * weight, stably."""
    log_sig = np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))  # log sigmoid(x)
    log_1m = log_sig - x  # log(1 - sigmoid(x))
    pw = 1.0 if pos_weight is None else pos_weight
    per = -(pw * y * log_sig + (1 - y) * log_1m) * (1.0 if weight is None else weight)
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](per)
