"""DLPack (issue 19): `np.from_dlpack(t)` views a host tensor's memory (writes through either
side show in the other, views keep their strides and offset, every dtype NumPy has), the
memory outlives the tensor while the array holds it, a tensor that requires grad or lives on
the GPU is refused, `copy=True` exports a copy, an unconsumed capsule frees itself, and the
memory of a storage stays put through in-place updates of narrow dtypes. `fg.from_dlpack`
shares the producer's host memory (and keeps the producer alive exactly as long as a view of
it lives), copying only what it documents."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import ferrograd as fg


def test_numpy_views_the_memory_both_ways():
    t = fg.zeros(5)
    a = np.from_dlpack(t)
    with fg.no_grad():
        t.add_(1.0)
    np.testing.assert_array_equal(a, np.ones(5, np.float32))
    a[2] = 7.0
    assert t.tolist() == [1.0, 1.0, 7.0, 1.0, 1.0]
    assert t.__dlpack_device__() == (1, 0)


def test_views_keep_their_strides_and_offset():
    base = fg.arange(12.0).reshape(3, 4)
    view = base.t()[1:]  # transposed, starting one row in
    a = np.from_dlpack(view)
    np.testing.assert_array_equal(a, view.numpy())
    assert a.strides == (4, 4 * 4)  # element strides (1, 4), in bytes
    a[0, 0] = -1.0  # element (0, 1) of the base
    assert base[0, 1].item() == -1.0


@pytest.mark.parametrize(
    "dtype,np_dtype",
    [
        (fg.float32, np.float32),
        (fg.float64, np.float64),
        (fg.float16, np.float16),
        (fg.int64, np.int64),
        (fg.int32, np.int32),
        (fg.uint8, np.uint8),
        (fg.bool_, np.bool_),
    ],
)
def test_dtypes(dtype, np_dtype):
    t = fg.tensor([0, 1, 1, 0]).to(dtype)
    a = np.from_dlpack(t)
    assert a.dtype == np_dtype
    np.testing.assert_array_equal(a, np.array([0, 1, 1, 0]).astype(np_dtype))


def test_the_memory_outlives_the_tensor_while_the_array_holds_it():
    t = fg.arange(1000.0)
    a = np.from_dlpack(t)
    del t
    gc.collect()
    junk = [fg.full([1000], 5.0) for _ in range(20)]  # would reuse freed memory
    assert a[999] == 999.0 and a.sum() == sum(range(1000))
    del junk
    cap = fg.ones(3).__dlpack__()  # never consumed: its destructor frees the export
    del cap
    gc.collect()


def test_refusals_and_copies():
    p = fg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="requires grad.*detach"):
        np.from_dlpack(p)
    d = np.from_dlpack(p.detach())  # shares, outside autograd
    d[0] = 4.0
    assert p.tolist()[0] == 4.0
    t = fg.zeros(3)
    c = np.from_dlpack(t, copy=True)
    c[0] = 9.0
    assert t.tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(BufferError, match="device type"):
        t.__dlpack__(dl_device=(2, 0))
    if fg.gpu_available():
        g = fg.ones(3, device="gpu")
        assert g.__dlpack_device__() == (7, 0)
        with pytest.raises(BufferError, match="cpu"):
            np.from_dlpack(g)


def test_narrow_storage_stays_put_through_an_optimizer_step():
    """Updates of float16 parameters run on float32 copies; the result is written back into
    the same memory, so a NumPy view of it sees the update (it used to get a new vector)."""
    w = fg.ones(4).half().requires_grad_()
    view = np.from_dlpack(w.detach())
    opt = fg.optim.SGD([w], lr=0.5)
    (w.float() * 2.0).sum().backward()
    opt.step()
    np.testing.assert_array_equal(view, np.zeros(4, np.float16))  # 1 - 0.5 * 2
    assert w.tolist() == [0.0] * 4


def test_from_dlpack_shares_numpy_memory_both_ways():
    b = np.arange(6, dtype=np.float32)
    u = fg.from_dlpack(b)
    b[0] = 42.0
    assert u.tolist() == [42.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    with fg.no_grad():
        u.mul_(2.0)
    np.testing.assert_array_equal(b, [84.0, 2.0, 4.0, 6.0, 8.0, 10.0])
    # strides and offsets are kept, not copied away
    m = np.arange(12.0).reshape(3, 4)
    v = fg.from_dlpack(m.T[1:, ::2])
    np.testing.assert_array_equal(v.numpy(), m.T[1:, ::2])
    m[2, 1] = -5.0  # element (0, 1) of the view
    assert v[0, 1].item() == -5.0
    own = fg.arange(3.0)
    same = fg.from_dlpack(own)  # a ferrograd tensor: its own storage, as torch's
    with fg.no_grad():
        same.add_(1.0)
    assert own.tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(RuntimeError, match="requires grad"):
        fg.from_dlpack(fg.ones(2, requires_grad=True))
    if fg.gpu_available():
        g = fg.ones(2, device="gpu")
        assert fg.from_dlpack(g).device == "gpu"
    with pytest.raises(TypeError, match="__dlpack__"):
        fg.from_dlpack([1, 2])


@pytest.mark.parametrize("np_dtype", [np.float32, np.float64, np.float16, np.int64, np.int32, np.uint8])
def test_from_dlpack_shares_every_dtype_it_stores(np_dtype):
    b = np.zeros(4, np_dtype)
    u = fg.from_dlpack(b)
    b[1] = 3
    assert u.tolist()[1] == 3
    assert u.numpy().dtype == np_dtype


def test_the_producer_lives_exactly_as_long_as_a_view_of_it():
    import weakref

    b = np.arange(100.0)
    gone = weakref.ref(b)
    u = fg.from_dlpack(b)[10:20]  # a view of the shared storage keeps it too
    del b
    gc.collect()
    assert gone() is not None
    junk = [np.full(100, 7.0) for _ in range(20)]  # would reuse freed memory
    assert u.tolist() == [float(i) for i in range(10, 20)]
    del junk
    del u
    gc.collect()
    assert gone() is None, "the producer's array was not released"


def test_a_round_trip_through_numpy_shares_and_frees():
    t = fg.arange(5.0)
    back = fg.from_dlpack(np.from_dlpack(t))
    with fg.no_grad():
        back.mul_(2.0)
    assert t.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]
    del t
    gc.collect()
    assert back.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_what_is_copied_instead_of_shared():
    ro = np.arange(3.0)
    ro.flags.writeable = False  # ferrograd's in-place ops would write it
    assert fg.from_dlpack(ro).tolist() == [0.0, 1.0, 2.0]
    rev = np.arange(4.0)[::-1]  # negative strides: a storage cannot start before its view
    r = fg.from_dlpack(rev)
    assert r.tolist() == [3.0, 2.0, 1.0, 0.0]
    flags = np.array([True, False])  # foreign bytes need not be 0 or 1
    f = fg.from_dlpack(flags)
    flags[0] = False
    assert f.tolist() == [True, False]
    small = np.arange(3, dtype=np.int16)  # converted, as from_numpy converts
    assert fg.from_dlpack(small).tolist() == [0, 1, 2]
    assert fg.from_dlpack(np.zeros((0, 3), np.float32)).shape == (0, 3)


def test_a_shared_gradient_seed_is_not_accumulated_into():
    """A leaf's .grad is updated in place; it must never be the producer's memory."""
    x = fg.ones(3, requires_grad=True)
    seed = np.full(3, 2.0, np.float32)
    for _ in range(2):
        (x * 1.0).backward(gradient=fg.from_dlpack(seed))
    assert x.grad.tolist() == [4.0, 4.0, 4.0]
    np.testing.assert_array_equal(seed, [2.0, 2.0, 2.0])


def test_more_arrays_than_the_lending_table_holds_are_copied():
    arrays = [np.full(2, float(i), np.float32) for i in range(4200)]
    views = [fg.from_dlpack(a) for a in arrays]
    assert all(v.tolist() == [float(i)] * 2 for i, v in enumerate(views))
    del views
    gc.collect()
    again = fg.from_dlpack(arrays[0])  # slots are free again: shared
    arrays[0][0] = -1.0
    assert again.tolist() == [-1.0, 0.0]


def test_a_view_dropped_on_another_thread_releases_the_producer():
    import threading
    import weakref

    b = np.arange(8.0)
    gone = weakref.ref(b)
    box = [fg.from_dlpack(b) * 1.0, fg.from_dlpack(b)]
    del b
    worker = threading.Thread(target=box.clear)
    worker.start()
    worker.join()
    gc.collect()
    assert gone() is None


def test_torch_reads_the_memory_too():
    torch = pytest.importorskip("torch")
    t = fg.zeros(4)
    v = torch.from_dlpack(t)
    with fg.no_grad():
        t.add_(2.0)
    assert v.tolist() == [2.0] * 4
    src = torch.arange(3.0)
    u = fg.from_dlpack(src)
    src[0] = 9.0
    assert u.tolist() == [9.0, 1.0, 2.0]
    del src
    gc.collect()
    assert u.tolist() == [9.0, 1.0, 2.0]


@pytest.mark.parametrize("order", range(4))
def test_loans_over_one_address_release_in_any_order(order):
    """Several storages over one address (shared twice, viewed under other dtypes): whatever
    order they die in, each stays readable until it does, and the producer goes with the last."""
    import random
    import weakref

    a = np.arange(6, dtype=np.float32)
    gone = weakref.ref(a)
    s1 = fg.from_dlpack(a)
    s2 = fg.from_dlpack(a[:3])
    views = [s1, s1.view(fg.int32), s2, s2.view(fg.uint8)]
    want = [v.tolist() for v in views]
    del s1, s2, a
    pairs = list(zip(views, want))
    del views
    random.Random(order).shuffle(pairs)
    while pairs:
        pairs.pop()
        gc.collect()
        junk = [np.full(6, 9.0, np.float32) for _ in range(8)]  # would reuse freed memory
        assert [v.tolist() for v, _ in pairs] == [w for _, w in pairs]
        del junk
    gc.collect()
    assert gone() is None


def test_from_numpy_and_numpy_share_memory_as_pytorch():
    """`torch.from_numpy` and `Tensor.numpy()` share memory; so do ferrograd's."""
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = fg.from_numpy(a)
    a[0, 0] = 100.0
    assert t[0, 0].item() == 100.0
    t.add_(1.0)
    assert a[1, 2] == 6.0
    n = t.numpy()
    n[1, 1] = -1.0
    assert t[1, 1].item() == -1.0 and a[1, 1] == -1.0
    # views share too, with their strides
    v = t.T.numpy()
    assert v.shape == (3, 2) and np.shares_memory(v, a)
    for dtype in (np.float16, np.float64, np.uint8, np.int32, np.int64):
        b = np.ones(3, dtype=dtype)
        s = fg.from_numpy(b)
        b[1] = 7
        assert s[1].item() == 7 and s.numpy().dtype == dtype


def test_arrays_that_cannot_be_shared_are_copied():
    ro = np.ones(3, dtype=np.float32)
    ro.flags.writeable = False
    t = fg.from_numpy(ro)
    t.add_(1.0)  # a copy: the read-only array is untouched
    assert ro.tolist() == [1.0, 1.0, 1.0] and t.tolist() == [2.0, 2.0, 2.0]
    rev = np.arange(4.0)[::-1]
    assert fg.from_numpy(rev).tolist() == [3.0, 2.0, 1.0, 0.0]
    b = np.array([True, False])
    tb = fg.from_numpy(b)
    b[0] = False
    assert tb.tolist() == [True, False]
    i16 = np.array([1, 2], dtype=np.int16)
    assert fg.from_numpy(i16).dtype == fg.int64


def test_numpy_of_a_tensor_that_requires_grad_is_a_view_cut_from_the_graph():
    w = fg.ones(3, requires_grad=True)
    a = w.numpy()
    with fg.no_grad():
        w.mul_(2.0)
    assert a.tolist() == [2.0, 2.0, 2.0]
