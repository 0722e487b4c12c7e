"""BatchNorm's PyTorch modes: (N, C, L) input to BatchNorm1d, `momentum=None` (a cumulative
average), `track_running_stats=False`, and the `num_batches_tracked` counter, on both
devices and in captured GPU steps. References are NumPy transcriptions of PyTorch's
documented formulas."""

from __future__ import annotations

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import nn
from ferrograd.autograd import gradcheck


def _ref_bn(x, mean, var, w, b, eps=1e-5):
    shape = [1, -1] + [1] * (x.ndim - 2)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * w.reshape(shape) + b.reshape(shape)


def _batch_stats(x):
    axes = (0,) + tuple(range(2, x.ndim))
    n = x.size // x.shape[1]
    mean = x.mean(axes)
    var = x.var(axes)
    return mean, var, var * n / (n - 1)


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5)])
def test_running_statistics_follow_pytorchs_rule(momentum, shape, device):
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm1d(3, momentum=momentum).to(device)
    w = rng.standard_normal(3).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    with fg.no_grad():
        bn.weight.copy_(fg.tensor(w).to(device))
        bn.bias.copy_(fg.tensor(b).to(device))
    rm, rv = np.zeros(3), np.ones(3)
    for k in range(4):
        x = (rng.standard_normal(shape) * (k + 1) + k).astype(np.float32)
        y = bn(fg.tensor(x).to(device))
        mean, var, unbiased = _batch_stats(x.astype(np.float64))
        np.testing.assert_allclose(y.cpu().numpy(), _ref_bn(x, mean, var, w, b), rtol=1e-4, atol=1e-4)
        f = momentum if momentum is not None else 1.0 / (k + 1)
        rm, rv = (1 - f) * rm + f * mean, (1 - f) * rv + f * unbiased
        assert bn.num_batches_tracked.item() == k + 1
    np.testing.assert_allclose(bn.running_mean.cpu().numpy(), rm, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bn.running_var.cpu().numpy(), rv, rtol=1e-5, atol=1e-5)
    bn.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(
        bn(fg.tensor(x).to(device)).cpu().numpy(), _ref_bn(x, rm, rv, w, b), rtol=1e-4, atol=1e-4
    )
    assert bn.num_batches_tracked.item() == 4  # evaluation counts nothing
    bn.reset_running_stats()
    assert bn.num_batches_tracked.item() == 0
    np.testing.assert_array_equal(bn.running_var.cpu().numpy(), np.ones(3))


def test_three_dimensional_input_gradcheck():
    bn = nn.BatchNorm1d(2).double()
    x = fg.randn(3, 2, 4, dtype=fg.float64, requires_grad=True)
    assert gradcheck(lambda t: bn(t), [x])
    assert gradcheck(
        lambda w, b: nn.functional.batch_norm(x.detach(), None, None, w, b, True),
        [bn.weight.detach().clone().requires_grad_(), bn.bias.detach().clone().requires_grad_()],
    )


def test_without_running_statistics_the_batch_is_always_used(device):
    bn = nn.BatchNorm1d(3, track_running_stats=False).to(device)
    assert bn.running_mean is None and bn.running_var is None and bn.num_batches_tracked is None
    assert list(bn.state_dict()) == ["weight", "bias"]
    x = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32) * 3 + 2
    mean, var, _ = _batch_stats(x.astype(np.float64))
    bn.eval()  # still the batch's statistics, as PyTorch
    got = bn(fg.tensor(x).to(device)).cpu().numpy()
    np.testing.assert_allclose(got, _ref_bn(x, mean, var, np.ones(3), np.zeros(3)), rtol=1e-4, atol=1e-4)
    assert "track_running_stats=False" in repr(bn)


def test_input_shapes_and_arguments_are_checked():
    with pytest.raises(
        fg.ShapeError, match=r"BatchNorm1d: expected input \(N, 3\) or \(N, 3, L\), got shape \(2, 3, 4, 5\)"
    ):
        nn.BatchNorm1d(3)(fg.randn(2, 3, 4, 5))
    with pytest.raises(
        fg.ShapeError, match=r"BatchNorm2d: expected input \(N, 3, H, W\), got shape \(2, 3\)"
    ):
        nn.BatchNorm2d(3)(fg.randn(2, 3))
    with pytest.raises(ValueError, match="momentum must be in"):
        nn.BatchNorm1d(3, momentum=1.5)


def test_a_state_dict_without_the_counter_loads():
    a, b = (
        nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)),
        nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)),
    )
    a.train()
    a(fg.randn(4, 2))
    sd = a.state_dict()
    assert sd["1.num_batches_tracked"].item() == 1 and sd["1.num_batches_tracked"].dtype == fg.int64
    del sd["1.num_batches_tracked"]
    assert b.load_state_dict(sd) == ([], [])  # PyTorch's rule for its pre-1.0 files
    assert b[1].num_batches_tracked.item() == 0
    sd2 = a.state_dict()
    b.load_state_dict(sd2)
    assert b[1].num_batches_tracked.item() == 1


def test_sequential_with_three_dimensional_batchnorm_relu_is_not_fused_wrongly():
    m = nn.Sequential(nn.BatchNorm1d(2), nn.ReLU())
    x = fg.randn(3, 2, 4)
    want = nn.functional.relu(nn.functional.batch_norm(x, None, None, m[0].weight, m[0].bias, True))
    np.testing.assert_allclose(m(x).detach().numpy(), want.detach().numpy(), rtol=1e-6, atol=1e-6)


def test_captured_gpu_steps_count_batches_and_refuse_a_cumulative_average():
    if not fg.gpu_available():
        pytest.skip("no GPU adapter")
    m = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU()).to("gpu")
    opt = fg.optim.SGD(m.parameters(), lr=0.1)
    x = fg.randn(8, 4).to("gpu")

    def step():
        opt.zero_grad(set_to_none=False)
        m(x).sum().backward()
        opt.step()

    step()
    g = fg.gpu.Graph()
    with fg.gpu.graph(g):
        step()
    assert m[1].num_batches_tracked.item() == 1  # the capture itself ran nothing
    g.replay()
    g.replay()
    assert m[1].num_batches_tracked.item() == 3
    m2 = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3, momentum=None)).to("gpu")
    m2(x).sum().backward()
    with pytest.raises(RuntimeError, match="momentum=None"):
        with fg.gpu.graph(fg.gpu.Graph()):
            m2(x).sum().backward()
