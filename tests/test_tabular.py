"""Tabular data (issue 19): `fg.data.read_csv` (numeric columns with missing values,
categorical ones one-hot, text or numeric targets), `fg.nn.Standardizer` (statistics from
the training split only, saved with the model), `fit` on a CSV and on objects with
`__array__`, `predict` on raw rows after save/load, `Sequential.insert`, and the
Fashion-MNIST loader's files and messages."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

import ferrograd as fg
import ferrograd.nn as nn

rng = np.random.default_rng(3)


def _write(path, header, rows):
    with open(path, "w", encoding="utf-8") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(str(v) for v in r) + "\n")


@pytest.fixture(params=["csv", "pandas"])
def reader(request):
    """Runs a test through the csv module, and through pandas where it is installed."""
    if request.param == "pandas":
        pytest.importorskip("pandas")
    else:
        request.getfixturevalue("hide_package")("pandas")
    return request.param


def test_read_csv_encodes_numeric_categorical_and_targets(tmp_path, reader):
    p = tmp_path / "d.csv"
    _write(
        p,
        ["size", "color", "code", "label", "score"],
        [
            [1.5, "red", 3, "cat", 0.5],
            ["", "blue", 1, "dog", 1.25],
            [3.0, "", 3, "cat", 2.0],
            [4.0, "red", 2, "bird", 0.0],
        ],
    )
    x, y = fg.data.read_csv(p, target="label", categorical=["code"])
    assert isinstance(x, fg.data.Table) and x.dtype == np.float32
    assert x.columns == ["size", "color=blue", "color=red", "code=1", "code=2", "code=3", "score"]
    assert x.numeric == [0, 6]
    assert x.categories == {
        "color": ["blue", "red"],
        "code": ["1", "2", "3"],
        "label": ["bird", "cat", "dog"],
    }
    want = np.array(
        [
            [1.5, 0, 1, 0, 0, 1, 0.5],
            [np.nan, 1, 0, 1, 0, 0, 1.25],
            [3.0, 0, 0, 0, 0, 1, 2.0],  # a missing category: all its columns 0
            [4.0, 0, 1, 0, 1, 0, 0.0],
        ],
        np.float32,
    )
    np.testing.assert_array_equal(np.asarray(x), want)
    assert y.dtype == np.int64 and y.tolist() == [1, 2, 1, 0]
    # numeric targets: whole numbers are classes, others values
    _, y2 = fg.data.read_csv(p, target="code")
    assert y2.dtype == np.int64 and y2.tolist() == [3, 1, 3, 2]
    _, y3 = fg.data.read_csv(p, target="score")
    assert y3.dtype == np.float32 and y3.tolist() == [0.5, 1.25, 2.0, 0.0]
    with pytest.raises(KeyError, match="no column 'nope'"):
        fg.data.read_csv(p, target="nope")
    with pytest.raises(ValueError, match="missing values"):
        fg.data.read_csv(p, target="size")
    with pytest.raises(KeyError, match="categorical"):
        fg.data.read_csv(p, target="label", categorical=["colour"])


def test_standardizer_learns_from_the_rows_it_is_given_and_fills_missing_values():
    s = nn.Standardizer(3, columns=[0, 2])
    assert not s.is_adapted
    rows = np.array([[1.0, 5.0, 7.0], [3.0, -5.0, 7.0], [np.nan, 0.0, 7.0]])
    s.adapt(rows)
    assert s.is_adapted
    np.testing.assert_allclose(s.mean.numpy(), [2.0, 0.0, 7.0])
    np.testing.assert_allclose(s.std.numpy(), [1.0, 1.0, 1.0])  # column 2 is constant: std 1
    out = s(fg.tensor(np.array([[4.0, 9.0, np.nan], [np.nan, np.nan, 8.0]], np.float32))).numpy()
    # standardized columns (NaN -> 0, the mean), the other one unchanged but for its NaN
    np.testing.assert_allclose(out, [[2.0, 9.0, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(fg.ShapeError, match="3 features"):
        s(fg.zeros(2, 4))
    with pytest.raises(ValueError, match="distinct indices"):
        nn.Standardizer(3, columns=[0, 3])


def _table_csv(path, n=600, shift_tail=0.0):
    a = rng.normal(50, 10, n)
    a[-n // 5 :] += shift_tail  # the last fifth (the validation split) is shifted
    b = rng.normal(0, 1e3, n)
    c = rng.choice(["x", "y", "z"], n)
    t = ((b > 0) ^ (c == "x")).astype(int)
    rows = [["" if i % 37 == 0 else a[i], b[i], c[i], t[i]] for i in range(n)]
    _write(path, ["a", "b", "c", "t"], rows)
    return a


def test_fit_on_a_csv_standardizes_with_the_training_split_and_predicts_raw_rows_after_load(tmp_path, reader):
    p = tmp_path / "d.csv"
    a = _table_csv(p, shift_tail=5.0)
    x, y = fg.data.read_csv(p, target="t")
    fg.manual_seed(0)
    model = fg.models.standard(x.shape[1], 2, width=32)
    h = model.fit(x, y, epochs=30, batch_size=32, validation_split=0.2, verbose=0, lr=1e-2)
    assert h.history["val_acc"][-1] >= 0.9
    std = model[0]
    assert isinstance(std, nn.Standardizer) and std.columns == x.numeric == [0, 1]
    train = a[:480][np.arange(480) % 37 != 0]  # the training rows with a value
    assert std.mean.numpy()[0] == pytest.approx(train.mean(), rel=1e-5)  # not the shifted tail's
    assert std.std.numpy()[0] == pytest.approx(train.std(), rel=1e-4)
    # fitting again does not stack a second standardizer
    model.fit(x, y, epochs=1, batch_size=32, validation_split=0.2, verbose=0)
    assert sum(isinstance(m, nn.Standardizer) for m in model) == 1
    raw = np.asarray(x[:50])
    before = model.predict(raw)
    fg.save(model, str(tmp_path / "m.safetensors"))
    back = fg.load(str(tmp_path / "m.safetensors"))
    assert isinstance(back[0], nn.Standardizer) and back[0].is_adapted
    np.testing.assert_array_equal(back.predict(raw), before)


def test_fit_accepts_array_likes_and_adapts_a_leading_standardizer():
    class Frame:  # anything with __array__ (a pandas DataFrame is one)
        def __init__(self, a):
            self.a = a

        def __array__(self, dtype=None, copy=None):
            return self.a if dtype is None else self.a.astype(dtype)

    x = rng.normal(100.0, 20.0, (256, 4)).astype(np.float32)
    y = (x[:, 0] > 100).astype(np.int64)
    fg.manual_seed(0)
    model = nn.Sequential(nn.Standardizer(4), nn.Linear(4, 2))
    model.fit(Frame(x), Frame(y), epochs=5, batch_size=32, validation_split=0.25, verbose=0, lr=1e-2)
    np.testing.assert_allclose(model[0].mean.numpy(), x[:192].mean(0), rtol=1e-5)
    with pytest.raises(TypeError, match="Standardizer"):
        t = fg.data.Table(x, ["a", "b", "c", "d"], [0, 1, 2, 3], {})

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 2)

            def forward(self, v):
                return self.fc(v)

        fg.train.fit(Net(), t, y, epochs=1, verbose=0)


def test_sequential_insert_numbers_layers_again():
    s = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    s.insert(1, nn.Identity())
    assert [type(m).__name__ for m in s] == ["Linear", "Identity", "ReLU", "Linear"]
    assert list(s.state_dict()) == ["0.weight", "0.bias", "3.weight", "3.bias"]
    s.insert(-1, nn.Dropout(0.1))
    assert type(s[3]).__name__ == "Dropout" and len(s) == 5
    named = nn.Sequential({"fc": nn.Linear(2, 2)})
    named.insert(0, nn.Identity(), name="pre")
    assert list(named._modules) == ["pre", "fc"]
    with pytest.raises(ValueError, match="new name"):
        named.insert(0, nn.Identity())
    with pytest.raises(IndexError):
        s.insert(9, nn.Identity())


def _idx(path, arr, code):
    head = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(head + arr.tobytes())


def test_fashion_mnist_reads_the_official_files_and_says_where_they_go(tmp_path):
    with pytest.raises(FileNotFoundError, match="fashion-mnist.*nothing is downloaded"):
        fg.data.load_fashion_mnist(tmp_path)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([9, 0, 3, 3, 1], np.uint8)
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, 0x08)
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels, 0x08)
    x, y = fg.data.load_fashion_mnist(tmp_path, kind="t10k")
    assert x.shape == (5, 784) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x[0], images[0].ravel() / 255.0, rtol=1e-6)
    assert y.tolist() == [9, 0, 3, 3, 1]
    with pytest.raises(ValueError, match="kind"):
        fg.data.load_fashion_mnist(tmp_path, kind="test")


def test_fit_predict_and_the_tuning_functions_take_pandas_frames():
    pd = pytest.importorskip("pandas")
    x, y = fg.data.load_mnist()
    frame, labels = pd.DataFrame(x[:400]), pd.Series(y[:400])
    fg.manual_seed(0)
    model = fg.models.standard(784, 10, width=16)
    h = model.fit(frame, labels, epochs=1, batch_size=64, validation_split=0.25, verbose=0)
    assert len(h.history["val_acc"]) == 1
    assert model.predict(frame.iloc[:3]).shape == (3, 10)
    search = fg.tune.learning_rate(
        lambda: fg.models.standard(784, 10, width=16),
        frame,
        labels,
        validation_split=0.25,
        epochs=1,
        max_trials=2,
        verbose=0,
    )
    assert search.best_lr > 0 and len(search.trials) == 2
