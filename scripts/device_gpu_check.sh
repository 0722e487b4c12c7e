#!/usr/bin/env bash
# The GPU checks for a lent NVIDIA machine (the `device` tool), in one run: driver set-up,
# the GPU test suite on the real card, then the CPU/GPU benchmark table (with PyTorch/CUDA).
#
# Prepare here, once (the machine has no network; its python3 is 3.12 with numpy, pytest,
# hypothesis and torch):
#   echo /.gl/ >> .git/info/exclude; echo /.whl/ >> .git/info/exclude
#   mkdir -p .gl /tmp/amd64/partial
#   o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
#   apt-get $o update
#   (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
#   # the NVIDIA Vulkan ICD (libGLX_nvidia.so.0) needs libglvnd's libraries: with the Vulkan
#   # loader alone wgpu finds no adapter
#   maturin build --release -i python3.12 --target x86_64-unknown-linux-gnu -o .whl
# Then: run(command="bash scripts/device_gpu_check.sh", carry=[".gl", ".whl"], timeout_s=300)
# (about 75 s of commands on an H100, plus the machine's start; PROFILE=1 adds per-kernel
# GPU timestamps, BATCHES=128,512 and EPOCHS=3 are the defaults; SWEEP=0 skips the table of
# every matmul kernel, about 20 s)
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
    /usr/share/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd; break; fi
done
echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"
export XDG_RUNTIME_DIR=$(mktemp -d) WGPU_BACKEND=vulkan FERROGRAD_REQUIRE_GPU=1 PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/ferrograd-*cp312*.whl || exit 1
export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.sm --format=csv
python3 -c "import ferrograd as fg; print(fg.devices()); print('using', fg._core.gpu_info())" || exit 1
timeout 200 python3 -m pytest -q -o addopts="" -p no:cacheprovider tests/test_gpu.py tests/test_gpu_layouts.py \
    tests/test_gpu_graph.py tests/test_amp.py 2>&1 \
    | tee "$OUT/gpu_tests.log" | tail -25
if [ "${SWEEP:-1}" = 1 ]; then
    # every matmul kernel at 1024 and 4096 in each layout (what "auto" chooses among), and at
    # a Standard step's products (batch 128; below the tuning threshold, so the default runs)
    timeout 150 python3 benches/bench_gpu.py --sweep --only-matmul --no-cpu --no-torch \
        --sweep-sizes 1024,4096,128x784x512,128x512x512,512x128x784 2>&1 \
        | tee "$OUT/matmul_sweep.log"
fi
# read-backs per step of hand-written loop idioms (expect 0 everywhere)
timeout 60 python3 benches/gpu_sync_points.py 2>&1 | tee "$OUT/sync_points.log"
# the 4096 matmul over 15 rounds (min/median/max, cuBLAS beside it): the bar is "reliably"
timeout 90 python3 benches/gpu_matmul_repeat.py 2>&1 | tee "$OUT/matmul_repeat.log"
# half operands: tensor cores where the adapter offers the cooperative matrix (issue 18's
# bar: 300 TFLOP/s at 8192, cuBLAS fp16 beside it)
timeout 120 python3 benches/gpu_matmul_repeat.py --dtype float16 --n 8192 --rounds 5 --reps 5 2>&1 \
    | tee "$OUT/matmul_half.log"
# host time of a step, eager against a captured graph's replay (issue 18's 1 us a dispatch
# on a real driver; lavapipe's figures are in benches/README)
timeout 60 python3 benches/gpu_graph.py 2>&1 | tee "$OUT/graph.log"
# the same in mixed precision, with the GradScaler deciding on the device or on the host
timeout 60 python3 benches/gpu_graph.py --precision mixed 2>&1 | tee "$OUT/graph_mixed.log"
# split-K off and on at a training step's products
timeout 60 python3 benches/gpu_split_k.py 2>&1 | tee "$OUT/split_k.log"
timeout 300 python3 benches/bench_gpu.py --batch "${BATCHES:-128,512}" --epochs "${EPOCHS:-3}" 2>&1 \
    | tee "$OUT/bench_gpu.log"
# the GPU column again with split-K off, to see what it does for training
timeout 120 python3 benches/bench_gpu.py --batch "${BATCHES:-128,512}" --epochs "${EPOCHS:-3}" --no-cpu \
    --no-torch --matmul-split-k 1 2>&1 | tee "$OUT/bench_gpu_split_off.log"
for a in "standard 128" "standard 512" "residual 128" "selu 128"; do
    set -- $a
    timeout 60 python3 benches/gpu_step_profile.py --arch $1 --batch $2 2>&1 | tee -a "$OUT/steps.log"
done
for b in 128 512; do
    timeout 60 python3 benches/gpu_step_profile.py --batch $b --matmul-split-k 1 2>&1 | tee -a "$OUT/steps.log"
done
if [ "${PROFILE:-0}" = 1 ]; then
    FERROGRAD_GPU_PROFILE=1 timeout 60 python3 benches/gpu_step_profile.py --steps 20 2>&1 | tee -a "$OUT/steps_prof.log"
fi
