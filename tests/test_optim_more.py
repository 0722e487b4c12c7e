"""`optim.Adagrad`, `optim.Adadelta` and `optim.NAdam` (issue 14): every update against a NumPy
transcription of the pseudo-code in PyTorch's documentation, in float64 and float32 and on
each device; state dicts that resume identically (in memory and through a checkpoint file);
hyperparameter checks; and each one training a small model."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import optim

STEPS = 4


def problem(seed: int = 0, shapes=((3, 4), (5,))):
    """Initial parameter values and STEPS fixed gradients per parameter."""
    r = np.random.default_rng(seed)
    p0 = [r.standard_normal(s) for s in shapes]
    grads = [[r.standard_normal(s) for s in shapes] for _ in range(STEPS)]
    return p0, grads


def run_fg(make_opt, p0, grads, dtype=fg.float64, device="cpu"):
    """The parameters after each step of the optimizer `make_opt(params)` fed `grads`."""
    params = [fg.tensor(p, dtype=dtype).to(device).requires_grad_() for p in p0]
    opt = make_opt(params)
    history = []
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = fg.tensor(g, dtype=dtype).to(device)
        opt.step()
        history.append([p.numpy().astype(np.float64) for p in params])
    assert all(p.device == device for p in params)
    return history


def assert_history(got, want, rtol=1e-12, atol=1e-12):
    assert len(got) == len(want)
    for step, (gs, ws) in enumerate(zip(got, want), start=1):
        for i, (g, w) in enumerate(zip(gs, ws)):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"step {step}, param {i}")


def as_float32(p0, grads):
    """The inputs rounded as a float32 run sees them (the reference then runs in float64)."""
    r = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731
    return [r(p) for p in p0], [[r(g) for g in gs] for gs in grads]


# ------------------------------------------------------------- PyTorch's pseudo-code, in NumPy


def ref_adagrad(p0, grads, lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    ps = [p.copy() for p in p0]
    state_sum = [np.full_like(p, initial_accumulator_value) for p in ps]
    history = []
    for t, gs in enumerate(grads, start=1):
        for i, g in enumerate(gs):
            lr_t = lr / (1 + (t - 1) * lr_decay)
            if weight_decay != 0:
                g = g + weight_decay * ps[i]
            state_sum[i] = state_sum[i] + g * g
            ps[i] = ps[i] - lr_t * g / (np.sqrt(state_sum[i]) + eps)
        history.append([p.copy() for p in ps])
    return history


def ref_adadelta(p0, grads, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
    ps = [p.copy() for p in p0]
    v = [np.zeros_like(p) for p in ps]  # square avg
    u = [np.zeros_like(p) for p in ps]  # accumulated squared updates
    history = []
    for gs in grads:
        for i, g in enumerate(gs):
            if weight_decay != 0:
                g = g + weight_decay * ps[i]
            v[i] = v[i] * rho + g * g * (1 - rho)
            dx = np.sqrt(u[i] + eps) / np.sqrt(v[i] + eps) * g
            u[i] = u[i] * rho + dx * dx * (1 - rho)
            ps[i] = ps[i] - lr * dx
        history.append([p.copy() for p in ps])
    return history


def ref_nadam(
    p0,
    grads,
    lr=0.002,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    momentum_decay=4e-3,
    decoupled_weight_decay=False,
):
    b1, b2 = betas
    ps = [p.copy() for p in p0]
    m = [np.zeros_like(p) for p in ps]
    v = [np.zeros_like(p) for p in ps]
    mus = []  # mu_1, mu_2, ...: the products below are taken afresh each step
    history = []
    for t, gs in enumerate(grads, start=1):
        mu_t = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        mus.append(mu_t)
        prod_t = math.prod(mus)
        prod_next = prod_t * mu_next
        for i, g in enumerate(gs):
            if weight_decay != 0:
                if decoupled_weight_decay:
                    ps[i] = ps[i] - lr * weight_decay * ps[i]
                else:
                    g = g + weight_decay * ps[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat = mu_next * m[i] / (1 - prod_next) + (1 - mu_t) * g / (1 - prod_t)
            v_hat = v[i] / (1 - b2**t)
            ps[i] = ps[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
        history.append([p.copy() for p in ps])
    return history


def ref_adam(
    p0,
    grads,
    lr=0.001,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    amsgrad=False,
    maximize=False,
    decoupled=False,
):
    b1, b2 = betas
    ps = [p.copy() for p in p0]
    m = [np.zeros_like(p) for p in ps]
    v = [np.zeros_like(p) for p in ps]
    vmax = [np.zeros_like(p) for p in ps]
    history = []
    for t, gs in enumerate(grads, start=1):
        for i, g in enumerate(gs):
            g = -g if maximize else g
            if weight_decay != 0:
                if decoupled:
                    ps[i] = ps[i] * (1 - lr * weight_decay)
                else:
                    g = g + weight_decay * ps[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            vmax[i] = np.maximum(vmax[i], v[i])
            denom = np.sqrt(vmax[i] if amsgrad else v[i]) / math.sqrt(1 - b2**t) + eps
            ps[i] = ps[i] - lr / (1 - b1**t) * m[i] / denom
        history.append([p.copy() for p in ps])
    return history


def ref_adamw(p0, grads, weight_decay=0.01, **hp):
    return ref_adam(p0, grads, weight_decay=weight_decay, decoupled=True, **hp)


def ref_sgd(p0, grads, lr=0.01, momentum=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    ps = [p.copy() for p in p0]
    buf: list = [None for _ in ps]
    history = []
    for gs in grads:
        for i, g in enumerate(gs):
            g = -g if maximize else g
            g = g + weight_decay * ps[i]
            if momentum:
                buf[i] = g.copy() if buf[i] is None else momentum * buf[i] + g
                g = g + momentum * buf[i] if nesterov else buf[i]
            ps[i] = ps[i] - lr * g
        history.append([p.copy() for p in ps])
    return history


CASES = {
    "adam_amsgrad": (optim.Adam, ref_adam, dict(lr=0.05, amsgrad=True)),
    "adam_amsgrad_weight_decay": (optim.Adam, ref_adam, dict(lr=0.05, amsgrad=True, weight_decay=0.1)),
    "adam_maximize": (optim.Adam, ref_adam, dict(lr=0.05, maximize=True)),
    "adam_amsgrad_maximize": (optim.Adam, ref_adam, dict(lr=0.05, amsgrad=True, maximize=True)),
    "adamw_amsgrad": (optim.AdamW, ref_adamw, dict(lr=0.05, amsgrad=True, weight_decay=0.1)),
    "adamw_maximize": (optim.AdamW, ref_adamw, dict(lr=0.05, maximize=True)),
    "sgd_maximize": (optim.SGD, ref_sgd, dict(lr=0.1, maximize=True)),
    "sgd_nesterov_maximize": (
        optim.SGD,
        ref_sgd,
        dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True),
    ),
    "adagrad": (optim.Adagrad, ref_adagrad, dict()),
    "adagrad_lr": (optim.Adagrad, ref_adagrad, dict(lr=0.1)),
    "adagrad_lr_decay": (optim.Adagrad, ref_adagrad, dict(lr=0.1, lr_decay=0.5)),
    "adagrad_weight_decay": (optim.Adagrad, ref_adagrad, dict(lr=0.1, weight_decay=0.2)),
    "adagrad_initial_accumulator": (optim.Adagrad, ref_adagrad, dict(lr=0.1, initial_accumulator_value=0.5)),
    "adagrad_all": (
        optim.Adagrad,
        ref_adagrad,
        dict(lr=0.05, lr_decay=0.1, weight_decay=0.05, initial_accumulator_value=0.1, eps=1e-3),
    ),
    "adadelta": (optim.Adadelta, ref_adadelta, dict()),
    "adadelta_rho_eps": (optim.Adadelta, ref_adadelta, dict(rho=0.5, eps=1e-3)),
    "adadelta_weight_decay": (optim.Adadelta, ref_adadelta, dict(lr=0.5, weight_decay=0.1)),
    "nadam": (optim.NAdam, ref_nadam, dict()),
    "nadam_lr_betas": (optim.NAdam, ref_nadam, dict(lr=0.05, betas=(0.8, 0.95))),
    "nadam_momentum_decay": (optim.NAdam, ref_nadam, dict(lr=0.01, momentum_decay=0.1)),
    "nadam_weight_decay": (optim.NAdam, ref_nadam, dict(lr=0.01, weight_decay=0.1, eps=1e-4)),
    "nadam_decoupled": (
        optim.NAdam,
        ref_nadam,
        dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_matches_pytorch_pseudo_code_float64(case):
    cls, ref, hp = CASES[case]
    p0, grads = problem(1)
    got = run_fg(lambda ps: cls(ps, **hp), p0, grads)
    assert_history(got, ref(p0, grads, **hp))


@pytest.mark.parametrize(
    "case",
    [
        "adagrad_all",
        "adadelta_weight_decay",
        "nadam_weight_decay",
        "nadam_decoupled",
        "adam_amsgrad_weight_decay",
        "adamw_amsgrad",
        "adam_maximize",
        "sgd_nesterov_maximize",
    ],
)
def test_matches_pytorch_pseudo_code_float32(case, device):
    """The same update on float32 parameters, on the CPU and on the GPU (same code)."""
    cls, ref, hp = CASES[case]
    p0, grads = problem(2)
    got = run_fg(lambda ps: cls(ps, **hp), p0, grads, dtype=fg.float32, device=device)
    assert_history(got, ref(*as_float32(p0, grads), **hp), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["adagrad", "adadelta", "nadam"])
def test_state_lives_beside_its_parameter(name, device):
    p = fg.tensor([1.0, -2.0, 3.0]).to(device).requires_grad_()
    opt = optim.OPTIMIZERS[name]([p])
    p.grad = fg.tensor([0.5, 0.5, -1.0]).to(device)
    opt.step()
    tensors = [v for v in opt.state[0].values() if isinstance(v, fg.Tensor)]
    assert tensors and all(v.device == device and v.dtype == fg.float32 for v in tensors)
    assert p.grad.numpy().tolist() == [0.5, 0.5, -1.0]  # the gradient itself is not modified
    assert p.is_leaf and p.requires_grad


def test_first_steps_by_hand():
    # Adagrad's first step is lr * sign(g): sum = g * g, so g / sqrt(sum) = sign(g)
    p = fg.tensor([0.0, 0.0], dtype=fg.float64, requires_grad=True)
    opt = optim.Adagrad([p], lr=0.1)
    p.grad = fg.tensor([4.0, -0.25], dtype=fg.float64)
    opt.step()
    np.testing.assert_allclose(p.numpy(), [-0.1, 0.1], rtol=1e-9)
    np.testing.assert_allclose(opt.state[0]["sum"].numpy(), [16.0, 0.0625], rtol=1e-15)
    # Adadelta's first step: sqrt(eps) / sqrt((1 - rho) g^2 + eps) * g
    q = fg.tensor([1.0], dtype=fg.float64, requires_grad=True)
    opt2 = optim.Adadelta([q], lr=1.0, rho=0.9, eps=1e-6)
    q.grad = fg.tensor([2.0], dtype=fg.float64)
    opt2.step()
    want = 1.0 - math.sqrt(1e-6) / math.sqrt(0.1 * 4.0 + 1e-6) * 2.0
    np.testing.assert_allclose(q.numpy(), [want], rtol=1e-14)


def test_nadam_mu_product_is_the_product_of_the_schedule():
    p = fg.tensor([1.0, 2.0], dtype=fg.float64, requires_grad=True)
    opt = optim.NAdam([p], momentum_decay=0.05)
    for _ in range(3):
        p.grad = fg.tensor([0.1, -0.3], dtype=fg.float64)
        opt.step()
    mus = [0.9 * (1 - 0.5 * 0.96 ** (t * 0.05)) for t in (1, 2, 3)]
    assert opt.state[0]["step"] == 3
    assert opt.state[0]["mu_product"] == pytest.approx(math.prod(mus), rel=1e-15)


def test_a_late_parameter_starts_its_own_schedule():
    """b gets its first gradient on step 3: its update is NAdam's first (t = 1, mu_product = mu_1)."""
    p0, grads = problem(3, shapes=((2,), (3,)))
    a = fg.tensor(p0[0], dtype=fg.float64, requires_grad=True)
    b = fg.tensor(p0[1], dtype=fg.float64, requires_grad=True)
    opt = optim.NAdam([a, b], lr=0.01)
    for step in range(3):
        a.grad = fg.tensor(grads[step][0], dtype=fg.float64)
        b.grad = fg.tensor(grads[step][1], dtype=fg.float64) if step == 2 else None
        opt.step()
    assert opt.state[0]["step"] == 3 and opt.state[1]["step"] == 1
    want = ref_nadam([p0[1]], [[grads[2][1]]], lr=0.01)[-1][0]
    np.testing.assert_allclose(b.numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("name", ["adagrad", "adadelta", "nadam"])
def test_params_without_grad_are_skipped(name):
    a = fg.tensor([1.0, 2.0], dtype=fg.float64, requires_grad=True)
    b = fg.tensor([3.0, 4.0], dtype=fg.float64, requires_grad=True)
    opt = optim.OPTIMIZERS[name]([a, b], weight_decay=0.1)
    for _ in range(2):
        a.grad = fg.tensor([0.5, -0.5], dtype=fg.float64)
        opt.step()
    np.testing.assert_array_equal(b.numpy(), [3.0, 4.0])  # weight decay does not touch b
    assert not np.array_equal(a.numpy(), [1.0, 2.0])
    assert 1 not in opt.state


def test_param_groups_with_their_own_hyperparameters():
    p0, grads = problem(4, shapes=((2, 2), (3,)))
    ps = [fg.tensor(p, dtype=fg.float64, requires_grad=True) for p in p0]
    opt = optim.Adagrad(
        [{"params": [ps[0]], "lr_decay": 0.3}, {"params": [ps[1]], "weight_decay": 0.1}], lr=0.1
    )
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = fg.tensor(g, dtype=fg.float64)
        opt.step()
    want0 = ref_adagrad([p0[0]], [[g[0]] for g in grads], lr=0.1, lr_decay=0.3)[-1][0]
    want1 = ref_adagrad([p0[1]], [[g[1]] for g in grads], lr=0.1, weight_decay=0.1)[-1][0]
    np.testing.assert_allclose(ps[0].numpy(), want0, rtol=1e-12)
    np.testing.assert_allclose(ps[1].numpy(), want1, rtol=1e-12)


# ------------------------------------------------------------- state dicts

MAKERS = {
    "adagrad": lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
    "adadelta": lambda ps: optim.Adadelta(ps, lr=0.5, rho=0.8, weight_decay=0.01),
    "nadam": lambda ps: optim.NAdam(ps, lr=0.01, weight_decay=0.01, momentum_decay=0.01),
}
STATE_KEYS = {
    "adagrad": {"step", "sum"},
    "adadelta": {"step", "square_avg", "acc_delta"},
    "nadam": {"step", "exp_avg", "exp_avg_sq", "mu_product"},
}


def _clone_state(sd: dict) -> dict:
    """What a checkpoint round trip gives: the same values in fresh tensors."""
    state = {
        i: {
            k: (fg.tensor(v.numpy(), dtype=v.dtype) if isinstance(v, fg.Tensor) else v) for k, v in st.items()
        }
        for i, st in sd["state"].items()
    }
    return {**sd, "param_groups": [dict(g) for g in sd["param_groups"]], "state": state}


@pytest.mark.parametrize("name", list(MAKERS))
def test_state_dict_round_trip_continues_identically(name):
    make = MAKERS[name]
    r = np.random.default_rng(7)
    p0 = [r.standard_normal((3, 2)), r.standard_normal(4)]
    grads = [[r.standard_normal(p.shape) for p in p0] for _ in range(6)]
    pa = [fg.tensor(p, dtype=fg.float64, requires_grad=True) for p in p0]
    opt_a = make(pa)
    for gs in grads[:3]:
        for p, g in zip(pa, gs):
            p.grad = fg.tensor(g, dtype=fg.float64)
        opt_a.step()
    sd = opt_a.state_dict()
    assert sd["class"] == type(opt_a).__name__ and "params" not in sd["param_groups"][0]
    assert set(sd["state"][0]) == STATE_KEYS[name] and sd["state"][0]["step"] == 3
    pb = [fg.tensor(p.numpy(), dtype=fg.float64, requires_grad=True) for p in pa]
    opt_b = make(pb)
    opt_b.lr = 123.0  # overwritten by the restored hyperparameters
    opt_b.load_state_dict(_clone_state(sd))
    assert opt_b.lr == opt_a.lr
    for gs in grads[3:]:
        for p, q, g in zip(pa, pb, gs):
            p.grad = fg.tensor(g, dtype=fg.float64)
            q.grad = fg.tensor(g, dtype=fg.float64)
        opt_a.step()
        opt_b.step()
        for p, q in zip(pa, pb):
            np.testing.assert_array_equal(p.numpy(), q.numpy())


@pytest.mark.parametrize("name", list(MAKERS))
def test_checkpoint_file_resumes_identically(name, tmp_path):
    """fg.save(model, path, optimizer=opt) and fg.load(path, model=, optimizer=) mid-run."""
    fg.manual_seed(0)
    x = fg.randn(16, 3)
    y = x.matmul(fg.tensor([[1.0], [-2.0], [0.5]]))

    def train(model, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            fg.losses.mse(model(x), y).backward()
            opt.step()

    model_a = fg.nn.Linear(3, 1)
    opt_a = MAKERS[name](list(model_a.parameters()))
    train(model_a, opt_a, 3)
    fg.save(model_a, tmp_path / "ckpt.safetensors", optimizer=opt_a)
    model_b = fg.nn.Linear(3, 1)
    opt_b = MAKERS[name](list(model_b.parameters()))
    fg.load(tmp_path / "ckpt.safetensors", model=model_b, optimizer=opt_b)
    assert set(opt_b.state[0]) == STATE_KEYS[name]
    train(model_a, opt_a, 3)
    train(model_b, opt_b, 3)
    for pa, pb in zip(model_a.parameters(), model_b.parameters()):
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())


def test_load_state_dict_checks_the_new_state():
    p = fg.tensor([1.0, 2.0], dtype=fg.float64, requires_grad=True)
    opt = optim.NAdam([p])
    p.grad = fg.tensor([1.0, 1.0], dtype=fg.float64)
    opt.step()
    good = opt.state_dict()
    for bad_value, match in (
        (1.5, "mu_product.*number in \\[0, 1\\]"),
        (float("nan"), "mu_product"),
        ("0.5", "mu_product"),
        (True, "mu_product"),
    ):
        bad = _clone_state(good)
        bad["state"][0]["mu_product"] = bad_value
        with pytest.raises(ValueError, match=match):
            opt.load_state_dict(bad)
    bad = _clone_state(good)
    bad["state"][0]["momentum_buffer"] = fg.zeros(2, dtype=fg.float64)
    with pytest.raises(ValueError, match="not state NAdam keeps"):
        opt.load_state_dict(bad)
    bad = _clone_state(good)
    bad["param_groups"][0]["momentum_decay"] = -1.0
    with pytest.raises(ValueError, match="NAdam: momentum_decay must be"):
        opt.load_state_dict(bad)
    with pytest.raises(ValueError, match="NAdam"):
        optim.Adagrad([p]).load_state_dict(good)
    # nothing changed by the refused loads
    assert opt.state[0]["mu_product"] == good["state"][0]["mu_product"]
    bad = opt.state_dict()
    bad["param_groups"][0]["rho"] = 2.0
    with pytest.raises(ValueError, match="Adadelta: rho must be a number in \\[0, 1\\]"):
        optim.Adadelta([p]).load_state_dict({**bad, "class": "Adadelta", "state": {}})


# ------------------------------------------------------------- hyperparameters


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (optim.Adagrad, dict(lr=-0.1), "learning rate"),
        (optim.Adagrad, dict(lr_decay=-1.0), "Adagrad: lr_decay must be a finite number >= 0"),
        (optim.Adagrad, dict(weight_decay=-0.1), "Adagrad: weight_decay"),
        (optim.Adagrad, dict(initial_accumulator_value=-0.5), "Adagrad: initial_accumulator_value"),
        (optim.Adagrad, dict(eps=float("nan")), "Adagrad: eps"),
        (optim.Adadelta, dict(lr=0.0), "learning rate"),
        (optim.Adadelta, dict(rho=1.5), "Adadelta: rho must be a number in \\[0, 1\\]"),
        (optim.Adadelta, dict(rho=-0.1), "Adadelta: rho"),
        (optim.Adadelta, dict(eps=-1e-6), "Adadelta: eps"),
        (optim.Adadelta, dict(weight_decay=float("inf")), "Adadelta: weight_decay"),
        (optim.NAdam, dict(lr=float("nan")), "learning rate"),
        (optim.NAdam, dict(betas=(1.0, 0.999)), "NAdam: betas must be two numbers in \\[0, 1\\)"),
        (optim.NAdam, dict(betas=(0.9,)), "NAdam: betas"),
        (optim.NAdam, dict(eps=-1.0), "NAdam: eps"),
        (optim.NAdam, dict(weight_decay=-0.01), "NAdam: weight_decay"),
        (optim.NAdam, dict(momentum_decay=-4e-3), "NAdam: momentum_decay must be a finite number >= 0"),
        (
            optim.NAdam,
            dict(decoupled_weight_decay="yes"),
            "NAdam: decoupled_weight_decay must be True or False",
        ),
    ],
)
def test_bad_hyperparameters_are_refused(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls([fg.tensor([1.0], requires_grad=True)], **kwargs)


@pytest.mark.parametrize("cls", [optim.Adagrad, optim.Adadelta, optim.NAdam])
def test_bad_param_groups_and_params_are_refused(cls):
    p = fg.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        cls([])
    with pytest.raises(ValueError, match="leaf"):
        cls([p * 2])
    opt = cls([p])
    with pytest.raises(ValueError, match=f"{cls.__name__}: weight_decay"):
        opt.add_param_group({"params": [fg.tensor([2.0], requires_grad=True)], "weight_decay": -1.0})


def test_defaults_are_pytorchs():
    p = [fg.tensor([1.0], requires_grad=True)]
    assert {k: v for k, v in optim.Adagrad(p).param_groups[0].items() if k != "params"} == dict(
        lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10
    )
    assert {k: v for k, v in optim.Adadelta(p).param_groups[0].items() if k != "params"} == dict(
        lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0
    )
    assert {k: v for k, v in optim.NAdam(p).param_groups[0].items() if k != "params"} == dict(
        lr=0.002,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        momentum_decay=4e-3,
        decoupled_weight_decay=False,
    )
    assert optim.NAdam(p, betas=[0.8, 0.9]).param_groups[0]["betas"] == (0.8, 0.9)


def test_get_by_name():
    p = [fg.tensor([1.0], requires_grad=True)]
    for name, cls, lr in (
        ("adagrad", optim.Adagrad, 0.01),
        ("Adadelta", optim.Adadelta, 1.0),
        ("NADAM", optim.NAdam, 0.002),
    ):
        opt = optim.get(name, p)
        assert type(opt) is cls and opt.lr == lr
        assert optim.get(name, p, lr=0.5).lr == 0.5
    for name in ("Adagrad", "Adadelta", "NAdam"):
        assert name in optim.__all__ and optim.OPTIMIZERS[name.lower()] is getattr(fg.optim, name)


# ------------------------------------------------------------- training


@pytest.mark.parametrize(
    "name, lr", [("adagrad", 0.3), ("adadelta", 1.0), ("nadam", 0.05)], ids=["adagrad", "adadelta", "nadam"]
)
def test_trains_a_small_model(name, lr, device):
    fg.manual_seed(0)
    x = fg.randn(64, 4)
    y = (x.matmul(fg.tensor([[1.0], [-2.0], [0.5], [0.0]])) + 0.3).tanh()
    model = fg.nn.Sequential(fg.nn.Linear(4, 8), fg.nn.Tanh(), fg.nn.Linear(8, 1)).to(device)
    x, y = x.to(device), y.to(device)
    opt = optim.get(name, model.parameters(), lr)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = fg.losses.mse(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])


@pytest.mark.parametrize("name", ["adagrad", "adadelta", "nadam"])
def test_compile_and_fit_by_name(name):
    """The training layer takes the new names as it takes 'adam'."""
    r = np.random.default_rng(0)
    x = r.standard_normal((128, 3)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] > 0).astype(np.int64)
    fg.manual_seed(0)
    model = fg.nn.Sequential(fg.nn.Linear(3, 16), fg.nn.ReLU(), fg.nn.Linear(16, 2))
    model.compile(
        optimizer=name, loss="cross_entropy", lr={"adagrad": 0.1, "adadelta": 1.0, "nadam": 0.01}[name]
    )
    h = model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    assert type(model.optimizer) is optim.OPTIMIZERS[name]
    assert h.history["loss"][-1] < h.history["loss"][0]


def test_amsgrad_state_round_trips_and_keeps_the_maximum():
    p0, grads = problem(3)
    params = [fg.tensor(p).requires_grad_() for p in p0]
    opt = optim.Adam(params, lr=0.05, amsgrad=True)
    for gs in grads[:2]:
        for p, g in zip(params, gs):
            p.grad = fg.tensor(g)
        opt.step()
    st = opt.state[0]
    assert set(st) == {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"}
    assert (st["max_exp_avg_sq"].numpy() >= st["exp_avg_sq"].numpy()).all()
    clone = [fg.tensor(p.numpy()).requires_grad_() for p in params]
    opt2 = optim.Adam(clone, lr=0.05, amsgrad=True)
    opt2.load_state_dict(opt.state_dict())
    for ps, o in ((params, opt), (clone, opt2)):
        for p, g in zip(ps, grads[2]):
            p.grad = fg.tensor(g)
        o.step()
    for a, b in zip(params, clone):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="amsgrad must be True or False"):
        optim.Adam(params, amsgrad=1)
