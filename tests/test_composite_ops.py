"""The composed ops (ferrograd/_composite.py, issue 16) and the new layers and losses: each
against NumPy's (or the formula PyTorch documents), float64 gradchecks, the GPU against the
CPU, and the edges (empty, 0-d, non-contiguous inputs)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import nn
from ferrograd.autograd import gradcheck

F = nn.functional
rng = np.random.default_rng(5)
A = rng.standard_normal((3, 4, 5))

# (name, call on a tensor, NumPy reference on an array, differentiable)
CASES = [
    ("flip", lambda t: t.flip([0, 2]), lambda a: np.flip(a, (0, 2)), True),
    ("roll", lambda t: t.roll((1, -2), (0, 2)), lambda a: np.roll(a, (1, -2), (0, 2)), True),
    ("roll flat", lambda t: t.roll(3), lambda a: np.roll(a, 3), True),
    ("tril", lambda t: t.tril(1), lambda a: np.tril(a, 1), True),
    ("triu", lambda t: t.triu(-1), lambda a: np.triu(a, -1), True),
    ("diagonal", lambda t: t.diagonal(1, 1, 2), lambda a: np.diagonal(a, 1, 1, 2), True),
    ("diagonal neg", lambda t: t.diagonal(-2, 2, 0), lambda a: np.diagonal(a, -2, 2, 0), True),
    ("movedim", lambda t: fg.movedim(t, [0, 1], [2, 0]), lambda a: np.moveaxis(a, [0, 1], [2, 0]), True),
    ("swapaxes", lambda t: t.swapaxes(0, 2), lambda a: np.swapaxes(a, 0, 2), True),
    (
        "broadcast_to",
        lambda t: t[:1].broadcast_to((2, 3, 4, 5)),
        lambda a: np.broadcast_to(a[:1], (2, 3, 4, 5)),
        True,
    ),
    ("tile", lambda t: t.tile((2, 1)), lambda a: np.tile(a, (2, 1)), True),
    ("unflatten", lambda t: t.unflatten(2, (5, 1)), lambda a: a.reshape(3, 4, 5, 1), True),
    ("repeat_interleave", lambda t: t.repeat_interleave(2, 1), lambda a: np.repeat(a, 2, 1), True),
    ("prod", lambda t: t.prod(2), lambda a: np.prod(a, 2), True),
    ("prod all", lambda t: t.prod(), lambda a: np.prod(a), True),
    ("cumsum", lambda t: t.cumsum(2), lambda a: np.cumsum(a, 2), True),
    ("cumprod", lambda t: t.cumprod(1), lambda a: np.cumprod(a, 1), True),
    ("logcumsumexp", lambda t: t.logcumsumexp(2), lambda a: np.logaddexp.accumulate(a, 2), True),
    ("lerp", lambda t: t.lerp(t * 2 + 1, 0.25), lambda a: a + 0.25 * (a + 1), True),
    ("logaddexp", lambda t: t.logaddexp(t.flip([0])), lambda a: np.logaddexp(a, np.flip(a, 0)), True),
    ("remainder", lambda t: t % 0.7, lambda a: np.mod(a, 0.7), False),
    ("fmod", lambda t: t.fmod(-0.7), lambda a: np.fmod(a, -0.7), False),
    ("floor_divide", lambda t: t // 0.7, lambda a: np.floor_divide(a, 0.7), False),
    ("copysign", lambda t: t.copysign(t.flip([1])), lambda a: np.copysign(a, np.flip(a, 1)), True),
    ("std_mean", lambda t: t.std_mean(1)[0], lambda a: a.std(1, ddof=1), True),
    ("var_mean", lambda t: t.var_mean(2, correction=0)[1], lambda a: a.mean(2), True),
    ("count_nonzero", lambda t: (t > 0).count_nonzero(1), lambda a: np.count_nonzero(a > 0, 1), False),
]


@pytest.mark.parametrize("name,call,ref,diff", CASES, ids=[c[0] for c in CASES])
def test_composed_op_matches_numpy_and_gradchecks(name, call, ref, diff, device):
    want = ref(A)
    got = call(fg.tensor(A.astype(np.float32)).to(device))
    assert tuple(got.shape) == np.shape(want)
    np.testing.assert_allclose(got.numpy(), want, rtol=2e-5, atol=2e-5)
    # non-contiguous input: the same values
    t = fg.tensor(np.ascontiguousarray(A.transpose(2, 1, 0))).permute(2, 1, 0)
    np.testing.assert_allclose(call(t).numpy(), want, rtol=1e-12, atol=1e-12)
    if diff and device == "cpu":
        x = fg.tensor(A[:2, :3, :4] if name not in ("unflatten",) else A, requires_grad=True)
        if name in ("broadcast_to",):
            x = fg.tensor(A, requires_grad=True)
        assert gradcheck(call, [x])


@pytest.mark.parametrize("name,call,ref,diff", CASES, ids=[c[0] for c in CASES])
def test_composed_op_on_an_empty_batch(name, call, ref, diff):
    """The same ops on a (0, 4, 5) input: the shapes NumPy gives, no error."""
    empty = np.zeros((0, 4, 5))
    try:
        want = ref(empty)
    except (ValueError, IndexError):
        pytest.skip("NumPy itself refuses this op on an empty input")
    got = call(fg.tensor(empty))
    assert tuple(got.shape) == np.shape(want)


def test_prod_with_zeros_and_signs_and_its_gradient():
    x = fg.tensor([[2.0, 0.0, -3.0], [1.0, -1.0, 4.0], [0.0, 0.0, 5.0]], requires_grad=True)
    np.testing.assert_array_equal(x.prod(1).numpy(), [0.0, -4.0, 0.0])
    x.prod(1).sum().backward()
    # d prod / d x_i = product of the others: exact at zeros (one zero: the rest's product)
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0, -6.0, 0.0], [-4.0, 4.0, -1.0], [0.0, 0.0, 0.0]])
    assert fg.zeros(3, 0).prod(1).numpy().tolist() == [1.0, 1.0, 1.0]  # the empty product
    assert fg.tensor([2, 3, 4]).prod().item() == 24  # integers stay integers


def test_edges_empty_0d_and_infinities():
    assert fg.zeros(0, 3).cumsum(0).shape == (0, 3)
    assert fg.tensor(5.0).cumsum(0).item() == 5.0
    assert fg.tensor([True, True, False]).cumsum(0).numpy().tolist() == [1, 2, 2]
    inf = math.inf
    got = fg.logaddexp(fg.tensor([inf, -inf, -inf, 1.0]), fg.tensor([inf, -inf, 0.0, 1.0])).numpy()
    np.testing.assert_allclose(got, np.logaddexp([inf, -inf, -inf, 1.0], [inf, -inf, 0.0, 1.0]))
    assert np.isinf(fg.tensor([-inf, -inf]).logcumsumexp(0).numpy()).all()
    with pytest.raises(IndexError, match="flip: dim 3 is out of range"):
        fg.zeros(2, 2).flip([3])
    with pytest.raises(ValueError, match="repeat a dimension"):
        fg.zeros(2, 2).flip([0, 0])


def test_integer_remainder_floor_divide_and_fmod_follow_python_and_c():
    a = fg.tensor([7, -7, 7, -7])
    b = fg.tensor([3, 3, -3, -3])
    assert (a % b).numpy().tolist() == [1, 2, -2, -1]  # the divisor's sign (Python)
    assert (a // b).numpy().tolist() == [2, -3, -3, 2]  # floor
    assert a.fmod(b).numpy().tolist() == [1, -1, 1, -1]  # the dividend's sign (C)
    assert (a % b).dtype == fg.int64 and (7 % fg.tensor([4])).numpy().tolist() == [3]
    with pytest.raises(ZeroDivisionError, match="integer division by zero"):
        a // fg.tensor([1, 0, 1, 1])
    np.testing.assert_allclose((fg.tensor([-1.5, 1.5]) % 1.0).numpy(), [0.5, 0.5])


def test_isclose_copysign_masked_select_nonzero_diag():
    got = fg.isclose(
        fg.tensor([1.0, math.nan, math.inf, 1.0]), fg.tensor([1.0 + 1e-7, math.nan, math.inf, 1.1])
    )
    assert got.numpy().tolist() == [True, False, True, False]
    assert fg.isclose(fg.tensor([math.nan]), fg.tensor([math.nan]), equal_nan=True).item()
    assert fg.copysign(fg.tensor([1.0, 1.0]), fg.tensor([-0.0, 0.0])).numpy().tolist() == [-1.0, 1.0]
    x = fg.tensor(A, requires_grad=True)
    sel = x.masked_select(x > 0.5)
    np.testing.assert_array_equal(sel.numpy(), A[A > 0.5])
    sel.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), (A > 0.5).astype(float))
    assert fg.tensor([[0, 3], [4, 0]]).nonzero().numpy().tolist() == [[0, 1], [1, 0]]
    rows, cols = fg.tensor([[0, 3], [4, 0]]).nonzero(as_tuple=True)
    assert rows.numpy().tolist() == [0, 1] and cols.numpy().tolist() == [1, 0]
    v = fg.tensor([1.0, 2.0, 3.0], dtype=fg.float64, requires_grad=True)
    for k in (0, 1, -2):
        np.testing.assert_array_equal(fg.diag(v, k).numpy(), np.diag([1.0, 2.0, 3.0], k))
        np.testing.assert_array_equal(fg.diag(fg.diag(v, k), k).numpy(), [1.0, 2.0, 3.0])
    assert gradcheck(lambda t: fg.diag(t, 1), [v])


def test_layer_norm_embedding_and_friends(device):
    x = rng.standard_normal((2, 3, 4))
    ln = nn.LayerNorm([3, 4])
    with fg.no_grad():
        ln.weight.copy_(fg.tensor(rng.standard_normal((3, 4)).astype(np.float32)))
        ln.bias.copy_(fg.tensor(rng.standard_normal((3, 4)).astype(np.float32)))
    ln.to(device)
    got = ln(fg.tensor(x.astype(np.float32)).to(device)).numpy()
    mean, var = x.mean((1, 2), keepdims=True), x.var((1, 2), keepdims=True)
    want = (x - mean) / np.sqrt(var + 1e-5) * ln.weight.numpy() + ln.bias.numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    xt = fg.tensor(x, requires_grad=True)
    w = fg.tensor(rng.standard_normal(4), requires_grad=True)
    assert gradcheck(lambda a, b: F.layer_norm(a, [4], b, None), [xt, w])
    emb = nn.Embedding(6, 3, padding_idx=2)
    idx = fg.tensor([[0, 2], [5, 2]])
    out = emb(idx)
    np.testing.assert_array_equal(out.numpy(), emb.weight.numpy()[[[0, 2], [5, 2]]])
    assert np.all(emb.weight.numpy()[2] == 0)
    out.sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.numpy()[:, 0], [1, 0, 0, 0, 0, 1])  # no gradient to padding
    v = rng.standard_normal((3, 4))
    np.testing.assert_allclose(
        F.normalize(fg.tensor(v)).numpy(), v / np.linalg.norm(v, axis=1, keepdims=True)
    )
    np.testing.assert_allclose(
        F.softmin(fg.tensor(v), 1).numpy(), np.exp(-v) / np.exp(-v).sum(1, keepdims=True)
    )


def test_scaled_dot_product_attention_and_the_causal_mask(device):
    q, k, v = (rng.standard_normal((2, 4, 3)) for _ in range(3))
    s = q @ k.transpose(0, 2, 1) / math.sqrt(3)
    s = np.where(np.tri(4, 4, dtype=bool), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    got = F.scaled_dot_product_attention(
        *(fg.tensor(a.astype(np.float32)).to(device) for a in (q, k, v)), is_causal=True
    )
    np.testing.assert_allclose(got.numpy(), p @ v, rtol=1e-4, atol=1e-5)
    qt = fg.tensor(q, requires_grad=True)
    assert gradcheck(
        lambda a: F.scaled_dot_product_attention(a, fg.tensor(k), fg.tensor(v), is_causal=True), [qt]
    )


def test_kl_div_cosine_embedding_and_margin_ranking_losses():
    logp = np.log(rng.dirichlet(np.ones(4), 3))
    t = rng.dirichlet(np.ones(4), 3)
    t[0, 1] = 0.0
    want = np.where(t > 0, t * (np.log(np.where(t > 0, t, 1)) - logp), 0.0)
    assert F.kl_div(fg.tensor(logp), fg.tensor(t), reduction="batchmean").item() == pytest.approx(
        want.sum() / 3
    )
    assert F.kl_div(fg.tensor(logp), fg.tensor(t)).item() == pytest.approx(want.mean())
    lt = np.log(rng.dirichlet(np.ones(4), 3))
    got = F.kl_div(fg.tensor(logp), fg.tensor(lt), reduction="sum", log_target=True).item()
    assert got == pytest.approx((np.exp(lt) * (lt - logp)).sum())
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    y = np.array([1, -1, 1, -1, -1])
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    want = np.where(y == 1, 1 - cos, np.maximum(0, cos - 0.2))
    got = nn.CosineEmbeddingLoss(margin=0.2)(fg.tensor(a), fg.tensor(b), fg.tensor(y))
    assert got.item() == pytest.approx(want.mean())
    x1, x2 = rng.standard_normal(6), rng.standard_normal(6)
    yy = np.array([1.0, -1, 1, 1, -1, -1])
    got = nn.MarginRankingLoss(margin=0.3)(fg.tensor(x1), fg.tensor(x2), fg.tensor(yy)).item()
    assert got == pytest.approx(np.maximum(0, -yy * (x1 - x2) + 0.3).mean())
    lp = fg.tensor(logp, requires_grad=True)
    assert gradcheck(lambda z: F.kl_div(z, fg.tensor(t), reduction="batchmean"), [lp])


@pytest.mark.parametrize(
    "eq,shapes",
    [
        ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
        ("bij,bjk", [(2, 3, 4), (2, 4, 5)]),
        ("ij->ji", [(3, 4)]),
        ("ii->i", [(3, 3)]),
        ("ii", [(3, 3)]),
        ("bij,bjk,k->bi", [(2, 3, 4), (2, 4, 5), (5,)]),
        ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),
        ("...ij,jk->...ik", [(6, 2, 3, 4), (4, 5)]),
        ("i,j->ij", [(3,), (4,)]),
        ("ijk->", [(2, 3, 4)]),
        ("ij,ij->i", [(3, 4), (3, 4)]),
        ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ],
)
def test_einsum_matches_numpy_and_gradchecks(eq, shapes, device):
    ops = [rng.standard_normal(s) for s in shapes]
    got = fg.einsum(eq, *[fg.tensor(o.astype(np.float32)).to(device) for o in ops])
    np.testing.assert_allclose(got.numpy(), np.einsum(eq, *ops), rtol=1e-4, atol=1e-4)
    if device == "cpu":
        ts = [fg.tensor(o, requires_grad=True) for o in ops]
        assert gradcheck(lambda *a: fg.einsum(eq, *a), ts)


def test_einsum_errors_and_the_list_form():
    a = fg.randn(2, 3)
    np.testing.assert_allclose(fg.einsum("ij->i", [a]).numpy(), a.numpy().sum(1), rtol=1e-6)
    with pytest.raises(ValueError, match="the equation has 2 operands, got 1"):
        fg.einsum("ij,jk", a)
    with pytest.raises(ValueError, match="does not fit an operand"):
        fg.einsum("ijk", a)
    with pytest.raises(fg.ShapeError, match="label 'j' has sizes 3 and 4"):
        fg.einsum("ij,jk", a, fg.randn(4, 2))


def test_where_with_one_argument_is_nonzero_as_tuple():
    r, c = fg.where(fg.tensor([[0.0, 2.0], [3.0, 0.0]]) > 0)
    assert r.numpy().tolist() == [0, 1] and c.numpy().tolist() == [1, 0]
    with pytest.raises(TypeError, match="give both a and b, or neither"):
        fg.where(fg.tensor([True]), 1.0)


def test_label_smoothing_with_weight_and_ignore_index_follows_pytorch():
    x = rng.standard_normal((6, 4))
    y = np.array([0, 3, -100, 2, 1, 3])
    w = np.array([0.5, 1.0, 2.0, 1.5])
    eps = 0.2
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    keep = y != -100
    safe = np.where(keep, y, 0)
    nll = -logp[np.arange(6), safe] * w[safe] * keep
    smooth = -(logp * w).sum(1) * keep
    per = (1 - eps) * nll + eps / 4 * smooth
    got = F.cross_entropy(fg.tensor(x), fg.tensor(y), weight=fg.tensor(w), label_smoothing=eps)
    assert got.item() == pytest.approx(per.sum() / (w[safe] * keep).sum(), rel=1e-9)
    got = F.cross_entropy(fg.tensor(x), fg.tensor(y), label_smoothing=eps, reduction="none")
    per1 = (1 - eps) * (-logp[np.arange(6), safe] * keep) + eps / 4 * (-logp.sum(1) * keep)
    np.testing.assert_allclose(got.numpy(), per1, rtol=1e-9)
    xt = fg.tensor(x, requires_grad=True)
    assert gradcheck(
        lambda a: F.cross_entropy(a, fg.tensor(y), weight=fg.tensor(w), label_smoothing=eps), [xt]
    )


def test_bce_with_logits_pos_weight_and_weight():
    x = rng.standard_normal((5, 3))
    y = (rng.random((5, 3)) > 0.5).astype(float)
    pw = np.array([0.5, 2.0, 3.0])
    ew = rng.random((5, 3))
    sig = 1 / (1 + np.exp(-x))
    want = -(pw * y * np.log(sig) + (1 - y) * np.log(1 - sig)) * ew
    got = F.binary_cross_entropy_with_logits(
        fg.tensor(x), fg.tensor(y), weight=fg.tensor(ew), pos_weight=fg.tensor(pw)
    )
    assert got.item() == pytest.approx(want.mean(), rel=1e-9)
    loss = nn.BCEWithLogitsLoss(pos_weight=fg.tensor(pw), reduction="sum")
    assert loss(fg.tensor(x), fg.tensor(y)).item() == pytest.approx((want / ew).sum(), rel=1e-9)
    xt = fg.tensor(x, requires_grad=True)
    assert gradcheck(
        lambda a: F.binary_cross_entropy_with_logits(a, fg.tensor(y), pos_weight=fg.tensor(pw)), [xt]
    )
    # the earlier positional form (reduction third) still works
    assert F.binary_cross_entropy_with_logits(fg.tensor(x), fg.tensor(y), "sum").item() == pytest.approx(
        -(y * np.log(sig) + (1 - y) * np.log(1 - sig)).sum(), rel=1e-9
    )


def test_scatter_family_against_numpy(device):
    x = rng.standard_normal((3, 4))
    src = rng.standard_normal((3, 4))
    index = np.array([[0, 1, 0, 3], [2, 2, 1, 0], [3, 0, 0, 1]])
    want = x.copy()
    for i in range(3):
        for j in range(4):
            want[i, index[i, j]] += src[i, j]
    xt, st = (fg.tensor(a.astype(np.float32)).to(device) for a in (x, src))
    got = xt.scatter_add(1, fg.tensor(index), st)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
    # dim 0, an index smaller than src
    idx0 = np.array([[1, 0], [2, 1]])
    want0 = x.copy()
    for i in range(2):
        for j in range(2):
            want0[idx0[i, j], j] += src[i, j]
    np.testing.assert_allclose(
        fg.scatter_add(xt, 0, fg.tensor(idx0), st).numpy(), want0, rtol=1e-5, atol=1e-6
    )
    # scatter replaces (unique targets per row here)
    uniq = np.array([[3, 1], [0, 2], [1, 0]])
    want1 = x.copy()
    for i in range(3):
        for j in range(2):
            want1[i, uniq[i, j]] = src[i, j]
    np.testing.assert_allclose(xt.scatter(1, fg.tensor(uniq), st).numpy(), want1, rtol=1e-6)
    np.testing.assert_allclose(xt.scatter(1, fg.tensor(uniq), value=7.0).numpy()[0, [1, 3]], [7.0, 7.0])
    # index_add / index_copy along dim 0
    rows = rng.standard_normal((2, 4))
    want2 = x.copy()
    want2[[2, 0]] += 0.5 * rows
    got2 = xt.index_add(0, fg.tensor([2, 0]), fg.tensor(rows.astype(np.float32)).to(device), alpha=0.5)
    np.testing.assert_allclose(got2.numpy(), want2, rtol=1e-5, atol=1e-6)
    want3 = x.copy()
    want3[[2, 0]] = rows
    got3 = xt.index_copy(0, fg.tensor([2, 0]), fg.tensor(rows.astype(np.float32)).to(device))
    np.testing.assert_allclose(got3.numpy(), want3, rtol=1e-6)
    # scatter_reduce mean, with and without the tensor's own value
    got4 = (
        fg.tensor(x).scatter_reduce(1, fg.tensor(index), fg.tensor(src), "mean", include_self=False).numpy()
    )
    sums, counts = np.zeros_like(x), np.zeros_like(x)
    for i in range(3):
        for j in range(4):
            sums[i, index[i, j]] += src[i, j]
            counts[i, index[i, j]] += 1
    np.testing.assert_allclose(got4, np.where(counts > 0, sums / np.maximum(counts, 1), x), rtol=1e-9)
    if device == "cpu":
        a, b = fg.tensor(x, requires_grad=True), fg.tensor(src, requires_grad=True)
        assert gradcheck(lambda p, q: p.scatter_add(1, fg.tensor(index), q), [a, b])
        assert gradcheck(lambda p, q: p.scatter(1, fg.tensor(uniq), q), [a, b])
        assert gradcheck(lambda p, q: p.index_add(0, fg.tensor([2, 0, 2]), q[:3]), [a, b])
    with pytest.raises(IndexError, match="index out of bounds"):
        xt.scatter_add(1, fg.tensor([[4, 0, 0, 0]] * 3), st)


def test_median_kthvalue_bincount_unique():
    x = rng.standard_normal((3, 5))
    v, i = fg.tensor(x).median(1)
    np.testing.assert_array_equal(v.numpy(), np.sort(x, 1)[:, 2])
    np.testing.assert_array_equal(np.take_along_axis(x, i.numpy()[:, None], 1)[:, 0], v.numpy())
    assert fg.tensor([4.0, 1.0, 3.0, 2.0]).median().item() == 2.0  # the lower median
    kv = fg.tensor(x).kthvalue(2, 1, keepdim=True)
    np.testing.assert_array_equal(kv.values.numpy()[:, 0], np.sort(x, 1)[:, 1])
    with pytest.raises(IndexError, match="k = 6 is out of range"):
        fg.tensor(x).kthvalue(6, 1)
    assert fg.bincount(fg.tensor([1, 1, 3]), minlength=5).numpy().tolist() == [0, 2, 0, 1, 0]
    np.testing.assert_allclose(
        fg.bincount(fg.tensor([0, 2, 2]), fg.tensor([0.5, 1.0, 2.0])).numpy(), [0.5, 0.0, 3.0]
    )
    vals, inv, cnt = fg.unique(fg.tensor([3, 1, 3, 2]), return_inverse=True, return_counts=True)
    assert (
        vals.numpy().tolist() == [1, 2, 3]
        and inv.numpy().tolist() == [2, 0, 2, 1]
        and cnt.numpy().tolist() == [1, 1, 2]
    )


def test_meshgrid_cdist_cummax_unfold_and_shifts(device):
    a, b = fg.tensor([1.0, 2.0, 3.0]), fg.tensor([4.0, 5.0])
    for indexing in ("ij", "xy"):
        got = fg.meshgrid(a, b, indexing=indexing)
        want = np.meshgrid([1.0, 2.0, 3.0], [4.0, 5.0], indexing=indexing)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w)
    x1, x2 = rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    want = np.sqrt(((x1[:, None] - x2[None]) ** 2).sum(-1))
    c = fg.cdist(fg.tensor(x1.astype(np.float32)).to(device), fg.tensor(x2.astype(np.float32)).to(device))
    np.testing.assert_allclose(c.numpy(), want, rtol=1e-5)
    np.testing.assert_allclose(
        fg.tensor(x1).cdist(fg.tensor(x2), p=1).numpy(), np.abs(x1[:, None] - x2[None]).sum(-1)
    )
    v = np.array([[1.0, 3.0, 2.0, 3.0, 5.0], [0.0, -1.0, 4.0, 4.0, 1.0]])
    cm = fg.tensor(v, requires_grad=True).cummax(1)
    np.testing.assert_array_equal(cm.values.numpy(), np.maximum.accumulate(v, 1))
    assert cm.indices.numpy().tolist() == [[0, 1, 1, 3, 4], [0, 0, 2, 3, 3]]  # ties: the later index
    cn = fg.tensor(v).cummin(1)
    np.testing.assert_array_equal(cn.values.numpy(), np.minimum.accumulate(v, 1))
    xt = fg.tensor(v, requires_grad=True)
    assert gradcheck(
        lambda t: t.cummax(1).values, [fg.tensor(v + rng.random(v.shape) * 0.01, requires_grad=True)]
    )
    u = fg.tensor(np.arange(10.0)).unfold(0, 4, 3)
    assert u.numpy().tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    w = fg.tensor(np.arange(24.0).reshape(2, 12)).unfold(1, 5, 2)
    assert tuple(w.shape) == (2, 4, 5) and w.numpy()[1, 1].tolist() == [14, 15, 16, 17, 18]
    assert gradcheck(lambda t: t.unfold(1, 2, 1), [xt])
    assert (fg.tensor([1, 6]) << 2).numpy().tolist() == [4, 24]
    assert (fg.tensor([-8, 6]) >> 1).numpy().tolist() == [-4, 3]
    assert fg.bitwise_not(fg.tensor([0, 5])).numpy().tolist() == [-1, -6]
    with pytest.raises(fg.DTypeError, match="bitwise_left_shift: expected integer"):
        fg.tensor([1.0]) << 1


def test_masked_scatter_follows_pytorch(device):
    x = fg.tensor(A[0].astype(np.float32)).to(device).requires_grad_()
    m = A[1] > 0.3
    src = fg.tensor(np.arange(20, dtype=np.float32) + 100).to(device).requires_grad_()
    y = x.masked_scatter(fg.tensor(m).to(device), src)
    want = A[0].astype(np.float32).copy()
    want[m] = np.arange(m.sum()) + 100  # row-major order, source's first entries
    np.testing.assert_allclose(y.cpu().numpy(), want)
    weights = fg.tensor(rng.standard_normal((4, 5)).astype(np.float32)).to(device)
    (y * weights).sum().backward()
    w = weights.cpu().numpy()
    np.testing.assert_allclose(x.grad.cpu().numpy(), np.where(m, 0, w), rtol=1e-6)
    gsrc = np.zeros(20, np.float32)
    gsrc[: m.sum()] = w[m]
    np.testing.assert_allclose(src.grad.cpu().numpy(), gsrc, rtol=1e-6)
    # a broadcast mask, and the errors PyTorch gives
    row = fg.tensor([True, False, True, False, False])
    got = fg.zeros(2, 5).masked_scatter(row, fg.arange(4.0))
    assert got.tolist() == [[0, 0, 1, 0, 0], [2, 0, 3, 0, 0]]
    with pytest.raises(fg.ShapeError, match="selects 4 entries but source has only 3"):
        fg.zeros(2, 5).masked_scatter(row, fg.arange(3.0))
    with pytest.raises(fg.DTypeError, match="bool"):
        fg.zeros(2).masked_scatter(fg.tensor([1, 0]), fg.ones(2))


@pytest.mark.parametrize("mode", [None, "trunc", "floor"])
def test_div_rounding_modes_follow_pytorch(mode):
    a = np.array([-7.5, -7.0, -0.5, 0.5, 7.0, 7.5], np.float32)
    b = np.array([2.0, -2.0, 2.0, -2.0, 3.0, 2.0], np.float32)
    ref = {None: a / b, "trunc": np.trunc(a / b), "floor": np.floor(a / b)}[mode]
    got = fg.div(fg.tensor(a), fg.tensor(b), rounding_mode=mode)
    np.testing.assert_allclose(got.numpy(), ref)
    np.testing.assert_allclose(fg.tensor(a).div(fg.tensor(b), rounding_mode=mode).numpy(), ref)
    ia, ib = np.array([-7, 7, -8, 9]), np.array([2, -2, 3, 4])
    got = fg.tensor(ia).div(fg.tensor(ib), rounding_mode=mode)
    if mode is None:
        assert got.dtype == fg.float32  # true division of integers
        np.testing.assert_allclose(got.numpy(), ia / ib, rtol=1e-6)
    else:
        assert got.dtype == fg.int64
        want = np.trunc(ia / ib) if mode == "trunc" else np.floor_divide(ia, ib)
        np.testing.assert_array_equal(got.numpy(), want)


def test_div_rejects_an_unknown_rounding_mode():
    with pytest.raises(ValueError, match="rounding_mode"):
        fg.ones(2).div(2, rounding_mode="round")
    assert fg.divide is fg.div
    assert fg.true_divide(fg.tensor([3]), 2).tolist() == [1.5]


@pytest.mark.parametrize(
    "src,dst,np_dst",
    [
        (np.float32, fg.int32, np.int32),
        (np.float32, fg.uint8, np.uint8),
        (np.uint8, fg.float32, np.float32),
        (np.float16, fg.int32, np.int32),
        (np.int64, fg.float64, np.float64),
        (np.float32, fg.float16, np.float16),
    ],
)
def test_view_as_dtype_reinterprets_the_bits(src, dst, np_dst):
    a = (rng.standard_normal((3, 8)) * 50).astype(src)
    got = fg.tensor(a).view(dst)
    want = a.view(np_dst)
    assert got.dtype == dst and tuple(got.shape) == want.shape
    np.testing.assert_array_equal(got.numpy(), want)


def test_view_as_bfloat16_and_its_errors():
    h = fg.tensor([1.0, -2.0, 0.5]).half()
    bits = h.numpy().view(np.uint16).astype(np.uint32) << 16  # the same 16 bits, as bfloat16
    np.testing.assert_array_equal(h.view(fg.bfloat16).float().numpy(), bits.view(np.float32))
    assert h.view(fg.bfloat16).view(fg.float16).tolist() == [1.0, -2.0, 0.5]
    with pytest.raises(fg.ShapeError, match="not a multiple"):
        fg.ones(3, dtype=fg.uint8).view(fg.int32)
    with pytest.raises(fg.ShapeError, match="0-d"):
        fg.tensor(1.0).view(fg.float16)
    assert fg.ones(2, 3).view(6).shape == (6,)  # shapes still work


def test_view_as_dtype_aliases_host_memory_as_pytorchs_does():
    x = fg.tensor([1.0, -2.0, 3.5])
    i = x.view(fg.int32)
    i[0] = 0  # +0.0's bits
    assert x.tolist() == [0.0, -2.0, 3.5]
    with fg.no_grad():
        x.mul_(2.0)
    np.testing.assert_array_equal(i.numpy(), np.array([0.0, -4.0, 7.0], np.float32).view(np.int32))
    # another element size: the last dim rescales, and a strided view keeps its place
    m = fg.arange(8.0).reshape(2, 4)[:, 2:]
    b = m.view(fg.uint8)
    assert b.shape == (2, 8) and b.stride() == (16, 1) and b.storage_offset() == 8
    want = np.arange(8.0, dtype=np.float32).reshape(2, 4)[:, 2:].view(np.uint8)
    np.testing.assert_array_equal(b.numpy(), want)
    raw = fg.zeros(8, dtype=fg.uint8)
    f = raw.view(fg.float32)
    raw[2], raw[3] = 128, 63  # 1.0's bytes, little-endian
    assert f.tolist() == [1.0, 0.0]
    del raw  # the view keeps the memory
    assert f.tolist() == [1.0, 0.0]
    h = fg.ones(4).half()  # halves too, both ways
    h.view(fg.bfloat16)[1] = 0.0
    assert h.tolist() == [1.0, 0.0, 1.0, 1.0]
    w = fg.ones(2, requires_grad=True)
    assert not w.view(fg.int32).requires_grad  # not differentiable


def test_view_as_dtype_refuses_what_pytorch_refuses_and_copies_bools():
    with pytest.raises(fg.ShapeError, match="stride 1"):
        fg.ones(4, 2).t().view(fg.float16)
    with pytest.raises(fg.ShapeError, match="divisible by 2"):
        fg.ones(3, 3, dtype=fg.float16)[:, :2].view(fg.float32)  # row stride 3
    u = fg.tensor([0, 1, 1], dtype=fg.uint8)
    flags = u.view(fg.bool_)  # a copy: foreign bytes need not be 0 or 1
    assert flags.tolist() == [False, True, True]
    u[0] = 1
    assert flags.tolist() == [False, True, True]
    if fg.gpu_available():
        g = fg.tensor([1.0, 2.0], device="gpu").view(fg.int32)  # a copy on the GPU
        assert g.tolist() == np.array([1.0, 2.0], np.float32).view(np.int32).tolist()


def test_in_place_operators_are_in_place_as_in_pytorch():
    a = fg.tensor([1, 2])
    alias = a
    a += 1
    a *= 3
    assert alias is a and alias.tolist() == [6, 9]
    x = fg.ones(3)
    view = x[1:]
    x -= 0.5
    x /= 2
    assert view.tolist() == [0.25, 0.25]
    # the tutorial update: in place under no_grad, the weight stays a leaf
    w = fg.ones(3, requires_grad=True)
    (w * 2).sum().backward()
    with fg.no_grad():
        w -= 0.1 * w.grad
    assert w.is_leaf and w.requires_grad and np.allclose(w.detach().numpy(), 0.8)
    with pytest.raises(RuntimeError, match="in place"):
        w += 1  # a leaf that requires grad, grad mode on: PyTorch refuses too
    # a running loss (a graph node) accumulates with its gradient
    total = 0
    for i in range(3):
        total += (w * i).sum()
    total.backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 + 3.0)  # 2 from before, 0 + 1 + 2 now
    with pytest.raises(fg.DTypeError):
        b = fg.tensor([1, 2])
        b += 0.5  # PyTorch: a float result cannot be stored into an int64 tensor
