"""ferrograd.keras: Keras scripts for dense networks run with only the import lines changed
(issue 14), and Keras's documented semantics, checked against hand computations in NumPy.

The script-shaped tests follow the shape of well-known public Keras scripts (the MNIST MLP,
a self-normalizing network, a functional residual MLP), written anew here; each trains on
the bundled MNIST sample next to the same network built with ferrograd's builders or `nn`
layers, trained the same way, and must reach the same best validation accuracy within one
percentage point.
"""

from __future__ import annotations

import io
import json
import math
import re

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import io as fio
from ferrograd import nn
from ferrograd.data import load_mnist
from ferrograd.keras import backend as K
from ferrograd.keras import callbacks, initializers, layers, losses, metrics, optimizers, regularizers


@pytest.fixture(autouse=True)
def _fresh_names():
    """Layer names restart at "dense" in each test (Keras's clear_session)."""
    K.clear_session()
    yield


@pytest.fixture(scope="module")
def mnist():
    x, y = load_mnist()
    return x[:8000], y[:8000], x[8000:], y[8000:]


def _small(n=256, d=12, classes=3, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((n, d)).astype(np.float32)
    w = r.standard_normal((d, classes)).astype(np.float32)
    return x, (x @ w).argmax(axis=1).astype(np.int64)


# ============================================================================ scripts


def test_mnist_mlp_script(mnist, capsys):
    """The classic Keras MNIST MLP: Sequential Dense/Dropout, to_categorical, RMSprop,
    evaluate -> score[0], score[1]."""
    from ferrograd.keras.layers import Dense, Dropout
    from ferrograd.keras.models import Sequential
    from ferrograd.keras.optimizers import RMSprop
    from ferrograd.keras.utils import np_utils

    x_train, y_train, x_test, y_test = mnist
    batch_size, num_classes, epochs = 128, 10, 5
    Y_train = np_utils.to_categorical(y_train, num_classes)
    Y_test = np_utils.to_categorical(y_test, num_classes)

    fg.manual_seed(0)
    model = Sequential()
    model.add(Dense(512, activation="relu", input_shape=(784,)))
    model.add(Dropout(0.2))
    model.add(Dense(512, activation="relu"))
    model.add(Dropout(0.2))
    model.add(Dense(num_classes, activation="softmax"))
    model.summary()
    model.compile(loss="categorical_crossentropy", optimizer=RMSprop(), metrics=["accuracy"])
    history = model.fit(
        x_train, Y_train, batch_size=batch_size, epochs=epochs, verbose=1, validation_data=(x_test, Y_test)
    )
    score = model.evaluate(x_test, Y_test, verbose=0)
    out = capsys.readouterr().out
    print("Test loss:", score[0])
    print("Test accuracy:", score[1])

    assert "Total params: 669,706" in out
    assert out.count("Train on 8000 samples, validate on 2000 samples") == 1
    lines = re.findall(
        r"^8000/8000 \[=+\] - \d+s - loss: [0-9.]+ - accuracy: [0-9.]+"
        r" - val_loss: [0-9.]+ - val_accuracy: ([0-9.]+)$",
        out,
        re.M,
    )
    assert len(lines) == epochs and f"Epoch {epochs}/{epochs}" in out
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert score[1] == pytest.approx(history.history["val_accuracy"][-1], abs=1e-6)
    assert score[0] == pytest.approx(history.history["val_loss"][-1], rel=1e-5)

    # the same network from nn layers (Keras's glorot_uniform kernels, zero biases), trained
    # by ferrograd.train.fit with RMSprop at Keras's settings, from the same seed
    fg.manual_seed(0)
    ref = nn.Sequential(
        nn.Linear(784, 512, init="glorot_uniform"),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(512, 512, init="glorot_uniform"),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(512, num_classes, init="glorot_uniform"),
        nn.Softmax(dim=1),
    )
    opt = fg.optim.RMSprop(ref.parameters(), lr=0.001, alpha=0.9, eps=1e-7)
    h = fg.train.fit(
        ref,
        x_train,
        y_train,
        optimizer=opt,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=(x_test, y_test),
        verbose=0,
    )
    best_keras, best_ref = max(history.history["val_accuracy"]), max(h.history["val_acc"])
    assert best_keras > 0.93
    assert abs(best_keras - best_ref) <= 0.01, (history.history["val_accuracy"], h.history["val_acc"])


def test_selu_script(mnist):
    """A Keras self-normalizing network: Dense(selu, lecun_normal) + AlphaDropout, next to
    ferrograd.models.self_normalizing trained the same way."""
    from ferrograd import keras
    from ferrograd.keras.layers import AlphaDropout, Dense

    x_train, y_train, x_test, y_test = mnist
    y_train_1h = keras.utils.to_categorical(y_train)
    y_test_1h = keras.utils.to_categorical(y_test)
    fg.manual_seed(0)
    model = keras.Sequential()
    model.add(Dense(256, kernel_initializer="lecun_normal", activation="selu", input_dim=784))
    model.add(AlphaDropout(0.05))
    for _ in range(2):
        model.add(Dense(256, kernel_initializer="lecun_normal", activation="selu"))
        model.add(AlphaDropout(0.05))
    model.add(Dense(10, activation="softmax"))
    model.compile(
        loss="categorical_crossentropy",
        optimizer=keras.optimizers.SGD(learning_rate=0.05, momentum=0.9),
        metrics=["accuracy"],
    )
    history = model.fit(
        x_train, y_train_1h, batch_size=128, epochs=5, verbose=0, validation_data=(x_test, y_test_1h)
    )
    # the hidden kernels have lecun_normal's std sqrt(1/fan_in)
    w = model.layers[2].get_weights()[0]
    assert w.std() == pytest.approx(math.sqrt(1 / 256), rel=0.05)

    fg.manual_seed(0)
    ref = fg.models.self_normalizing(784, 10, width=256, depth=3, alpha_dropout=0.05, head="softmax")
    h = fg.train.fit(
        ref,
        x_train,
        y_train,
        optimizer=fg.optim.SGD(ref.parameters(), lr=0.05, momentum=0.9),
        epochs=5,
        batch_size=128,
        validation_data=(x_test, y_test),
        verbose=0,
    )
    best_keras, best_ref = max(history.history["val_accuracy"]), max(h.history["val_acc"])
    assert best_keras > 0.92
    assert abs(best_keras - best_ref) <= 0.01, (history.history["val_accuracy"], h.history["val_acc"])


def test_functional_residual_script(mnist):
    """A Keras functional residual MLP: Dense+BatchNormalization+Activation blocks with
    layers.Add skips, next to the same network from nn layers (nn.Residual)."""
    from ferrograd import keras
    from ferrograd.keras import layers as L

    x_train, y_train, x_test, y_test = mnist
    width, blocks = 128, 2

    def block(x):
        y = x
        for _ in range(2):
            y = L.Dense(width)(y)
            y = L.BatchNormalization()(y)
            y = L.Activation("relu")(y)
            y = L.Dropout(0.1)(y)
        return L.Add()([x, y])

    fg.manual_seed(0)
    inputs = keras.Input(shape=(784,))
    x = L.Dense(width)(inputs)
    x = L.BatchNormalization()(x)
    x = L.Activation("relu")(x)
    for _ in range(blocks):
        x = block(x)
    outputs = L.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(
        x_train, y_train, batch_size=128, epochs=4, validation_data=(x_test, y_test), verbose=0
    )

    # Keras's defaults spelled in ferrograd's terms: glorot_uniform kernels, BatchNorm
    # epsilon 1e-3 and PyTorch momentum 1 - 0.99
    fg.manual_seed(0)

    def bn():
        return nn.BatchNorm1d(width, eps=1e-3, momentum=0.01)

    seq = [nn.Linear(784, width, init="glorot_uniform"), bn(), nn.ReLU()]
    for _ in range(blocks):
        body = []
        for _ in range(2):
            body += [nn.Linear(width, width, init="glorot_uniform"), bn(), nn.ReLU(), nn.Dropout(0.1)]
        seq.append(nn.Residual(nn.Sequential(*body)))
    ref = nn.Sequential(*seq, nn.Linear(width, 10, init="glorot_uniform"), nn.Softmax(dim=1))
    h = fg.train.fit(
        ref,
        x_train,
        y_train,
        optimizer=fg.optim.Adam(ref.parameters(), lr=0.001, eps=1e-7),
        epochs=4,
        batch_size=128,
        validation_data=(x_test, y_test),
        verbose=0,
    )
    best_keras, best_ref = max(history.history["val_accuracy"]), max(h.history["val_acc"])
    assert best_keras > 0.94
    assert abs(best_keras - best_ref) <= 0.01, (history.history["val_accuracy"], h.history["val_acc"])
    # Keras counts BatchNormalization's moving mean and variance, not PyTorch's batch counter
    moving = sum(b.numel() for n, b in ref.named_buffers() if not n.endswith("num_batches_tracked"))
    assert model.count_params() == ref.num_parameters() + moving


# ============================================================================ optimizers


def _run(opt, w0, grads):
    """Applies `grads` one step each to a parameter starting at `w0`; returns its values."""
    w = nn.Parameter(fg.tensor(np.asarray(w0, dtype=np.float32)))
    for g in grads:
        opt.apply_gradients([(fg.tensor(np.asarray(g, dtype=np.float32)), w)])
    return w.detach().numpy().astype(np.float64)


W0 = np.array([0.5, -1.0, 2.0, 0.0])
GRADS = [np.array([0.1, -0.2, 0.3, 1e-3]), np.array([-0.05, 0.4, 0.1, 0.0]), np.array([0.2, 0.1, -0.3, 2e-3])]


def _np_sgd(w, grads, lr, momentum=0.0, nesterov=False, lrs=None):
    m = np.zeros_like(w)
    for t, g in enumerate(grads):
        a = lrs[t] if lrs else lr
        if momentum:
            m = momentum * m - a * g
            w = w + (momentum * m - a * g if nesterov else m)
        else:
            w = w - a * g
    return w


def _np_rmsprop(w, grads, lr=0.001, rho=0.9, momentum=0.0, eps=1e-7, centered=False):
    v, mom, avg = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for g in grads:
        v = rho * v + (1 - rho) * g * g
        if centered:
            avg = rho * avg + (1 - rho) * g
            den = v - avg * avg + eps
        else:
            den = v + eps
        inc = lr * g / np.sqrt(den)  # Keras: epsilon inside the square root
        if momentum:
            mom = momentum * mom + inc
            w = w - mom
        else:
            w = w - inc
    return w


def _np_adam(w, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False, wd=None):
    m, v, vh = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        if wd:
            w = w - w * wd * lr
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        if amsgrad:
            vh = np.maximum(vh, v)
            w = w - m * alpha / (np.sqrt(vh) + eps)
        else:
            w = w - m * alpha / (np.sqrt(v) + eps)  # Keras: "epsilon hat"
    return w


def _np_nadam(w, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
    m, v, u_prod = np.zeros_like(w), np.zeros_like(w), 1.0
    for t, g in enumerate(grads, 1):
        u_t = b1 * (1 - 0.5 * 0.96**t)
        u_t1 = b1 * (1 - 0.5 * 0.96 ** (t + 1))
        u_prod = u_prod * u_t
        u_prod1 = u_prod * u_t1
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        m_hat = u_t1 * m / (1 - u_prod1) + (1 - u_t) * g / (1 - u_prod)
        v_hat = v / (1 - b2**t)
        w = w - m_hat * lr / (np.sqrt(v_hat) + eps)
    return w


def _np_adagrad(w, grads, lr=0.001, init=0.1, eps=1e-7):
    acc = np.full_like(w, init)
    for g in grads:
        acc = acc + g * g
        w = w - lr * g / np.sqrt(acc + eps)
    return w


def _np_adadelta(w, grads, lr=0.001, rho=0.95, eps=1e-7):
    ag, ad = np.zeros_like(w), np.zeros_like(w)
    for g in grads:
        ag = rho * ag + (1 - rho) * g * g
        d = -np.sqrt(ad + eps) * g / np.sqrt(ag + eps)
        ad = rho * ad + (1 - rho) * d * d
        w = w + lr * d
    return w


def _np_adamax(w, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
    m, u = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        m = m + (g - m) * (1 - b1)
        u = np.maximum(b2 * u, np.abs(g))
        w = w - lr * m / ((1 - b1**t) * (u + eps))
    return w


def test_optimizer_defaults_are_keras_s():
    o = optimizers.RMSprop()
    assert (float(o.learning_rate), o.rho, o.epsilon, o.momentum, o.centered) == (
        0.001,
        0.9,
        1e-7,
        0.0,
        False,
    )
    a = optimizers.Adam()
    assert (float(a.learning_rate), a.beta_1, a.beta_2, a.epsilon, a.amsgrad) == (
        0.001,
        0.9,
        0.999,
        1e-7,
        False,
    )
    s = optimizers.SGD()
    assert (float(s.learning_rate), s.momentum, s.nesterov) == (0.01, 0.0, False)
    n = optimizers.Nadam()
    assert (float(n.learning_rate), n.beta_1, n.beta_2, n.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    g = optimizers.Adagrad()
    assert (float(g.learning_rate), g.initial_accumulator_value, g.epsilon) == (0.001, 0.1, 1e-7)
    d = optimizers.Adadelta()
    assert (float(d.learning_rate), d.rho, d.epsilon) == (0.001, 0.95, 1e-7)
    assert optimizers.AdamW().weight_decay == 0.004
    # by name in compile: the same defaults (PyTorch's RMSprop default lr is ten times this)
    for name, cls, lr in [
        ("rmsprop", optimizers.RMSprop, 0.001),
        ("adam", optimizers.Adam, 0.001),
        ("sgd", optimizers.SGD, 0.01),
        ("nadam", optimizers.Nadam, 0.001),
        ("adagrad", optimizers.Adagrad, 0.001),
        ("adadelta", optimizers.Adadelta, 0.001),
    ]:
        m = fg.keras.Sequential([layers.Dense(2, input_shape=(3,))])
        m.compile(optimizer=name, loss="mse")
        assert type(m.optimizer) is cls and float(m.optimizer.learning_rate) == lr
    fresh = fg.keras.Sequential([layers.Dense(2, input_shape=(3,))])
    fresh.compile(loss="mse")  # Keras's default optimizer
    assert type(fresh.optimizer) is optimizers.RMSprop
    # Keras 2's spelling
    assert float(optimizers.SGD(lr=0.1, momentum=0.9).lr) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "make, reference",
    [
        (lambda: optimizers.SGD(), lambda: _np_sgd(W0, GRADS, 0.01)),
        (lambda: optimizers.SGD(0.1, momentum=0.9), lambda: _np_sgd(W0, GRADS, 0.1, 0.9)),
        (
            lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True),
            lambda: _np_sgd(W0, GRADS, 0.1, 0.9, True),
        ),
        (lambda: optimizers.RMSprop(), lambda: _np_rmsprop(W0, GRADS)),
        (
            lambda: optimizers.RMSprop(0.01, rho=0.8, epsilon=0.1),
            lambda: _np_rmsprop(W0, GRADS, 0.01, 0.8, eps=0.1),
        ),
        (lambda: optimizers.RMSprop(0.01, momentum=0.5), lambda: _np_rmsprop(W0, GRADS, 0.01, momentum=0.5)),
        (
            lambda: optimizers.RMSprop(0.01, centered=True, epsilon=1e-3),
            lambda: _np_rmsprop(W0, GRADS, 0.01, eps=1e-3, centered=True),
        ),
        (lambda: optimizers.RMSprop(0.01, rho=0.0), lambda: _np_rmsprop(W0, GRADS, 0.01, rho=0.0)),
        (lambda: optimizers.Adam(), lambda: _np_adam(W0, GRADS)),
        (lambda: optimizers.Adam(0.01, epsilon=0.1), lambda: _np_adam(W0, GRADS, 0.01, eps=0.1)),
        (lambda: optimizers.Adam(0.01, amsgrad=True), lambda: _np_adam(W0, GRADS, 0.01, amsgrad=True)),
        (lambda: optimizers.AdamW(0.01, weight_decay=0.1), lambda: _np_adam(W0, GRADS, 0.01, wd=0.1)),
        (lambda: optimizers.Nadam(0.01), lambda: _np_nadam(W0, GRADS, 0.01)),
        (lambda: optimizers.Adagrad(0.1), lambda: _np_adagrad(W0, GRADS, 0.1)),
        (lambda: optimizers.Adadelta(1.0), lambda: _np_adadelta(W0, GRADS, 1.0)),
        (lambda: optimizers.Adamax(0.01), lambda: _np_adamax(W0, GRADS, 0.01)),
    ],
    ids=[
        "sgd",
        "sgd-momentum",
        "sgd-nesterov",
        "rmsprop",
        "rmsprop-eps-inside-sqrt",
        "rmsprop-momentum",
        "rmsprop-centered",
        "rmsprop-rho0",
        "adam",
        "adam-epsilon-hat",
        "adam-amsgrad",
        "adamw",
        "nadam",
        "adagrad",
        "adadelta",
        "adamax",
    ],
)
def test_optimizer_updates_follow_keras_formulas(make, reference):
    got = _run(make(), W0, GRADS)
    np.testing.assert_allclose(got, reference(), rtol=2e-5, atol=1e-7)


def test_epsilon_placement_differs_from_pytorch():
    """With a large epsilon the placements disagree visibly: Keras's RMSprop divides by
    sqrt(v + eps), PyTorch's by sqrt(v) + eps; Keras's Adam adds eps after the bias
    corrections fold into the step ("epsilon hat")."""
    g = [np.array([1e-3, -2e-3, 5e-4, 0.0])]
    w0 = np.zeros(4)  # the step itself, at full float32 resolution
    keras_rms = _np_rmsprop(w0, g, 0.01, eps=0.1)
    torch_rms = -0.01 * g[0] / (np.sqrt(0.1 * g[0] ** 2) + 0.1)
    got = _run(optimizers.RMSprop(0.01, epsilon=0.1), w0, g)
    np.testing.assert_allclose(got, keras_rms, rtol=1e-5, atol=1e-12)
    assert not np.allclose(got, torch_rms, rtol=0.1)
    keras_adam = _np_adam(w0, g, 0.01, eps=0.1)
    m, v = 0.1 * g[0], 0.001 * g[0] ** 2  # PyTorch: lr / bc1 * m / (sqrt(v / bc2) + eps)
    torch_adam = -0.01 / 0.1 * m / (np.sqrt(v / 0.001) + 0.1)
    got = _run(optimizers.Adam(0.01, epsilon=0.1), w0, g)
    np.testing.assert_allclose(got, keras_adam, rtol=1e-5, atol=1e-12)
    assert not np.allclose(got, torch_adam, rtol=0.1)


def test_momentum_follows_keras_when_the_learning_rate_changes():
    """Keras's velocity holds lr * g terms: an lr change mid-way (a schedule, a callback)
    must not rescale the past, as PyTorch's buffer-times-lr would."""
    opt = optimizers.SGD(0.1, momentum=0.9)
    w = nn.Parameter(fg.tensor(W0.astype(np.float32)))
    lrs = [0.1, 0.1, 0.02]
    for lr, g in zip(lrs, GRADS):
        opt.learning_rate = lr
        opt.apply_gradients([(fg.tensor(g.astype(np.float32)), w)])
    np.testing.assert_allclose(w.detach().numpy(), _np_sgd(W0, GRADS, 0.1, 0.9, lrs=lrs), rtol=2e-6)
    # RMSprop's momentum too
    opt = optimizers.RMSprop(0.1, momentum=0.5)
    w = nn.Parameter(fg.tensor(W0.astype(np.float32)))
    want = W0.copy()
    v, mom = np.zeros(4), np.zeros(4)
    for lr, g in zip(lrs, GRADS):
        opt.learning_rate = lr
        opt.apply_gradients([(fg.tensor(g.astype(np.float32)), w)])
        v = 0.9 * v + 0.1 * g * g
        mom = 0.5 * mom + lr * g / np.sqrt(v + 1e-7)
        want = want - mom
    np.testing.assert_allclose(w.detach().numpy(), want, rtol=2e-6)


def test_optimizer_options_clipping_decay_and_schedules():
    g = [np.array([3.0, 4.0, 0.0, 0.0])]  # norm 5
    got = _run(optimizers.SGD(1.0, clipnorm=1.0), W0, g)
    np.testing.assert_allclose(got, W0 - g[0] / 5.0, rtol=1e-6)
    got = _run(optimizers.SGD(1.0, clipvalue=0.5), W0, g)
    np.testing.assert_allclose(got, W0 - np.clip(g[0], -0.5, 0.5), rtol=1e-6)
    got = _run(optimizers.SGD(0.1, weight_decay=0.5), W0, g)
    np.testing.assert_allclose(got, W0 - W0 * 0.5 * 0.1 - 0.1 * g[0], rtol=1e-6)
    # Keras 2's time decay: lr / (1 + decay * iterations)
    got = _run(optimizers.SGD(0.1, decay=0.5), W0, GRADS[:2])
    np.testing.assert_allclose(got, W0 - 0.1 * GRADS[0] - 0.1 / 1.5 * GRADS[1], rtol=1e-6)
    sched = optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    opt = optimizers.SGD(sched)
    got = _run(opt, W0, GRADS[:2])
    np.testing.assert_allclose(got, W0 - 0.1 * GRADS[0] - 0.05 * GRADS[1], rtol=1e-6)
    assert float(opt.learning_rate) == pytest.approx(0.025) and opt.iterations == 2
    with pytest.raises(TypeError, match="not settable"):
        opt.learning_rate = 0.1
    # Keras's learning-rate variable: assign, set_value, arithmetic
    opt = optimizers.Adam()
    K.set_value(opt.lr, 0.5)
    assert float(opt.learning_rate) == 0.5 and opt.learning_rate * 2 == 1.0
    opt.learning_rate.assign(0.25)
    assert K.get_value(opt.learning_rate) == np.float32(0.25)
    with pytest.raises(ValueError, match="only one of `clipnorm`"):
        optimizers.SGD(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.Adam(learning_rate=-1.0)
    with pytest.raises(ValueError, match="not recognized"):
        optimizers.Adam(bogus=1)


def test_optimizer_needs_no_parameter_list_and_follows_the_model():
    x, y = _small()
    model = fg.keras.Sequential([layers.Dense(8, activation="relu", input_shape=(12,)), layers.Dense(3)])
    opt = optimizers.Adam(0.01)
    assert not opt.built
    model.compile(optimizer=opt, loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, verbose=0)
    assert opt.built and opt.iterations == math.ceil(256 / 32)
    assert [id(p) for p in opt._vars] == [id(p) for p in model.parameters()]
    state = [t.numpy().copy() for t in opt.variables]
    model.to("cpu")  # new tensors or not, the optimizer follows the model's weights
    model.fit(x, y, epochs=1, verbose=0)
    assert opt.iterations == 2 * math.ceil(256 / 32)
    assert not all(np.array_equal(a, t.numpy()) for a, t in zip(state, opt.variables))
    with pytest.raises(TypeError, match="ferrograd.keras.optimizers"):
        model.compile(optimizer=fg.optim.Adam(model.parameters()), loss="mse")


# ============================================================================ layers


def test_batch_normalization_momentum_and_epsilon():
    """Keras's BatchNormalization: moving = moving * momentum + batch * (1 - momentum) with
    the biased batch variance; epsilon inside the root; inference uses the moving stats."""
    bn = layers.BatchNormalization()
    assert (bn.momentum, bn.epsilon) == (0.99, 1e-3)
    bn = layers.BatchNormalization(momentum=0.9, epsilon=0.01)
    r = np.random.default_rng(1)
    x = (r.standard_normal((16, 3)) * [1.0, 2.0, 0.5] + [1.0, -2.0, 0.0]).astype(np.float32)
    mean, var = x.mean(0), x.var(0)  # biased
    y = bn(x, training=True).numpy()
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 0.01), rtol=1e-4, atol=1e-5)
    gamma, beta, mm, mv = bn.get_weights()
    np.testing.assert_allclose(mm, 0.1 * mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(mv, 0.9 * 1.0 + 0.1 * var, rtol=1e-5)
    # a second step
    bn(x * 2.0, training=True)
    np.testing.assert_allclose(bn.get_weights()[2], 0.9 * 0.1 * mean + 0.1 * 2 * mean, rtol=1e-5, atol=1e-7)
    mv2 = 0.9 * (0.9 + 0.1 * var) + 0.1 * 4 * var
    np.testing.assert_allclose(bn.get_weights()[3], mv2, rtol=1e-5)
    # inference (a layer call without training=True): the moving statistics
    mm, mv = bn.get_weights()[2:]
    np.testing.assert_allclose(bn(x).numpy(), (x - mm) / np.sqrt(mv + 0.01), rtol=1e-4, atol=1e-5)
    assert [w.shape for w in bn.get_weights()] == [(3,)] * 4
    assert len(bn.trainable_weights) == 2 and len(bn.non_trainable_weights) == 2
    # frozen (trainable=False): normalizes with the moving stats even in training
    bn.trainable = False
    np.testing.assert_allclose(
        bn(x, training=True).numpy(), (x - mm) / np.sqrt(mv + 0.01), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_array_equal(bn.get_weights()[2], mm)


def test_alpha_dropout_follows_keras_formula():
    rate = 0.2
    layer = layers.AlphaDropout(rate)
    x = np.linspace(-2, 2, 4000).astype(np.float32).reshape(40, 100)
    np.testing.assert_array_equal(layer(x).numpy(), x)  # inference: the identity
    y = layer(x, training=True).numpy()
    alpha_p = -1.6732632423543772 * 1.0507009873554805
    a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
    b = -a * alpha_p * rate
    kept = np.isclose(y, a * x + b, atol=1e-5)
    dropped = np.isclose(y, a * alpha_p + b, atol=1e-5)
    assert np.all(kept | dropped)
    assert abs(dropped.mean() - rate) < 0.03


def test_dense_default_initializers():
    r = layers.Dense(300)
    r.build((None, 200))
    kernel, bias = r.get_weights()
    limit = math.sqrt(6 / (200 + 300))
    assert kernel.shape == (200, 300) and np.abs(kernel).max() <= limit
    assert kernel.var() == pytest.approx(limit**2 / 3, rel=0.05)
    np.testing.assert_array_equal(bias, np.zeros(300))
    for name, std in [
        ("lecun_normal", math.sqrt(1 / 400)),
        ("he_normal", math.sqrt(2 / 400)),
        ("glorot_normal", math.sqrt(2 / 900)),
    ]:
        d = layers.Dense(500, kernel_initializer=name)
        d.build((None, 400))
        k = d.get_weights()[0]
        assert k.std() == pytest.approx(std, rel=0.03), name
        # truncated at two standard deviations of the untruncated draw
        assert np.abs(k).max() <= 2 * std / 0.87962566103423978 + 1e-6, name
    k = initializers.HeUniform()((400, 500)).numpy()
    assert np.abs(k).max() <= math.sqrt(6 / 400) and k.std() == pytest.approx(math.sqrt(2 / 400), rel=0.03)
    k = initializers.get("random_normal")((300, 300)).numpy()
    assert k.std() == pytest.approx(0.05, rel=0.03)
    k = initializers.RandomUniform()((300, 300)).numpy()
    assert np.abs(k).max() <= 0.05
    q = initializers.Orthogonal()((6, 4)).numpy()
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-5)
    np.testing.assert_array_equal(initializers.Constant(0.5)((2, 2)).numpy(), np.full((2, 2), 0.5))
    # a seeded initializer repeats itself and leaves the global generator alone
    state = fg.get_rng_state()
    a, b = (
        initializers.GlorotUniform(seed=3)((4, 4)).numpy(),
        initializers.GlorotUniform(seed=3)((4, 4)).numpy(),
    )
    np.testing.assert_array_equal(a, b)
    assert fg.get_rng_state() == state


def test_dense_weights_in_keras_layout_and_as_a_linear_weight():
    d = layers.Dense(3, activation="tanh", bias_initializer="ones")
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    y = d(x).numpy()
    kernel, bias = d.get_weights()
    assert kernel.shape == (4, 3) and bias.shape == (3,)
    np.testing.assert_allclose(y, np.tanh(x @ kernel + bias), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(d.weight.numpy(), kernel.T)  # stored as fg.nn.Linear's weight
    np.testing.assert_array_equal(d.kernel.numpy(), kernel)
    new_k = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    d.set_weights([new_k, np.zeros(3, np.float32)])
    np.testing.assert_allclose(d(x).numpy(), np.tanh(x @ new_k), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"Layer 'dense' weight 'weight' has shape \(4, 3\)"):
        d.set_weights([new_k.T, np.zeros(3)])
    with pytest.raises(ValueError, match="expecting 2 weights"):
        d.set_weights([new_k])
    # a model's get_weights: every layer's, in order
    model = fg.keras.Sequential(
        [layers.Dense(5, input_shape=(4,)), layers.BatchNormalization(), layers.Dense(2)]
    )
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(4, 5), (5,), (5,), (5,), (5,), (5,), (5, 2), (2,)]
    ws = [w * 0 + i for i, w in enumerate(model.get_weights())]
    model.set_weights(ws)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), ws))


def test_lazy_input_shapes():
    d = layers.Dense(4)
    assert not d.built and d.weights == []
    with pytest.raises(ValueError, match="has not been built"):
        d.count_params()
    d(np.zeros((2, 3), np.float32))
    assert d.built and d.get_weights()[0].shape == (3, 4) and d.count_params() == 16
    # a Sequential without an input shape builds at fit (and summary waits for it)
    model = fg.keras.Sequential([layers.Dense(8, activation="relu"), layers.Dense(3, activation="softmax")])
    with pytest.raises(ValueError, match="has not yet been built"):
        model.summary()
    x, y = _small()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1, verbose=0)
    assert model.built and model.layers[0].get_weights()[0].shape == (12, 8)
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    assert "Total params: 131" in lines  # 12*8 + 8 + 8*3 + 3
    # functional: weights exist as soon as a layer sees a symbolic input
    inp = fg.keras.Input(shape=(7,))
    dense = layers.Dense(2)
    out = dense(inp)
    assert dense.built and out.shape == (None, 2) and dense.get_weights()[0].shape == (7, 2)
    # Keras 2's input_dim
    assert layers.Dense(3, input_dim=5).get_weights()[0].shape == (5, 3)


def test_layer_errors_name_the_layer_and_the_value():
    with pytest.raises(ValueError, match="Dense: units must be a positive integer, got 0"):
        layers.Dense(0)
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        layers.Dense(3, activation="nope")
    with pytest.raises(ValueError, match="unknown initializer 'nope'"):
        layers.Dense(3, kernel_initializer="nope")
    with pytest.raises(ValueError, match=r"Invalid value received for argument `rate` of Dropout.*1\.5"):
        layers.Dropout(1.5)
    with pytest.raises(ValueError, match=r"Unrecognized keyword arguments passed to Dense: \{'foo': 1\}"):
        layers.Dense(3, foo=1)
    d = layers.Dense(2, name="head")
    d(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="Input 0 of layer 'head' is incompatible"):
        d(fg.keras.Input(shape=(4,)))
    with pytest.raises(fg.ShapeError, match=r"Dense layer 'head': expected input \(\.\.\., 3\)"):
        d(np.zeros((1, 4), np.float32))
    a, b = fg.keras.Input(shape=(3,)), fg.keras.Input(shape=(4,))
    with pytest.raises(ValueError, match=r"Add layer 'add': inputs must have the same shape"):
        layers.Add()([a, b])
    with pytest.raises(ValueError, match="only the last axis"):
        layers.BatchNormalization(axis=0)(a)
    with pytest.raises(ValueError, match="Graph disconnected"):
        fg.keras.Model(a, layers.Add()([layers.Dense(3)(a), layers.Dense(3)(b)]))
    x = layers.Dense(3, name="twin")(a)
    with pytest.raises(ValueError, match='The name "twin" is used 2 times'):
        fg.keras.Model(a, layers.Dense(3, name="twin")(x))
    with pytest.raises(ValueError, match="Only instances of `keras.Layer`"):
        fg.keras.Sequential().add(nn.Linear(2, 2))


def test_functional_models_with_skips_concatenation_and_several_inputs():
    a, b = fg.keras.Input(shape=(4,), name="a"), fg.keras.Input(shape=(3,), name="b")
    h = layers.Dense(5, activation="relu")(a)
    skip = layers.Dense(5)(h) + h  # symbolic +: an Add layer, as Keras 3
    joined = layers.concatenate([skip, layers.Dense(2)(b)])
    out = layers.Dense(1, activation="sigmoid")(joined)
    model = fg.keras.Model(inputs=[a, b], outputs=out)
    assert (
        joined.shape == (None, 7) and [type(lay).__name__ for lay in model.layers][:2] == ["InputLayer"] * 2
    )
    xa, xb = np.ones((6, 4), np.float32), np.ones((6, 3), np.float32)
    y = model([xa, xb]).numpy()
    assert y.shape == (6, 1) and np.all((y > 0) & (y < 1))
    np.testing.assert_array_equal(model.predict({"a": xa, "b": xb}), y)
    # the same as computing it layer by layer in NumPy
    w = model.get_weights()
    h_np = np.maximum(xa @ w[0] + w[1], 0)
    skip_np = h_np @ w[2] + w[3] + h_np
    j = np.concatenate([skip_np, xb @ w[4] + w[5]], axis=1)
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-(j @ w[6] + w[7]))), rtol=1e-5)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    h = model.fit([xa, xb], np.array([0, 1, 0, 1, 1, 0]), epochs=2, verbose=0)
    assert list(h.history) == ["loss", "accuracy"]
    assert isinstance(model.metrics[0], metrics.BinaryAccuracy)  # "accuracy" after binary_crossentropy
    # a model is a layer: nested in another functional model
    inp = fg.keras.Input(shape=(4,))
    inner = fg.keras.Sequential([layers.Dense(3, input_shape=(4,))], name="inner")
    outer = fg.keras.Model(inp, layers.Dense(1)(inner(inp)))
    assert outer.predict(np.ones((2, 4), np.float32)).shape == (2, 1)
    assert "inner.dense_5.weight" in outer.state_dict() or any(
        k.startswith("inner.") for k in outer.state_dict()
    )


def test_subclassed_model():
    class MLP(fg.keras.Model):
        def __init__(self, classes=3):
            super().__init__(name="mlp")
            self.hidden = layers.Dense(16, activation="relu")
            self.drop = layers.Dropout(0.5)
            self.out = layers.Dense(classes)

        def call(self, inputs, training=False):
            return self.out(self.drop(self.hidden(inputs), training=training))

    x, y = _small()
    model = MLP()
    assert not model.built
    model.compile(
        optimizer="adam", loss=losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"]
    )
    h = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0] and model.built
    assert list(model.state_dict()) == ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]
    np.testing.assert_array_equal(model.predict(x[:5]), model(x[:5]).numpy())
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    assert "Total params: 259" in lines  # 12*16 + 16 + 16*3 + 3
    with pytest.raises(NotImplementedError, match="subclassed model"):
        model.get_config()


def test_inference_unless_told_otherwise():
    """Calling a Keras model runs it in inference mode (dropout off, moving statistics),
    as Keras does; `training=True` or fit switch to training."""
    model = fg.keras.Sequential([layers.Dense(64, input_shape=(8,)), layers.Dropout(0.5)])
    x = np.ones((4, 8), np.float32)
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())
    assert not np.array_equal(model(x, training=True).numpy(), model(x).numpy())
    assert not model.training and not model.layers[1].training


def test_freezing_layers():
    x, y = _small()
    model = fg.keras.Sequential([layers.Dense(8, input_shape=(12,), trainable=False), layers.Dense(3)])
    before = model.layers[0].get_weights()
    model.compile(optimizer="sgd", loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    assert "Trainable params: 27" in lines and "Non-trainable params: 104" in lines
    model.fit(x, y, epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.layers[0].get_weights()))
    model.layers[0].trainable = True
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(before[0], model.layers[0].get_weights()[0])


# ============================================================================ losses and metrics


def test_categorical_crossentropy_on_one_hot_targets():
    r = np.random.default_rng(0)
    p = r.random((6, 4)).astype(np.float32)
    p /= p.sum(1, keepdims=True)
    p[0] = [1.0, 0.0, 0.0, 0.0]  # clipped to [1e-7, 1 - 1e-7]
    labels = np.array([0, 1, 2, 3, 1, 0])
    y = np.eye(4, dtype=np.float32)[labels]
    want = -(y * np.log(np.clip(p, 1e-7, 1 - 1e-7))).sum(1)
    np.testing.assert_allclose(losses.categorical_crossentropy(y, p).numpy(), want, rtol=1e-5)
    assert float(losses.CategoricalCrossentropy()(y, p)) == pytest.approx(want.mean(), rel=1e-5)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(labels, p).numpy(), want, rtol=1e-5)
    z = r.standard_normal((6, 4)).astype(np.float32)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    ce = losses.CategoricalCrossentropy(from_logits=True)
    assert float(ce(y, z)) == pytest.approx(-(y * logp).sum(1).mean(), rel=1e-5)
    smooth = y * 0.9 + 0.1 / 4
    assert float(
        losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(y, z)
    ) == pytest.approx(-(smooth * logp).sum(1).mean(), rel=1e-5)
    w = np.array([1, 0, 2, 1, 1, 0.5], np.float32)
    assert float(losses.CategoricalCrossentropy()(y, p, sample_weight=w)) == pytest.approx(
        (want * w).sum() / 6, rel=1e-5
    )
    # a model ending in softmax trains from its logits: the loss evaluate reports is still
    # the formula on its probabilities
    x = r.standard_normal((50, 5)).astype(np.float32)
    yy = np.eye(3, dtype=np.float32)[r.integers(0, 3, 50)]
    model = fg.keras.Sequential([layers.Dense(3, activation="softmax", input_shape=(5,))])
    model.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    probs = model.predict(x)
    loss, acc = model.evaluate(x, yy, verbose=0)
    assert loss == pytest.approx(-(yy * np.log(np.clip(probs, 1e-7, 1))).sum(1).mean(), rel=1e-5)
    assert acc == pytest.approx((probs.argmax(1) == yy.argmax(1)).mean())


def test_other_losses_follow_keras_formulas():
    r = np.random.default_rng(2)
    t = r.integers(0, 2, (8, 3)).astype(np.float32)
    p = r.random((8, 3)).astype(np.float32)
    pc = np.clip(p, 1e-7, 1 - 1e-7)
    bce = -(t * np.log(pc) + (1 - t) * np.log(1 - pc)).mean(1)
    np.testing.assert_allclose(losses.binary_crossentropy(t, p).numpy(), bce, rtol=1e-5)
    z = r.standard_normal((8, 3)).astype(np.float32)
    s = 1 / (1 + np.exp(-z))
    bce_logits = -(t * np.log(s) + (1 - t) * np.log(1 - s)).mean()
    assert float(losses.BinaryCrossentropy(from_logits=True)(t, z)) == pytest.approx(bce_logits, rel=1e-5)
    np.testing.assert_allclose(losses.mse(t, p).numpy(), ((t - p) ** 2).mean(1), rtol=1e-5)
    np.testing.assert_allclose(losses.mae(t, p).numpy(), np.abs(t - p).mean(1), rtol=1e-5)
    assert float(losses.MeanSquaredError()(t, p)) == pytest.approx(((t - p) ** 2).mean(), rel=1e-5)
    assert float(losses.MeanSquaredError(reduction="sum")(t, p)) == pytest.approx(
        ((t - p) ** 2).mean(1).sum()
    )
    d = z - t
    huber = np.where(np.abs(d) <= 1, 0.5 * d * d, np.abs(d) - 0.5).mean(1)
    np.testing.assert_allclose(losses.huber(t, z).numpy(), huber, rtol=1e-5)
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)
    with pytest.raises(ValueError, match="unknown loss 'nope'"):
        losses.get("nope")


def test_metrics_follow_keras():
    y = np.array([0, 1, 2, 1])
    p = np.array([[0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8], [0.1, 0.7, 0.2]], np.float32)
    np.testing.assert_array_equal(metrics.sparse_categorical_accuracy(y, p).numpy(), [1, 0, 1, 1])
    np.testing.assert_array_equal(metrics.categorical_accuracy(np.eye(3)[y], p).numpy(), [1, 0, 1, 1])
    m = metrics.CategoricalAccuracy()
    m.update_state(np.eye(3)[y[:2]], p[:2])
    m.update_state(np.eye(3)[y[2:]], p[2:])
    assert float(m.result()) == 0.75
    m.reset_state()
    assert float(m.result()) == 0.0
    b = metrics.BinaryAccuracy()
    assert float(b(np.array([[1], [0], [1]]), np.array([[0.7], [0.6], [0.4]]))) == pytest.approx(1 / 3)
    assert float(metrics.MeanAbsoluteError()(np.ones((2, 2)), np.zeros((2, 2)))) == 1.0
    prec, rec = metrics.Precision(), metrics.Recall()
    tt, pp = np.array([1, 0, 1, 1]), np.array([0.9, 0.8, 0.2, 0.7])
    assert float(prec(tt, pp)) == pytest.approx(2 / 3) and float(rec(tt, pp)) == pytest.approx(2 / 3)
    # "accuracy" means what Keras makes it mean
    x, yi = _small(classes=3)
    for loss, yt, want in [
        ("sparse_categorical_crossentropy", yi, metrics.SparseCategoricalAccuracy),
        ("categorical_crossentropy", np.eye(3)[yi], metrics.CategoricalAccuracy),
    ]:
        model = fg.keras.Sequential([layers.Dense(3, activation="softmax", input_shape=(12,))])
        model.compile(loss=loss, metrics=["acc", "top_k_categorical_accuracy"])
        model.evaluate(x, yt, verbose=0)
        assert isinstance(model.metrics[0], want)
        assert model.metrics_names == ["loss", "acc", "top_k_categorical_accuracy"]
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        fg.keras.Sequential([layers.Dense(1, input_shape=(2,))]).compile(loss="mse", metrics=["nope"])


def test_regularization_terms_are_added_to_the_loss():
    """Keras's l2(f) adds f * sum(w**2), l1(f) f * sum(|w|); fit minimizes and reports,
    and evaluate reports, the data loss plus these terms."""
    assert regularizers.l2().l2 == 0.01 and regularizers.l1().l1 == 0.01
    assert (regularizers.l1_l2().l1, regularizers.l1_l2().l2) == (0.01, 0.01)
    x, y = _small(n=64)
    model = fg.keras.Sequential(
        [
            layers.Dense(6, activation="relu", input_shape=(12,), kernel_regularizer=regularizers.l2(0.01)),
            layers.Dense(3, kernel_regularizer="l1", bias_regularizer=regularizers.L1L2(l1=0.1, l2=0.2)),
        ]
    )
    model.compile(optimizer="sgd", loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    k1, b1, k2, b2 = model.get_weights()
    penalty = 0.01 * (k1**2).sum() + 0.01 * np.abs(k2).sum() + 0.1 * np.abs(b2).sum() + 0.2 * (b2**2).sum()
    z = model.predict(x)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    data = -logp[np.arange(64), y].mean()
    assert model.evaluate(x, y, verbose=0) == pytest.approx(data + penalty, rel=1e-5)
    assert float(sum(model.losses)) == pytest.approx(penalty, rel=1e-5)
    first = model.train_on_batch(x, y)  # the loss of that batch, before the step
    assert first == pytest.approx(data + penalty, rel=1e-5)
    # and the penalty shrinks the weights: a model with only the penalty (zero data gradient)
    lone = fg.keras.Sequential(
        [layers.Dense(2, input_shape=(3,), use_bias=False, kernel_regularizer=regularizers.l2(0.5))]
    )
    lone.compile(optimizer=optimizers.SGD(0.1), loss="mse")
    k = lone.get_weights()[0]
    xz = np.zeros((4, 3), np.float32)
    lone.train_on_batch(xz, np.zeros((4, 2), np.float32))
    np.testing.assert_allclose(lone.get_weights()[0], k - 0.1 * 0.5 * 2 * k, rtol=1e-5)


def test_class_and_sample_weights_weigh_the_loss():
    x, y = _small(n=40)
    model = fg.keras.Sequential([layers.Dense(3, input_shape=(12,))])
    model.compile(optimizer="sgd", loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    z = model.predict(x)
    per = -(z - np.log(np.exp(z).sum(1, keepdims=True)))[np.arange(40), y]
    w = np.linspace(0, 2, 40).astype(np.float32)
    assert model.evaluate(x, y, sample_weight=w, verbose=0) == pytest.approx((per * w).sum() / 40, rel=1e-5)
    cw = {0: 2.0, 1: 0.5, 2: 1.0}
    first = model.train_on_batch(x, y, class_weight=cw)
    assert first == pytest.approx((per * np.array([cw[c] for c in y])).sum() / 40, rel=1e-5)
    h = model.fit(x, y, class_weight=cw, epochs=2, verbose=0)
    assert len(h.history["loss"]) == 2


# ============================================================================ fit / evaluate / predict


def test_custom_losses_and_metrics_see_the_targets_as_given():
    """A function metric gets one-hot targets as the script passed them (the fused labels
    path is used only when every metric reads labels as well)."""
    seen = []

    def first_column(y_true, y_pred):
        seen.append(tuple(y_true.shape))
        return (y_pred[:, 0] - y_true[:, 0]).abs()

    def squared(y_true, y_pred):
        return ((y_pred - y_true) ** 2).mean(dim=-1)

    x, y = _small(n=64)
    yh = np.eye(3, dtype=np.float32)[y]
    model = fg.keras.Sequential([layers.Dense(3, activation="softmax", input_shape=(12,))])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy", first_column])
    logs = model.evaluate(x, yh, verbose=0, return_dict=True)
    assert seen and all(s[1:] == (3,) for s in seen) and set(logs) == {"loss", "accuracy", "first_column"}
    p = model.predict(x)
    assert logs["first_column"] == pytest.approx(np.abs(p[:, 0] - yh[:, 0]).mean(), rel=1e-5)
    model.compile(optimizer="sgd", loss=squared)
    assert model.evaluate(x, yh, verbose=0) == pytest.approx(((p - yh) ** 2).mean(), rel=1e-5)
    model.fit(x, yh, epochs=1, verbose=0)


def test_evaluate_return_forms_and_predict():
    x, y = _small(n=100)
    model = fg.keras.Sequential([layers.Dense(3, activation="softmax", input_shape=(12,))])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    loss = model.evaluate(x, y, verbose=0)
    assert isinstance(loss, float)
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", "sparse_categorical_crossentropy"],
    )
    score = model.evaluate(x, y, verbose=0)
    assert isinstance(score, list) and len(score) == 3 and score[0] == pytest.approx(loss, rel=1e-6)
    d = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(d) == ["loss", "accuracy", "sparse_categorical_crossentropy"] and d["loss"] == score[0]
    p = model.predict(x, batch_size=7)
    assert isinstance(p, np.ndarray) and p.shape == (100, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    assert score[1] == pytest.approx((p.argmax(1) == y).mean())
    assert score[2] == pytest.approx(score[0], rel=1e-6)  # a loss as a metric
    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        model.evaluate(x, y, batch_size=50)  # verbose by default, as Keras
    assert re.match(
        r"100/100 \[=+\] - \d+s - loss: [0-9.]+ - accuracy: [0-9.]+"
        r" - sparse_categorical_crossentropy: [0-9.]+\n",
        out.getvalue(),
    )
    with pytest.raises(RuntimeError, match=r"You must call `compile\(\)`"):
        fg.keras.Sequential([layers.Dense(1, input_shape=(2,))]).fit(np.zeros((2, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="to_categorical"):
        bad = fg.keras.Sequential([layers.Dense(3, activation="softmax", input_shape=(12,))])
        bad.compile(loss="categorical_crossentropy")
        bad.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="outside the valid range"):
        model.fit(x, y + 5, verbose=0)
    with pytest.raises(ValueError, match="Data cardinality is ambiguous"):
        model.fit(x, y[:50], verbose=0)
    with pytest.raises(ValueError, match="incompatible with the layer"):
        model.predict(np.zeros((3, 5), np.float32)) if False else model.evaluate(
            np.zeros((3, 5)), y[:3], verbose=0
        )


def test_fit_log_validation_split_and_history(capsys):
    x, y = _small(n=1000)
    model = fg.keras.Sequential(
        [layers.Dense(16, activation="relu", input_shape=(12,)), layers.Dense(3, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, epochs=3, batch_size=64, validation_split=0.2)
    out = capsys.readouterr().out
    assert out.startswith("Train on 800 samples, validate on 200 samples\nEpoch 1/3\n")
    assert len(re.findall(r"^800/800 \[=+\] - \d+s - loss: .* - val_accuracy: [0-9.]+$", out, re.M)) == 3
    assert h.epoch == [0, 1, 2] and model.history is h
    assert h.history["loss"][-1] < h.history["loss"][0]
    # validation_split holds out the last samples, before shuffling
    assert h.history["val_loss"][-1] == pytest.approx(
        model.evaluate(x[800:], y[800:], verbose=0)[0], rel=1e-5
    )
    h2 = model.fit(x, y, epochs=5, initial_epoch=3, verbose=2)
    assert h2.epoch == [3, 4] and "Epoch 5/5" in capsys.readouterr().out


def test_fit_is_repeatable_with_a_seed():
    x, y = _small(n=200)
    runs = []
    for _ in range(2):
        fg.manual_seed(7)
        K.clear_session()
        model = fg.keras.Sequential(
            [layers.Dense(8, activation="relu", input_shape=(12,)), layers.Dropout(0.3), layers.Dense(3)]
        )
        model.compile(optimizer="rmsprop", loss=losses.SparseCategoricalCrossentropy(from_logits=True))
        runs.append(model.fit(x, y, epochs=2, verbose=0).history["loss"])
    assert runs[0] == runs[1]


def test_summary_table_and_counts():
    model = fg.keras.Sequential(
        [
            layers.Input(shape=(784,)),
            layers.Dense(64, activation="relu"),
            layers.BatchNormalization(),
            layers.Dropout(0.2),
            layers.Dense(10, activation="softmax"),
        ]
    )
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    assert lines[0] == 'Model: "sequential"'
    assert (
        lines[2].startswith("Layer (type)")
        and "Output Shape" in lines[2]
        and lines[2].rstrip().endswith("Param #")
    )
    rows = [line for line in lines if "(" in line and "Layer" not in line]
    assert rows[0].split() == ["dense", "(Dense)", "(None,", "64)", "50240"]
    # Keras's table cuts long names at the column's width
    assert rows[1].split() == ["batch_normalization", "(BatchNo", "(None,", "64)", "256"]
    assert rows[3].split() == ["dense_1", "(Dense)", "(None,", "10)", "650"]
    assert lines[-4:] == [
        "Total params: 51,146",
        "Trainable params: 51,018",
        "Non-trainable params: 128",
        "_" * 65,
    ]
    # a functional model that is not a chain lists its connections
    a = fg.keras.Input(shape=(4,))
    h = layers.Dense(4)(a)
    model = fg.keras.Model(a, layers.Add()([a, h]))
    lines = []
    model.summary(print_fn=lines.append)
    assert "Connected to" in lines[2]
    assert any(re.match(r"add \(Add\) +\(None, 4\) +0 +input_layer(_\d+)?\[0\]\[0\]", line) for line in lines)
    assert any(re.fullmatch(r" +dense_\d+\[0\]\[0\] *", line) for line in lines)
    assert "Total params: 20" in lines


# ============================================================================ saving


def _trained_model():
    x, y = _small(n=120)
    inp = fg.keras.Input(shape=(12,))
    h = layers.Dense(16, activation="relu", kernel_regularizer=regularizers.l2(1e-3))(inp)
    h = layers.BatchNormalization()(h)
    h = layers.Add()([h, layers.Dense(16)(h)])
    out = layers.Dense(3, activation="softmax")(layers.Dropout(0.1)(h))
    model = fg.keras.Model(inp, out, name="res")
    model.compile(
        optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    return model, x, y


def test_save_and_load_model_round_trip(tmp_path):
    model, x, y = _trained_model()
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = fg.keras.models.load_model(path)
    assert type(loaded).__name__ == "Functional" and loaded.name == "res"
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [lay.name for lay in loaded.layers] == [lay.name for lay in model.layers]
    # compiled, with the optimizer's state: training on continues identically
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    assert (
        type(loaded.optimizer) is optimizers.Adam
        and loaded.optimizer.iterations == model.optimizer.iterations
    )
    fg.manual_seed(3)  # the same dropout masks for both
    model.train_on_batch(x[:32], y[:32])
    fg.manual_seed(3)
    loaded.train_on_batch(x[:32], y[:32])
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # Sequential, and architecture-only JSON
    seq = fg.keras.Sequential(
        [
            layers.Dense(4, activation="selu", kernel_initializer="lecun_normal", input_shape=(3,)),
            layers.AlphaDropout(0.1),
            layers.Dense(1),
        ]
    )
    seq.save(tmp_path / "seq.keras")
    again = fg.keras.models.load_model(tmp_path / "seq.keras")
    np.testing.assert_array_equal(again.predict(np.ones((2, 3))), seq.predict(np.ones((2, 3))))
    assert again.get_config() == seq.get_config()
    rebuilt = fg.keras.models.model_from_json(seq.to_json())
    assert [w.shape for w in rebuilt.get_weights()] == [w.shape for w in seq.get_weights()]
    # weights only
    seq.save_weights(tmp_path / "w.weights.h5")
    rebuilt.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_array_equal(rebuilt.predict(np.ones((2, 3))), seq.predict(np.ones((2, 3))))


def _rewrite(path, out, edit):
    arrays, meta = fio.read_safetensors(path)
    doc = json.loads(meta["keras"])
    edit(doc, arrays)
    meta["keras"] = json.dumps(doc)
    fio.write_safetensors(out, arrays, meta)


def test_load_model_builds_only_keras_layers_and_checks_the_file(tmp_path):
    model = fg.keras.Sequential([layers.Dense(4, input_shape=(3,), name="d1"), layers.Dense(2, name="d2")])
    path = tmp_path / "m.keras"
    model.save(path)

    def rename(doc, arrays):
        doc["model"]["config"]["layers"][1]["class_name"] = "EvilLayer"

    _rewrite(path, tmp_path / "evil.keras", rename)
    with pytest.raises(fio.CheckpointError, match="unknown layer class 'EvilLayer'.*custom_objects"):
        fg.keras.models.load_model(tmp_path / "evil.keras")

    def huge(doc, arrays):  # a tiny file claiming a 10**6-unit layer: refused before allocating
        doc["model"]["config"]["layers"][2]["config"]["units"] = 10**6

    _rewrite(path, tmp_path / "huge.keras", huge)
    with pytest.raises(fio.CheckpointError, match=r"'d2.weight' should have shape \(1000000, 4\)"):
        fg.keras.models.load_model(tmp_path / "huge.keras")

    def private(doc, arrays):
        doc["model"]["config"]["layers"][1]["config"]["_modules"] = {}

    _rewrite(path, tmp_path / "private.keras", private)
    with pytest.raises(fio.CheckpointError, match="argument name '_modules' is not allowed"):
        fg.keras.models.load_model(tmp_path / "private.keras")

    def missing(doc, arrays):
        del arrays["d2.bias"]

    _rewrite(path, tmp_path / "missing.keras", missing)
    with pytest.raises(fio.CheckpointError, match="'d2.bias' of shape \\(2,\\) is missing"):
        fg.keras.models.load_model(tmp_path / "missing.keras")

    # a custom layer loads only when the caller names it
    class Scale(layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

        def call(self, x):
            return x * self.w

    custom = fg.keras.Sequential([layers.Dense(3, input_shape=(2,)), Scale(name="scale")])
    custom.compile(loss="mse")
    custom.save(tmp_path / "custom.keras")
    with pytest.raises(fio.CheckpointError, match="unknown layer class 'Scale'"):
        fg.keras.models.load_model(tmp_path / "custom.keras")
    loaded = fg.keras.models.load_model(tmp_path / "custom.keras", custom_objects={"Scale": Scale})
    np.testing.assert_array_equal(loaded.predict(np.ones((1, 2))), custom.predict(np.ones((1, 2))))
    assert "scale.w" in loaded.state_dict()


# ============================================================================ callbacks


def test_keras_callbacks(tmp_path):
    x, y = _small(n=300)
    model = fg.keras.Sequential(
        [layers.Dense(16, activation="relu", input_shape=(12,)), layers.Dense(3, activation="softmax")]
    )
    model.compile(
        optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    seen: list = []

    class Recorder(callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(("begin", self.params["epochs"], self.model is model))

        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, sorted(logs)))

        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:
                seen.append(("batch", sorted(logs)))

    csv_path = tmp_path / "log.csv"
    ckpt = tmp_path / "best.keras"
    schedule = callbacks.LearningRateScheduler(lambda epoch, lr: 0.01 if epoch < 2 else 0.001)
    h = model.fit(
        x,
        y,
        epochs=4,
        validation_split=0.2,
        verbose=0,
        callbacks=[
            schedule,
            Recorder(),
            callbacks.CSVLogger(str(csv_path)),
            callbacks.ModelCheckpoint(str(ckpt), monitor="val_accuracy", save_best_only=True),
        ],
    )
    assert seen[0] == ("begin", 4, True)
    assert ("batch", ["accuracy", "loss"]) in seen
    assert (0, ["accuracy", "learning_rate", "loss", "val_accuracy", "val_loss"]) in seen
    assert h.history["learning_rate"] == pytest.approx([0.01, 0.01, 0.001, 0.001])
    rows = csv_path.read_text().splitlines()
    assert rows[0] == "epoch,accuracy,learning_rate,loss,val_accuracy,val_loss" and rows[1].startswith("0,")
    assert len(rows) == 5
    best = fg.keras.models.load_model(ckpt)
    assert best.evaluate(x[240:], y[240:], verbose=0)[1] == pytest.approx(max(h.history["val_accuracy"]))

    # EarlyStopping with restore_best_weights, ReduceLROnPlateau: on a monitored value that a
    # callback before them writes into the logs
    class Inject(callbacks.Callback):
        def __init__(self, values):
            super().__init__()
            self.values, self.weights = values, []

        def on_epoch_end(self, epoch, logs=None):
            logs["watched"] = self.values[epoch]
            self.weights.append(self.model.get_weights())

    model.compile(optimizer=optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    inject = Inject([3.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    stop = callbacks.EarlyStopping(monitor="watched", patience=1, restore_best_weights=True)
    h = model.fit(x, y, epochs=6, verbose=0, callbacks=[inject, stop])
    assert h.epoch == [0, 1, 2] and stop.stopped_epoch == 2 and stop.best_epoch == 1
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), inject.weights[1]))
    plateau = callbacks.ReduceLROnPlateau(monitor="watched", factor=0.5, patience=0)
    h = model.fit(x, y, epochs=4, verbose=0, callbacks=[Inject([1.0] * 4), plateau])
    assert h.history["learning_rate"] == pytest.approx([0.5, 0.5, 0.25, 0.125])  # logged before reducing
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0625)
    # ferrograd's own callbacks work in a Keras fit too
    from ferrograd import callbacks as fg_callbacks

    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    h = model.fit(
        x,
        y,
        epochs=5,
        verbose=0,
        callbacks=[fg_callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=10.0)],
    )
    assert h.epoch == [0, 1]  # the first epoch sets the best; the second does not beat it by 10


# ============================================================================ a ferrograd module


def test_a_keras_model_is_a_ferrograd_module(tmp_path, mnist):
    x, y = mnist[0][:500], mnist[1][:500]
    model = fg.keras.Sequential(
        [
            layers.Dense(32, activation="relu", input_shape=(784,)),
            layers.BatchNormalization(),
            layers.Dense(10, activation="softmax"),
        ]
    )
    assert isinstance(model, nn.Module) and all(isinstance(lay, nn.Module) for lay in model.layers)
    params = list(model.parameters())
    assert [tuple(p.shape) for p in params] == [(32, 784), (32,), (32,), (32,), (10, 32), (10,)]
    assert sum(p.numel() for p in params) == sum(w.numel() for w in model.trainable_weights)
    assert list(model.state_dict())[:2] == ["dense.weight", "dense.bias"]
    assert {"batch_normalization.moving_mean", "batch_normalization.moving_variance"} <= set(
        model.state_dict()
    )
    assert model.to("cpu") is model
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1, verbose=0)
    # fg.save / fg.load: the weights, into a model of the same architecture
    fg.save(model, tmp_path / "fg.safetensors")
    K.clear_session()  # the same layer names, so the same state-dict keys
    twin = fg.keras.Sequential(
        [
            layers.Dense(32, activation="relu", input_shape=(784,)),
            layers.BatchNormalization(),
            layers.Dense(10, activation="softmax"),
        ]
    )
    fg.load(tmp_path / "fg.safetensors", model=twin)
    np.testing.assert_array_equal(twin.predict(x[:20]), model.predict(x[:20]))
    with pytest.raises(fio.CheckpointError, match="custom class"):
        fg.load(tmp_path / "fg.safetensors")  # rebuilding a keras model takes keras's load_model
    # the optimizer's state goes through fg.save / fg.load too
    fg.save(model, tmp_path / "opt.safetensors", optimizer=model.optimizer)
    twin.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    twin.optimizer.build(list(twin.parameters()))
    fg.load(tmp_path / "opt.safetensors", model=twin, optimizer=twin.optimizer)
    assert twin.optimizer.iterations == model.optimizer.iterations
    # a PyTorch-style loop over a Keras model works as over any module
    opt = fg.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    out = model(x[:64])
    loss = fg.nn.functional.nll_loss(out.log(), fg.tensor(y[:64]))
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert all(p.grad is not None for p in model.parameters())


def test_to_categorical():
    from ferrograd.keras.utils import np_utils, to_categorical

    np.testing.assert_array_equal(to_categorical([0, 2, 1], 3), np.eye(3)[[0, 2, 1]])
    assert to_categorical(np.array([[1], [0]])).shape == (2, 2)
    assert to_categorical([1, 0], dtype="int64").dtype == np.int64
    assert np_utils.to_categorical is to_categorical
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        to_categorical([0, 2], 2)


def test_imports_keras_scripts_use():
    """`import keras` spelled `import ferrograd.keras as keras`, and the names scripts take."""
    import ferrograd.keras as keras
    from ferrograd.keras import Input, Model, Sequential, backend
    from ferrograd.keras.callbacks import EarlyStopping, History, ModelCheckpoint  # noqa: F401
    from ferrograd.keras.layers import Activation, BatchNormalization, Concatenate, Dense, Flatten  # noqa: F401
    from ferrograd.keras.models import Model as M2
    from ferrograd.keras.models import Sequential as S2
    from ferrograd.keras.models import load_model  # noqa: F401
    from ferrograd.keras.optimizers import SGD, Adadelta, Adagrad, Adam, Nadam, RMSprop  # noqa: F401
    from ferrograd.keras.utils import to_categorical  # noqa: F401
    from ferrograd.keras.utils.np_utils import to_categorical as tc  # noqa: F401

    assert fg.keras is keras and M2 is Model and S2 is Sequential and Input is keras.layers.Input
    assert backend.epsilon() == 1e-7 and keras.activations.get("selu") is keras.activations.selu
    # Flatten + Reshape for image-shaped input
    model = Sequential([layers.Reshape((28, 28), input_shape=(784,)), Flatten(), Dense(3)])
    assert model.output_shape == (None, 3) and model.predict(np.zeros((2, 784))).shape == (2, 3)
