"""The training loop, callbacks, checkpoints, data loading and the command line."""

import io
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import callbacks as cbs
from ferrograd.data import ArrayDataset, DataLoader, load_mnist, read_idx


@pytest.fixture(scope="module")
def mnist():
    x, y = load_mnist()
    return x[:1200], y[:1200]


def small_model():
    return fg.models.standard(784, 10, width=64, depth=1)


def test_bundled_mnist_sample():
    x, y = load_mnist()
    assert x.shape == (10000, 784) and x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert y.shape == (10000,) and y.dtype == np.int64 and set(np.unique(y)) == set(range(10))


def test_idx_reader_refuses_bad_files(tmp_path):
    p = tmp_path / "bad-images-idx3-ubyte"
    p.write_bytes(b"\x00\x00\x08\x03" + (10).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\x00" * 50)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(p)
    p.write_bytes(b"PK\x03\x04junk")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(p)
    with pytest.raises(FileNotFoundError):
        load_mnist(tmp_path)


def test_fit_prints_keras_log_and_learns(mnist):
    x, y = mnist
    fg.manual_seed(0)
    m = small_model()
    out = io.StringIO()
    h = fg.train.fit(m, x, y, epochs=3, batch_size=64, validation_split=0.25, stream=out)
    log = out.getvalue()
    assert log.startswith("Train on 900 samples, validate on 300 samples\nEpoch 1/3\n")
    lines = re.findall(
        r"^900/900 \[=+\] - \d+s - loss: ([0-9.]+) - acc: ([0-9.]+)"
        r" - val_loss: [0-9.]+ - val_acc: ([0-9.]+)$",
        log,
        re.M,
    )
    assert len(lines) == 3 and "Epoch 3/3" in log
    assert [float(v) for v in (lines[-1][0],)] == [pytest.approx(h.history["loss"][-1], abs=1e-4)]
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert h.history["val_acc"][-1] > 0.8
    assert h.epoch == [0, 1, 2] and set(h.history) == {"loss", "acc", "val_loss", "val_acc"}


def test_fit_is_repeatable_with_a_seed(mnist):
    x, y = mnist
    runs = []
    for _ in range(2):
        fg.manual_seed(3)
        m = small_model()
        runs.append(fg.train.fit(m, x[:300], y[:300], epochs=2, batch_size=50, verbose=0).history["loss"])
    assert runs[0] == runs[1]


def test_evaluate_predict_and_validation_data(mnist):
    x, y = mnist
    m = small_model()
    m.fit(x[:600], y[:600], epochs=1, batch_size=100, validation_data=(x[600:800], y[600:800]), verbose=0)
    r = m.evaluate(x[800:], y[800:])
    assert set(r) == {"loss", "acc"} and 0 <= r["acc"] <= 1
    p = m.predict(x[:10])
    assert p.shape == (10, 10) and isinstance(p, np.ndarray)
    assert m.training  # fit/predict restore the training mode


def test_softmax_head_trains_from_logits_and_predicts_probabilities(mnist):
    x, y = mnist
    m = fg.models.standard(784, 10, width=32, depth=1, head="softmax")
    h = m.fit(x[:400], y[:400], epochs=2, batch_size=50, verbose=0)
    assert np.isfinite(h.history["loss"]).all()
    p = m.predict(x[:5])
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)


def test_regression_with_mse_reports_mae():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3).reshape(-1, 1)
    fg.manual_seed(0)
    m = fg.nn.Sequential(fg.nn.Linear(3, 1))
    h = m.fit(x, y, loss="mse", optimizer="adam", lr=0.05, epochs=30, batch_size=32, verbose=0)
    assert "mae" in h.history and h.history["loss"][-1] < 0.01


def test_binary_cross_entropy_with_sigmoid_head():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 2)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    m = fg.nn.Sequential(fg.nn.Linear(2, 1), fg.nn.Sigmoid())
    h = m.fit(x, y, loss="binary_cross_entropy", lr=0.05, epochs=20, batch_size=30, verbose=0)
    assert h.history["acc"][-1] > 0.9
    assert ((m.predict(x) > 0.5).ravel() == (y > 0.5)).mean() > 0.9


def test_early_stopping_restores_best_weights(mnist):
    x, y = mnist
    fg.manual_seed(0)
    m = small_model()
    stop = cbs.EarlyStopping(monitor="val_loss", patience=1, restore_best=True)
    # a huge learning rate makes val_loss worse after the first epochs
    h = m.fit(
        x,
        y,
        epochs=15,
        lr=0.5,
        optimizer="sgd",
        batch_size=100,
        validation_split=0.2,
        callbacks=[stop],
        verbose=0,
    )
    assert len(h.epoch) < 15 and stop.stopped_epoch is not None
    best = min(h.history["val_loss"])
    assert m.evaluate(x[960:], y[960:])["loss"] == pytest.approx(best, rel=1e-4)


def test_checkpoint_csv_and_reduce_lr(tmp_path, mnist):
    x, y = mnist
    m = small_model()
    ck = tmp_path / "best.safetensors"
    csv_path = tmp_path / "log.csv"
    rlr = cbs.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=10.0)  # never "improves"
    m.fit(
        x[:400],
        y[:400],
        epochs=3,
        batch_size=100,
        validation_split=0.25,
        verbose=0,
        callbacks=[cbs.ModelCheckpoint(str(ck), save_best_only=True), cbs.CSVLogger(str(csv_path)), rlr],
    )
    assert ck.exists()
    rows = csv_path.read_text().strip().splitlines()
    assert rows[0] == "epoch,acc,loss,val_acc,val_loss" and len(rows) == 4
    assert m.optimizer.lr == pytest.approx(0.001 * 0.5**2)


def test_ctrl_c_stops_after_current_batch(mnist):
    x, y = mnist

    class Interrupt(cbs.Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 2:
                os.kill(os.getpid(), signal.SIGINT)

    m = small_model()
    out = io.StringIO()
    h = m.fit(x, y, epochs=5, batch_size=100, callbacks=[Interrupt()], stream=out)
    assert h.interrupted and h.epoch == [0] and "Interrupted" in out.getvalue()
    assert np.isfinite(h.history["loss"][0])
    assert m.predict(x[:2]).shape == (2, 10)  # the model is still usable


def test_a_callback_stops_training_between_batches(mnist):
    """As Keras: `model.stop_training = True` set in a batch hook ends the epoch after that
    batch (validation still runs on what was trained); set before an epoch's first batch, it
    ends training without logging an empty epoch."""
    x, y = mnist
    x, y = x[:1000], y[:1000]

    class Count(cbs.Callback):
        def __init__(self, stop_at):
            self.stop_at, self.begun, self.ended = stop_at, 0, 0

        def on_batch_begin(self, batch, logs=None):
            if self.begun == self.stop_at:
                self.model.stop_training = True
            self.begun += 1

        def on_batch_end(self, batch, logs=None):
            self.ended += 1

    m = small_model()
    c = Count(stop_at=3)
    h = m.fit(x, y, epochs=3, batch_size=100, validation_split=0.2, callbacks=[c], verbose=0)
    assert c.ended == 3 and h.epoch == [0] and np.isfinite(h.history["val_loss"][0])
    c = Count(stop_at=8)  # 800 training samples: 8 batches, so the stop comes before epoch 2's first
    h = small_model().fit(x, y, epochs=3, batch_size=100, validation_split=0.2, callbacks=[c], verbose=0)
    assert c.ended == 8 and h.epoch == [0] and np.isfinite(h.history["loss"][0])


def test_history_plot(tmp_path, mnist):
    x, y = mnist
    h = small_model().fit(x[:200], y[:200], epochs=2, batch_size=100, validation_split=0.5, verbose=0)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install matplotlib"):
            h.plot(str(tmp_path / "c.png"))
    else:
        h.plot(str(tmp_path / "c.png"))
        assert (tmp_path / "c.png").stat().st_size > 1000


def test_dataloader_batches_and_seeded_shuffle():
    ds = ArrayDataset(np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10))
    dl = DataLoader(ds, batch_size=4, shuffle=True, seed=5)
    first = [yb.tolist() for _, yb in dl]
    again = [yb.tolist() for _, yb in DataLoader(ds, batch_size=4, shuffle=True, seed=5)]
    assert first == again and sorted(sum(first, [])) == list(range(10))
    assert [len(b) for b in first] == [4, 4, 2] and len(dl) == 3
    assert len(list(DataLoader(ds, batch_size=4, drop_last=True))) == 2
    xb, yb = next(iter(DataLoader(ds, batch_size=3)))
    assert xb.tolist() == [[0, 1], [2, 3], [4, 5]] and yb.tolist() == [0, 1, 2]
    with pytest.raises(ValueError):
        ArrayDataset(np.zeros(3), np.zeros(4))


def test_dataloader_takes_pytorch_arguments():
    """A PyTorch script's TensorDataset and DataLoader(num_workers=, pin_memory=) run
    unchanged (the arguments have nothing to do here) and batch as without them."""
    from ferrograd.data import TensorDataset

    ds = TensorDataset(fg.arange(12.0).reshape(6, 2), fg.tensor([0, 1, 0, 1, 0, 1]))
    plain = [yb.tolist() for _, yb in DataLoader(ds, batch_size=4, shuffle=True, seed=1)]
    loader = DataLoader(ds, batch_size=4, shuffle=True, seed=1, num_workers=2, pin_memory=True)
    assert [yb.tolist() for _, yb in loader] == plain
    with pytest.raises(ValueError, match="num_workers must be >= 0"):
        DataLoader(ds, num_workers=-1)


# ---- saving and loading -------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: fg.models.standard(20, 3, width=16),
        lambda: fg.models.residual(20, 3, width=16, blocks=2, layers_per_block=3),
        lambda: fg.models.self_normalizing(20, 3, width=16, depth=3, head="softmax"),
    ],
)
def test_save_load_round_trip(tmp_path, build):
    fg.manual_seed(0)
    m = build()
    x = fg.randn(8, 20)
    m.train()
    m(x)  # move BatchNorm running stats away from their initial values
    m.eval()
    p = tmp_path / "m.safetensors"
    m.save(p)
    m2 = fg.load(p)
    m2.eval()
    assert repr(m2) == repr(m)
    np.testing.assert_array_equal(m(x).numpy(), m2(x).numpy())


def test_resume_with_optimizer_state_is_identical(tmp_path, mnist):
    x, y = mnist
    fg.manual_seed(0)
    m = small_model()
    opt = fg.optim.Adam(m.parameters(), lr=1e-3)
    m.fit(x[:300], y[:300], optimizer=opt, epochs=1, batch_size=50, verbose=0)
    p = tmp_path / "ck.safetensors"
    m.save(p, optimizer=opt)
    state = fg.get_rng_state()
    h1 = m.fit(x[:300], y[:300], optimizer=opt, epochs=1, batch_size=50, verbose=0)

    m2 = fg.load(p)
    opt2 = fg.optim.Adam(m2.parameters(), lr=1e-3)
    fg.load(p, model=m2, optimizer=opt2)
    fg.set_rng_state(state)
    h2 = m2.fit(x[:300], y[:300], optimizer=opt2, epochs=1, batch_size=50, verbose=0)
    assert h1.history["loss"] == h2.history["loss"]
    for a, b in zip(m.parameters(), m2.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_corrupt_truncated_and_mismatched_files_are_refused(tmp_path):
    m = fg.models.standard(20, 3, width=16)
    p = tmp_path / "m.safetensors"
    m.save(p)
    good = p.read_bytes()
    for name, data in [
        ("truncated", good[:100]),
        ("tiny", good[:5]),
        ("garbage", b"\xff" * 64),
        ("bad header", (10).to_bytes(8, "little") + b"{not json}"),
    ]:
        q = tmp_path / f"{name}.safetensors"
        q.write_bytes(data)
        with pytest.raises(ValueError, match="not a valid safetensors file"):
            fg.load(q)
    other = fg.models.standard(20, 3, width=8)
    with pytest.raises(fg.io.CheckpointError, match="does not fit"):
        fg.load(p, model=other)


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    m = fg.models.standard(20, 3, width=16)
    p = tmp_path / "m.safetensors"
    m.save(p)
    before = p.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with fg.no_grad():
        m[0].weight.fill_(3.0)
    with pytest.raises(OSError, match="disk full"):
        m.save(p)
    assert p.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["m.safetensors"]  # no temp file left behind


def test_weights_only_for_custom_modules(tmp_path):
    class Net(fg.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = fg.nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x)

    n = Net()
    p = tmp_path / "n.safetensors"
    fg.save(n, p)  # (a plain Module: `save` as a method is deprecated; see test_layering)
    with pytest.raises(fg.io.CheckpointError, match="weights only"):
        fg.load(p)
    n2 = fg.load(p, model=Net())
    np.testing.assert_array_equal(n2.fc.weight.numpy(), n.fc.weight.numpy())


def test_command_line_trains_and_saves(tmp_path):
    model = tmp_path / "cli.safetensors"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ferrograd",
            "train",
            "--arch",
            "selu",
            "--epochs",
            "1",
            "--batch-size",
            "256",
            "--seed",
            "1",
            "--save",
            str(model),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "Train on 8000 samples, validate on 2000 samples\nEpoch 1/1\n8000/8000 [" in r.stdout
    assert model.exists() and fg.load(model)(fg.zeros(2, 784)).shape == (2, 10)
    bad = subprocess.run(
        [sys.executable, "-m", "ferrograd", "train", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "no t10k-images" in bad.stderr


def test_pytorch_style_checkpoints(tmp_path):
    """fg.save/fg.load take what PyTorch scripts save: a state_dict, or a dict holding the
    model's and the optimizer's state dicts, the epoch and the loss; training resumed from
    it matches training that never stopped, bit for bit."""
    r = np.random.default_rng(4)
    x = fg.tensor(r.standard_normal((32, 6)).astype(np.float32))
    y = fg.tensor(r.integers(0, 3, 32))

    def make():
        fg.manual_seed(0)
        m = fg.nn.Sequential(fg.nn.Linear(6, 8), fg.nn.BatchNorm1d(8), fg.nn.ReLU(), fg.nn.Linear(8, 3))
        return m, fg.optim.Adam(m.parameters(), lr=0.01)

    def steps(m, opt, n):
        loss = None
        for _ in range(n):
            loss = fg.losses.cross_entropy(m(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return loss

    m, opt = make()
    steps(m, opt, 4)
    straight = [p.numpy() for p in m.parameters()]
    m, opt = make()
    loss = steps(m, opt, 2)
    path = tmp_path / "ckpt.safetensors"
    fg.save({"epoch": 2, "model": m.state_dict(), "optimizer": opt.state_dict(), "loss": loss,
             "note": ("adam", None, [1, 2.5])}, path)  # fmt: skip
    ck = fg.load(path)
    assert ck["epoch"] == 2 and ck["note"] == ("adam", None, [1, 2.5])
    assert ck["loss"].item() == loss.item() and ck["loss"].dim() == 0
    m2, opt2 = make()
    m2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["optimizer"])
    steps(m2, opt2, 2)
    for a, b in zip(straight, [p.numpy() for p in m2.parameters()]):
        np.testing.assert_array_equal(a, b)
    # a bare state_dict round trip, as torch.save(model.state_dict(), path)
    fg.save(m.state_dict(), tmp_path / "sd.safetensors")
    sd = fg.load(tmp_path / "sd.safetensors")
    assert list(sd) == list(m.state_dict())
    m3, _ = make()
    m3.load_state_dict(sd)
    m.eval()
    m3.eval()  # running statistics came back too
    np.testing.assert_array_equal(m3(x).numpy(), m(x).numpy())
    with pytest.raises(TypeError, match="save: cannot store a set"):
        fg.save({"bad": {1, 2}}, tmp_path / "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()
    with pytest.raises(fg.io.CheckpointError, match="holds a saved dict, not a model"):
        fg.load(path, model=m3)


def test_the_pytorch_style_example_trains():
    """examples/pytorch_style.py, PyTorch's MNIST example written with ferrograd's PyTorch
    names, runs and learns (on the CPU; tests/test_gpu.py runs it on the GPU too)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "pytorch_style.py"
    spec = importlib.util.spec_from_file_location("pytorch_style_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    history = example.main("cpu", epochs=2, samples=2000, verbose=False)
    assert history[-1][1] < history[0][1] and history[-1][2] > 0.8


def test_keras_compile_then_fit():
    """model.compile(optimizer, loss, metrics) then fit/evaluate, as in Keras: the compiled
    optimizer is created once and keeps its state across fit calls (recreated when the
    parameters change), explicit arguments win, and bad names fail at compile."""
    r = np.random.default_rng(2)
    x = r.standard_normal((64, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    fg.manual_seed(0)
    model = fg.nn.Sequential(fg.nn.Linear(5, 8), fg.nn.ReLU(), fg.nn.Linear(8, 2))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"], lr=0.2)
    h1 = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    opt = model._compiled_optimizer()
    assert isinstance(opt, fg.optim.SGD) and opt.lr == 0.2
    h2 = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert model._compiled_optimizer() is opt  # the same optimizer carried on
    assert h2.history["loss"][-1] < h1.history["loss"][0] and "acc" in h1.history
    logs = model.evaluate(x, y)
    assert set(logs) >= {"loss", "acc"} and logs["acc"] > 0.8
    model.to(fg.float64)  # new parameters: a new optimizer
    assert model._compiled_optimizer() is not opt
    adam = fg.optim.Adam(model.parameters(), lr=1e-3)
    model.compile(optimizer=adam, loss="cross_entropy")
    assert model._compiled_optimizer() is adam
    with pytest.raises(ValueError, match="unknown loss"):
        model.compile(loss="hinge")
    with pytest.raises(ValueError, match="compile: unknown metric 'auc'"):
        model.compile(metrics=["auc"])


@pytest.mark.parametrize(
    "build",
    [
        lambda: fg.models.standard(784, 10),  # the three networks at the CLI's sizes
        lambda: fg.models.residual(784, 10),
        lambda: fg.models.self_normalizing(784, 10),
        lambda: fg.nn.Sequential(
            fg.nn.Unflatten(1, (1, 28, 28)),
            fg.nn.Conv2d(1, 8, 3),
            fg.nn.ReLU(),
            fg.nn.MaxPool2d(2),
            fg.nn.Flatten(),
            fg.nn.Linear(8 * 13 * 13, 10),
        ),
    ],
    ids=["standard", "residual", "selu", "cnn"],
)
def test_training_is_bit_identical_across_thread_counts(mnist, build):
    """The kernels split work across threads without changing any sum's order: 1, 2 and 4
    threads give the same weights, bit for bit, after 50 Adam steps (dropout and batch norm
    included)."""
    x, y = fg.tensor(mnist[0][:1024].astype(np.float32)), fg.tensor(mnist[1][:1024])
    before = fg.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 4):
            fg.set_num_threads(threads)
            fg.manual_seed(3)
            model = build()
            opt = fg.optim.Adam(model.parameters(), lr=1e-3)
            model.train()
            for step in range(50):
                s = step % 8 * 128
                opt.zero_grad()
                fg.losses.cross_entropy(model(x[s : s + 128]), y[s : s + 128]).backward()
                opt.step()
            results.append([p.detach().numpy().copy() for p in model.parameters()])
    finally:
        fg.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
