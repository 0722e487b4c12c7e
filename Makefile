# One entry point for people and for CI: `make demo`, `make test`.
# Everything lives in .venv (created here) and one release build directory (target/).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

RUST_SRC := $(shell find rust -name '*.rs' -o -name Cargo.toml) $(wildcard shaders/*.wgsl) Cargo.toml Cargo.lock pyproject.toml
BUILT    := $(VENV)/.built

.PHONY: all build demo test test-rust test-python fuzz lint lint-cpu-only stubtest docs wheel wheel-check bench sdist-check clean

all: build

$(VENV)/.deps: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# Release build of the extension, installed editable into .venv (Python files are live).
$(BUILT): $(VENV)/.deps $(RUST_SRC)
	$(VENV)/bin/maturin develop --release --quiet
	touch $@

build: $(BUILT)

demo: $(BUILT)
	$(VENV)/bin/ferrograd train --arch standard --epochs 5 --lr 0.001 --optimizer adam --batch-size 128 --seed 0

# cargo test --release reuses the release artifacts of the build above.
test-rust: $(BUILT)
	cargo test --release -p ferrograd-core --quiet

test-python: $(BUILT)
	$(PY) -m pytest tests

test: test-rust test-python

# The op fuzzer's long, random run (make test runs a bounded, derandomized one):
# FUZZ_SECONDS bounds it, FUZZ_EXAMPLES caps the batches of calls; the report goes to stdout.
FUZZ_SECONDS  ?= 1800
FUZZ_EXAMPLES ?= 10000000
fuzz: $(BUILT)
	FERROGRAD_FUZZ_SECONDS=$(FUZZ_SECONDS) FERROGRAD_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
		$(PY) -m pytest tests/test_fuzz.py -k test_fuzz_ops -s

lint: $(VENV)/.deps
	$(VENV)/bin/ruff check python tests benches examples scripts
	$(VENV)/bin/ruff format --check python tests benches examples scripts
	$(VENV)/bin/mypy python/ferrograd
	$(PY) scripts/gen_matmul_tiled.py --check
	cargo fmt --all --check
	cargo clippy --release --workspace --all-targets --quiet -- -D warnings
	cargo test --release -p ferrograd-core --test shaders --quiet

# The CPU-only configuration (no wgpu) must build, lint and pass the core's tests too; its
# own target directory keeps the default build's artifacts.
lint-cpu-only:
	CARGO_TARGET_DIR=target/cpu-only cargo clippy --release --workspace --no-default-features --all-targets --quiet -- -D warnings
	CARGO_TARGET_DIR=target/cpu-only cargo test --release -p ferrograd-core --no-default-features --quiet

# One wheel for every CPython from 3.9: the extension built against the stable ABI
# (PyO3's abi3), in its own target directory so the development build stays as it is.
wheel: $(VENV)/.deps
	rm -rf dist/wheel
	CARGO_TARGET_DIR=target/abi3 $(VENV)/bin/maturin build --release --features pyo3/abi3-py39 --out dist/wheel

# That wheel installed into a fresh venv of a Python other than the development one, and a
# smoke test there (scripts/wheel_check.sh finds or fetches the second Python).
wheel-check: wheel
	scripts/wheel_check.sh dist/wheel/ferrograd-*-abi3-*.whl $(PY)

# The documentation site (mkdocs-material + mkdocstrings), warnings as errors (strict in
# mkdocs.yml): a broken reference fails the build. tests/test_docs.py runs its code blocks.
docs: $(BUILT)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# The hand-written _core.pyi against the built module (names, signatures, defaults).
stubtest: $(BUILT)
	$(PY) -m mypy.stubtest ferrograd._core --allowlist python/ferrograd/_core.stubtest-allowlist

bench: $(BUILT)
	$(PY) benches/bench_engine.py
	$(PY) benches/bench_training.py --threads 1
	$(PY) benches/bench_gpu.py --quick
	cargo bench -p ferrograd-bench

# The source distribution must build a working wheel on its own.
sdist-check: $(VENV)/.deps
	rm -rf dist
	$(VENV)/bin/maturin sdist --out dist
	$(PY) -m pip wheel --no-deps -q -w dist dist/ferrograd-*.tar.gz
	$(PYTHON) -m venv dist/venv
	dist/venv/bin/pip install -q dist/ferrograd-*.whl
	cd dist && venv/bin/python -c "import ferrograd as fg; x = fg.tensor([1.0, 2.0], requires_grad=True); (x * x).sum().backward(); assert x.grad.tolist() == [2.0, 4.0]; print('sdist wheel OK')"

clean:
	rm -rf $(VENV) target dist python/ferrograd/*.so
