"""Forward results of ferrograd ops checked against NumPy.

Random shapes and values come from hypothesis; every op is also run on non-contiguous
inputs (permuted views, sliced views with positive and negative steps, expanded views).
References are computed in float64 from the same input values.

The op suites run on each device (the `device` fixture): on the CPU in every dtype, on the
GPU in float32 and bool, the dtypes it holds, with the views taken of a base on the GPU
(int64 operands stay on the host there). Every result is checked to be where it belongs: on
the GPU when a GPU operand went in, on the host when it is int64 or every operand was.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from unary_reference import DOMAIN, VARIANTS, op, ref, variant_id

import ferrograd as fg

SET = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,  # `device` only names the device: nothing to reset
    ],
)
FEW = settings(SET, max_examples=25)

FLOATS = [fg.float32, fg.float64]
# what the GPU holds: float64 refuses to go there, int64 stays on the host
GPU_DTYPES = {fg.float32, fg.bool_}
NO_GPU = pytest.mark.skipif(not fg.gpu_available(), reason="no GPU adapter")  # REQUIRE_GPU: conftest
# (device, dtype) for the tests parametrized by pytest: every float on the CPU, float32 on the GPU
DEVICE_FLOATS = [pytest.param("cpu", d, id=f"cpu-{str(d).split('.')[-1]}") for d in FLOATS] + [
    pytest.param("gpu", fg.float32, id="gpu-float32", marks=NO_GPU)
]
NP = {fg.float32: np.float32, fg.float64: np.float64, fg.int64: np.int64, fg.bool_: np.bool_}
LAYOUTS = ["contig", "permute", "step", "negstep", "expand", "mixed"]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_erf = np.vectorize(math.erf, otypes=[np.float64])


# ----------------------------------------------------------------------------- helpers


def tol(dtype, kind: str = "elem", device: str = "cpu") -> dict:
    """Tolerances for comparing a `dtype` result with a float64 reference."""
    if dtype == fg.float64:
        return {"rtol": 1e-10, "atol": 1e-10 if kind != "elem" else 1e-12}
    if kind == "elem":
        # the GPU's float32 builtins (exp, log, pow, tanh, division) are a few ulps looser than
        # the CPU's correctly rounded libm; reductions already allow for the summation order
        return {"rtol": 1e-4, "atol": 1e-5} if device == "gpu" else {"rtol": 2e-6, "atol": 1e-6}
    return {"rtol": 1e-4, "atol": 2e-4}


def home(device: str, *dtypes) -> str:
    """Where a result of operands of `dtypes` made on `device` lives: int64 operands stay on
    the host, so the GPU computes only when one of them is float32 or bool."""
    return "gpu" if device == "gpu" and any(d != fg.int64 for d in dtypes) else "cpu"


def dtypes_on(device: str, dtypes) -> list:
    """The `dtypes` a test draws on `device`: the GPU's own (int64 would run on the host)."""
    return list(dtypes) if device == "cpu" else [d for d in dtypes if d in GPU_DTYPES]


def check(got, expected, dtype=None, exact: bool = False, device=None, **kw):
    """`got` (a Tensor) has `expected`'s shape and values (and `dtype` when given); with
    `device`, it lives there (int64 results always on the host)."""
    assert isinstance(got, fg.Tensor), type(got)
    expected = np.asarray(expected)
    g = got.numpy()
    assert g.shape == expected.shape, f"shape {g.shape} != expected {expected.shape}"
    if dtype is not None:
        assert got.dtype == dtype, f"dtype {got.dtype!r} != expected {dtype!r}"
    if device is not None:
        want = "cpu" if got.dtype == fg.int64 else device
        assert got.device == want, f"device {got.device!r} != expected {want!r} ({got.dtype!r})"
    if exact or expected.dtype.kind in "bi":
        np.testing.assert_array_equal(g, expected)
    else:
        np.testing.assert_allclose(g.astype(np.float64), expected.astype(np.float64), equal_nan=True, **kw)


def f64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def elements(dtype, lo=-10.0, hi=10.0):
    if dtype == fg.int64:
        return st.integers(int(lo), int(hi))
    if dtype == fg.bool_:
        return st.booleans()
    width = 32 if dtype == fg.float32 else 64
    if width == 32:  # bounds must be float32 values inside [lo, hi]
        lo32, hi32 = np.float32(lo), np.float32(hi)
        lo = float(lo32 if lo32 >= lo else np.nextafter(lo32, np.float32(np.inf)))
        hi = float(hi32 if hi32 <= hi else np.nextafter(hi32, np.float32(-np.inf)))
    return st.floats(lo, hi, width=width, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def shapes(min_dims=0, max_dims=4, min_side=1, max_side=5):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def _stepped(a: np.ndarray, steps, negative: bool, device: str = "cpu"):
    """A tensor that is a strided slice of a larger buffer on `device`, with the values of `a`."""
    sentinel = 777 if a.dtype.kind != "b" else True
    big_shape = tuple(s * st_ + 1 for s, st_ in zip(a.shape, steps))
    big = np.full(big_shape, sentinel, dtype=a.dtype)
    inner = tuple(slice(1, 1 + s * st_, st_) for s, st_ in zip(a.shape, steps))
    big[inner] = a
    if not negative:
        return fg.tensor(big, device=device)[inner]
    rev = np.ascontiguousarray(big[(slice(None, None, -1),) * a.ndim])
    key = []
    for s, st_ in zip(a.shape, steps):
        if s == 0:
            key.append(slice(0, 0, -1))
        else:
            key.append(slice(s * st_ - 1, None, -st_))
    return fg.tensor(rev, device=device)[tuple(key)]


@st.composite
def laid_out(draw, a: np.ndarray, layouts=LAYOUTS, device: str = "cpu"):
    """(reference array, tensor with the same values) with a randomly drawn memory layout: a
    view taken on `device` of a base made there (int64 bases stay on the host)."""
    a = np.asarray(a)  # 0-d results of NumPy arithmetic are scalars, not arrays
    layout = draw(st.sampled_from(layouts))
    nd = a.ndim
    if layout == "contig" or nd == 0:
        return a, fg.tensor(a, device=device)
    if layout == "permute":
        perm = draw(st.permutations(range(nd)))
        inv = [int(i) for i in np.argsort(perm)]
        base = np.ascontiguousarray(a.transpose(perm))
        return a, fg.tensor(base, device=device).permute(*inv)
    if layout in ("step", "negstep"):
        steps = draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd))
        return a, _stepped(a, steps, layout == "negstep", device)
    if layout == "mixed":
        perm = draw(st.permutations(range(nd)))
        inv = [int(i) for i in np.argsort(perm)]
        base = np.ascontiguousarray(a.transpose(perm))
        steps = draw(st.lists(st.integers(1, 3), min_size=nd, max_size=nd))
        return a, _stepped(base, steps, draw(st.booleans()), device).permute(*inv)
    # expand: some dims (and maybe the leading one) come from size-1 / missing dims
    collapse = draw(st.lists(st.booleans(), min_size=nd, max_size=nd))
    small = a[tuple(slice(0, 1) if c else slice(None) for c in collapse)]
    if small.shape[0] == 1 and draw(st.booleans()):
        small = small[0]  # a missing leading dim, re-added by expand
    ref = np.ascontiguousarray(np.broadcast_to(small, a.shape))
    return ref, fg.tensor(np.ascontiguousarray(small), device=device).expand(*a.shape)


@st.composite
def tensors(draw, shape, dtype, lo=-10.0, hi=10.0, layouts=LAYOUTS, device="cpu"):
    a = draw(hnp.arrays(NP[dtype], shape, elements=elements(dtype, lo, hi)))
    return draw(laid_out(a, layouts, device))


@st.composite
def small_ints(draw, shape, dtype, lo=-2, hi=2, device="cpu"):
    """Integer values (in any dtype) from a small range, so that ties and equality are common."""
    a = draw(hnp.arrays(np.int64, shape, elements=st.integers(lo, hi))).astype(NP[dtype])
    return draw(laid_out(a, device=device))


@st.composite
def dims_arg(draw, ndim, allow_none=True):
    """None, an int, or a tuple of distinct dims (possibly negative)."""
    opts = ["int", "tuple"] + (["none"] if allow_none else [])
    kind = draw(st.sampled_from(opts)) if ndim > 0 else "none"
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    ds = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(d - ndim if draw(st.booleans()) else d for d in ds)


def np_axis(dim):
    return dim if dim is None or isinstance(dim, int) else tuple(dim)


# ----------------------------------------------------------------------------- layouts


@SET
@given(st.data(), shapes(min_side=0))
def test_layout_builder_roundtrip(device, data, shape):
    """Each layout used below really holds the reference values (numpy() and contiguous()),
    on the device it was made on."""
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS + [fg.int64, fg.bool_])), label="dtype")
    ref, t = data.draw(tensors(shape, dtype, device=device))
    on = home(device, dtype)
    check(t, ref, dtype=dtype, exact=True, device=on)
    c = t.contiguous()
    assert c.is_contiguous()
    check(c, ref, dtype=dtype, exact=True, device=on)
    check(t.clone(), ref, dtype=dtype, exact=True, device=on)
    assert t.tolist() == ref.tolist()


# ----------------------------------------------------------------------------- binary ops

BINOPS = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "maximum": (lambda a, b: fg.maximum(a, b), np.maximum),
    "minimum": (lambda a, b: a.minimum(b), np.minimum),
    "add_method": (lambda a, b: a.add(b), lambda a, b: a + b),
    "sub_method": (lambda a, b: a.sub(b), lambda a, b: a - b),
    "mul_method": (lambda a, b: a.mul(b), lambda a, b: a * b),
    "div_method": (lambda a, b: a.div(b), lambda a, b: a / b),
}


@SET
@given(
    st.data(),
    st.sampled_from(sorted(BINOPS)),
    hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=0, max_side=4),
)
def test_binary_broadcast_float(device, data, name, bshapes):
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS)), label="dtype")
    fop, nop = BINOPS[name]
    sa, sb = bshapes.input_shapes
    a, ta = data.draw(tensors(sa, dtype, device=device))
    if name.startswith("div"):  # keep the divisor away from 0 (division by zero is tested apart)
        b = data.draw(hnp.arrays(NP[dtype], sb, elements=elements(dtype, 0.25, 10.0)))
        b = np.array(b * np.where(data.draw(hnp.arrays(np.bool_, sb)), -1, 1), dtype=NP[dtype])
        b, tb = data.draw(laid_out(b, device=device))
    else:
        b, tb = data.draw(tensors(sb, dtype, device=device))
    out = fop(ta, tb)
    check(out, nop(f64(a), f64(b)), dtype=dtype, device=device, **tol(dtype, device=device))


@SET
@given(
    st.data(),
    hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=1, max_side=4),
)
def test_pow_tensor_exponent(device, data, bshapes):
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS)), label="dtype")
    sa, sb = bshapes.input_shapes
    a, ta = data.draw(tensors(sa, dtype, 0.1, 3.0, device=device))
    b, tb = data.draw(tensors(sb, dtype, -3.0, 3.0, device=device))
    kw = tol(dtype, device=device)
    check(ta**tb, f64(a) ** f64(b), dtype=dtype, device=device, **kw)
    check(ta.pow(tb), f64(a) ** f64(b), dtype=dtype, device=device, **kw)


@pytest.mark.parametrize("device,dtype", DEVICE_FLOATS)
def test_pow_negative_base(device, dtype):
    a = np.array([-2.0, -1.5, -3.0, 0.0, 0.0, 2.0], dtype=NP[dtype])
    b = np.array([3.0, 2.0, 0.5, 0.0, -1.0, -2.0], dtype=NP[dtype])
    with np.errstate(all="ignore"):
        expected = f64(a) ** f64(b)  # [-8, 2.25, nan, 1, inf, 0.25]
    got = fg.tensor(a, device=device) ** fg.tensor(b, device=device)
    check(got, expected, dtype=dtype, device=device, **tol(dtype, device=device))


@SET
@given(
    st.data(),
    shapes(min_side=0, max_side=4),
    st.floats(-4, 4).filter(lambda v: abs(v) > 0.1),
)
def test_scalar_operands(device, data, shape, s):
    """Python numbers on either side keep the tensor's float dtype (and its device)."""
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS)), label="dtype")
    a, t = data.draw(tensors(shape, dtype, 0.5, 4.0, device=device))
    x = f64(a)
    s32 = float(NP[dtype](s))  # the scalar as the tensor's dtype stores it
    cases = [
        (t + s, x + s32),
        (s + t, s32 + x),
        (t - s, x - s32),
        (s - t, s32 - x),
        (t * s, x * s32),
        (s * t, s32 * x),
        (t / s, x / s32),
        (s / t, s32 / x),
        (t**2, x**2),
        (t**s, x**s32),
        (2.0**t, 2.0**x),
        (-t, -x),
        (+t, x),
        (t * 3, x * 3),
        (fg.maximum(t, s), np.maximum(x, s32)),
        (fg.minimum(s, t), np.minimum(s32, x)),
    ]
    for got, exp in cases:
        check(got, exp, dtype=dtype, device=device, **tol(dtype, device=device))


CMPS = {
    "eq": (lambda a, b: a == b, np.equal),
    "ne": (lambda a, b: a != b, np.not_equal),
    "lt": (lambda a, b: a < b, np.less),
    "le": (lambda a, b: a <= b, np.less_equal),
    "gt": (lambda a, b: a > b, np.greater),
    "ge": (lambda a, b: a >= b, np.greater_equal),
}


@SET
@given(
    st.data(),
    st.sampled_from(sorted(CMPS)),
    hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=0, max_side=4),
)
def test_comparisons(device, data, name, bshapes):
    """bool results, on the GPU for GPU operands."""
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS + [fg.int64])), label="dtype")
    fop, nop = CMPS[name]
    sa, sb = bshapes.input_shapes
    # values from a small set so that equality happens often
    a, ta = data.draw(small_ints(sa, dtype, device=device))
    b, tb = data.draw(small_ints(sb, dtype, device=device))
    on = home(device, dtype)
    check(fop(ta, tb), nop(a, b), dtype=fg.bool_, device=on)
    check(fop(tb, 1), nop(b, 1), dtype=fg.bool_, device=on)
    check(fop(tb, 0.5), nop(b, 0.5), dtype=fg.bool_, device=on)


@pytest.mark.parametrize("device,dtype", DEVICE_FLOATS)
def test_comparisons_nan(device, dtype):
    a = np.array([np.nan, 1.0, np.nan, np.inf, -np.inf], dtype=NP[dtype])
    b = np.array([np.nan, np.nan, 1.0, np.inf, 0.0], dtype=NP[dtype])
    for fop, nop in CMPS.values():
        got = fop(fg.tensor(a, device=device), fg.tensor(b, device=device))
        check(got, nop(a, b), dtype=fg.bool_, device=device)


@SET
@given(
    st.data(),
    shapes(min_side=1),
    st.sampled_from([2.0, 1.0, math.inf, -math.inf, 0.0, 3.0, 0.5, "fro"]),
    st.booleans(),
)
def test_norm(device, data, shape, p, keepdim):
    """p-norms over any dims against NumPy's vector norms of the reduced elements."""
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS)), label="dtype")
    a, t = data.draw(tensors(shape, dtype, device=device))
    dim = data.draw(dims_arg(len(shape)))
    ax = np_axis(dim)
    order = 2.0 if p == "fro" else p
    x = np.abs(f64(a))
    if order == math.inf:
        want = np.max(x, axis=ax, keepdims=keepdim)
    elif order == -math.inf:
        want = np.min(x, axis=ax, keepdims=keepdim)
    elif order == 0:
        want = np.sum(x != 0, axis=ax, keepdims=keepdim).astype(np.float64)
    else:
        want = np.sum(x**order, axis=ax, keepdims=keepdim) ** (1 / order)
    check(t.norm(p, dim, keepdim), want, dtype=dtype, device=device, **tol(dtype, "red"))


def test_norm_errors():
    with pytest.raises(fg.DTypeError, match="norm: expected a floating-point tensor, got int64"):
        fg.tensor([1, 2]).norm()
    with pytest.raises(ValueError, match="norm: p must be a number or \"fro\", got 'nuc'"):
        fg.tensor([1.0]).norm("nuc")


LOGIC = {
    "logical_and": (lambda a, b: a.logical_and(b), np.logical_and),
    "logical_or": (lambda a, b: a.logical_or(b), np.logical_or),
    "logical_xor": (lambda a, b: a.logical_xor(b), np.logical_xor),
}


@SET
@given(
    st.data(),
    st.sampled_from(sorted(LOGIC)),
    hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=0, max_side=4),
)
def test_logical_ops(device, data, name, bshapes):
    """Truth values of any dtypes (nonzero is true), broadcast, on any layout; the module
    functions too. On the GPU an int64 operand (on the host) may meet a GPU one."""
    truth = FLOATS + [fg.int64, fg.bool_] if device == "cpu" else [fg.float32, fg.int64, fg.bool_]
    da, db = data.draw(st.sampled_from(truth), label="da"), data.draw(st.sampled_from(truth), label="db")
    fop, nop = LOGIC[name]
    sa, sb = bshapes.input_shapes
    a, ta = data.draw(small_ints(sa, da, lo=-1, hi=1, device=device))
    b, tb = data.draw(small_ints(sb, db, lo=-1, hi=1, device=device))
    check(fop(ta, tb), nop(a, b), dtype=fg.bool_, device=home(device, da, db))
    check(getattr(fg, name)(ta, tb), nop(a, b), dtype=fg.bool_, device=home(device, da, db))
    check(ta.logical_not(), np.logical_not(a), dtype=fg.bool_, device=home(device, da))
    check(fg.logical_not(tb), np.logical_not(b), dtype=fg.bool_, device=home(device, db))


@pytest.mark.parametrize("device,dtype", DEVICE_FLOATS)
def test_truth_values_of_nan_and_signed_zero(device, dtype):
    """NaN is true and -0.0 false, as in NumPy."""
    a = np.array([np.nan, -0.0, 0.0, np.inf, -1.5], dtype=NP[dtype])
    t = fg.tensor(a, device=device)
    check(t.logical_not(), np.logical_not(a), dtype=fg.bool_, device=device)
    check(t.bool(), a.astype(bool), dtype=fg.bool_, device=device)
    check(t.logical_and(1.0), np.logical_and(a, 1.0), dtype=fg.bool_, device=device)
    check(t.any(), np.any(a), dtype=fg.bool_, device=device)
    check(t[:3].all(), np.all(a[:3]), dtype=fg.bool_, device=device)


@SET
@given(
    st.data(),
    st.sampled_from(["and", "or", "xor"]),
    hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=0, max_side=4),
)
def test_bitwise_operators(device, data, name, bshapes):
    """`&`, `|`, `^` and `~`: logical on bool tensors (on the GPU too), bitwise (two's
    complement) on int64 (on the host)."""
    dtype = data.draw(st.sampled_from(dtypes_on(device, [fg.bool_, fg.int64])), label="dtype")
    ops = {
        "and": (lambda a, b: a & b, np.bitwise_and),
        "or": (lambda a, b: a | b, np.bitwise_or),
        "xor": (lambda a, b: a ^ b, np.bitwise_xor),
    }
    fop, nop = ops[name]
    sa, sb = bshapes.input_shapes
    a, ta = data.draw(small_ints(sa, dtype, lo=-9, hi=9, device=device))
    b, tb = data.draw(small_ints(sb, dtype, lo=-9, hi=9, device=device))
    check(fop(ta, tb), nop(a, b), dtype=dtype, device=device)
    check(~ta, np.invert(a), dtype=dtype, device=device)
    if dtype == fg.bool_:
        check(fop(ta, True), nop(a, True), dtype=fg.bool_, device=device)
        check(fop(False, tb), nop(False, b), dtype=fg.bool_, device=device)
    else:
        check(fop(ta, 6), nop(a, 6), dtype=fg.int64, device=device)


def test_bitwise_operators_refuse_floats():
    x = fg.tensor([1.0, 0.0])
    with pytest.raises(fg.DTypeError, match=r"bitwise_and: expected bool or int64.*float32.*logical_and"):
        _ = x & (x > 0)
    with pytest.raises(fg.DTypeError, match=r"bitwise_not: expected a bool or int64 tensor, got float32"):
        _ = ~x


@SET
@given(
    st.data(),
    shapes(min_side=0),
    st.booleans(),
)
def test_any_all(device, data, shape, keepdim):
    """any/all over any dims of any dtype, empty reductions included (false / true)."""
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS + [fg.int64, fg.bool_])), label="dtype")
    a, t = data.draw(small_ints(shape, dtype, lo=-1, hi=1, device=device))
    dim = data.draw(dims_arg(len(shape)))
    ax = np_axis(dim)
    on = home(device, dtype)
    check(t.any(dim, keepdim), np.any(a, axis=ax, keepdims=keepdim), dtype=fg.bool_, device=on)
    check(t.all(dim, keepdim), np.all(a, axis=ax, keepdims=keepdim), dtype=fg.bool_, device=on)
    check(fg.any(t, dim, keepdim=keepdim), np.any(a, axis=ax, keepdims=keepdim), dtype=fg.bool_, device=on)
    check(fg.all(t, dim, keepdim=keepdim), np.all(a, axis=ax, keepdims=keepdim), dtype=fg.bool_, device=on)


@SET
@given(st.data(), shapes(min_side=0, max_dims=3))
def test_masked_fill(device, data, shape):
    """masked_fill with a mask of the same shape or one that broadcasts, on any layout."""
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS + [fg.int64, fg.bool_])), label="dtype")
    a, t = data.draw(tensors(shape, dtype, device=device))
    mshape = tuple(1 if data.draw(st.booleans()) else s for s in shape)[
        data.draw(st.integers(0, len(shape))) :
    ]
    m = data.draw(hnp.arrays(np.bool_, mshape))
    m, tm = data.draw(laid_out(m, device=device))
    value = {fg.bool_: True, fg.int64: 7}.get(dtype, -2.5)
    want = np.where(m, np.asarray(value, NP[dtype]), a)
    check(t.masked_fill(tm, value), want, dtype=dtype, device=device)


def test_masked_fill_errors():
    x = fg.zeros(2, 3)
    with pytest.raises(fg.DTypeError, match="masked_fill: the mask must be bool, got float32"):
        x.masked_fill(x, 1.0)
    with pytest.raises(
        fg.ShapeError,
        match=r"masked_fill: the mask of shape \(2, 3, 1\) does not broadcast to the tensor's shape \(2, 3\)",
    ):
        x.masked_fill(fg.zeros(2, 3, 1) > 0, 1.0)
    with pytest.raises(
        fg.ShapeError, match=r"masked_fill: the value must be a number or a 0-dim tensor, got shape \(2,\)"
    ):
        x.masked_fill(x > 0, fg.ones(2))


@SET
@given(st.data(), shapes(min_side=0, max_dims=3))
def test_boolean_mask_indexing(device, data, shape):
    """x[mask] with a mask over the leading dims (all of them included), as a tensor, a
    NumPy array or a list, against NumPy; on the GPU the mask tensor is on the GPU or the
    host."""
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS + [fg.int64, fg.bool_])), label="dtype")
    a, t = data.draw(tensors(shape, dtype, device=device))
    k = data.draw(st.integers(0, len(shape)))
    m = data.draw(hnp.arrays(np.bool_, shape[:k]))
    m, tm = data.draw(laid_out(m, device=data.draw(st.sampled_from(["cpu", device]), label="mask on")))
    check(t[tm], a[m], dtype=dtype, device=device)
    if k > 0:
        check(t[m], a[m], dtype=dtype, device=device)
    if k == 1:
        check(t[m.tolist()], a[m], dtype=dtype, device=device)


def test_boolean_mask_indexing_errors():
    x = fg.zeros(2, 3)
    with pytest.raises(
        IndexError,
        match=r"index: the boolean mask of shape \(3,\) does not match the leading dims of the tensor "
        r"of shape \(2, 3\)",
    ):
        x[fg.tensor([True, False, True])]
    with pytest.raises(IndexError, match="index: tensors used as indices must be int64 or bool, got float32"):
        x[fg.tensor([1.0, 0.0])]


INTOPS = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "maximum": (lambda a, b: fg.maximum(a, b), np.maximum),
    "minimum": (lambda a, b: fg.minimum(a, b), np.minimum),
}


@SET
@given(
    st.data(),
    st.sampled_from(sorted(INTOPS)),
    hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=0, max_side=4),
)
def test_binary_int64(data, name, bshapes):
    fop, nop = INTOPS[name]
    sa, sb = bshapes.input_shapes
    a, ta = data.draw(tensors(sa, fg.int64, -50, 50))
    b, tb = data.draw(tensors(sb, fg.int64, -50, 50))
    check(fop(ta, tb), nop(a, b), dtype=fg.int64)
    check(fop(ta, 3), nop(a, 3), dtype=fg.int64)


@SET
@given(
    st.data(), hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=4)
)
def test_int64_true_division_and_promotion(data, bshapes):
    sa, sb = bshapes.input_shapes
    a, ta = data.draw(tensors(sa, fg.int64, -20, 20))
    b = data.draw(hnp.arrays(np.int64, sb, elements=st.integers(1, 9)))
    tb = fg.tensor(b)
    check(ta / tb, a / b, dtype=fg.float32, **tol(fg.float32))  # int / int -> float32 (PyTorch)
    x, tx = data.draw(tensors(sb, fg.float64))
    check(ta + tx, a + x, dtype=fg.float64, **tol(fg.float64))  # int64 + float64 -> float64
    y32 = x.astype(np.float32)
    check(ta * fg.tensor(y32), a * f64(y32), dtype=fg.float32, **tol(fg.float32))
    check(ta + 0.5, a + 0.5, dtype=fg.float32, **tol(fg.float32))  # int tensor + python float -> float32
    check(fg.tensor(y32) + fg.tensor(x), f64(y32) + x, dtype=fg.float64, **tol(fg.float64))


@pytest.mark.parametrize("device,dtype", DEVICE_FLOATS)
def test_division_by_zero(device, dtype):
    a = np.array([1.0, -1.0, 0.0, np.inf, 2.0], dtype=NP[dtype])
    b = np.array([0.0, 0.0, 0.0, np.inf, -0.0], dtype=NP[dtype])
    with np.errstate(all="ignore"):
        expected = a / b
    check(fg.tensor(a, device=device) / fg.tensor(b, device=device), expected, dtype=dtype, device=device)
    check(fg.tensor([1, -1, 0]) / fg.tensor([0, 0, 0]), np.array([np.inf, -np.inf, np.nan]), dtype=fg.float32)


@pytest.mark.parametrize("device,dtype", DEVICE_FLOATS)
@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum_nan_propagates(device, dtype, op):
    a = np.array([np.nan, 1.0, np.nan, -np.inf, np.inf, 3.0], dtype=NP[dtype])
    b = np.array([1.0, np.nan, np.nan, 5.0, np.nan, -np.inf], dtype=NP[dtype])
    nop = getattr(np, op)
    f = getattr(fg, op)

    def t(x):
        return fg.tensor(x, device=device)

    check(f(t(a), t(b)), nop(a, b), dtype=dtype, device=device)
    check(f(t(b), t(a)), nop(b, a), dtype=dtype, device=device)
    check(getattr(t(a), op)(t(b)), nop(a, b), dtype=dtype, device=device)
    # broadcast and strided paths too
    a2 = np.stack([a, a[::-1]])
    check(f(t(a2).T, t(b).reshape(6, 1)), nop(a2.T, b.reshape(6, 1)), dtype=dtype, device=device)
    check(f(t(a), float("nan")), nop(a, np.nan), dtype=dtype, device=device)


@pytest.mark.parametrize("device,dtype", DEVICE_FLOATS)
def test_inf_arithmetic(device, dtype):
    a = np.array([np.inf, np.inf, -np.inf, np.inf, 1.0], dtype=NP[dtype])
    b = np.array([np.inf, -np.inf, -np.inf, 0.0, np.nan], dtype=NP[dtype])
    ta, tb = fg.tensor(a, device=device), fg.tensor(b, device=device)
    with np.errstate(all="ignore"):
        check(ta + tb, a + b, dtype=dtype, device=device)
        check(ta - tb, a - b, dtype=dtype, device=device)
        check(ta * tb, a * b, dtype=dtype, device=device)


# ----------------------------------------------------------------------------- where


@SET
@given(
    st.data(),
    hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=4, min_side=0, max_side=4),
    st.sampled_from([fg.bool_, fg.int64, fg.float32]),
)
def test_where(device, data, bshapes, cond_dtype):
    """On the GPU, float32 values under a GPU condition or an int64 one (on the host)."""
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS + [fg.int64])), label="dtype")
    sc, sa, sb = bshapes.input_shapes
    c, tc = data.draw(tensors(sc, cond_dtype, -1, 1, device=device))
    a, ta = data.draw(tensors(sa, dtype, device=device))
    b, tb = data.draw(tensors(sb, dtype, device=device))
    on = home(device, dtype)
    check(fg.where(tc, ta, tb), np.where(c != 0, a, b), dtype=dtype, exact=True, device=on)
    if dtype != fg.int64:
        want = np.where(c != 0, a, NP[dtype](0.5))
        check(fg.where(tc, ta, 0.5), want, dtype=dtype, exact=True, device=on)
        want = np.where(c != 0, NP[dtype](-1.0), b)
        check(fg.where(tc, -1.0, tb), want, dtype=dtype, exact=True, device=on)


@pytest.mark.parametrize("device,dtype", DEVICE_FLOATS)
def test_where_from_comparison(device, dtype):
    x = np.array([[-1.0, 2.0, np.nan], [3.0, -4.0, 0.0]], dtype=NP[dtype])
    t = fg.tensor(x, device=device)
    want = np.where(x > 0, x, x * NP[dtype](0.1))
    check(fg.where(t > 0, t, t * 0.1), want, dtype=dtype, device=device, **tol(dtype, device=device))


# ----------------------------------------------------------------------------- unary ops


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _selu(x):
    return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0)))


def _elu(x, alpha):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


UNARY = {
    "neg": (lambda t: -t, lambda x: -x, None),
    "neg_method": (lambda t: t.neg(), lambda x: -x, None),
    "neg_fn": (fg.neg, lambda x: -x, None),
    "exp": (lambda t: t.exp(), np.exp, None),
    "exp_fn": (fg.exp, np.exp, None),
    "log": (lambda t: t.log(), np.log, "pos"),
    "log_fn": (fg.log, np.log, "pos"),
    "sqrt": (lambda t: t.sqrt(), np.sqrt, "pos"),
    "sqrt_fn": (fg.sqrt, np.sqrt, "pos"),
    "abs": (lambda t: t.abs(), np.abs, None),
    "abs_builtin": (abs, np.abs, None),
    "abs_fn": (fg.abs, np.abs, None),
    "tanh": (lambda t: t.tanh(), np.tanh, None),
    "tanh_fn": (fg.tanh, np.tanh, None),
    "sigmoid": (lambda t: t.sigmoid(), lambda x: 1.0 / (1.0 + np.exp(-x)), None),
    "sigmoid_fn": (fg.sigmoid, lambda x: 1.0 / (1.0 + np.exp(-x)), None),
    "relu": (lambda t: t.relu(), lambda x: np.maximum(x, 0.0), None),
    "relu_fn": (fg.relu, lambda x: np.maximum(x, 0.0), None),
    "selu": (lambda t: t.selu(), _selu, None),
    "selu_fn": (fg.selu, _selu, None),
    "elu": (lambda t: t.elu(), lambda x: _elu(x, 1.0), None),
    "elu_alpha": (lambda t: fg.elu(t, alpha=0.7), lambda x: _elu(x, 0.7), None),
    "leaky_relu": (lambda t: t.leaky_relu(), lambda x: np.where(x > 0, x, 0.01 * x), None),
    "leaky_relu_slope": (lambda t: fg.leaky_relu(t, 0.2), lambda x: np.where(x > 0, x, 0.2 * x), None),
    "gelu": (lambda t: t.gelu(), _gelu, None),
    "gelu_fn": (fg.gelu, _gelu, None),
    "gelu_tanh": (lambda t: fg.gelu(t, approximate="tanh"), _gelu_tanh, None),
    "clamp": (lambda t: t.clamp(-1.5, 2.0), lambda x: np.clip(x, -1.5, 2.0), None),
    "clamp_min": (lambda t: fg.clamp(t, min=0.5), lambda x: np.maximum(x, 0.5), None),
    "clamp_max": (lambda t: t.clamp(max=-0.5), lambda x: np.minimum(x, -0.5), None),
}
# every public row of the engine's op table (`_core.unary_ops()`), through `_core.unary`, with
# its reference and domain from unary_reference.py: a (lo, hi) range (None: (-10, 10))
for _name, _args in VARIANTS:
    UNARY[f"table_{variant_id((_name, _args))}"] = (
        op(_name, _args),
        (lambda n, a: lambda x: ref(n, x, a))(_name, _args),
        DOMAIN.get(_name),
    )
# the int64 results of the rows that are not promoted to float32
INT64_ROWS = {"neg", "abs", "floor", "ceil", "round", "trunc", "relu"}  # PyTorch keeps int64


def _range(domain, ints: bool = False) -> tuple:
    """`domain`'s input range: "pos", None or (lo, hi); for ints, the integers inside it."""
    if isinstance(domain, tuple):
        return (math.ceil(domain[0]), math.floor(domain[1])) if ints else domain
    if ints:
        return (1, 9) if domain == "pos" else (-5, 5)
    return (0.01, 10.0) if domain == "pos" else (-10.0, 10.0)


# one run per entry (a sampled entry would see each of the many rows too rarely)
@pytest.mark.parametrize("name", sorted(UNARY))
@settings(SET, max_examples=10)
@given(st.data(), shapes(min_side=0, max_side=5))
def test_unary_float(device, name, data, shape):
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS)), label="dtype")
    fop, nop, domain = UNARY[name]
    lo, hi = _range(domain)
    a, t = data.draw(tensors(shape, dtype, lo, hi, device=device))
    check(fop(t), nop(f64(a)), dtype=dtype, device=device, **tol(dtype, device=device))


_PROMOTED = ["exp", "tanh", "sigmoid", "gelu", "sqrt", "log", "clamp"]
_PROMOTED += [f"table_{variant_id(v)}" for v in VARIANTS if v[0] not in INT64_ROWS]


@pytest.mark.parametrize("name", _PROMOTED)
@settings(SET, max_examples=8)
@given(st.data(), shapes(max_side=4))
def test_unary_int64_promotes_to_float32(name, data, shape):
    fop, nop, domain = UNARY[name]
    lo, hi = _range(domain, ints=True)
    a, t = data.draw(tensors(shape, fg.int64, lo, hi))
    check(fop(t), nop(f64(a)), dtype=fg.float32, **tol(fg.float32))


@SET
@given(st.data(), shapes(min_side=0, max_side=4))
def test_neg_abs_int64_stay_int64(data, shape):
    a, t = data.draw(tensors(shape, fg.int64, -100, 100))
    check(-t, -a, dtype=fg.int64)
    check(t.abs(), np.abs(a), dtype=fg.int64)
    for name in sorted(INT64_ROWS):  # the table's rows that keep int64
        check(fg._core.unary(t, name), ref(name, a, ()).astype(np.int64), dtype=fg.int64)


@pytest.mark.parametrize("device,dtype", DEVICE_FLOATS)
def test_unary_special_values(device, dtype):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0], dtype=NP[dtype])
    t = fg.tensor(x, device=device)
    x64 = f64(x)
    with np.errstate(all="ignore"):
        for name in [
            "neg",
            "exp",
            "log",
            "sqrt",
            "abs",
            "tanh",
            "sigmoid",
            "relu",
            "selu",
            "elu",
            "leaky_relu",
            "clamp",
            "clamp_min",
            "clamp_max",
            *(f"table_{variant_id(v)}" for v in VARIANTS),
        ]:
            fop, nop, _ = UNARY[name]
            check(fop(t), nop(x64), dtype=dtype, device=device, err_msg=name, **tol(dtype, device=device))
        # gelu at +-inf is x * Phi(x): +inf and nan (-inf * 0) in the formula; only check finite + nan
        fin = np.array([np.nan, 0.0, 1.0, -1.0, 3.0], dtype=NP[dtype])
        got = fg.gelu(fg.tensor(fin, device=device))
        check(got, _gelu(f64(fin)), dtype=dtype, device=device, **tol(dtype, device=device))


def test_clamp_bounds_as_pytorch(device):
    """No bound is an error; min > max gives max everywhere and a NaN bound gives NaN
    (PyTorch's documented min(max(x, min), max)), on both devices."""
    x = fg.tensor([-3.0, 0.5, 4.0, float("nan")], device=device)
    with pytest.raises(ValueError, match="clamp"):
        x.clamp()
    np.testing.assert_array_equal(x.clamp(2.0, 1.0).numpy(), [1.0, 1.0, 1.0, np.nan])
    assert np.isnan(x.clamp(0.0, float("nan")).numpy()).all()
    assert np.isnan(x.clamp(float("nan"), 1.0).numpy()).all()
    np.testing.assert_array_equal(x.clamp(-1.0, 1.0).numpy(), [-1.0, 0.5, 1.0, np.nan])


# ----------------------------------------------------------------------------- reductions


@SET
@given(st.data(), shapes(min_dims=0, max_dims=4, min_side=1, max_side=5), st.booleans())
def test_sum_mean(device, data, shape, keepdim):
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS)), label="dtype")
    a, t = data.draw(tensors(shape, dtype, device=device))
    dim = data.draw(dims_arg(len(shape)))
    x = f64(a)
    ax = np_axis(dim)
    kw = {"dtype": dtype, "device": device, **tol(dtype, "red")}
    check(t.sum(dim, keepdim), np.sum(x, axis=ax, keepdims=keepdim), **kw)
    check(fg.sum(t, dim=dim, keepdim=keepdim), np.sum(x, axis=ax, keepdims=keepdim), **kw)
    check(t.mean(dim, keepdim), np.mean(x, axis=ax, keepdims=keepdim), **kw)
    check(fg.mean(t, dim, keepdim=keepdim), np.mean(x, axis=ax, keepdims=keepdim), **kw)


@SET
@given(
    st.data(),
    shapes(min_dims=1, max_dims=4, min_side=1, max_side=5),
    st.booleans(),
    st.sampled_from([0, 1]),
)
def test_var(device, data, shape, keepdim, correction):
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS)), label="dtype")
    a, t = data.draw(tensors(shape, dtype, device=device))
    dim = data.draw(dims_arg(len(shape)))
    x = f64(a)
    ax = np_axis(dim)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.var(x, axis=ax, ddof=correction, keepdims=keepdim)
    kw = {"dtype": dtype, "device": device, **tol(dtype, "red")}
    check(t.var(dim, correction=correction, keepdim=keepdim), expected, **kw)
    check(fg.var(t, dim, correction, keepdim), expected, **kw)
    if correction == 1:
        check(t.var(dim, keepdim=keepdim), expected, **kw)


@SET
@given(st.data(), shapes(min_dims=0, max_dims=4, min_side=1, max_side=5), st.booleans())
def test_max_min(device, data, shape, keepdim):
    """Values where the input is, indices (int64) on the host."""
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS + [fg.int64])), label="dtype")
    a, t = data.draw(tensors(shape, dtype, device=device))
    dim = data.draw(dims_arg(len(shape)))
    ax = np_axis(dim)
    kw = {"dtype": dtype, "exact": True, "device": device}
    if isinstance(dim, int):
        # one int dim: PyTorch's (values, indices); the indices are NumPy's argmax/argmin
        for r, vals, idx in [
            (t.max(dim, keepdim), np.max, np.argmax),
            (t.min(dim, keepdim), np.min, np.argmin),
            (fg.max(t, dim, keepdim), np.max, np.argmax),
        ]:
            values, indices = r
            assert r.values is values and r.indices is indices
            check(values, vals(a, axis=dim, keepdims=keepdim), **kw)
            check(indices, idx(a, axis=dim, keepdims=keepdim), dtype=fg.int64, device=device)
    else:
        check(t.max(dim, keepdim), np.max(a, axis=ax, keepdims=keepdim), **kw)
        check(t.min(dim, keepdim), np.min(a, axis=ax, keepdims=keepdim), **kw)
        check(fg.max(t, dim, keepdim), np.max(a, axis=ax, keepdims=keepdim), **kw)
    check(t.amax(dim, keepdim), np.max(a, axis=ax, keepdims=keepdim), **kw)
    check(t.amin(dim, keepdim), np.min(a, axis=ax, keepdims=keepdim), **kw)


@SET
@given(st.data(), shapes(min_dims=0, max_dims=4, min_side=1, max_side=5), st.booleans())
def test_int64_and_bool_sum(data, shape, keepdim):
    a, t = data.draw(tensors(shape, fg.int64, -100, 100))
    dim = data.draw(dims_arg(len(shape)))
    ax = np_axis(dim)
    check(t.sum(dim, keepdim), np.sum(a, axis=ax, keepdims=keepdim), dtype=fg.int64)
    check(
        t.mean(dim, keepdim),
        np.mean(f64(a), axis=ax, keepdims=keepdim),
        dtype=fg.float32,
        **tol(fg.float32, "red"),
    )
    check((t > 0).sum(dim, keepdim), np.sum(a > 0, axis=ax, keepdims=keepdim), dtype=fg.int64)


@SET
@given(st.data(), shapes(min_dims=0, max_dims=4, min_side=1, max_side=5), st.booleans())
def test_argmax_argmin(device, data, shape, keepdim):
    """int64 results, on the host for GPU input too."""
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS + [fg.int64])), label="dtype")
    # values from a tiny set so that ties are common: the first index wins, as in NumPy
    a, t = data.draw(small_ints(shape, dtype, device=device))
    nd = len(shape)
    dim = data.draw(st.none() | st.integers(-nd, nd - 1)) if nd else None
    kw = {"dtype": fg.int64, "device": device}
    check(t.argmax(dim, keepdim), np.argmax(a, axis=dim, keepdims=keepdim), **kw)
    check(t.argmin(dim, keepdim), np.argmin(a, axis=dim, keepdims=keepdim), **kw)
    check(fg.argmax(t, dim, keepdim=keepdim), np.argmax(a, axis=dim, keepdims=keepdim), **kw)
    check(fg.argmin(t, dim), np.argmin(a, axis=dim), **kw)


def _logsumexp(x, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        s = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        s = np.squeeze(s, axis=axis) if axis is not None else s.reshape(())
    return s


@SET
@given(st.data(), shapes(min_dims=0, max_dims=4, min_side=1, max_side=5), st.booleans())
def test_logsumexp(device, data, shape, keepdim):
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS)), label="dtype")
    a, t = data.draw(tensors(shape, dtype, -30, 30, device=device))
    dim = data.draw(dims_arg(len(shape)))
    ax = np_axis(dim)
    exp = _logsumexp(f64(a), ax, keepdim)
    kw = {"dtype": dtype, "device": device, **tol(dtype, "red")}
    check(t.logsumexp(dim, keepdim), exp, **kw)
    check(fg.logsumexp(t, dim, keepdim=keepdim), exp, **kw)


@SET
@given(st.data(), shapes(min_dims=1, max_dims=4, min_side=1, max_side=5))
def test_softmax_log_softmax(device, data, shape):
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS)), label="dtype")
    a, t = data.draw(tensors(shape, dtype, -30, 30, device=device))
    nd = len(shape)
    dim = data.draw(st.integers(-nd, nd - 1))
    x = f64(a)
    lsm = x - _logsumexp(x, dim, True)
    kw = {"dtype": dtype, "device": device, **tol(dtype, "red")}
    check(t.log_softmax(dim), lsm, **kw)
    check(fg.log_softmax(t, dim=dim), lsm, **kw)
    check(t.softmax(dim), np.exp(lsm), **kw)
    check(fg.softmax(t, dim), np.exp(lsm), **kw)
    if dim == nd - 1 or dim == -1:
        check(t.softmax(), np.exp(lsm), **kw)


@pytest.mark.parametrize("device,dtype", DEVICE_FLOATS)
def test_softmax_special_values(device, dtype):
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf], [np.nan, 0.0, 1.0]], dtype=NP[dtype])
    t = fg.tensor(x, device=device)
    # row 0: exact zeros for -inf; row 1: all -inf gives nan (0/0), as PyTorch; row 2: nan
    with np.errstate(all="ignore"):
        m = np.max(x, axis=1, keepdims=True)
        e = np.exp(x - m)
        sm = e / e.sum(axis=1, keepdims=True)
    kw = {"dtype": dtype, "device": device}
    check(t.softmax(-1), sm, **kw, **tol(dtype, "red"))
    lse = np.array([np.log(np.exp(0) + np.exp(1)), -np.inf, np.nan])
    check(t.logsumexp(1), lse, **kw, **tol(dtype, "red"))
    inf = fg.tensor(np.array([np.inf, 0.0, 1.0], NP[dtype]), device=device)
    check(inf.logsumexp(0), np.array(np.inf), **kw)


@pytest.mark.parametrize("device,dtype", DEVICE_FLOATS)
def test_softmax_row_with_pos_inf_is_all_nan(device, dtype):
    """A row holding +inf: exp(x - max) / sum is nan everywhere (NumPy formula, PyTorch)."""
    x = np.array([[np.inf, 0.0, 1.0], [1.0, 2.0, 3.0]], dtype=NP[dtype])
    with np.errstate(all="ignore"):
        z = x - np.max(x, axis=1, keepdims=True)
        lsm = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    t = fg.tensor(x, device=device)
    check(t.softmax(1), np.exp(lsm), dtype=dtype, device=device, **tol(dtype, "red"))
    check(t.log_softmax(1), lsm, dtype=dtype, device=device, **tol(dtype, "red"))


@pytest.mark.parametrize("device,dtype", DEVICE_FLOATS)
def test_reductions_nan_inf(device, dtype):
    x = np.array(
        [[1.0, np.nan, 3.0, 2.0], [np.inf, 1.0, 2.0, 0.0], [np.inf, -np.inf, 0.0, 1.0]], dtype=NP[dtype]
    )
    t = fg.tensor(x, device=device)
    kw = {"dtype": dtype, "device": device}
    with np.errstate(all="ignore"):
        for dim in [None, 0, 1, (0, 1)]:
            for tt, xx in [(t, x), (t.T, x.T)]:
                check(tt.sum(dim), np.sum(xx, axis=dim), **kw)
                check(tt.mean(dim), np.mean(xx, axis=dim), **kw, **tol(dtype, "red"))
                check(tt.amax(dim), np.max(xx, axis=dim), **kw)
                check(tt.amin(dim), np.min(xx, axis=dim), **kw)
        for dim in [None, 0, 1]:
            check(t.argmax(dim), np.argmax(x, axis=dim), dtype=fg.int64, device=device)
            check(t.argmin(dim), np.argmin(x, axis=dim), dtype=fg.int64, device=device)
            check(t.T.argmax(dim), np.argmax(x.T, axis=dim), dtype=fg.int64, device=device)
    # NaN late in a long row, in both reduction paths (contiguous row and strided column)
    y = np.arange(40, dtype=NP[dtype]).reshape(2, 20)
    y[1, 17] = np.nan
    ty = fg.tensor(y, device=device)
    check(ty.max(1).values, np.max(y, axis=1), **kw)
    check(ty.max(1).indices, np.argmax(y, axis=1), dtype=fg.int64, device=device)
    check(ty.T.min(0).values, np.min(y.T, axis=0), **kw)
    check(ty.sum(), np.sum(y), **kw)


# ----------------------------------------------------------------------------- empty tensors


@SET
@given(
    st.data(),
    shapes(min_dims=1, max_dims=4, min_side=0, max_side=3),
    st.booleans(),
)
def test_sum_with_zero_size_dims(device, data, shape, keepdim):
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS + [fg.int64])), label="dtype")
    a, t = data.draw(tensors(shape, dtype, device=device))
    dim = data.draw(dims_arg(len(shape)))
    kw = tol(dtype, "red") if dtype != fg.int64 else {}
    want = np.sum(a, axis=np_axis(dim), keepdims=keepdim)
    check(t.sum(dim, keepdim), want, dtype=dtype, device=device, **kw)


@pytest.mark.parametrize("device,dtype", DEVICE_FLOATS)
def test_empty_tensors(device, dtype):
    e = np.zeros((0, 3), dtype=NP[dtype])

    def T(a):
        return fg.tensor(a, device=device)

    t = T(e)
    kw = {"dtype": dtype, "device": device}
    check(t.sum(), np.float64(0.0).astype(NP[dtype]), **kw)
    check(t.sum(0), np.zeros(3), **kw)
    check(t.sum(0, keepdim=True), np.zeros((1, 3)), **kw)
    check(t.sum(1), np.zeros(0), **kw)
    check(t.max(1).values, np.zeros(0), **kw)  # reduces size-3 rows, of which there are none
    check(t.max(1).indices, np.zeros(0, np.int64), dtype=fg.int64, device=device)
    check(t.mean(0), np.full(3, np.nan), **kw)
    check(t.var(0, correction=0), np.full(3, np.nan), **kw)
    check(t.exp(), e, **kw)
    check(t + T(np.ones((1, 3), NP[dtype])), e, **kw)
    check(t * T(np.ones(3, NP[dtype])), e, **kw)
    check(T(np.ones((2, 0), NP[dtype])) * T(np.ones((2, 1), NP[dtype])), np.ones((2, 0)), **kw)
    check(t.softmax(-1), e, **kw)
    check(t.reshape(-1), e.reshape(-1), **kw)
    check(t.reshape(3, 0, 5), e.reshape(3, 0, 5), **kw)
    check(t.T, e.T, **kw)
    check(t[1:], e[1:], **kw)
    check(T(np.ones((4, 3), NP[dtype]))[3:1], np.ones((0, 3)), **kw)
    check(T(np.ones((4, 3), NP[dtype]))[:, ::-1][:, 5:], np.ones((4, 0)), **kw)
    check(T(np.zeros(0, NP[dtype])).sum(), np.zeros(()), **kw)
    check(T(np.zeros((2, 0), NP[dtype])).sum(1), np.zeros(2), **kw)
    check(fg.tensor(np.zeros((0,), np.int64)).sum(), np.int64(0), dtype=fg.int64)
    with pytest.raises(ValueError):
        t.max(0)  # NumPy raises too: a zero-size reduction has no identity
    with pytest.raises(ValueError):
        t.argmax(0)


@pytest.mark.parametrize("device,dtype", DEVICE_FLOATS)
@pytest.mark.parametrize(
    "shape,key",
    [
        ((2, 0), 1),
        ((2, 0), (slice(1, None),)),
        ((0, 2), (slice(None), 1)),
        ((3, 0, 2), (2, slice(None), -1)),
        ((2, 0), (slice(None, None, -1),)),
    ],
)
def test_zero_size_view_with_storage_offset(device, dtype, shape, key):
    """Indexing into a zero-size tensor gives a zero-size view (its offset must not be read)."""
    a = np.zeros(shape, NP[dtype])
    v = fg.tensor(a, device=device)[key]
    kw = {"dtype": dtype, "device": device}
    check(v, a[key], **kw)
    check(v.contiguous(), a[key], **kw)
    check(v.exp(), np.exp(a[key]), **kw)
    check(v + 1, a[key] + 1, **kw)
    check(v.sum(), np.zeros(()), **kw)
    repr(v)


@pytest.mark.parametrize("device,dtype", DEVICE_FLOATS)
def test_softmax_over_zero_size_dim(device, dtype):
    """softmax/log_softmax along an empty dim give an empty result (PyTorch, NumPy formula)."""
    e = np.zeros((3, 0), dtype=NP[dtype])
    check(fg.tensor(e, device=device).softmax(-1), e, dtype=dtype, device=device)
    check(fg.tensor(e, device=device).log_softmax(1), e, dtype=dtype, device=device)


@pytest.mark.parametrize("device,dtype", DEVICE_FLOATS)
def test_logsumexp_over_zero_size_dim(device, dtype):
    """logsumexp over an empty dim is log(0) = -inf (PyTorch and log(sum(exp([]))))."""
    e = np.zeros((0, 3), dtype=NP[dtype])
    check(fg.tensor(e, device=device).logsumexp(0), np.full(3, -np.inf), dtype=dtype, device=device)
    check(fg.tensor(e, device=device).logsumexp(), np.array(-np.inf), dtype=dtype, device=device)


# ----------------------------------------------------------------------------- matmul / linear


@SET
@given(
    st.data(),
    hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, min_side=1, max_side=3),
    st.integers(1, 4),
    st.integers(1, 5),
    st.integers(1, 4),
    st.booleans(),
    st.booleans(),
)
def test_matmul(device, data, batch, m, k, n, a1d, b1d):
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS)), label="dtype")
    ba, bb = batch.input_shapes
    sa = (k,) if a1d else ba + (m, k)
    sb = (k,) if b1d else bb + (k, n)
    a, ta = data.draw(tensors(sa, dtype, device=device))
    b, tb = data.draw(tensors(sb, dtype, device=device))
    expected = np.matmul(f64(a), f64(b))
    kw = {"dtype": dtype, "device": device, **tol(dtype, "red")}
    check(ta @ tb, expected, **kw)
    check(fg.matmul(ta, tb), expected, **kw)
    check(ta.matmul(tb), expected, **kw)


@pytest.mark.parametrize("device,dtype", DEVICE_FLOATS)
@pytest.mark.parametrize(
    "sa,sb",
    [
        ((0, 3), (3, 2)),
        ((2, 0), (0, 3)),
        ((0, 2, 3), (3, 4)),
        ((2, 3), (3, 0)),
        ((0,), (0,)),
        ((0,), (0, 2)),
        ((2, 1, 2, 3), (3, 3, 2)),
        ((1, 7), (7, 1)),
    ],
)
def test_matmul_fixed_shapes(device, dtype, sa, sb):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(sa).astype(NP[dtype])
    b = rng.standard_normal(sb).astype(NP[dtype])
    got = fg.tensor(a, device=device) @ fg.tensor(b, device=device)
    check(got, f64(a) @ f64(b), dtype=dtype, device=device, **tol(dtype, "red"))


@pytest.mark.parametrize("device,dtype", DEVICE_FLOATS)
def test_matmul_nan_inf(device, dtype):
    a = np.array([[np.inf, 1.0], [1.0, 2.0], [np.nan, 0.0]], dtype=NP[dtype])
    b = np.array([[0.0, 1.0], [1.0, 1.0]], dtype=NP[dtype])
    with np.errstate(all="ignore"):
        got = fg.tensor(a, device=device) @ fg.tensor(b, device=device)
        check(got, f64(a) @ f64(b), dtype=dtype, device=device)


def test_matmul_mixed_dtypes_promote():
    a = np.arange(6.0).reshape(2, 3).astype(np.float32)
    b = np.arange(12.0).reshape(3, 4)
    check(fg.tensor(a) @ fg.tensor(b), f64(a) @ b, dtype=fg.float64, **tol(fg.float64, "red"))


@SET
@given(
    st.data(),
    hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3),
    st.integers(1, 5),
    st.integers(1, 4),
    st.booleans(),
)
def test_linear(device, data, batch, fin, fout, with_bias):
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS)), label="dtype")
    x, tx = data.draw(tensors(batch + (fin,), dtype, device=device))
    w, tw = data.draw(tensors((fout, fin), dtype, device=device))
    expected = f64(x) @ f64(w).T
    if with_bias:
        b, tb = data.draw(tensors((fout,), dtype, device=device))
        expected = expected + f64(b)
        got = fg.linear(tx, tw, tb)
    else:
        got = fg.linear(tx, tw)
    check(got, expected, dtype=dtype, device=device, **tol(dtype, "red"))


# ----------------------------------------------------------------------------- joining and gathering


@SET
@given(
    st.data(),
    shapes(min_dims=1, max_dims=4, min_side=1, max_side=4),
    st.integers(1, 3),
)
def test_cat(device, data, shape, count):
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS + [fg.int64])), label="dtype")
    nd = len(shape)
    dim = data.draw(st.integers(-nd, nd - 1))
    arrs, ts = [], []
    for _ in range(count):
        s = list(shape)
        s[dim] = data.draw(st.integers(0, 3))
        a, t = data.draw(tensors(tuple(s), dtype, device=device))
        arrs.append(a)
        ts.append(t)
    kw = {"dtype": dtype, "exact": True, "device": device}
    check(fg.cat(ts, dim), np.concatenate(arrs, axis=dim), **kw)
    check(fg.cat(tuple(ts), dim=dim), np.concatenate(arrs, axis=dim), **kw)
    if dim == 0:
        check(fg.cat(ts), np.concatenate(arrs), **kw)


@SET
@given(
    st.data(),
    shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    st.integers(1, 3),
)
def test_stack(device, data, shape, count):
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS + [fg.int64])), label="dtype")
    nd = len(shape)
    dim = data.draw(st.integers(-nd - 1, nd))
    pairs = [data.draw(tensors(shape, dtype, device=device)) for _ in range(count)]
    arrs = [p[0] for p in pairs]
    ts = [p[1] for p in pairs]
    check(fg.stack(ts, dim), np.stack(arrs, axis=dim), dtype=dtype, exact=True, device=device)
    check(fg.stack(ts), np.stack(arrs), dtype=dtype, exact=True, device=device)


def test_cat_promotes_dtypes():
    a = np.ones((2, 2), np.float32)
    b = np.arange(4.0).reshape(2, 2)
    check(fg.cat([fg.tensor(a), fg.tensor(b)], 1), np.concatenate([a, b], 1), dtype=fg.float64)


@SET
@given(st.data(), shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
def test_index_select(device, data, shape):
    """The index (int64) is on the host; the result is where the input is."""
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS + [fg.int64])), label="dtype")
    a, t = data.draw(tensors(shape, dtype, device=device))
    nd = len(shape)
    dim = data.draw(st.integers(-nd, nd - 1))
    size = shape[dim]
    idx = data.draw(st.lists(st.integers(-size, size - 1), min_size=0, max_size=6))
    ti = fg.tensor(np.array(idx, dtype=np.int64))
    expected = np.take(a, np.array(idx, dtype=np.int64), axis=dim)
    check(t.index_select(dim, ti), expected, dtype=dtype, exact=True, device=device)
    check(fg.index_select(t, dim, ti), expected, dtype=dtype, exact=True, device=device)


@SET
@given(
    st.data(),
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    st.integers(1, 5),
    st.booleans(),
)
def test_one_hot(data, shape, classes, explicit):
    labels = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, classes - 1)))
    labels, tl = data.draw(laid_out(labels))
    if explicit:
        c = classes
        got = fg.one_hot(tl, classes)
    else:
        if labels.size == 0:
            return
        c = int(labels.max()) + 1
        got = fg.one_hot(tl)
    check(got, np.eye(c, dtype=np.int64)[labels], dtype=fg.int64)


# ----------------------------------------------------------------------------- indexing


@st.composite
def index_keys(draw, shape):
    items: list = []
    for n in shape:
        if draw(st.integers(0, 4)) == 0:
            items.append(None)
        kind = draw(st.sampled_from(["int", "slice", "full"] if n > 0 else ["slice", "full"]))
        if kind == "int":
            items.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            step = draw(st.sampled_from([None, 1, 2, 3, -1, -2, -3]))
            start = draw(st.none() | st.integers(-n - 2, n + 2))
            stop = draw(st.none() | st.integers(-n - 2, n + 2))
            items.append(slice(start, stop, step))
        else:
            items.append(slice(None))
    if draw(st.integers(0, 4)) == 0:
        items.append(None)
    if draw(st.booleans()):
        i = draw(st.integers(0, len(items)))
        j = draw(st.integers(i, len(items)))
        items = items[:i] + [Ellipsis] + items[j:]
    else:
        items = items[: draw(st.integers(0, len(items)))]
    if len(items) == 1 and draw(st.booleans()):
        return items[0]
    return tuple(items)


@SET
@given(st.data(), shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
def test_basic_indexing(device, data, shape):
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS + [fg.int64])), label="dtype")
    a, t = data.draw(tensors(shape, dtype, device=device))
    key = data.draw(index_keys(shape))
    expected = a[key]
    got = t[key]
    kw = {"dtype": dtype, "exact": True, "device": device}
    check(got, expected, **kw)
    # the resulting view feeds kernels correctly
    check(got.contiguous(), expected, **kw)
    check(got * 2, expected * 2, **kw)
    check(got.reshape(-1), np.ravel(expected), **kw)
    if dtype != fg.int64:
        check(got.exp(), np.exp(f64(expected)), dtype=dtype, device=device, **tol(dtype, device=device))
    red = tol(dtype if dtype != fg.int64 else fg.float64, "red")
    check(got.sum(), np.sum(f64(expected)), device=device, **red)


@SET
@given(st.data(), shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
def test_chained_indexing(device, data, shape):
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS)), label="dtype")
    a, t = data.draw(tensors(shape, dtype, device=device))
    k1 = data.draw(index_keys(shape))
    v1 = a[k1]
    k2 = data.draw(index_keys(v1.shape))
    check(t[k1][k2], v1[k2], dtype=dtype, exact=True, device=device)


@SET
@given(
    st.data(),
    shapes(min_dims=1, max_dims=4, min_side=1, max_side=4),
    st.sampled_from(["list", "tensor1d", "tensor2d", "ndarray"]),
)
def test_integer_array_indexing(device, data, shape, kind):
    """Index tensors are int64, on the host; the result is where the input is."""
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS + [fg.int64])), label="dtype")
    a, t = data.draw(tensors(shape, dtype, device=device))
    n = shape[0]
    if kind == "tensor2d":
        idx = data.draw(
            hnp.arrays(
                np.int64,
                (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))),
                elements=st.integers(-n, n - 1),
            )
        )
        key = fg.tensor(idx)
    else:
        idx = np.array(data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=6)), dtype=np.int64)
        key = {"list": idx.tolist(), "tensor1d": fg.tensor(idx), "ndarray": idx}[kind]
    check(t[key], a[idx], dtype=dtype, exact=True, device=device)


def test_index_errors():
    t = fg.tensor(np.zeros((2, 3)))
    with pytest.raises(IndexError):
        t[2]
    with pytest.raises(IndexError):
        t[0, 0, 0]
    with pytest.raises(IndexError):
        t[..., 0, ...]
    with pytest.raises(ValueError):
        t[::0]
    with pytest.raises(IndexError):
        t[fg.tensor([0.0, 1.0])]
    with pytest.raises(IndexError):
        t.index_select(0, fg.tensor([2]))


# ----------------------------------------------------------------------------- views


@st.composite
def regrouped_shape(draw, shape):
    """A shape with the same element count: the dims permuted, grouped, with 1s inserted."""
    dims = list(draw(st.permutations(list(shape))))
    out = []
    i = 0
    while i < len(dims):
        j = draw(st.integers(i + 1, len(dims)))
        out.append(int(np.prod(dims[i:j])))
        i = j
    for _ in range(draw(st.integers(0, 2))):
        out.insert(draw(st.integers(0, len(out))), 1)
    if out and 0 not in shape and draw(st.booleans()):
        out[draw(st.integers(0, len(out) - 1))] = -1
    return tuple(out)


@SET
@given(st.data(), shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))
def test_reshape(device, data, shape):
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS + [fg.int64])), label="dtype")
    a, t = data.draw(tensors(shape, dtype, device=device))
    new = data.draw(regrouped_shape(shape))
    kw = {"dtype": dtype, "exact": True, "device": device}
    check(t.reshape(new), a.reshape(new), **kw)
    check(t.reshape(*new), a.reshape(new), **kw)
    check(t.reshape(-1), a.reshape(-1), **kw)
    c = t.contiguous()
    check(c.view(new), a.reshape(new), **kw)
    check(c.view(*new), a.reshape(new), **kw)


def test_view_refuses_incompatible_strides():
    t = fg.tensor(np.arange(12.0).reshape(3, 4)).T
    with pytest.raises(fg.ShapeError):
        t.view(12)
    check(t.reshape(12), np.arange(12.0).reshape(3, 4).T.reshape(12), exact=True)
    # a view that merges only contiguous dims works on a non-contiguous tensor
    u = fg.tensor(np.arange(24.0).reshape(2, 3, 4))[:, :, ::2]
    check(u.view(6, 2), np.arange(24.0).reshape(2, 3, 4)[:, :, ::2].reshape(6, 2), exact=True)


@SET
@given(st.data(), shapes(min_dims=1, max_dims=4, min_side=0, max_side=4))
def test_transpose_permute_T(device, data, shape):
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS + [fg.int64])), label="dtype")
    a, t = data.draw(tensors(shape, dtype, device=device))
    nd = len(shape)
    d0 = data.draw(st.integers(-nd, nd - 1))
    d1 = data.draw(st.integers(-nd, nd - 1))
    kw = {"dtype": dtype, "exact": True, "device": device}
    check(t.transpose(d0, d1), np.swapaxes(a, d0, d1), **kw)
    perm = data.draw(st.permutations(range(nd)))
    perm = [p - nd if data.draw(st.booleans()) else p for p in perm]
    check(t.permute(*perm), np.transpose(a, [p % nd for p in perm]), **kw)
    check(t.permute(perm), np.transpose(a, [p % nd for p in perm]), **kw)
    check(t.T, a.T, **kw)
    # the views compose with arithmetic and reductions
    check(t.T + t.T, a.T + a.T, **kw)
    check(t.permute(*perm).contiguous(), np.transpose(a, [p % nd for p in perm]), **kw)


@SET
@given(st.data(), shapes(min_dims=0, max_dims=3, min_side=1, max_side=3))
def test_expand(device, data, shape):
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS + [fg.int64])), label="dtype")
    small_shape = tuple(1 if data.draw(st.booleans()) else s for s in shape)
    a, t = data.draw(tensors(small_shape, dtype, device=device))
    lead = tuple(data.draw(st.lists(st.integers(0, 3), max_size=2)))
    target = lead + shape
    expected = np.broadcast_to(a, target)
    kw = {"dtype": dtype, "exact": True, "device": device}
    check(t.expand(*target), expected, **kw)
    check(t.expand(target), expected, **kw)
    spec = lead + tuple(-1 if s == ss else s for s, ss in zip(shape, small_shape))
    check(t.expand(*spec), expected, **kw)
    e = t.expand(*target)
    check(e.contiguous(), expected, **kw)
    check(e + 1, expected + 1, **kw)


@SET
@given(st.data(), shapes(min_dims=0, max_dims=4, min_side=1, max_side=3))
def test_squeeze_unsqueeze_flatten(device, data, shape):
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS + [fg.int64])), label="dtype")
    shape = tuple(1 if data.draw(st.booleans()) else s for s in shape)
    a, t = data.draw(tensors(shape, dtype, device=device))
    nd = len(shape)
    kw = {"dtype": dtype, "exact": True, "device": device}
    check(t.squeeze(), np.squeeze(a), **kw)
    if nd:
        d = data.draw(st.integers(-nd, nd - 1))
        expected = np.squeeze(a, axis=d) if shape[d] == 1 else a  # PyTorch: a no-op on a dim of size != 1
        check(t.squeeze(d), expected, **kw)
    u = data.draw(st.integers(-nd - 1, nd))
    check(t.unsqueeze(u), np.expand_dims(a, u), **kw)
    if nd == 0:
        check(t.flatten(), a.reshape(1), **kw)
    else:
        s = data.draw(st.integers(-nd, nd - 1))
        e = data.draw(st.integers(-nd, nd - 1))
        s0, e0 = s % nd, e % nd
        if s0 <= e0:
            new = shape[:s0] + (int(np.prod(shape[s0 : e0 + 1])),) + shape[e0 + 1 :]
            check(t.flatten(s, e), a.reshape(new), **kw)
        check(t.flatten(), a.reshape(-1), **kw)
        check(t.flatten(1 if nd > 1 else 0), a.reshape(shape[:1] + (-1,)) if nd > 1 else a.reshape(-1), **kw)


@SET
@given(st.data(), shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
def test_narrow(device, data, shape):
    dtype = data.draw(st.sampled_from(dtypes_on(device, FLOATS)), label="dtype")
    a, t = data.draw(tensors(shape, dtype, device=device))
    nd = len(shape)
    d = data.draw(st.integers(-nd, nd - 1))
    start = data.draw(st.integers(0, shape[d]))
    length = data.draw(st.integers(0, shape[d] - start))
    idx = [slice(None)] * nd
    idx[d] = slice(start, start + length)
    check(t.narrow(d, start, length), a[tuple(idx)], dtype=dtype, exact=True, device=device)


def test_view_shares_storage_and_contiguous_copies():
    t = fg.tensor(np.arange(12.0).reshape(3, 4))
    v = t.T
    assert v.shares_storage(t)
    assert not v.is_contiguous()
    c = v.contiguous()
    assert c.is_contiguous() and not c.shares_storage(t)
    assert t.contiguous().shares_storage(t)
    assert t[:, 1::2].stride() == (4, 2)
    assert t[::-1].stride() == (-4, 1)
    assert t[1:, 2:].storage_offset() == 6
