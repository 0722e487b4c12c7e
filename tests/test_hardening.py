"""Regression tests for issue 11's defects: each reproduced once as a crash, a panic reaching
Python, or a silently wrong result. Calls that used to kill the interpreter run in a child
process, so a regression fails the test instead of ending the run."""

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ferrograd as fg
import ferrograd.nn.functional as F


def run_child(code: str) -> subprocess.CompletedProcess:
    """Runs `code` (after `import ferrograd as fg`) in a fresh interpreter."""
    src = "import ferrograd as fg\n" + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------ crashes: sizes and memory

HUGE_CALLS = [
    ("randperm 2**40", "fg.randperm(2**40)"),
    ("randint 2**40", "fg.randint(0, 10, (2**40,))"),
    ("randperm 2**62", "fg.randperm(2**62)"),
    ("expanded sum", "fg.ones(2, 3).expand(2**40, 2, 3).sum()"),
    # a copy to NumPy (`.numpy()` itself shares: a stride-0 view, as PyTorch's)
    ("expanded to numpy", "fg.ones(2, 3).expand(2**40, 2, 3).__array__()"),
    ("expanded pickle", "import pickle; pickle.dumps(fg.ones(2, 3).expand(2**40, 2, 3))"),
    ("expanded 2**62 sum", "fg.ones(2, 3).expand(2**62, 2, 3).sum()"),
    ("empty view 2**62", "fg.zeros(0).view(-1, 1, 2**62).numpy()"),
    ("empty view 2**62 repr", "repr(fg.zeros(0).view(-1, 1, 2**62))"),
    ("empty reshape 2**40", "fg.zeros(0).reshape(0, 2**40, 2**40).numpy()"),
    ("zeros extent", "fg.zeros(0, 2**62, 2**62)"),
    # billions of views of an expanded (here empty) dim: refused at once, not built (the
    # op fuzzer found the split hanging for minutes)
    ("split of 2**33", "fg.zeros(1, 0).expand(2**33, 0).split(3, 0)"),
    ("chunk of 2**33", "fg.zeros(1, 0).expand(2**33, 0).chunk(2**32, 0)"),
    ("unbind of 2**33", "fg.zeros(1, 0).expand(2**33, 0).unbind(0)"),
]


def test_a_huge_expanded_view_prints_and_converts_without_a_copy():
    """`.numpy()` shares memory (PyTorch's rule), so a stride-0 view of 2**40 rows is a NumPy
    view of six numbers, and its repr is summarized as PyTorch's is."""
    t = fg.ones(2, 3).expand(2**40, 2, 3)
    a = t.numpy()
    assert a.shape == (2**40, 2, 3) and a.strides[0] == 0 and a[2**39, 1, 2] == 1.0
    text = repr(t)
    assert text.startswith("tensor([[[1., 1., 1.],") and "..." in text and len(text) < 2000


@pytest.mark.parametrize("name,code", HUGE_CALLS, ids=[c[0] for c in HUGE_CALLS])
def test_impossible_sizes_raise_memory_error(name, code):
    """Sizes no machine holds are a MemoryError (as `fg.zeros(2**40)`), never an abort, a
    segfault or a capacity-overflow panic."""
    r = run_child(
        f"""
        try:
            {code}
        except MemoryError as e:
            print("MemoryError:", e)
        """
    )
    assert r.returncode == 0, f"{name}: exit {r.returncode}\n{r.stderr[-2000:]}"
    assert "MemoryError:" in r.stdout, r.stdout + r.stderr


def test_views_of_huge_expands_still_work():
    v = fg.ones(2, 3).expand(2**40, 2, 3)
    assert v.shape == (2**40, 2, 3)
    assert v[5].sum().item() == 6.0  # a slice of the view is small


# ------------------------------------------------------------------ panics reaching Python


@pytest.mark.parametrize("op", ["unbind", "split", "chunk"])
def test_pieces_of_a_0d_tensor_are_an_index_error(op):
    t = fg.tensor(1.0)
    with pytest.raises(IndexError, match=op):
        getattr(t, op)(*(() if op == "unbind" else (1,)))


@pytest.mark.parametrize(
    "call,msg",
    [
        (lambda t: t.narrow(0, 0, -1), "narrow: length"),
        (lambda t: t.chunk(-1), "chunk: the number"),
        (lambda t: t.topk(-1), "topk: k"),
        (lambda t: t.split(-1), "split: the piece size"),
        (lambda t: t.split([2, -1]), "split: each size"),
    ],
)
def test_negative_counts_are_a_value_error_naming_the_op(call, msg):
    with pytest.raises(ValueError, match=msg):
        call(fg.ones(3))


def test_set_num_threads_refuses_absurd_counts():
    before = fg.get_num_threads()
    with pytest.raises(ValueError, match="set_num_threads"):
        fg.set_num_threads(10**6)
    assert fg.get_num_threads() == before


# ------------------------------------------------------------------ in-place dtype and overlap


@pytest.mark.parametrize(
    "make,call",
    [
        (lambda d: fg.tensor([5, 7]), lambda t: t.mul_(1.5)),
        (lambda d: fg.tensor([5, 7]), lambda t: t.div_(2)),
        (lambda d: fg.tensor([5, 7]), lambda t: t.add_(0.5)),
        (lambda d: fg.tensor([5, 7]), lambda t: t.add_(fg.ones(2), alpha=1)),
        (lambda d: fg.tensor([5, 7]), lambda t: t.add_(fg.tensor([1, 1]), alpha=0.5)),
        (lambda d: fg.tensor([True, False], device=d), lambda t: t.mul_(2)),
        (lambda d: fg.tensor([True, False], device=d), lambda t: t.add_(1.5)),
        (lambda d: fg.tensor([True, False], device=d), lambda t: t.sub_(1)),
    ],
)
def test_inplace_results_that_cannot_be_cast_back_are_refused(make, call, device):
    """PyTorch refuses an in-place result whose dtype is of a higher kind (float into int,
    int into bool) instead of truncating it; the tensor is left unchanged."""
    t = make(device)
    before = t.tolist()
    with pytest.raises(fg.DTypeError, match="cannot be stored in place"):
        call(t)
    assert t.tolist() == before


def test_inplace_results_of_the_same_kind_still_work(device):
    i = fg.tensor([5, 7])
    i.mul_(2)
    i.add_(fg.tensor([1, 1]), alpha=3)
    i.sub_(1)
    assert i.tolist() == [12, 16] and i.dtype == fg.int64
    f = fg.tensor([1.0, 2.0], device=device)
    f.mul_(1.5)
    f.div_(2)
    f.add_(fg.tensor([1.0, 1.0], device=device), alpha=-0.5)
    np.testing.assert_allclose(f.numpy(), [0.25, 1.0])
    f64 = fg.tensor(np.array([1.0, 2.0]))
    f64.add_(fg.tensor([1.0, 1.0]))  # float32 into float64: same kind
    assert f64.dtype == fg.float64 and f64.tolist() == [2.0, 3.0]


@pytest.mark.parametrize(
    "call",
    [
        lambda v: v.add_(fg.ones(2, 3)),
        lambda v: v.mul_(2.0),
        lambda v: v.fill_(1.0),
        lambda v: v.zero_(),
        lambda v: v.copy_(fg.ones(2, 3)),
        lambda v: v.clamp_(0.0, 1.0),
    ],
)
def test_inplace_writes_into_overlapping_views_are_refused(call, device):
    b = fg.zeros(3, device=device)
    with pytest.raises(ValueError, match="share memory"):
        call(b.expand(2, 3))
    assert b.tolist() == [0.0, 0.0, 0.0]


# ------------------------------------------------------------------ silently wrong values


def test_integers_beyond_int64_are_refused():
    with pytest.raises(OverflowError, match="int64"):
        fg.tensor([2**63])
    with pytest.raises(OverflowError, match="int64"):
        fg.tensor([2**64])
    with pytest.raises(OverflowError, match="int64"):
        fg.from_numpy(np.array([2**63], np.uint64))
    with pytest.raises(ValueError, match="NaN"):
        fg.tensor([1.0, float("nan")], dtype=fg.int64)
    assert fg.tensor([2**63 - 1, -(2**63)]).tolist() == [2**63 - 1, -(2**63)]
    assert fg.from_numpy(np.array([3], np.uint64)).tolist() == [3]


def test_variance_of_too_few_elements_is_inf_or_nan(device):
    """PyTorch divides by max(N - correction, 0): nothing negative, no -0.0."""
    assert np.isnan(fg.zeros(0, device=device).var().item())
    assert np.isnan(fg.zeros(0, device=device).std().item())
    assert fg.tensor([1.0, 2.0], device=device).var(correction=3).item() == np.inf
    assert np.isnan(fg.tensor([1.0, 1.0], device=device).var(correction=2).item())
    np.testing.assert_allclose(
        fg.tensor([1.0, 2.0, 4.0], device=device).var().item(), np.var([1, 2, 4], ddof=1)
    )


def test_losses_of_empty_input_are_nan(device):
    e = fg.zeros(0, device=device)
    assert np.isnan(F.binary_cross_entropy_with_logits(e, e).item())
    assert np.isnan(F.mse_loss(e, e).item())


def test_binary_cross_entropy_refuses_values_outside_0_1():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        F.binary_cross_entropy(fg.tensor([2.0]), fg.tensor([1.0]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        F.binary_cross_entropy(fg.tensor([-0.1]), fg.tensor([0.0]))


def test_cross_entropy_with_a_minus_inf_logit_picks_rather_than_multiplies(device):
    """The fused loss, nll_loss(log_softmax) and the weighted loss agree (0.3133); a one-hot
    product gave -inf * 0 = NaN."""
    y = fg.tensor([2])
    want = np.log(1 + np.e) - 1
    losses = [
        lambda x: F.cross_entropy(x, y),
        lambda x: F.nll_loss(F.log_softmax(x, 1), y),
        lambda x: F.cross_entropy(x, y, weight=fg.ones(3, device=device)),
        lambda x: F.cross_entropy(fg.cat([x, x]), fg.tensor([2, -100])),
    ]
    for f in losses:
        x = fg.tensor([[float("-inf"), 0.0, 1.0]], device=device, requires_grad=True)
        loss = f(x)
        np.testing.assert_allclose(loss.item(), want, rtol=1e-6)
        loss.backward()
        g = x.grad.numpy()
        assert np.isfinite(g).all(), g
        np.testing.assert_allclose(g[0, 1:], [1 / (1 + np.e), -1 / (1 + np.e)], rtol=1e-5)


def test_nll_loss_ignores_rows_even_with_a_minus_inf_entry():
    x = fg.tensor([[0.0, float("-inf")], [-1.0, -2.0]])
    loss = F.nll_loss(x, fg.tensor([-100, 0]))
    assert loss.item() == 1.0


def test_clamp_with_a_nan_bound_is_nan(device):
    x = fg.tensor([0.0, 1.0], device=device)
    assert np.isnan(x.clamp(0.1, float("nan")).numpy()).all()


def test_logsumexp_with_infinities(device):
    x = fg.tensor([[1.0, float("inf")], [float("-inf"), float("-inf")], [0.0, 0.0]], device=device)
    np.testing.assert_allclose(x.logsumexp(1).numpy(), [np.inf, -np.inf, np.log(2)], rtol=1e-6)


@pytest.mark.parametrize("big", [1e30, 1e6, 3e38])
def test_softmax_of_large_equal_logits(device, big):
    x = fg.tensor([[big, big, 0.0]], device=device)
    np.testing.assert_allclose(x.softmax(1).numpy(), [[0.5, 0.5, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(x.log_softmax(1).numpy()[0, :2], [-np.log(2)] * 2, rtol=1e-6)
    labels = fg.tensor([0])
    xg = fg.tensor([[big, big]], device=device, requires_grad=True)
    loss = F.cross_entropy(xg, labels)
    np.testing.assert_allclose(loss.item(), np.log(2), rtol=1e-6)
    loss.backward()
    np.testing.assert_allclose(xg.grad.numpy(), [[-0.5, 0.5]], rtol=1e-6)


def test_pickle_of_views_round_trips():
    v = fg.arange(6.0).reshape(2, 3).T
    assert pickle.loads(pickle.dumps(v)).tolist() == v.tolist()


def test_gpu_pow_matches_the_cpu_at_every_special_value(device):
    """WGSL's pow is undefined for x <= 0 and silent on NaN/inf: NaN**2 gave 0, 0**-1 gave 0,
    (-inf)**0.5 gave nan on the GPU. Every pair of special values matches the CPU (C's powf)."""
    vals = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, -3.0, 2.5, 1e30]
    xs = np.repeat(vals, len(vals)).astype(np.float32)
    ys = np.tile(vals, len(vals)).astype(np.float32)
    with np.errstate(all="ignore"):
        want = np.power(xs, ys)
    got = (fg.tensor(xs, device=device) ** fg.tensor(ys, device=device)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)  # the GPU's pow is exp2(y log2 x)
    assert (np.signbit(got) == np.signbit(want))[~np.isnan(want)].all()
    for e in (2, 3, -1, 0.5, 0):
        # NumPy special-cases ** 0.5 as sqrt ((-inf) ** 0.5 = nan); C's powf, which the CPU
        # follows and the tensor-exponent table above checks, gives inf
        want = (fg.tensor(np.float32(vals)) ** fg.full((len(vals),), e)).numpy()
        got = (fg.tensor(np.float32(vals), device=device) ** e).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_empty_slice_assignment_writes_nothing(device):
    t = fg.arange(3.0, device=device)
    t[3:] = 5.0
    t[2:1] = 7.0
    t[3:].fill_(3.0)
    t[3:].zero_()
    t[3:].copy_(fg.ones(0, device=device))
    assert t.tolist() == [0.0, 1.0, 2.0]


def test_bool_mask_assignment_checks_the_mask_shape(device):
    t = fg.zeros(2, device=device)
    with pytest.raises(IndexError, match="mask of shape"):
        t[fg.tensor([True])] = 5.0
    assert t.tolist() == [0.0, 0.0]
    t[fg.tensor([True, False])] = 5.0
    assert t.tolist() == [5.0, 0.0]


def test_where_on_a_gpu_condition_with_scalar_branches_runs_on_the_gpu(device):
    """PyTorch's where(cond, 0, 1) lives where the condition does; found by the long fuzz
    run after the placement rules moved into Tensor::colocate (the scalars alone chose the
    CPU)."""
    c = fg.tensor(np.array(False), device=device)
    out = fg.where(c, 0, 0.001)
    assert out.device == device and out.dtype == fg.float32
    assert out.item() == pytest.approx(0.001)
    both = fg.where(fg.tensor(np.array(1.5, np.float32), device=device), False, False)
    assert both.device == device and both.dtype == fg.bool_ and both.item() is False


def test_masked_fill_of_a_host_bool_by_a_gpu_mask_stays_bool():
    """The GPU mask puts the op on the GPU; the host bool tensor went up as float32 and the
    result came back float32 (found by the bounded fuzz pass in a clean clone)."""
    if not fg.gpu_available():
        pytest.skip("no GPU adapter")
    x = fg.tensor([False, False, True])
    out = x.masked_fill(fg.tensor(np.array(True), device="gpu"), 4611686018427387904)
    assert out.dtype == fg.bool_ and out.device == "gpu" and out.tolist() == [True, True, True]
    sel = fg.where(fg.tensor([True, False], device="gpu"), fg.tensor([True, True]), fg.tensor([False, False]))
    assert sel.dtype == fg.bool_ and sel.tolist() == [True, False]


def test_masked_fill_keeps_the_dtype(device):
    b = fg.tensor([True, False], device=device)
    m = fg.tensor([False, True], device=device)
    assert b.masked_fill(m, 1).dtype == fg.bool_
    assert b.masked_fill(m, 1).tolist() == [True, True]
    i = fg.tensor([1, 2])
    assert i.masked_fill(fg.tensor([True, False]), 7).dtype == fg.int64


def test_a_cpu_scalar_that_requires_grad_gets_its_gradient_next_to_gpu_tensors(device):
    for dtype in (np.float32, np.float64):
        s = fg.tensor(np.array(2.0, dtype), requires_grad=True)
        y = fg.ones(3, device=device, requires_grad=True)
        (y * s).sum().backward()
        assert s.grad is not None and s.grad.item() == 3.0
        assert s.grad.dtype == s.dtype and s.grad.device == "cpu"
        np.testing.assert_array_equal(y.grad.numpy(), [2.0, 2.0, 2.0])


def test_iterating_a_0d_tensor_is_a_type_error():
    with pytest.raises(TypeError, match="0-d"):
        list(fg.tensor(1.0))
    rows = list(fg.arange(6.0).reshape(3, 2))
    assert [r.tolist() for r in rows] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    assert len(list(iter(fg.ones(2, 3).expand(2**40, 2, 3)).__next__())) == 2  # lazy


PANIC_FAMILIES = {
    "module function": lambda p: fg._core._panic_probe(),
    "method": lambda p: p.method(),
    "getter": lambda p: p.getter,
    "GIL-released run": lambda p: p.released(),
    "number protocol": lambda p: p + 1,
    "mapping protocol": lambda p: p[0],
    "sequence protocol": lambda p: len(p),
    "__repr__": lambda p: repr(p),
    "iterator": lambda p: next(iter(p)),
}


@pytest.mark.parametrize("family", list(PANIC_FAMILIES))
def test_a_panic_at_any_entry_point_is_a_runtime_error(family):
    """A panic is a bug in ferrograd; wherever it happens it must reach Python as
    InternalError, a RuntimeError (PyO3's own PanicException is a BaseException that
    `except Exception` misses)."""
    probe = fg._core._PanicProbe()
    try:
        PANIC_FAMILIES[family](probe)
    except Exception as e:  # noqa: BLE001  (the point: Exception catches it)
        assert isinstance(e, RuntimeError)
        assert isinstance(e, fg.InternalError) or "internal error" in str(e)
        assert "deliberate panic" in str(e)
    else:
        pytest.fail(f"{family}: no exception")


def test_argument_errors_name_the_function():
    with pytest.raises(ValueError, match="set_rng_state"):
        fg.set_rng_state({})
    with pytest.raises(ValueError, match="set_rng_state"):
        fg.set_rng_state((1, -1))
    state = fg.get_rng_state()
    fg.set_rng_state(state)
    assert fg.get_rng_state() == state
    with pytest.raises(ValueError, match="SGD: a parameter group must be a dict with a 'params'"):
        fg.optim.SGD([{}], lr=0.1)
    w = fg.zeros(2, requires_grad=True)
    assert fg.optim.SGD([{"params": w}], lr=0.1).param_groups[0]["params"] == [w]


def test_a_gradient_on_another_device_is_refused(device):
    p = fg.zeros(2, requires_grad=True, device=device)
    other = "cpu" if device == "gpu" else "gpu"
    if other == "gpu" and not fg.gpu_available():
        pytest.skip("no GPU adapter")
    with pytest.raises(fg.DeviceError, match="grad: assigned gradient is on"):
        p.grad = fg.zeros(2, device=other)
    assert p.grad is None
    p.grad = fg.ones(2, device=device)
    assert p.grad.device == device


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT to itself")
@pytest.mark.parametrize("op", ["matmul", "sort"])
def test_ctrl_c_interrupts_a_long_kernel(op):
    """Ctrl-C during a long host kernel (a ~1 s matmul or sort, GIL released) raises
    KeyboardInterrupt within a fraction of a second, instead of when the kernel ends; the
    process stays usable."""
    r = run_child(
        f"""
        import os, signal, threading, time
        fg.set_num_threads(1)
        a = fg.randn(3000, 3000)
        x = fg.randn(20_000_000)
        if "{op}" == "matmul":
            work = lambda: [a @ a for _ in range(20)]
        else:
            work = lambda: [x.sort() for _ in range(5)]
        threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        t0 = time.time()
        try:
            work()
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted after", round(time.time() - t0, 2))
        print("still works", (fg.ones(2) + 1).tolist())
        """
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "interrupted after" in r.stdout, r.stdout
    assert float(r.stdout.split("interrupted after")[1].split()[0]) < 5.0
    assert "still works [2.0, 2.0]" in r.stdout


# ------------------------------------------------------------------ found by the fuzzer


def test_python_ints_are_exact_int64_or_an_overflow_error(device):
    x = fg.tensor([-2])
    for f in (lambda: x + 2**70, lambda: x & 2**63, lambda: 2**70 / fg.tensor([True]), lambda: x.mul_(2**64)):
        with pytest.raises(OverflowError, match="int64"):
            f()
    assert (fg.tensor([1.0], device=device) + 2**70).item() == 2.0**70  # floats take any int
    big = 2**62 + 1
    assert (fg.tensor([0]) + big).tolist() == [big]
    assert fg.full([], big).item() == big
    t = fg.tensor([2])
    t.fill_(fg.tensor(big))
    assert t.tolist() == [big]


def test_int64_reductions_are_exact():
    v = np.array([[2**62 + 1, -5], [3, 2**62 + 3]], np.int64)
    x = fg.tensor(v)
    assert x.amax().item() == v.max()
    assert x.amax(0).tolist() == v.max(0).tolist()
    assert x.amin(1).tolist() == v.min(1).tolist()
    assert x.sum(0).tolist() == v.sum(0).tolist()


def test_randint_over_the_whole_int64_range():
    v = fg.randint(-5, 2**63 - 1, (1000,)).numpy()
    assert (v >= -5).all()
    w = fg.randint(-(2**63), 2**63 - 1, (1000,)).numpy()
    assert (w < 0).any() and (w > 0).any()


def test_scalars_next_to_bool_tensors_promote_as_the_operators_do(device):
    f = fg.tensor(False, device=device)
    assert fg.maximum(3, f).item() == 3
    assert fg.minimum(-1, f).item() == -1
    assert fg.maximum(fg.tensor([True, False]), fg.tensor([False, False])).dtype == fg.bool_
    assert fg.where(fg.tensor(False), 3, fg.tensor(True)).dtype == fg.int64
    w = fg.where(fg.tensor(False, device=device), fg.tensor(-1), 2)
    assert w.dtype == fg.int64 and w.item() == 2
    assert fg.tensor(5).masked_fill(fg.tensor(False, device=device), 0).dtype == fg.int64


def test_dims_of_a_0d_tensor_are_checked():
    with pytest.raises(IndexError, match="flatten"):
        fg.tensor(0.3).flatten(0, 1)
    with pytest.raises(IndexError, match="squeeze"):
        fg.tensor(0.3).squeeze(1)
    assert fg.tensor(0.3).squeeze(0).shape == ()
    assert fg.tensor(0.3).flatten(0, -1).shape == (1,)


def test_repeat_always_copies():
    x = fg.tensor([1.0, 2.0])
    r = x.repeat(1)
    r.add_(1.0)
    assert x.tolist() == [1.0, 2.0]
    with pytest.raises(MemoryError):
        fg.tensor(0.5).repeat(2**40)


def test_scalar_bool_and_empty_list_indices(device):
    x = fg.ones(2, 3, device=device)
    assert x[True].shape == (1, 2, 3) and x[0:-3, True, ...].shape == np.ones((2, 3))[0:-3, True, ...].shape
    y = fg.tensor(np.array([1.1, -2.3, -4.8]))
    y[True] = fg.tensor(-3)
    assert y.tolist() == [-3.0, -3.0, -3.0]
    b = fg.tensor([False, False], device=device)
    b[None, True] = float("nan")  # NaN is true
    assert b.tolist() == [True, True]
    e = fg.tensor(np.array([1.0, 2.0]))
    e[[]] = 5.0
    assert e.tolist() == [1.0, 2.0] and e[[]].shape == (0,)
    z = fg.tensor(3.0, device=device)
    with pytest.raises(IndexError, match="0-d"):
        z[[2]] = 0


def test_inplace_ops_on_strided_gpu_views(device):
    base = fg.arange(7.0, device=device)
    v = base[1::2]
    v.clamp_(2, 4)
    v.mul_(10)
    assert base.tolist() == [0.0, 20.0, 2.0, 30.0, 4.0, 40.0, 6.0]
    v.zero_()
    t = fg.arange(12.0, device=device).reshape(3, 4).T
    t.fill_(-1)
    assert (t.numpy() == -1).all()
    m = fg.arange(12.0, device=device).reshape(3, 4)
    m[::2, ::3] = fg.ones(2, 2, device=device) * 5
    assert m.tolist() == [[5.0, 1.0, 2.0, 5.0], [4.0, 5.0, 6.0, 7.0], [5.0, 9.0, 10.0, 5.0]]


@pytest.mark.parametrize(
    "loss",
    [
        "cross_entropy",
        "nll_loss",
        "mse_loss",
        "l1_loss",
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "huber_loss",
        "smooth_l1_loss",
    ],
)
def test_losses_refuse_non_tensors_with_a_type_error(loss):
    f = getattr(F, loss)
    with pytest.raises(TypeError, match=f"{loss}: input must be a Tensor"):
        f(None, fg.tensor([1.0]))
    with pytest.raises(TypeError, match=f"{loss}: target must be a Tensor"):
        f(fg.tensor([1.0]), True)
    if loss in ("cross_entropy", "nll_loss"):
        with pytest.raises(TypeError, match="weight must be a Tensor"):
            f(fg.zeros(2, 3), fg.tensor([0, 1]), weight=1.5)


def test_mask_assignment_of_several_values_fills_the_selection_in_order(device):
    a = fg.arange(7.0, device=device)
    m = fg.tensor([False, True, False, False, True, False, False], device=device)
    a[m] = fg.tensor([10.0, 20.0], device=device)
    assert a.tolist() == [0.0, 10.0, 2.0, 3.0, 20.0, 5.0, 6.0]
    with pytest.raises(fg.ShapeError, match="does not fit the 2 selected entries"):
        a[m] = fg.arange(7.0, device=device)
    rows = fg.zeros(3, 2, device=device)
    rows[fg.tensor([True, False, True])] = fg.tensor([1.0, 2.0], device=device)  # broadcast
    assert rows.tolist() == [[1.0, 2.0], [0.0, 0.0], [1.0, 2.0]]


def test_index_assignment_into_an_expanded_view_is_refused():
    e = fg.tensor([1.0]).expand(5)
    for key in ([-4], 2, slice(1, 3), fg.tensor([True, False, False, False, False])):
        with pytest.raises(ValueError, match="share memory"):
            e[key] = -3.0


def test_split_into_billions_of_pieces_is_a_memory_error():
    r = run_child(
        """
        try:
            fg.tensor([4]).expand(2**32).split(1, 0)
        except MemoryError:
            print("MemoryError")
        """
    )
    assert r.returncode == 0 and "MemoryError" in r.stdout, r.stderr[-1000:]


def test_scaled_add_computes_alpha_times_other_in_the_result_dtype():
    f = fg.tensor(np.array([-2.5]))
    f.sub_(fg.tensor(6733281286528594386), alpha=2)  # 2 * other overflows int64
    assert f.item() == -2.5 - 2 * 6733281286528594386


def test_repeat_with_many_dims(device):
    x = fg.tensor([-0.5, 0.25], device=device)
    np.testing.assert_array_equal(x.repeat(1, 1, 3, 3, 3).numpy(), np.tile(x.numpy(), (1, 1, 3, 3, 3)))
    assert fg.arange(6.0, device=device).reshape(2, 3).repeat(2, 1, 2, 2, 0, 1).shape == (2, 1, 2, 2, 0, 3)


def test_ignore_index_must_be_an_int():
    with pytest.raises(TypeError, match="ignore_index"):
        F.cross_entropy(fg.zeros(2, 3), fg.tensor([0, 1]), ignore_index=[1, 2])
    with pytest.raises(TypeError, match="ignore_index"):
        F.nll_loss(fg.zeros(2, 3), fg.tensor([0, 1]), ignore_index=None)


def test_copy_of_a_view_into_a_gpu_tensor_writes_only_its_elements(device):
    """A contiguous view of a longer buffer (b[0], b[1:3]) was copied with its whole buffer
    on the GPU, writing past the destination's elements."""
    a = fg.zeros(5, device=device)
    b = fg.tensor([7.0, 8.0, 9.0], device=device)
    a[1] = b[0]
    a[3:5] = b[1:3]
    assert a.tolist() == [0.0, 7.0, 0.0, 8.0, 9.0]
    c = fg.zeros(2, 2, device=device)
    c[0].copy_(fg.arange(4.0, device=device)[2:])
    assert c.tolist() == [[2.0, 3.0], [0.0, 0.0]]


def test_late_fuzzer_findings():
    # reductions over no elements return at once, whatever the length of an expanded dim
    e = fg.zeros(2, 1, 0).expand(2, 2**40, 0)
    assert e.sum(dim=1).shape == (2, 0) and e.mean(dim=1).shape == (2, 0)
    assert e.logsumexp(dim=1).shape == (2, 0)
    # an empty repeat with a huge count neither aborts nor allocates
    assert fg.tensor(1).repeat(2**40, 3, 0, 0, 1).shape == (2**40, 3, 0, 0, 1)
    # an int64 index assignment's value must fit the selection's shape
    x = fg.tensor([3, -3, -3, 5])
    with pytest.raises(fg.ShapeError):
        x[fg.tensor([[1, -3], [0, 0]])] = fg.tensor([-3, -4, -3, -2])
    x[fg.tensor([[1, 2], [0, 0]])] = fg.tensor([[7, 8], [9, 9]])
    assert x.tolist() == [9, 7, 8, 5]
    # ints past int64 mixed with others are refused too (NumPy would make them floats)
    with pytest.raises(OverflowError):
        fg.tensor([2**63, 1])
    with pytest.raises(OverflowError):
        fg.tensor([[1, 2], [3, -(2**64)]])
    assert fg.tensor([1.5, 1e30]).dtype == fg.float32  # large floats stay floats


def test_integer_inplace_update_with_a_gpu_bool_stays_on_the_host(device):
    y = fg.tensor(5)
    y.sub_(fg.tensor(True, device=device))
    assert y.item() == 4
