"""Bad input gives a clear, typed Python exception; nothing aborts the interpreter."""

import numpy as np
import pytest

import ferrograd as fg


def test_matmul_shape_error_names_op_and_shapes():
    with pytest.raises(fg.ShapeError) as e:
        fg.ones(128, 784) @ fg.ones(512, 10)
    assert str(e.value) == "matmul: shapes (128, 784) and (512, 10) do not align (784 != 512)"
    assert isinstance(e.value, ValueError)
    with pytest.raises(fg.ShapeError, match="matmul"):
        fg.ones(3) @ fg.ones(4)
    with pytest.raises(fg.ShapeError, match="at least one dimension"):
        fg.tensor(1.0) @ fg.ones(1)


def test_broadcast_error_names_op_and_shapes():
    with pytest.raises(fg.ShapeError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        fg.ones(2, 3) + fg.ones(4)
    with pytest.raises(fg.ShapeError, match="mul"):
        fg.ones(2, 3) * fg.ones(3, 2)
    with pytest.raises(fg.ShapeError, match="where"):
        fg.where(fg.ones(2).bool(), fg.ones(3), fg.ones(2))


def test_layout_errors():
    with pytest.raises(fg.ShapeError, match=r"reshape: shape \[4, 4\] is invalid .* \(2, 3\)"):
        fg.ones(2, 3).reshape(4, 4)
    with pytest.raises(fg.ShapeError, match="only one dimension can be -1"):
        fg.ones(6).reshape(-1, -1)
    with pytest.raises(fg.ShapeError, match="permute"):
        fg.ones(2, 3).permute(0, 0)
    with pytest.raises(fg.ShapeError, match="expand"):
        fg.ones(2, 3).expand(4, 3)
    with pytest.raises(fg.ShapeError, match="cat"):
        fg.cat([fg.ones(2, 3), fg.ones(2, 4)], dim=0)
    with pytest.raises(fg.ShapeError, match="stack"):
        fg.stack([fg.ones(2), fg.ones(3)])
    with pytest.raises(fg.ShapeError, match="linear"):
        fg.linear(fg.ones(2, 3), fg.ones(4, 5))
    with pytest.raises(IndexError, match="dim 2 is out of range"):
        fg.ones(2, 3).sum(dim=2)
    with pytest.raises(IndexError):
        fg.ones(2, 3).transpose(0, 5)


def test_index_errors():
    with pytest.raises(IndexError, match="out of bounds"):
        fg.ones(3)[10]
    with pytest.raises(IndexError, match="out of bounds"):
        fg.ones(3)[-4]
    with pytest.raises(IndexError, match="too many indices"):
        fg.ones(3)[0, 0]
    with pytest.raises(IndexError, match="out of bounds"):
        fg.ones(3, 2)[fg.tensor([0, 5])]
    with pytest.raises(IndexError, match="out of bounds"):
        fg.ones(3).index_select(0, fg.tensor([3]))
    with pytest.raises(IndexError, match="int64"):
        fg.ones(3)[fg.tensor([0.0])]
    with pytest.raises(IndexError):
        fg.ones(3)["a"]
    with pytest.raises(ValueError, match="step"):
        fg.ones(3)[::0]
    with pytest.raises(IndexError, match="one_hot"):
        fg.one_hot(fg.tensor([0, 3]), 3)


def test_type_and_dtype_errors():
    with pytest.raises(fg.DTypeError):
        fg.tensor("abc")
    with pytest.raises(fg.DTypeError):
        fg.tensor([1 + 2j])
    with pytest.raises(TypeError):
        fg.ones(2) + "a"
    with pytest.raises(TypeError):
        fg.ones(2) @ 3
    with pytest.raises(TypeError):
        fg.zeros(2.5)
    with pytest.raises(fg.DTypeError, match="int64"):
        fg.ones(3).index_select(0, fg.tensor([0.0]))
    with pytest.raises(fg.DTypeError, match="labels must be int64"):
        fg.one_hot(fg.ones(3))
    assert isinstance(fg.DTypeError("x"), TypeError)
    assert isinstance(fg.DeviceError("x"), RuntimeError)


def test_bad_values():
    with pytest.raises(fg.ShapeError, match="not rectangular"):
        fg.tensor([[1, 2], [3]])
    with pytest.raises(ValueError, match="negative dimension"):
        fg.ones(-1)
    with pytest.raises(ValueError, match="negative dimension"):
        fg.zeros(2, -3)
    with pytest.raises(ValueError, match="arange"):
        fg.arange(0, 10, 0)
    with pytest.raises(ValueError, match="clamp"):
        fg.ones(2).clamp()
    # min > max is not an error: PyTorch documents that every element becomes max
    assert fg.ones(2).clamp(1.0, 0.0).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="item"):
        fg.ones(2).item()
    with pytest.raises(ValueError, match="ambiguous"):
        bool(fg.ones(2))
    with pytest.raises(ValueError, match="max"):
        fg.ones(0).max()
    with pytest.raises(ValueError, match="argmax"):
        fg.ones(0).argmax()
    with pytest.raises(ValueError, match="high"):
        fg.randint(5, 5, (2,))


def test_huge_sizes_raise_memory_error():
    with pytest.raises(MemoryError):
        fg.zeros(2**62, 4)  # element count overflows
    with pytest.raises(MemoryError):
        fg.zeros(2**40, 2**20)  # 4 EiB: the allocation is refused, not an abort
    with pytest.raises(MemoryError):
        fg.arange(0, 1e300, 1.0)
    with pytest.raises((OverflowError, ValueError)):
        fg.zeros(10**30)


def test_edge_values_behave_like_numpy():
    e = fg.zeros(0, 3)
    assert e.sum().item() == 0.0 and e.sum(dim=0).tolist() == [0.0, 0.0, 0.0]
    assert (e + fg.ones(3)).shape == (0, 3)
    assert (fg.zeros(2, 0) @ fg.zeros(0, 3)).tolist() == [[0.0] * 3] * 2
    x = fg.tensor([1.0, float("nan"), float("inf"), -float("inf")])
    with np.errstate(all="ignore"):
        ref = np.array([1.0, np.nan, np.inf, -np.inf], dtype=np.float32)
        np.testing.assert_allclose(x.exp().numpy(), np.exp(ref), rtol=1e-6)
        np.testing.assert_array_equal((x * 0).numpy(), ref * 0)
        np.testing.assert_array_equal(x.relu().numpy(), np.maximum(ref, 0))
    assert np.isnan(x.max().item()) and np.isnan(x.sum().item())
    assert x.argmax().item() == 1  # NumPy: the first NaN wins
    assert (fg.tensor([1.0]) / 0.0).item() == float("inf")


def test_no_panic_on_fuzzed_ops():
    """Random shapes and arguments: every failure must be an ordinary Exception."""
    rng = np.random.default_rng(0)
    ops = [
        lambda a, b: a + b,
        lambda a, b: a @ b,
        lambda a, b: fg.cat([a, b], int(rng.integers(-3, 3))),
        lambda a, b: a.reshape(*rng.integers(-1, 4, size=rng.integers(0, 3))),
        lambda a, b: a.sum(dim=int(rng.integers(-3, 3))),
        lambda a, b: a[int(rng.integers(-4, 4))],
        lambda a, b: a.permute(*rng.integers(-2, 3, size=a.ndim)),
        lambda a, b: a.expand(*b.shape),
        lambda a, b: a.index_select(0, fg.tensor(rng.integers(-3, 4, size=2))),
        lambda a, b: a.softmax(dim=int(rng.integers(-3, 3))),
        lambda a, b: fg.stack([a, b]),
        lambda a, b: a.transpose(int(rng.integers(-3, 3)), int(rng.integers(-3, 3))),
        lambda a, b: fg.linear(a, b),
        lambda a, b: a.view(*rng.integers(-1, 5, size=2)),
        lambda a, b: a[:: int(rng.integers(-2, 3)) or 1, None],
        lambda a, b: a.var(dim=0, correction=2),
    ]
    for _ in range(600):
        shapes = [tuple(rng.integers(0, 4, size=rng.integers(0, 4))) for _ in range(2)]
        a = fg.randn(*shapes[0], requires_grad=bool(rng.integers(0, 2)))
        b = fg.randn(*shapes[1])
        op = ops[rng.integers(len(ops))]
        try:
            out = op(a, b)
            if out.requires_grad and out.numel() > 0:
                out.sum().backward()
        except Exception:  # noqa: S110  (any ordinary error is fine; a panic is not)
            pass


def test_binding_edge_cases():
    t = fg.ones(3)
    with pytest.raises(TypeError, match="add: expected a tensor or a number, got str"):
        t.add("x")
    assert t.__add__("x") is NotImplemented  # operators let Python try the other side
    assert fg.tensor([2**53 + 1]).item() == 2**53 + 1  # int64 items are exact
    with pytest.raises(ValueError, match="NaN"):
        int(fg.tensor(float("nan")))
    with pytest.raises(TypeError, match="modulo"):
        pow(t, 2, 5)
    with pytest.raises(ValueError, match="copy"):
        np.asarray(t, copy=False)
    assert fg.float32 != 2 and fg.float32 == fg.float32
    assert fg.ones(2, 3).stride(1) == 1 and fg.arange(5).narrow(0, -2, 2).tolist() == [3, 4]
    x = fg.ones(3)
    x.mul_(fg.tensor([1.0, 2.0, 3.0]))
    assert x.tolist() == [1.0, 2.0, 3.0]


def test_error_classes_are_also_runtime_errors():
    """PyTorch raises RuntimeError for most bad input; ferrograd's documented classes are
    each also a RuntimeError, so `except RuntimeError` in a ported script still catches
    them, and `except ValueError`/`TypeError`/`IndexError` keep working."""
    for cls, base in (
        (fg.ShapeError, ValueError),
        (fg.DTypeError, TypeError),
        (fg.ArgumentError, ValueError),
        (fg.OutOfRangeError, IndexError),
    ):
        assert issubclass(cls, base) and issubclass(cls, RuntimeError), cls
    # PyTorch's unsupported-dtype errors are NotImplementedError (itself a RuntimeError)
    assert issubclass(fg.DTypeError, NotImplementedError)
    F = fg.nn.functional
    cases = [
        (lambda: fg.ones(2, 2, 2).t(), fg.ArgumentError, "t: expects"),
        (lambda: fg.zeros(-1), fg.ArgumentError, "negative dimension"),
        (lambda: bool(fg.ones(2)), fg.ArgumentError, "ambiguous"),
        (lambda: fg.arange(0, 1, 0), fg.ArgumentError, "arange: step"),
        (lambda: fg.ones(3).clamp(), fg.ArgumentError, "clamp"),
        (lambda: fg.ones(2, 3).sum((0, 0)), fg.ArgumentError, "more than once"),
        (lambda: fg.einsum("ij->i", fg.ones(2)), fg.ArgumentError, "einsum"),
        (lambda: F.pad(fg.ones(2, 3), (1,)), fg.ArgumentError, "pad"),
        (lambda: F.binary_cross_entropy(fg.tensor([2.0]), fg.tensor([1.0])), fg.ArgumentError, r"\[0, 1\]"),
        (lambda: fg.bincount(fg.tensor([-1])), fg.ArgumentError, "non-negative"),
        (lambda: fg.ones(3).expand(2, 3).add_(1), fg.ArgumentError, "add_"),
        (lambda: F.max_pool2d(fg.ones(1, 1, 4, 4), 2, padding=2), fg.ArgumentError, "max_pool2d"),
        (lambda: fg.ones(0).max(), fg.ArgumentError, "zero-size"),
        (lambda: fg.ones(3).gather(0, fg.tensor([5])), fg.OutOfRangeError, "out of bounds"),
        (lambda: fg.ones(3).topk(5), fg.OutOfRangeError, "topk"),
        (lambda: fg.ones(3).kthvalue(5), fg.OutOfRangeError, "kthvalue"),
        (lambda: F.one_hot(fg.tensor([5]), 3), fg.OutOfRangeError, "one_hot"),
        (lambda: fg.ones(3)[5], fg.OutOfRangeError, "out of bounds"),
        (lambda: fg.tensor([1, 2]).add_(1.5), fg.DTypeError, "add_"),
        (lambda: fg.ones(2) @ fg.ones(3), fg.ShapeError, "matmul"),
    ]
    for call, cls, words in cases:
        with pytest.raises(RuntimeError, match=words) as e:
            call()
        assert isinstance(e.value, cls), (words, type(e.value))
