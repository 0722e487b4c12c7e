"""Diagnostics that explain training (`ferrograd.diagnostics`): the self-normalization checks
of SELU networks, dead ReLU units, per-layer gradient norms, `fg.diagnose`'s table and
`fit(..., monitor=True)`; every problem is a `fg.TrainingWarning`, a healthy network raises
none."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import models, nn
from ferrograd.diagnostics import TrainingMonitor, check_self_normalizing

D, CLASSES = 20, 4


def _data(n: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, D)).astype(np.float32)
    return x, r.integers(0, CLASSES, n).astype(np.int64)


def _training_warnings(fn, *args, **kwargs) -> list[str]:
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        fn(*args, **kwargs)
    return [str(w.message) for w in ws if issubclass(w.category, fg.TrainingWarning)]


def _quiet_diagnose(m, x, y, **kw):
    return fg.diagnose(m, x, y, stream=io.StringIO(), **kw)


def _selu_net(*middle: nn.Module) -> nn.Sequential:
    """Linear(lecun) -> SELU -> middle... -> Linear(lecun) -> SELU -> Linear."""
    return nn.Sequential(
        nn.Linear(D, 64, init="lecun_normal"),
        nn.SELU(),
        *middle,
        nn.Linear(64, 64, init="lecun_normal"),
        nn.SELU(),
        nn.Linear(64, CLASSES),
    )


# ---------------------------------------------------------------------------- SELU checks


def test_acceptance_he_normal_selu_net_is_flagged_and_the_builders_is_not():
    xtr, ytr = _data(1000)
    good = models.self_normalizing(D, CLASSES, width=64, depth=4)
    bad = models.self_normalizing(D, CLASSES, width=64, depth=4)
    for m in bad.modules():
        if isinstance(m, fg.nn.Linear):
            fg.nn.init.kaiming_normal_(m.weight)
    bad_msgs = _training_warnings(_quiet_diagnose, bad, xtr[:256], ytr[:256])
    assert any("lecun" in m.lower() for m in bad_msgs), bad_msgs
    # the four hidden Linear layers, not the output one (which feeds no SELU)
    assert sum("Linear feeding a SELU" in m for m in bad_msgs) == 4
    assert any("he/kaiming-normal" in m for m in bad_msgs)
    assert any("drifted from self-normalization" in m for m in bad_msgs)  # variance > 2 by layer 2
    assert _training_warnings(_quiet_diagnose, good, xtr[:256], ytr[:256]) == []


def test_linear_default_init_feeding_a_selu_is_flagged():
    m = _selu_net()
    nn.init.torch_linear_default(m[0].weight, m[0].bias)
    problems = check_self_normalizing(m)
    assert len(problems) == 1 and "layer '0'" in problems[0] and "lecun_normal" in problems[0]
    assert "Linear's default uniform" in problems[0]


def test_plain_dropout_in_a_selu_net_is_flagged_with_the_fix():
    m = _selu_net(nn.Dropout(0.1))
    problems = check_self_normalizing(m)
    assert len(problems) == 1 and "nn.Dropout" in problems[0] and "nn.AlphaDropout(0.1)" in problems[0]
    x, y = _data()
    msgs = _training_warnings(_quiet_diagnose, m, x, y)
    assert msgs == problems  # dropout is off in the diagnosis: the structure check is what warns
    assert check_self_normalizing(_selu_net(nn.AlphaDropout(0.1))) == []


def test_batchnorm_in_a_selu_net_is_flagged_with_the_fix():
    m = _selu_net(nn.BatchNorm1d(64))
    problems = check_self_normalizing(m)
    assert len(problems) == 1 and "BatchNorm1d" in problems[0] and "remove the batchnorm" in problems[0]


def test_non_selu_nets_have_no_selu_checks():
    assert check_self_normalizing(models.standard(D, CLASSES, width=32)) == []


@pytest.mark.parametrize(
    "build",
    [
        lambda: models.self_normalizing(D, CLASSES, width=64, depth=4),
        lambda: models.self_normalizing(D, CLASSES, width=128, depth=8, head="softmax"),
        lambda: models.standard(D, CLASSES, width=64),
        lambda: models.residual(D, CLASSES, width=64, blocks=3),
        lambda: models.residual(D, CLASSES, width=32, depth=110),
    ],
    ids=["selu", "selu-softmax", "standard", "residual", "residual-110"],
)
def test_the_builders_networks_raise_no_training_warning(build):
    x, y = _data()
    m = build()
    with warnings.catch_warnings():
        warnings.simplefilter("error", fg.TrainingWarning)
        d = _quiet_diagnose(m, x, y)
    assert d.problems == []


# ---------------------------------------------------------------------------- hand computation


def _tiny() -> tuple[nn.Sequential, np.ndarray, np.ndarray, list[np.ndarray]]:
    """Linear(3, 4) -> ReLU -> Linear(4, 2) with set weights; unit 1 of the hidden layer is
    dead (bias -100), unit 3 is alive for some samples only."""
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    w1 = np.array([[0.5, -0.2, 0.1], [0.3, 0.3, 0.3], [-0.4, 0.2, 0.6], [1.0, 0.0, 0.0]], np.float32)
    b1 = np.array([0.1, -100.0, 0.2, -0.5], np.float32)
    w2 = np.array([[0.7, -0.3, 0.2, 0.5], [-0.1, 0.4, -0.6, 0.3]], np.float32)
    b2 = np.array([0.05, -0.05], np.float32)
    with fg.no_grad():
        for t, v in ((m[0].weight, w1), (m[0].bias, b1), (m[2].weight, w2), (m[2].bias, b2)):
            t.copy_(fg.from_numpy(v))
    x = np.array([[1.0, 2.0, -1.0], [0.5, -1.0, 2.0], [-1.0, 0.0, 1.0], [2.0, 1.0, 0.5], [0.0, -2.0, -1.0]])
    y = np.array([0, 1, 1, 0, 1], np.int64)
    return m, x.astype(np.float32), y, [w1, b1, w2, b2]


def test_dead_units_and_gradient_norms_match_a_hand_computation():
    m, x, y, (w1, b1, w2, b2) = _tiny()
    x64 = x.astype(np.float64)
    h = x64 @ w1.T + b1
    a = np.maximum(h, 0.0)
    z = a @ w2.T + b2
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(len(y)), y]))
    dz = (p - np.eye(2)[y]) / len(y)  # mean cross-entropy
    g_w2, g_b2 = dz.T @ a, dz.sum(0)
    dh = (dz @ w2) * (h > 0)
    g_w1, g_b1 = dh.T @ x64, dh.sum(0)
    norm1 = np.sqrt((g_w1**2).sum() + (g_b1**2).sum())
    norm2 = np.sqrt((g_w2**2).sum() + (g_b2**2).sum())
    dead = np.mean(np.all(a <= 0, axis=0))
    assert dead == 0.25  # unit 1 only: unit 3 is positive for samples 0 and 3

    d = _quiet_diagnose(m, x, y)
    rows = {r.name: r for r in d.layers}
    assert [(r.name, r.kind) for r in d.layers] == [("0", "Linear"), ("1", "ReLU"), ("2", "Linear")]
    assert rows["1"].dead_fraction == pytest.approx(dead)
    assert rows["0"].dead_fraction is None and rows["1"].grad_norm is None
    assert rows["0"].grad_norm == pytest.approx(norm1, rel=1e-5)
    assert rows["2"].grad_norm == pytest.approx(norm2, rel=1e-5)
    assert d.grad_ratio == pytest.approx(norm1 / norm2, rel=1e-5)
    assert d.loss == pytest.approx(loss, rel=1e-5)
    assert rows["1"].mean == pytest.approx(a.mean(), rel=1e-5)
    assert rows["1"].var == pytest.approx(a.var(), rel=1e-5)
    assert rows["0"].units == 4 and rows["2"].units == 2
    assert d.problems == []


def test_a_mostly_dead_relu_layer_is_flagged():
    m, x, y, _ = _tiny()
    with fg.no_grad():
        m[0].bias.copy_(fg.tensor([-100.0, -100.0, -100.0, 0.0]))  # 3 of 4 units dead
    msgs = _training_warnings(_quiet_diagnose, m, x, y)
    assert len(msgs) == 1 and "ReLU layer '1': 75% of its 4 units are dead" in msgs[0]
    assert "tolerance 50%" in msgs[0]


def test_vanishing_gradients_in_a_deep_sigmoid_net_are_flagged():
    layers: list[nn.Module] = []
    for _ in range(12):
        layers += [nn.Linear(16, 16), nn.Sigmoid()]
    m = nn.Sequential(nn.Linear(D, 16), *layers, nn.Linear(16, CLASSES))
    x, y = _data(64)
    msgs = _training_warnings(_quiet_diagnose, m, x, y)
    assert len(msgs) == 1 and msgs[0].startswith("vanishing gradients") and "residual" in msgs[0]


def test_exploding_gradients_are_flagged_with_the_hand_computed_ratio():
    """A linear chain whose hidden layers amplify one direction 10x and shrink the other
    10x: the input lies in the shrunk direction and the output reads the amplified one, so
    (no bias, MSE) the first layer's gradient carries a factor 10**4 and the last layer's
    a factor 10**-5: their ratio is 10**9, far above the 1e3 threshold."""
    hidden = 5
    m = nn.Sequential(*[nn.Linear(2, 2, bias=False) for _ in range(hidden)], nn.Linear(2, 1, bias=False))
    with fg.no_grad():
        for layer in list(m)[:hidden]:
            layer.weight.copy_(fg.tensor([[10.0, 0.0], [0.0, 0.1]]))
        m[hidden].weight.copy_(fg.tensor([[1.0, 0.0]]))
    r = np.random.default_rng(0)
    x = np.zeros((32, 2), np.float32)
    x[:, 1] = r.standard_normal(32)
    y = r.standard_normal(32).astype(np.float32)
    # by hand: the output is 0, so dL/dout = -2 y / n; the first layer's gradient is
    # 10**4 dL/dout x1 in entry (0, 1); the last one's is dL/dout 0.1**5 x1 in entry (0, 1)
    g = -2 * y / 32
    first = np.linalg.norm(10.0**4 * g @ x[:, 1])
    last = np.linalg.norm(0.1**5 * g @ x[:, 1])
    d = None

    def run():
        nonlocal d
        d = _quiet_diagnose(m, x, y, loss="mse")

    msgs = _training_warnings(run)
    assert len(msgs) == 1 and msgs[0].startswith("exploding gradients") and "clip_grad_norm_" in msgs[0]
    assert d.grad_ratio == pytest.approx(first / last, rel=1e-3)
    assert d.figures()["grad_norm_ratio"] == pytest.approx(first / last, rel=1e-3)


# ---------------------------------------------------------------------------- no side effects


def test_diagnose_leaves_params_grads_buffers_and_modes_unchanged():
    x, y = _data(64)
    m = models.standard(D, CLASSES, width=16, depth=2)
    fg.train.fit(m, x, y, epochs=1, batch_size=32, verbose=0)  # grads and running stats set
    m.train()
    m[3].eval()  # a mixed mode is kept too
    modes = [mod.training for mod in m.modules()]
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    grads = [None if p.grad is None else p.grad.numpy().copy() for p in m.parameters()]
    assert any(g is not None for g in grads)
    state = fg.get_rng_state()
    _quiet_diagnose(m, x, y)
    assert [mod.training for mod in m.modules()] == modes
    after = m.state_dict()
    for k, v in before.items():
        np.testing.assert_array_equal(after[k].numpy(), v, err_msg=k)
    for p, g in zip(m.parameters(), grads):
        if g is None:
            assert p.grad is None
        else:
            np.testing.assert_array_equal(p.grad.numpy(), g)
    assert fg.get_rng_state() == state  # dropout is off: no random numbers drawn
    # a model without grads keeps none
    fresh = models.standard(D, CLASSES, width=16)
    _quiet_diagnose(fresh, x, y)
    assert all(p.grad is None for p in fresh.parameters())
    # and a Sequential runs fused again afterwards (no patched forward left behind)
    assert all("forward" not in mod.__dict__ for mod in m.modules())


# ---------------------------------------------------------------------------- output


def test_the_table_prints_and_the_result_is_plain_data():
    x, y = _data()
    m = models.self_normalizing(D, CLASSES, width=32, depth=2)
    out = io.StringIO()
    d = fg.diagnose(m, x, y, stream=out)
    text = out.getvalue()
    assert text.startswith("Diagnosis of Sequential on 256 samples")
    for word in ("layer", "type", "units", "mean", "var", "dead", "grad norm", "SELU", "no problems found"):
        assert word in text
    assert text.strip() == str(d)
    assert len(text.splitlines()) >= 2 + len(d.layers)
    data = json.loads(json.dumps(d.to_dict()))
    assert data["samples"] == 256 and data["selu"] is True and data["problems"] == []
    assert [r["kind"] for r in data["layers"]] == ["Linear", "SELU", "Linear", "SELU", "Linear"]
    assert set(d.figures()) == {
        "selu_mean_max_dev",
        "selu_var_max_dev",
        "grad_norm_min",
        "grad_norm_max",
        "grad_norm_ratio",
        "problems",
    }
    bad = _selu_net(nn.Dropout(0.2))
    with pytest.warns(fg.TrainingWarning):
        text = str(fg.diagnose(bad, x, y, verbose=False))
    assert "1 problem(s):" in text and "AlphaDropout" in text


def test_training_warning_is_ours_filterable_and_points_at_the_caller():
    assert issubclass(fg.TrainingWarning, UserWarning) and fg.TrainingWarning.__doc__
    assert fg.TrainingWarning is fg.errors.TrainingWarning
    x, y = _data()
    bad = _selu_net(nn.BatchNorm1d(64))
    with pytest.warns(fg.TrainingWarning) as rec:
        _quiet_diagnose(bad, x, y)
    assert rec[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error", fg.TrainingWarning)
        with pytest.raises(fg.TrainingWarning, match="remove the batchnorm"):
            _quiet_diagnose(bad, x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no other warning is issued
        warnings.simplefilter("ignore", fg.TrainingWarning)
        assert _quiet_diagnose(bad, x, y).problems


def test_mse_default_for_float_targets_and_no_gradients_without_y():
    x, _ = _data(32)
    m = models.standard(D, 1, width=16, depth=1)
    d = _quiet_diagnose(m, x, x[:, :1].copy())
    assert d.loss is not None and all(r.grad_norm is not None for r in d.layers if r.kind == "Linear")
    d = _quiet_diagnose(m, x, None)
    assert d.loss is None and all(r.grad_norm is None for r in d.layers)


# ---------------------------------------------------------------------------- fit(monitor=True)


def test_fit_monitor_logs_the_figures_per_epoch_and_a_healthy_net_does_not_warn():
    x, y = _data(512)
    m = models.self_normalizing(D, CLASSES, width=32, depth=3)
    seen: list[dict] = []

    class Peek(fg.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(dict(logs or {}))

    with warnings.catch_warnings():
        warnings.simplefilter("error", fg.TrainingWarning)
        h = m.fit(x, y, epochs=3, batch_size=64, verbose=0, monitor=True, callbacks=[Peek()])
    for key in ("selu_mean_max_dev", "selu_var_max_dev", "grad_norm_ratio", "problems"):
        assert len(h.history[key]) == 3, key
    assert h.history["problems"] == [0.0, 0.0, 0.0]
    assert max(h.history["selu_var_max_dev"]) < 1.0
    assert len(h.monitor) == 3 and h.monitor[-1]["epoch"] == 2 and h.monitor[0]["layers"]
    assert "selu_var_max_dev" in seen[0]  # later callbacks see the figures in the logs
    # without monitor, nothing extra
    h2 = fg.train.fit(m, x, y, epochs=1, verbose=0)
    assert set(h2.history) == {"loss", "acc"} and h2.monitor == []


def test_fit_monitor_warns_for_a_drifting_selu_net_once_per_problem():
    x, y = _data(512)
    m = models.self_normalizing(D, CLASSES, width=32, depth=4, alpha_dropout=0.0)
    for mod in m.modules():
        if isinstance(mod, nn.Linear):
            nn.init.kaiming_normal_(mod.weight)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        h = fg.train.fit(m, x, y, epochs=3, batch_size=64, lr=0.05, optimizer="sgd", verbose=0, monitor=True)
    msgs = [str(w.message) for w in ws if issubclass(w.category, fg.TrainingWarning)]
    assert {w.filename for w in ws if issubclass(w.category, fg.TrainingWarning)} == {__file__}
    assert any("lecun" in s for s in msgs)  # before training
    drift = [s for s in msgs if "drifted from self-normalization" in s]
    assert drift and len(drift) == len(set(s.split("'")[1] for s in drift))  # once per layer
    assert max(h.history["selu_var_max_dev"]) > 1.0 and h.history["problems"][0] > 0


def test_training_monitor_as_a_callback():
    x, y = _data(128)
    m = models.standard(D, CLASSES, width=16, depth=1)
    mon = TrainingMonitor(x, y, batch_size=64)
    h = fg.train.fit(m, x, y, epochs=2, verbose=0, callbacks=[mon])
    assert len(mon.records) == 2 and mon.records[0]["samples"] == 64
    assert len(h.history["dead_max"]) == 2 and len(h.monitor) == 2
    assert fg.diagnostics.SelfNormalizationMonitor is TrainingMonitor
    with pytest.raises(TypeError, match="unknown tolerances"):
        TrainingMonitor(x, y, mean_tol=0.1)


def test_diagnose_on_each_device(device):
    x, y = _data(128)
    m = models.self_normalizing(D, CLASSES, width=32, depth=2)
    ref = _quiet_diagnose(m, x, y)
    m.to(device)
    with warnings.catch_warnings():
        warnings.simplefilter("error", fg.TrainingWarning)
        d = _quiet_diagnose(m, x, y)
    assert d.problems == [] and len(d.layers) == len(ref.layers)
    for a, b in zip(d.layers, ref.layers):
        assert (a.name, a.kind) == (b.name, b.kind)
        assert a.mean == pytest.approx(b.mean, abs=1e-4) and a.var == pytest.approx(b.var, rel=1e-4)
        if b.grad_norm is not None:
            assert a.grad_norm == pytest.approx(b.grad_norm, rel=1e-3)
