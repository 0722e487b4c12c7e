"""Captured GPU steps (fg.gpu.Graph / fg.gpu.graph): a replay must give the bits of the
eager step it stands for, step after step (dropout masks, Adam's bias corrections, batch
norm's running statistics, labels that change), and what a replay cannot repeat must be
refused at capture, not replayed wrong."""

from __future__ import annotations

import os

import numpy as np
import pytest

import ferrograd as fg
import ferrograd.nn.functional as F

if not fg.gpu_available():
    if os.environ.get("FERROGRAD_REQUIRE_GPU") == "1":
        raise RuntimeError("FERROGRAD_REQUIRE_GPU=1 but no GPU adapter was found: " + repr(fg.devices()))
    pytest.skip("no GPU adapter (install mesa-vulkan-drivers for lavapipe)", allow_module_level=True)

BATCH = 64
RNG = np.random.default_rng(7)
XS = [RNG.standard_normal((BATCH, 784)).astype(np.float32) for _ in range(4)]
YS = [RNG.integers(0, 10, BATCH) for _ in range(4)]

NETS = {
    "standard": lambda: fg.models.standard(784, 10),
    "residual": lambda: fg.models.residual(784, 10, width=64, blocks=2, dropout=0.1),
    "self_normalizing": lambda: fg.models.self_normalizing(784, 10),
}

OPTS = {
    "adam": lambda ps: fg.optim.Adam(ps, lr=1e-3),
    "adamw": lambda ps: fg.optim.AdamW(ps, lr=1e-3, weight_decay=0.01),
    "sgd_nesterov": lambda ps: fg.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    "rmsprop": lambda ps: fg.optim.RMSprop(ps, lr=1e-3, momentum=0.5, centered=True),
    "adadelta": lambda ps: fg.optim.Adadelta(ps),
}


def _setup(arch: str, opt="adam"):
    """A model, its optimizer (a name from OPTS, or a maker), a training step on static
    inputs, and `feed(i, labels=None)` refilling them with batch i."""
    fg.manual_seed(0)
    model = NETS[arch]().to("gpu")
    optimizer = (OPTS[opt] if isinstance(opt, str) else opt)(model.parameters())
    sx = fg.tensor(XS[0]).to("gpu")
    sy = fg.tensor(YS[0])

    def step():
        optimizer.zero_grad()
        loss = F.cross_entropy(model(sx), sy)
        loss.backward()
        optimizer.step()
        return loss

    def feed(i, labels=None):
        sx.copy_(fg.tensor(XS[i]).to("gpu"))
        sy.copy_(fg.tensor(YS[i] if labels is None else labels))

    return model, optimizer, step, feed


def _state(model, optimizer):
    weights = {k: v.numpy().copy() for k, v in model.state_dict().items() if hasattr(v, "numpy")}
    steps = [st.get("step") for st in optimizer.state.values()]
    return weights, steps, fg.get_rng_state()


def _eager(arch, opt, n):
    model, optimizer, step, feed = _setup(arch, opt)
    losses = []
    for i in range(n):
        feed(i)
        losses.append(step().item())
    return losses, _state(model, optimizer)


def _assert_same(a, b):
    (la, (wa, sa, ra)), (lb, (wb, sb, rb)) = a, b
    assert la == lb
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
    assert sa == sb
    assert ra == rb


def _mixed(arch: str, opt: str, plan: str):
    """A warm-up eager step on batch 0, a capture, then batch i (i >= 1) as plan[i - 1]
    says: "R" a replay, "E" an eager step; (losses, state) for comparing with `_eager`.
    Also checks the graph dispatches something."""
    model, optimizer, step, feed = _setup(arch, opt)
    feed(0)
    losses = [step().item()]
    optimizer.zero_grad()
    g = fg.gpu.Graph()
    with fg.gpu.graph(g):
        loss = step()
    assert g.dispatches > 0
    for i, how in enumerate(plan, 1):
        feed(i)
        if how == "R":
            g.replay()
            losses.append(loss.item())
        else:
            losses.append(step().item())
    return losses, _state(model, optimizer)


@pytest.mark.parametrize("arch", list(NETS))
def test_replays_give_the_bits_of_eager_steps(arch):
    """One warm-up step, a capture, three replays (new data each) == four eager steps: the
    losses, every weight and running statistic, the step counts and the random state."""
    _assert_same(_eager(arch, "adam", 4), _mixed(arch, "adam", "RRR"))


@pytest.mark.parametrize("opt", list(OPTS))
def test_each_capturable_optimizer_replays_exactly(opt):
    _assert_same(_eager("standard", opt, 4), _mixed("standard", opt, "RRR"))


def test_eager_steps_after_replays_continue_the_same_run():
    """Replays keep the host's bookkeeping (step counts, random stream) where eager steps
    would have left it, so a run may mix them."""
    _assert_same(_eager("residual", "adam", 4), _mixed("residual", "adam", "RRE"))


def test_capture_runs_nothing_and_replay_counts_its_dispatches():
    model, optimizer, step, feed = _setup("standard")
    feed(0)
    step().item()
    before = [p.numpy().copy() for p in model.parameters()]
    optimizer.zero_grad()
    fg.gpu.synchronize()
    d0 = fg.gpu.stats()["dispatches"]
    g = fg.gpu.Graph()
    with fg.gpu.graph(g):
        step()
    fg.gpu.synchronize()
    assert fg.gpu.stats()["dispatches"] == d0  # recorded, not run
    for b, p in zip(before, model.parameters()):
        np.testing.assert_array_equal(b, p.numpy())
    # one replay submits what one eager step dispatches
    feed(1)
    fg.gpu.synchronize()
    d1 = fg.gpu.stats()["dispatches"]
    g.replay()
    fg.gpu.synchronize()
    assert fg.gpu.stats()["dispatches"] - d1 == g.dispatches
    d2 = fg.gpu.stats()["dispatches"]
    step()
    fg.gpu.synchronize()
    assert fg.gpu.stats()["dispatches"] - d2 == g.dispatches
    assert any(not np.array_equal(b, p.numpy()) for b, p in zip(before, model.parameters()))


def _capture_fails(body, match, exc=fg.DeviceError):
    g = fg.gpu.Graph()
    with pytest.raises(exc, match=match):
        with fg.gpu.graph(g):
            body()
    # the failed capture is gone: nothing records, and a new capture works
    assert fg._graphs.capturing is None
    x = fg.ones(4).to("gpu")
    g2 = fg.gpu.Graph()
    with fg.gpu.graph(g2):
        y = x * 3
    g2.replay()
    np.testing.assert_array_equal(y.numpy(), np.full(4, 3, np.float32))


def test_reading_values_back_inside_a_capture_is_refused():
    x = fg.ones(4).to("gpu")
    _capture_fails(lambda: (x * 2).sum().item(), "cannot read GPU results back")


def test_host_reads_of_integer_indices_inside_a_capture_are_refused():
    x = fg.ones((4, 3)).to("gpu")
    idx = fg.tensor([0, 2])
    _capture_fails(lambda: x[idx] * 2, "integer tensor")


def test_random_numbers_drawn_on_the_host_inside_a_capture_are_refused():
    _capture_fails(lambda: fg.randn(8).to("gpu") * 2, "drawn on the host")


def test_optimizer_state_created_inside_a_capture_is_refused():
    """Its zeros would be written again by every replay (PyTorch asks for a warm-up too)."""
    model, optimizer, step, feed = _setup("standard")
    _capture_fails(step, "run one step before capturing", RuntimeError)


def test_optimizers_with_python_per_step_factors_are_refused():
    model, optimizer, step, feed = _setup("standard", fg.optim.Adagrad)
    feed(0)
    step()
    _capture_fails(step, "cannot be captured", RuntimeError)


def test_out_of_range_labels_fail_the_replay_before_anything_runs():
    model, optimizer, step, feed = _setup("standard")
    feed(0)
    step()
    optimizer.zero_grad()
    g = fg.gpu.Graph()
    with fg.gpu.graph(g):
        step()
    before = [p.numpy().copy() for p in model.parameters()]
    bad = YS[1].copy()
    bad[5] = 10
    feed(1, bad)
    with pytest.raises(IndexError, match="target 10 is out of range for 10 classes"):
        g.replay()
    for b, p in zip(before, model.parameters()):
        np.testing.assert_array_equal(b, p.numpy())
    feed(1)
    g.replay()
    assert any(not np.array_equal(b, p.numpy()) for b, p in zip(before, model.parameters()))


def test_a_graphs_buffers_are_not_handed_to_other_tensors():
    """A tensor the capture made and the caller dropped keeps its buffer out of the pool while
    the graph lives: a replay must not write into a tensor allocated afterwards."""
    x = fg.ones(1000).to("gpu")
    g = fg.gpu.Graph()
    with fg.gpu.graph(g):
        y = x * 2
        z = y + 1
    del y, z
    others = [fg.full((1000,), 7.0).to("gpu") for _ in range(4)]
    g.replay()
    fg.gpu.synchronize()
    for o in others:
        np.testing.assert_array_equal(o.numpy(), np.full(1000, 7, np.float32))


def test_dropping_a_graph_gives_its_buffers_back():
    x = fg.ones(1 << 16).to("gpu")
    fg.gpu.synchronize()
    reserved = None
    for _ in range(3):
        g = fg.gpu.Graph()
        with fg.gpu.graph(g):
            y = (x * 2).relu() + 1
        g.replay()
        del y, g
        fg.gpu.synchronize()
        now = fg.gpu.memory_reserved()
        assert reserved is None or now == reserved  # the second capture reuses the first's
        reserved = now


def test_misuse_raises_clear_errors():
    g = fg.gpu.Graph()
    with pytest.raises(RuntimeError, match="nothing has been captured"):
        g.replay()
    with fg.gpu.graph(g):
        with pytest.raises(RuntimeError, match="another capture is recording"):
            fg.gpu.Graph().capture_begin()
    with pytest.raises(TypeError, match="expected a fg.gpu.Graph"):
        fg.gpu.graph(object())
    assert fg.cuda.CUDAGraph is fg.gpu.Graph


def test_eager_steps_between_replays_keep_every_replay_exact():
    """A replay draws from the generator and counts the optimizer step where they are at the
    replay, so eager steps (the short last batch of an epoch) may come in between."""
    _assert_same(_eager("residual", "adam", 4), _mixed("residual", "adam", "RER"))


def test_uneven_step_counts_refuse_the_replay():
    model, optimizer, step, feed = _setup("standard")
    feed(0)
    step().item()
    optimizer.zero_grad()
    g = fg.gpu.Graph()
    with fg.gpu.graph(g):
        step()
    next(iter(optimizer.state.values()))["step"] += 5  # one parameter stepped elsewhere
    with pytest.raises(RuntimeError, match="step counts moved unevenly"):
        g.replay()


def _fit(capture, optimizer="adam", callbacks=None):
    x, y = fg.data.load_mnist()
    fg.manual_seed(3)
    model = fg.models.residual(784, 10, width=64, blocks=2).to("gpu")
    if optimizer == "adagrad":
        optimizer = fg.optim.Adagrad(model.parameters(), lr=0.01)
    history = model.fit(
        x[:600],
        y[:600],
        epochs=3,
        batch_size=128,  # 480 training samples: three full batches and a short one
        validation_split=0.2,
        verbose=0,
        capture=capture,
        callbacks=callbacks,
    )
    return history.history, {k: v.numpy() for k, v in model.state_dict().items() if hasattr(v, "numpy")}


def _same_fit(a, b):
    assert a[0] == b[0]
    for k in a[1]:
        np.testing.assert_array_equal(a[1][k], b[1][k], err_msg=k)


def test_fit_replays_captured_steps_with_the_eager_bits(monkeypatch):
    replays = []
    real = fg._graphs.Graph.replay
    monkeypatch.setattr(fg._graphs.Graph, "replay", lambda self: (replays.append(1), real(self))[1])
    _same_fit(_fit(False), _fit("auto"))
    # epoch 1: 1 eager + capture + 1 replay of the full batches, the short one eager; then
    # every batch of epochs 2 and 3 replays (the short one captured on its second showing)
    assert len(replays) >= 8


def test_fit_recaptures_after_a_learning_rate_change():
    class Halve(fg.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            for g in self.optimizer.param_groups:
                g["lr"] *= 0.5

    _same_fit(_fit(False, callbacks=[Halve()]), _fit("auto", callbacks=[Halve()]))


def test_fit_trains_eagerly_where_a_step_cannot_be_captured():
    _same_fit(_fit(False, "adagrad"), _fit("auto", "adagrad"))


def test_fit_runs_hooked_steps_eagerly():
    """A forward hook is Python a replay would not call: while one is registered, fit's steps
    run eagerly, so the hook sees every batch."""
    calls = []
    x, y = fg.data.load_mnist()
    fg.manual_seed(3)
    model = fg.models.standard(784, 10, width=32).to("gpu")
    model[0].register_forward_hook(lambda m, args, out: calls.append(out.shape[0]))
    model.fit(x[:512], y[:512], epochs=2, batch_size=128, verbose=0)
    assert calls == [128] * 8


def _autocast_run(graph: bool, arch: str, opt: str, dtype, xs, ys, scaler=None):
    """Autocast steps (with `scaler`, a GradScaler maker, when given) on batches xs/ys:
    eagerly, or a warm-up step, a capture and replays. (losses, weights, step counts as
    state_dict reports them, random state, scale)."""
    fg.manual_seed(0)
    model = NETS[arch]().to("gpu")
    optimizer = OPTS[opt](model.parameters())
    sc = scaler() if scaler is not None else fg.GradScaler("gpu", enabled=False)
    sx, sy = fg.tensor(xs[0]).to("gpu"), fg.tensor(ys[0])

    def step():
        optimizer.zero_grad()
        with fg.autocast("gpu", dtype=dtype):
            loss = F.cross_entropy(model(sx), sy)
        sc.scale(loss).backward()
        sc.step(optimizer)
        sc.update()
        return loss

    losses = [step().item()]
    if graph:
        optimizer.zero_grad()
        g = fg.gpu.Graph()
        with fg.gpu.graph(g):
            loss = step()
    for i in range(1, len(xs)):
        sx.copy_(fg.tensor(xs[i]).to("gpu"))
        sy.copy_(fg.tensor(ys[i]))
        if graph:
            g.replay()
            losses.append(loss.item())
        else:
            losses.append(step().item())
    weights, _, rng = _state(model, optimizer)
    steps = [st.get("step") for st in optimizer.state_dict()["state"].values()]
    return losses, weights, steps, rng, sc.get_scale()


def _assert_same_runs(eager, replayed):
    np.testing.assert_array_equal(eager[0], replayed[0])  # NaN losses included
    assert eager[1].keys() == replayed[1].keys()
    for k in eager[1]:
        np.testing.assert_array_equal(eager[1][k], replayed[1][k], err_msg=k)
    assert eager[2:] == replayed[2:]


def test_a_bfloat16_autocast_step_replays_exactly():
    """Mixed precision without loss scaling (bfloat16 keeps float32's range) captures too:
    the half products, casts and packed activations replay with the eager bits."""
    runs = [_autocast_run(graph, "residual", "adam", fg.bfloat16, XS, YS) for graph in (False, True)]
    _assert_same_runs(*runs)


@pytest.mark.parametrize("opt", ["adam", "sgd_nesterov", "adadelta"])
def test_a_float16_step_with_a_grad_scaler_replays_exactly(opt):
    """float16 autocast with a GradScaler captures: the scale lives on the device, the
    optimizer skips itself where the unscale kernel found inf, and update() is a kernel, so
    the step reads nothing back. A batch that overflows float16 (x 1e30) is skipped by the
    replay as by the eager step; losses, weights, step counts and the scale match bit for
    bit."""
    xs = [XS[0], XS[1], XS[2] * 1e30, XS[3], XS[1]]
    ys = [YS[0], YS[1], YS[2], YS[3], YS[1]]

    def scaler():
        return fg.GradScaler("gpu", init_scale=2.0**12, growth_interval=2)

    eager, replayed = (_autocast_run(g, "standard", opt, fg.float16, xs, ys, scaler) for g in (False, True))
    _assert_same_runs(eager, replayed)
    assert not np.isfinite(eager[0][2])
    # 2**12, grown after two clean steps, backed off at the overflow, grown again after two
    assert eager[4] == 2.0**13
    if opt == "adam":
        assert set(eager[2]) == {4}  # five steps, one skipped


def test_fit_replays_mixed_precision_steps_with_the_eager_bits(monkeypatch):
    replays = []
    real = fg._graphs.Graph.replay
    monkeypatch.setattr(fg._graphs.Graph, "replay", lambda self: (replays.append(1), real(self))[1])

    def fit(capture):
        x, y = fg.data.load_mnist()
        fg.manual_seed(3)
        model = fg.models.residual(784, 10, width=64, blocks=2).to("gpu")
        h = model.fit(
            x[:600],
            y[:600],
            epochs=3,
            batch_size=128,
            validation_split=0.2,
            verbose=0,
            capture=capture,
            precision="mixed",
        )
        return h.history, {k: v.numpy() for k, v in model.state_dict().items() if hasattr(v, "numpy")}

    _same_fit(fit(False), fit("auto"))
    assert len(replays) >= 8
