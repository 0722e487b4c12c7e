"""`fg.gpu.verify` (issue 18): one training step on both devices, compared layer by layer
against each op's float32 tolerance; the first layer over it is named."""

from __future__ import annotations

import io

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import nn

pytestmark = pytest.mark.skipif(not fg.gpu_available(), reason="no gpu adapter")


@pytest.fixture(scope="module")
def batch():
    x, y = fg.data.load_mnist()
    return x[:64], y[:64]


@pytest.mark.parametrize(
    "build",
    [
        lambda: fg.models.standard(784, 10, width=64),
        lambda: fg.models.residual(784, 10, width=32, blocks=2),
        lambda: fg.models.self_normalizing(784, 10, width=32, depth=3),
        lambda: nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)),
            nn.Conv2d(1, 4, 3),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * 13 * 13, 10),
        ),
    ],
    ids=["standard", "residual", "selu", "cnn"],
)
def test_the_backends_agree_on_every_layer_of_the_networks(batch, build):
    fg.manual_seed(0)
    model = build()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    out = io.StringIO()
    report = fg.gpu.verify(model, *batch, file=out)
    assert report.ok, str(report)
    assert "Every layer agrees" in out.getvalue()
    leaves = {n for n, m in model.named_modules() if next(m.children(), None) is None}
    assert {r.layer for r in report.rows} == leaves | {"(model)"}  # every layer, and the step
    kinds = {r.what for r in report.rows}
    assert {"output", "input grad", "loss"} <= kinds and any(k.endswith("update") for k in kinds)
    after = model.state_dict()  # the model itself is untouched
    assert all(np.array_equal(before[k], after[k].numpy()) for k in before)


class _Skewed(nn.Module):
    """Right on the host, 0.1% off on the GPU: what verify must point at."""

    def forward(self, x):
        return x * 1.001 if x.device == "gpu" else x


def test_the_first_layer_over_its_tolerance_is_named(batch):
    fg.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 32), nn.ReLU(), _Skewed(), nn.Linear(32, 10))
    out = io.StringIO()
    report = fg.gpu.verify(model, *batch, file=out)
    bad = report.first_failure
    assert not report.ok and (bad.layer, bad.kind, bad.what) == ("2", "_Skewed", "output")
    assert bad.diff > 10 * bad.tol
    assert all(r.ok for r in report.rows if r.layer in ("0", "1"))  # upstream layers agree
    assert "First layer over its tolerance: 2 (_Skewed): output" in out.getvalue()


def test_regression_targets_use_mse_and_options_pass_through(batch):
    fg.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 16), nn.Tanh(), nn.Linear(16, 1))
    x = batch[0]
    y = np.asarray(x).mean(axis=1, keepdims=True).astype(np.float32)
    report = fg.gpu.verify(
        model, x, y, optimizer=lambda ps: fg.optim.SGD(ps, lr=0.1, momentum=0.9), file=None
    )
    assert report.ok, str(report)


def test_cuda_spellings_reach_the_same_functions():
    assert fg.cuda.verify is fg.gpu.verify
    with fg.cuda.amp.autocast():  # torch.cuda.amp's older spellings
        y = fg.ones(2, 2, device="gpu") @ fg.ones(2, 2, device="gpu")
    assert y.dtype == fg.float16
    assert isinstance(fg.cuda.amp.GradScaler(), fg.GradScaler)


def test_without_a_gpu_it_says_so(batch, monkeypatch):
    import ferrograd._verify as verify_module

    monkeypatch.setattr(verify_module, "gpu_available", lambda: False)
    with pytest.raises(fg.DeviceError, match="no GPU"):
        fg.gpu.verify(fg.models.standard(784, 10), *batch, file=None)
