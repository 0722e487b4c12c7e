"""ONNX export (issue 19): every builder of the layer API and a Keras-face model exported,
checked by the onnx package and run in onnxruntime, outputs within 1e-5 of ferrograd's for
batch sizes 1 and 37 (the batch dimension is dynamic); the activations with their
parameters; unsupported modules refused by name with nothing written; the CLI."""

from __future__ import annotations

import numpy as np
import pytest

import ferrograd as fg
import ferrograd.nn as nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

rng = np.random.default_rng(2)


def _trained(model, features):
    """`model` after a few steps (running statistics and weights away from their init)."""
    x = rng.standard_normal((96, features)).astype(np.float32)
    model.fit(x, np.arange(96) % 5, epochs=2, batch_size=32, verbose=0)
    return model


def _worst(model, path, features, opset=17):
    """Largest |onnxruntime - ferrograd| over batches of 1 and 37."""
    fg.onnx.export(model, fg.randn(4, features), path, opset=opset)
    onnx.checker.check_model(onnx.load(str(path)))
    sess = ort.InferenceSession(str(path))
    model.eval()
    worst = 0.0
    for n in (1, 37):
        x = rng.standard_normal((n, features)).astype(np.float32)
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        with fg.no_grad():
            want = model(fg.tensor(x)).numpy()
        assert got.shape == want.shape
        worst = max(worst, float(np.abs(got - want).max()))
    return worst


@pytest.mark.parametrize(
    "build",
    [
        lambda: fg.models.standard(20, 5),
        lambda: fg.models.residual(20, 5, width=32, blocks=3),
        lambda: fg.models.self_normalizing(20, 5, width=32, depth=4, head="softmax"),
    ],
    ids=["standard", "residual", "self_normalizing"],
)
def test_the_builders_run_in_onnxruntime(build, tmp_path):
    fg.manual_seed(0)
    assert _worst(_trained(build(), 20), tmp_path / "m.onnx", 20) <= 1e-5


def test_activations_heads_and_a_projected_residual(tmp_path):
    fg.manual_seed(1)
    body = nn.Sequential(nn.Linear(8, 12), nn.GELU(), nn.Linear(12, 12))
    model = nn.Sequential(
        nn.Linear(6, 8),
        nn.ELU(0.7),
        nn.LeakyReLU(0.2),
        nn.CELU(1.3),
        nn.Residual(body, 8, 12),  # a projection: the widths differ
        nn.GELU(approximate="tanh"),
        nn.Tanh(),
        nn.SiLU(),
        nn.Hardtanh(-0.5, 0.5),
        nn.Softsign(),
        nn.Hardswish(),
        nn.Linear(12, 4),
        nn.LogSoftmax(dim=1),
    )
    for opset in (17, 20):  # GELU composed from Erf/Tanh below 20, the Gelu op from 20
        assert _worst(model, tmp_path / f"a{opset}.onnx", 6, opset) <= 1e-5
    head = nn.Sequential(nn.Flatten(), nn.Linear(12, 3), nn.Sigmoid())
    assert _worst(head, tmp_path / "h.onnx", 12) <= 1e-5


def test_a_keras_face_model_and_a_standardizer(tmp_path):
    from ferrograd import keras

    fg.manual_seed(3)
    m = keras.Sequential(
        [
            keras.layers.Dense(16, activation="relu", input_shape=(10,)),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(8, activation="selu"),
            keras.layers.Activation("tanh"),
            keras.layers.Dense(3, activation="softmax", use_bias=False),
        ]
    )
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    m.fit(rng.standard_normal((64, 10)).astype(np.float32), np.arange(64) % 3, epochs=2, verbose=0)
    assert _worst(m, tmp_path / "k.onnx", 10) <= 1e-5
    std = nn.Standardizer(5, columns=[0, 2])
    std.adapt(rng.normal(3.0, 2.0, (50, 5)))
    assert _worst(nn.Sequential(std, nn.Linear(5, 2)), tmp_path / "s.onnx", 5) <= 1e-5


def test_unsupported_modules_are_refused_by_name(tmp_path):
    class Mine(nn.Module):
        def forward(self, x):
            return x * 2

    path = tmp_path / "bad.onnx"
    with pytest.raises(ValueError, match="1 is a Mine"):
        fg.onnx.export(nn.Sequential(nn.Linear(4, 4), Mine()), fg.randn(2, 4), path)
    with pytest.raises(ValueError, match="Softplus\\(beta=2"):
        fg.onnx.export(nn.Sequential(nn.Softplus(beta=2.0)), fg.randn(2, 4), path)
    with pytest.raises(ValueError, match="Conv2d"):
        fg.onnx.export(nn.Sequential(nn.Conv2d(1, 2, 3)), fg.randn(1, 1, 5, 5), path)
    assert not path.exists()
    with pytest.raises(ValueError, match="opset"):
        fg.onnx.export(nn.Linear(2, 2), fg.randn(1, 2), path, opset=9)


def test_the_export_command(tmp_path):
    from ferrograd.cli import main

    fg.manual_seed(0)
    model = _trained(fg.models.standard(20, 5, width=16), 20)
    model.save(str(tmp_path / "m.safetensors"))
    assert main(["export", str(tmp_path / "m.safetensors"), str(tmp_path / "m.onnx")]) == 0
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"))
    x = rng.standard_normal((7, 20)).astype(np.float32)
    model.eval()
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], model.predict(x), atol=1e-5)
    assert main(["export", str(tmp_path / "missing.safetensors"), str(tmp_path / "x.onnx")]) == 2
