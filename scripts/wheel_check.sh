#!/usr/bin/env bash
# Installs the abi3 wheel $1 into a fresh venv of a Python whose version differs from the
# development interpreter $2, and runs a smoke test there: autograd, a short fit, NumPy.
# The second Python: python3.12/3.13/3.10/3.9 on PATH or under pyenv, else one uv fetches
# (from GitHub, which a machine may not reach), else the system's python3 (another
# interpreter, maybe of the same version: said in the log).
set -euo pipefail
wheel="$1"
dev_py="$2"
dev_ver="$("$dev_py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
second=""
for v in 3.12 3.13 3.10 3.9; do
    [ "$v" = "$dev_ver" ] && continue
    for cand in "python$v" "$HOME/.pyenv/versions/$v"*/bin/python"$v"; do
        # (a pyenv shim answers command -v but fails to run: try it)
        if "$cand" -c 'import venv' >/dev/null 2>&1; then second="$(command -v "$cand")"; break 2; fi
    done
done
if [ -z "$second" ]; then
    if "$dev_py" -m pip install -q uv >/dev/null 2>&1 && "$dev_py" -m uv python install 3.12 >/dev/null 2>&1; then
        second="$("$dev_py" -m uv python find 3.12)"
    elif [ -x /usr/bin/python3 ]; then
        echo "wheel-check: no second Python version found or fetched; using the system's /usr/bin/python3"
        second=/usr/bin/python3
    else
        echo "wheel-check: no Python to install the wheel into" >&2
        exit 1
    fi
fi
echo "wheel-check: $(basename "$wheel") on $("$second" --version) (development: $dev_ver)"
rm -rf dist/wheel-venv
"$second" -m venv dist/wheel-venv
dist/wheel-venv/bin/pip install -q "$wheel"
cd dist
wheel-venv/bin/python - <<'PY'
import sys

import numpy as np

import ferrograd as fg

x = fg.tensor([1.0, 2.0], requires_grad=True)
(x * x).sum().backward()
assert x.grad.tolist() == [2.0, 4.0]
xs, ys = fg.data.load_mnist()
model = fg.models.standard(784, 10, width=32)
h = model.fit(xs[:512], ys[:512], epochs=1, batch_size=128, verbose=0)
assert np.isfinite(h.history["loss"][0])
assert np.asarray(fg.ones(3)).tolist() == [1.0, 1.0, 1.0]
print(f"abi3 wheel OK on Python {sys.version.split()[0]}")
PY
