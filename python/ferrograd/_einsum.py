"""`einsum`: NumPy's and PyTorch's Einstein summation (ellipsis included), as a chain of
pairwise contractions, each one matrix product (split from _composite.py, which re-exports
it)."""

from __future__ import annotations

import math

from ._core import ArgumentError, ShapeError, Tensor

__all__ = ["einsum"]


def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation, as `torch.einsum`: "ij,jk->ik" (explicit output), "ij,jk" (the
    labels seen once, in alphabetical order), "..." for broadcast leading dims, a label
    repeated within one operand for its diagonal ("ii->i"). Operands are contracted left to
    right, each pair as one (batched) matrix product; labels no later operand or the output
    needs are summed out first. Differentiable through the ops it uses."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands or not all(isinstance(t, Tensor) for t in operands):
        raise TypeError("einsum: expected an equation and one or more Tensors")
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ArgumentError(f"einsum: the equation has {len(terms)} operands, got {len(operands)} tensors")
    # "..." becomes fresh labels (upper-case letters are free: PyTorch takes a-z and A-Z, so
    # use characters outside both), aligned to the right across operands
    ell_dims = 0
    for t, x in zip(terms, operands):
        if "..." in t:
            ell_dims = max(ell_dims, x.ndim - (len(t) - 3))
    fresh = [chr(0x100 + i) for i in range(ell_dims)]
    labelled = []
    for t, x in zip(terms, operands):
        n_named = len(t.replace("...", ""))
        if "..." in t:
            k = x.ndim - n_named
            t = t.replace("...", "".join(fresh[ell_dims - k :]))
        if len(t) != x.ndim or not all(c.isalpha() or ord(c) >= 0x100 for c in t):
            raise ArgumentError(f"einsum: term {t!r} does not fit an operand of shape {tuple(x.shape)}")
        labelled.append(t)
    if arrow:
        out = rhs.replace("...", "".join(fresh))
    else:
        counts: dict[str, int] = {}
        for t in labelled:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = "".join(fresh) + "".join(sorted(c for c, k in counts.items() if k == 1 and ord(c) < 0x100))
    sizes: dict[str, int] = {}
    for t, x in zip(labelled, operands):
        for c, n in zip(t, x.shape):
            if c in sizes and sizes[c] != n and 1 not in (sizes[c], n):
                raise ShapeError(f"einsum: label {c!r} has sizes {sizes[c]} and {n}")
            sizes[c] = max(sizes.get(c, n), n) if 1 in (sizes.get(c, n), n) else n
    for c in out:
        if c not in sizes:
            raise ArgumentError(f"einsum: output label {c!r} appears in no operand")
    tensors = [_diagonals(x, t) for x, t in zip(operands, labelled)]
    cur, cur_l = tensors[0]
    for i in range(1, len(tensors)):
        later = set(out) | {c for _, lab in tensors[i + 1 :] for c in lab}
        cur, cur_l = _contract(cur, cur_l, *tensors[i], later)
    # the rest: sum what the output drops, then order as the output
    drop = [j for j, c in enumerate(cur_l) if c not in out]
    if drop:
        cur = cur.sum(drop)
        cur_l = "".join(c for c in cur_l if c in out)
    if cur.ndim != len(out):
        cur = cur.expand(*[sizes[c] for c in cur_l])
    return cur.permute(*[cur_l.index(c) for c in out]) if cur_l != out else cur


def _diagonals(x: Tensor, t: str) -> tuple[Tensor, str]:
    """A label repeated within one term: the diagonal over its dims."""
    while len(set(t)) < len(t):
        c = next(c for c in t if t.count(c) > 1)
        i = t.index(c)
        j = t.index(c, i + 1)
        x = x.diagonal(0, i, j)  # the diagonal becomes the last dim (a method from _composite)
        t = t[:i] + t[i + 1 : j] + t[j + 1 :] + c
    return x, t


def _contract(a: Tensor, la: str, b: Tensor, lb: str, keep: set[str]) -> tuple[Tensor, str]:
    """a (labels la) times b (labels lb), keeping the labels in `keep`, as one matmul."""
    for x_is_a in (True, False):  # labels only one side has and nothing keeps: sum first
        x, lx, other = (a, la, lb) if x_is_a else (b, lb, la)
        gone = [j for j, c in enumerate(lx) if c not in keep and c not in other]
        if gone:
            x = x.sum(gone)
            lx = "".join(c for c in lx if c in keep or c in other)
        if x_is_a:
            a, la = x, lx
        else:
            b, lb = x, lx
    batch = [c for c in la if c in lb and c in keep]
    summed = [c for c in la if c in lb and c not in keep]
    a_only = [c for c in la if c not in lb]
    b_only = [c for c in lb if c not in la]
    sa = dict(zip(la, a.shape))
    sb = dict(zip(lb, b.shape))
    a2 = a.permute(*[la.index(c) for c in batch + a_only + summed])
    b2 = b.permute(*[lb.index(c) for c in batch + summed + b_only])
    pa = math.prod(sa[c] for c in a_only)
    pb = math.prod(sb[c] for c in b_only)
    ps = math.prod(sa[c] for c in summed)
    a3 = a2.reshape(*[sa[c] for c in batch], pa, ps)
    b3 = b2.reshape(*[sb[c] for c in batch], ps, pb)
    y = a3.matmul(b3)
    bshape = [max(sa[c], sb[c]) for c in batch]
    y = y.reshape(*bshape, *[sa[c] for c in a_only], *[sb[c] for c in b_only])
    return y, "".join(batch + a_only + b_only)
