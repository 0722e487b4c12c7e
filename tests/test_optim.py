"""`ferrograd.optim`: every update against a NumPy transcription of torch.optim's algorithm
(3 steps with fixed gradients), state dicts, parameter groups, errors and LR schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import optim

STEPS = 3


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def t64(a, requires_grad: bool = False) -> fg.Tensor:
    return fg.tensor(np.asarray(a, dtype=np.float64), dtype=fg.float64, requires_grad=requires_grad)


def problem(seed: int = 0, shapes=((3, 4), (5,))):
    """Initial parameter values and STEPS fixed gradients per parameter."""
    r = rng(seed)
    p0 = [r.standard_normal(s) for s in shapes]
    grads = [[r.standard_normal(s) for s in shapes] for _ in range(STEPS)]
    return p0, grads


def run_fg(make_opt, p0, grads, dtype=fg.float64):
    params = [fg.tensor(p, dtype=dtype, requires_grad=True) for p in p0]
    opt = make_opt(params)
    history = []
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = fg.tensor(g, dtype=dtype)
        opt.step()
        history.append([p.numpy().astype(np.float64) for p in params])
    return history


# ------------------------------------------------------------- torch.optim, in NumPy


def ref_sgd(p0, grads, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    ps = [p.copy() for p in p0]
    bufs = [None] * len(ps)
    history = []
    for gs in grads:
        for i, g in enumerate(gs):
            d_p = g + weight_decay * ps[i] if weight_decay else g.copy()
            if momentum != 0:
                if bufs[i] is None:
                    bufs[i] = d_p.copy()
                else:
                    bufs[i] = momentum * bufs[i] + (1 - dampening) * d_p
                d_p = d_p + momentum * bufs[i] if nesterov else bufs[i]
            ps[i] = ps[i] - lr * d_p
        history.append([p.copy() for p in ps])
    return history


def ref_adam(p0, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    b1, b2 = betas
    ps = [p.copy() for p in p0]
    m = [np.zeros_like(p) for p in ps]
    v = [np.zeros_like(p) for p in ps]
    history = []
    for step, gs in enumerate(grads, start=1):
        for i, g in enumerate(gs):
            if decoupled:
                ps[i] = ps[i] * (1 - lr * weight_decay)
            elif weight_decay:
                g = g + weight_decay * ps[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            bc1 = 1 - b1**step
            bc2 = 1 - b2**step
            denom = np.sqrt(v[i]) / math.sqrt(bc2) + eps
            ps[i] = ps[i] - (lr / bc1) * m[i] / denom
        history.append([p.copy() for p in ps])
    return history


def ref_rmsprop(p0, grads, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    ps = [p.copy() for p in p0]
    sq = [np.zeros_like(p) for p in ps]
    ga = [np.zeros_like(p) for p in ps]
    buf = [np.zeros_like(p) for p in ps]
    history = []
    for gs in grads:
        for i, g in enumerate(gs):
            if weight_decay:
                g = g + weight_decay * ps[i]
            sq[i] = alpha * sq[i] + (1 - alpha) * g * g
            if centered:
                ga[i] = alpha * ga[i] + (1 - alpha) * g
                avg = np.sqrt(sq[i] - ga[i] * ga[i]) + eps
            else:
                avg = np.sqrt(sq[i]) + eps
            if momentum > 0:
                buf[i] = momentum * buf[i] + g / avg
                ps[i] = ps[i] - lr * buf[i]
            else:
                ps[i] = ps[i] - lr * g / avg
        history.append([p.copy() for p in ps])
    return history


def assert_history(got, want, rtol=1e-12, atol=1e-12):
    assert len(got) == len(want)
    for step, (gs, ws) in enumerate(zip(got, want), start=1):
        for i, (g, w) in enumerate(zip(gs, ws)):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"step {step}, param {i}")


# ------------------------------------------------------------- updates vs the reference

SGD_CASES = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.1, momentum=0.9),
    "dampening": dict(lr=0.1, momentum=0.9, dampening=0.3),
    "nesterov": dict(lr=0.05, momentum=0.8, nesterov=True),
    "weight_decay": dict(lr=0.1, weight_decay=0.01),
    "momentum_weight_decay": dict(lr=0.1, momentum=0.9, weight_decay=0.05),
    "nesterov_weight_decay": dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05),
}


@pytest.mark.parametrize("case", list(SGD_CASES))
def test_sgd_matches_torch(case):
    hp = SGD_CASES[case]
    p0, grads = problem(1)
    got = run_fg(lambda ps: optim.SGD(ps, **hp), p0, grads)
    assert_history(got, ref_sgd(p0, grads, **hp))


def test_sgd_momentum_first_step_buffer_is_grad():
    p = t64([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.5, momentum=0.9, dampening=0.5)
    p.grad = t64([1.0, -1.0])
    opt.step()
    # first step: buf = grad (no dampening applied), p -= lr * buf
    np.testing.assert_allclose(p.numpy(), [0.5, 2.5], rtol=0, atol=1e-15)
    buf = opt.state[0]["momentum_buffer"].numpy()
    np.testing.assert_allclose(buf, [1.0, -1.0], rtol=0, atol=1e-15)
    p.grad = t64([1.0, 1.0])
    opt.step()
    # buf = 0.9 * buf + 0.5 * grad = [1.4, -0.4]
    np.testing.assert_allclose(opt.state[0]["momentum_buffer"].numpy(), [1.4, -0.4], rtol=1e-14)
    np.testing.assert_allclose(p.numpy(), [0.5 - 0.7, 2.5 + 0.2], rtol=1e-14)


ADAM_CASES = {
    "default": dict(lr=0.001),
    "lr_betas": dict(lr=0.1, betas=(0.8, 0.9)),
    "eps": dict(lr=0.01, eps=1e-3),
    "weight_decay": dict(lr=0.01, weight_decay=0.1),
}


@pytest.mark.parametrize("case", list(ADAM_CASES))
def test_adam_matches_torch(case):
    hp = ADAM_CASES[case]
    p0, grads = problem(2)
    got = run_fg(lambda ps: optim.Adam(ps, **hp), p0, grads)
    assert_history(got, ref_adam(p0, grads, **hp))


def test_adam_first_step_is_lr_times_sign():
    # with bias correction, the first step is lr * g / (|g| + eps') = lr * sign(g)
    p = t64([0.0, 0.0, 0.0], requires_grad=True)
    opt = optim.Adam([p], lr=0.01)
    p.grad = t64([3.0, -0.5, 1e-3])
    opt.step()
    np.testing.assert_allclose(p.numpy(), [-0.01, 0.01, -0.01], rtol=1e-4)


ADAMW_CASES = {
    "default": dict(lr=0.001),
    "strong_decay": dict(lr=0.05, weight_decay=0.2, betas=(0.85, 0.95)),
}


@pytest.mark.parametrize("case", list(ADAMW_CASES))
def test_adamw_matches_torch(case):
    hp = ADAMW_CASES[case]
    p0, grads = problem(3)
    got = run_fg(lambda ps: optim.AdamW(ps, **hp), p0, grads)
    want = ref_adam(p0, grads, weight_decay=hp.pop("weight_decay", 0.01), decoupled=True, **hp)
    assert_history(got, want)


def test_adamw_differs_from_adam_l2():
    p0, grads = problem(4)
    a = run_fg(lambda ps: optim.Adam(ps, lr=0.05, weight_decay=0.2), p0, grads)
    w = run_fg(lambda ps: optim.AdamW(ps, lr=0.05, weight_decay=0.2), p0, grads)
    assert not np.allclose(a[-1][0], w[-1][0])


RMSPROP_CASES = {
    "plain": dict(lr=0.01),
    "alpha": dict(lr=0.01, alpha=0.9),
    "momentum": dict(lr=0.01, momentum=0.9),
    "centered": dict(lr=0.01, centered=True),
    "centered_momentum": dict(lr=0.01, centered=True, momentum=0.5),
    "weight_decay": dict(lr=0.01, weight_decay=0.1),
    "all": dict(lr=0.02, alpha=0.95, eps=1e-4, weight_decay=0.05, momentum=0.7, centered=True),
}


@pytest.mark.parametrize("case", list(RMSPROP_CASES))
def test_rmsprop_matches_torch(case):
    hp = RMSPROP_CASES[case]
    p0, grads = problem(5)
    got = run_fg(lambda ps: optim.RMSprop(ps, **hp), p0, grads)
    assert_history(got, ref_rmsprop(p0, grads, **hp))


@pytest.mark.parametrize(
    "make, ref",
    [
        (
            lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
            lambda p, g: ref_sgd(p, g, 0.1, 0.9, 0, True),
        ),
        (lambda ps: optim.Adam(ps, lr=0.01), lambda p, g: ref_adam(p, g, 0.01)),
        (
            lambda ps: optim.AdamW(ps, lr=0.01),
            lambda p, g: ref_adam(p, g, 0.01, weight_decay=0.01, decoupled=True),
        ),
        (
            lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.9, centered=True),
            lambda p, g: ref_rmsprop(p, g, 0.01, momentum=0.9, centered=True),
        ),
    ],
    ids=["sgd", "adam", "adamw", "rmsprop"],
)
def test_float32_params(make, ref):
    p0, grads = problem(6)
    got = run_fg(make, p0, grads, dtype=fg.float32)
    p0_32 = [p.astype(np.float32).astype(np.float64) for p in p0]
    grads_32 = [[g.astype(np.float32).astype(np.float64) for g in gs] for gs in grads]
    assert_history(got, ref(p0_32, grads_32), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------- grads, state, groups


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
        lambda ps: optim.Adam(ps, lr=0.1),
        lambda ps: optim.AdamW(ps, lr=0.1),
        lambda ps: optim.RMSprop(ps, lr=0.1, momentum=0.9, centered=True),
    ],
    ids=["sgd", "adam", "adamw", "rmsprop"],
)
def test_params_without_grad_are_skipped(make):
    a = t64([1.0, 2.0], requires_grad=True)
    b = t64([3.0, 4.0], requires_grad=True)
    opt = make([a, b])
    a.grad = t64([0.5, -0.5])
    opt.step()
    opt.step()
    np.testing.assert_array_equal(b.numpy(), [3.0, 4.0])  # weight decay / momentum do not touch b
    assert not np.array_equal(a.numpy(), [1.0, 2.0])
    assert 1 not in opt.state or not opt.state[1]


def test_adam_late_param_starts_its_own_step_count():
    # b gets its first gradient on step 3: its update must be Adam's first step (bias-corrected)
    a = t64([1.0], requires_grad=True)
    b = t64([1.0], requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    for _ in range(2):
        a.grad = t64([1.0])
        opt.step()
    a.grad = t64([1.0])
    b.grad = t64([2.0])
    opt.step()
    np.testing.assert_allclose(b.numpy(), [0.9], rtol=1e-6)
    assert opt.state[0]["step"] == 3 and opt.state[1]["step"] == 1


def test_zero_grad_clears_grads():
    a = t64([1.0, 2.0], requires_grad=True)
    b = t64([3.0], requires_grad=True)
    opt = optim.SGD([a, b], lr=0.1)
    ((a * a).sum() + (b * 3.0).sum()).backward()
    assert a.grad is not None and b.grad is not None
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    opt.step()  # nothing to do
    np.testing.assert_array_equal(a.numpy(), [1.0, 2.0])


def test_trains_a_module():
    fg.manual_seed(0)
    model = fg.nn.Linear(3, 1)
    x = fg.randn(32, 3)
    y = x.matmul(fg.tensor([[1.0], [-2.0], [0.5]])) + 0.3
    opt = optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(100):
        opt.zero_grad()
        loss = fg.losses.mse(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.01 * losses[0]


def _clone_state(sd: dict) -> dict:
    """What a checkpoint round trip gives: the same values in fresh tensors."""
    state = {
        i: {
            k: (fg.tensor(v.numpy(), dtype=v.dtype) if isinstance(v, fg.Tensor) else v) for k, v in st.items()
        }
        for i, st in sd["state"].items()
    }
    return {**sd, "param_groups": [dict(g) for g in sd["param_groups"]], "state": state}


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda ps: optim.Adam(ps, lr=0.05, weight_decay=0.01),
        lambda ps: optim.AdamW(ps, lr=0.05),
        lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.9, centered=True),
    ],
    ids=["sgd", "adam", "adamw", "rmsprop"],
)
def test_state_dict_round_trip(make):
    r = rng(7)
    p0 = [r.standard_normal((3, 2)), r.standard_normal(4)]
    grads = [[r.standard_normal(p.shape) for p in p0] for _ in range(5)]
    pa = [t64(p, requires_grad=True) for p in p0]
    opt_a = make(pa)
    for gs in grads[:2]:
        for p, g in zip(pa, gs):
            p.grad = t64(g)
        opt_a.step()
    # a second optimizer on copies of the parameters, restored from a's state
    pb = [t64(p.numpy(), requires_grad=True) for p in pa]
    opt_b = make(pb)
    opt_b.lr = 123.0  # overwritten by the restored hyperparameters
    opt_b.load_state_dict(_clone_state(opt_a.state_dict()))
    assert opt_b.lr == opt_a.lr
    for gs in grads[2:]:
        for p, q, g in zip(pa, pb, gs):
            p.grad = t64(g)
            q.grad = t64(g)
        opt_a.step()
        opt_b.step()
        for p, q in zip(pa, pb):
            np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_state_dict_contents():
    p = t64([1.0, 2.0], requires_grad=True)
    opt = optim.Adam([p], lr=0.01, betas=(0.8, 0.9))
    p.grad = t64([1.0, 1.0])
    opt.step()
    sd = opt.state_dict()
    assert sd["class"] == "Adam"
    assert sd["param_groups"][0]["lr"] == 0.01
    assert tuple(sd["param_groups"][0]["betas"]) == (0.8, 0.9)
    assert "params" not in sd["param_groups"][0]
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    np.testing.assert_allclose(sd["state"][0]["exp_avg"].numpy(), [0.2, 0.2])
    with pytest.raises(ValueError, match="Adam"):
        optim.SGD([p], lr=0.1).load_state_dict(sd)


def test_lr_property():
    a = t64([1.0], requires_grad=True)
    b = t64([1.0], requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    assert opt.lr == 0.1
    opt.lr = 0.01
    assert opt.lr == 0.01
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.01]
    a.grad = t64([1.0])
    opt.step()
    np.testing.assert_allclose(a.numpy(), [0.99], rtol=1e-15)


def test_param_groups_with_different_lr():
    a = t64([1.0, 1.0], requires_grad=True)
    b = t64([1.0, 1.0], requires_grad=True)
    opt = optim.SGD([{"params": [a], "lr": 0.5}, {"params": [b], "momentum": 0.9}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.1]
    assert [g["momentum"] for g in opt.param_groups] == [0.0, 0.9]
    for _ in range(2):
        a.grad = t64([1.0, 2.0])
        b.grad = t64([1.0, 2.0])
        opt.step()
    np.testing.assert_allclose(a.numpy(), [1 - 2 * 0.5, 1 - 2 * 0.5 * 2], rtol=1e-14)
    # b: momentum 0.9, buf = g then 1.9 g -> p = 1 - 0.1 * 2.9 g
    np.testing.assert_allclose(b.numpy(), [1 - 0.29, 1 - 0.58], rtol=1e-14)


def test_adam_param_groups():
    p0, grads = problem(8, shapes=((2, 2), (3,)))
    pa = [t64(p, requires_grad=True) for p in p0]
    opt = optim.Adam([{"params": [pa[0]], "lr": 0.1}, {"params": [pa[1]], "weight_decay": 0.1}], lr=0.01)
    for gs in grads:
        for p, g in zip(pa, gs):
            p.grad = t64(g)
        opt.step()
    want0 = ref_adam([p0[0]], [[g[0]] for g in grads], lr=0.1)[-1][0]
    want1 = ref_adam([p0[1]], [[g[1]] for g in grads], lr=0.01, weight_decay=0.1)[-1][0]
    np.testing.assert_allclose(pa[0].numpy(), want0, rtol=1e-12)
    np.testing.assert_allclose(pa[1].numpy(), want1, rtol=1e-12)


# ------------------------------------------------------------- errors


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop])
def test_empty_param_list(cls):
    with pytest.raises(ValueError, match="empty parameter list"):
        cls([], lr=0.1)


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop])
def test_negative_lr(cls):
    with pytest.raises(ValueError, match="learning rate"):
        cls([t64([1.0], requires_grad=True)], lr=-0.1)


def test_nesterov_without_momentum():
    p = t64([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)


def test_bad_betas_and_non_leaf():
    p = t64([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(1.0, 0.999))
    with pytest.raises(ValueError, match="leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(TypeError, match="Tensors"):
        optim.SGD([np.zeros(2)], lr=0.1)


# ------------------------------------------------------------- schedules


def _opt(lr=1.0):
    return optim.SGD([t64([0.0], requires_grad=True)], lr=lr)


def test_step_lr():
    opt = _opt(0.1)
    sched = optim.StepLR(opt, step_size=3, gamma=0.5)
    lrs = []
    for _ in range(8):
        sched.step()
        lrs.append(opt.lr)
    # epoch e (after e calls to step): 0.1 * 0.5 ** (e // 3)
    expected = [0.1 * 0.5 ** (e // 3) for e in range(1, 9)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-15)
    assert sched.get_last_lr() == [opt.lr]


def test_step_lr_param_groups():
    a = t64([0.0], requires_grad=True)
    b = t64([0.0], requires_grad=True)
    opt = optim.SGD([{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.1}], lr=0.5)
    sched = optim.StepLR(opt, step_size=1, gamma=0.1)
    sched.step()
    np.testing.assert_allclose(sched.get_last_lr(), [0.1, 0.01], rtol=1e-15)


def test_cosine_annealing_lr():
    base, eta_min, t_max = 0.1, 0.001, 10
    opt = _opt(base)
    sched = optim.CosineAnnealingLR(opt, T_max=t_max, eta_min=eta_min)
    lrs = []
    for _ in range(t_max):
        sched.step()
        lrs.append(opt.lr)
    expected = [
        eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2 for t in range(1, t_max + 1)
    ]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    assert lrs[t_max // 2 - 1] == pytest.approx((base + eta_min) / 2)
    assert lrs[-1] == pytest.approx(eta_min)
    assert all(x > y for x, y in zip(lrs, lrs[1:]))


def test_reduce_lr_on_plateau_patience():
    opt = _opt(1.0)
    sched = optim.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2)
    # improves for 2 epochs, then flat: bad epochs 1, 2 (= patience) keep the lr, the 3rd reduces
    lrs = []
    for metric in [5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]:
        sched.step(metric)
        lrs.append(opt.lr)
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_reduce_lr_on_plateau_improvement_resets():
    opt = _opt(1.0)
    sched = optim.ReduceLROnPlateau(opt, factor=0.1, patience=1)
    for metric in [3.0, 3.0, 2.0, 2.0, 1.0, 1.0]:
        sched.step(metric)
    assert opt.lr == 1.0
    sched.step(1.0)  # second bad epoch in a row
    assert opt.lr == pytest.approx(0.1)


def test_reduce_lr_on_plateau_threshold():
    # relative threshold 0.1: 0.85 improves on 1.0 (< 0.9); 0.8 does not improve on 0.85 (>= 0.765)
    opt = _opt(1.0)
    sched = optim.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.1)
    sched.step(1.0)
    sched.step(0.85)
    assert opt.lr == 1.0
    sched.step(0.8)
    assert opt.lr == 0.5


def test_reduce_lr_on_plateau_max_mode():
    opt = _opt(1.0)
    sched = optim.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=1)
    for metric in [0.5, 0.6, 0.6, 0.6]:
        sched.step(metric)
    assert opt.lr == 0.5


def test_reduce_lr_on_plateau_min_lr():
    opt = _opt(1.0)
    sched = optim.ReduceLROnPlateau(opt, factor=0.1, patience=0, min_lr=0.005)
    lrs = []
    for _ in range(6):
        sched.step(1.0)
        lrs.append(opt.lr)
    np.testing.assert_allclose(lrs, [1.0, 0.1, 0.01, 0.005, 0.005, 0.005], rtol=1e-12)


def test_reduce_lr_on_plateau_cooldown():
    opt = _opt(1.0)
    sched = optim.ReduceLROnPlateau(opt, factor=0.5, patience=0, cooldown=2)
    lrs = []
    for _ in range(6):
        sched.step(1.0)
        lrs.append(opt.lr)
    # torch: reduce at epoch 2, then 2 cooldown epochs with bad epochs reset, reduce at epoch 5
    assert lrs == [1.0, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_reduce_lr_on_plateau_errors():
    with pytest.raises(ValueError, match="mode"):
        optim.ReduceLROnPlateau(_opt(), mode="avg")
    with pytest.raises(ValueError, match="factor"):
        optim.ReduceLROnPlateau(_opt(), factor=1.0)


def test_reduce_lr_on_plateau_max_mode_improving_metric_keeps_lr():
    opt = _opt(1.0)
    sched = optim.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=1)
    for metric in [0.1, 0.2, 0.3, 0.4, 0.5]:
        sched.step(metric)
    assert opt.lr == 1.0
    assert sched.best == 0.5
