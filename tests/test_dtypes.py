"""uint8, int32, float16 and bfloat16 (issue 16): stored in their own width, computed in
int64 / float32 and converted back, with PyTorch's documented promotion, wraparound and
rounding. NumPy is the reference where it has the dtype (it computes float16 the same way:
in float32, rounded once)."""

from __future__ import annotations

import numpy as np
import pytest

import ferrograd as fg
import ferrograd.nn as nn
from ferrograd import DTypeError


def bf16_round(a: np.ndarray) -> np.ndarray:
    """float32 values rounded to bfloat16 (nearest, ties to even), as float32: the
    reference for bfloat16 storage (NumPy has no bfloat16)."""
    bits = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16
    out = rounded.astype(np.uint32).view(np.float32)
    return np.where(np.isnan(a), np.float32("nan"), out)


# ---------------------------------------------------------------- the dtypes themselves


@pytest.mark.parametrize(
    "dt,size,is_float,signed",
    [
        (fg.uint8, 1, False, False),
        (fg.int32, 4, False, True),
        (fg.float16, 2, True, True),
        (fg.bfloat16, 2, True, True),
    ],
)
def test_dtype_attributes(dt, size, is_float, signed):
    assert dt.itemsize == size
    assert dt.is_floating_point is is_float
    assert dt.is_signed is signed
    assert fg.zeros(3, dtype=dt).dtype == dt


def test_pytorch_aliases():
    assert fg.half is fg.float16 and fg.int is fg.int32
    assert fg.float is fg.float32 and fg.double is fg.float64 and fg.long is fg.int64
    # torch.bool: `mask = torch.zeros(n, dtype=torch.bool)` runs unchanged
    assert fg.bool is fg.bool_
    assert fg.zeros(2, dtype=fg.bool).dtype == fg.bool_
    assert fg.tensor([2, 0]).to(fg.bool).tolist() == [True, False]
    # not in __all__: a star import must not shadow the builtins
    assert not {"bool", "float", "int"} & set(fg.__all__)


@pytest.mark.parametrize(
    "np_dt,fg_dt", [(np.uint8, fg.uint8), (np.int32, fg.int32), (np.float16, fg.float16)]
)
def test_numpy_round_trip_keeps_dtype(np_dt, fg_dt):
    a = (np.arange(24) * 7 % 200).astype(np_dt).reshape(2, 3, 4)
    t = fg.from_numpy(a)
    assert t.dtype == fg_dt
    back = t.numpy()
    assert back.dtype == np_dt
    np.testing.assert_array_equal(back, a)
    # a non-contiguous view converts the elements it reaches
    np.testing.assert_array_equal(t.permute(2, 0, 1).numpy(), a.transpose(2, 0, 1))


def test_bfloat16_numpy_is_a_type_error_as_in_pytorch():
    t = fg.tensor([1.0, 2.0]).bfloat16()
    with pytest.raises(TypeError, match="bfloat16"):
        t.numpy()
    assert t.float().tolist() == [1.0, 2.0]
    assert "bfloat16" in repr(t)


# ---------------------------------------------------------------- integers


def test_uint8_arithmetic_wraps_like_pytorch():
    a = fg.tensor([250, 3, 7], dtype=fg.uint8)
    ref = np.array([250, 3, 7], np.uint8)
    for got, want in [
        (a + 10, ref + np.uint8(10)),
        (a - 8, ref - np.uint8(8)),
        (a * 2, ref * np.uint8(2)),
        (-a, (-ref.astype(np.int64)).astype(np.uint8)),
        (~a, ~ref),
        (a + a, ref + ref),
    ]:
        assert got.dtype == fg.uint8
        np.testing.assert_array_equal(got.numpy(), want)


def test_int32_wraps_at_32_bits():
    b = fg.tensor([1, 2, 3], dtype=fg.int32)
    got = b * 2**31
    assert got.dtype == fg.int32
    np.testing.assert_array_equal(got.numpy(), (np.array([1, 2, 3], np.int64) * 2**31).astype(np.int32))
    big = fg.tensor([2**31 - 1], dtype=fg.int32)
    assert (big + 1).tolist() == [-(2**31)]


def test_casts_between_integers_wrap():
    assert fg.tensor([300, -1, 256, 255]).byte().tolist() == [44, 255, 0, 255]
    assert fg.tensor([2**31, -(2**31) - 1]).int().tolist() == [-(2**31), 2**31 - 1]
    # floats truncate toward zero
    assert fg.tensor([1.7, 2.99, 0.2]).byte().tolist() == [1, 2, 0]
    assert fg.tensor([-1.7, 2.5]).int().tolist() == [-1, 2]


@pytest.mark.parametrize(
    "a,b,want",
    [
        # PyTorch's type-promotion table (torch.result_type)
        (fg.uint8, fg.int32, fg.int32),
        (fg.int32, fg.int64, fg.int64),
        (fg.bool_, fg.uint8, fg.uint8),
        (fg.uint8, fg.float16, fg.float16),
        (fg.int64, fg.bfloat16, fg.bfloat16),
        (fg.float16, fg.bfloat16, fg.float32),
        (fg.float16, fg.float32, fg.float32),
        (fg.bfloat16, fg.float64, fg.float64),
    ],
)
def test_promotion_of_dimensioned_operands(a, b, want):
    x, y = fg.ones(3, dtype=a), fg.ones(3, dtype=b)
    assert (x + y).dtype == want
    assert (y * x).dtype == want


def test_zero_dim_operands_do_not_widen_within_their_category():
    # PyTorch's documented examples (torch.result_type, "Type promotion")
    u8 = fg.ones(2, dtype=fg.uint8)
    i32 = fg.ones(2, dtype=fg.int32)
    assert (u8 + 5).dtype == fg.uint8
    assert (i32 + fg.tensor(1)).dtype == fg.int32  # a 0-d int64
    assert (i32 + 5.5).dtype == fg.float32
    assert (fg.ones(2) + fg.tensor(1.0, dtype=fg.float64)).dtype == fg.float32
    assert (i32 + fg.tensor(1.0, dtype=fg.float64)).dtype == fg.float64  # higher category
    h = fg.ones(2, dtype=fg.float16)
    assert (h * 0.5).dtype == fg.float16
    assert (h + fg.tensor(2.0)).dtype == fg.float16
    # both 0-d: the ordinary rule
    assert (fg.tensor(1, dtype=fg.uint8) + fg.tensor(1)).dtype == fg.int64


def test_integer_division_and_reductions_follow_pytorch():
    a = fg.tensor([250, 3, 7], dtype=fg.uint8)
    assert (a / 2).dtype == fg.float32
    np.testing.assert_allclose((a / 2).numpy(), [125.0, 1.5, 3.5])
    s = a.sum()
    assert s.dtype == fg.int64 and s.item() == 260  # sums do not wrap in uint8
    assert fg.ones(5, dtype=fg.int32).sum().dtype == fg.int64
    m = a.max()
    assert m.dtype == fg.uint8 and m.item() == 250
    assert a.argmax().item() == 0
    assert (a > 5).tolist() == [True, False, True]
    assert (a == fg.tensor([250, 0, 7])).tolist() == [True, False, True]


def test_in_place_integer_ops_wrap_and_refuse_floats():
    a = fg.tensor([255, 1], dtype=fg.uint8)
    a.add_(1)
    assert a.dtype == fg.uint8 and a.tolist() == [0, 2]
    a.mul_(200)
    assert a.tolist() == [0, 144]
    with pytest.raises(DTypeError, match="uint8"):
        a.add_(1.5)  # PyTorch: "result type Float can't be cast to ... Byte"


def test_int32_and_uint8_indices_select_like_int64():
    x = fg.arange(10) * 10
    for dt in (fg.int32, fg.uint8):
        idx = fg.tensor([0, 3, 9], dtype=dt)
        assert x[idx].tolist() == [0, 30, 90]
        y = fg.zeros(10)
        y[idx] = 1.0
        assert y.sum().item() == 3.0


def test_images_arrive_as_uint8():
    img = (np.arange(2 * 28 * 28) % 256).astype(np.uint8).reshape(2, 1, 28, 28)
    t = fg.from_numpy(img)
    assert t.dtype == fg.uint8
    x = t.float() / 255
    assert x.dtype == fg.float32
    np.testing.assert_allclose(x.numpy(), img.astype(np.float32) / 255, rtol=1e-6)
    both = fg.cat([t, t], dim=0)
    assert both.dtype == fg.uint8 and both.shape == (4, 1, 28, 28)


# ---------------------------------------------------------------- halves


def test_float16_storage_rounds_like_numpy():
    ties = [1 + 2.0**-11, 1 + 3 * 2.0**-11]  # halfway between two halves: to even
    edges = [65504.0, 65520.0, 1e-8, 6e-8, -0.0, np.inf, np.nan]  # max, overflow, subnormal
    vals = np.array([1.0, *ties, *edges], np.float32)
    got = fg.tensor(vals).half().numpy()
    with np.errstate(over="ignore"):  # 65520 rounds to inf, as it should
        want = vals.astype(np.float16)
    np.testing.assert_array_equal(got, want)


def test_bfloat16_storage_rounds_to_nearest_even():
    rng = np.random.default_rng(0)
    ties = np.array([1.0, 3.14159, 1 + 2.0**-8, 1 + 3 * 2.0**-8], np.float32)
    vals = np.concatenate([rng.standard_normal(200).astype(np.float32) * 100, ties])
    got = fg.tensor(vals).bfloat16().float().numpy()
    np.testing.assert_array_equal(got, bf16_round(vals))


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_float16_arithmetic_matches_numpy(op):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 7)).astype(np.float16)
    b = (rng.standard_normal((7,)) + 3).astype(np.float16)  # broadcast, away from 0
    fa, fb = fg.from_numpy(a), fg.from_numpy(b)
    got = getattr(fa, op)(fb)
    assert got.dtype == fg.float16
    want = getattr(np, {"add": "add", "sub": "subtract", "mul": "multiply", "div": "divide"}[op])(a, b)
    np.testing.assert_array_equal(got.numpy(), want)


def test_bfloat16_arithmetic_is_float32_rounded():
    rng = np.random.default_rng(2)
    a = bf16_round(rng.standard_normal(64).astype(np.float32))
    b = bf16_round(rng.standard_normal(64).astype(np.float32))
    fa, fb = fg.tensor(a).bfloat16(), fg.tensor(b).bfloat16()
    got = (fa * fb + fa).float().numpy()
    want = bf16_round(bf16_round(a * b) + a)
    np.testing.assert_array_equal(got, want)


def test_half_reductions_and_matmul_compute_in_float32():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((16, 32)).astype(np.float16)
    w = rng.standard_normal((32, 8)).astype(np.float16)
    fa, fw = fg.from_numpy(a), fg.from_numpy(w)
    mm = fa @ fw
    assert mm.dtype == fg.float16
    # float32 sums in another order may round to the neighbouring half: one half ulp apart
    want = (a.astype(np.float32) @ w.astype(np.float32)).astype(np.float16)
    np.testing.assert_allclose(mm.numpy().astype(np.float32), want.astype(np.float32), rtol=2**-10, atol=1e-3)
    s = fa.sum(dim=1)
    assert s.dtype == fg.float16
    np.testing.assert_allclose(s.numpy(), a.astype(np.float32).sum(1).astype(np.float16), rtol=1e-3)
    np.testing.assert_allclose(fa.exp().numpy(), np.exp(a.astype(np.float32)).astype(np.float16), rtol=1e-3)


def test_half_gradients_are_half_and_match_float32():
    rng = np.random.default_rng(4)
    x32 = rng.standard_normal((6, 5)).astype(np.float32)
    w32 = rng.standard_normal((5, 3)).astype(np.float32)
    grads = {}
    for dt in (fg.float32, fg.float16, fg.bfloat16):
        x = fg.tensor(x32).to(dt).requires_grad_()
        w = fg.tensor(w32).to(dt)
        (x @ w).tanh().sum().backward()
        assert x.grad.dtype == dt
        grads[dt] = x.grad.float().numpy()
    np.testing.assert_allclose(grads[fg.float16], grads[fg.float32], rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(grads[fg.bfloat16], grads[fg.float32], rtol=5e-2, atol=5e-2)


def test_module_half_trains_and_keeps_integer_buffers():
    fg.manual_seed(0)
    m = nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 3))
    m.half()
    assert all(p.dtype == fg.float16 for p in m.parameters())
    assert all(b.dtype in (fg.float16, fg.int64) for b in m.buffers())
    opt = fg.optim.Adam(m.parameters(), lr=1e-2)
    rng = np.random.default_rng(5)
    x = fg.tensor(rng.standard_normal((64, 8)).astype(np.float32)).half()
    y = fg.tensor((rng.standard_normal(64) > 0).astype(np.int64) + (rng.standard_normal(64) > 1))
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert loss.dtype == fg.float16
    assert all(p.grad.dtype == fg.float16 for p in m.parameters())
    assert losses[-1] < 0.7 * losses[0]
    bn = m[1]
    assert bn.running_mean.dtype == fg.float16
    assert float(bn.running_mean.float().abs().sum()) > 0  # the running statistics moved
    m.float()
    assert all(p.dtype == fg.float32 for p in m.parameters())


def _need_gpu():
    if not fg.gpu_available():
        pytest.skip("no gpu adapter")


def test_narrow_integers_stay_on_the_host_for_the_gpu():
    _need_gpu()
    u = fg.ones(3, dtype=fg.uint8).to("gpu")  # labels and images stay on the host, as int64 does
    assert str(u.device) == "cpu"
    g = fg.ones(3, device="gpu")
    assert str((g + u).device) == "gpu"


def test_gpu_rounds_halves_exactly_as_the_host():
    """The GPU keeps halves as float32 words rounded after every op; its rounding (integer
    arithmetic on the bits) gives NumPy's float16 and the bfloat16 reference, edges
    included: ties to even, overflow to inf, subnormals, -0, NaN."""
    _need_gpu()
    ties = [1 + 2.0**-11, 1 + 3 * 2.0**-11, 2.0**-24 * 1.5, 2.0**-24 * 2.5, 2.0**-25]
    edges = [65504.0, 65519.0, 65520.0, -70000.0, 1e-8, 6e-8, 6.1e-5, -0.0, np.inf, -np.inf, np.nan]
    rng = np.random.default_rng(8)
    vals = np.concatenate([np.array(ties + edges, np.float32), rng.standard_normal(300).astype(np.float32)])
    g = fg.tensor(vals).to("gpu")
    with np.errstate(over="ignore"):
        want16 = vals.astype(np.float16)
    np.testing.assert_array_equal(g.half().cpu().numpy(), want16)
    np.testing.assert_array_equal(g.bfloat16().cpu().float().numpy(), bf16_round(vals))
    np.testing.assert_array_equal(np.signbit(g.half().cpu().numpy()), np.signbit(want16))


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_gpu_halves_rest_two_to_a_word_and_keep_every_bit_pattern(dt):
    """A half tensor on the GPU takes half the memory of a float32 one (packed two to a
    32-bit word); every one of the 65,536 bit patterns survives the trip there and back,
    and through a kernel (unpacked to float32, packed again) every non-NaN one is exact
    and NaNs stay NaN, at odd offsets and lengths too."""
    _need_gpu()
    dtype = getattr(fg, dt)
    n = 1 << 20
    fg.gpu.empty_cache()
    before = fg.gpu.memory_allocated()
    full = fg.ones(n, device="gpu")
    one_float = fg.gpu.memory_allocated() - before
    half = fg.ones(n).to(dtype).to("gpu")
    assert fg.gpu.memory_allocated() - before - one_float == one_float // 2
    del full, half

    pattern = _from_bits(np.arange(1 << 16, dtype=np.uint16), dtype)
    bits = _bits(pattern)  # (the host quiets signalling bfloat16 NaNs on the way in)
    assert _bits(pattern.to("gpu").cpu()).tolist() == bits.tolist()  # at rest: exact
    through = _bits((pattern.to("gpu") * 1.0).cpu())  # unpacked, multiplied, packed
    nan = _is_nan_bits(bits, dt)
    np.testing.assert_array_equal(through[~nan], bits[~nan])
    assert _is_nan_bits(through[nan], dt).all()
    g = pattern.to("gpu")
    for lo, hi in [(1, 8), (3, 4), (5, 12), (65530, 65536)]:  # odd starts and lengths
        keep = ~nan[lo:hi]
        np.testing.assert_array_equal(_bits(g[lo:hi].clone().cpu())[keep], bits[lo:hi][keep])


def test_in_place_updates_of_gpu_halves_keep_their_buffer():
    """An optimizer step on a packed half parameter writes its own buffer: a view taken
    before the step sees the update, as on the host."""
    _need_gpu()
    for dev in ("cpu", "gpu"):
        w = fg.ones(5).half().to(dev).requires_grad_()
        view = w.detach()[1:4]
        opt = fg.optim.SGD([w], lr=0.25)
        (w.float() * 2.0).sum().backward()
        opt.step()
        assert view.tolist() == [0.5, 0.5, 0.5], dev
        with fg.no_grad():
            view[1] = 3.0  # an index write through the view
        assert w.tolist() == [0.5, 0.5, 3.0, 0.5, 0.5], dev


def _from_bits(bits: np.ndarray, dtype) -> fg.Tensor:
    """A half tensor holding exactly these 16-bit patterns."""
    if dtype == fg.float16:
        return fg.tensor(bits.view(np.float16))
    return fg.tensor((bits.astype(np.uint32) << 16).view(np.float32)).bfloat16()  # exact


def _bits(t: fg.Tensor) -> np.ndarray:
    if t.dtype == fg.float16:
        return t.numpy().view(np.uint16)
    return (t.float().numpy().view(np.uint32) >> 16).astype(np.uint16)


def _is_nan_bits(bits: np.ndarray, dt: str) -> np.ndarray:
    exp, man = (0x7C00, 0x3FF) if dt == "float16" else (0x7F80, 0x7F)
    return ((bits & exp) == exp) & ((bits & man) != 0)


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_half_ops_on_the_gpu_equal_the_host(dt):
    """Each op computes in float32 and rounds once on both devices, so the results agree
    exactly where float32 does (elementwise) and to the half's last bit elsewhere."""
    _need_gpu()
    dtype = getattr(fg, dt)
    rng = np.random.default_rng(9)
    a = rng.standard_normal((6, 9)).astype(np.float32)
    b = (rng.standard_normal(9) + 3).astype(np.float32)

    def ops(A, B):
        return {
            "add": A + B,
            "mul": A * B,
            "div": A / B,
            "scalar": A * 0.3 - 1,
            "relu": A.relu(),
            "matmul": A @ A.t(),
            "sum": A.sum(1),
            "max": A.amax(0),
            "softmax": A.softmax(1),
            "to float32": A + fg.ones(9).to(A.device),
        }

    host = ops(fg.tensor(a).to(dtype), fg.tensor(b).to(dtype))
    dev = ops(fg.tensor(a).to(dtype).to("gpu"), fg.tensor(b).to(dtype).to("gpu"))
    for name, h in host.items():
        d = dev[name]
        assert d.dtype == h.dtype, name
        hv, dv = h.float().numpy(), d.cpu().float().numpy()
        if name in ("add", "mul", "div", "scalar", "relu", "to float32"):
            np.testing.assert_array_equal(dv, hv, err_msg=name)
        else:
            ulp = 2.0**-10 if dt == "float16" else 2.0**-7
            np.testing.assert_allclose(dv, hv, rtol=ulp, atol=1e-3, err_msg=name)


def _same_half_bits(got: fg.Tensor, want: fg.Tensor, dt: str, what: str) -> None:
    """got and want bit for bit, any NaN matching any NaN (payloads may differ)."""
    assert got.dtype == want.dtype, what
    if got.dtype == fg.bool_:
        np.testing.assert_array_equal(got.cpu().numpy(), want.cpu().numpy(), err_msg=what)
        return
    g, w = _bits(got.cpu()), _bits(want.cpu())
    nan = _is_nan_bits(g, dt)
    np.testing.assert_array_equal(nan, _is_nan_bits(w, dt), err_msg=what)
    np.testing.assert_array_equal(g[~nan], w[~nan], err_msg=what)


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_gpu_elementwise_ops_read_and_write_packed_halves(dt):
    """The GPU's elementwise kernels read half operands as they rest (packed two to a word)
    and write half results packed (a word, two elements, a thread): one dispatch an op,
    and the bits of unpacking to float32, computing and packing, on odd sizes, odd
    offsets, transposed and broadcast views, with inf and NaN; gradients too."""
    _need_gpu()
    dtype = getattr(fg, dt)
    rng = np.random.default_rng(4)
    a = (rng.standard_normal((7, 9)) * 3).astype(np.float32)
    a[0, :4] = [np.inf, -np.inf, np.nan, 0.0]
    b = (rng.standard_normal(9) + 2).astype(np.float32)

    def ops(A, B):
        At, S = A.t(), A[1:, 1:]  # a transposed view; a view from an odd element
        return {
            "exp": lambda: A.exp(),
            "tanh T": lambda: At.tanh(),
            "sigmoid slice": lambda: S.sigmoid(),
            "neg": lambda: -A,
            "sqrt": lambda: A.abs().sqrt(),
            "contiguous T": lambda: At.contiguous(),
            "contiguous slice": lambda: S.contiguous(),
            "add broadcast": lambda: A + B,
            "sub T": lambda: At - At,
            "mul slice": lambda: S * S,
            "div": lambda: A / B,
            "scalar": lambda: A * 0.25,  # a scalar the half holds exactly
            "rsub scalar": lambda: 1.5 - A,
            "maximum": lambda: fg.maximum(A, B),
            "lt": lambda: A < B,
            "eq slice": lambda: S == S,
        }

    A = fg.tensor(a).to(dtype).to("gpu")
    B = fg.tensor(b).to(dtype).to("gpu")
    A32, B32 = A.float(), B.float()
    want = {k: f() for k, f in ops(A32, B32).items()}
    for name, f in ops(A, B).items():
        got = f()
        w = want[name] if want[name].dtype == fg.bool_ else want[name].to(dtype)
        _same_half_bits(got, w, dt, name)
    # one dispatch an op, nothing unpacked or packed around it
    for name, f in [("exp", lambda: A.exp()), ("add", lambda: A + B), ("copy", lambda: A.t().contiguous())]:
        fg.gpu.synchronize()
        d0 = fg.gpu.stats()["dispatches"]
        f()
        assert fg.gpu.stats()["dispatches"] - d0 == 1, name
    # the backward of a unary op on halves (x, y and g packed) against the host's: relu's
    # bits; the others to the half's last bit (their outputs, which the rules read, may
    # differ by a float32 ulp between devices)
    g = fg.tensor(rng.standard_normal((7, 9)).astype(np.float32)).to(dtype)
    for op in ("relu", "sigmoid", "tanh", "exp"):
        grads = []
        for dev in ("gpu", "cpu"):
            x = A.detach().to(dev).requires_grad_()
            getattr(x, op)().backward(g.to(dev))
            grads.append(x.grad)
        assert grads[0].dtype == dtype, op
        if op == "relu":
            _same_half_bits(grads[0], grads[1], dt, op + " backward")
        else:
            ulp = 2.0**-10 if dt == "float16" else 2.0**-7
            np.testing.assert_allclose(
                grads[0].cpu().float().numpy(), grads[1].float().numpy(), rtol=ulp, atol=1e-6, err_msg=op
            )
    # dropout and alpha dropout: the mask's affine map and its backward, packed as they rest
    import ferrograd.nn.functional as F

    for name, drop in [("dropout", F.dropout), ("alpha_dropout", F.alpha_dropout)]:
        outs = []
        for x0 in (A, A32):
            x = x0.detach().requires_grad_()
            fg.manual_seed(5)
            fg.gpu.synchronize()
            d0 = fg.gpu.stats()["dispatches"]
            y = drop(x, 0.3, True)
            if x0 is A:
                assert fg.gpu.stats()["dispatches"] - d0 == 1, name
            y.backward(g.to("gpu").to(x.dtype))
            outs.append((y.to(dtype), x.grad.to(dtype)))
        _same_half_bits(outs[0][0], outs[1][0], dt, name)
        _same_half_bits(outs[0][1], outs[1][1], dt, name + " backward")
    # odd element counts: the last word's second half
    for n in (1, 3, 17):
        v = fg.tensor(rng.standard_normal(n).astype(np.float32)).to(dtype).to("gpu")
        _same_half_bits(v * v, (v.float() * v.float()).to(dtype), dt, str(n))


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_gpu_reductions_and_cross_entropy_read_packed_halves(dt):
    """Sums and maxima (whole, along each axis, of odd and transposed views) and
    cross-entropy with its gradient read half operands as they rest: the bits of the same
    kernels on the float32 values, rounded once, and no unpacking dispatch."""
    _need_gpu()
    dtype = getattr(fg, dt)
    rng = np.random.default_rng(12)
    a = (rng.standard_normal((9, 37)) * 3).astype(np.float32)
    h = fg.tensor(a).to(dtype).to("gpu")
    f = h.float()  # the same values as float32 words
    views = {"whole": (h, f), "odd view": (h[1:, 3:], f[1:, 3:]), "transposed": (h.t(), f.t())}
    for name, (x, y) in views.items():
        for label, op in {
            "sum": lambda t: t.sum(),
            "sum 0": lambda t: t.sum(0),
            "sum 1": lambda t: t.sum(1),
            "max 0": lambda t: t.max(0).values,
        }.items():
            _same_half_bits(op(x), op(y).to(dtype), dt, f"{label} of {name}")
    labels = fg.tensor(rng.integers(0, 37, 9))
    xh = h.detach().requires_grad_()
    xf = h.float().detach().requires_grad_()
    # per sample: a mean of halves rounds the sum first (PyTorch's CPU order), not the kernel's
    lh = fg.nn.functional.cross_entropy(xh, labels, reduction="none")
    lf = fg.nn.functional.cross_entropy(xf, labels, reduction="none")
    _same_half_bits(lh, lf.to(dtype), dt, "cross_entropy")
    lh.sum().backward()
    lf.sum().backward()
    _same_half_bits(xh.grad, xf.grad.to(dtype), dt, "cross_entropy's gradient")  # written packed
    # the kernel and the packing of its result; no unpacking first
    for what, run in {
        "sum": lambda: h.sum(0),
        "cross_entropy": lambda: fg.nn.functional.cross_entropy(h, labels, reduction="none"),
    }.items():
        run()  # once before counting: a first call may set up more than the op
        fg.gpu.synchronize()
        d0 = fg.gpu.stats()["dispatches"]
        run()
        fg.gpu.synchronize()
        assert fg.gpu.stats()["dispatches"] - d0 == 2, what


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
@pytest.mark.parametrize(
    "make",
    [
        lambda ps: fg.optim.SGD(ps, lr=0.05),
        lambda ps: fg.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda ps: fg.optim.Adam(ps, lr=0.01),
        lambda ps: fg.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
        lambda ps: fg.optim.RMSprop(ps, lr=0.01, weight_decay=0.01),
        lambda ps: fg.optim.RMSprop(ps, lr=0.01, momentum=0.9),
        lambda ps: fg.optim.Adadelta(ps, lr=1.0, weight_decay=0.01),
    ],
    ids=["sgd", "nesterov", "adam", "adamw", "rmsprop", "rmsprop_momentum", "adadelta"],
)
def test_gpu_optimizers_update_packed_halves_in_place(dt, make):
    """SGD, Adam, RMSprop (not centered) and Adadelta update a half parameter, its gradient
    and its state as they rest on the GPU (packed, a word of two elements a thread, odd
    sizes included): one dispatch a tensor, and the host's values (both compute in float32
    and round each result once; lavapipe gives the same bits, a GPU that contracts to fma
    may differ in a last bit)."""
    _need_gpu()
    dtype = getattr(fg, dt)
    rng = np.random.default_rng(6)
    init = [rng.standard_normal(s).astype(np.float32) for s in ((5, 3), (7,), (1,))]
    grads = [[rng.standard_normal(w.shape).astype(np.float32) for w in init] for _ in range(4)]
    out = {}
    for dev in ("cpu", "gpu"):
        ps = [fg.tensor(w).to(dtype).to(dev).requires_grad_() for w in init]
        opt = make(ps)
        for step, gs in enumerate(grads):
            for p, g in zip(ps, gs):
                p.grad = fg.tensor(g).to(dtype).to(dev)
            if dev == "gpu" and step == 3:
                fg.gpu.synchronize()
                d0 = fg.gpu.stats()["dispatches"]
            opt.step()
        if dev == "gpu":
            assert fg.gpu.stats()["dispatches"] - d0 == len(ps)
        out[dev] = [p.detach().cpu() for p in ps]
    ulp = 2.0**-10 if dt == "float16" else 2.0**-7
    for h, d in zip(out["cpu"], out["gpu"]):
        assert d.dtype == dtype
        np.testing.assert_allclose(d.float().numpy(), h.float().numpy(), rtol=2 * ulp, atol=1e-6)


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
def test_gpu_centered_rmsprop_on_halves_matches_the_host(dt):
    """Centered RMSprop hands this step's gradient average to the update unrounded (two
    passes), so on packed halves it runs on float32 copies: still the host's values."""
    _need_gpu()
    dtype = getattr(fg, dt)
    rng = np.random.default_rng(8)
    init = [rng.standard_normal(s).astype(np.float32) for s in ((5, 3), (7,))]
    grads = [[rng.standard_normal(w.shape).astype(np.float32) for w in init] for _ in range(3)]
    out = {}
    for dev in ("cpu", "gpu"):
        ps = [fg.tensor(w).to(dtype).to(dev).requires_grad_() for w in init]
        opt = fg.optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True)
        for gs in grads:
            for p, g in zip(ps, gs):
                p.grad = fg.tensor(g).to(dtype).to(dev)
            opt.step()
        out[dev] = [p.detach().cpu() for p in ps]
    ulp = 2.0**-10 if dt == "float16" else 2.0**-7
    for h, d in zip(out["cpu"], out["gpu"]):
        assert d.dtype == dtype
        np.testing.assert_allclose(d.float().numpy(), h.float().numpy(), rtol=2 * ulp, atol=1e-6)


def test_a_half_model_trains_the_same_on_both_devices():
    """Module.half() on the GPU: float16 parameters, gradients and momentum, the same
    weights as the host's after ten SGD steps (batch norm and its running stats included)."""
    _need_gpu()
    rng = np.random.default_rng(10)
    x = rng.standard_normal((64, 8)).astype(np.float32)
    y = fg.tensor((rng.standard_normal(64) > 0).astype(np.int64))
    out = {}
    for dev in ("cpu", "gpu"):
        fg.manual_seed(0)
        m = nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 3)).half().to(dev)
        opt = fg.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
        xs = fg.tensor(x).half().to(dev)
        for _ in range(10):
            opt.zero_grad()
            nn.functional.cross_entropy(m(xs), y).backward()
            opt.step()
        assert all(p.dtype == fg.float16 and p.grad.dtype == fg.float16 for p in m.parameters())
        state = [*m.parameters(), *m.buffers()]
        out[dev] = [t.detach().cpu().float().numpy() for t in state if t.dtype.is_floating_point]
    for h, d in zip(out["cpu"], out["gpu"]):
        np.testing.assert_allclose(d, h, rtol=2.0**-10, atol=2.0**-14)


@pytest.mark.skipif(not fg.gpu_available(), reason="no GPU adapter")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_gpu_products_read_packed_halves_as_they_rest(dtype, ta, tb):
    """On the GPU a product of half operands (and a half bias) reads them packed, two to a
    word, converting each exactly, and writes its result rounded and packed: the same bits
    as unpacking to float32 first and packing after, in one dispatch. An operand the vector
    kernels cannot read aligned goes through the unpacking path."""
    dt = getattr(fg, dtype)
    rng = np.random.default_rng(3)
    m, k, n = 72, 40, 44
    a = fg.tensor(rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32), device="gpu").to(dt)
    b = fg.tensor(rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32), device="gpu").to(dt)
    bias = fg.tensor(rng.standard_normal(n).astype(np.float32), device="gpu").to(dt)
    a, b = (a.T if ta else a), (b.T if tb else b)
    for act in (None, "relu", "tanh"):
        fg.gpu.synchronize()
        d0 = fg.gpu.stats()["dispatches"]
        got = fg.linear(a, b.T, bias, activation=act)
        assert fg.gpu.stats()["dispatches"] - d0 == 1, act
        want = fg.linear(a.float(), b.T.float(), bias.float(), activation=act).to(dt)
        assert got.dtype == dt
        np.testing.assert_array_equal(got.float().numpy(), want.float().numpy(), err_msg=str(act))
    # batched
    x = fg.tensor(rng.standard_normal((3, 16, 40)).astype(np.float32), device="gpu").to(dt)
    np.testing.assert_array_equal((x @ b).float().numpy(), (x.float() @ b.float()).to(dt).float().numpy())
    # unaligned (k = 10): the scalar kernel reads them packed too, and packs an even n's
    # pairs of columns itself (one dispatch); an odd n goes through the unpacking path
    u = fg.tensor(rng.standard_normal((6, 10)).astype(np.float32), device="gpu").to(dt)
    for n_cols, dispatches in ((6, 1), (5, None)):
        v = fg.tensor(rng.standard_normal((10, n_cols)).astype(np.float32), device="gpu").to(dt)
        c = fg.tensor(rng.standard_normal(n_cols).astype(np.float32), device="gpu").to(dt)
        fg.gpu.synchronize()
        d0 = fg.gpu.stats()["dispatches"]
        got = fg.linear(u, v.T, c, activation="relu")
        if dispatches is not None:
            assert fg.gpu.stats()["dispatches"] - d0 == dispatches
        want = fg.linear(u.float(), v.T.float(), c.float(), activation="relu").to(dt)
        np.testing.assert_array_equal(got.float().numpy(), want.float().numpy())
        np.testing.assert_array_equal((u @ v).float().numpy(), (u.float() @ v.float()).to(dt).float().numpy())
