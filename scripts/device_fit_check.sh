#!/usr/bin/env bash
# A short confirmation on a lent NVIDIA machine: the GPU test suite, then `fit` on "gpu"
# (the lazy loss/accuracy read-back) timed on the bundled MNIST sample. Same set-up as
# device_gpu_check.sh (carry .gl and .whl).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export XDG_RUNTIME_DIR=$(mktemp -d) WGPU_BACKEND=vulkan FERROGRAD_REQUIRE_GPU=1 PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/ferrograd-*cp312*.whl || exit 1
export PYTHONPATH=/tmp/site
timeout 100 python3 -m pytest -q -o addopts="" -p no:cacheprovider tests/test_gpu.py 2>&1 | tee "$OUT/gpu_tests.log" | tail -4
timeout 60 python3 - <<'PY' 2>&1 | tee "$OUT/fit.log"
import time, ferrograd as fg
x, y = fg.data.load_mnist()
for dev in ("gpu",):
    fg.manual_seed(0)
    m = fg.models.standard(784, 10).to(dev)
    m.fit(x[:1024], y[:1024], epochs=1, batch_size=128, verbose=0)  # warm-up
    t0 = time.perf_counter()
    h = m.fit(x, y, epochs=3, batch_size=128, validation_split=0.2, verbose=2)
    dt = time.perf_counter() - t0
    print(f"fit standard on {dev}: {3 * 8000 / dt:,.0f} samples/s including validation; history {h.history}")
PY
