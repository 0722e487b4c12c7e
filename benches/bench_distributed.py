"""Data-parallel training on MPI: samples/s and scaling efficiency for 1, 2 and 4 processes
of one thread each, on the Standard and Residual networks, with the time spent in gradient
communication reported on its own, and a model of larger clusters from the measured figures.

    python benches/bench_distributed.py [--steps 60] [--batch 128] [--ranks 1 2 4]

Each configuration runs as its own `mpirun -n P` job (`P = 1` runs without a launcher):
the global batch (`--batch`) is split across the ranks, every rank trains `--steps` steps of
Adam on its share of the bundled MNIST sample after `--warmup` untimed ones, and rank 0
reports the mean step time, the time inside DistributedDataParallel's reduction (packing,
Iallreduce, waiting, unpacking) and the bytes reduced per step. Efficiency at P ranks is
samples/s(P) / (P x samples/s(1)). On a machine with fewer cores than ranks the processes
share cores (oversubscription), which this script states beside the figures.

PyTorch's DDP (gloo backend) is run beside it when torch is installed; otherwise the script
says so.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time


def worker(arch: str, steps: int, warmup: int, batch: int) -> None:
    """One rank of a timed run (under mpirun, or alone)."""
    import numpy as np

    import ferrograd as fg
    from ferrograd.data import load_mnist

    fg.set_num_threads(1)
    fg.distributed.init()
    rank, size = fg.distributed.rank(), fg.distributed.world_size()
    x, y = load_mnist()
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    fg.manual_seed(0)
    if arch == "standard":
        model = fg.models.standard(784, 10, width=512, depth=2)
    else:
        model = fg.models.residual(784, 10, width=256, blocks=10)
    ddp = fg.distributed.DistributedDataParallel(model)
    opt = fg.optim.Adam(model.parameters(), lr=1e-3)
    local = batch // size
    xt, yt = fg.tensor(x), fg.tensor(y)
    n_batches = len(x) // batch
    params = sum(p.numel() for p in model.parameters())
    times = []
    comm0 = 0.0
    for s in range(warmup + steps):
        if s == warmup:
            comm0 = ddp.comm_seconds
        b = s % n_batches
        idx = slice(b * batch + rank * local, b * batch + (rank + 1) * local)
        t0 = time.perf_counter()
        opt.zero_grad()
        fg.losses.cross_entropy(ddp(xt[idx]), yt[idx]).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    step = sum(times[warmup:]) / steps
    comm = (ddp.comm_seconds - comm0) / steps
    # the slowest rank sets the pace
    slowest = fg.distributed.all_gather(fg.tensor([step, comm], dtype=fg.float64))
    step, comm = max(float(t.numpy()[0]) for t in slowest), max(float(t.numpy()[1]) for t in slowest)
    if rank == 0:
        print(
            "RESULT "
            + json.dumps(
                {
                    "arch": arch,
                    "ranks": size,
                    "step_s": step,
                    "comm_s": comm,
                    "bytes": params * 4,
                    "batch": batch,
                }
            )
        )


def _run(ranks: int, arch: str, args) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        arch,
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
    ]
    cmd += ["--batch", str(args.batch)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if ranks > 1:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
        cmd = ["mpirun", "-n", str(ranks), *cmd]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"run failed ({ranks} ranks, {arch}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def _torch_note() -> str:
    try:
        import torch  # noqa: F401
    except ImportError:
        return "PyTorch is not installed here: its DDP (gloo) was not run beside these figures."
    return "PyTorch is installed, but this script does not yet time its DDP: add it before comparing."


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch", type=int, default=128, help="global batch")
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--arch", nargs="+", default=["standard", "residual"], choices=["standard", "residual"])
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.worker, args.steps, args.warmup, args.batch)
        return
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import cpu_model

    if shutil.which("mpirun") is None and any(r > 1 for r in args.ranks):
        raise SystemExit("mpirun not found: install Open MPI (apt-get install openmpi-bin libopenmpi-dev)")
    cores = os.cpu_count() or 1
    print(f"# machine: {cpu_model()}, {cores} cores; one thread per rank; global batch {args.batch}")
    print("| network | ranks | samples/s | efficiency | step ms | comm ms | MB reduced/step | note |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    results = []
    for arch in args.arch:
        base = None
        for ranks in args.ranks:
            r = _run(ranks, arch, args)
            sps = args.batch / r["step_s"]
            base = sps if ranks == 1 else base
            eff = sps / (ranks * base) if base else float("nan")
            note = f"oversubscribed ({ranks} ranks on {cores} cores)" if ranks > cores else ""
            print(
                f"| {arch} | {ranks} | {sps:,.0f} | {eff:.2f} | {r['step_s'] * 1e3:.1f} | "
                f"{r['comm_s'] * 1e3:.1f} | {r['bytes'] / 1e6:.2f} | {note} |"
            )
            results.append(r)
    print()
    print(_torch_note())
    print()
    _cluster_model(results, args.batch)


def _cluster_model(results: list[dict], batch: int) -> None:
    """Expected efficiency at 8, 64 and 512 ranks from the one-rank step time and the bytes
    reduced per step: ring all-reduce moves 2 (R - 1) / R of the bytes per rank and takes
    2 (R - 1) latencies; backward is about 2/3 of a step's compute, so communication can
    hide behind it up to that much."""
    latency = 20e-6  # seconds per message on a cluster network (order of magnitude)
    print("Model of larger clusters (per-rank batch as measured at 1 rank; ring all-reduce, 20 us latency):")
    print(
        "| network | link | ranks | comm ms | efficiency, no overlap | with overlap "
        "| batch per rank to hide comm |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        if r["ranks"] != 1:
            continue
        compute = r["step_s"]
        backward = compute * 2 / 3
        per_sample_backward = backward / r["batch"]
        for gbit in (10, 100):
            bw = gbit * 1e9 / 8
            for ranks in (8, 64, 512):
                comm = 2 * (ranks - 1) / ranks * r["bytes"] / bw + 2 * (ranks - 1) * latency
                no_overlap = compute / (compute + comm)
                overlap = compute / (compute + max(0.0, comm - backward))
                hide = comm / per_sample_backward
                print(
                    f"| {r['arch']} | {gbit} Gbit/s | {ranks} | {comm * 1e3:.1f} | {no_overlap:.2f} | "
                    f"{overlap:.2f} | {hide:,.0f} |"
                )


if __name__ == "__main__":
    main()
