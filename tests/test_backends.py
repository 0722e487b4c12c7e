"""`fg.backends` (PyTorch's `torch.backends`) and `fg.accelerator` (`torch.accelerator`), issue
14: the queries answer truthfully for ferrograd (no MPS, no cuDNN; the accelerator is the GPU
exactly when `fg.gpu.is_available()`), the switches scripts set are accepted, and the usual
device-selection idioms give a device tensors and models can go to."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import ferrograd as fg

# ------------------------------------------------------------------ torch.backends


def test_mps_is_absent_and_says_so():
    assert fg.backends.mps.is_available() is False
    assert fg.backends.mps.is_built() is False
    with pytest.raises(fg.DeviceError):  # consistent: "mps" is no ferrograd device
        fg.device("mps")


def test_cudnn_is_absent_and_its_switches_are_accepted():
    cudnn = fg.backends.cudnn
    assert cudnn.is_available() is False
    assert cudnn.version() is None
    saved = (cudnn.enabled, cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32)
    assert saved == (True, False, False, True)  # PyTorch's defaults
    try:
        # the reproducibility preamble of many scripts
        cudnn.benchmark = False
        cudnn.deterministic = True
        cudnn.enabled = False
        cudnn.allow_tf32 = False
        assert (cudnn.enabled, cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32) == (
            False,
            False,
            True,
            False,
        )
    finally:
        cudnn.enabled, cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32 = saved


def test_cudnn_flags_context_restores():
    cudnn = fg.backends.cudnn
    with cudnn.flags(enabled=True, benchmark=True, deterministic=True):
        assert cudnn.benchmark and cudnn.deterministic
    assert (cudnn.benchmark, cudnn.deterministic) == (False, False)
    with pytest.raises(KeyError), cudnn.flags(benchmark=True):
        raise KeyError("inside")
    assert cudnn.benchmark is False


def test_scripts_import_the_submodules_torchs_way():
    """`import torch.backends.cudnn as cudnn` is a common first line."""
    for name in ("cudnn", "mps", "cuda"):
        mod = importlib.import_module(f"ferrograd.backends.{name}")
        assert mod is getattr(fg.backends, name)
        assert mod.__doc__
    import ferrograd.backends.cudnn as cudnn

    cudnn.benchmark = True
    try:
        assert fg.backends.cudnn.benchmark is True
    finally:
        cudnn.benchmark = False


def test_switches_change_no_result():
    """Flags documented as having no effect: a matmul gives the same bits either way."""
    a, b = fg.randn(17, 33), fg.randn(33, 9)
    before = a.matmul(b).numpy()
    matmul = fg.backends.cuda.matmul
    old = matmul.allow_tf32
    try:
        matmul.allow_tf32 = True
        fg.backends.cudnn.benchmark = True
        np.testing.assert_array_equal(a.matmul(b).numpy(), before)
    finally:
        matmul.allow_tf32 = old
        fg.backends.cudnn.benchmark = False


def test_cuda_matmul_flags():
    matmul = fg.backends.cuda.matmul
    assert matmul.allow_tf32 is False  # PyTorch's default since 1.12
    for name in (
        "allow_tf32",
        "allow_fp16_reduced_precision_reduction",
        "allow_bf16_reduced_precision_reduction",
    ):
        old = getattr(matmul, name)
        setattr(matmul, name, not old)
        assert getattr(matmul, name) is (not old)
        setattr(matmul, name, old)
    with pytest.raises(AttributeError):
        matmul.allow_tf23 = True  # a typo is not silently accepted
    assert "no effect" in repr(matmul)


def test_cuda_is_built_is_the_gpu_backend_being_compiled_in():
    built = fg.backends.cuda.is_built()
    assert isinstance(built, bool)
    if fg.cuda.is_available():
        assert built  # available implies built
    # a GPU build lists its matmul kernels; a CPU-only build has none
    assert built == bool(_gpu_kernels())


def _gpu_kernels():
    try:
        return fg.gpu.matmul_kernels()
    except fg.DeviceError:
        return []


def test_backends_queries_have_docstrings():
    for fn in (
        fg.backends.mps.is_available,
        fg.backends.mps.is_built,
        fg.backends.cudnn.is_available,
        fg.backends.cudnn.version,
        fg.backends.cudnn.flags,
        fg.backends.cuda.is_built,
    ):
        assert fn.__doc__
    assert "no effect" in fg.backends.__doc__ and "no effect" in fg.backends.cudnn.__doc__


# ------------------------------------------------------------------ torch.accelerator


def test_accelerator_agrees_with_the_gpu_probe():
    available = fg.gpu.is_available()
    assert fg.accelerator.is_available() is available
    assert fg.accelerator.device_count() == (1 if available else 0)
    dev = fg.accelerator.current_accelerator()
    if available:
        assert isinstance(dev, fg.device) and dev == "gpu" and dev.type == "gpu"
        assert fg.ones(3).to(dev).device == "gpu"
        assert fg.accelerator.current_device_index() == 0
        fg.accelerator.synchronize()
    else:
        assert dev is None


@pytest.mark.parametrize("available", [True, False])
def test_accelerator_answers_from_fg_gpu_is_available(available, monkeypatch):
    """Whatever the probe says (e.g. False for a software-emulated GPU), the accelerator says."""
    monkeypatch.setattr(fg.gpu, "is_available", lambda: available)
    assert fg.accelerator.is_available() is available
    assert fg.accelerator.device_count() == int(available)
    if available:
        # the device object is only built where a GPU really exists
        if _really_has_gpu():
            assert fg.accelerator.current_accelerator(check_available=True) == "gpu"
        assert fg.accelerator.current_device_index() == 0
    else:
        assert fg.accelerator.current_accelerator() is None
        assert fg.accelerator.current_accelerator(check_available=True) is None
        with pytest.raises(RuntimeError, match="no accelerator"):
            fg.accelerator.current_device_index()
        fg.accelerator.synchronize()  # nothing to wait for


def _really_has_gpu() -> bool:
    try:
        fg.ones(1).to("gpu")
    except fg.DeviceError:
        return False
    return True


def test_set_device_index(monkeypatch):
    monkeypatch.setattr(fg.gpu, "is_available", lambda: True)
    fg.accelerator.set_device_index(0)
    with pytest.raises(ValueError, match="index 0"):
        fg.accelerator.set_device_index(1)
    with pytest.raises(ValueError, match="index 0"):
        fg.accelerator.set_device_index(True)
    if _really_has_gpu():
        fg.accelerator.set_device_index("cuda:0")
        with pytest.raises(ValueError, match="index 0"):
            fg.accelerator.set_device_index("cpu")


# ------------------------------------------------------------------ the idioms


def _usable(device) -> None:
    """A model and a batch go to `device` and a training step runs there."""
    fg.manual_seed(0)
    model = fg.nn.Sequential(fg.nn.Linear(4, 8), fg.nn.ReLU(), fg.nn.Linear(8, 3)).to(device)
    x = fg.randn(5, 4).to(device)
    y = fg.tensor([0, 1, 2, 1, 0]).to(device)
    opt = fg.optim.SGD(model.parameters(), lr=0.1)
    loss = fg.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    assert np.isfinite(loss.item())
    assert model(x).device == fg.device(device)


def test_the_pytorch_tutorial_device_idiom():
    device = "cuda" if fg.cuda.is_available() else "mps" if fg.backends.mps.is_available() else "cpu"
    assert device in ("cuda", "cpu")  # never "mps"
    assert (device == "cuda") == fg.gpu.is_available()
    _usable(device)


def test_the_pytorch_2_6_accelerator_idiom():
    device = fg.accelerator.current_accelerator().type if fg.accelerator.is_available() else "cpu"
    assert device == ("gpu" if fg.gpu.is_available() else "cpu")
    _usable(device)


def test_the_idioms_on_a_machine_without_a_usable_gpu(monkeypatch):
    """With the probe saying no (no adapter, or only a software one), both idioms pick the CPU."""
    monkeypatch.setattr(fg.gpu, "is_available", lambda: False)
    device = "cuda" if fg.cuda.is_available() else "mps" if fg.backends.mps.is_available() else "cpu"
    assert device == "cpu"
    acc = fg.accelerator.current_accelerator()
    assert (acc.type if acc is not None else "cpu") == "cpu"
    _usable(device)
