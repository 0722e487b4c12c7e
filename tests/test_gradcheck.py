"""Finite-difference checks (`fg.autograd.gradcheck`, float64) of every differentiable op.

Inputs are kept small (the full Jacobian is computed) and away from kinks: ReLU-like ops
and abs see no zeros, clamp no values at its bounds, max/min/maximum/minimum no ties,
sqrt/log/pow only positive bases; the rows of the engine's op table take theirs from
tests/unary_reference.py (in each op's domain, 0.05 clear of its kinks).
"""

from __future__ import annotations

import numpy as np
import pytest
from unary_reference import VARIANTS, op, sample, variant_id

import ferrograd as fg
from ferrograd.autograd import GradcheckError, gradcheck


def leaf(a) -> fg.Tensor:
    return fg.tensor(np.asarray(a, dtype=np.float64), dtype=fg.float64, requires_grad=True)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def normal(*shape, seed=0):
    return leaf(rng(seed).standard_normal(shape))


def away(*shape, seed=0, lo=0.2, hi=1.8):
    """Values of both signs with |x| in [lo, hi]: away from the kinks at 0."""
    r = rng(seed)
    return leaf(r.uniform(lo, hi, shape) * r.choice([-1.0, 1.0], shape))


def positive(*shape, seed=0, lo=0.5, hi=2.0):
    return leaf(rng(seed).uniform(lo, hi, shape))


def distinct(*shape, seed=0, offset=0.0):
    """Values on a 0.3-spaced grid (shuffled): no ties for max/min."""
    n = int(np.prod(shape))
    v = (np.arange(n) - n / 2) * 0.3 + offset
    return leaf(rng(seed).permutation(v).reshape(shape))


def grid(*shape, seed=0, offset=0.0):
    """Values on a 0.5 grid plus `offset`: two grids with offsets 0 and 0.25 never tie."""
    return leaf(rng(seed).integers(-4, 5, shape) * 0.5 + offset)


def ok(fn, *inputs, **kw):
    assert gradcheck(fn, inputs, **kw) is True


# ----------------------------------------------------------------------------- binary ops

BINARY_CASES = {
    "add": (lambda a, b: a + b, lambda: (normal(2, 3, seed=1), normal(2, 3, seed=2))),
    "add_broadcast": (lambda a, b: a + b, lambda: (normal(3, 1, 4, seed=1), normal(2, 4, seed=2))),
    "add_method_scalar_tensor": (lambda a, b: a.add(b), lambda: (normal(2, 3, seed=1), normal(seed=2))),
    "sub": (lambda a, b: a - b, lambda: (normal(2, 3, seed=1), normal(2, 3, seed=2))),
    "sub_broadcast": (lambda a, b: a - b, lambda: (normal(3, 1, 4, seed=1), normal(2, 4, seed=2))),
    "sub_broadcast_reversed": (
        lambda a, b: b.sub(a),
        lambda: (normal(3, 1, 4, seed=1), normal(2, 4, seed=2)),
    ),
    "mul": (lambda a, b: a * b, lambda: (normal(2, 3, seed=1), normal(2, 3, seed=2))),
    "mul_broadcast": (lambda a, b: a.mul(b), lambda: (normal(3, 1, 4, seed=1), normal(2, 4, seed=2))),
    "mul_row_col": (lambda a, b: a * b, lambda: (normal(3, 1, seed=1), normal(1, 4, seed=2))),
    "div": (lambda a, b: a / b, lambda: (normal(2, 3, seed=1), away(2, 3, seed=2, lo=0.5))),
    "div_broadcast": (lambda a, b: a.div(b), lambda: (normal(3, 1, 4, seed=1), away(2, 4, seed=2, lo=0.5))),
    "div_broadcast_denominator_bigger": (
        lambda a, b: a / b,
        lambda: (normal(4, seed=1), away(3, 2, 4, seed=2, lo=0.5)),
    ),
    "pow_tensor_exponent": (lambda a, b: a**b, lambda: (positive(2, 3, seed=1), normal(2, 3, seed=2))),
    "pow_broadcast": (lambda a, b: a.pow(b), lambda: (positive(3, 1, 4, seed=1), normal(2, 4, seed=2))),
    "maximum": (lambda a, b: fg.maximum(a, b), lambda: (grid(2, 3, seed=1), grid(2, 3, seed=2, offset=0.25))),
    "maximum_broadcast": (
        lambda a, b: a.maximum(b),
        lambda: (grid(3, 1, 4, seed=1), grid(2, 4, seed=2, offset=0.25)),
    ),
    "minimum": (lambda a, b: fg.minimum(a, b), lambda: (grid(2, 3, seed=1), grid(2, 3, seed=2, offset=0.25))),
    "minimum_broadcast": (
        lambda a, b: a.minimum(b),
        lambda: (grid(3, 1, 4, seed=1), grid(2, 4, seed=2, offset=0.25)),
    ),
    "same_tensor_twice": (lambda a, b: a * a + a / b, lambda: (normal(2, 3, seed=1), away(2, 3, seed=2))),
}


@pytest.mark.parametrize("name", sorted(BINARY_CASES))
def test_binary(name):
    fn, make = BINARY_CASES[name]
    ok(fn, *make())


@pytest.mark.parametrize("name", sorted(BINARY_CASES))
def test_binary_one_side_requires_grad(name):
    fn, make = BINARY_CASES[name]
    a, b = make()
    ok(fn, a, b.detach())
    ok(fn, a.detach(), b)


def _rev(t):
    return t[..., ::-1] if t.ndim else t


@pytest.mark.parametrize("name", sorted(BINARY_CASES))
def test_binary_noncontiguous_inputs(name):
    fn, make = BINARY_CASES[name]
    ok(lambda a, b: fn(_rev(a), _rev(b)), *make())


def test_ties_split_the_gradient_evenly():
    """Two-way ties: autograd gives each 1/2, which is also the central difference."""
    a, b = leaf([1.0, 2.0, -1.0]), leaf([1.0, 0.5, -1.0])
    ok(lambda a, b: fg.maximum(a, b), a, b)
    ok(lambda a, b: fg.minimum(a, b), a, b)
    ok(lambda t: t.max(), leaf([0.5, 2.0, 2.0, -1.0]))
    ok(lambda t: t.min(1).values, leaf([[0.5, 0.5, 2.0], [1.0, 3.0, 2.0]]))


SCALAR_CASES = {
    "add": (lambda x: x + 2.5, normal),
    "radd": (lambda x: 2.5 + x, normal),
    "sub": (lambda x: x - 1.5, normal),
    "rsub": (lambda x: 1.5 - x, normal),
    "mul": (lambda x: x * 3.0, normal),
    "rmul": (lambda x: -2 * x, normal),
    "div": (lambda x: x / 4.0, normal),
    "rdiv": (lambda x: 2.0 / x, away),
    "pow2": (lambda x: x**2, normal),
    "pow3_negative_base": (lambda x: x**3, away),
    "pow_half": (lambda x: x**0.5, positive),
    "pow_negative": (lambda x: x**-1.5, positive),
    "rpow": (lambda x: 2.0**x, normal),
    "maximum_scalar": (lambda x: fg.maximum(x, 0.1), away),
    "minimum_scalar": (lambda x: fg.minimum(0.1, x), away),
    "neg_op": (lambda x: -x, normal),
}


@pytest.mark.parametrize("name", sorted(SCALAR_CASES))
def test_scalar_operand(name):
    fn, make = SCALAR_CASES[name]
    ok(fn, make(2, 3, seed=3))


# ----------------------------------------------------------------------------- unary ops

UNARY_CASES = {
    "neg": (lambda x: x.neg(), normal),
    "neg_fn": (fg.neg, normal),
    "exp": (lambda x: x.exp(), normal),
    "log": (lambda x: x.log(), positive),
    "sqrt": (lambda x: x.sqrt(), positive),
    "abs": (lambda x: x.abs(), away),
    "abs_builtin": (abs, away),
    "tanh": (lambda x: x.tanh(), normal),
    "sigmoid": (lambda x: x.sigmoid(), normal),
    "sigmoid_large": (lambda x: (x * 8).sigmoid(), away),
    "relu": (lambda x: x.relu(), away),
    "selu": (lambda x: x.selu(), away),
    "elu": (lambda x: x.elu(), away),
    "elu_alpha": (lambda x: fg.elu(x, alpha=0.5), away),
    "leaky_relu": (lambda x: x.leaky_relu(), away),
    "leaky_relu_slope": (lambda x: fg.leaky_relu(x, 0.2), away),
    "gelu": (lambda x: x.gelu(), normal),
    "gelu_tanh": (lambda x: x.gelu(approximate="tanh"), normal),
    "clamp": (lambda x: x.clamp(-1.0, 1.0), away),
    "clamp_min": (lambda x: fg.clamp(x, min=0.1), away),
    "clamp_max": (lambda x: x.clamp(max=-0.1), away),
    "exp_fn": (fg.exp, normal),
    "log_fn": (fg.log, positive),
    "sqrt_fn": (fg.sqrt, positive),
    "tanh_fn": (fg.tanh, normal),
    "sigmoid_fn": (fg.sigmoid, normal),
    "relu_fn": (fg.relu, away),
    "selu_fn": (fg.selu, away),
    "gelu_fn": (fg.gelu, normal),
}


def _in_domain(name: str, args: tuple):
    """A maker of leaves in the row's domain, clear of its kinks (unary_reference.sample)."""
    return lambda *shape, seed=0: leaf(sample(name, args, shape, seed_key=seed))


# every public row of the engine's op table (`_core.unary_ops()`), through `_core.unary`
for _name, _args in VARIANTS:
    UNARY_CASES[f"table_{variant_id((_name, _args))}"] = (op(_name, _args), _in_domain(_name, _args))


@pytest.mark.parametrize("name", sorted(UNARY_CASES))
def test_unary(name):
    fn, make = UNARY_CASES[name]
    x = make(3, 4, seed=4)
    if name.startswith("clamp"):  # keep clear of the bounds
        v = x.detach().numpy()
        assert np.all(np.abs(np.abs(v) - 1.0) > 1e-3) and np.all(np.abs(np.abs(v) - 0.1) > 1e-3)
    ok(fn, x)


@pytest.mark.parametrize("name", sorted(UNARY_CASES))
def test_unary_on_noncontiguous_input(name):
    fn, make = UNARY_CASES[name]
    x = make(4, 3, seed=5)
    ok(lambda t: fn(t.T[:, ::-2]), x)


# ----------------------------------------------------------------------------- reductions

DIMS = [None, 0, -1, (0, 2), (2, 0, 1), 1]


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS)
def test_sum_mean(dim, keepdim):
    x = normal(2, 3, 4, seed=6)
    ok(lambda t: t.sum(dim, keepdim), x)
    ok(lambda t: fg.sum(t, dim=dim, keepdim=keepdim), x)
    ok(lambda t: t.mean(dim, keepdim), x)
    ok(lambda t: fg.mean(t.permute(2, 0, 1), dim, keepdim), x)


@pytest.mark.parametrize("correction", [0, 1])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS)
def test_var(dim, keepdim, correction):
    x = normal(2, 3, 4, seed=7)
    ok(lambda t: t.var(dim, correction=correction, keepdim=keepdim), x)
    ok(lambda t: fg.var(t.transpose(0, 2), dim, correction, keepdim), x)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS)
def test_max_min(dim, keepdim):
    """Along one int dim max/min give (values, indices), as PyTorch; the values are
    differentiable, and equal amax/amin."""
    x = distinct(2, 3, 4, seed=8)

    def values(r):
        return r.values if isinstance(r, tuple) else r

    ok(lambda t: values(t.max(dim, keepdim)), x)
    ok(lambda t: values(t.min(dim, keepdim)), x)
    ok(lambda t: values(fg.max(t.transpose(0, 1), dim, keepdim)), x)
    ok(lambda t: values(fg.min(t[:, ::-1], dim, keepdim)), x)
    ok(lambda t: t.amax(dim, keepdim) * t.amin(dim, keepdim), x)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS)
def test_logsumexp(dim, keepdim):
    x = normal(2, 3, 4, seed=9)
    ok(lambda t: t.logsumexp(dim, keepdim), x)
    ok(lambda t: fg.logsumexp(t * 3, dim, keepdim=keepdim), x)


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_softmax_log_softmax(dim):
    x = normal(2, 3, 4, seed=10)
    ok(lambda t: t.softmax(dim), x)
    ok(lambda t: t.log_softmax(dim), x)
    ok(lambda t: fg.softmax(t.transpose(0, 2), dim), x)
    ok(lambda t: fg.log_softmax(t * 2, dim=dim), x)


def test_reductions_of_0d_and_1d():
    ok(lambda t: t.sum(), normal(seed=11))
    ok(lambda t: t.mean(0), normal(seed=11))
    ok(lambda t: t.logsumexp(0), normal(5, seed=11))
    ok(lambda t: t.max(), distinct(5, seed=11))
    ok(lambda t: t.var(), normal(5, seed=11))
    ok(lambda t: t.softmax(0), normal(5, seed=11))


# ----------------------------------------------------------------------------- matmul / linear

MATMUL_SHAPES = [
    ((3,), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((2, 2, 3), (3, 2)),
    ((2, 3), (2, 3, 2)),
    ((2, 1, 2, 3), (3, 3, 2)),
    ((3,), (2, 3, 2)),
    ((2, 2, 3), (3,)),
    ((1, 2, 3), (2, 3, 2)),
]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul(sa, sb):
    a, b = normal(*sa, seed=12), normal(*sb, seed=13)
    ok(lambda x, y: x @ y, a, b)
    ok(lambda x, y: fg.matmul(x, y), a, b.detach())
    ok(lambda x, y: x.matmul(y), a.detach(), b)


def test_matmul_noncontiguous_operands():
    a, b = normal(3, 2, seed=14), normal(4, 3, seed=15)
    ok(lambda x, y: x.T @ y.T, a, b)  # transposed views
    ok(lambda x, y: x[::-1].T @ y[:, ::-1].T, a, b)  # negative strides
    c = normal(3, 1, seed=16)
    ok(lambda x, y: x.expand(3, 4).T @ y, c, normal(3, 2, seed=17))  # stride-0 operand
    ok(lambda x, y: x.expand(2, 3, 1) @ y.unsqueeze(0), c, normal(1, 2, seed=17))  # expanded batch


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("xshape", [(3,), (4, 3), (2, 2, 3)])
def test_linear(xshape, bias):
    x, w = normal(*xshape, seed=18), normal(2, 3, seed=19)
    if bias:
        b = normal(2, seed=20)
        ok(lambda x, w, b: fg.linear(x, w, b), x, w, b)
        ok(lambda x, w, b: fg.linear(x, w, b), x.detach(), w, b)
        ok(lambda x, w, b: fg.linear(x, w, b), x, w.detach(), b.detach())
    else:
        ok(lambda x, w: fg.linear(x, w), x, w)
        ok(lambda x, w: fg.linear(x, w), x, w.detach())


def test_linear_noncontiguous():
    x, w, b = normal(3, 4, seed=21), normal(3, 2, seed=22), normal(2, seed=23)
    ok(lambda x, w, b: fg.linear(x.T, w.T, b), x, w, b)


# ----------------------------------------------------------------------------- views and indexing

VIEW_CASES = {
    "reshape": lambda t: t.reshape(4, 6),
    "reshape_minus1": lambda t: t.reshape(-1, 3),
    "reshape_of_transposed": lambda t: t.transpose(0, 2).reshape(6, 4),
    "view": lambda t: t.view(2, 12),
    "transpose": lambda t: t.transpose(0, 2),
    "transpose_neg": lambda t: t.transpose(-1, -2),
    "permute": lambda t: t.permute(2, 0, 1),
    "T": lambda t: t.T,
    "expand": lambda t: t[:, :1, :].expand(2, 3, 4),
    "expand_new_dims": lambda t: t[0, 0].expand(2, 3, 4),
    "expand_minus1": lambda t: t[:, :, :1].expand(-1, -1, 3),
    "slice_steps": lambda t: t[::2, 1:, ::-1],
    "slice_negative_steps": lambda t: t[::-1, ::-2, 1::2],
    "int_index": lambda t: t[1, :, -1],
    "int_index_single": lambda t: t[-1],
    "none_ellipsis": lambda t: t[None, ..., 1],
    "ellipsis_step": lambda t: t[..., ::-2],
    "int_tensor_index_repeated": lambda t: t[fg.tensor([1, 0, 1, 1])],
    "int_list_index": lambda t: t[[0, 0, -1]],
    "int_tensor_2d_index": lambda t: t.reshape(6, 4)[fg.tensor([[0, 5], [5, 2]])],
    "unsqueeze": lambda t: t.unsqueeze(1),
    "unsqueeze_neg": lambda t: t.unsqueeze(-1),
    "squeeze_all": lambda t: t[:, :1, None, :].squeeze(),
    "squeeze_dim": lambda t: t[:1].squeeze(0),
    "flatten": lambda t: t.flatten(),
    "flatten_range": lambda t: t.flatten(1),
    "flatten_of_permuted": lambda t: t.permute(1, 2, 0).flatten(0, 1),
    "narrow": lambda t: t.narrow(2, 1, 2),
    "contiguous": lambda t: t.transpose(0, 1).contiguous(),
    "contiguous_noop": lambda t: t.contiguous(),
    "clone": lambda t: t.clone(),
    "clone_of_view": lambda t: t[:, ::2].clone(),
    "chain": lambda t: t.permute(1, 0, 2)[::2].reshape(2, 2, 4)[:, None].expand(2, 3, 2, 4).flatten(),
}


@pytest.mark.parametrize("name", sorted(VIEW_CASES))
def test_views(name):
    fn = VIEW_CASES[name]
    ok(fn, normal(2, 3, 4, seed=24))
    # the view followed by an elementwise op and a reduction (gradients through the view's layout)
    ok(lambda t: (fn(t) * fn(t).exp()).sum(), normal(2, 3, 4, seed=25))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat(dim):
    shapes = {
        0: [(1, 3, 2), (2, 3, 2), (1, 3, 2)],
        1: [(2, 1, 2), (2, 3, 2), (2, 2, 2)],
        -1: [(2, 3, 1), (2, 3, 2)],
    }
    ins = [normal(*s, seed=30 + i) for i, s in enumerate(shapes[dim])]
    ok(lambda *ts: fg.cat(list(ts), dim), *ins)
    ok(lambda *ts: fg.cat([t * t for t in ts], dim=dim), *ins)
    ok(lambda a, b: fg.cat([a, b, a], dim), ins[0], ins[1].detach())  # b is a constant


def test_cat_noncontiguous():
    a, b = normal(3, 2, seed=33), normal(2, 4, seed=34)
    ok(lambda a, b: fg.cat([a.T, b[:, ::-1]], 1), a, b)


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack(dim):
    a, b, c = normal(2, 3, seed=35), normal(2, 3, seed=36), normal(2, 3, seed=37)
    ok(lambda a, b, c: fg.stack([a, b, c], dim), a, b, c)
    ok(lambda a, b: fg.stack([a, b, a], dim=dim), a, b)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_select(dim):
    x = normal(3, 4, seed=38)
    idx = fg.tensor([2, 0, 2, 2, 1])
    ok(lambda t: t.index_select(dim, idx), x)
    ok(lambda t: fg.index_select(t.T, dim, fg.tensor([1, 1, 0])), x)
    ok(lambda t: t.index_select(dim, fg.tensor([-1, 0, -1])), x)


def test_where():
    a, b = normal(2, 3, seed=39), normal(3, seed=40)
    cond = fg.tensor([[True, False, True], [False, False, True]])
    ok(lambda a, b: fg.where(cond, a, b), a, b)
    ok(lambda a, b: fg.where(cond[:, :1], a, b), a, b)  # broadcast condition
    ok(lambda a: fg.where(cond, a, 0.0), a)
    ok(lambda b: fg.where(cond, 1.5, b), b)
    ok(lambda a: fg.where(a > 0, a, a * 0.1), away(2, 3, seed=41))


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("dim,keepdim", [(None, False), (1, False), (0, True)])
def test_norm(p, dim, keepdim):
    x = distinct(3, 4, seed=48, offset=0.1) if p == float("inf") else away(3, 4, seed=48)
    ok(lambda a: a.norm(p, dim, keepdim), x)


def test_norm_gradient_at_zero_is_zero():
    """The 2-norm's gradient where the norm is 0 is 0 (PyTorch's subgradient), not NaN."""
    x = fg.tensor(np.array([[0.0, 0.0], [3.0, 4.0]]), dtype=fg.float64, requires_grad=True)
    x.norm(dim=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0.0, 0.0], [0.6, 0.8]])


def test_pytorch_style_products_and_pieces():
    a, b = normal(3, 4, seed=50), normal(4, 2, seed=51)
    ok(lambda a, b: a.mm(b), a, b)
    ok(lambda a, v: a.mv(v), a, normal(4, seed=52))
    ok(lambda u, v: u.dot(v), normal(4, seed=53), normal(4, seed=54))
    ok(lambda u, v: u.outer(v), normal(3, seed=55), normal(2, seed=56))
    ok(lambda x, y: x.bmm(y), normal(2, 3, 4, seed=57), normal(2, 4, 2, seed=58))
    ok(lambda a: a.split(3, 1)[1] * 2.0 + a.split([1, 2], 0)[0].sum(), a)
    ok(lambda a: a.chunk(2, 1)[0] * a.unbind(1)[3].unsqueeze(1), a)
    ok(lambda a: a.square() + a.t().t(), a)
    ok(lambda a: a.reciprocal() + a.abs().rsqrt(), away(3, 4, seed=59))


def test_masked_fill_and_boolean_mask_indexing():
    m = fg.tensor([[True, False, True], [False, False, True]])
    ok(lambda a: a.masked_fill(m, 0.5), normal(2, 3, seed=42))
    ok(lambda a: a.masked_fill(m[:, :1], -1.0), normal(2, 3, seed=43))  # broadcast mask
    ok(lambda a: a[m], normal(2, 3, seed=44))
    ok(lambda a: a[m[:, 2]], normal(2, 3, seed=45))  # whole rows
    ok(lambda a: a.T[m.T] * a.T[m.T], normal(2, 3, seed=46))  # strided input
    ok(lambda a: a[a > 0] * 2.0, away(3, 4, seed=47))


# ----------------------------------------------------------------------------- composites


def test_cross_entropy_like():
    logits, labels = normal(4, 3, seed=42), fg.tensor([0, 2, 1, 2])
    oh = fg.one_hot(labels, 3).double()
    ok(lambda z: -(z.log_softmax(1) * oh).sum(1).mean(), logits)


def test_mlp():
    x = normal(4, 3, seed=43)
    w1, b1, w2, b2 = normal(5, 3, seed=44), normal(5, seed=45), normal(2, 5, seed=46), normal(2, seed=47)
    ok(lambda x, w1, b1, w2, b2: fg.linear(fg.linear(x, w1, b1).tanh(), w2, b2).gelu(), x, w1, b1, w2, b2)


def test_layer_norm_like():
    x = normal(3, 4, seed=48)
    ok(lambda t: (t - t.mean(-1, keepdim=True)) / (t.var(-1, correction=0, keepdim=True) + 1e-5).sqrt(), x)


def test_int_input_alongside():
    """Inputs that do not require grad (ints, float64 constants) are skipped by gradcheck."""
    x, c = normal(2, 3, seed=49), fg.tensor(np.arange(6.0).reshape(2, 3))
    ok(lambda t, c, i: t * c + i, x, c, fg.tensor([1, 2, 3]))


# ----------------------------------------------------------------------------- gradcheck itself


def test_gradcheck_detects_a_wrong_gradient():
    """x * x.detach() has derivative x by autograd but 2x numerically."""
    x = normal(2, 3, seed=50)
    assert gradcheck(lambda t: t * t.detach(), (x,), raise_exception=False) is False
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: t * t.detach(), (x,))


def test_gradcheck_detects_kink_mismatch():
    """At 0 ReLU's subgradient (0) differs from the central difference (0.5)."""
    x = leaf([0.0, 1.0, -1.0])
    assert gradcheck(lambda t: t.relu(), (x,), raise_exception=False) is False


def test_gradcheck_refuses_float32_inputs_requiring_grad():
    x = fg.tensor(np.ones((2, 2), np.float32), requires_grad=True)
    with pytest.raises(ValueError):
        gradcheck(lambda t: t * 2, (x,))


def test_gradcheck_needs_an_input_requiring_grad():
    with pytest.raises(ValueError):
        gradcheck(lambda t: t * 2, (fg.tensor(np.ones(2)),))


FUSED = {
    "relu": (None, lambda t: t.relu()),
    "selu": (None, lambda t: t.selu()),
    "tanh": (None, lambda t: t.tanh()),
    "sigmoid": (None, lambda t: t.sigmoid()),
    "elu": (0.7, lambda t: t.elu(0.7)),
    "leaky_relu": (0.2, lambda t: t.leaky_relu(0.2)),
}


@pytest.mark.parametrize("act", sorted(FUSED))
def test_linear_with_fused_activation_gradcheck(act):
    """linear(..., activation=) in float64 against central differences; its backward reads
    only the output. Inputs keep clear of the kink at 0."""
    alpha, ref = FUSED[act]
    rng = np.random.default_rng(3)
    x = fg.tensor(rng.standard_normal((4, 5)), dtype=fg.float64, requires_grad=True)
    w = fg.tensor(rng.standard_normal((3, 5)), dtype=fg.float64, requires_grad=True)
    b = fg.tensor(rng.standard_normal(3), dtype=fg.float64, requires_grad=True)
    pre = (x.detach() @ w.detach().T + b.detach()).numpy()
    assert np.abs(pre).min() > 1e-3
    assert fg.autograd.gradcheck(lambda x, w, b: fg.linear(x, w, b, activation=act, alpha=alpha), (x, w, b))
    want = ref(fg.tensor(pre)).numpy()
    np.testing.assert_allclose(fg.linear(x, w, b, activation=act, alpha=alpha).numpy(), want, rtol=1e-12)


def test_linear_refuses_activations_it_cannot_fuse():
    """gelu's derivative needs its input, and elu with alpha <= 0 or leaky relu with a
    negative slope break `x > 0 iff y > 0`: linear refuses them rather than keep the input."""
    x, w = fg.ones(2, 3), fg.ones(4, 3)
    with pytest.raises(ValueError, match="activation must be None, 'relu'"):
        fg.linear(x, w, activation="gelu")
    for act, alpha in [("elu", -1.0), ("leaky_relu", -0.1)]:
        with pytest.raises(ValueError, match="cannot be fused"):
            fg.linear(x, w, activation=act, alpha=alpha)
