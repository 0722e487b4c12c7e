"""Linear algebra as `torch.linalg` (`fg.linalg`): `det`, `slogdet`, `inv`, `solve`, `cholesky`, `qr`,
`eigh`/`eigvalsh`, `svd`/`svdvals`, `pinv`, `matrix_power`, `matrix_rank`, `multi_dot`,
`norm`/`vector_norm`/`matrix_norm`, on batches of matrices (..., m, n).

The factorizations run in LAPACK through NumPy on the host (a GPU tensor makes the round
trip; these are small-matrix ops), in the input's precision (float32 or float64; halves are
computed in float32). Each gradient is its closed form (the matrix-calculus identities
PyTorch uses), composed of tensor ops, so it runs on the tensor's device:
inv: -A^-T G A^-T; det: G det A^-T; solve: B's gradient A^-T G, A's -(that) X^T;
cholesky: Murray's Phi rule; eigh: V (diag(g_w) + F o sym(V^T g_V)) V^T;
svd: Townsend's rule, with its subspace terms for rectangular input.
Gradients of eigenvectors and singular vectors are defined for distinct eigenvalues and
singular values only, as PyTorch's (the formulas divide by their differences).

PyTorch's older spellings are here too and exported as `fg.det`, `fg.inverse`, `fg.svd`
((U, S, V)), `fg.qr`, `fg.cholesky`, ..., and as Tensor methods."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from . import _core, _surface
from ._core import ArgumentError, DTypeError, ShapeError, Tensor
from .autograd import Function

__all__ = [
    "det",
    "slogdet",
    "inv",
    "solve",
    "cholesky",
    "qr",
    "eigh",
    "eigvalsh",
    "svd",
    "svdvals",
    "pinv",
    "matrix_power",
    "matrix_rank",
    "multi_dot",
    "norm",
    "vector_norm",
    "matrix_norm",
    "cross",
]


class SlogdetResult(NamedTuple):
    """sign and log|det|."""

    sign: Tensor
    logabsdet: Tensor


class QRResult(NamedTuple):
    """Q with orthonormal columns, R upper triangular."""

    Q: Tensor
    R: Tensor


class EighResult(NamedTuple):
    """Eigenvalues (ascending) and eigenvectors (columns)."""

    eigenvalues: Tensor
    eigenvectors: Tensor


class SVDResult(NamedTuple):
    """A = U diag(S) Vh."""

    U: Tensor
    S: Tensor
    Vh: Tensor


def _square(op: str, a: Tensor) -> None:
    if not isinstance(a, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(a).__name__}")
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ShapeError(f"{op}: expected square matrices (..., n, n), got shape {tuple(a.shape)}")


def _matrices(op: str, a: Tensor) -> None:
    if not isinstance(a, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(a).__name__}")
    if a.ndim < 2:
        raise ShapeError(f"{op}: expected matrices (..., m, n), got shape {tuple(a.shape)}")


def _host(op: str, a: Tensor) -> np.ndarray:
    """`a` as a NumPy array in the precision LAPACK runs in (float64 stays, the rest float32)."""
    if not a.dtype.is_floating_point:
        raise DTypeError(f"{op}: expected a floating-point tensor, got {a.dtype}")
    arr = a.detach().cpu().float().numpy() if a.dtype != _core.dtype.float64 else a.detach().cpu().numpy()
    return np.asarray(arr)


def _back(arr: np.ndarray, like: Tensor) -> Tensor:
    """A NumPy result as a tensor of `like`'s dtype and device."""
    t = _core.from_numpy(np.array(arr, order="C"))  # (ascontiguousarray makes a scalar 1-D)
    return t.to(like.device, like.dtype)


def _mT(t: Tensor) -> Tensor:
    return t.transpose(-2, -1)


def _eye_like(n: int, like: Tensor) -> Tensor:
    return _back(np.eye(n), like)


# ---------------------------------------------------------------------------- inverse, det, solve


class _Inv(Function):
    @staticmethod
    def forward(ctx, a):
        inv = _back(np.linalg.inv(_host("inv", a)), a)
        ctx.save_for_backward(inv)
        return inv

    @staticmethod
    def backward(ctx, g):
        (inv,) = ctx.saved_tensors
        it = _mT(inv)
        return -(it.matmul(g).matmul(it))


def inv(A: Tensor) -> Tensor:  # noqa: N803  (PyTorch's name)
    """The inverse of each square matrix, as `torch.linalg.inv` (singular: a LinAlgError
    from LAPACK, as NumPy's)."""
    _square("inv", A)
    return _Inv.apply(A)


class _Det(Function):
    @staticmethod
    def forward(ctx, a):
        arr = _host("det", a)
        d = _back(np.linalg.det(arr), a)
        ctx.save_for_backward(a.detach(), d)
        return d

    @staticmethod
    def backward(ctx, g):
        a, d = ctx.saved_tensors
        # d det / dA = det(A) A^-T; for a singular matrix, the adjugate's transpose (via SVD)
        arr = _host("det", a)
        adj = np.empty_like(arr)
        for idx in np.ndindex(arr.shape[:-2]):
            m = arr[idx]
            u, s, vh = np.linalg.svd(m)
            # adj(A)^T = det(U) det(V) U diag(prod of the other singular values) V^T
            others = np.array([np.prod(np.delete(s, i)) for i in range(len(s))])
            adj[idx] = np.linalg.det(u) * np.linalg.det(vh) * (u * others) @ vh
        return _back(adj, a) * g.unsqueeze(-1).unsqueeze(-1)


def det(A: Tensor) -> Tensor:  # noqa: N803
    """The determinant of each square matrix, as `torch.linalg.det` (its gradient also at a
    singular matrix: the adjugate, as PyTorch's)."""
    _square("det", A)
    return _Det.apply(A)


class _LogAbsDet(Function):
    @staticmethod
    def forward(ctx, a):
        _, logabs = np.linalg.slogdet(_host("slogdet", a))
        ctx.save_for_backward(a.detach())
        return _back(logabs, a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return _mT(inv(a)) * g.unsqueeze(-1).unsqueeze(-1)


def slogdet(A: Tensor) -> SlogdetResult:  # noqa: N803
    """(sign, log|det|) of each square matrix, as `torch.linalg.slogdet`; log|det| is
    differentiable (its gradient is A^-T)."""
    _square("slogdet", A)
    sign, _ = np.linalg.slogdet(_host("slogdet", A))
    return SlogdetResult(_back(sign, A), _LogAbsDet.apply(A))


def logdet(A: Tensor) -> Tensor:  # noqa: N803
    """log det of each square matrix (NaN where the determinant is negative), as `torch.logdet`."""
    sign, logabs = slogdet(A)
    nan = _core.full([], math.nan, logabs.dtype).to(logabs.device)
    minus_inf = _core.full([], -math.inf, logabs.dtype).to(logabs.device)
    return _core.where(sign < 0, nan, _core.where(sign == 0, minus_inf, logabs))


class _Solve(Function):
    @staticmethod
    def forward(ctx, a, b):
        x = _back(np.linalg.solve(_host("solve", a), _host("solve", b)), b)
        ctx.save_for_backward(a.detach(), x)
        return x

    @staticmethod
    def backward(ctx, g):
        a, x = ctx.saved_tensors
        gb = _Solve.apply(_mT(a), g)
        ga = -gb.matmul(_mT(x)) if ctx.needs_input_grad[0] else None
        return ga, gb


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:  # noqa: N803
    """X with A X = B (or X A = B with left=False), as `torch.linalg.solve`; B is (..., n,
    k) or a batch of vectors (..., n)."""
    _square("solve", A)
    if not isinstance(B, Tensor):
        raise TypeError(f"solve: B must be a Tensor, got {type(B).__name__}")
    if not left:
        return _mT(solve(_mT(A), _mT(B)))
    vector = B.ndim == A.ndim - 1 or B.ndim == 1
    b = B.unsqueeze(-1) if vector else B
    if b.shape[-2] != A.shape[-1]:
        raise ShapeError(f"solve: A of shape {tuple(A.shape)} does not fit B of shape {tuple(B.shape)}")
    shape = tuple(np.broadcast_shapes(tuple(A.shape[:-2]), tuple(b.shape[:-2])))
    a = A.expand(*shape, *A.shape[-2:])
    b = b.expand(*shape, *b.shape[-2:])
    x = _Solve.apply(a, b)
    return x.squeeze(-1) if vector else x


# ---------------------------------------------------------------------------- factorizations


def _phi(t: Tensor) -> Tensor:
    """The lower triangle with the diagonal halved."""
    n = t.shape[-1]
    low = _back(np.tril(np.ones((n, n))) - 0.5 * np.eye(n), t)
    return t * low


class _Cholesky(Function):
    @staticmethod
    def forward(ctx, a):
        low = _back(np.linalg.cholesky(_host("cholesky", a)), a)
        ctx.save_for_backward(low)
        return low

    @staticmethod
    def backward(ctx, g):
        (low,) = ctx.saved_tensors
        linv = inv(low)
        p = _phi(_mT(low).matmul(g))
        s = _mT(linv).matmul(p).matmul(linv)
        return 0.5 * (s + _mT(s))


def cholesky(A: Tensor, *, upper: bool = False) -> Tensor:  # noqa: N803
    """The lower Cholesky factor L (A = L L^T) of symmetric positive-definite matrices (its
    transpose with upper=True), as `torch.linalg.cholesky`."""
    _square("cholesky", A)
    low = _Cholesky.apply(A)
    return _mT(low) if upper else low


class _Qr(Function):
    """Reduced QR for m >= n; forward packs Q (m, n) over R (n, n) along dim -2."""

    @staticmethod
    def forward(ctx, a):
        q, r = np.linalg.qr(_host("qr", a), mode="reduced")  # type: ignore[call-overload]
        qt, rt = _back(q, a), _back(r, a)
        ctx.save_for_backward(qt, rt)
        return _core.cat([qt, rt], -2)

    @staticmethod
    def backward(ctx, g):
        q, r = ctx.saved_tensors
        m = q.shape[-2]
        gq, gr = g.narrow(-2, 0, m), g.narrow(-2, m, g.shape[-2] - m)
        # M = R gR^T - gQ^T Q, made symmetric from its lower triangle; gA = (gQ + Q M) R^-T
        mm = r.matmul(_mT(gr)) - _mT(gq).matmul(q)
        n = mm.shape[-1]
        low = _back(np.tril(np.ones((n, n)), -1), mm)
        sym = mm * low + _mT(mm * low) + mm * _eye_like(n, mm)
        return _mT(solve(r, _mT(gq + q.matmul(sym))))


def qr(A: Tensor, mode: str = "reduced") -> QRResult:  # noqa: N803
    """Q R = A with Q's columns orthonormal and R upper triangular, as `torch.linalg.qr`
    (modes "reduced", "complete", "r"; Householder signs as LAPACK gives them).
    Differentiable in "reduced" mode for m >= n (full column rank), as PyTorch's rule."""
    _matrices("qr", A)
    if mode not in ("reduced", "complete", "r"):
        raise ArgumentError(f"qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}")
    m, n = A.shape[-2], A.shape[-1]
    if mode == "reduced" and m >= n:
        packed = _Qr.apply(A)
        return QRResult(packed.narrow(-2, 0, m), packed.narrow(-2, m, n))
    if A.requires_grad:
        raise NotImplementedError(
            f"qr: the gradient is implemented for mode='reduced' with m >= n, got mode={mode!r} "
            f"and shape {tuple(A.shape)}; detach the input"
        )
    arr = _host("qr", A)
    if mode == "r":
        r_only: np.ndarray = np.linalg.qr(arr, mode="r")  # type: ignore[assignment]
        return QRResult(_back(np.zeros((0,)), A), _back(r_only, A))
    q, r = np.linalg.qr(arr, mode=mode)  # type: ignore[call-overload]
    return QRResult(_back(q, A), _back(r, A))


class _Eigh(Function):
    """Forward: (w, V) packed as [w; V] along the last-but-one dim (one output tensor)."""

    @staticmethod
    def forward(ctx, a):
        w, v = np.linalg.eigh(_host("eigh", a))
        wt, vt = _back(w, a), _back(v, a)
        ctx.save_for_backward(wt, vt)
        return _core.cat([wt.unsqueeze(-2), vt], -2)

    @staticmethod
    def backward(ctx, g):
        w, v = ctx.saved_tensors
        gw, gv = g.narrow(-2, 0, 1).squeeze(-2), g.narrow(-2, 1, g.shape[-1])
        n = w.shape[-1]
        diff = w.unsqueeze(-2) - w.unsqueeze(-1)  # w_j - w_i
        off = _back(1.0 - np.eye(n), w)
        f = off / (diff + (1.0 - off))  # 1 / (w_j - w_i) off the diagonal, 0 on it
        inner = _mT(v).matmul(gv)
        mid = f * inner
        mid = mid + _core.zeros([n, n], w.dtype).to(w.device)  # (keeps shape for 0-batch)
        eye = _eye_like(n, w)
        ga = v.matmul(eye * gw.unsqueeze(-2) + mid).matmul(_mT(v))
        return 0.5 * (ga + _mT(ga))


def eigh(A: Tensor, UPLO: str = "L") -> EighResult:  # noqa: N803
    """Eigenvalues (ascending) and eigenvectors of symmetric matrices, as
    `torch.linalg.eigh` (the lower triangle is read, or the upper with UPLO="U")."""
    _square("eigh", A)
    if UPLO not in ("L", "U"):
        raise ArgumentError(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    a = A if UPLO == "L" else _mT(A)
    packed = _Eigh.apply(a)
    return EighResult(packed.narrow(-2, 0, 1).squeeze(-2), packed.narrow(-2, 1, A.shape[-1]))


def eigvalsh(A: Tensor, UPLO: str = "L") -> Tensor:  # noqa: N803
    """The eigenvalues (ascending) of symmetric matrices, as `torch.linalg.eigvalsh`."""
    return eigh(A, UPLO).eigenvalues


class _Svd(Function):
    """Reduced SVD; forward packs U (m, k), S (1 as a row), Vh^T (n, k) along dim -2."""

    @staticmethod
    def forward(ctx, a):
        u, s, vh = np.linalg.svd(_host("svd", a), full_matrices=False)
        ut, st, vt = _back(u, a), _back(s, a), _back(np.swapaxes(vh, -1, -2), a)
        ctx.save_for_backward(ut, st, vt)
        ctx.m = a.shape[-2]
        return _core.cat([ut, st.unsqueeze(-2), vt], -2)

    @staticmethod
    def backward(ctx, g):
        u, s, v = ctx.saved_tensors
        m, k = ctx.m, s.shape[-1]
        gu, gs, gv = (
            g.narrow(-2, 0, m),
            g.narrow(-2, m, 1).squeeze(-2),
            g.narrow(-2, m + 1, g.shape[-2] - m - 1),
        )
        s2 = s * s
        off = _back(1.0 - np.eye(k), s)
        diff = s2.unsqueeze(-2) - s2.unsqueeze(-1)  # s_j^2 - s_i^2
        f = off / (diff + (1.0 - off))
        sm = _eye_like(k, s) * s.unsqueeze(-2)  # diag(S)
        sinv = _eye_like(k, s) * (1.0 / s).unsqueeze(-2)
        ut_gu, vt_gv = _mT(u).matmul(gu), _mT(v).matmul(gv)
        j = f * (ut_gu - _mT(ut_gu))
        kk = f * (vt_gv - _mT(vt_gv))
        core = j.matmul(sm) + _eye_like(k, s) * gs.unsqueeze(-2) + sm.matmul(kk)
        ga = u.matmul(core).matmul(_mT(v))
        n = v.shape[-2]
        if m > k:
            proj = _eye_like(m, u) - u.matmul(_mT(u))
            ga = ga + proj.matmul(gu).matmul(sinv).matmul(_mT(v))
        if n > k:
            proj = _eye_like(n, v) - v.matmul(_mT(v))
            ga = ga + u.matmul(sinv).matmul(_mT(proj.matmul(gv)))
        return ga


def svd(A: Tensor, full_matrices: bool = True) -> SVDResult:  # noqa: N803
    """A = U diag(S) Vh, singular values descending, as `torch.linalg.svd`. Differentiable
    with full_matrices=False (the reduced factors; PyTorch's rule too), for distinct
    nonzero singular values; full_matrices=True (the default, as PyTorch's) gives the
    complete U and Vh and refuses an input that requires grad."""
    _matrices("svd", A)
    if full_matrices:
        if A.requires_grad:
            raise NotImplementedError(
                "svd: the gradient is defined for full_matrices=False (the reduced factors), as PyTorch's"
            )
        u, s, vh = np.linalg.svd(_host("svd", A), full_matrices=True)
        return SVDResult(_back(u, A), _back(s, A), _back(vh, A))
    m = A.shape[-2]
    packed = _Svd.apply(A)
    k = min(A.shape[-2], A.shape[-1])
    u = packed.narrow(-2, 0, m)
    s = packed.narrow(-2, m, 1).squeeze(-2)
    v = packed.narrow(-2, m + 1, A.shape[-1])
    del k
    return SVDResult(u, s, _mT(v))


class _SvdVals(Function):
    @staticmethod
    def forward(ctx, a):
        u, s, vh = np.linalg.svd(_host("svdvals", a), full_matrices=False)
        ctx.save_for_backward(_back(u, a), _back(vh, a))
        return _back(s, a)

    @staticmethod
    def backward(ctx, g):
        u, vh = ctx.saved_tensors
        return (u * g.unsqueeze(-2)).matmul(vh)


def svdvals(A: Tensor) -> Tensor:  # noqa: N803
    """The singular values, descending, as `torch.linalg.svdvals` (gradient U diag(g) Vh)."""
    _matrices("svdvals", A)
    return _SvdVals.apply(A)


def pinv(
    A: Tensor, *, atol: float | None = None, rtol: float | None = None, hermitian: bool = False
) -> Tensor:  # noqa: N803
    """The Moore-Penrose pseudo-inverse, as `torch.linalg.pinv`: V diag(1/s) U^T over the
    singular values above max(atol, rtol * s_max) (rtol defaults to max(m, n) eps);
    differentiable through the reduced SVD where the rank does not change."""
    _matrices("pinv", A)
    del hermitian  # a symmetric matrix's SVD gives the same
    u, s, vh = svd(A, full_matrices=False)
    eps = float(np.finfo(np.float64 if A.dtype == _core.dtype.float64 else np.float32).eps)
    r = rtol if rtol is not None else (max(A.shape[-2], A.shape[-1]) * eps if atol is None else 0.0)
    smax = s.detach().amax(-1, keepdim=True)
    cut = (smax * r).maximum(_core.full([], float(atol or 0.0), s.dtype).to(s.device))
    keep = s.detach() > cut
    one = _core.full([], 1.0, s.dtype).to(s.device)
    safe = _core.where(keep, s, one)
    inv_s = _core.where(keep, 1.0 / safe, one * 0.0)
    return _mT(vh).matmul(inv_s.unsqueeze(-1) * _mT(u))


def matrix_power(A: Tensor, n: int) -> Tensor:  # noqa: N803
    """A^n by repeated squaring (n < 0: of the inverse; n = 0: the identity), as
    `torch.linalg.matrix_power`; differentiable through its products."""
    _square("matrix_power", A)
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"matrix_power: n must be an int, got {type(n).__name__}")
    if n == 0:
        eye = _eye_like(A.shape[-1], A)
        return eye.expand(*A.shape) + A * 0
    base = inv(A) if n < 0 else A
    n = abs(n)
    out = None
    while n:
        if n & 1:
            out = base if out is None else out.matmul(base)
        n >>= 1
        if n:
            base = base.matmul(base)
    assert out is not None
    return out


def matrix_rank(
    A: Tensor, *, atol: float | None = None, rtol: float | None = None, hermitian: bool = False
) -> Tensor:  # noqa: N803
    """The number of singular values above max(atol, rtol * s_max), as
    `torch.linalg.matrix_rank` (int64)."""
    del hermitian
    s = svdvals(A.detach())
    eps = float(np.finfo(np.float64 if A.dtype == _core.dtype.float64 else np.float32).eps)
    r = rtol if rtol is not None else (max(A.shape[-2], A.shape[-1]) * eps if atol is None else 0.0)
    sv = s.cpu().numpy()
    cut = np.maximum(sv.max(-1, keepdims=True, initial=0.0) * r, atol or 0.0)
    return _core.from_numpy(np.array((sv > cut).sum(-1).astype(np.int64), order="C"))


def multi_dot(tensors: Sequence[Tensor]) -> Tensor:
    """The product of a chain of matrices (the first may be a vector, the last too), as
    `torch.linalg.multi_dot`, in the cheapest order of multiplication."""
    ts = list(tensors)
    if len(ts) < 2:
        raise ArgumentError(f"multi_dot: expected at least 2 tensors, got {len(ts)}")
    first_vec, last_vec = ts[0].ndim == 1, ts[-1].ndim == 1
    if first_vec:
        ts[0] = ts[0].unsqueeze(0)
    if last_vec:
        ts[-1] = ts[-1].unsqueeze(-1)
    for i, t in enumerate(ts):
        if t.ndim != 2:
            raise ShapeError(
                f"multi_dot: tensor {i} must be 2-D (first and last may be 1-D), got {tuple(t.shape)}"
            )
    dims = [ts[0].shape[0]] + [t.shape[1] for t in ts]
    n = len(ts)
    cost = [[0.0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = math.inf
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k

    def prod(i: int, j: int) -> Tensor:
        if i == j:
            return ts[i]
        k = split[i][j]
        return prod(i, k).matmul(prod(k + 1, j))

    out = prod(0, n - 1)
    if first_vec:
        out = out.squeeze(0)
    if last_vec:
        out = out.squeeze(-1)
    return out


# ---------------------------------------------------------------------------- norms


def vector_norm(x: Tensor, ord: float = 2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: A002
    """The vector p-norm over `dim` (all elements by default), as `torch.linalg.vector_norm`:
    ord inf / -inf the max / min of |x|, 0 the count of nonzeros."""
    if dtype is not None:
        x = x.to(dtype)
    a = x.abs()
    if ord == math.inf:
        return a.amax(dim, keepdim)
    if ord == -math.inf:
        return a.amin(dim, keepdim)
    if ord == 0:
        return (a != 0).to(x.dtype).sum(dim, keepdim=keepdim)
    if ord == 2:
        return (a * a).sum(dim, keepdim=keepdim).sqrt()
    if ord == 1:
        return a.sum(dim, keepdim=keepdim)
    return (a ** float(ord)).sum(dim, keepdim=keepdim) ** (1.0 / float(ord))


def matrix_norm(
    A: Tensor, ord: float | str = "fro", dim: tuple[int, int] = (-2, -1), keepdim: bool = False
) -> Tensor:  # noqa: N803, A002
    """The matrix norm over the two dims `dim`, as `torch.linalg.matrix_norm`: "fro",
    "nuc" (sum of singular values), 2 / -2 (largest / smallest singular value), 1 / -1
    (max / min column sum of |A|), inf / -inf (max / min row sum)."""
    _matrices("matrix_norm", A)
    d0, d1 = (d % A.ndim for d in dim)
    if ord == "fro":
        return (A * A).sum([d0, d1], keepdim=keepdim).sqrt()
    if ord in ("nuc", 2, -2):
        moved = A.movedim((d0, d1), (-2, -1))
        s = svdvals(moved)
        out = s.sum(-1) if ord == "nuc" else (s.amax(-1) if ord == 2 else s.amin(-1))
        if keepdim:
            out = out.unsqueeze(min(d0, d1)).unsqueeze(max(d0, d1))
        return out
    if ord in (1, -1, math.inf, -math.inf):
        over, across = (d0, d1) if ord in (1, -1) else (d1, d0)
        sums = A.abs().sum(over, keepdim=True)
        out = sums.amax(across, keepdim=True) if ord in (1, math.inf) else sums.amin(across, keepdim=True)
        return out if keepdim else out.squeeze(max(d0, d1)).squeeze(min(d0, d1))
    raise ArgumentError(f"matrix_norm: ord must be 'fro', 'nuc', 2, -2, 1, -1, inf or -inf, got {ord!r}")


def norm(A: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:  # noqa: N803, A002
    """`torch.linalg.norm`: a vector norm for 1-D input or one dim, a matrix norm for 2-D
    input or two dims; ord None: 2 for vectors, "fro" for matrices (without dim, of the
    flattened input)."""
    if dtype is not None:
        A = A.to(dtype)  # noqa: N806
    if dim is None and ord is None:
        return vector_norm(A.reshape(-1), 2)
    dims = None if dim is None else ([dim] if isinstance(dim, int) else list(dim))
    if dims is None:
        dims = list(range(A.ndim)) if A.ndim <= 2 else None
        if dims is None:
            raise ArgumentError(f"norm: give dim for a {A.ndim}-D input with ord={ord!r}")
    if len(dims) == 1:
        return vector_norm(A, 2 if ord is None else ord, dims[0], keepdim)
    if len(dims) == 2:
        return matrix_norm(A, "fro" if ord is None else ord, (dims[0], dims[1]), keepdim)
    raise ArgumentError(f"norm: dim must name one or two dims, got {dim!r}")


def cross(input: Tensor, other: Tensor, *, dim: int = -1) -> Tensor:  # noqa: A002
    """The cross product of 3-vectors along `dim` (-1 by default), as `torch.linalg.cross`."""
    return _surface.cross(input, other, dim)


# ---------------------------------------------------------------------------- torch.* spellings


class SVDOldResult(NamedTuple):
    """`torch.svd`'s (U, S, V): V, not Vh."""

    U: Tensor
    S: Tensor
    V: Tensor


def inverse(input: Tensor) -> Tensor:  # noqa: A002
    """`torch.inverse`: `linalg.inv`."""
    return inv(input)


def pinverse(input: Tensor, rcond: float = 1e-15) -> Tensor:  # noqa: A002
    """`torch.pinverse`: `linalg.pinv` with rtol = rcond."""
    return pinv(input, rtol=rcond)


def torch_svd(input: Tensor, some: bool = True, compute_uv: bool = True) -> SVDOldResult:  # noqa: A002
    """`torch.svd`: (U, S, V) with A = U diag(S) V^T (reduced unless some=False); without
    compute_uv, U and V are zeros, as PyTorch's."""
    if not compute_uv:
        s = svdvals(input)
        m, n = input.shape[-2], input.shape[-1]
        zu = _core.zeros([*input.shape[:-2], m, m if not some else min(m, n)], input.dtype).to(input.device)
        zv = _core.zeros([*input.shape[:-2], n, n if not some else min(m, n)], input.dtype).to(input.device)
        return SVDOldResult(zu, s, zv)
    u, s, vh = svd(input, full_matrices=not some)
    return SVDOldResult(u, s, _mT(vh))


def torch_qr(input: Tensor, some: bool = True) -> QRResult:  # noqa: A002
    """`torch.qr`: reduced (or complete with some=False)."""
    return qr(input, "reduced" if some else "complete")


def torch_cholesky(input: Tensor, upper: bool = False) -> Tensor:  # noqa: A002
    """`torch.cholesky`: `linalg.cholesky`."""
    return cholesky(input, upper=upper)


def _install() -> None:
    """The Tensor methods PyTorch has for these (`x.det()`, `x.inverse()`, ...)."""
    methods = {
        "det": det,
        "logdet": logdet,
        "slogdet": slogdet,
        "inverse": inverse,
        "pinverse": pinverse,
        "matrix_power": matrix_power,
        "cholesky": torch_cholesky,
        "svd": torch_svd,
        "qr": torch_qr,
    }
    for name, fn in methods.items():
        if not hasattr(Tensor, name):
            setattr(Tensor, name, _surface._method(fn, name))


_install()


def torch_norm(input: Tensor, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:  # noqa: A002
    """The deprecated ``torch.norm`` (exported as `fg.norm`): the vector p-norm ("fro" and
    None are 2) over `dim` (all elements by default); "nuc" is the nuclear norm of the
    matrices over the last two dims (or `dim`)."""
    x = input if dtype is None else input.to(dtype)
    if p == "nuc":
        return matrix_norm(x, "nuc", dim=(-2, -1) if dim is None else dim, keepdim=keepdim)
    if p == "fro" or p is None:
        p = 2
    return x.norm(p, dim, keepdim)
