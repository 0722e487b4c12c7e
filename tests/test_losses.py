"""`ferrograd.losses` and the loss modules against NumPy (PyTorch's formulas), their
gradients (float64 gradcheck), numerical stability and error messages."""

from __future__ import annotations

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import losses, nn
from ferrograd.autograd import gradcheck


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def t64(a, requires_grad: bool = False) -> fg.Tensor:
    return fg.tensor(np.asarray(a, dtype=np.float64), dtype=fg.float64, requires_grad=requires_grad)


def labels(a) -> fg.Tensor:
    return fg.tensor(np.asarray(a, dtype=np.int64), dtype=fg.int64)


def np_reduce(v, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction](v)


def np_log_softmax(z):
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def np_cross_entropy(z, y, eps=0.0, reduction="mean"):
    """torch.nn.functional.cross_entropy with class indices and label smoothing."""
    logp = np_log_softmax(z)
    nll = -logp[np.arange(len(y)), y]
    per = (1 - eps) * nll + eps * (-logp).mean(-1)
    return np_reduce(per, reduction)


def np_cross_entropy_probs(z, p, eps=0.0, reduction="mean"):
    """torch.nn.functional.cross_entropy with class probabilities (smoothed like torch)."""
    c = z.shape[-1]
    p = p * (1 - eps) + eps / c
    per = -(p * np_log_softmax(z)).sum(-1)
    return np_reduce(per, reduction)


def np_bce_logits(x, t, reduction="mean"):
    per = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    return np_reduce(per, reduction)


REDUCTIONS = ["mean", "sum", "none"]


# =============================================================================== mse


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_matches_numpy(reduction):
    r = rng(1)
    a, b = r.standard_normal((4, 3)), r.standard_normal((4, 3))
    got = losses.mse(t64(a), t64(b), reduction).numpy()
    np.testing.assert_allclose(got, np_reduce((a - b) ** 2, reduction), rtol=1e-12, atol=1e-14)


def test_mse_gradient():
    r = rng(2)
    a, b = r.standard_normal((3, 2)), r.standard_normal((3, 2))
    x = t64(a, requires_grad=True)
    losses.mse(x, t64(b)).backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (a - b) / a.size, rtol=1e-12)
    assert gradcheck(lambda x: losses.mse(x, t64(b), "sum"), (t64(a, requires_grad=True),))


def test_mse_errors():
    with pytest.raises(fg.ShapeError, match="mse"):
        losses.mse(fg.randn(3, 2), fg.randn(3, 3))
    with pytest.raises(ValueError, match="reduction"):
        losses.mse(fg.randn(3), fg.randn(3), reduction="avg")


def test_mse_float32():
    a = rng(3).standard_normal(10).astype(np.float32)
    b = rng(4).standard_normal(10).astype(np.float32)
    got = losses.mse(fg.tensor(a), fg.tensor(b)).item()
    assert got == pytest.approx(float(((a.astype(np.float64) - b) ** 2).mean()), rel=1e-6)


# =============================================================================== cross-entropy


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.4])
def test_cross_entropy_labels_matches_numpy(reduction, eps):
    r = rng(5)
    z = r.standard_normal((6, 5)) * 3
    y = r.integers(0, 5, 6)
    got = losses.cross_entropy(t64(z), labels(y), label_smoothing=eps, reduction=reduction).numpy()
    np.testing.assert_allclose(got, np_cross_entropy(z, y, eps, reduction), rtol=1e-12, atol=1e-12)


def test_cross_entropy_float32():
    r = rng(6)
    z = (r.standard_normal((8, 4)) * 2).astype(np.float32)
    y = r.integers(0, 4, 8)
    got = losses.cross_entropy(fg.tensor(z), labels(y)).item()
    assert got == pytest.approx(np_cross_entropy(z.astype(np.float64), y), rel=1e-5)


def test_cross_entropy_known_value():
    # uniform logits over C classes: loss = log C
    z = np.zeros((3, 7))
    got = losses.cross_entropy(t64(z), labels([0, 3, 6])).item()
    assert got == pytest.approx(np.log(7), rel=1e-14)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_cross_entropy_probabilities_matches_numpy(reduction, eps):
    r = rng(7)
    z = r.standard_normal((5, 4)) * 2
    p = r.uniform(0, 1, (5, 4))
    p /= p.sum(1, keepdims=True)
    got = losses.cross_entropy(t64(z), t64(p), label_smoothing=eps, reduction=reduction).numpy()
    np.testing.assert_allclose(got, np_cross_entropy_probs(z, p, eps, reduction), rtol=1e-12, atol=1e-12)


def test_cross_entropy_one_hot_probabilities_equal_labels():
    r = rng(8)
    z = r.standard_normal((6, 3))
    y = r.integers(0, 3, 6)
    onehot = np.eye(3)[y]
    for eps in (0.0, 0.3):
        a = losses.cross_entropy(t64(z), labels(y), label_smoothing=eps).item()
        b = losses.cross_entropy(t64(z), t64(onehot), label_smoothing=eps).item()
        assert a == pytest.approx(b, rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_huge_logits_finite(dtype):
    z = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 5e3], [0.0, 0.0, 1e4]], dtype=dtype)
    y = np.array([0, 2, 1])
    x = fg.tensor(z, requires_grad=True)
    loss = losses.cross_entropy(x, labels(y), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [0.0, 5e3, 1e4], rtol=1e-6)
    loss.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
    smoothed = losses.cross_entropy(fg.tensor(z), labels(y), label_smoothing=0.1).item()
    assert np.isfinite(smoothed)
    assert smoothed == pytest.approx(np_cross_entropy(z.astype(np.float64), y, 0.1), rel=1e-5)
    p = np.eye(3)[y].astype(dtype)
    probs = losses.cross_entropy(fg.tensor(z), fg.tensor(p), reduction="none").numpy()
    np.testing.assert_allclose(probs, [0.0, 5e3, 1e4], rtol=1e-6)


def test_cross_entropy_gradient_formula():
    # d/dz mean_i CE = (softmax(z) - ((1 - eps) onehot + eps / C)) / N
    r = rng(9)
    z = r.standard_normal((4, 5))
    y = r.integers(0, 5, 4)
    eps = 0.1
    x = t64(z, requires_grad=True)
    losses.cross_entropy(x, labels(y), label_smoothing=eps).backward()
    sm = np.exp(np_log_softmax(z))
    expected = (sm - ((1 - eps) * np.eye(5)[y] + eps / 5)) / 4
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("eps", [0.0, 0.15])
def test_cross_entropy_labels_gradcheck(reduction, eps):
    r = rng(10)
    z = t64(r.standard_normal((4, 3)) * 2, requires_grad=True)
    y = labels(r.integers(0, 3, 4))
    assert gradcheck(lambda z: losses.cross_entropy(z, y, label_smoothing=eps, reduction=reduction), (z,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("eps", [0.0, 0.15])
def test_cross_entropy_probabilities_gradcheck(reduction, eps):
    r = rng(11)
    z = t64(r.standard_normal((3, 4)) * 2, requires_grad=True)
    p = r.uniform(0, 1, (3, 4))
    p = t64(p / p.sum(1, keepdims=True))
    assert gradcheck(lambda z: losses.cross_entropy(z, p, label_smoothing=eps, reduction=reduction), (z,))


def test_cross_entropy_errors():
    z = fg.randn(3, 4)
    with pytest.raises(IndexError, match=r"cross_entropy: target 4 is out of range for 4 classes"):
        losses.cross_entropy(z, labels([0, 4, 1]))
    with pytest.raises(IndexError, match="cross_entropy"):
        losses.cross_entropy(z, labels([0, -1, 1]))
    with pytest.raises(fg.ShapeError, match="cross_entropy"):
        losses.cross_entropy(z, labels([0, 1]))
    with pytest.raises(fg.ShapeError, match="cross_entropy"):
        losses.cross_entropy(z, labels([[0], [1], [2]]))
    with pytest.raises(fg.ShapeError, match="cross_entropy"):
        losses.cross_entropy(z, fg.tensor([0.0, 1.0, 2.0]))  # float labels, not (N, C) probabilities
    with pytest.raises(fg.ShapeError, match="cross_entropy"):
        losses.cross_entropy(fg.randn(3), labels([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction"):
        losses.cross_entropy(z, labels([0, 1, 2]), reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        losses.cross_entropy(z, fg.softmax(fg.randn(3, 4)), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.cross_entropy(z, labels([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(fg.DTypeError, match="cross_entropy"):
        losses.cross_entropy(z, fg.tensor([True, False, True]))


# =============================================================================== BCE


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_matches_numpy(reduction):
    r = rng(12)
    x = r.standard_normal((5, 3)) * 4
    t = r.uniform(0, 1, (5, 3))
    t[0] = [0.0, 1.0, 1.0]
    got = losses.binary_cross_entropy(t64(x), t64(t), reduction).numpy()
    np.testing.assert_allclose(got, np_bce_logits(x, t, reduction), rtol=1e-12, atol=1e-14)


def test_bce_matches_naive_formula_for_moderate_logits():
    r = rng(13)
    x = r.standard_normal(20)
    t = (r.uniform(0, 1, 20) > 0.5).astype(np.float64)
    s = 1 / (1 + np.exp(-x))
    naive = -(t * np.log(s) + (1 - t) * np.log(1 - s)).mean()
    assert losses.binary_cross_entropy(t64(x), t64(t)).item() == pytest.approx(naive, rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_extreme_logits_finite(dtype):
    x = np.array([100.0, -100.0, 100.0, -100.0], dtype=dtype)
    t = np.array([1.0, 0.0, 0.0, 1.0], dtype=dtype)
    xt = fg.tensor(x, requires_grad=True)
    loss = losses.binary_cross_entropy(xt, fg.tensor(t), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [0.0, 0.0, 100.0, 100.0], rtol=1e-6, atol=1e-30)
    loss.sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), [0.0, 0.0, 1.0, -1.0], atol=1e-6)


def test_bce_column_logits_with_flat_targets():
    r = rng(14)
    x = r.standard_normal((4, 1))
    t = np.array([0.0, 1.0, 1.0, 0.0])
    got = losses.binary_cross_entropy(t64(x), t64(t)).item()
    assert got == pytest.approx(np_bce_logits(x[:, 0], t), rel=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_gradcheck(reduction):
    r = rng(15)
    x = t64(r.standard_normal((3, 2)) * 2, requires_grad=True)
    t = t64(r.uniform(0, 1, (3, 2)))
    assert gradcheck(lambda x: losses.binary_cross_entropy(x, t, reduction), (x,))


def test_bce_errors():
    with pytest.raises(fg.ShapeError, match="binary_cross_entropy"):
        losses.binary_cross_entropy(fg.randn(3, 2), fg.rand(3, 3))
    with pytest.raises(ValueError, match="reduction"):
        losses.binary_cross_entropy(fg.randn(3), fg.rand(3), reduction="avg")


# =============================================================================== modules


def test_loss_modules_match_functions():
    r = rng(16)
    a, b = t64(r.standard_normal((4, 3))), t64(r.standard_normal((4, 3)))
    y = labels(r.integers(0, 3, 4))
    t = t64(r.uniform(0, 1, (4, 3)))
    for reduction in REDUCTIONS:
        np.testing.assert_array_equal(
            nn.MSELoss(reduction)(a, b).numpy(), losses.mse(a, b, reduction).numpy()
        )
        np.testing.assert_array_equal(
            nn.CrossEntropyLoss(reduction, label_smoothing=0.1)(a, y).numpy(),
            losses.cross_entropy(a, y, 0.1, reduction).numpy(),
        )
        np.testing.assert_array_equal(
            nn.BCEWithLogitsLoss(reduction)(a, t).numpy(),
            losses.binary_cross_entropy(a, t, reduction).numpy(),
        )
    np.testing.assert_array_equal(nn.CrossEntropyLoss()(a, y).numpy(), losses.cross_entropy(a, y).numpy())


def test_loss_modules_backward_and_config():
    x = t64(rng(17).standard_normal((3, 4)), requires_grad=True)
    nn.CrossEntropyLoss(label_smoothing=0.2)(x, labels([0, 1, 3])).backward()
    assert x.grad is not None and tuple(x.grad.shape) == (3, 4)
    assert nn.MSELoss().kind == "mse"
    assert nn.CrossEntropyLoss().kind == "cross_entropy"
    assert nn.BCEWithLogitsLoss().kind == "binary_cross_entropy"
    m = nn.from_config(nn.to_config(nn.MSELoss("sum")))
    assert isinstance(m, nn.MSELoss) and m.reduction == "sum"
    ce = nn.from_config(nn.to_config(nn.CrossEntropyLoss("sum", label_smoothing=0.1)))
    assert isinstance(ce, nn.CrossEntropyLoss)
    assert (ce.reduction, ce.label_smoothing) == ("sum", 0.1)


def test_losses_get():
    assert losses.get("categorical_crossentropy") == ("cross_entropy", losses.cross_entropy)
    assert losses.get(losses.mse) == ("mse", losses.mse)
    assert losses.get(nn.BCEWithLogitsLoss())[0] == "binary_cross_entropy"
    with pytest.raises(ValueError, match="unknown loss"):
        losses.get("hinge")


def test_bce_weight_rescales_each_element():
    """PyTorch's binary_cross_entropy(input, target, weight): weight broadcast to the input
    multiplies each element's loss before the reduction (the third positional argument is
    the weight, as PyTorch's; a string there is still read as the reduction)."""
    p = np.array([[0.2, 0.9], [0.5, 0.1]])
    t = np.array([[0.0, 1.0], [1.0, 0.0]])
    w = np.array([2.0, 0.5])
    pointwise = -(t * np.log(p) + (1 - t) * np.log(1 - p)) * w
    F = fg.nn.functional
    P, T, W = fg.tensor(p), fg.tensor(t), fg.tensor(w)
    np.testing.assert_allclose(F.binary_cross_entropy(P, T, W).item(), pointwise.mean(), rtol=1e-12)
    np.testing.assert_allclose(F.binary_cross_entropy(P, T, W, "sum").item(), pointwise.sum(), rtol=1e-12)
    np.testing.assert_allclose(fg.nn.BCELoss(W)(P, T).item(), pointwise.mean(), rtol=1e-12)
    unweighted = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    np.testing.assert_allclose(F.binary_cross_entropy(P, T, "sum").item(), unweighted.sum(), rtol=1e-12)
    np.testing.assert_allclose(fg.nn.BCELoss("sum")(P, T).item(), unweighted.sum(), rtol=1e-12)
    with pytest.raises(fg.ShapeError, match="weight of shape"):
        F.binary_cross_entropy(P, T, fg.ones(3))
    x = fg.tensor(p, requires_grad=True)
    assert fg.autograd.gradcheck(lambda a: F.binary_cross_entropy(a, T, W), [x])


def test_cross_entropy_probability_targets_with_class_weights():
    """PyTorch's rule for probability targets with weight: -sum_c w_c y_c log p_c per
    sample, "mean" over the samples (not divided by the weights); (N, C, d) inputs too."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 2))
    y = rng.dirichlet(np.ones(4), (3, 2)).transpose(0, 2, 1)
    w = np.array([1.0, 2.0, 0.5, 0.0])
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    per = -(logp * y * w[None, :, None]).sum(1)
    F = fg.nn.functional
    X, Y, W = fg.tensor(x), fg.tensor(y), fg.tensor(w)
    np.testing.assert_allclose(F.cross_entropy(X, Y, W).item(), per.mean(), rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(X, Y, W, reduction="none").numpy(), per, rtol=1e-12)
    ys = y * 0.9 + 0.1 / 4
    smooth = -(logp * ys * w[None, :, None]).sum(1)
    np.testing.assert_allclose(
        F.cross_entropy(X, Y, W, label_smoothing=0.1).item(), smooth.mean(), rtol=1e-12
    )
    xg, yg = fg.tensor(x, requires_grad=True), fg.tensor(y, requires_grad=True)
    assert fg.autograd.gradcheck(lambda a, b: F.cross_entropy(a, b, W), [xg, yg])
    with pytest.raises(fg.ShapeError, match="one per class"):
        F.cross_entropy(X, Y, fg.ones(3, dtype=fg.float64))


def test_randint_with_high_and_size_only():
    fg.manual_seed(0)
    a = fg.randint(10, (3,))
    assert a.shape == (3,) and a.dtype == fg.int64 and 0 <= a.numpy().min() and a.numpy().max() < 10
    b = fg.randint(2, 5, (2, 2))
    assert b.shape == (2, 2) and set(b.numpy().ravel()) <= {2, 3, 4}
    assert fg.randint(3, size=(4,), dtype=fg.int32).dtype == fg.int32
    assert fg.randint(5).shape == ()
