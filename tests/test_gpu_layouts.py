"""GPU against CPU on random shapes and memory layouts (property-based).

test_gpu.py checks each kernel on chosen cases; here hypothesis draws the shapes, the
broadcasting and the layout of every GPU operand (a view of a GPU base: permuted, stepped,
reversed or expanded), since the kernels read operands through their strides. Results,
dtypes and gradients must match the CPU's (float32; tolerances per op).
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ferrograd as fg

if not fg.gpu_available():
    if os.environ.get("FERROGRAD_REQUIRE_GPU") == "1":
        raise RuntimeError("FERROGRAD_REQUIRE_GPU=1 but no GPU adapter was found: " + repr(fg.devices()))
    pytest.skip("no GPU adapter (install mesa-vulkan-drivers for lavapipe)", allow_module_level=True)

SET = settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
SHAPES = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5)


def close(g, c, what, rtol=1e-5, atol=1e-5):
    """`g` (GPU result; int64 results live on the host) equals the CPU's `c`."""
    assert g.device == "gpu" or g.dtype == fg.int64, (what, g.device)
    assert g.dtype == c.dtype, (what, g.dtype, c.dtype)
    gv, cv = g.numpy(), c.numpy()
    assert gv.shape == cv.shape, (what, gv.shape, cv.shape)
    if cv.dtype.kind in "bi":
        np.testing.assert_array_equal(gv, cv, err_msg=what)
    else:
        np.testing.assert_allclose(gv, cv, rtol=rtol, atol=atol, equal_nan=True, err_msg=what)


@st.composite
def views(draw, shape):
    """(CPU tensor, GPU tensor) with the same values; the GPU one is a view of a GPU base
    in a drawn layout."""
    a = draw(hnp.arrays(np.float32, shape, elements=st.floats(-3, 3, width=32)))
    kind = draw(st.sampled_from(["contig", "permute", "step", "reverse", "expand"]))
    c = fg.tensor(a)
    if kind == "permute" and len(shape) >= 2:
        perm = draw(st.permutations(range(len(shape))))
        inv = [int(i) for i in np.argsort(perm)]
        return c, fg.tensor(np.ascontiguousarray(a.transpose(perm))).to("gpu").permute(*inv)
    if kind == "step":
        big = np.zeros((shape[0] * 2 + 1, *shape[1:]), np.float32)
        big[1::2][: shape[0]] = a
        return c, fg.tensor(big).to("gpu")[1 : 1 + 2 * shape[0] : 2]
    if kind == "reverse":
        return c, fg.tensor(np.ascontiguousarray(a[::-1])).to("gpu")[::-1]
    if kind == "expand":
        ref = np.ascontiguousarray(np.broadcast_to(a[:1], shape))
        return fg.tensor(ref), fg.tensor(a[:1]).to("gpu").expand(*shape)
    return c, fg.tensor(a).to("gpu")


@st.composite
def dims(draw, ndim):
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    return tuple(draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)))


@SET
@given(st.data(), SHAPES)
def test_unary_and_reductions_on_views(data, shape):
    c, g = data.draw(views(shape))
    for name in ["exp", "tanh", "sigmoid", "relu", "abs", "neg", "selu", "gelu"]:
        close(getattr(g, name)(), getattr(c, name)(), name, rtol=2e-5, atol=2e-6)
    dim, keep = data.draw(dims(len(shape))), data.draw(st.booleans())
    for name in ["sum", "mean", "amax", "amin", "any", "all"]:
        close(getattr(g, name)(dim, keep), getattr(c, name)(dim, keep), f"{name} {dim}", rtol=1e-4, atol=1e-4)
    close(g.norm(2.0, dim, keep), c.norm(2.0, dim, keep), "norm", rtol=1e-4, atol=1e-4)
    d = data.draw(st.integers(-len(shape), len(shape) - 1))
    close(g.argmax(d), c.argmax(d), "argmax")
    close(g.softmax(d), c.softmax(d), "softmax", rtol=1e-4, atol=1e-6)
    close(g.log_softmax(d), c.log_softmax(d), "log_softmax", rtol=1e-4, atol=1e-4)
    close(g.logsumexp(d), c.logsumexp(d), "logsumexp", rtol=1e-4, atol=1e-4)


BINARY = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b.abs() + 0.5),
    "pow": lambda a, b: (a.abs() + 0.1) ** b,
    "maximum": fg.maximum,
    "gt": lambda a, b: a > b,
    "eq": lambda a, b: a == b,
    "and": lambda a, b: (a > 0) & (b > 0),
    "xor": lambda a, b: (a > 0) ^ (b < 0),
    "where": lambda a, b: fg.where(a > b, a, b),
    "where_scalar": lambda a, b: fg.where(b > 0, a * 2, 1.0),
    "bool_arith": lambda a, b: a + (b > 0) * 2.0,
}


@SET
@given(st.data(), hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=4, max_side=4))
def test_broadcast_binary_ops_and_gradients_on_views(data, shapes):
    ca, ga = data.draw(views(shapes.input_shapes[0]))
    cb, gb = data.draw(views(shapes.input_shapes[1]))
    for name, f in BINARY.items():
        close(f(ga, gb), f(ca, cb), name)
    grads = []
    for a, b in [(ca, cb), (ga, gb)]:
        a, b = a.detach().requires_grad_(), b.detach().requires_grad_()
        y = fg.maximum(a, b) * a + fg.where(a > 0, b, a * 0.5) + (a * (b > 0).float()).sigmoid()
        y.sum().backward()
        grads.append((a.grad, b.grad))
    close(grads[1][0], grads[0][0], "grad a", rtol=1e-4)
    close(grads[1][1], grads[0][1], "grad b", rtol=1e-4)


@SET
@given(
    st.data(), st.integers(1, 9), st.integers(1, 9), st.integers(1, 9), st.sampled_from([(), (2,), (3, 1)])
)
def test_matmul_and_linear_on_views(data, m, k, n, batch):
    ca, ga = data.draw(views((*batch, m, k)))
    cb, gb = data.draw(views((k, n)))
    close(ga @ gb, ca @ cb, "matmul", rtol=1e-4, atol=1e-4)
    if batch == ():
        cw, gw = data.draw(views((n, k)))
        cbias, gbias = data.draw(views((n,)))
        want = fg.linear(ca, cw, cbias, activation="relu")
        close(fg.linear(ga, gw, gbias, activation="relu"), want, "linear", rtol=1e-4, atol=1e-4)


@SET
@given(st.data(), SHAPES)
def test_joins_gathers_and_masks_on_views(data, shape):
    c, g = data.draw(views(shape))
    d = data.draw(st.integers(-len(shape), len(shape) - 1))
    close(fg.cat([g, g * 2], d), fg.cat([c, c * 2], d), "cat")
    close(fg.stack([g, g], d), fg.stack([c, c], d), "stack")
    picks = data.draw(st.lists(st.integers(0, shape[d] - 1), max_size=6))
    idx = fg.tensor(np.array(picks, dtype=np.int64))
    close(g.index_select(d, idx), c.index_select(d, idx), "index_select")
    mask = data.draw(hnp.arrays(np.bool_, tuple(shape[: data.draw(st.integers(0, len(shape)))])))
    close(g[fg.tensor(mask)], c[fg.tensor(mask)], "host mask")
    close(g[fg.tensor(mask).to("gpu")], c[fg.tensor(mask)], "gpu mask")
    close(g.masked_fill(g > 0, -1.0), c.masked_fill(c > 0, -1.0), "masked_fill")
    close(g.clamp(-1, 0.5), c.clamp(-1, 0.5), "clamp")
    close(g.reshape(-1), c.reshape(-1), "reshape")
