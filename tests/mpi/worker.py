"""Run under `mpirun -n N` by tests/test_distributed.py: one scenario per call,
`python worker.py SCENARIO OUT_DIR [ARGS...]`. Rank 0 writes what the test compares into
OUT_DIR (NumPy .npy / JSON files); failures raise (the launcher then exits non-zero)."""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

import ferrograd as fg

scenario, out = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
fg.distributed.init()
rank, size = fg.distributed.rank(), fg.distributed.world_size()


def save(name, value):
    if rank == 0:
        if isinstance(value, np.ndarray):
            np.save(os.path.join(out, name + ".npy"), value)
        else:
            with open(os.path.join(out, name + ".json"), "w") as f:
                json.dump(value, f)


def chunked_loss(m, xs, ys, chunks: int):
    """One process doing what `chunks` ranks with per-rank BatchNorm do: each chunk
    normalized with its own statistics, the running statistics updated from chunk 0 only
    (DDP broadcasts rank 0's before each forward), the loss the mean over all rows."""
    bns = [mod for mod in m.modules() if isinstance(mod, fg.nn.BatchNorm1d)]
    k = xs.shape[0] // chunks
    total = None
    for c in range(chunks):
        saved = [(b.running_mean.numpy().copy(), b.running_var.numpy().copy()) for b in bns]
        loss = fg.losses.cross_entropy(
            m(fg.tensor(xs[c * k : (c + 1) * k])), fg.tensor(ys[c * k : (c + 1) * k])
        )
        if c > 0:  # only chunk 0's update stays
            with fg.no_grad():
                for b, (mean, var) in zip(bns, saved):
                    b.running_mean.copy_(fg.tensor(mean))
                    b.running_var.copy_(fg.tensor(var))
        total = loss if total is None else total + loss
    return total * (1.0 / chunks)


def train(
    opt_name: str,
    steps: int,
    sync_bn: bool,
    batch: int,
    accumulate: int = 1,
    emulate: int = 1,
    bn: bool = True,
):
    """The acceptance's network on a fixed global batch per step; each rank takes its rows.
    Returns the parameters (flattened) and whether each had a live gradient."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((steps, batch, 20)).astype(np.float32)
    Y = rng.integers(0, 5, (steps, batch))
    fg.manual_seed(0)
    m = fg.models.standard(20, 5, width=32, depth=2, dropout=0.0, batchnorm=bn)
    if size > 1:
        if sync_bn:
            m = fg.nn.SyncBatchNorm.convert_sync_batchnorm(m)
        m = fg.distributed.DistributedDataParallel(m, bucket_cap_mb=0.002)  # several buckets
    ps = list(m.parameters())
    opt = fg.optim.Adam(ps, lr=1e-2) if opt_name == "adam" else fg.optim.SGD(ps, lr=1e-2, momentum=0.9)
    b = batch // size
    live = np.zeros(len(ps), bool)
    for s in range(steps):
        xs, ys = X[s, rank * b : (rank + 1) * b], Y[s, rank * b : (rank + 1) * b]
        opt.zero_grad()
        if emulate > 1:
            chunked_loss(m, xs, ys, emulate).backward()
        elif accumulate == 1:
            fg.losses.cross_entropy(m(fg.tensor(xs)), fg.tensor(ys)).backward()
        else:  # micro-batches: local accumulation under no_sync, the last one synced
            k = b // accumulate
            for j in range(accumulate):
                part = slice(j * k, (j + 1) * k)
                loss = fg.losses.cross_entropy(m(fg.tensor(xs[part])), fg.tensor(ys[part])) * (1 / accumulate)
                if j < accumulate - 1 and size > 1:
                    with m.no_sync():
                        loss.backward()
                else:
                    loss.backward()
        live |= np.array([np.abs(p.grad.numpy()).max() > 1e-6 for p in ps])
        opt.step()
    return np.concatenate([p.numpy().ravel() for p in ps]), np.concatenate(
        [np.full(p.numel(), lv) for p, lv in zip(ps, live)]
    )


if scenario == "equivalence":
    opt_name, sync, batch, acc = args[0], args[1] == "sync", int(args[2]), int(args[3])
    emulate = int(args[4]) if len(args) > 4 else 1
    w, live = train(opt_name, 20, sync, batch, acc, emulate, bn=args[1] != "nobn")
    # every rank holds the same weights
    gathered = fg.distributed.all_gather(fg.tensor(w))
    assert all(np.array_equal(g.numpy(), w) for g in gathered), "ranks disagree on the weights"
    tag = f"{opt_name}_{args[1]}_{size}_{acc}_{emulate}"
    save(f"w_{tag}", w)
    save(f"live_{tag}", live)

elif scenario == "collectives":
    t = fg.tensor([float(rank + 1), 2.0 * rank])
    fg.distributed.all_reduce(t)
    s = sum(range(1, size + 1))
    assert t.numpy().tolist() == [s, 2.0 * sum(range(size))], t
    m = fg.tensor([float(rank)])
    fg.distributed.all_reduce(m, op="max")
    assert m.item() == size - 1
    mean = fg.tensor([float(rank)])
    fg.distributed.all_reduce(mean, op="mean")
    assert mean.item() == (size - 1) / 2
    b = fg.tensor([float(rank) + 10])
    fg.distributed.broadcast(b, src=size - 1)
    assert b.item() == size - 1 + 10
    parts = fg.distributed.all_gather(fg.tensor([[rank, rank]], dtype=fg.float64))
    assert [p.numpy().tolist() for p in parts] == [[[r, r]] for r in range(size)]
    g = fg.tensor([1.0], requires_grad=True)
    fg.distributed.all_reduce(g)  # in place, outside the graph
    fg.distributed.barrier()
    # the sampler: disjoint shares covering every sample, the same order on every rank
    sampler = fg.distributed.DistributedSampler(list(range(11)), seed=3)
    sampler.set_epoch(2)
    share = fg.tensor(np.pad(sampler.indices(), (0, 1), constant_values=-1))
    every = np.concatenate([p.numpy()[: len(sampler)] for p in fg.distributed.all_gather(share)])
    assert sorted(set(every.tolist())) == list(range(11)) and len(every) == size * -(-11 // size)
    save("collectives", {"size": size, "ok": True})

elif scenario == "fit":
    x, y = fg.data.load_mnist()
    fg.manual_seed(0)
    m = fg.models.standard(784, 10, width=32)
    ck = os.path.join(out, "best.safetensors")
    csv = os.path.join(out, "log.csv")
    cbs = [
        fg.callbacks.ModelCheckpoint(ck, monitor="val_loss", save_best_only=True),
        fg.callbacks.CSVLogger(csv),
        fg.callbacks.EarlyStopping(monitor="val_loss", patience=5),
    ]
    h = m.fit(x[:1200], y[:1200], epochs=2, batch_size=64, validation_split=0.25, lr=1e-3, callbacks=cbs)
    hist = {k: [round(v, 9) for v in vs] for k, vs in h.history.items()}
    every = fg.distributed.all_gather(fg.tensor(np.array([hist["val_loss"][-1], hist["loss"][-1]])))
    assert all(np.array_equal(e.numpy(), every[0].numpy()) for e in every), "ranks disagree on the History"
    w = np.concatenate([p.numpy().ravel() for p in m.parameters()])
    ws = fg.distributed.all_gather(fg.tensor(w))
    assert all(np.array_equal(e.numpy(), w) for e in ws), "ranks disagree on the weights"
    save("fit_history", hist)
    save("fit_weights", w)

elif scenario == "raise":
    if rank == size - 1:
        raise RuntimeError(f"rank {rank} fails on purpose")
    t0 = time.perf_counter()
    fg.distributed.barrier()  # the other ranks wait here until the failing one aborts the job
    time.sleep(600)

elif scenario == "streams":
    # after DDP's construction each rank draws its own numbers, the same ones every run
    fg.manual_seed(0)
    m = fg.distributed.DistributedDataParallel(fg.models.standard(4, 2, width=8, dropout=0.5))
    draws = fg.distributed.all_gather(fg.rand(6))
    save(f"streams_{args[0]}", [d.numpy().tolist() for d in draws])

elif scenario == "sleep":
    # waits in a loop of barriers until the launcher is interrupted
    if rank == 0:
        print("ready", flush=True)
    while True:
        fg.distributed.barrier()
        time.sleep(0.05)

else:
    raise SystemExit(f"unknown scenario {scenario}")
