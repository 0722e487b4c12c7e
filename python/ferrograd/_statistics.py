"""More of PyTorch's tensor functions, composed from ops on both devices: reductions that
skip NaN (`nansum`, `nanmean`, `nanmedian`), `quantile`/`nanquantile`, `cov`/`corrcoef`,
`histc`, sorted search (`searchsorted`, `bucketize`), and constructions (`kron`,
`block_diag`, `cartesian_prod`, `diag_embed`, `diagflat`, `logspace`), plus `heaviside`,
`gcd`, `lcm`. Functions as `fg.<name>`; those PyTorch has as methods are also attached to
`Tensor` (stubs in `_core.pyi`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _core
from ._composite import _dim, _host, _idx, _method
from ._core import ArgumentError, DTypeError, ShapeError, Tensor

__all__ = [
    "nansum",
    "nanmean",
    "nanmedian",
    "quantile",
    "nanquantile",
    "cov",
    "corrcoef",
    "histc",
    "searchsorted",
    "bucketize",
    "kron",
    "block_diag",
    "cartesian_prod",
    "diag_embed",
    "diagflat",
    "logspace",
    "heaviside",
    "gcd",
    "lcm",
]

_FUNCTIONS_ONLY = {"block_diag", "cartesian_prod", "logspace", "bucketize", "searchsorted"}


def _zero(like: Tensor) -> Tensor:
    return _core.full([], 0.0, like.dtype).to(like.device)


def nansum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    """The sum over `dim` with NaN counted as zero, as `torch.nansum`."""
    x = input if dtype is None else input.to(dtype)
    if x.dtype.is_floating_point:
        x = x.masked_fill(x.isnan(), _zero(x))
    return x.sum(dim, keepdim=keepdim)


def nanmean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    """The mean over `dim` of the entries that are not NaN (NaN where all are), as
    `torch.nanmean`."""
    x = input if dtype is None else input.to(dtype)
    if not x.dtype.is_floating_point:
        raise DTypeError(f"nanmean: expected a floating-point tensor, got {x.dtype}")
    keep = ~x.isnan()
    total = x.masked_fill(~keep, _zero(x)).sum(dim, keepdim=keepdim)
    return total / keep.to(x.dtype).sum(dim, keepdim=keepdim)


def _quantile(op: str, x: Tensor, q, dim, keepdim: bool, interpolation: str, skip_nan: bool) -> Tensor:
    if not x.dtype.is_floating_point:
        raise DTypeError(f"{op}: expected a floating-point tensor, got {x.dtype}")
    if interpolation not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise ArgumentError(
            f"{op}: interpolation must be linear, lower, higher, midpoint or nearest, got {interpolation!r}"
        )
    qs = q.detach().cpu().numpy().astype(np.float64) if isinstance(q, Tensor) else np.asarray(q, np.float64)
    if qs.ndim > 1 or (qs.size and (qs.min() < 0 or qs.max() > 1)):
        raise ArgumentError(f"{op}: q must be a number or 1-D, in [0, 1]")
    if dim is None:
        x, d = x.reshape(-1), 0
    else:
        d = _dim(op, dim, x.ndim)
    n = x.shape[d]
    if n == 0:
        raise ArgumentError(f"{op}: cannot take a quantile over an empty dim of shape {tuple(x.shape)}")
    # sorted with NaN last; the rank of each quantile among the valid entries
    vals = x.sort(d).values
    valid = (~x.isnan()).to(_core.dtype.float64).sum(d, keepdim=True).cpu().numpy() if skip_nan else None
    outs = []
    for qv in np.atleast_1d(qs):
        count = valid if valid is not None else np.full((1,), float(n))
        pos = qv * (np.maximum(count, 1) - 1)
        lo, hi = np.floor(pos), np.ceil(pos)
        if interpolation == "lower":
            hi = lo
        elif interpolation == "higher":
            lo = hi
        elif interpolation == "nearest":
            lo = hi = np.round(pos)  # NumPy's (and PyTorch's) round-half-to-even
        frac = (
            np.where(interpolation == "midpoint", 0.5, pos - np.floor(pos))
            if interpolation in ("linear", "midpoint")
            else 0.0
        )
        shape = [1] * x.ndim
        lo_i = _idx(np.broadcast_to(lo, np.broadcast_shapes(np.shape(lo), tuple(shape))).astype(np.int64))
        hi_i = _idx(np.broadcast_to(hi, np.broadcast_shapes(np.shape(hi), tuple(shape))).astype(np.int64))
        expand = list(vals.shape)
        expand[d] = 1
        a = vals.take_along_dim(lo_i.expand(*expand).contiguous(), d)
        b = vals.take_along_dim(hi_i.expand(*expand).contiguous(), d)
        w = _core.from_numpy(np.array(frac, np.float64, order="C")).to(x.device, x.dtype)
        r = a + (b - a) * w
        if skip_nan:
            r = r.masked_fill(_core.from_numpy(np.ascontiguousarray(count == 0)).to(x.device), float("nan"))
        else:
            has_nan = x.isnan().any(d, keepdim=True)
            r = r.masked_fill(has_nan, float("nan"))
        outs.append(r if keepdim else r.squeeze(d))
    if np.ndim(qs) == 0:
        out = outs[0]
        return out if dim is not None or keepdim else out.reshape(())
    return _core.stack(outs, 0)


def quantile(
    input: Tensor,  # noqa: A002
    q,
    dim: int | None = None,
    keepdim: bool = False,
    *,
    interpolation: str = "linear",
) -> Tensor:
    """The q-th quantiles over `dim` (all entries without one), as `torch.quantile`: q a
    number or 1-D (a leading dim of quantiles), interpolation "linear" (default), "lower",
    "higher", "midpoint" or "nearest"; NaN where the input has one."""
    return _quantile("quantile", input, q, dim, keepdim, interpolation, False)


def nanquantile(
    input: Tensor,  # noqa: A002
    q,
    dim: int | None = None,
    keepdim: bool = False,
    *,
    interpolation: str = "linear",
) -> Tensor:
    """`quantile` ignoring NaN (NaN only where all entries are), as `torch.nanquantile`."""
    return _quantile("nanquantile", input, q, dim, keepdim, interpolation, True)


def nanmedian(input: Tensor, dim: int | None = None, keepdim: bool = False):  # noqa: A002
    """The lower median of the entries that are not NaN, as `torch.nanmedian`: of all of
    them without `dim`; with one, (values, indices)."""
    from . import return_types  # noqa: PLC0415

    if dim is None:
        flat = input.reshape(-1)
        keep = flat[~flat.isnan()]
        if keep.numel() == 0:
            return _core.full([], math.nan, input.dtype).to(input.device)
        return keep.sort(0).values[(keep.numel() - 1) // 2]
    d = _dim("nanmedian", dim, input.ndim)
    a = np.moveaxis(input.detach().cpu().numpy(), d, -1)
    order = np.argsort(np.where(np.isnan(a), np.inf, a), axis=-1, kind="stable")
    counts = (~np.isnan(a)).sum(-1)
    k = np.maximum((counts - 1) // 2, 0)
    picked = np.take_along_axis(order, k[..., None], -1)[..., 0]
    idx = np.moveaxis(picked[..., None], -1, d) if keepdim else picked
    ii = _idx(np.moveaxis(picked[..., None], -1, d))
    vals = input.take_along_dim(ii.to(input.device), d)
    vals = vals if keepdim else vals.squeeze(d)
    return return_types.median(vals, _idx(idx))


def cov(input: Tensor, *, correction: int = 1, fweights=None, aweights=None) -> Tensor:  # noqa: A002
    """The covariance matrix of the variables in the rows of `input` (observations in the
    columns), as `torch.cov` (frequency and analytic weights not supported)."""
    if fweights is not None or aweights is not None:
        raise NotImplementedError("cov: fweights and aweights are not supported")
    x = input if input.ndim == 2 else input.reshape(1, -1)
    if input.ndim > 2:
        raise ShapeError(f"cov: expected a 1-D or 2-D tensor, got shape {tuple(input.shape)}")
    if not x.dtype.is_floating_point:
        x = x.float()
    n = x.shape[1]
    c = x - x.mean(1, keepdim=True)
    out = c.matmul(c.transpose(0, 1)) / float(max(n - correction, 0))
    return out.reshape(()) if input.ndim < 2 else out


def corrcoef(input: Tensor) -> Tensor:  # noqa: A002
    """The Pearson correlation coefficients of the rows of `input`, as `torch.corrcoef`
    (clipped to [-1, 1])."""
    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = c.diagonal().sqrt()
    return (c / d.unsqueeze(1) / d.unsqueeze(0)).clamp(-1.0, 1.0)


def histc(input: Tensor, bins: int = 100, min: float = 0.0, max: float = 0.0) -> Tensor:  # noqa: A001, A002
    """Counts of the entries in `bins` equal-width bins over [min, max] (the data's range
    when both are 0; entries outside are ignored), as `torch.histc`."""
    a = input.detach().cpu().numpy().astype(np.float64).reshape(-1)
    lo, hi = float(min), float(max)
    if lo == hi == 0.0 and a.size:
        lo, hi = float(a.min()), float(a.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise ArgumentError(f"histc: max must be >= min, got min={min}, max={max}")
    counts, _ = np.histogram(a[~np.isnan(a)], bins=int(bins), range=(lo, hi))
    return _host(counts.astype(np.float64)).to(
        input.device, input.dtype if input.dtype.is_floating_point else _core.dtype.float32
    )


def searchsorted(
    sorted_sequence: Tensor, input, *, out_int32: bool = False, right: bool = False, side: str | None = None
) -> Tensor:  # noqa: A002
    """For each value, the index where it would be inserted to keep `sorted_sequence`
    (1-D, or one sorted row per leading index) sorted, as `torch.searchsorted`."""
    if side is not None:
        right = side == "right"
    seq = sorted_sequence.detach().cpu().numpy()
    vals = input.detach().cpu().numpy() if isinstance(input, Tensor) else np.asarray(input)
    how: Any = "right" if right else "left"
    if seq.ndim == 1:
        out = np.searchsorted(seq, vals, side=how)
    else:
        if seq.shape[:-1] != vals.shape[:-1]:
            raise ShapeError(
                f"searchsorted: leading dims of the sequence {seq.shape} and the values {vals.shape} differ"
            )
        flat_s, flat_v = seq.reshape(-1, seq.shape[-1]), vals.reshape(-1, vals.shape[-1])
        out = np.stack([np.searchsorted(s, v, side=how) for s, v in zip(flat_s, flat_v)]).reshape(vals.shape)
    result = _host(np.asarray(out, np.int64))
    return result.to(_core.dtype.int32) if out_int32 else result


def bucketize(input, boundaries: Tensor, *, out_int32: bool = False, right: bool = False) -> Tensor:  # noqa: A002
    """The bucket of each value among the 1-D sorted `boundaries`, as `torch.bucketize`
    (right=False: boundaries[i-1] < x <= boundaries[i])."""
    if boundaries.ndim != 1:
        raise ShapeError(f"bucketize: boundaries must be 1-D, got shape {tuple(boundaries.shape)}")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def kron(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """The Kronecker product, as `torch.kron` (the operands padded to the same number of
    dims with leading ones)."""
    nd = max(input.ndim, other.ndim)
    a = input.reshape(*([1] * (nd - input.ndim)), *input.shape)
    b = other.reshape(*([1] * (nd - other.ndim)), *other.shape)
    # a[..., i, ...] * b[..., j, ...] interleaved dim by dim, then merged
    a_view, b_view = [], []
    for s in a.shape:
        a_view += [s, 1]
    for s in b.shape:
        b_view += [1, s]
    prod = a.reshape(*a_view) * b.reshape(*b_view)
    return prod.reshape(*[sa * sb for sa, sb in zip(a.shape, b.shape)])


def block_diag(*tensors: Tensor) -> Tensor:
    """The tensors (0-, 1- or 2-D, as rows) down the diagonal of a zero matrix, as
    `torch.block_diag`."""
    mats = [t.reshape(1, -1) if t.ndim < 2 else t for t in tensors]
    if any(m.ndim != 2 for m in mats):
        raise ShapeError("block_diag: expected tensors of at most 2 dims")
    if not mats:
        return _core.zeros([0, 0], None)
    rows, cols = sum(m.shape[0] for m in mats), sum(m.shape[1] for m in mats)
    dt = mats[0].dtype
    for m in mats[1:]:
        dt = (m.reshape(-1)[:0] + _core.zeros([0], dt)).dtype
    parts, c0 = [], 0
    for m in mats:
        left = _core.zeros([m.shape[0], c0], dt).to(m.device)
        right = _core.zeros([m.shape[0], cols - c0 - m.shape[1]], dt).to(m.device)
        parts.append(_core.cat([left, m.to(m.device, dt), right], 1))
        c0 += m.shape[1]
    out = _core.cat(parts, 0)
    assert out.shape == (rows, cols)
    return out


def cartesian_prod(*tensors: Tensor) -> Tensor:
    """Every combination of one entry from each 1-D tensor, one per row (the first varying
    slowest), as `torch.cartesian_prod`."""
    if any(t.ndim != 1 for t in tensors):
        raise ShapeError("cartesian_prod: expected 1-D tensors")
    if len(tensors) == 1:
        return tensors[0]
    from ._composite import meshgrid  # noqa: PLC0415

    grids = meshgrid(*tensors, indexing="ij")
    return _core.stack([g.reshape(-1) for g in grids], 1)


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:  # noqa: A002
    """Matrices whose `offset` diagonal holds the last dim of `input`, as
    `torch.diag_embed` (dims -2, -1 of the result)."""
    if (dim1, dim2) not in ((-2, -1), (input.ndim - 1, input.ndim)):
        raise NotImplementedError("diag_embed: only the last two dims (dim1=-2, dim2=-1) are supported")
    n = input.shape[-1] + abs(offset)
    eye = np.eye(n, k=offset, dtype=bool)
    rows, cols = np.nonzero(eye)
    flat = _idx(rows * n + cols)
    lead = list(input.shape[:-1])
    zeros = _core.zeros([*lead, n * n], input.dtype).to(input.device)
    idx = flat.to(input.device).reshape(*([1] * len(lead)), -1).expand(*lead, len(rows)).contiguous()
    return zeros.scatter(len(lead), idx, input).reshape(*lead, n, n)


def diagflat(input: Tensor, offset: int = 0) -> Tensor:  # noqa: A002
    """The flattened input on the `offset` diagonal of a square matrix, as `torch.diagflat`."""
    return diag_embed(input.reshape(-1), offset)


def logspace(
    start: float, end: float, steps: int, base: float = 10.0, *, dtype=None, device: str = "cpu"
) -> Tensor:
    """`steps` values base^x for x evenly spaced from `start` to `end`, as `torch.logspace`."""
    from ._creation import linspace  # noqa: PLC0415

    x = linspace(start, end, steps, dtype=_core.dtype.float64)
    out = _core.full([], float(base), _core.dtype.float64) ** x
    out = out.to(dtype) if dtype is not None else out.float()
    return out if device == "cpu" else out.to(device)


def heaviside(input: Tensor, values: Tensor) -> Tensor:  # noqa: A002
    """0 where input < 0, 1 where > 0, `values` where 0, as `torch.heaviside`."""
    one = _core.full([], 1.0, input.dtype).to(input.device)
    step = (input > 0).to(input.dtype) * one
    return _core.where(input == 0, values.to(input.device, input.dtype), step)


def _int_pair(op: str, a: Tensor, b) -> tuple[np.ndarray, np.ndarray]:
    av = a.numpy()
    bv = b.numpy() if isinstance(b, Tensor) else np.asarray(b)
    if av.dtype.kind not in "iu" or bv.dtype.kind not in "iu":
        raise DTypeError(f"{op}: expected integer tensors, got {a.dtype}")
    return av.astype(np.int64), bv.astype(np.int64)


def gcd(input: Tensor, other) -> Tensor:  # noqa: A002
    """The greatest common divisor, elementwise, of integers, as `torch.gcd`."""
    a, b = _int_pair("gcd", input, other)
    return _host(np.gcd(a, b)).to(input.dtype)


def lcm(input: Tensor, other) -> Tensor:  # noqa: A002
    """The least common multiple, elementwise, of integers, as `torch.lcm`."""
    a, b = _int_pair("lcm", input, other)
    return _host(np.lcm(a, b)).to(input.dtype)


def _install() -> None:
    for name in __all__:
        if name not in _FUNCTIONS_ONLY and not hasattr(Tensor, name):
            setattr(Tensor, name, _method(globals()[name], name))


_install()
