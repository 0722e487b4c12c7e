"""The GPU probe (issue 14): a software emulation of a GPU (Vulkan device type "Cpu":
Mesa's lavapipe/llvmpipe) is listed but is not "the GPU" unless FERROGRAD_ALLOW_SOFTWARE_GPU=1
opts in, and probing writes nothing to stderr and leaves the environment as it was.

Each case runs in a fresh interpreter: the probe's answer is fixed for a process at its
first GPU use."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import ferrograd as fg

PROBE = r"""
import ctypes, json, os
import ferrograd as fg
libc = ctypes.CDLL(None)
libc.getenv.restype = ctypes.c_char_p
out = {
    "gpu": fg.gpu.is_available(),
    "cuda": fg.cuda.is_available(),
    "accelerator": fg.accelerator.is_available(),
    "devices": fg.devices(),
}
try:
    out["sum"] = float((fg.ones(3, device="gpu") * 2).sum().item())
except fg.DeviceError as e:
    out["error"] = str(e)
raw = libc.getenv(b"XDG_RUNTIME_DIR")
out["xdg_c"] = None if raw is None else raw.decode()
out["xdg_py"] = os.environ.get("XDG_RUNTIME_DIR")
print(json.dumps(out))
"""

_GPUS = [d for d in fg.devices() if d["backend"] != "cpu"]
_SOFTWARE_ONLY = bool(_GPUS) and all(d["software"] for d in _GPUS)


def _probe(allow: str | None, xdg: str | None = None) -> tuple[dict, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("FERROGRAD_ALLOW_SOFTWARE_GPU", "XDG_RUNTIME_DIR")
    }
    if allow is not None:
        env["FERROGRAD_ALLOW_SOFTWARE_GPU"] = allow
    if xdg is not None:
        env["XDG_RUNTIME_DIR"] = xdg
    r = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), r.stderr


def test_devices_mark_software_adapters():
    for d in fg.devices():
        assert d["software"] == (d["backend"] != "cpu" and d["type"] == "Cpu")


@pytest.mark.skipif(not _SOFTWARE_ONLY, reason="needs a machine whose only adapter is a software one")
def test_a_software_adapter_is_not_the_gpu_without_the_opt_in():
    out, err = _probe(allow=None)
    assert (out["gpu"], out["cuda"], out["accelerator"]) == (False, False, False)
    assert any(d["software"] for d in out["devices"])  # listed all the same
    assert "software emulation of a GPU" in out["error"] and "FERROGRAD_ALLOW_SOFTWARE_GPU=1" in out["error"]
    assert err == ""  # no stray output from the probe (XDG_RUNTIME_DIR unset here)
    # any value but "1" is no opt-in
    out, err = _probe(allow="0")
    assert out["gpu"] is False and err == ""


@pytest.mark.skipif(not _GPUS, reason="no GPU adapter, software or not")
def test_the_opt_in_makes_a_software_adapter_usable():
    out, err = _probe(allow="1")
    assert (out["gpu"], out["cuda"], out["accelerator"]) == (True, True, True)
    assert out["sum"] == 6.0 and "error" not in out
    assert err == ""


@pytest.mark.skipif(not _GPUS, reason="no GPU adapter, software or not")
@pytest.mark.parametrize("xdg", [None, "relative/dir"])
def test_probing_leaves_the_environment_as_it_was(xdg):
    """The probe points XDG_RUNTIME_DIR at a private directory only while it runs (libwayland
    complains on stderr when it is unset or relative), then puts it back: unset stays unset,
    a value keeps its value, in the C environment as in os.environ."""
    out, err = _probe(allow="1", xdg=xdg)
    assert out["xdg_c"] == xdg and out["xdg_py"] == xdg
    assert err == ""
