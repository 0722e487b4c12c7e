"""The tuning recipe on the bundled MNIST sample, beside the default builders and a random
search given the same number of trials.

    python benches/bench_tune.py --budget 120 --threads 2 [--arch standard residual selu]

Every network trains on the first 8,000 samples and is judged on the last 2,000 (the same
split `fit(validation_split=0.2)` makes). The recipe runs under `--budget` seconds. The
default builders train for 5 epochs (batch 128, Adam 0.001), as `make demo` does. The
random search draws the recipe's number of trials from a space that holds the recipe's
choices (log-uniform lr in [1e-4, 1e-2], width in 16..1024, batchnorm on/off, dropout
0/0.2/0.3), trains each with the recipe's per-trial budget (the same epochs, early stopping
after the same patience, the best epoch kept) and keeps the best by val_loss.
"""

from __future__ import annotations

import argparse
import io
import math
import time

import numpy as np
from _common import cpu_model  # benches/ is on sys.path when a script runs


def val_figures(fg, model, xv, yv) -> tuple[float, float]:
    """(val_loss, val_acc) of `model` in eval mode."""
    model.eval()
    with fg.no_grad():
        out = model(fg.tensor(xv))
        loss = fg.losses.cross_entropy(out, fg.tensor(yv)).item()
        acc = float((out.numpy().argmax(1) == yv).mean())
    return loss, acc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=120.0, help="the recipe's time budget (s)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--arch",
        nargs="+",
        default=["standard"],
        choices=["standard", "residual", "selu"],
        help="the recipes to run (the random search runs beside the standard one)",
    )
    args = p.parse_args()

    import ferrograd as fg
    from ferrograd.data import load_mnist

    fg.set_num_threads(args.threads)
    x, y = load_mnist()
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    y = np.asarray(y, dtype=np.int64)
    n_tr = len(x) - int(len(x) * 0.2)
    xv, yv = x[n_tr:], y[n_tr:]
    print(f"# tuning on the bundled MNIST sample ({n_tr} train / {len(x) - n_tr} validation)")
    print(f"# machine: {cpu_model()}, {args.threads} threads, seed {args.seed}")

    rows = []
    n_trials, epochs, r_loss = 0, 0, 0.0
    for arch in args.arch:
        t0 = time.perf_counter()
        res = fg.tune.recipe(
            x, y, architecture=arch, time_budget=args.budget, seed=args.seed, batch_size=128, verbose=0
        )
        recipe_s = time.perf_counter() - t0
        loss, acc = val_figures(fg, res.model, xv, yv)
        rows.append(
            (f"recipe ({arch}), {res.verdict}", loss, acc, len(res.trials), recipe_s, _describe(res.config))
        )
        if arch == "standard":
            n_trials, epochs, r_loss = len(res.trials), res.config["epochs"], loss
        elif not math.isfinite(loss):
            raise SystemExit(f"the {arch} recipe's model gives a non-finite validation loss")

    for arch in ("standard", "residual", "selu"):
        fg.manual_seed(args.seed)
        from ferrograd.cli import build

        m = build(arch, 784, 10)
        t0 = time.perf_counter()
        fg.train.fit(m, x, y, epochs=5, batch_size=128, validation_split=0.2, verbose=0)
        loss, acc = val_figures(fg, m, xv, yv)
        rows.append((f"default {arch}, 5 epochs", loss, acc, 1, time.perf_counter() - t0, "builder defaults"))

    rng = np.random.default_rng(args.seed)
    best: tuple[float, float, str] | None = None
    t0 = time.perf_counter()
    for _ in range(n_trials):  # beside the standard recipe only (its search space)
        lr = float(10 ** rng.uniform(-4, -2))
        width = int(2 ** rng.integers(4, 11))
        bn = bool(rng.integers(0, 2))
        dropout = float(rng.choice([0.0, 0.2, 0.3]))
        fg.manual_seed(args.seed)
        m = fg.models.standard(784, 10, width=width, depth=2, dropout=dropout, batchnorm=bn)
        stop = fg.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best=True)
        fg.train.fit(
            m,
            x,
            y,
            lr=lr,
            epochs=epochs,
            batch_size=128,
            validation_split=0.2,
            callbacks=[stop],
            verbose=0,
            stream=io.StringIO(),
        )
        loss, acc = val_figures(fg, m, xv, yv)
        what = f"width {width}, bn {bn}, dropout {dropout}, lr {lr:.2g}"
        if best is None or loss < best[0]:
            best = (loss, acc, what)
    if best is not None:
        searched = time.perf_counter() - t0
        rows.append((f"random search, {n_trials} trials", best[0], best[1], n_trials, searched, best[2]))

    print()
    print("| run | val_loss | val_acc | trials | seconds | network |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, loss, acc, n, s, what in rows:
        print(f"| {name} | {loss:.4f} | {acc:.4f} | {n} | {s:.1f} | {what} |")
    if not math.isfinite(r_loss):
        raise SystemExit("the recipe's model gives a non-finite validation loss")


def _describe(cfg: dict) -> str:
    kw = cfg.get("kwargs", {})
    bn, dropout = kw.get("batchnorm", False), kw.get("dropout", kw.get("alpha_dropout"))
    return f"width {kw.get('width')}, bn {bn}, dropout {dropout}, lr {cfg.get('lr'):.2g}"


if __name__ == "__main__":
    main()
