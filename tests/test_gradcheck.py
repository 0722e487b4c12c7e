"""Finite-difference checks (`fg.autograd.gradcheck`, float64) of every differentiable op,
and the same cases on the GPU against the CPU.

Inputs are kept small (the full Jacobian is computed) and away from kinks: ReLU-like ops
and abs see no zeros, clamp no values at its bounds, max/min/maximum/minimum no ties,
sqrt/log/pow only positive bases; the rows of the engine's op table take theirs from
tests/unary_reference.py (in each op's domain, 0.05 clear of its kinks).

Every case is a function and a maker of its inputs (float64 leaves, and constants that do
not require grad: masks, indices, float64 tensors), in the module's tables and `*_cases`
functions; the gradchecks run them in float64 on the CPU, and `test_gpu_matches_cpu` runs
each of them on float32 copies of its inputs on the CPU and on the GPU, comparing the
outputs and every input's gradient (the GPU holds float32 only, so no gradcheck there).
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


def ok_all(cases) -> None:
    """gradcheck every (fn, make) case: fn at the inputs make() returns."""
    for fn, make in cases:
        ok(fn, *make())


def one(make, *shape, **kw):
    """A maker of the single input make(*shape, **kw)."""
    return lambda: (make(*shape, **kw),)


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


def only_side(make, side: int):
    """`make`'s two inputs with only input `side` requiring grad."""

    def inputs():
        a, b = make()
        return (a, b.detach()) if side == 0 else (a.detach(), b)

    return inputs


@pytest.mark.parametrize("name", sorted(BINARY_CASES))
def test_binary_one_side_requires_grad(name):
    fn, make = BINARY_CASES[name]
    ok(fn, *only_side(make, 0)())
    ok(fn, *only_side(make, 1)())


def _rev(t):
    return t[..., ::-1] if t.ndim else t


def on_reversed(fn):
    """`fn` of its operands reversed along the last dim (non-contiguous, negative stride)."""
    return lambda a, b: fn(_rev(a), _rev(b))


@pytest.mark.parametrize("name", sorted(BINARY_CASES))
def test_binary_noncontiguous_inputs(name):
    fn, make = BINARY_CASES[name]
    ok(on_reversed(fn), *make())


def _tied():
    return leaf([1.0, 2.0, -1.0]), leaf([1.0, 0.5, -1.0])


TIE_CASES = {
    "maximum": (lambda a, b: fg.maximum(a, b), _tied),
    "minimum": (lambda a, b: fg.minimum(a, b), _tied),
    "max": (lambda t: t.max(), lambda: (leaf([0.5, 2.0, 2.0, -1.0]),)),
    # (min(dim) and max(dim) give a tie's gradient to the returned index, as PyTorch does:
    # tests/test_op_edges.py; tied, they are not differentiable)
}


def test_ties_split_the_gradient_evenly():
    """Two-way ties: autograd gives each 1/2, which is also the central difference."""
    ok_all(TIE_CASES.values())


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


def on_strided(fn):
    """`fn` of a transposed view with a negative step of its input."""
    return lambda t: fn(t.T[:, ::-2])


@pytest.mark.parametrize("name", sorted(UNARY_CASES))
def test_unary_on_noncontiguous_input(name):
    fn, make = UNARY_CASES[name]
    x = make(4, 3, seed=5)
    ok(on_strided(fn), x)


# ----------------------------------------------------------------------------- reductions

DIMS = [None, 0, -1, (0, 2), (2, 0, 1), 1]


def sum_mean_cases(dim, keepdim) -> list:
    x = one(normal, 2, 3, 4, seed=6)
    return [
        (lambda t: t.sum(dim, keepdim), x),
        (lambda t: fg.sum(t, dim=dim, keepdim=keepdim), x),
        (lambda t: t.mean(dim, keepdim), x),
        (lambda t: fg.mean(t.permute(2, 0, 1), dim, keepdim), x),
    ]


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS)
def test_sum_mean(dim, keepdim):
    ok_all(sum_mean_cases(dim, keepdim))


def var_cases(dim, keepdim, correction) -> list:
    x = one(normal, 2, 3, 4, seed=7)
    return [
        (lambda t: t.var(dim, correction=correction, keepdim=keepdim), x),
        (lambda t: fg.var(t.transpose(0, 2), dim, correction, keepdim), x),
    ]


@pytest.mark.parametrize("correction", [0, 1])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS)
def test_var(dim, keepdim, correction):
    ok_all(var_cases(dim, keepdim, correction))


def _values(r):
    return r.values if isinstance(r, tuple) else r


def max_min_cases(dim, keepdim) -> list:
    x = one(distinct, 2, 3, 4, seed=8)
    return [
        (lambda t: _values(t.max(dim, keepdim)), x),
        (lambda t: _values(t.min(dim, keepdim)), x),
        (lambda t: _values(fg.max(t.transpose(0, 1), dim, keepdim)), x),
        (lambda t: _values(fg.min(t[:, ::-1], dim, keepdim)), x),
        (lambda t: t.amax(dim, keepdim) * t.amin(dim, keepdim), x),
    ]


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS)
def test_max_min(dim, keepdim):
    """Along one int dim max/min give (values, indices), as PyTorch; the values are
    differentiable, and equal amax/amin."""
    ok_all(max_min_cases(dim, keepdim))


def logsumexp_cases(dim, keepdim) -> list:
    x = one(normal, 2, 3, 4, seed=9)
    return [
        (lambda t: t.logsumexp(dim, keepdim), x),
        (lambda t: fg.logsumexp(t * 3, dim, keepdim=keepdim), x),
    ]


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS)
def test_logsumexp(dim, keepdim):
    ok_all(logsumexp_cases(dim, keepdim))


def softmax_cases(dim) -> list:
    x = one(normal, 2, 3, 4, seed=10)
    return [
        (lambda t: t.softmax(dim), x),
        (lambda t: t.log_softmax(dim), x),
        (lambda t: fg.softmax(t.transpose(0, 2), dim), x),
        (lambda t: fg.log_softmax(t * 2, dim=dim), x),
    ]


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_softmax_log_softmax(dim):
    ok_all(softmax_cases(dim))


REDUCTIONS_0D_1D = {
    "sum_0d": (lambda t: t.sum(), one(normal, seed=11)),
    "mean_0d": (lambda t: t.mean(0), one(normal, seed=11)),
    "logsumexp_1d": (lambda t: t.logsumexp(0), one(normal, 5, seed=11)),
    "max_1d": (lambda t: t.max(), one(distinct, 5, seed=11)),
    "var_1d": (lambda t: t.var(), one(normal, 5, seed=11)),
    "softmax_1d": (lambda t: t.softmax(0), one(normal, 5, seed=11)),
}


def test_reductions_of_0d_and_1d():
    ok_all(REDUCTIONS_0D_1D.values())


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


def matmul_cases(sa, sb) -> list:
    def ab():
        return normal(*sa, seed=12), normal(*sb, seed=13)

    return [
        (lambda x, y: x @ y, ab),
        (lambda x, y: fg.matmul(x, y), only_side(ab, 0)),
        (lambda x, y: x.matmul(y), only_side(ab, 1)),
    ]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul(sa, sb):
    ok_all(matmul_cases(sa, sb))


MATMUL_NONCONTIGUOUS = {
    "transposed": (lambda x, y: x.T @ y.T, lambda: (normal(3, 2, seed=14), normal(4, 3, seed=15))),
    "negative_strides": (
        lambda x, y: x[::-1].T @ y[:, ::-1].T,
        lambda: (normal(3, 2, seed=14), normal(4, 3, seed=15)),
    ),
    "stride_0_operand": (
        lambda x, y: x.expand(3, 4).T @ y,
        lambda: (normal(3, 1, seed=16), normal(3, 2, seed=17)),
    ),
    "expanded_batch": (
        lambda x, y: x.expand(2, 3, 1) @ y.unsqueeze(0),
        lambda: (normal(3, 1, seed=16), normal(1, 2, seed=17)),
    ),
}


def test_matmul_noncontiguous_operands():
    ok_all(MATMUL_NONCONTIGUOUS.values())


def linear_cases(xshape, bias) -> list:
    def xwb():
        return normal(*xshape, seed=18), normal(2, 3, seed=19), normal(2, seed=20)

    if bias:
        f = fg.linear
        return [
            (f, xwb),
            (f, lambda: (xwb()[0].detach(), *xwb()[1:])),
            (f, lambda: (xwb()[0], xwb()[1].detach(), xwb()[2].detach())),
        ]
    return [
        (lambda x, w: fg.linear(x, w), lambda: xwb()[:2]),
        (lambda x, w: fg.linear(x, w), lambda: (xwb()[0], xwb()[1].detach())),
    ]


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("xshape", [(3,), (4, 3), (2, 2, 3)])
def test_linear(xshape, bias):
    ok_all(linear_cases(xshape, bias))


LINEAR_NONCONTIGUOUS = (
    lambda x, w, b: fg.linear(x.T, w.T, b),
    lambda: (normal(3, 4, seed=21), normal(3, 2, seed=22), normal(2, seed=23)),
)


def test_linear_noncontiguous():
    ok_all([LINEAR_NONCONTIGUOUS])


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


def view_cases(name) -> list:
    fn = VIEW_CASES[name]
    return [
        (fn, one(normal, 2, 3, 4, seed=24)),
        # the view followed by an elementwise op and a reduction (gradients through the view's layout)
        (lambda t: (fn(t) * fn(t).exp()).sum(), one(normal, 2, 3, 4, seed=25)),
    ]


@pytest.mark.parametrize("name", sorted(VIEW_CASES))
def test_views(name):
    ok_all(view_cases(name))


def cat_cases(dim) -> list:
    shapes = {
        0: [(1, 3, 2), (2, 3, 2), (1, 3, 2)],
        1: [(2, 1, 2), (2, 3, 2), (2, 2, 2)],
        -1: [(2, 3, 1), (2, 3, 2)],
    }

    def ins():
        return tuple(normal(*s, seed=30 + i) for i, s in enumerate(shapes[dim]))

    return [
        (lambda *ts: fg.cat(list(ts), dim), ins),
        (lambda *ts: fg.cat([t * t for t in ts], dim=dim), ins),
        (lambda a, b: fg.cat([a, b, a], dim), only_side(lambda: ins()[:2], 0)),  # b is a constant
    ]


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat(dim):
    ok_all(cat_cases(dim))


CAT_NONCONTIGUOUS = (
    lambda a, b: fg.cat([a.T, b[:, ::-1]], 1),
    lambda: (normal(3, 2, seed=33), normal(2, 4, seed=34)),
)


def test_cat_noncontiguous():
    ok_all([CAT_NONCONTIGUOUS])


def stack_cases(dim) -> list:
    def abc():
        return normal(2, 3, seed=35), normal(2, 3, seed=36), normal(2, 3, seed=37)

    return [
        (lambda a, b, c: fg.stack([a, b, c], dim), abc),
        (lambda a, b: fg.stack([a, b, a], dim=dim), lambda: abc()[:2]),
    ]


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack(dim):
    ok_all(stack_cases(dim))


def index_select_cases(dim) -> list:
    """The index tensors are inputs that do not require grad (int64: on the host everywhere)."""
    x = one(normal, 3, 4, seed=38)

    def with_index(idx):
        return lambda: (*x(), fg.tensor(idx))

    return [
        (lambda t, i: t.index_select(dim, i), with_index([2, 0, 2, 2, 1])),
        (lambda t, i: fg.index_select(t.T, dim, i), with_index([1, 1, 0])),
        (lambda t, i: t.index_select(dim, i), with_index([-1, 0, -1])),
    ]


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_select(dim):
    ok_all(index_select_cases(dim))


def _mask():
    """A bool input that does not require grad (on the GPU it goes to the GPU)."""
    return fg.tensor([[True, False, True], [False, False, True]])


def _cab():
    return _mask(), normal(2, 3, seed=39), normal(3, seed=40)


WHERE_CASES = {
    "tensors": (lambda c, a, b: fg.where(c, a, b), _cab),
    "broadcast_condition": (lambda c, a, b: fg.where(c[:, :1], a, b), _cab),
    "scalar_other": (lambda c, a: fg.where(c, a, 0.0), lambda: (_mask(), normal(2, 3, seed=39))),
    "scalar_input": (lambda c, b: fg.where(c, 1.5, b), lambda: (_mask(), normal(3, seed=40))),
    "from_comparison": (lambda a: fg.where(a > 0, a, a * 0.1), one(away, 2, 3, seed=41)),
}


def test_where():
    ok_all(WHERE_CASES.values())


NORM_PS = [2.0, 1.0, 3.0, float("inf")]
NORM_DIMS = [(None, False), (1, False), (0, True)]


def norm_cases(p, dim, keepdim) -> list:
    x = one(distinct, 3, 4, seed=48, offset=0.1) if p == float("inf") else one(away, 3, 4, seed=48)
    return [(lambda a: a.norm(p, dim, keepdim), x)]


@pytest.mark.parametrize("p", NORM_PS)
@pytest.mark.parametrize("dim,keepdim", NORM_DIMS)
def test_norm(p, dim, keepdim):
    ok_all(norm_cases(p, dim, keepdim))


NORM_AT_ZERO = (lambda x: x.norm(dim=1), lambda: (leaf([[0.0, 0.0], [3.0, 4.0]]),))


def test_norm_gradient_at_zero_is_zero():
    """The 2-norm's gradient where the norm is 0 is 0 (PyTorch's subgradient), not NaN."""
    fn, make = NORM_AT_ZERO
    (x,) = make()
    fn(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0.0, 0.0], [0.6, 0.8]])


PRODUCT_CASES = {
    "mm": (lambda a, b: a.mm(b), lambda: (normal(3, 4, seed=50), normal(4, 2, seed=51))),
    "mv": (lambda a, v: a.mv(v), lambda: (normal(3, 4, seed=50), normal(4, seed=52))),
    "dot": (lambda u, v: u.dot(v), lambda: (normal(4, seed=53), normal(4, seed=54))),
    "outer": (lambda u, v: u.outer(v), lambda: (normal(3, seed=55), normal(2, seed=56))),
    "bmm": (lambda x, y: x.bmm(y), lambda: (normal(2, 3, 4, seed=57), normal(2, 4, 2, seed=58))),
    "split": (lambda a: a.split(3, 1)[1] * 2.0 + a.split([1, 2], 0)[0].sum(), one(normal, 3, 4, seed=50)),
    "chunk_unbind": (lambda a: a.chunk(2, 1)[0] * a.unbind(1)[3].unsqueeze(1), one(normal, 3, 4, seed=50)),
    "square_t": (lambda a: a.square() + a.t().t(), one(normal, 3, 4, seed=50)),
    "reciprocal_rsqrt": (lambda a: a.reciprocal() + a.abs().rsqrt(), one(away, 3, 4, seed=59)),
}


def test_pytorch_style_products_and_pieces():
    ok_all(PRODUCT_CASES.values())


MASK_CASES = {
    "masked_fill": (lambda a, m: a.masked_fill(m, 0.5), lambda: (normal(2, 3, seed=42), _mask())),
    "masked_fill_broadcast": (  # broadcast mask
        lambda a, m: a.masked_fill(m[:, :1], -1.0),
        lambda: (normal(2, 3, seed=43), _mask()),
    ),
    "mask_index": (lambda a, m: a[m], lambda: (normal(2, 3, seed=44), _mask())),
    "mask_rows": (lambda a, m: a[m[:, 2]], lambda: (normal(2, 3, seed=45), _mask())),  # whole rows
    # strided input
    "mask_strided": (lambda a, m: a.T[m.T] * a.T[m.T], lambda: (normal(2, 3, seed=46), _mask())),
    "mask_of_comparison": (lambda a: a[a > 0] * 2.0, one(away, 3, 4, seed=47)),
}


def test_masked_fill_and_boolean_mask_indexing():
    ok_all(MASK_CASES.values())


# ----------------------------------------------------------------------------- composites

COMPOSITE_CASES = {
    # the one-hot targets: a float64 input that does not require grad
    "cross_entropy_like": (
        lambda z, oh: -(z.log_softmax(1) * oh).sum(1).mean(),
        lambda: (normal(4, 3, seed=42), fg.one_hot(fg.tensor([0, 2, 1, 2]), 3).double()),
    ),
    "mlp": (
        lambda x, w1, b1, w2, b2: fg.linear(fg.linear(x, w1, b1).tanh(), w2, b2).gelu(),
        lambda: (
            normal(4, 3, seed=43),
            normal(5, 3, seed=44),
            normal(5, seed=45),
            normal(2, 5, seed=46),
            normal(2, seed=47),
        ),
    ),
    "layer_norm_like": (
        lambda t: (t - t.mean(-1, keepdim=True)) / (t.var(-1, correction=0, keepdim=True) + 1e-5).sqrt(),
        one(normal, 3, 4, seed=48),
    ),
    "int_input_alongside": (
        lambda t, c, i: t * c + i,
        lambda: (normal(2, 3, seed=49), fg.tensor(np.arange(6.0).reshape(2, 3)), fg.tensor([1, 2, 3])),
    ),
}


def test_cross_entropy_like():
    ok_all([COMPOSITE_CASES["cross_entropy_like"]])


def test_mlp():
    ok_all([COMPOSITE_CASES["mlp"]])


def test_layer_norm_like():
    ok_all([COMPOSITE_CASES["layer_norm_like"]])


def test_int_input_alongside():
    """Inputs that do not require grad (ints, float64 constants) are skipped by gradcheck."""
    ok_all([COMPOSITE_CASES["int_input_alongside"]])


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


def _fused_inputs():
    rng = np.random.default_rng(3)
    x = fg.tensor(rng.standard_normal((4, 5)), dtype=fg.float64, requires_grad=True)
    w = fg.tensor(rng.standard_normal((3, 5)), dtype=fg.float64, requires_grad=True)
    b = fg.tensor(rng.standard_normal(3), dtype=fg.float64, requires_grad=True)
    return x, w, b


def fused_case(act) -> tuple:
    alpha = FUSED[act][0]
    return (lambda x, w, b: fg.linear(x, w, b, activation=act, alpha=alpha), _fused_inputs)


@pytest.mark.parametrize("act", sorted(FUSED))
def test_linear_with_fused_activation_gradcheck(act):
    """linear(..., activation=) in float64 against central differences; its backward reads
    only the output. Inputs keep clear of the kink at 0."""
    ref = FUSED[act][1]
    fn, make = fused_case(act)
    x, w, b = make()
    pre = (x.detach() @ w.detach().T + b.detach()).numpy()
    assert np.abs(pre).min() > 1e-3
    assert fg.autograd.gradcheck(fn, (x, w, b))
    want = ref(fg.tensor(pre)).numpy()
    np.testing.assert_allclose(fn(x, w, b).numpy(), want, rtol=1e-12)


def test_linear_refuses_activations_it_cannot_fuse():
    """gelu's derivative needs its input, and elu with alpha <= 0 or leaky relu with a
    negative slope break `x > 0 iff y > 0`: linear refuses them rather than keep the input."""
    x, w = fg.ones(2, 3), fg.ones(4, 3)
    with pytest.raises(ValueError, match="activation must be None, 'relu'"):
        fg.linear(x, w, activation="gelu")
    for act, alpha in [("elu", -1.0), ("leaky_relu", -0.1)]:
        with pytest.raises(ValueError, match="cannot be fused"):
            fg.linear(x, w, activation=act, alpha=alpha)


# ----------------------------------------------------------------------------- CPU = GPU


def _key(v) -> str:
    return str(v).replace(" ", "")


def _parity_cases() -> dict:
    """Every gradchecked case above, by name: (fn, make)."""
    cases = {}

    def add(prefix: str, pairs: list) -> None:
        for i, pair in enumerate(pairs):
            key = f"{prefix}-{i}" if len(pairs) > 1 else prefix
            assert key not in cases, key
            cases[key] = pair

    for name, (fn, make) in BINARY_CASES.items():
        add(f"binary-{name}", [(fn, make)])
        add(f"binary-{name}-one_side", [(fn, only_side(make, 0)), (fn, only_side(make, 1))])
        add(f"binary-{name}-reversed", [(on_reversed(fn), make)])
    for name, case in TIE_CASES.items():
        add(f"ties-{name}", [case])
    for name, (fn, make) in SCALAR_CASES.items():
        add(f"scalar-{name}", [(fn, one(make, 2, 3, seed=3))])
    for name, (fn, make) in UNARY_CASES.items():
        add(f"unary-{name}", [(fn, one(make, 3, 4, seed=4))])
        add(f"unary-{name}-strided", [(on_strided(fn), one(make, 4, 3, seed=5))])
    for dim in DIMS:
        for keepdim in (False, True):
            tag = f"dim={_key(dim)}-keepdim={keepdim}"
            add(f"sum_mean-{tag}", sum_mean_cases(dim, keepdim))
            add(f"max_min-{tag}", max_min_cases(dim, keepdim))
            add(f"logsumexp-{tag}", logsumexp_cases(dim, keepdim))
            for correction in (0, 1):
                add(f"var-{tag}-correction={correction}", var_cases(dim, keepdim, correction))
    for dim in (0, 1, 2, -1):
        add(f"softmax-dim={dim}", softmax_cases(dim))
    for name, case in REDUCTIONS_0D_1D.items():
        add(f"reduce-{name}", [case])
    for sa, sb in MATMUL_SHAPES:
        add(f"matmul-{_key(sa)}@{_key(sb)}", matmul_cases(sa, sb))
    for name, case in MATMUL_NONCONTIGUOUS.items():
        add(f"matmul-{name}", [case])
    for xshape in [(3,), (4, 3), (2, 2, 3)]:
        for bias in (False, True):
            add(f"linear-{_key(xshape)}-bias={bias}", linear_cases(xshape, bias))
    add("linear-noncontiguous", [LINEAR_NONCONTIGUOUS])
    for act in sorted(FUSED):
        add(f"linear-fused_{act}", [fused_case(act)])
    for name in VIEW_CASES:
        add(f"view-{name}", view_cases(name))
    for dim in (0, 1, -1):
        add(f"cat-dim={dim}", cat_cases(dim))
        add(f"index_select-dim={dim}", index_select_cases(dim))
    add("cat-noncontiguous", [CAT_NONCONTIGUOUS])
    for dim in (0, 1, 2, -1):
        add(f"stack-dim={dim}", stack_cases(dim))
    for name, case in WHERE_CASES.items():
        add(f"where-{name}", [case])
    for p in NORM_PS:
        for dim, keepdim in NORM_DIMS:
            add(f"norm-p={p}-dim={dim}-keepdim={keepdim}", norm_cases(p, dim, keepdim))
    add("norm-at_zero", [NORM_AT_ZERO])
    for name, case in PRODUCT_CASES.items():
        add(f"product-{name}", [case])
    for name, case in MASK_CASES.items():
        add(f"mask-{name}", [case])
    for name, case in COMPOSITE_CASES.items():
        add(f"composite-{name}", [case])
    return cases


PARITY = _parity_cases()
# name -> the discrepancy, for a case where the GPU disagrees with the CPU: reported, and marked
# xfail(strict) until fixed, so that a fix shows up (none on lavapipe at present)
GPU_DIFFERS: dict = {}


def _parity_params():
    return [
        pytest.param(name, marks=[pytest.mark.xfail(strict=True, reason=GPU_DIFFERS[name])])
        if name in GPU_DIFFERS
        else name
        for name in PARITY
    ]


def _on(x, device: str):
    """`x` for `device`: a float64 tensor as a float32 copy there (a leaf requiring grad if
    `x` does); bool tensors go to the device, int64 ones stay on the host."""
    if not isinstance(x, fg.Tensor):
        return x
    if x.dtype == fg.float64:
        return fg.tensor(x.detach().numpy().astype(np.float32), device=device, requires_grad=x.requires_grad)
    return x.to(device)


def _forward_backward(fn, inputs, device: str):
    """fn's output and the gradients of sum(fn(...) * w) for a fixed random w, on `device`."""
    xs = [_on(x, device) for x in inputs]
    y = fn(*xs)
    assert y.dtype == fg.float32 and y.device == device, (y.dtype, y.device)
    w = np.random.default_rng(7).standard_normal(tuple(y.shape)).astype(np.float32)
    (y * fg.tensor(w, device=device)).sum().backward()
    grads = []
    for x in xs:
        if isinstance(x, fg.Tensor) and x.requires_grad:
            assert x.grad is not None and x.grad.device == device and x.grad.dtype == fg.float32
            grads.append(x.grad.numpy())
    return y.numpy(), grads


@pytest.mark.skipif(not fg.gpu_available(), reason="no GPU adapter")  # FERROGRAD_REQUIRE_GPU: conftest
@pytest.mark.parametrize("name", _parity_params())
def test_gpu_matches_cpu(name):
    """Each case above in float32 on the CPU and on the GPU: the same output and the same
    gradient for every input that requires grad, the GPU's on the GPU."""
    fn, make = PARITY[name]
    inputs = make()
    tol = {"rtol": 1e-4, "atol": 1e-5}
    want_y, want_grads = _forward_backward(fn, inputs, "cpu")
    got_y, got_grads = _forward_backward(fn, inputs, "gpu")
    assert len(want_grads) == len(got_grads) > 0
    np.testing.assert_allclose(got_y, want_y, equal_nan=True, err_msg=f"{name}: forward", **tol)
    for j, (g, c) in enumerate(zip(got_grads, want_grads)):
        np.testing.assert_allclose(g, c, equal_nan=True, err_msg=f"{name}: gradient of input {j}", **tol)
