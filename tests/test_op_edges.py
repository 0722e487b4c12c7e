"""Wrong answers found by running a peer framework's op tests against ferrograd (issue 16),
each fixed and pinned here with PyTorch's documented behaviour."""

from __future__ import annotations

import numpy as np
import pytest

import ferrograd as fg
from ferrograd.autograd import gradcheck

F = fg.nn.functional
rng = np.random.default_rng(3)


def _log_softmax(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return a - m - np.log(np.exp(a - m).sum(axis=axis, keepdims=True))


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4), (2, 3, 2, 2), (3,)])
def test_cross_entropy_classes_are_dim_1_for_probability_and_index_targets(shape, device):
    """torch.nn.functional.cross_entropy: input (C), (N, C) or (N, C, d1, ...); the class
    dimension is 1 (0 when unbatched), with class-index targets (N, d1, ...) or class
    probabilities shaped as the input."""
    x = rng.standard_normal(shape).astype(np.float32)
    cdim = 1 if len(shape) > 1 else 0
    p = rng.dirichlet(np.ones(shape[cdim]), size=int(np.prod(shape)) // shape[cdim])
    p = np.moveaxis(p.reshape(*[s for i, s in enumerate(shape) if i != cdim], shape[cdim]), -1, cdim)
    ls = _log_softmax(x.astype(np.float64), cdim)
    got = F.cross_entropy(fg.tensor(x).to(device), fg.tensor(p.astype(np.float32)).to(device)).item()
    assert got == pytest.approx(-(p * ls).sum(axis=cdim).mean(), rel=1e-5)
    labels = rng.integers(0, shape[cdim], [s for i, s in enumerate(shape) if i != cdim])
    want = -np.take_along_axis(ls, np.expand_dims(labels, cdim), cdim).squeeze(cdim)
    xt, lt = fg.tensor(x).to(device), fg.tensor(labels)
    assert F.cross_entropy(xt, lt).item() == pytest.approx(want.mean(), rel=1e-5)
    none = F.cross_entropy(xt, lt, reduction="none")
    assert tuple(none.shape) == tuple(labels.shape)
    np.testing.assert_allclose(none.numpy(), want, rtol=1e-5)
    # nll_loss on log-probabilities, weight and ignore_index included
    if len(shape) > 2:
        w = np.array([0.5, 2.0, 1.0])
        lab = labels.copy()
        lab.flat[0] = -100
        keep = lab != -100
        safe = np.where(keep, lab, 0)
        picked = -np.take_along_axis(ls, np.expand_dims(safe, 1), 1).squeeze(1) * w[safe] * keep
        got = F.cross_entropy(xt, fg.tensor(lab), weight=fg.tensor(w.astype(np.float32))).item()
        assert got == pytest.approx(picked.sum() / (w[safe] * keep).sum(), rel=1e-5)
    with pytest.raises(fg.ShapeError, match="classes along dim 1"):
        F.cross_entropy(
            fg.tensor(rng.standard_normal((2, 3, 4)).astype(np.float32)),
            fg.tensor(np.zeros((2, 3), np.int64)),
        )


def test_losses_give_a_target_that_requires_grad_its_gradient():
    """PyTorch differentiates these losses with respect to the target as well (soft targets
    produced by another network train that way); float64 finite differences."""
    logits = fg.tensor(rng.standard_normal((4, 3)))
    probs = fg.tensor(rng.dirichlet(np.ones(3), size=4), requires_grad=True)
    assert gradcheck(lambda t: F.cross_entropy(logits, t), [probs])
    assert gradcheck(lambda t: F.cross_entropy(logits, t, label_smoothing=0.1), [probs])
    t = fg.tensor(rng.uniform(0.1, 0.9, (4, 3)), requires_grad=True)
    assert gradcheck(lambda t: F.binary_cross_entropy_with_logits(logits, t), [t])
    p = fg.tensor(rng.uniform(0.1, 0.9, (4, 3)))
    assert gradcheck(lambda t: F.binary_cross_entropy(p, t), [t])
    y = fg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    for fn in (F.mse_loss, F.l1_loss, F.huber_loss, F.smooth_l1_loss):
        assert gradcheck(lambda t, fn=fn: fn(logits, t), [y])
    # d/dt of BCE-with-logits is -logit / n
    t2 = fg.tensor([0.3, 0.9], requires_grad=True)
    F.binary_cross_entropy_with_logits(fg.tensor([0.5, -1.0]), t2).backward()
    np.testing.assert_allclose(t2.grad.numpy(), [-0.25, 0.5])


def test_var_and_std_with_correction_at_least_n_or_an_empty_dim():
    """torch.var: sum((x - mean)^2) / max(0, N - correction): inf where that is 0 (nan for a
    constant or empty slice), never a negative variance."""
    x = fg.tensor([1.0, 2.0])
    assert x.var(correction=5).item() == np.inf and x.var(correction=2).item() == np.inf
    assert x.std(correction=3).item() == np.inf
    assert np.isnan(fg.tensor([1.0, 1.0]).var(correction=2).item())
    assert np.isnan(fg.zeros(0).var().item())
    assert np.isnan(fg.zeros(3, 0).var(1).numpy()).all() and fg.zeros(3, 0).var(1).shape == (3,)


@pytest.mark.parametrize(
    "a,b,ga,gb",
    [
        (0.0, 0.0, 0.0, 0.0),  # d/dx x^0 = 0 everywhere; d/dy 0^y = 0 for y >= 0
        (0.0, 1.0, 1.0, 0.0),
        (0.0, 2.0, 0.0, 0.0),
        (0.0, 0.5, np.inf, 0.0),
        (2.0, 0.0, 0.0, np.log(2.0)),
        (2.0, 3.0, 12.0, 8 * np.log(2.0)),
    ],
)
def test_pow_derivatives_at_base_zero_follow_pytorch(a, b, ga, gb, device):
    x = fg.tensor([a], requires_grad=True)
    y = fg.tensor([b], requires_grad=True)
    (x.to(device) ** y.to(device)).sum().backward()
    assert x.grad.item() == pytest.approx(ga) and y.grad.item() == pytest.approx(gb)


def test_pow_with_a_number_on_either_side_at_zero():
    x = fg.tensor([0.0, 1.0], requires_grad=True)
    (x**0).sum().backward()
    assert x.grad.numpy().tolist() == [0.0, 0.0]
    z = fg.tensor([0.0, 1.0, 2.5], requires_grad=True)
    (0**z).sum().backward()  # 0^z is constant for z >= 0
    assert z.grad.numpy().tolist() == [0.0, 0.0, 0.0]


def test_integer_powers_and_other_refusals():
    with pytest.raises(ValueError, match="integers to negative integer powers are not allowed"):
        fg.tensor([2, 3]) ** -2
    with pytest.raises(ValueError, match="negative integer powers"):
        fg.tensor([2]) ** fg.tensor([1, -1])
    assert (fg.tensor([2]) ** -2.0).item() == 0.25  # a float exponent is fine
    with pytest.raises(fg.DTypeError, match="linspace: bool"):
        fg.linspace(0, 1, 3, dtype=fg.bool_)
    with pytest.raises(IndexError, match="squeeze: dim 10 is out of range"):
        fg.tensor(1.0).squeeze(10)


def test_clamp_with_min_above_max_and_maximum_of_bools():
    """torch.clamp(x, min, max) = min(max(x, min), max): max everywhere when min > max;
    torch.maximum of two bool tensors is bool."""
    assert fg.tensor([1.0, 5.0, 2.5]).clamp(3, 2).numpy().tolist() == [2.0, 2.0, 2.0]
    m = fg.maximum(fg.tensor([True, False]), fg.tensor([False, False]))
    assert m.dtype == fg.bool_ and m.numpy().tolist() == [True, False]
    assert fg.minimum(fg.tensor([True, False]), fg.tensor([True, True])).dtype == fg.bool_


def test_shape_error_is_a_runtime_error_too():
    """PyTorch raises RuntimeError for shape mismatches; ShapeError stays a ValueError and is
    a RuntimeError as well, so ported `except RuntimeError` code catches it."""
    assert issubclass(fg.ShapeError, ValueError) and issubclass(fg.ShapeError, RuntimeError)
    for bad in (
        lambda: fg.ones(2, 3) @ fg.ones(2, 3),
        lambda: fg.ones(2, 3).permute(0),
        lambda: fg.ones(2, 3).reshape(4),
        lambda: fg.ones(2, 3).gather(1, fg.zeros(3, 3, dtype=fg.int64)),
    ):
        with pytest.raises(RuntimeError):
            bad()


def test_sum_and_mean_take_a_dtype():
    """torch.sum(x, dtype=...) casts before reducing: bools sum as int64, float32 in float64."""
    b = fg.tensor([True, True, False])
    assert b.sum(dtype=fg.int64).item() == 2 and b.sum(dtype=fg.int64).dtype == fg.int64
    x = fg.tensor([1e8, 1.0, -1e8], dtype=fg.float32)
    assert x.sum(dtype=fg.float64).dtype == fg.float64
    assert fg.sum(fg.tensor([[1, 2], [3, 4]]), 1, dtype=fg.float32).numpy().tolist() == [3.0, 7.0]
    assert fg.mean(fg.tensor([1, 2]), dtype=fg.float64).item() == 1.5
