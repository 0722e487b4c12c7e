import os

# The GPU tests run on whatever adapter there is, Mesa's software lavapipe included (CI has
# no GPU); ferrograd refuses a software adapter unless opted in, before its first probe.
os.environ.setdefault("FERROGRAD_ALLOW_SOFTWARE_GPU", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import ferrograd as fg  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_and_grad_mode():
    """Each test starts from the same seed with grad mode on."""
    fg.manual_seed(0)
    np.random.seed(0)
    prev = fg.is_grad_enabled()
    fg.set_grad_enabled(True)
    yield
    fg.set_grad_enabled(prev)


def _gpu_params():
    """'gpu' runs where an adapter exists; skipping is an error under FERROGRAD_REQUIRE_GPU=1."""
    import os

    if fg.gpu_available():
        return ["cpu", "gpu"]
    if os.environ.get("FERROGRAD_REQUIRE_GPU") == "1":
        raise RuntimeError("FERROGRAD_REQUIRE_GPU=1 but no GPU adapter was found: " + repr(fg.devices()))
    return ["cpu", pytest.param("gpu", marks=pytest.mark.skip(reason="no GPU adapter"))]


@pytest.fixture(params=_gpu_params())
def device(request):
    """Runs a test once per device (the same checks on the CPU and on the GPU)."""
    return request.param


@pytest.fixture
def hide_package(monkeypatch):
    """`hide_package("pandas")` makes importing that package (and its submodules) raise
    ImportError for the rest of the test, as on a machine without it."""
    import builtins

    real = builtins.__import__
    hidden: set[str] = set()

    def guarded(name, *args, **kwargs):
        if name.split(".")[0] in hidden:
            raise ImportError(f"no {name} here")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", guarded)
    return hidden.add
