"""ferrograd.distributed (issue 15): the single-process world, the sampler, SyncBatchNorm's
rule, and real MPI jobs (2 to 4 processes under `mpirun`, oversubscribed on a 2-core
machine): collectives, N ranks against one process on the same global batch, per-rank
BatchNorm's documented difference, gradient accumulation with no_sync, `fit` under mpirun,
and a failing rank ending the job.

The MPI tests skip where `mpirun` or mpi4py is missing, unless FERROGRAD_REQUIRE_MPI=1 (CI)
makes that a failure."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import nn
from ferrograd.autograd import gradcheck
from ferrograd.data import ArrayDataset, DataLoader
from ferrograd.distributed import DistributedSampler
from ferrograd.nn.layers import _SyncBatchNormFn

WORKER = Path(__file__).parent / "mpi" / "worker.py"
MPIRUN = shutil.which("mpirun")
try:
    import mpi4py  # noqa: F401

    HAVE_MPI4PY = True
except ImportError:
    HAVE_MPI4PY = False

# the bound this file holds N ranks to against one process, relative to the largest weight
EQUIVALENCE_BOUND = 1e-5


@pytest.fixture
def mpi():
    if MPIRUN and HAVE_MPI4PY:
        return
    why = f"mpirun {'found' if MPIRUN else 'missing'}, mpi4py {'found' if HAVE_MPI4PY else 'missing'}"
    if os.environ.get("FERROGRAD_REQUIRE_MPI") == "1":
        pytest.fail(f"FERROGRAD_REQUIRE_MPI=1 but {why} (.ci/run installs Open MPI; requirements-dev mpi4py)")
    pytest.skip(why)


def _env() -> dict:
    env = dict(os.environ)
    # run as root in containers, and more ranks than cores
    env.update(
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        OMPI_MCA_rmaps_base_oversubscribe="1",
        FERROGRAD_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
    )
    env.pop("FERROGRAD_ALLOW_SOFTWARE_GPU", None)  # the CPU path
    return env


def mpirun(n: int, *args, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [MPIRUN, "-n", str(n), sys.executable, str(WORKER), *map(str, args)]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)


def single(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(WORKER), *map(str, args)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )


def _ok(r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]


# ---------------------------------------------------------------------------- one process


def test_a_single_process_is_a_world_of_one():
    fg.distributed.init()
    fg.distributed.init()  # idempotent
    assert (fg.distributed.rank(), fg.distributed.world_size(), fg.distributed.is_main()) == (0, 1, True)
    t = fg.tensor([1.0, 2.0])
    assert fg.distributed.all_reduce(t) is t and t.numpy().tolist() == [1.0, 2.0]
    assert fg.distributed.all_reduce(t, op="mean").numpy().tolist() == [1.0, 2.0]
    assert fg.distributed.broadcast(t).numpy().tolist() == [1.0, 2.0]
    assert [g.numpy().tolist() for g in fg.distributed.all_gather(t)] == [[1.0, 2.0]]
    fg.distributed.barrier()
    with pytest.raises(ValueError, match="op must be one of"):
        fg.distributed.all_reduce(t, op="avg")
    m = fg.models.standard(4, 3, width=8)
    d = fg.distributed.DistributedDataParallel(m)
    assert d.module is m and fg.nn.parallel.DistributedDataParallel is fg.distributed.DistributedDataParallel
    x = fg.randn(5, 4)
    m.eval()
    np.testing.assert_array_equal(d(x).numpy(), m(x).numpy())
    with d.no_sync():
        pass
    assert "mpi4py" not in sys.modules or HAVE_MPI4PY  # never imported for a world of one


def test_under_a_launcher_without_mpi4py_the_error_says_how_to_install_it():
    code = "import sys; sys.modules['mpi4py'] = None\nimport ferrograd as fg\nfg.distributed.init()"
    env = _env()
    env["OMPI_COMM_WORLD_SIZE"] = "2"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert (
        "ImportError" in r.stderr
        and "OMPI_COMM_WORLD_SIZE=2" in r.stderr
        and "pip install mpi4py" in r.stderr
    )


@pytest.mark.parametrize("n", [0, 1, 5, 10, 11, 97])
@pytest.mark.parametrize("ranks", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("drop_last", [False, True])
def test_the_sampler_covers_every_sample_once_per_epoch(n, ranks, drop_last):
    data = list(range(n))
    shares = [
        DistributedSampler(data, num_replicas=ranks, rank=r, seed=5, drop_last=drop_last)
        for r in range(ranks)
    ]
    for epoch in (0, 1):
        for s in shares:
            s.set_epoch(epoch)
        got = [s.indices() for s in shares]
        assert len({len(g) for g in got}) == 1 and all(len(g) == len(s) for g, s in zip(got, shares))
        every = np.concatenate(got) if got else np.array([], np.int64)
        if drop_last:  # floor(n / R) each, all distinct
            assert len(every) == ranks * (n // ranks) and len(set(every.tolist())) == len(every)
        else:  # ceil(n / R) each: every sample, a few twice (the padding)
            assert len(every) == ranks * -(-n // ranks) and set(every.tolist()) == set(data)
            counts = np.bincount(every, minlength=max(n, 1))
            extra = ranks * -(-n // ranks) - n  # the padding, repeating the order's start
            assert counts.max(initial=0) <= 1 + (-(-extra // n) if n else 0)
    # the same order on every rank (the seed, not the rank's generator), a new one per epoch
    a, b = DistributedSampler(data, 1, 0, seed=5), DistributedSampler(data, 1, 0, seed=5)
    assert a.indices().tolist() == b.indices().tolist()
    if n > 3:
        b.set_epoch(1)
        assert a.indices().tolist() != b.indices().tolist()


def test_the_sampler_in_a_data_loader_and_its_argument_checks():
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    ds = ArrayDataset(x, np.arange(10))
    s = DistributedSampler(ds, num_replicas=3, rank=1, shuffle=False)
    rows = [int(v) for xb, _ in DataLoader(ds, batch_size=2, sampler=s) for v in xb.numpy().ravel()]
    assert rows == [1, 4, 7, 0] and len(DataLoader(ds, batch_size=2, sampler=s)) == 2  # 0: padding
    with pytest.raises(ValueError, match="sampler and shuffle=True are mutually exclusive"):
        DataLoader(ds, sampler=s, shuffle=True)
    with pytest.raises(ValueError, match=r"rank must be an int in \[0, 3\)"):
        DistributedSampler(ds, num_replicas=3, rank=3)
    with pytest.raises(ValueError, match="num_replicas must be an int >= 1"):
        DistributedSampler(ds, num_replicas=0, rank=0)


def test_sync_batchnorm_rule_in_one_process_is_batchnorm(device):
    """With one rank the synchronized rule must be exactly batch norm: forward, the three
    gradients, and the running statistics; gradchecked in float64."""
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((9, 4)) * 3 + 1
    ref, syn = nn.BatchNorm1d(4), nn.SyncBatchNorm(4)
    for bn in (ref, syn):
        with fg.no_grad():
            bn.weight.copy_(fg.tensor([0.5, 1.0, 2.0, -1.0]))
            bn.bias.copy_(fg.tensor([0.1, 0.0, -0.3, 2.0]))
        bn.to(device)
    x1 = fg.tensor(xa.astype(np.float32), requires_grad=True)
    x2 = fg.tensor(xa.astype(np.float32), requires_grad=True)
    w = fg.tensor(rng.standard_normal((9, 4)).astype(np.float32))
    (ref(x1.to(device)) * w.to(device)).sum().backward()
    y2 = _SyncBatchNormFn.apply(x2.to(device), syn.weight, syn.bias, syn, syn.momentum)
    (y2 * w.to(device)).sum().backward()
    np.testing.assert_allclose(x2.grad.numpy(), x1.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(syn.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(syn.bias.grad.numpy(), ref.bias.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(syn.running_mean.numpy(), ref.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(syn.running_var.numpy(), ref.running_var.numpy(), rtol=1e-5)
    x64 = fg.tensor(xa, requires_grad=True)
    bn64 = nn.SyncBatchNorm(4)
    wt = fg.tensor(np.array([0.5, 1.0, 2.0, -1.0]), requires_grad=True)
    bs = fg.tensor(np.array([0.1, 0.0, -0.3, 2.0]), requires_grad=True)
    bn64.register_buffer("running_mean", fg.zeros(4, dtype=fg.float64))
    bn64.register_buffer("running_var", fg.ones(4, dtype=fg.float64))
    assert gradcheck(lambda a, b, c: _SyncBatchNormFn.apply(a, b, c, bn64, bn64.momentum), [x64, wt, bs])


def test_convert_sync_batchnorm_keeps_places_tensors_and_checkpoints(tmp_path):
    m = fg.models.residual(10, 3, width=16, blocks=2)
    before = [(n, type(x).__name__) for n, x in m.named_modules()]
    params = {n: p for n, p in m.named_parameters()}
    out = nn.SyncBatchNorm.convert_sync_batchnorm(m)
    assert out is m
    after = [(n, type(x).__name__) for n, x in m.named_modules()]
    assert [n for n, _ in after] == [n for n, _ in before]  # the same places
    assert [t for _, t in after] == [("SyncBatchNorm" if t == "BatchNorm1d" else t) for _, t in before]
    assert all(p is params[n] for n, p in m.named_parameters())  # the same tensors
    # a checkpoint of the converted model rebuilds it, and loads into the plain one
    fg.save(m, tmp_path / "m.safetensors")
    again = fg.load(tmp_path / "m.safetensors")
    n_sync = sum(isinstance(x, nn.SyncBatchNorm) for x in m.modules())
    assert n_sync >= 4 and sum(isinstance(x, nn.SyncBatchNorm) for x in again.modules()) == n_sync
    plain = fg.models.residual(10, 3, width=16, blocks=2)
    fg.load(tmp_path / "m.safetensors", model=plain)
    x = fg.randn(6, 10)
    m.eval(), plain.eval()
    np.testing.assert_array_equal(plain(x).numpy(), m(x).numpy())
    bn = nn.BatchNorm1d(5)
    assert isinstance(nn.SyncBatchNorm.convert_sync_batchnorm(bn), nn.SyncBatchNorm)


# ---------------------------------------------------------------------------- real MPI jobs


@pytest.mark.parametrize("n", [2, 3, 4])
def test_collectives_and_the_sampler_across_ranks(mpi, tmp_path, n):
    _ok(mpirun(n, "collectives", tmp_path))
    assert json.loads((tmp_path / "collectives.json").read_text()) == {"size": n, "ok": True}


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_n_ranks_with_sync_batchnorm_give_one_process_weights(mpi, tmp_path, opt):
    """20 steps on a global batch of 48 (the acceptance's network); Adam is compared on the
    parameters with a live gradient (a bias right before BatchNorm has an exactly zero one,
    and Adam turns its rounding noise into full steps)."""
    _ok(single("equivalence", tmp_path, opt, "sync", 48, 1))
    one = np.load(tmp_path / f"w_{opt}_sync_1_1_1.npy")
    live = np.load(tmp_path / f"live_{opt}_sync_1_1_1.npy") if opt == "adam" else np.ones(one.size, bool)
    for n in (2, 3, 4):
        _ok(mpirun(n, "equivalence", tmp_path, opt, "sync", 48, 1))
        got = np.load(tmp_path / f"w_{opt}_sync_{n}_1_1.npy")
        rel = np.abs(got - one)[live].max() / np.abs(one).max()
        assert rel <= EQUIVALENCE_BOUND, (n, rel)


def test_per_rank_batchnorm_differs_only_as_documented(mpi, tmp_path):
    """Without SyncBatchNorm each rank normalizes its own rows: exactly one process that
    normalizes each rank's chunk on its own (running statistics from rank 0's chunk), and
    not the one-process global batch."""
    _ok(single("equivalence", tmp_path, "sgd", "local", 48, 1, 2))
    _ok(single("equivalence", tmp_path, "sgd", "local", 48, 1))
    _ok(mpirun(2, "equivalence", tmp_path, "sgd", "local", 48, 1))
    two = np.load(tmp_path / "w_sgd_local_2_1_1.npy")
    emulated = np.load(tmp_path / "w_sgd_local_1_1_2.npy")
    whole = np.load(tmp_path / "w_sgd_local_1_1_1.npy")
    assert np.abs(two - emulated).max() / np.abs(emulated).max() <= EQUIVALENCE_BOUND
    assert np.abs(two - whole).max() / np.abs(whole).max() > 1e-3


def test_no_sync_accumulates_then_averages(mpi, tmp_path):
    """Two micro-batches per rank, the first under no_sync: the weights of one process on
    the whole batch (no batchnorm, whose statistics would see micro-batches)."""
    _ok(single("equivalence", tmp_path, "sgd", "nobn", 48, 1))
    _ok(mpirun(2, "equivalence", tmp_path, "sgd", "nobn", 48, 2))
    one = np.load(tmp_path / "w_sgd_nobn_1_1_1.npy")
    two = np.load(tmp_path / "w_sgd_nobn_2_2_1.npy")
    assert np.abs(two - one).max() / np.abs(one).max() <= EQUIVALENCE_BOUND


def test_fit_under_mpirun_logs_once_agrees_and_resumes_on_one_process(mpi, tmp_path):
    r = mpirun(2, "fit", tmp_path)
    _ok(r)
    assert r.stdout.count("Epoch 1/2") == 1 and r.stdout.count("Train on 900 samples, validate on 300") == 1
    hist = json.loads((tmp_path / "fit_history.json").read_text())
    assert len(hist["loss"]) == 2 and hist["val_acc"][-1] > 0.3
    rows = (tmp_path / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 3  # a header and two epochs: one writer
    # the checkpoint written by 2 ranks resumes in one process
    m = fg.models.standard(784, 10, width=32)
    m.load_state_dict(fg.load(tmp_path / "best.safetensors").state_dict())
    w = np.concatenate([p.numpy().ravel() for p in m.parameters()])
    np.testing.assert_array_equal(w, np.load(tmp_path / "fit_weights.npy"))
    x, y = fg.data.load_mnist()
    h = m.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0)
    assert np.isfinite(h.history["loss"][0])


def test_a_failing_rank_ends_the_job(mpi, tmp_path):
    """Rank 2 of 3 raises while the others wait in a barrier: the exception hook prints it
    and calls MPI_Abort, so the job exits non-zero at once (bounded here by 60 s; it takes
    about a second)."""
    r = mpirun(3, "raise", tmp_path, timeout=60)  # TimeoutExpired past the bound
    assert r.returncode != 0
    assert "rank 2 of 3 failed" in r.stderr and "fails on purpose" in r.stderr


def test_dropout_streams_differ_per_rank_and_repeat_from_the_seed(mpi, tmp_path):
    _ok(mpirun(2, "streams", tmp_path, "a"))
    _ok(mpirun(2, "streams", tmp_path, "b"))
    a = json.loads((tmp_path / "streams_a.json").read_text())
    b = json.loads((tmp_path / "streams_b.json").read_text())
    assert a == b and a[0] != a[1]


def test_ctrl_c_on_the_launcher_stops_every_rank(mpi, tmp_path):
    """SIGINT to mpirun reaches every rank as KeyboardInterrupt (fit does not swallow it
    under MPI); the job ends instead of leaving ranks waiting in a collective."""
    cmd = [MPIRUN, "-n", "2", sys.executable, str(WORKER), "sleep", str(tmp_path)]
    p = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        p.send_signal(signal.SIGINT)
        p.wait(timeout=60)  # TimeoutExpired past the bound
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode != 0
