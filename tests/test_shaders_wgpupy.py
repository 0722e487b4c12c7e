"""A second, independent harness: each file in shaders/ run through wgpu-py (the `wgpu`
Python package) against NumPy, with no ferrograd code involved. When a GPU test fails,
this says whether the bug is in the shader or in the Rust that drives it.
"""

import os
from pathlib import Path

import numpy as np
import pytest
from unary_reference import ROWS, VARIANTS, ref, sample, variant_id

wgpu = pytest.importorskip("wgpu")

SHADERS = Path(__file__).resolve().parent.parent / "shaders"


def source(shader: str) -> str:
    """A shader's source as ferrograd compiles it (common.wgsl and the op table's generated
    part prepended), or the file's own text for one ferrograd does not list."""
    from ferrograd import _core

    return _core._shader_source(Path(shader).stem) or (SHADERS / shader).read_text()


# the op table's codes, as the Rust side generated them into the WGSL
def _codes():
    from ferrograd import _core

    return {name: code for name, code, _ in _core.unary_ops()}


CODE = _codes()
IDENTITY = 99  # the strided copy: unary_fwd's default case


def _device():
    try:
        adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
        return adapter.request_device_sync() if adapter is not None else None
    except Exception:  # noqa: BLE001  (no driver: skip, or fail when the GPU is required)
        return None


DEVICE = _device()
if DEVICE is None:
    if os.environ.get("FERROGRAD_REQUIRE_GPU") == "1":
        raise RuntimeError("FERROGRAD_REQUIRE_GPU=1 but wgpu-py found no adapter")
    pytest.skip("wgpu-py found no GPU adapter", allow_module_level=True)

BU = wgpu.BufferUsage


def run(
    shader: str,
    entry: str,
    params: bytes,
    inputs,
    out_len: int,
    extra=None,
    groups=(1, 1, 1),
    constants=None,
    out_init=None,
    rw=None,
):
    """Dispatches `entry` of shaders/`shader` with ferrograd's binding layout: group 0
    binding 0 uniform with 5 and 6 the read-write state; group 1 binding 1 and group 2
    binding 2 read-only inputs, group 2 binding 4 read-only extra; group 3 binding 3 the
    output.
    Returns the output, or (output, [state 5, state 6]) when `rw` gives the state."""
    dev = DEVICE
    module = dev.create_shader_module(code=source(shader))
    cs = wgpu.ShaderStage.COMPUTE

    def layout_entry(binding, kind):
        return {"binding": binding, "visibility": cs, "buffer": {"type": kind}}

    ro, rw_kind = wgpu.BufferBindingType.read_only_storage, wgpu.BufferBindingType.storage
    groups_of = [[0, 5, 6], [1], [2, 4], [3]]
    kinds = {0: wgpu.BufferBindingType.uniform, 1: ro, 2: ro, 4: ro, 3: rw_kind, 5: rw_kind, 6: rw_kind}
    layouts = [
        dev.create_bind_group_layout(entries=[layout_entry(b, kinds[b]) for b in g]) for g in groups_of
    ]
    pipeline = dev.create_compute_pipeline(
        layout=dev.create_pipeline_layout(bind_group_layouts=layouts),
        compute={"module": module, "entry_point": entry, "constants": constants or {}},
    )

    def buf(data, usage):
        return dev.create_buffer_with_data(data=np.ascontiguousarray(data).tobytes(), usage=usage)

    dummy = np.zeros(4, np.float32)
    bufs = [buf(np.frombuffer(params, np.uint8), BU.UNIFORM)]
    for a in inputs + [dummy] * (2 - len(inputs)):
        bufs.append(buf(a, BU.STORAGE))
    if out_init is None:
        out = dev.create_buffer(size=max(out_len, 1) * 4, usage=BU.STORAGE | BU.COPY_SRC)
    else:
        out = buf(out_init, BU.STORAGE | BU.COPY_SRC)
    bufs.append(out)
    bufs.append(buf(extra if extra is not None else dummy, BU.STORAGE))
    state = [buf(a if a is not None else dummy, BU.STORAGE | BU.COPY_SRC) for a in (rw or [None, None])]
    bufs += state
    enc = dev.create_command_encoder()
    cp = enc.begin_compute_pass()
    cp.set_pipeline(pipeline)
    for gi, g in enumerate(groups_of):
        entries = [
            {"binding": b, "resource": {"buffer": bufs[b], "offset": 0, "size": bufs[b].size}} for b in g
        ]
        cp.set_bind_group(gi, dev.create_bind_group(layout=layouts[gi], entries=entries))
    cp.dispatch_workgroups(*groups)
    cp.end()
    dev.queue.submit([enc.finish()])
    got = np.frombuffer(dev.queue.read_buffer(out), np.float32)[:out_len].copy()
    if rw is None:
        return got
    return got, [np.frombuffer(dev.queue.read_buffer(b), np.float32).copy() for b in state]


def ew_params(n, op, ndim=1, alpha=0.0, beta=0.0, a_off=0, b_off=0, halves=(0, 0, 0, 0)):
    """elementwise.wgsl's Params; `halves`: the codes of a, b, y and out (0 float32 words,
    1 float16, 2 bfloat16 packed two to a word)."""
    threads = (n + 1) // 2 if halves[3] else n
    row = ((threads + 63) // 64) * 64
    codes = halves[0] | halves[1] << 2 | halves[2] << 4 | halves[3] << 6
    return (
        np.array([n, op, ndim, row], np.uint32).tobytes()
        + np.array([alpha, beta], np.float32).tobytes()
        + (np.array([a_off, b_off, codes, 0, 0, 0], np.uint32).tobytes())
    )


def _packed(h: np.ndarray) -> np.ndarray:
    """float16 values as the GPU rests them: two to a 32-bit word, the first in the low half."""
    h = np.ascontiguousarray(h, np.float16).ravel()
    return np.concatenate([h, np.zeros(h.size % 2, np.float16)]).view(np.float32)


def test_elementwise_kernels_read_and_write_packed_float16():
    """Packed float16 operands (an odd count, a broadcast operand, an odd offset) and a
    packed result: NumPy's float16 of the float32 result, exactly (round to nearest even),
    inf and NaN included; the unused half of the last word stays 0."""
    n = 61
    a = (rng.standard_normal(n + 1) * 300).astype(np.float16)  # products overflow to inf
    a[:3] = [np.inf, np.nan, -0.0]
    b = (rng.standard_normal(7) * 300).astype(np.float16)
    # a from element 1 (odd offset), b broadcast over a (1, 7) view
    info = layout_info([n], [1], [0])
    p = ew_params(n, 2, a_off=1, b_off=3, halves=(1, 1, 0, 1))
    got = run("elementwise.wgsl", "binary_main", p, [_packed(a), _packed(b)], (n + 1) // 2, info, (1, 1, 1))
    got16 = got.view(np.float16)
    with np.errstate(over="ignore", invalid="ignore"):
        want = (a[1:].astype(np.float32) * b[3].astype(np.float32)).astype(np.float16)
    np.testing.assert_array_equal(got16[:n], want)
    assert got16[n].view(np.uint16) == 0
    # a unary op: float16 in, float32 words out (code 0)
    p = ew_params(n, CODE["exp"], halves=(1, 0, 0, 0))
    x = (rng.standard_normal(n) * 3).astype(np.float16)
    got = run("elementwise.wgsl", "unary_main", p, [_packed(x)], n, layout_info([n], [1]), (1, 1, 1))
    np.testing.assert_allclose(got, np.exp(x.astype(np.float32)), rtol=1e-6)


def layout_info(shape, *strides):
    info = np.zeros(24, np.int32)
    info[: len(shape)] = shape
    for k, st in enumerate(strides):
        info[8 * (k + 1) : 8 * (k + 1) + len(st)] = st
    return info.view(np.uint32)


rng = np.random.default_rng(0)


@pytest.mark.parametrize(
    "op,ref",
    [
        (CODE["exp"], np.exp),
        (CODE["tanh"], np.tanh),
        (CODE["relu"], lambda x: np.maximum(x, 0)),
        (CODE["sigmoid"], lambda x: 1 / (1 + np.exp(-x))),
        (IDENTITY, lambda x: x),
    ],
)
def test_unary_kernel(op, ref):
    x = rng.standard_normal(200).astype(np.float32) * 3
    got = run(
        "elementwise.wgsl", "unary_main", ew_params(200, op), [x], 200, layout_info([200], [1]), (4, 1, 1)
    )
    np.testing.assert_allclose(got, ref(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_unary_kernel_of_every_table_row(variant):
    """Each public row of the engine's op table (`_core.unary_ops()`), its parameters in the
    uniform's alpha and beta (the table's defaults where not given), against its float64
    NumPy reference (tests/unary_reference.py) on inputs in its domain."""
    name, args = variant
    p = [args[i] if i < len(args) else d for i, (_, d) in enumerate(ROWS[name])] + [0.0, 0.0]
    x = sample(name, args, (200,)).astype(np.float32)
    params = ew_params(200, CODE[name], alpha=p[0], beta=p[1])
    got = run("elementwise.wgsl", "unary_main", params, [x], 200, layout_info([200], [1]), (4, 1, 1))
    np.testing.assert_allclose(got, ref(name, x, args), rtol=1e-4, atol=1e-5, err_msg=variant_id(variant))


def test_unary_kernel_reads_through_negative_strides():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    # view x[:, ::-1]: offset 3, strides (4, -1)
    got = run("elementwise.wgsl", "unary_main", ew_params(12, IDENTITY, ndim=2, a_off=3), [x], 12,
              layout_info([3, 4], [4, -1]))  # fmt: skip
    np.testing.assert_array_equal(got, x[:, ::-1].ravel())


def test_binary_kernel_broadcasts():
    a = rng.standard_normal((4, 1, 5)).astype(np.float32)
    b = rng.standard_normal((3, 5)).astype(np.float32)
    info = layout_info([4, 3, 5], [5, 0, 1], [0, 5, 1])
    got = run("elementwise.wgsl", "binary_main", ew_params(60, 2, ndim=3), [a, b], 60, info)
    np.testing.assert_allclose(got, (a * b).ravel(), rtol=1e-6)
    got = run("elementwise.wgsl", "binary_main", ew_params(60, 4, ndim=3), [np.abs(a) + 0.5, b], 60, info)
    np.testing.assert_allclose(got, ((np.abs(a) + 0.5) ** b).ravel(), rtol=1e-5)


@pytest.mark.parametrize(
    "op,ref",
    [
        (7, np.equal),
        (8, np.not_equal),
        (9, np.less),
        (10, np.less_equal),
        (11, np.greater),
        (12, np.greater_equal),
        (13, np.logical_and),
        (14, np.logical_or),
        (15, np.logical_xor),
    ],
)
def test_binary_kernel_comparisons_and_logic(op, ref):
    """Codes 7-15 give 0/1 floats (the GPU backend's bools) as NumPy's comparisons and
    logical ops do, NaN (unordered; true as a truth value), -0.0 and subnormals included
    (exact even on a device that flushes subnormals, as the H100's Vulkan driver does)."""
    tiny = np.float32(3e-42)  # subnormal
    special = np.array([np.nan, -0.0, 0.0, 1.0, -np.inf, np.inf, tiny, -tiny, 2 * tiny], np.float32)
    k = special.size
    a = np.concatenate([np.repeat(special, k), rng.integers(-2, 3, 64).astype(np.float32)])
    b = np.concatenate([np.tile(special, k), rng.integers(-2, 3, 64).astype(np.float32)])
    n = a.size
    groups = ((n + 63) // 64, 1, 1)
    got = run(
        "elementwise.wgsl", "binary_main", ew_params(n, op), [a, b], n, layout_info([n], [1], [1]), groups
    )
    np.testing.assert_array_equal(got, ref(a, b).astype(np.float32))


def test_select_kernel_broadcasts_and_keeps_inf_out():
    a = rng.standard_normal((4, 1, 5)).astype(np.float32)
    b = np.full((3, 5), np.inf, np.float32)
    cond = (rng.standard_normal((4, 3, 5)) > 0).astype(np.float32)
    info = layout_info([4, 3, 5], [5, 0, 1], [0, 5, 1])
    out, _ = run(
        "elementwise.wgsl", "select_main", ew_params(60, 0, ndim=3), [a, b], 60, info, rw=[cond, None]
    )
    want = np.where(cond > 0, np.broadcast_to(a, (4, 3, 5)), np.inf).ravel()
    np.testing.assert_array_equal(out, want)


def test_unary_backward_kernel():
    """The table's rule from x (binding 1), g (binding 2) and the output y (binding 5)."""
    x = rng.standard_normal(100).astype(np.float32)
    g = rng.standard_normal(100).astype(np.float32)
    y = np.tanh(x).astype(np.float32)
    got, _ = run(
        "elementwise.wgsl",
        "unary_backward_main",
        ew_params(100, CODE["tanh"], ndim=0),
        [x, g],
        100,
        None,
        (2, 1, 1),
        rw=[y, None],
    )
    np.testing.assert_allclose(got, g * (1 - y.astype(np.float64) ** 2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "op,alpha,deriv",
    [
        (
            "selu",
            0.0,
            lambda y: np.where(y > 0, 1.0507009873554805, y + 1.0507009873554805 * 1.6732632423543772),
        ),
        ("tanh", 0.0, lambda y: 1 - y * y),
        ("sigmoid", 0.0, lambda y: y * (1 - y)),
        ("elu", 0.7, lambda y: np.where(y > 0, 1.0, y + 0.7)),
        ("relu", 0.0, lambda y: np.where(y > 0, 1.0, 0.0)),
    ],
)
def test_unary_backward_from_the_output(op, alpha, deriv):
    """The backward of an activation fused into a matmul reads only its output y: the op's
    own rule with x = y (ndim = 1), for the fusable activations."""
    y = rng.uniform(-0.9, 0.9, 100).astype(np.float32)
    g = rng.standard_normal(100).astype(np.float32)
    got = run(
        "elementwise.wgsl",
        "unary_backward_main",
        ew_params(100, CODE[op], ndim=1, alpha=alpha),
        [y, g],
        100,
        None,
        (2, 1, 1),
    )
    np.testing.assert_allclose(got, g * deriv(y.astype(np.float64)), rtol=1e-5, atol=1e-6)


# the matmul epilogues: elementwise.wgsl's code -> (alpha, float64 reference)
SELU_S, SELU_SA = 1.0507009873554805, 1.0507009873554805 * 1.6732632423543772
EPILOGUES = {
    0: (0.0, lambda z: z),
    5: (0.0, np.tanh),
    6: (0.0, lambda z: 1 / (1 + np.exp(-z))),
    7: (0.0, lambda z: np.maximum(z, 0)),
    8: (0.0, lambda z: np.where(z > 0, SELU_S * z, SELU_SA * np.expm1(z))),
    9: (0.7, lambda z: np.where(z > 0, z, 0.7 * np.expm1(z))),
    10: (0.2, lambda z: np.where(z > 0, z, 0.2 * z)),
}


def mm_params(m, n, k, a_rs, a_cs, b_rs, b_cs, act, kc=None, fixup=0, row_sums=0, halves=(0, 0, 0, 0)):
    """The matmul Params: bias on, epilogue `act`, split-K chunk `kc` (default k: no split;
    matmul.wgsl's Params stop before it), `fixup` 1: the tile's last part sums the parts,
    `row_sums` 1: A's row sums too (then no bias), `halves`: A, B, the bias and C as packed
    halves (1 float16, 2 bfloat16)."""
    has_bias = 0 if row_sums else 1
    words = np.array(
        [
            m,
            n,
            k,
            1,
            a_rs,
            a_cs,
            0,
            0,
            b_rs,
            b_cs,
            0,
            0,
            has_bias,
            act,
            0,
            0,
            kc or k,
            fixup,
            row_sums,
            *halves,
        ],
        np.uint32,
    )
    words[15] = np.float32(EPILOGUES[act][0]).view(np.uint32)  # alpha
    return words.tobytes()


@pytest.mark.parametrize("act", sorted(EPILOGUES))
def test_matmul_kernel_with_transposed_operand_bias_and_epilogue(act):
    m, k, n = 70, 33, 90
    a = rng.standard_normal((m, k)).astype(np.float32)
    bt = rng.standard_normal((n, k)).astype(np.float32)  # b = bt.T, read through strides
    bias = rng.standard_normal(n).astype(np.float32)
    p = mm_params(m, n, k, k, 1, 1, k, act)
    got = run("matmul.wgsl", "main", p, [a, bt], m * n, bias, ((n + 63) // 64, (m + 63) // 64, 1))
    want = EPILOGUES[act][1](a.astype(np.float64) @ bt.T + bias)
    np.testing.assert_allclose(got.reshape(m, n), want, rtol=1e-4, atol=1e-4)


def _vec4_matmul_case(shader, entry, tile, a_k, b_n, act, m, k, n):
    """One aligned product through `entry` of `shader` (tile = (rows, cols) of C per
    workgroup), with a bias and the epilogue `act` (EPILOGUES), against float64 NumPy."""
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    a_store, (a_rs, a_cs) = (a, (k, 1)) if a_k else (np.ascontiguousarray(a.T), (1, m))
    b_store, (b_rs, b_cs) = (b, (n, 1)) if b_n else (np.ascontiguousarray(b.T), (1, k))
    p = mm_params(m, n, k, a_rs, a_cs, b_rs, b_cs, act)
    groups = ((n + tile[1] - 1) // tile[1], (m + tile[0] - 1) // tile[0], 1)
    consts = {"A_K_CONTIG": a_k, "B_N_CONTIG": b_n}
    got = run(shader, entry, p, [a_store, b_store], m * n, bias, groups, consts)
    want = EPILOGUES[act][1](a.astype(np.float64) @ b + bias)
    np.testing.assert_allclose(got.reshape(m, n), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("act", sorted(EPILOGUES))
@pytest.mark.parametrize("entry,tile", [("main64", 64)])
@pytest.mark.parametrize("a_k,b_n", [(1, 1), (1, 0), (0, 1), (0, 0)])
def test_matmul_vec4_kernel_every_layout(a_k, b_n, entry, tile, act):
    # multiples of 4 that cross the tile and k-slice edges
    _vec4_matmul_case("matmul_vec4.wgsl", entry, (tile, tile), a_k, b_n, act, 132, 20, 136)


@pytest.mark.parametrize(
    "shader,entry", [("matmul_vec4.wgsl", "main64"), ("generated/matmul_tiled.wgsl", "t64x64")]
)
@pytest.mark.parametrize("a_k,b_n", [(1, 1), (0, 0)])
def test_split_k_partials_then_sum(shader, entry, a_k, b_n):
    """Split-K: with kc < k, workgroup z of the product writes the raw partial product of k
    in [z kc, (z + 1) kc) at z m n of `parts` (read-write binding 5; no bias, no epilogue).
    Then either splitk_sum adds the parts in z order and applies bias and epilogue (a second
    pass), or, with `fixup`, the workgroup that finishes each tile's last part does the same
    in the product's own dispatch: the same bits, and every tile's count (binding 6) back
    at 0 for the next product."""
    m, k, n, kc = 68, 200, 72, 48  # 5 parts, the last 8 long; 2 x 2 tiles of 64
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    a_store, (a_rs, a_cs) = (a, (k, 1)) if a_k else (np.ascontiguousarray(a.T), (1, m))
    b_store, (b_rs, b_cs) = (b, (n, 1)) if b_n else (np.ascontiguousarray(b.T), (1, k))
    splits = -(-k // kc)
    groups = ((n + 63) // 64, (m + 63) // 64, splits)
    consts = {"A_K_CONTIG": a_k, "B_N_CONTIG": b_n}
    counts = np.zeros(8, np.uint32).view(np.float32)
    scratch = np.zeros(splits * m * n, np.float32)
    p = mm_params(m, n, k, a_rs, a_cs, b_rs, b_cs, 7, kc)
    _, (parts, _) = run(
        shader, entry, p, [a_store, b_store], m * n, bias, groups, consts, rw=[scratch, counts]
    )
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    want_parts = np.stack([a64[:, z * kc : (z + 1) * kc] @ b64[z * kc : (z + 1) * kc] for z in range(splits)])
    np.testing.assert_allclose(parts.reshape(splits, m, n), want_parts, rtol=1e-4, atol=1e-4)
    for act in sorted(EPILOGUES):
        p = mm_params(m, n, k, a_rs, a_cs, b_rs, b_cs, act, kc)
        got = run(
            "matmul_vec4.wgsl",
            "splitk_sum",
            p,
            [],
            m * n,
            bias,
            (-(-m * n // 4 // 256), 1, 1),
            rw=[parts, None],
        )[0]
        sum_in_order = parts.reshape(splits, m, n)[0].copy()
        for z in range(1, splits):
            sum_in_order += parts.reshape(splits, m, n)[z]  # float32, in z order, as the kernel
        want = EPILOGUES[act][1](sum_in_order.astype(np.float64) + bias)
        np.testing.assert_allclose(got.reshape(m, n), want, rtol=1e-5, atol=1e-5, err_msg=str(act))
        # in one dispatch: the same bits, and the counts left at zero
        p = mm_params(m, n, k, a_rs, a_cs, b_rs, b_cs, act, kc, fixup=1)
        one, (_, left) = run(
            shader, entry, p, [a_store, b_store], m * n, bias, groups, consts, rw=[scratch, counts]
        )
        assert np.array_equal(one.view(np.uint32), got.view(np.uint32)), act
        assert not left.view(np.uint32).any(), left.view(np.uint32)


@pytest.mark.parametrize(
    "shader,entry,tile",
    [("matmul_vec4.wgsl", "main64", (64, 64)), ("generated/matmul_tiled.wgsl", "t64x64", (64, 64)),
     ("generated/matmul_tiled.wgsl", "t128x128_at_db", (128, 128))],
)  # fmt: skip
@pytest.mark.parametrize("a_k,b_n", [(1, 1), (1, 0), (0, 1), (0, 0)])
@pytest.mark.parametrize("n", [64, 44])
def test_matmul_with_row_sums_of_a(shader, entry, tile, a_k, b_n, n):
    """With row_sums, B is read with a column of ones after its last (a grid one column of
    tiles wider where n fills its tiles): the product as usual and, at binding 5, the m
    row sums of A (a Linear layer's bias gradient beside its weight gradient)."""
    m, k = 68, 36
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    a_store, (a_rs, a_cs) = (a, (k, 1)) if a_k else (np.ascontiguousarray(a.T), (1, m))
    b_store, (b_rs, b_cs) = (b, (n, 1)) if b_n else (np.ascontiguousarray(b.T), (1, k))
    p = mm_params(m, n, k, a_rs, a_cs, b_rs, b_cs, 0, row_sums=1)
    groups = (-(-(n + 1) // tile[1]), -(-m // tile[0]), 1)
    consts = {"A_K_CONTIG": a_k, "B_N_CONTIG": b_n}
    sums0 = np.full(m, np.nan, np.float32)
    got, (sums, _) = run(shader, entry, p, [a_store, b_store], m * n, None, groups, consts, rw=[sums0, None])
    a64 = a.astype(np.float64)
    np.testing.assert_allclose(got.reshape(m, n), a64 @ b, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(sums, a64.sum(1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("entry", ["main64", "t64x64"])
@pytest.mark.parametrize("a_k,b_n", [(1, 1), (0, 0)])
def test_matmul_reads_packed_float16_operands(entry, a_k, b_n):
    """With a_half/b_half/bias_half = 1, A, B and the bias are float16 two to a word (the
    host's byte order: NumPy's float16 array as words) and each value is converted exactly:
    the float32 product of the same values; with c_half = 1 the results are written rounded
    to float16 (to nearest even, as NumPy rounds) and packed."""
    shader = "matmul_vec4.wgsl" if entry == "main64" else "generated/matmul_tiled.wgsl"
    m, k, n = 68, 36, 72
    a = rng.standard_normal((m, k)).astype(np.float16)
    b = rng.standard_normal((k, n)).astype(np.float16)
    bias = rng.standard_normal(n).astype(np.float16)
    a_store, (a_rs, a_cs) = (a, (k, 1)) if a_k else (np.ascontiguousarray(a.T), (1, m))
    b_store, (b_rs, b_cs) = (b, (n, 1)) if b_n else (np.ascontiguousarray(b.T), (1, k))
    words = lambda h: np.frombuffer(np.ascontiguousarray(h).tobytes(), np.float32)  # noqa: E731
    p = mm_params(m, n, k, a_rs, a_cs, b_rs, b_cs, 0, halves=(1, 1, 1, 0))
    groups = ((n + 63) // 64, (m + 63) // 64, 1)
    consts = {"A_K_CONTIG": a_k, "B_N_CONTIG": b_n}
    got = run(shader, entry, p, [words(a_store), words(b_store)], m * n, words(bias), groups, consts)
    want = a.astype(np.float64) @ b.astype(np.float64) + bias.astype(np.float64)
    np.testing.assert_allclose(got.reshape(m, n), want, rtol=1e-5, atol=1e-5)
    # the same values as float32 words: the same bits
    p32 = mm_params(m, n, k, a_rs, a_cs, b_rs, b_cs, 0)
    f32 = run(
        shader, entry, p32, [a_store.astype(np.float32), b_store.astype(np.float32)], m * n,
        bias.astype(np.float32), groups, consts,
    )  # fmt: skip
    np.testing.assert_array_equal(got, f32)
    # C written packed: those results rounded to float16, two to a word
    p16 = mm_params(m, n, k, a_rs, a_cs, b_rs, b_cs, 0, halves=(1, 1, 1, 1))
    packed = run(
        shader, entry, p16, [words(a_store), words(b_store)], m * n // 2, words(bias), groups, consts
    )
    np.testing.assert_array_equal(packed.view(np.uint16), f32.astype(np.float16).view(np.uint16))


# the generated kernels: name -> tile (rows, columns of C per workgroup)
TILED = {
    "t64x64": (64, 64),
    "t64x64_db": (64, 64),
    "t128x64": (128, 64),
    "t64x128": (64, 128),
    "t128x128": (128, 128),
    "t128x128_db": (128, 128),
    "t128x128_k16": (128, 128),
    "t128x128_at": (128, 128),
    "t128x128_at_db": (128, 128),
}


@pytest.mark.parametrize("entry", TILED)
@pytest.mark.parametrize("a_k,b_n", [(1, 1), (1, 0), (0, 1), (0, 0)])
def test_matmul_tiled_kernels_every_layout(a_k, b_n, entry):
    """The generated kernels (scripts/gen_matmul_tiled.py), each tile shape on each operand
    layout, with a bias and an epilogue (each activation in turn across the cases)."""
    acts = sorted(EPILOGUES)
    act = acts[(list(TILED).index(entry) * 4 + 2 * a_k + b_n) % len(acts)]
    # multiples of 4 that cross every tile and k-slice edge
    _vec4_matmul_case("generated/matmul_tiled.wgsl", entry, TILED[entry], a_k, b_n, act, 140, 44, 204)


def test_every_generated_kernel_is_tested():
    import re

    src = (SHADERS / "generated" / "matmul_tiled.wgsl").read_text()
    entries = re.findall(r"@compute @workgroup_size\(16, 16\)\nfn (\w+)\(", src)
    assert sorted(entries) == sorted(TILED)


@pytest.mark.parametrize("op,ref", [(0, np.sum), (1, np.max), (2, np.min), (4, np.mean)])
def test_reduce_kernel(op, ref):
    x = rng.standard_normal((3, 1000, 2)).astype(np.float32)
    p = np.array([3, 1000, 2, op, 6, 0, 0, 0], np.uint32).tobytes()
    got = run("reduce.wgsl", "main", p, [x], 6, None, (6, 1, 1))
    np.testing.assert_allclose(got, ref(x, axis=1).ravel(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("op,ref", [(0, np.sum), (4, np.mean)])
def test_reduce_cols_kernel(op, ref):
    """The column kernel: 16 columns per workgroup, the grid folded into rows of 3."""
    x = rng.standard_normal((3, 70, 37)).astype(np.float32)
    blocks = 3 * ((37 + 15) // 16)  # 9 workgroups, as 3 rows of 3
    p = np.array([3, 70, 37, op, 3, 0, 0, 0], np.uint32).tobytes()
    got = run("reduce.wgsl", "cols_main", p, [x], 3 * 37, None, (3, blocks // 3, 1))
    np.testing.assert_allclose(got, ref(x, axis=1).ravel(), rtol=1e-5, atol=1e-5)


def test_reduce_kernel_argmax():
    x = rng.standard_normal((4, 777)).astype(np.float32)
    p = np.array([4, 777, 1, 3, 4, 0, 0, 0], np.uint32).tobytes()
    got = run("reduce.wgsl", "main", p, [x], 4, None, (4, 1, 1))
    np.testing.assert_array_equal(got.astype(np.int64), x.argmax(1))


def philox_numpy(counter, key):
    """Philox4x32-10 written from the Random123 paper, in NumPy (an independent reference)."""
    c = [np.uint64(v) for v in counter]
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    m32 = np.uint64(0xFFFFFFFF)
    for r in range(10):
        p0 = np.uint64(0xD2511F53) * c[0]
        p1 = np.uint64(0xCD9E8D57) * c[2]
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k0, p1 & m32, (p0 >> np.uint64(32)) ^ c[3] ^ k1, p0 & m32]
        if r < 9:
            k0 = (k0 + np.uint64(0x9E3779B9)) & m32
            k1 = (k1 + np.uint64(0xBB67AE85)) & m32
    return [int(v) for v in c]


def test_gather_kernel_and_its_backward():
    """main: out[o, k, c] = x[o, idx[k], c] from an offset view; scatter_sum_main: the
    backward, each source row the sum of the gradient rows that took it (CSR lists from the
    host), zero where none did, against NumPy's np.add.at."""
    outer, size, inner = 3, 7, 5
    x = rng.standard_normal(2 + outer * size * inner).astype(np.float32)
    idx = np.array([6, 0, 0, 3, 6, 6], np.uint32)
    n = outer * idx.size * inner
    params = np.array([n, idx.size, size, inner, 128, 2, 0, 0], np.uint32).tobytes()
    got = run("gather.wgsl", "main", params, [x], n, idx, (2, 1, 1))
    view = x[2:].reshape(outer, size, inner)
    np.testing.assert_array_equal(got, view[:, idx.astype(np.int64)].ravel())
    g = rng.standard_normal(1 + n).astype(np.float32)  # gradient of the gather, offset 1
    offsets = np.concatenate([[0], np.cumsum(np.bincount(idx, minlength=size))]).astype(np.uint32)
    rows = np.argsort(idx, kind="stable").astype(np.uint32)
    n_out = outer * size * inner
    params = np.array([n_out, idx.size, size, inner, 128, 1, size + 1, 0], np.uint32).tobytes()
    got = run(
        "gather.wgsl", "scatter_sum_main", params, [g], n_out, np.concatenate([offsets, rows]), (2, 1, 1)
    )
    want = np.zeros((outer, size, inner), np.float64)
    np.add.at(want, (slice(None), idx.astype(np.int64)), g[1:].reshape(outer, idx.size, inner))
    np.testing.assert_allclose(got, want.ravel(), rtol=1e-6, atol=1e-6)


# shaders this harness cannot run, and where they are tested instead
NOT_HERE = {
    # wgpu-py requests no experimental feature, and the kernel needs the cooperative-matrix
    # extension: naga validates it in `cargo test --test shaders`, and
    # tests/test_gpu.py::test_float16_products_on_tensor_cores_match_float32 runs it where
    # the adapter has tensor cores
    "matmul_coop.wgsl",
}


def test_every_shader_entry_point_is_run_here():
    """The independent harness covers each file in shaders/ and each of its entry points."""
    import re

    src = Path(__file__).read_text()
    for f in sorted([*SHADERS.glob("*.wgsl"), *SHADERS.glob("generated/*.wgsl")]):
        if "@compute" not in f.read_text() or f.name in NOT_HERE:
            continue  # a prelude (common.wgsl, the generated op functions), tested through its users
        name = f.relative_to(SHADERS).as_posix()
        assert f'"{name}"' in src, f"{name} has no wgpu-py test"
        for entry in re.findall(r"@compute[^\n]*\n\s*fn (\w+)\(", f.read_text()):
            assert f'"{entry}"' in src, f"{f.name}: entry point {entry} has no wgpu-py test"


def test_philox_known_answer_in_numpy_reference():
    assert philox_numpy([0, 0, 0, 0], [0, 0]) == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]


def test_dropout_mask_kernel_matches_philox():
    n, start, seed, p = 300, 6, 0x1234_5678_9ABC, 0.3
    thr = int(p * 2**32)
    params = np.array([n, thr, seed & 0xFFFFFFFF, seed >> 32, start, 0, 320, 0], np.uint32).tobytes()
    params += np.array([2.0, 0.0, 0.0, 0.0], np.float32).tobytes()
    got = run("dropout.wgsl", "mask_main", params, [], n, None, (5, 1, 1))
    want = []
    for i in range(start, start + n):
        r = philox_numpy([i // 4, 0, 0, 0], [seed & 0xFFFFFFFF, seed >> 32])
        want.append(2.0 if r[i % 4] >= thr else 0.0)
    np.testing.assert_array_equal(got, np.array(want, np.float32))
    # the fused entry: the same mask into binding 5, and alpha-dropout's affine output
    params = np.array([n, thr, seed & 0xFFFFFFFF, seed >> 32, start, 0, 320, 0], np.uint32).tobytes()
    params += np.array([1.5, 0.25, -0.75, 0.0], np.float32).tobytes()
    x = rng.standard_normal(n).astype(np.float32)
    keep = np.array(want) != 0
    out, (scale, _) = run(
        "dropout.wgsl", "main", params, [x], n, None, (5, 1, 1), rw=[np.zeros(n, np.float32), None]
    )
    np.testing.assert_array_equal(scale[:n], np.where(keep, 1.5, 0.0).astype(np.float32))
    np.testing.assert_allclose(out, np.where(keep, x * 1.5 + 0.25, -0.75), rtol=1e-6)


def test_log_softmax_kernel():
    x = (rng.standard_normal((5, 700)) * 4).astype(np.float32)
    p = np.array([5, 700, 5, 0, 0, 0, 0, 0], np.uint32).tobytes()
    got = run("softmax.wgsl", "log_softmax_main", p, [x], x.size, None, (5, 1, 1)).reshape(5, 700)
    m = x.max(1, keepdims=True)
    want = x - m - np.log(np.exp(x - m).sum(1, keepdims=True))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def sm_params(rows, cols, row, smoothing=0.0, g_scale=1.0, g_per_row=0):
    return (
        np.array([rows, cols, row, 0], np.uint32).tobytes()
        + np.array([smoothing, g_scale], np.float32).tobytes()
        + np.array([g_per_row, 0], np.uint32).tobytes()
    )


def test_cross_entropy_kernels_forward_and_backward():
    rows, cols, eps = 6, 300, 0.1
    x = (rng.standard_normal((rows, cols)) * 3).astype(np.float32)
    y = rng.integers(0, cols, rows).astype(np.uint32)
    saved0 = np.zeros(3 * rows, np.float32)  # each row's max, log-sum and label
    loss, (saved, _) = run(
        "softmax.wgsl",
        "xent_main",
        sm_params(rows, cols, rows, eps),
        [x],
        rows,
        y,
        (rows, 1, 1),
        rw=[saved0, None],
    )
    xd = x.astype(np.float64)
    lse = np.log(np.exp(xd - xd.max(1, keepdims=True)).sum(1)) + xd.max(1)
    want = lse - (1 - eps) * xd[np.arange(rows), y] - eps * xd.mean(1)
    np.testing.assert_allclose(loss, want, rtol=1e-5, atol=1e-5)
    # backward of the mean: (softmax - w) / rows, reading the saved max, log-sum and labels
    g = np.array([2.0], np.float32)
    p = sm_params(rows, cols, 64 * 29, eps, 1.0 / rows, 0)
    dx = run("softmax.wgsl", "xent_grad_main", p, [x, g], rows * cols, saved, (29, 1, 1))
    w = np.full((rows, cols), eps / cols)
    w[np.arange(rows), y] += 1 - eps
    want_dx = (np.exp(xd - lse[:, None]) - w) * 2.0 / rows
    np.testing.assert_allclose(dx.reshape(rows, cols), want_dx, rtol=1e-5, atol=1e-6)


def bn_params(n, c, flags, row, eps=1e-5, momentum=0.1):
    # the last eight words are the fused dropout's (keep_scale, threshold, seed, start), unused
    return (
        np.array([n, c, flags, row], np.uint32).tobytes()
        + np.array([eps, momentum, n / (n - 1), 1], np.float32).tobytes()
        + np.zeros(8, np.uint32).tobytes()
    )


def test_batchnorm_kernels_forward_and_backward():
    n, c = 37, 70
    x = (rng.standard_normal((n, c)) * 2 + 1).astype(np.float32)
    gamma = rng.standard_normal(c).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32)
    rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)
    groups = ((c + 15) // 16, 1, 1)  # 16 features per workgroup
    stats, (rm2, rv2) = run(
        "batchnorm.wgsl",
        "stats_main",
        bn_params(n, c, 7, groups[0]),
        [x, gamma],
        4 * c,
        beta,
        groups,
        rw=[rm, rv],
    )
    xd = x.astype(np.float64)
    mean, var = xd.mean(0), xd.var(0)
    np.testing.assert_allclose(rm2[:c], 0.1 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv2[:c], 0.9 + 0.1 * xd.var(0, ddof=1), rtol=1e-5)
    y = run("batchnorm.wgsl", "norm_main", bn_params(n, c, 7, 64 * 41), [x, stats], n * c, None, (41, 1, 1))
    xhat = (xd - mean) / np.sqrt(var + 1e-5)
    np.testing.assert_allclose(y.reshape(n, c), xhat * gamma + beta, rtol=1e-4, atol=1e-4)
    g = rng.standard_normal((n, c)).astype(np.float32)
    coef, (dgamma, dbeta) = run(
        "batchnorm.wgsl",
        "grad_reduce_main",
        bn_params(n, c, 7, groups[0]),
        [g, x],
        6 * c,
        stats,
        groups,
        rw=[np.zeros(c, np.float32), np.zeros(c, np.float32)],
    )
    np.testing.assert_allclose(dgamma[:c], (g * xhat).sum(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dbeta[:c], g.sum(0), rtol=1e-4, atol=1e-4)
    dx = run("batchnorm.wgsl", "grad_x_main", bn_params(n, c, 7, 64 * 41), [g, x], n * c, coef, (41, 1, 1))
    k = gamma / np.sqrt(var + 1e-5) / n
    want = k * (n * g - g.sum(0) - xhat * (g * xhat).sum(0))
    np.testing.assert_allclose(dx.reshape(n, c), want, rtol=1e-4, atol=1e-4)
    # flag 16: relu fused after the normalization; the backward masks g where the output was cut
    y = run("batchnorm.wgsl", "norm_main", bn_params(n, c, 23, 64 * 41), [x, stats], n * c, None, (41, 1, 1))
    pre = xhat * gamma + beta
    np.testing.assert_allclose(y.reshape(n, c), np.maximum(pre, 0), rtol=1e-4, atol=1e-4)
    gm = g * (pre > 0)
    zeros = [np.zeros(c, np.float32), np.zeros(c, np.float32)]
    coef, (dgamma, dbeta) = run(
        "batchnorm.wgsl",
        "grad_reduce_main",
        bn_params(n, c, 23, groups[0]),
        [g, x],
        6 * c,
        stats,
        groups,
        rw=zeros,
    )
    np.testing.assert_allclose(dgamma[:c], (gm * xhat).sum(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dbeta[:c], gm.sum(0), rtol=1e-4, atol=1e-4)
    dx = run("batchnorm.wgsl", "grad_x_main", bn_params(n, c, 23, 64 * 41), [g, x], n * c, coef, (41, 1, 1))
    want = k * (n * gm - gm.sum(0) - xhat * (gm * xhat).sum(0))
    np.testing.assert_allclose(dx.reshape(n, c), want, rtol=1e-4, atol=1e-4)
    # grad_main: both steps in one dispatch, the same bits as the two kernels
    dx1, (dgamma1, dbeta1) = run(
        "batchnorm.wgsl",
        "grad_main",
        bn_params(n, c, 23, groups[0]),
        [g, x],
        n * c,
        stats,
        groups,
        rw=[np.zeros(c, np.float32), np.zeros(c, np.float32)],
    )
    np.testing.assert_array_equal(dx1, dx)
    np.testing.assert_array_equal(dgamma1[:c], dgamma[:c])
    np.testing.assert_array_equal(dbeta1[:c], dbeta[:c])


def run_group1(shader: str, entry: str, params: bytes, buffers, groups):
    """Dispatches `entry` of `shader` in the multi-tensor layout (runtime/multi.rs): group 0
    binding 0 the uniform params, group 1 bindings 0, 1, ... read-write `buffers`. Returns
    every buffer's contents after the dispatch."""
    dev = DEVICE
    cs = wgpu.ShaderStage.COMPUTE
    uniform, storage = wgpu.BufferBindingType.uniform, wgpu.BufferBindingType.storage
    l0 = dev.create_bind_group_layout(entries=[{"binding": 0, "visibility": cs, "buffer": {"type": uniform}}])
    l1 = dev.create_bind_group_layout(
        entries=[{"binding": i, "visibility": cs, "buffer": {"type": storage}} for i in range(len(buffers))]
    )
    pipeline = dev.create_compute_pipeline(
        layout=dev.create_pipeline_layout(bind_group_layouts=[l0, l1]),
        compute={"module": dev.create_shader_module(code=source(shader)), "entry_point": entry},
    )
    pbuf = dev.create_buffer_with_data(data=params, usage=BU.UNIFORM)
    bufs = [
        dev.create_buffer_with_data(data=np.ascontiguousarray(b).tobytes(), usage=BU.STORAGE | BU.COPY_SRC)
        for b in buffers
    ]
    enc = dev.create_command_encoder()
    cp = enc.begin_compute_pass()
    cp.set_pipeline(pipeline)
    cp.set_bind_group(
        0, dev.create_bind_group(layout=l0, entries=[{"binding": 0, "resource": {"buffer": pbuf}}])
    )
    entries = [{"binding": i, "resource": {"buffer": b}} for i, b in enumerate(bufs)]
    cp.set_bind_group(1, dev.create_bind_group(layout=l1, entries=entries))
    cp.dispatch_workgroups(*groups)
    cp.end()
    dev.queue.submit([enc.finish()])
    return [np.frombuffer(dev.queue.read_buffer(b), np.float32).copy() for b in bufs]


@pytest.mark.parametrize("flags", [7, 7 | 16, 3 | 16 | 32, 8 | 3, 4, 7 | 16 | 32 | 64, 8 | 64])
def test_batchnorm_forward_in_one_dispatch_gives_the_two_kernels_bits(flags):
    """forward_main (batchnorm_fused.wgsl, group 1 of the multi-tensor layout) writes the
    same y, statistics and running statistics, bit for bit, as stats_main then norm_main:
    training with the running-stat update, with the fused relu, with relu and dropout, in
    eval (flag 8), without gamma and beta, and with a residual block's shortcut added last
    (flag 64: norm_main reads it at binding 4, forward_main at group 1's binding 7)."""
    n, c = 37, 21  # a partial second workgroup of 16 features
    x = (rng.standard_normal((n, c)) * 2 + 1).astype(np.float32)
    gamma = rng.standard_normal(c).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32)
    rm = rng.standard_normal(c).astype(np.float32)
    rv = (np.abs(rng.standard_normal(c)) + 0.5).astype(np.float32)
    groups = ((c + 15) // 16, 1, 1)
    params = bytearray(bn_params(n, c, flags, groups[0]))
    params[28:32] = np.float32(1 / 0.8).tobytes()  # dropout: keep_scale
    params[32:36] = np.uint32(int(0.2 * 2**32)).tobytes()  # threshold
    params[36:40] = np.uint32(12345).tobytes()  # seed
    params = bytes(params)
    stats, (rm2, rv2) = run(
        "batchnorm.wgsl", "stats_main", params, [x, gamma], 4 * c, beta, groups, rw=[rm, rv]
    )
    norm_params = bytearray(params)
    norm_params[12:16] = np.uint32(64 * 41).tobytes()  # row: threads per grid row
    skip = rng.standard_normal((n, c)).astype(np.float32)
    extra = skip if flags & 64 else None
    y = run(
        "batchnorm.wgsl", "norm_main", bytes(norm_params), [x, stats], n * c, extra, (-(-n * c // 64), 1, 1)
    )
    got = run_group1(
        "batchnorm_fused.wgsl",
        "forward_main",
        params,
        [x, gamma, beta, np.zeros(n * c, np.float32), np.zeros(4 * c, np.float32), rm, rv, skip],
        groups,
    )
    for name, want, have in [
        ("y", y, got[3]),
        ("stats", stats[: 4 * c], got[4]),
        ("rm", rm2[:c], got[5]),
        ("rv", rv2[:c], got[6]),
    ]:
        assert np.array_equal(want.view(np.uint32), have.view(np.uint32)), name
    if flags & 4:
        assert not np.array_equal(rm2[:c], rm), "the running mean moved"
    if flags & 32 and not flags & 64:
        assert (y == 0).mean() > 0.1, "dropout dropped some"
    if flags & 64:
        no_skip = run(
            "batchnorm.wgsl",
            "norm_main",
            bytes(norm_params[:8]) + np.uint32(flags & ~64).tobytes() + bytes(norm_params[12:]),
            [x, stats],
            n * c,
            None,
            (-(-n * c // 64), 1, 1),
        )
        assert np.array_equal(y, skip.ravel() + no_skip), "the shortcut added last"


def opt_params(n, flags, lr, a, b, eps, wd, decay=1.0, step_size=0.0, sqrt_bc2=1.0):
    row = ((n + 63) // 64) * 64
    return (
        np.array([n, row, flags, 0], np.uint32).tobytes()
        + np.array([lr, a, b, eps, wd, decay, step_size, sqrt_bc2], np.float32).tobytes()
    )


def test_optimizer_kernels_match_numpy():
    n = 100
    w = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    s1 = rng.standard_normal(n).astype(np.float32)
    s2 = np.abs(rng.standard_normal(n)).astype(np.float32)
    groups = ((n + 63) // 64, 1, 1)
    # SGD, Nesterov momentum 0.9, dampening 0, weight decay 0.01
    out, (buf, _) = run(
        "optim.wgsl",
        "sgd_main",
        opt_params(n, 1 | 4, 0.1, 0.9, 1.0, 0, 0.01),
        [g],
        n,
        None,
        groups,
        out_init=w,
        rw=[s1, None],
    )
    d = g + 0.01 * w
    nb = 0.9 * s1 + d
    np.testing.assert_allclose(buf[:n], nb, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out, w - 0.1 * (d + 0.9 * nb), rtol=1e-6, atol=1e-6)
    # AdamW at step 3: decay 1 - lr wd, bias corrections
    lr, b1, b2, eps, wd, t = 1e-2, 0.9, 0.999, 1e-8, 0.1, 3
    bc1, bc2 = 1 - b1**t, 1 - b2**t
    p = opt_params(n, 0, lr, b1, b2, eps, 0.0, 1 - lr * wd, lr / bc1, np.sqrt(bc2))
    out, (m, v) = run("optim.wgsl", "adam_main", p, [g], n, None, groups, out_init=w, rw=[s1, s2])
    wm, wv = b1 * s1 + (1 - b1) * g, b2 * s2 + (1 - b2) * g * g
    np.testing.assert_allclose(m[:n], wm, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v[:n], wv, rtol=1e-5, atol=1e-6)
    want = w * (1 - lr * wd) - lr / bc1 * wm / (np.sqrt(wv) / np.sqrt(bc2) + eps)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    # centered RMSprop with momentum: the average first, then the update reading it
    alpha, mu = 0.99, 0.5
    s1, s2 = 0.1 * s1, s2 + 1.0  # a variance estimate that stays positive
    ga = run(
        "optim.wgsl",
        "rmsprop_gavg_main",
        opt_params(n, 3, 0.01, alpha, mu, 1e-8, 0.0),
        [g, w],
        n,
        None,
        groups,
        out_init=s1,
    )
    np.testing.assert_allclose(ga, alpha * s1 + (1 - alpha) * g, rtol=1e-5, atol=1e-6)
    out, (sq, mb) = run(
        "optim.wgsl",
        "rmsprop_main",
        opt_params(n, 3, 0.01, alpha, mu, 1e-8, 0.0),
        [g, ga],
        n,
        None,
        groups,
        out_init=w,
        rw=[s2, s1],
    )
    wsq = alpha * s2 + (1 - alpha) * g * g
    wb = mu * s1 + g / (np.sqrt(wsq - ga * ga) + 1e-8)
    np.testing.assert_allclose(sq[:n], wsq, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mb[:n], wb, rtol=1e-4, atol=1e-5)
    assert np.isfinite(wb).all()
    np.testing.assert_allclose(out, w - 0.01 * wb, rtol=1e-5, atol=1e-5)
    # Adadelta with weight decay: the squared-gradient and squared-step averages
    rho, eps, wd = 0.9, 1e-6, 0.05
    sa, acc = np.abs(s1) + 0.01, np.abs(s2)
    out, (sq, ad) = run(
        "optim.wgsl",
        "adadelta_main",
        opt_params(n, 0, 0.5, rho, 0.0, eps, wd),
        [g],
        n,
        None,
        groups,
        out_init=w,
        rw=[sa, acc],
    )
    d = g + wd * w
    wsq = rho * sa + (1 - rho) * d * d
    delta = np.sqrt(acc + eps) / np.sqrt(wsq + eps) * d
    np.testing.assert_allclose(sq[:n], wsq, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ad[:n], rho * acc + (1 - rho) * delta * delta, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out, w - 0.5 * delta, rtol=1e-5, atol=1e-5)


def test_amp_update_moves_the_scale_as_pytorchs_update_scale():
    """amp_update_main (GradScaler.update on the device): the state (scale, 1 / scale, clean
    steps, unused) backs off on a found inf, counts a clean step, grows after `interval`
    clean steps, and keeps a scale whose growth would overflow float32 (PyTorch's
    _amp_update_scale_)."""
    growth, backoff, interval = 2.0, 0.5, 3
    params = opt_params(1, 0, growth, backoff, float(interval), 1 / growth, 1 / backoff)
    big = np.float32(2.0**127)
    cases = [
        # (found, state in, state out)
        (1.0, [1024.0, 1 / 1024, 2.0, 0.0], [512.0, 1 / 512, 0.0, 0.0]),
        (np.inf, [8.0, 0.125, 1.0, 0.0], [4.0, 0.25, 0.0, 0.0]),
        (0.0, [1024.0, 1 / 1024, 0.0, 0.0], [1024.0, 1 / 1024, 1.0, 0.0]),
        (0.0, [1024.0, 1 / 1024, 2.0, 0.0], [2048.0, 1 / 2048, 0.0, 0.0]),
        (0.0, [big, 1 / big, 2.0, 0.0], [big, 1 / big, 0.0, 0.0]),
    ]
    for found, state, want in cases:
        out = run(
            "optim.wgsl",
            "amp_update_main",
            params,
            [np.array([found], np.float32)],
            4,
            out_init=np.array(state, np.float32),
        )
        np.testing.assert_array_equal(out, np.array(want, np.float32), err_msg=str((found, state)))


def _im2col_numpy(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, pad_value, outside):
    """The unfold kernel's specification in NumPy: rows (n, oy, ox), columns (c, i, j)."""
    n, c, h, w = x.shape
    out = np.empty((n * oh * ow, c * kh * kw), np.float32)
    for r in range(n * oh * ow):
        img, oy, ox = r // (oh * ow), (r // ow) % oh, r % ow
        k = 0
        for ch in range(c):
            for i in range(kh):
                for j in range(kw):
                    y, xx = oy * sh + i * dh - ph, ox * sw + j * dw - pw
                    if 0 <= y < h and 0 <= xx < w:
                        out[r, k] = x[img, ch, y, xx]
                    elif y < h + ph and xx < w + pw:
                        out[r, k] = pad_value
                    else:
                        out[r, k] = outside
                    k += 1
    return out


def test_conv_unfold_and_fold_kernels():
    """conv.wgsl: unfold (im2col, with padding and past-the-padding values, stride and
    dilation) and fold, its adjoint, against NumPy."""
    n, c, h, w = 2, 3, 5, 6
    kh, kw, sh, sw, ph, pw, dh, dw = 2, 3, 2, 1, 1, 2, 1, 2
    oh, ow = 3, 4
    x = rng.standard_normal(3 + n * c * h * w).astype(np.float32)  # offset 3
    total = n * oh * ow * c * kh * kw
    words = [n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, total, 128, 3, 0]
    params = np.array(words, np.uint32).tobytes() + np.array([-7.0, 9.0], np.float32).tobytes()
    got = run("conv.wgsl", "unfold_main", params, [x], total, None, (2, -(-total // 128), 1))
    xi = x[3:].reshape(n, c, h, w)
    want = _im2col_numpy(xi, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, -7.0, 9.0)
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    # fold: <unfold(x), g> = <x, fold(g)> with zero padding
    g = rng.standard_normal(1 + total).astype(np.float32)  # offset 1
    n_in = n * c * h * w
    words = [n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, n_in, 128, 1, 0]
    params = np.array(words, np.uint32).tobytes() + np.array([0.0, 0.0], np.float32).tobytes()
    back = run("conv.wgsl", "fold_main", params, [g], n_in, None, (2, -(-n_in // 128), 1))
    zero_pad = _im2col_numpy(xi, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, 0.0, 0.0)
    assert float((zero_pad.ravel().astype(np.float64) * g[1:]).sum()) == pytest.approx(
        float((xi.ravel().astype(np.float64) * back).sum()), rel=1e-5
    )


def test_max_pool_kernels_find_the_first_maximum_and_route_the_gradient_back():
    """conv.wgsl: max_pool_main (each channel's windows with padding, stride, dilation and
    a ceil_mode overhang; ties and NaN at their first place) and max_unpool_main (each
    input element sums the gradients of the windows whose maximum it is), against NumPy."""
    n, c, h, w = 2, 3, 5, 6
    kh, kw, sh, sw, ph, pw, dh, dw = 3, 2, 2, 1, 1, 1, 1, 2
    oh = (h + 2 * ph - dh * (kh - 1) - 1 + sh - 1) // sh + 1  # ceil_mode
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    xi = rng.integers(-3, 3, (n, c, h, w)).astype(np.float32)  # small integers: ties
    xi[0, 1, 2, 3] = np.nan
    x = np.concatenate([np.zeros(4, np.float32), xi.ravel()])  # offset 4
    total = n * c * oh * ow
    words = [n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, total, 128, 4, 0]
    params = np.array(words, np.uint32).tobytes() + np.array([-np.inf, -np.inf], np.float32).tobytes()
    got, (arg, _) = run(
        "conv.wgsl",
        "max_pool_main",
        params,
        [x],
        total,
        None,
        (2, -(-total // 128), 1),
        rw=[np.zeros(total, np.float32), None],
    )
    want = np.full((n, c, oh, ow), -np.inf, np.float32)
    where = np.full((n, c, oh, ow), -1.0, np.float32)
    for img, ch, oy, ox in np.ndindex(n, c, oh, ow):
        for i in range(kh):
            for j in range(kw):
                y, xx = oy * sh + i * dh - ph, ox * sw + j * dw - pw
                if not (0 <= y < h and 0 <= xx < w):
                    continue
                v, best = xi[img, ch, y, xx], want[img, ch, oy, ox]
                if where[img, ch, oy, ox] < 0 or (not np.isnan(best) and (v > best or np.isnan(v))):
                    want[img, ch, oy, ox], where[img, ch, oy, ox] = v, y * w + xx
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    np.testing.assert_array_equal(arg[:total].reshape(want.shape), where)
    g = rng.standard_normal(2 + total).astype(np.float32)  # offset 2
    n_in = n * c * h * w
    words = [n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, n_in, 128, 2, 0]
    params = np.array(words, np.uint32).tobytes() + np.array([-np.inf, -np.inf], np.float32).tobytes()
    back = run("conv.wgsl", "max_unpool_main", params, [g, arg[:total]], n_in, None, (2, -(-n_in // 128), 1))
    dx = np.zeros((n * c, h * w), np.float64)
    for k, at in enumerate(where.ravel()):
        if at >= 0:
            dx[k // (oh * ow), int(at)] += g[2 + k]
    np.testing.assert_allclose(back, dx.ravel(), rtol=1e-6, atol=1e-6)


def test_conv_gemm_kernel_is_the_im2col_product():
    """conv_gemm.wgsl: the windows (stride, zero padding, dilation, offsets into the input
    and the weight) times the weight transposed plus the bias, against NumPy's im2col
    product, written as (n, oc, oh, ow); 70 rows and 5 channels leave partial 64 x 64
    tiles."""
    n, c, h, w, oc = 2, 3, 7, 8, 5
    kh, kw, sh, sw, ph, pw, dh, dw = 3, 2, 1, 2, 1, 1, 2, 1
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    m, k = n * oh * ow, c * kh * kw
    x = rng.standard_normal(2 + n * c * h * w).astype(np.float32)  # offset 2
    wt = rng.standard_normal(1 + oc * k).astype(np.float32)  # offset 1
    bias = rng.standard_normal(oc).astype(np.float32)
    words = [n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, m, oc, k, 2, 1, 1]
    params = np.array(words, np.uint32).tobytes()
    got = run("conv_gemm.wgsl", "main", params, [x, wt], m * oc, bias, (1, -(-m // 64), 1))
    cols = _im2col_numpy(x[2:].reshape(n, c, h, w), kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, 0.0, 0.0)
    want = cols.astype(np.float64) @ wt[1:].reshape(oc, k).T.astype(np.float64) + bias
    # written in the (n, oc, oh, ow) order of the output tensor
    want = want.reshape(n, oh * ow, oc).transpose(0, 2, 1)
    np.testing.assert_allclose(got.reshape(n, oc, oh * ow), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", [1, 3, 5, 0, 4])
def test_reduce_short_kernel(op):
    """reduce.wgsl's short_main: one thread per output over a short axis (here 4 with a
    stride of 3), NaN winning and the first of tied maxima kept, as main does."""
    x = rng.standard_normal((50, 4, 3)).astype(np.float32)
    x[7, 2, 1] = np.nan
    x[9, :, 0] = 1.5  # a tie: argmax is the first
    p = np.array([50, 4, 3, op, 64 * 3, 0, 0, 0], np.uint32).tobytes()
    got = run("reduce.wgsl", "short_main", p, [x], 150, None, (3, 1, 1))
    if op in (3, 5):
        xs = np.where(np.isnan(x), np.inf if op == 3 else -np.inf, x)
        want = (xs.argmax(1) if op == 3 else xs.argmin(1)).ravel()
        np.testing.assert_array_equal(got.astype(np.int64), want)
    else:
        ref = {0: np.sum, 1: np.max, 4: np.mean}[op]
        np.testing.assert_allclose(got, ref(x, axis=1).ravel(), rtol=1e-5, atol=1e-6)


def _bf16_bits(x: np.ndarray) -> np.ndarray:
    """bfloat16 bits of float32 values, rounded to nearest even (NaN: the quiet NaN)."""
    b = x.view(np.uint32).astype(np.uint64)
    r = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint32) & 0xFFFF
    sign = (b >> 16).astype(np.uint32) & 0x8000
    return np.where(np.isnan(x), sign | 0x7FC0, r).astype(np.uint32)


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_half_pack_rounds_as_numpy_and_unpack_is_exact(dt):
    """half.wgsl: pack_main rounds float32 words to halves (ties to even, overflow to inf,
    subnormals) two to a word; unpack_main gives every one of the 65,536 patterns back as
    the float32 NumPy makes of it."""
    ties = [1 + 2.0**-11, 1 + 3 * 2.0**-11, 2.0**-24 * 1.5, 2.0**-24 * 2.5, 2.0**-25, 2.0**-25 * 3]
    edges = [65504.0, 65519.0, 65520.0, -70000.0, 1e-8, 6e-8, 6.1e-5, -0.0, np.inf, -np.inf, np.nan, 3.0e38]
    noise = (rng.standard_normal(2001) * 30).astype(np.float32)
    x = np.concatenate([np.array(ties + edges, np.float32), noise])
    x = np.concatenate([x, x * 2.0**-20, x * 2.0**-14])  # subnormal halves too
    n = len(x)  # odd: the last word's upper half is 0
    op = 0 if dt == "float16" else 1
    words = run(
        "half.wgsl", "pack_main", ew_params(n, op), [x], (n + 1) // 2, groups=((n + 1) // 2 // 64 + 1, 1, 1)
    ).view(np.uint32)
    got = np.stack([words & 0xFFFF, words >> 16], axis=1).reshape(-1)[:n]
    if dt == "float16":
        with np.errstate(over="ignore"):
            want = x.astype(np.float16).view(np.uint16).astype(np.uint32)
        nan = np.isnan(x)
        np.testing.assert_array_equal(got[~nan], want[~nan])
        assert ((got[nan] & 0x7C00) == 0x7C00).all() and (got[nan] & 0x3FF).all()
    else:
        np.testing.assert_array_equal(got, _bf16_bits(x))
    assert n % 2 == 1 and words[-1] >> 16 == 0

    patterns = np.arange(1 << 16, dtype=np.uint32)
    packed = (patterns[0::2] | (patterns[1::2] << 16)).view(np.float32)
    out = run(
        "half.wgsl", "unpack_main", ew_params(1 << 16, op), [packed], 1 << 16, groups=((1 << 16) // 64, 1, 1)
    ).view(np.uint32)
    if dt == "float16":
        want = patterns.astype(np.uint16).view(np.float16).astype(np.float32).view(np.uint32)
    else:
        want = patterns << 16
    np.testing.assert_array_equal(out, want)
