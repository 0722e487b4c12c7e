"""Creation, dtypes, layout/views, conversion and printing."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import ferrograd as fg


def test_tensor_from_lists_infers_dtypes():
    assert fg.tensor([1.0, 2.0]).dtype == fg.float32
    assert fg.tensor([1, 2]).dtype == fg.int64
    assert fg.tensor([True, False]).dtype == fg.bool_
    assert fg.tensor(np.zeros(3)).dtype == fg.float64  # NumPy float64 is kept
    # NumPy's int32, uint8 and float16 are kept too, as torch.tensor keeps them
    assert fg.tensor(np.zeros(3, np.int32)).dtype == fg.int32
    assert fg.tensor(np.zeros(3, np.uint8)).dtype == fg.uint8
    assert fg.tensor(np.zeros(3, np.float16)).dtype == fg.float16
    assert fg.tensor(np.zeros(3, np.int16)).dtype == fg.int64  # no int16: widened
    assert fg.tensor([1, 2], dtype=fg.float64).dtype == fg.float64
    s = fg.tensor(3.5)
    assert s.shape == () and s.item() == 3.5


def test_creation_functions():
    assert fg.zeros(2, 3).shape == (2, 3)
    assert fg.zeros((2, 3)).tolist() == [[0.0] * 3] * 2
    assert fg.ones(4, dtype=fg.int64).tolist() == [1, 1, 1, 1]
    assert fg.full((2,), 7).dtype == fg.int64
    assert fg.full((2,), 0.5).tolist() == [0.5, 0.5]
    assert fg.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert np.allclose(fg.arange(0, 1, 0.25).numpy(), [0, 0.25, 0.5, 0.75])
    assert fg.arange(5, 0, -2).tolist() == [5, 3, 1]
    assert np.array_equal(fg.eye(3).numpy(), np.eye(3, dtype=np.float32))
    assert fg.eye(2, 3).shape == (2, 3)
    x = fg.randn(3, 4)
    assert fg.zeros_like(x).shape == (3, 4) and fg.ones_like(x).dtype == fg.float32
    assert fg.full_like(x, 2.0).numpy().sum() == 24.0
    assert fg.rand_like(x).shape == fg.randn_like(x).shape == (3, 4)
    assert fg.zeros(0, 3).numel() == 0


def test_manual_seed_repeats_streams():
    fg.manual_seed(42)
    a, b = fg.rand(100).numpy(), fg.randn(100).numpy()
    fg.manual_seed(42)
    assert np.array_equal(a, fg.rand(100).numpy())
    assert np.array_equal(b, fg.randn(100).numpy())
    assert 0.0 <= a.min() and a.max() < 1.0
    p = fg.randperm(50).numpy()
    assert sorted(p.tolist()) == list(range(50))
    r = fg.randint(3, 7, (1000,)).numpy()
    assert r.min() >= 3 and r.max() < 7 and len(set(r.tolist())) == 4


def test_random_moments():
    fg.manual_seed(1)
    u = fg.rand(100_000, dtype=fg.float64).numpy()
    n = fg.randn(100_000, dtype=fg.float64).numpy()
    # a few standard errors around the true moments
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / u.size)
    assert abs(n.mean()) < 5 / np.sqrt(n.size)
    assert abs(n.var() - 1.0) < 5 * np.sqrt(2 / n.size)


def test_numpy_interop_and_conversion():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = fg.from_numpy(a)
    assert np.array_equal(np.asarray(t), a)
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert t.tolist() == a.tolist()
    assert fg.tensor(a[:, ::2]).tolist() == a[:, ::2].tolist()  # strided NumPy input
    assert fg.tensor([2]).item() == 2 and isinstance(fg.tensor([2]).item(), int)
    assert float(fg.tensor(1.5)) == 1.5 and int(fg.tensor(3)) == 3
    assert t.double().dtype == fg.float64 and t.long().dtype == fg.int64
    assert t.to(fg.float64).dtype == fg.float64 and t.to("cpu").device == "cpu"
    assert fg.tensor([0.0, 2.0]).bool().tolist() == [False, True]
    assert len(t) == 2 and [r.tolist() for r in t] == a.tolist()


def test_views_share_storage():
    x = fg.arange(12.0).reshape(3, 4)
    for v in (
        x.T,
        x.transpose(0, 1),
        x.permute(1, 0),
        x[1:],
        x[:, ::2],
        x.reshape(4, 3),
        x.view(2, 6),
        x.unsqueeze(0),
        x[None],
        x[..., 1],
        x[0].expand(5, 4),
    ):
        assert v.shares_storage(x)
    assert not x.clone().shares_storage(x)
    assert x.T.stride() == (1, 4) and not x.T.is_contiguous()
    c = x.T.contiguous()
    assert c.is_contiguous() and c.tolist() == x.numpy().T.tolist()
    assert x[1:, 1:].storage_offset() == 5
    assert x[0].expand(2, 4).stride() == (0, 1)


def test_view_refuses_non_viewable_but_reshape_copies():
    x = fg.arange(6.0).reshape(2, 3).T
    with pytest.raises(fg.ShapeError, match="view"):
        x.view(6)
    r = x.reshape(6)
    assert r.tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0] and not r.shares_storage(x)


def test_in_place_updates_are_seen_through_views():
    x = fg.zeros(2, 3)
    row = x[1]
    row.fill_(5.0)
    assert x.tolist() == [[0, 0, 0], [5, 5, 5]]
    x.T.add_(fg.ones(3, 2), alpha=2.0)
    assert x.tolist() == [[2, 2, 2], [7, 7, 7]]
    x.mul_(0.5)
    x[:, 0].copy_(fg.tensor([9.0, 9.0]))
    assert x.tolist() == [[9, 1, 1], [9, 3.5, 3.5]]
    x.zero_()
    assert x.numpy().sum() == 0


def test_repr_looks_like_numpy_and_torch():
    assert repr(fg.tensor([[1.0, 2.0], [3.0, 4.0]])) == "tensor([[1., 2.],\n        [3., 4.]])"
    assert repr(fg.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(fg.tensor([1.0], dtype=fg.float64)) == "tensor([1.], dtype=ferrograd.float64)"
    x = fg.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"
    assert repr(x * 2) == "tensor([2., 4.], grad_fn=<MulBackward>)"
    assert repr(fg.zeros(0, 3)) == "tensor([], size=(0, 3))"
    assert repr(fg.float32) == "ferrograd.float32"


def test_threads_setting():
    n = fg.get_num_threads()
    fg.set_num_threads(1)
    assert fg.get_num_threads() == 1
    a = fg.randn(300, 200)
    b = fg.randn(200, 100)
    one = (a @ b).numpy()
    fg.set_num_threads(2)
    assert np.allclose((a @ b).numpy(), one, atol=1e-4)
    fg.set_num_threads(n)
    with pytest.raises(ValueError):
        fg.set_num_threads(0)


def test_gil_is_released_during_large_matmul():
    """Another Python thread keeps running while big matmuls compute."""
    a = fg.randn(1536, 1536)
    done = threading.Event()
    calls = []
    ticks = []

    def work():
        start = time.perf_counter()
        while time.perf_counter() - start < 0.3:
            a @ a
            calls.append(1)
        done.set()

    t = threading.Thread(target=work)
    t.start()
    while not done.is_set():
        ticks.append(1)
        time.sleep(0.0005)
    t.join()
    # Holding the GIL, this thread could tick only between two matmuls (about once per
    # call); released, it ticks many times during each call.
    assert len(ticks) > 3 * len(calls), (len(ticks), len(calls))


def test_devices_and_gpu_refusal():
    assert fg.devices()[0]["name"] == "cpu"
    with pytest.raises(fg.DeviceError, match="unknown device 'tpu'"):
        fg.zeros(2).to("tpu")
    # with no adapter visible (a backend this build lacks), asking for the GPU is a clear error
    code = (
        "import ferrograd as fg\n"
        "try:\n    fg.zeros(2, device='gpu')\nexcept fg.DeviceError as e:\n    print('DeviceError:', e)\n"
        "print('available:', fg.gpu.is_available())\n"
        "try:\n    fg.tensor([1, 2]).to('gpu')\nexcept fg.DeviceError:\n    print('labels DeviceError')\n"
    )
    env = {**os.environ, "WGPU_BACKEND": "gl"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert "DeviceError: no GPU adapter found" in r.stdout, r.stdout + r.stderr
    # fg.gpu answers without raising, and int64 labels still need a GPU to "move" to
    assert "available: False" in r.stdout and "labels DeviceError" in r.stdout, r.stdout + r.stderr


# ----------------------------------------------------------------------------- PyTorch idioms


def test_pytorch_conveniences_match_numpy():
    """The small methods PyTorch scripts lean on: .t(), *_as, .data, .cpu(), predicates,
    sign/square/reciprocal/rsqrt, strict products, split/chunk/unbind, new_*, sizes."""
    r = np.random.default_rng(3)
    a = r.standard_normal((3, 4)).astype(np.float32)
    t = fg.tensor(a)
    np.testing.assert_array_equal(t.t().numpy(), a.T)
    assert t.t().shares_storage(t)
    np.testing.assert_array_equal(fg.tensor([1.0, 2.0]).t().numpy(), [1.0, 2.0])
    with pytest.raises(ValueError, match="t: expects a tensor with at most 2 dims, got 3"):
        fg.zeros(2, 2, 2).t()
    other = fg.zeros(4, 3)
    assert t.view_as(fg.zeros(12)).shape == (12,) and t.reshape_as(other).shape == (4, 3)
    assert fg.ones(1, 4).expand_as(t).shape == (3, 4)
    assert fg.tensor([1, 2]).type_as(t).dtype == fg.float32
    leaf = fg.tensor(a, requires_grad=True)
    assert not leaf.data.requires_grad and leaf.data.shares_storage(leaf)
    assert t.cpu() is not None and t.cpu().device == "cpu"
    assert t.element_size() == 4 and t.itemsize == 4 and t.nbytes == 48
    z = fg.tensor([1, 2]).new_zeros(2, 3)
    assert z.dtype == fg.int64 and z.shape == (2, 3) and not z.numpy().any()
    assert t.new_ones((2,)).numpy().tolist() == [1.0, 1.0]
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -2.5, 3.0], np.float32)
    s = fg.tensor(special)
    np.testing.assert_array_equal(s.isnan().numpy(), np.isnan(special))
    np.testing.assert_array_equal(fg.isinf(s).numpy(), np.isinf(special))
    np.testing.assert_array_equal(fg.isfinite(s).numpy(), np.isfinite(special))
    np.testing.assert_array_equal(fg.tensor([1, 2]).isnan().numpy(), [False, False])
    np.testing.assert_array_equal(fg.tensor([1, 2]).isfinite().numpy(), [True, True])
    np.testing.assert_array_equal(
        s.sign().numpy(), np.nan_to_num(np.sign(special))
    )  # PyTorch: sign(NaN) is 0
    np.testing.assert_array_equal(fg.tensor([-3, 0, 4]).sign().numpy(), [-1, 0, 1])
    np.testing.assert_allclose(t.square().numpy(), a * a, rtol=1e-6)
    np.testing.assert_allclose(t.reciprocal().numpy(), 1 / a, rtol=1e-6)
    np.testing.assert_allclose(fg.tensor([1, 4]).reciprocal().numpy(), [1.0, 0.25])
    np.testing.assert_allclose(t.abs().rsqrt().numpy(), 1 / np.sqrt(np.abs(a)), rtol=1e-6)
    b = r.standard_normal((4, 2)).astype(np.float32)
    np.testing.assert_allclose(t.mm(fg.tensor(b)).numpy(), a @ b, rtol=1e-5)
    np.testing.assert_allclose(fg.mv(t, fg.tensor(b[:, 0])).numpy(), a @ b[:, 0], rtol=1e-5)
    np.testing.assert_allclose(fg.dot(t[0], t[1]).numpy(), a[0] @ a[1], rtol=1e-5)
    np.testing.assert_allclose(fg.outer(t[0], t[1, :2]).numpy(), np.outer(a[0], a[1, :2]), rtol=1e-6)
    bb = r.standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(fg.bmm(fg.tensor(bb), fg.tensor(bb).permute(0, 2, 1)).numpy(),
                               bb @ bb.transpose(0, 2, 1), rtol=1e-5)  # fmt: skip
    for bad, msg in [
        (lambda: t.mm(fg.zeros(4)), r"mm: expected 2-D and 2-D tensors, got shapes \(3, 4\) and \(4,\)"),
        (lambda: fg.bmm(fg.zeros(2, 3, 4), fg.zeros(3, 4, 5)), "bmm: batch sizes differ"),
        (lambda: fg.dot(t, t), "dot: expected 1-D and 1-D tensors"),
    ]:
        with pytest.raises(fg.ShapeError, match=msg):
            bad()
    parts = t.split(3, dim=1)
    assert [p.shape for p in parts] == [(3, 3), (3, 1)] and all(p.shares_storage(t) for p in parts)
    parts = fg.split(t, [1, 2], dim=0)
    np.testing.assert_array_equal(parts[1].numpy(), a[1:])
    assert [p.shape for p in t.chunk(3, dim=1)] == [(3, 2), (3, 2)]
    assert [p.shape for p in fg.chunk(fg.zeros(5), 3)] == [(2,), (2,), (1,)]
    rows = fg.unbind(t)
    assert len(rows) == 3 and rows[2].shape == (4,)
    np.testing.assert_array_equal(rows[2].numpy(), a[2])
    with pytest.raises(fg.ShapeError, match=r"split: sizes \[1, 1\] add up to 2, but dim 0"):
        t.split([1, 1])
    with pytest.raises(ValueError, match="chunk: the number of chunks must be positive"):
        t.chunk(0)


def test_device_names():
    assert fg.device("cpu") == "cpu" and fg.ones(2).to(fg.device("cpu")).device == "cpu"
    with pytest.raises(fg.DeviceError, match="unknown device 'tpu'"):
        fg.device("tpu")
    with pytest.raises(TypeError, match="device: expected a device name"):
        fg.device(0)


def test_in_place_forms():
    a = fg.tensor([1.0, -2.0, 3.0])
    a.sub_(fg.tensor([1.0, 1.0, 1.0]), alpha=2.0)
    np.testing.assert_array_equal(a.numpy(), [-1.0, -4.0, 1.0])
    a.div_(2.0)
    np.testing.assert_array_equal(a.numpy(), [-0.5, -2.0, 0.5])
    a.div_(fg.tensor([1.0, 4.0, 0.5]))
    np.testing.assert_array_equal(a.numpy(), [-0.5, -0.5, 1.0])
    assert a.clamp_(min=-0.25) is a
    np.testing.assert_array_equal(a.numpy(), [-0.25, -0.25, 1.0])
    w = fg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="div_: a tensor that requires grad"):
        w.div_(2.0)
    with fg.no_grad():
        w.sub_(w.data * 0.5)
    np.testing.assert_array_equal(w.numpy(), [0.5, 0.5])


def test_max_min_along_a_dim_give_values_and_indices_as_pytorch():
    """PyTorch's idioms: `_, pred = out.max(1)`, `out.max(1)[1]`, `out.max(dim=1).indices`,
    `torch.max(a, b)`; without a dim or with a tuple of dims the values alone."""
    import pickle

    out = fg.tensor([[0.25, 2.0, -1.0], [3.0, 3.0, 0.5]], requires_grad=True)
    _, pred = out.max(1)
    assert pred.tolist() == [1, 0] and pred.dtype == fg.int64
    assert out.max(1)[1].tolist() == [1, 0] and out.max(dim=1).indices.tolist() == [1, 0]
    r = out.min(0, keepdim=True)
    assert isinstance(r, fg.return_types.min) and r.values.tolist() == [[0.25, 2.0, -1.0]]
    assert r.indices.tolist() == [[0, 0, 0]] and repr(r).startswith("min(values=tensor(")
    assert fg.max(out, 1).indices.tolist() == [1, 0]
    assert fg.max(out, fg.zeros(2, 3)).tolist() == [[0.25, 2.0, 0.0], [3.0, 3.0, 0.5]]
    assert fg.min(out, fg.zeros(2, 3)).tolist() == [[0.0, 0.0, -1.0], [0.0, 0.0, 0.0]]
    assert out.max().item() == 3.0 and out.max((0, 1)).item() == 3.0
    assert out.max(np.int64(1)).indices.tolist() == [1, 0]  # any integer, as an index
    out.max(1).values.sum().backward()
    assert out.grad.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]  # all to the returned index, as PyTorch
    # the types are importable by name (a named tuple of them pickles)
    again = pickle.loads(pickle.dumps(fg.return_types.max(1.0, 2)))
    assert isinstance(again, fg.return_types.max) and again.indices == 2


def test_deepcopy_and_pickle_of_tensors():
    """copy.deepcopy gives a leaf with its own data (and grad), dtype and requires_grad;
    pickling round-trips every dtype; a tensor of the graph is refused by both."""
    import copy
    import pickle

    x = fg.tensor([[1.0, -2.0], [3.0, 0.5]], requires_grad=True)
    (x * x).sum().backward()
    c = copy.deepcopy(x)
    assert c is not x and c.is_leaf and c.requires_grad and c.dtype == fg.float32
    assert c.tolist() == x.tolist() and c.grad.tolist() == x.grad.tolist()
    with fg.no_grad():
        x.mul_(0.0)
    x.grad.mul_(0.0)
    assert c.tolist() == [[1.0, -2.0], [3.0, 0.5]] and c.grad.tolist() == [[2.0, -4.0], [6.0, 1.0]]
    strided = fg.tensor(np.arange(6.0).reshape(2, 3))[:, ::2]
    scalar = fg.tensor(3.0, requires_grad=True)
    for t in [fg.tensor([1.5, -2.0]), fg.tensor([1, 2**60]), fg.tensor([True, False]), strided, scalar]:
        back = pickle.loads(pickle.dumps(t))
        assert back.dtype == t.dtype and back.shape == t.shape and back.tolist() == t.tolist()
        assert back.requires_grad == t.requires_grad and back.device == "cpu"
    assert pickle.loads(pickle.dumps(fg.float64)) is fg.float64
    y = x * 2
    with pytest.raises(RuntimeError, match="deepcopy: only leaf tensors"):
        copy.deepcopy(y)
    with pytest.raises(RuntimeError, match="pickle: a tensor computed by an op"):
        pickle.dumps(y)
    assert pickle.loads(pickle.dumps(y.detach())).tolist() == y.tolist()
