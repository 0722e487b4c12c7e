#!/usr/bin/env bash
# Per-kernel GPU time of a training step on a lent NVIDIA machine (FERROGRAD_GPU_PROFILE=1,
# timestamp queries around every dispatch). Same set-up as device_gpu_check.sh (carry .gl
# and .whl); about 20 s of commands.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export XDG_RUNTIME_DIR=$(mktemp -d) WGPU_BACKEND=vulkan PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/ferrograd-*cp312*.whl || exit 1
export PYTHONPATH=/tmp/site
for a in "standard 128" "standard 512"; do
    set -- $a
    FERROGRAD_GPU_PROFILE=1 timeout 60 python3 benches/gpu_step_profile.py --arch $1 --batch $2 --steps 20 2>&1 | tee -a "$OUT/steps_prof.log"
done
