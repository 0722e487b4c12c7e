#!/usr/bin/env bash
# The GPU checks for a lent NVIDIA machine (the `device` tool), in one run: driver set-up,
# the GPU test suite on the real card, then the CPU/GPU benchmark table.
#
# Prepare here, once (the machine has no network):
#   echo /.gl/ >> .git/info/exclude; echo /.whl/ >> .git/info/exclude
#   mkdir -p .gl /tmp/amd64/partial
#   o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
#   apt-get $o update; (cd .gl && apt-get $o download libvulkan1)
#   maturin build --release -i python3.X -o .whl   # X = the device's Python (see KINDS.md)
#   pip download --no-deps --only-binary=:all: --python-version 3.X --platform manylinux_2_28_x86_64 \
#       --platform manylinux2014_x86_64 -d .whl numpy pytest hypothesis iniconfig pluggy packaging \
#       sortedcontainers attrs
# Then: run(command="bash scripts/device_gpu_check.sh", carry=[".gl", ".whl"], timeout_s=540)
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export XDG_RUNTIME_DIR=$(mktemp -d) WGPU_BACKEND=vulkan FERROGRAD_REQUIRE_GPU=1 PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site
python3 -c "import ferrograd as fg; print(fg.devices()); print('using', fg._core.gpu_info())" || exit 1
mkdir -p "${OUT:-/tmp/out}"
python3 -m pytest -q -o addopts="" -p no:cacheprovider tests/test_gpu.py 2>&1 | tee "${OUT:-/tmp/out}/gpu_tests.log" | tail -5
python3 benches/bench_gpu.py 2>&1 | tee "${OUT:-/tmp/out}/bench_gpu.log"
