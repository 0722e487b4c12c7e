"""The PyTorch habits that stopped real scripts (issue 14): `axis=`/`keepdims=` (PyTorch's
NumPy-style names, accepted wherever `dim`/`keepdim` are), a one-element integer tensor as
an index (`classes[y]`), `clip`, the dtype conversions ferrograd lacks as clear DTypeErrors,
and a tutorial-shaped training loop with the usual device selection."""

from __future__ import annotations

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import nn
from ferrograd.data import load_mnist
from ferrograd.utils.data import DataLoader, TensorDataset

A = np.arange(24, dtype=np.float32).reshape(2, 3, 4) % 7


def _same(a, b):
    if isinstance(a, tuple):
        for u, v in zip(a, b):
            _same(u, v)
    else:
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize(
    "method,args",
    [
        ("sum", ()),
        ("mean", ()),
        ("var", ()),
        ("std", ()),
        ("amax", ()),
        ("amin", ()),
        ("logsumexp", ()),
        ("any", ()),
        ("all", ()),
        ("norm", (2,)),
        ("max", ()),
        ("min", ()),
        ("argmax", ()),
        ("argmin", ()),
    ],
)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_axis_and_keepdims_are_dim_and_keepdim(method, args, dim):
    x = fg.tensor(A)
    f = getattr(x, method)
    _same(f(*args, axis=dim), f(*args, dim=dim))
    _same(f(*args, axis=dim, keepdims=True), f(*args, dim=dim, keepdim=True))
    _same(f(*args, dim=dim, keepdims=True), f(*args, dim=dim, keepdim=True))
    with pytest.raises(TypeError, match=f"{method}\\(\\) got both dim and axis"):
        f(*args, dim=dim, axis=dim)
    with pytest.raises(TypeError, match="got both keepdim and keepdims"):
        f(*args, dim=dim, keepdim=True, keepdims=False)


@pytest.mark.parametrize(
    "method,args,default",
    [
        ("softmax", (), -1),
        ("log_softmax", (), -1),
        ("sort", (), -1),
        ("argsort", (), -1),
        ("topk", (2,), -1),
        ("split", (1,), 0),
        ("chunk", (2,), 0),
        ("unbind", (), 0),
    ],
)
def test_axis_where_dim_has_a_default(method, args, default):
    x = fg.tensor(A)
    f = getattr(x, method)
    other = 1
    _same(f(*args, axis=other), f(*args, dim=other))
    _same(f(*args, axis=default), f(*args))
    with pytest.raises(TypeError, match="got both dim and axis"):
        f(*args, dim=other, axis=other)


def test_axis_in_the_functional_forms_and_views():
    x = fg.tensor(A)
    _same(fg.sum(x, axis=1, keepdims=True), x.sum(1, keepdim=True))
    _same(fg.mean(x, axis=0), x.mean(0))
    _same(fg.var(x, axis=2), x.var(2))
    _same(fg.max(x, axis=1), x.max(1))
    _same(fg.argmax(x, axis=2), x.argmax(2))
    _same(fg.softmax(x, axis=0), x.softmax(0))
    _same(fg.cat([x, x], axis=2), fg.cat([x, x], 2))
    _same(fg.stack([x, x], axis=1), fg.stack([x, x], 1))
    _same(fg.squeeze(fg.zeros(2, 1, 3), axis=1), fg.zeros(2, 3))
    _same(fg.tensor(A[:, :1]).squeeze(axis=1), fg.tensor(A[:, 0]))
    # NumPy gives the same numbers by the same names
    np.testing.assert_allclose(x.sum(axis=(0, 2)).numpy(), A.sum(axis=(0, 2)))
    np.testing.assert_allclose(x.mean(axis=1, keepdims=True).numpy(), A.mean(axis=1, keepdims=True))


def test_a_one_element_integer_tensor_is_an_index():
    classes = ["T-shirt", "Trouser", "Pullover", "Dress"]
    y = fg.tensor(2)
    assert classes[y] == "Pullover"
    assert classes[fg.tensor([5.0, 1.0, 9.0, 0.0]).argmax()] == "Pullover"  # an int64 result
    assert np.arange(10)[fg.tensor(7)] == 7
    assert list(range(fg.tensor(3))) == [0, 1, 2]
    assert classes[fg.tensor([1])] == "Trouser"  # one element, any shape (as PyTorch)
    assert [10, 20][fg.tensor(True)] == 20
    for bad in (fg.tensor(1.0), fg.tensor([1, 2])):
        with pytest.raises(TypeError, match="only integer tensors of a single element"):
            classes[bad]


def test_clip_is_clamp():
    x = fg.tensor([-2.0, 0.5, 3.0])
    _same(x.clip(-1, 1), x.clamp(-1, 1))
    _same(x.clip(min=0), x.clamp(min=0))
    _same(fg.tensor(A).clip(max=3.0), fg.tensor(np.minimum(A, 3.0)))


@pytest.mark.parametrize(
    "method,missing,instead",
    [
        ("short", "int16", "long()"),
        ("char", "int8", "long()"),
    ],
)
def test_missing_dtypes_are_a_clear_dtype_error(method, missing, instead):
    with pytest.raises(fg.DTypeError, match=rf"{method}\(\): ferrograd has no {missing} dtype.*{instead}"):
        getattr(fg.tensor([1.0]), method)()


@pytest.mark.parametrize(
    "method,dtype",
    [("int", "int32"), ("byte", "uint8"), ("half", "float16"), ("bfloat16", "bfloat16")],
)
def test_the_other_conversions_exist(method, dtype):
    assert getattr(fg.tensor([1.0, 2.0]), method)().dtype == getattr(fg, dtype)


# ---------------------------------------------------------------------------- a tutorial loop


class NeuralNetwork(nn.Module):
    """The shape of PyTorch's quickstart network."""

    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)
        )

    def forward(self, x):
        return self.linear_relu_stack(self.flatten(x))


def test_a_pytorch_tutorial_loop_runs_unchanged_and_trains_as_the_builder():
    x, y = load_mnist()
    x = x.reshape(-1, 1, 28, 28)  # the image shape a tutorial's dataset yields
    classes = [str(i) for i in range(10)]
    # the usual device selection: never a software GPU unawares (CI opts in for the GPU tests)
    device = (
        fg.accelerator.current_accelerator().type
        if fg.accelerator.is_available()
        else "mps"
        if fg.backends.mps.is_available()
        else "cpu"
    )
    device = "cuda" if fg.cuda.is_available() else device
    fg.manual_seed(0)
    train = DataLoader(TensorDataset(fg.tensor(x[:6000]), fg.tensor(y[:6000])), batch_size=64, shuffle=True)
    test = DataLoader(TensorDataset(fg.tensor(x[8000:]), fg.tensor(y[8000:])), batch_size=64)
    model = NeuralNetwork().to(device)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = fg.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        model.train()
        for X, yb in train:
            X, yb = X.to(device), yb.to(device)
            loss = loss_fn(model(X), yb)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    model.eval()
    correct = 0.0
    with fg.no_grad():
        for X, yb in test:
            X, yb = X.to(device), yb.to(device)
            pred = model(X)
            correct += (pred.argmax(1) == yb).type(fg.float).sum().item()
        pred = model(fg.tensor(x[8000:8001]).to(device))
        predicted, actual = classes[pred[0].argmax(0)], classes[fg.tensor(y[8000])]
    acc = correct / 2000
    assert predicted in classes and actual == str(y[8000])
    # the same network from the builder, trained by fit the same way
    fg.manual_seed(0)
    ref = fg.models.standard(784, 10, width=256, depth=2, dropout=0.0, batchnorm=False).to(device)
    fg.train.fit(
        ref, x[:6000].reshape(-1, 784), y[:6000], optimizer="adam", epochs=2, batch_size=64, verbose=0
    )
    ref_acc = fg.train.evaluate(ref, x[8000:].reshape(-1, 784), y[8000:])["acc"]
    assert acc > 0.9 and abs(acc - ref_acc) <= 0.01, (acc, ref_acc)
