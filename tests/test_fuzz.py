"""Property-based fuzzing of the public op surface (issue 11).

Hypothesis draws batches of call descriptions (``fuzz/strategies.py``): random shapes
(empty, 0-d, huge, negative), dtypes, NaN/inf data, non-contiguous views, wrong Python
types, mixed devices. A worker process (``fuzz/worker.py``) makes each call, so an abort or
a segfault is a failure rather than the end of the test run, and checks three things: no
crash or panic, an exception only of a documented class, and agreement with NumPy (for a
GPU call: with the same call on the CPU) when the call succeeds.

Every distinct failure is collected, shrunk and printed with a reproduction; the test fails
at the end if there is any. ``make test`` runs a bounded, derandomized pass; ``make fuzz``
sets ``FERROGRAD_FUZZ_EXAMPLES`` (batches) and ``FERROGRAD_FUZZ_SECONDS`` for a long random
one. ``FERROGRAD_FUZZ_REPORT=path`` also writes the report to ``path`` and the failing
calls to ``path.json``; ``python -m fuzz.runner recheck path.json`` (from tests/) runs them
again after a fix.
"""

import os
import time

import pytest
from fuzz.runner import Fuzzer
from fuzz.strategies import calls
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import ferrograd as fg

GPU = fg.gpu_available()
LONG = "FERROGRAD_FUZZ_EXAMPLES" in os.environ
# The bounded pass: batches of up to BATCH calls, stopped early at SECONDS (2 CI cores).
EXAMPLES = int(os.environ.get("FERROGRAD_FUZZ_EXAMPLES", "15000"))
SECONDS = float(os.environ.get("FERROGRAD_FUZZ_SECONDS", "1800" if LONG else "140"))
SHRINK_SECONDS = float(os.environ.get("FERROGRAD_FUZZ_SHRINK_SECONDS", "120" if LONG else "25"))
BATCH = 8
# A long run restarts hypothesis every CHUNK batches, with a fresh random seed each time.
CHUNK = 300


def _run(fuzzer: Fuzzer, examples: int, derandomize: bool, deadline: float) -> None:
    """One hypothesis run of ``examples`` batches (calls stop at ``deadline``)."""

    @settings(
        max_examples=examples,
        derandomize=derandomize,
        deadline=None,
        database=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
    )
    @given(batch=st.lists(calls(GPU), min_size=1, max_size=BATCH))
    def body(batch):
        if time.monotonic() < deadline:
            fuzzer.run_batch(batch)

    body()


def test_fuzz_ops():
    """No call crashes, raises an undocumented exception, or disagrees with NumPy/the CPU."""
    fuzzer = Fuzzer()
    try:
        deadline = time.monotonic() + SECONDS
        if LONG:
            while time.monotonic() < deadline and fuzzer.batches < EXAMPLES:
                _run(fuzzer, min(CHUNK, EXAMPLES - fuzzer.batches), False, deadline)
        else:
            _run(fuzzer, EXAMPLES, True, deadline)
        fuzzer.shrink_all(SHRINK_SECONDS)
        report = fuzzer.summary()
    finally:
        fuzzer.close()
    print(report)
    path = os.environ.get("FERROGRAD_FUZZ_REPORT")
    if path:
        with open(path, "w") as f:
            f.write(report + "\n")
        fuzzer.dump(path + ".json")
    if fuzzer.failures:
        pytest.fail(report, pytrace=False)


def test_fuzz_covers_gpu():
    """The fuzz run includes GPU calls; without an adapter this skips, and
    FERROGRAD_REQUIRE_GPU=1 (CI, as in test_gpu.py) turns the skip into a failure."""
    if not GPU:
        if os.environ.get("FERROGRAD_REQUIRE_GPU") == "1":
            pytest.fail("FERROGRAD_REQUIRE_GPU=1 but no GPU adapter was found: " + repr(fg.devices()))
        pytest.skip("no GPU adapter: the fuzz run has no GPU calls")
