"""`fg.callbacks.TensorBoard` (issue 19): the event files it writes through tensorboardX are
read back here (TFRecord framing, tensorboardX's Event protobuf): scalars per epoch (and per
batch when asked), the learning rate, weight and gradient histograms every N epochs, the
model as text; the clear ImportError without tensorboardX."""

from __future__ import annotations

import glob
import os
import struct

import numpy as np
import pytest

import ferrograd as fg

pytest.importorskip("tensorboardX")
from tensorboardX.proto import event_pb2  # noqa: E402


def _events(log_dir):
    """Every Event in the event files under `log_dir`."""
    out = []
    for path in glob.glob(os.path.join(log_dir, "**", "events.*"), recursive=True):
        with open(path, "rb") as f:
            data = f.read()
        at = 0
        while at < len(data):
            (n,) = struct.unpack("<Q", data[at : at + 8])
            out.append(event_pb2.Event.FromString(data[at + 12 : at + 12 + n]))
            at += 12 + n + 4  # length, its crc, the record, its crc
    return out


def _by_tag(events):
    scalars: dict[str, list] = {}
    histos: set[str] = set()
    texts: set[str] = set()
    for e in events:
        for v in e.summary.value:
            if v.HasField("histo"):
                histos.add(v.tag)
            elif v.metadata.plugin_data.plugin_name == "text":
                texts.add(v.tag)
            else:
                scalars.setdefault(v.tag, []).append((e.step, v.simple_value))
    return scalars, histos, texts


def _fit(log_dir, **tb):
    x, y = fg.data.load_mnist()
    fg.manual_seed(0)
    m = fg.models.standard(784, 10, width=32)
    cb = fg.callbacks.TensorBoard(str(log_dir), **tb)
    h = m.fit(x[:512], y[:512], epochs=3, batch_size=128, validation_split=0.25, verbose=0, callbacks=[cb])
    return m, h


def test_epoch_scalars_histograms_and_the_model_as_text(tmp_path):
    m, h = _fit(tmp_path, histogram_freq=2)
    scalars, histos, texts = _by_tag(_events(tmp_path))
    for key in ("loss", "acc", "val_loss", "val_acc"):
        got = scalars[f"epoch_{key}"]
        assert [s for s, _ in got] == [0, 1, 2]
        np.testing.assert_allclose([v for _, v in got], h.history[key], rtol=1e-5)
    assert [v for _, v in scalars["epoch_learning_rate"]] == pytest.approx([1e-3] * 3)
    assert not any(t.startswith("batch_") for t in scalars)  # update_freq="epoch"
    names = [n for n, _ in m.named_parameters()]
    assert histos == set(names) | {f"{n}/grad" for n in names}  # epoch 2 only (every 2nd)
    assert texts == {"model/text_summary"}


def test_tensorboards_own_reader_sees_the_scalars(tmp_path):
    """What TensorBoard itself shows: its EventAccumulator reads the same steps and values."""
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    _, h = _fit(tmp_path)
    (path,) = glob.glob(os.path.join(tmp_path, "**", "events.*"), recursive=True)
    ea = accumulator.EventAccumulator(path)
    ea.Reload()
    assert {"epoch_loss", "epoch_val_acc"} <= set(ea.Tags()["scalars"])
    got = ea.Scalars("epoch_val_acc")
    assert [e.step for e in got] == [0, 1, 2]
    np.testing.assert_allclose([e.value for e in got], h.history["val_acc"], rtol=1e-5)


def test_batch_scalars_every_n_batches(tmp_path):
    _fit(tmp_path, update_freq=2, write_graph=False)
    scalars, histos, texts = _by_tag(_events(tmp_path))
    steps = [s for s, _ in scalars["batch_loss"]]
    assert steps == [2, 4, 6, 8]  # 3 batches an epoch, 9 in all, every 2nd
    assert not histos and not texts
    with pytest.raises(ValueError, match="update_freq"):
        fg.callbacks.TensorBoard(str(tmp_path), update_freq="hourly")


def test_a_clear_error_without_tensorboardx(tmp_path, hide_package):
    hide_package("tensorboardX")
    with pytest.raises(ImportError, match="pip install tensorboardX"):
        _fit(tmp_path)
